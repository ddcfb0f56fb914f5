"""Figures that must not teach something false, checked on real runs: the chance level drawn where a score is shown,
negative templates named, the running training accuracy said."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import FIXTURES, REPO

from filterlab import experiments
from filterlab.experiments.base import FigureOptions
from filterlab.experiments.single_image import figures as SF
from filterlab.experiments.single_image.experiment import figure_data
from filterlab.lifecycle import train_config


def single_run(tmp_path: Path, config: str, *sets: str) -> tuple[Path, dict]:
    cfg = experiments.load_config(REPO / "configs" / config, ["output.figures=false", *sets])
    out = train_config(cfg, out_root=tmp_path)
    assert out.status == "completed", out.error
    return out.run_dir, figure_data(out.run_dir, cfg, FigureOptions())


def test_random_best_patch_cosine_is_the_brute_force_one():
    image = np.random.default_rng(1).random((12, 12))
    got = SF.random_best_cosine(image, 5, count=20, seed=3)
    w = np.random.default_rng(3).uniform(-1, 1, size=(20, 25))
    out = F.conv2d(torch.from_numpy(image)[None, None], torch.from_numpy(w.reshape(20, 1, 5, 5)))[0]  # (20, 8, 8)
    norms = F.conv2d(torch.from_numpy(image ** 2)[None, None], torch.ones(1, 1, 5, 5, dtype=torch.float64)).sqrt()
    cos = (out / norms[0] / torch.from_numpy(np.linalg.norm(w, axis=1))[:, None, None]).flatten(1).numpy()
    assert np.allclose(got, cos[np.arange(20), np.abs(cos).argmax(1)])


def test_5x5_similarity_draws_the_random_filter_baseline(tmp_path):
    """The 5x5 preset compares each filter with its best patch: the figure says so, and draws the band a random
    filter reaches by that choice alone; the step-0 filters (random) sit in that range."""
    _, d = single_run(tmp_path, "single_four_5x5.yaml", "train.steps=30")
    drawn = SF.similarity(d)
    chance = np.abs(SF.random_best_cosine(d["image"], 5))
    lo, hi = np.percentile(chance, 5), np.percentile(chance, 95)
    cosine_axes = [ax for ax in drawn.fig.axes if ax.get_title().startswith("cosine")]
    assert len(cosine_axes) == 2 and all("best 5x5 patch" in ax.get_title() for ax in drawn.fig.axes)
    for ax in cosine_axes:
        spans = sorted(tuple(np.round(p.get_extents().bounds, 6)) for p in ax.patches)
        ys = sorted({round(float(v), 6) for p in ax.patches for v in p.get_path().transformed(p.get_patch_transform()
                                                                                            ).vertices[:, 1]})
        assert len(spans) == 2 and ys == pytest.approx(sorted([-hi, -lo, lo, hi]), abs=1e-6)
    assert f"|cosine| {lo:.2f} to {hi:.2f}" in drawn.caption and "576 positions" in drawn.caption
    start = np.abs(d["similarity"]["weight_cosine"][0])
    assert ((start > chance.min()) & (start < chance.max())).all()
    # binarised agreement over training, the third panel: each filter's line is its recorded agreement
    (agree_ax,) = [ax for ax in drawn.fig.axes if ax.get_title().startswith("binarised agreement")]
    drawn_lines = [ln for ln in agree_ax.get_lines() if ln.get_label().startswith("filter")]
    want = np.asarray(d["similarity"]["binary_agreement"], dtype=float)
    assert len(drawn_lines) == want.shape[1]
    for i, ln in enumerate(drawn_lines):
        assert np.allclose(ln.get_ydata(), want[:, i]) and np.array_equal(ln.get_xdata(), d["steps"])
    assert any(np.allclose(ln.get_ydata(), 0.5) for ln in agree_ax.get_lines())  # no resemblance, drawn
    # where the best patch lies: outlined on the image, and its cosine is the one the run recorded
    raw = SF.filters_raw(d, "RdBu_r")
    outlined = [p for ax in raw.fig.axes for p in ax.patches if p.get_gid() == "best-patch"]
    assert len(outlined) == 5 and "yellow squares" in raw.caption
    last = d["filters"][-1]
    for i, ((r, c), box) in enumerate(zip(SF.best_patches(d["image"], last), outlined, strict=True)):
        assert (box.get_x(), box.get_y(), box.get_width()) == (c - 0.5, r - 0.5, 5)
        patch, w = d["image"][r:r + 5, c:c + 5].ravel(), last[i].ravel()
        cos = patch @ w / np.linalg.norm(patch) / np.linalg.norm(w)
        assert cos == pytest.approx(d["similarity"]["weight_cosine"][-1][i], abs=1e-4)
        assert f"{r},{c}" in [t.get_text().split("\n")[2] for t in raw.fig.texts if t.get_text().count("\n") >= 2
                              and not t.get_text().startswith("cosine")][i]


def test_filters_figures_say_each_cosine_and_mark_negative_templates(tmp_path):
    run, d = single_run(tmp_path, "single_four.yaml", "train.steps=300")
    summary = json.loads((run / "summary.json").read_text())["filters"]
    cos = [f["weight_cosine_end"] for f in summary]
    agree = [f["binary_agreement_end"] for f in summary]
    for drawn in (SF.filters_raw(d, "RdBu_r"), SF.filters_binarised(d)):
        notes = [t.get_text() for t in drawn.fig.texts]
        for c, a in zip(cos, agree, strict=True):
            assert f"{c:+.2f}\n{a:.2f}" + ("\nneg." if c < 0 else "") in notes
        neg = [str(i + 1) for i, c in enumerate(cos) if c < 0]
        assert neg and f"filter{'s' if len(neg) > 1 else ''} {', '.join(neg)}) are negative templates" in drawn.caption
    assert "binarises to the inverted digit" in SF.filters_binarised(d).caption


def test_classifier_curves_say_train_is_running_and_share_one_x_unit(runner, tmp_path):
    from filterlab.cli import app
    from filterlab.experiments.classifier.figures import curves

    r = runner.invoke(app, ["train", str(REPO / "configs" / "smoke_two_conv.yaml"), "--out", str(tmp_path), "-q",
                            "--set", f"data.root={FIXTURES / 'mnist-mini'}", "--set", "data.train_limit=256",
                            "--set", "train.epochs=2", "--set", "output.figures=false"])
    assert r.exit_code == 0, r.output
    run = Path(r.output.strip().splitlines()[-1])
    cfg = experiments.load_config(run / "config.yaml")
    d = experiments.get("classifier").figure_data(run, cfg, FigureOptions())
    drawn = curves(d)
    assert drawn is not None
    loss_ax, acc_ax = [a for a in drawn.fig.axes if a.get_title() in ("loss", "accuracy")]
    assert loss_ax.get_xlabel() == acc_ax.get_xlabel() and loss_ax.get_xlim() == acc_ax.get_xlim()
    steps = [h["step"] for h in d["history"]]
    train_line = next(ln for ln in acc_ax.get_lines() if ln.get_label().startswith("train"))
    assert list(train_line.get_xdata()) == steps and "running" in train_line.get_label()
    assert "running mean over each epoch's batches" in drawn.caption


def test_the_same_weights_are_on_the_same_scale_in_every_figure_of_a_run(runner, tmp_path):
    """conv1's filters, their change figure and their evolution (sheet and GIF) state one weight scale: the largest
    |weight| of the drawn filters over every snapshot; conv2's change figure and evolution sheet, that of its tiles
    (each filter summed over its inputs)."""
    import re

    from conftest import load_snapshots

    from filterlab.cli import app

    r = runner.invoke(app, ["train", str(REPO / "configs" / "smoke_two_conv.yaml"), "--out", str(tmp_path), "-q",
                            "--set", f"data.root={FIXTURES / 'mnist-mini'}", "--set", "data.train_limit=128"])
    assert r.exit_code == 0, r.output
    run = Path(r.output.strip().splitlines()[-1])
    w = load_snapshots(run)["weights"]["conv1"].numpy()
    want = f"{np.abs(w).max():.3g}"
    # conv2's filters, one tile each summed over their inputs: its change figure and its evolution sheet agree
    summed = f"{np.abs(load_snapshots(run)['weights']['conv2'].numpy()[:, :64].sum(axis=2)).max():.3g}"
    for name, scale in (("conv1_filters", want), ("filter_change_conv1", want), ("evolution", want),
                        ("evolution_gif", want), ("filter_change_conv2", summed), ("evolution_conv2", summed)):
        caption = json.loads((run / "figures" / f"{name}.json").read_text())["caption"]
        first = re.search(r"-(\d[\d.e-]*\d) to \+(\d[\d.e-]*\d)", caption)
        assert first and first.group(1) == first.group(2) == scale, (name, caption)


@pytest.mark.slow
def test_insight_alt_text_says_the_grid_drawn(runner, tmp_path, monkeypatch):
    """Feature visualisation, top patches and filter change: the alt text's rows and columns are those drawn (the
    block titles', the filter numbers' distinct positions)."""
    import re

    from filterlab.cli import app
    from filterlab.insight import entry

    r = runner.invoke(app, ["train", str(REPO / "configs" / "smoke_two_conv.yaml"), "--out", str(tmp_path), "-q",
                            "--set", f"data.root={FIXTURES / 'mnist-mini'}", "--set", "data.train_limit=64",
                            "--set", "output.figures=false", "--set", "model.channels=[12, 8]"])
    assert r.exit_code == 0, r.output
    run = Path(r.output.strip().splitlines()[-1])
    figs = {}
    original = entry.save
    monkeypatch.setenv("FILTERLAB_NO_FORK", "1")
    monkeypatch.setattr(entry, "save", lambda fig, out, name, *a, **k: figs.setdefault(name, fig)
                        and original(fig, out, name, *a, **k))
    r = runner.invoke(app, ["visualize", str(run), "--insight", "--out", str(tmp_path / "figs")])
    assert r.exit_code == 0, r.output
    for name in ("feature_vis_conv1", "top_patches_conv1"):
        alt = json.loads((tmp_path / "figs" / f"{name}.json").read_text())["alt"]
        titles = [t for t in figs[name].axes[0].texts]  # one title per block, above it
        rows = len({round(t.get_position()[1], 3) for t in titles})
        cols = len({round(t.get_position()[0], 3) for t in titles})
        m = re.search(r"(\d+) rows? of (\d+)", alt) or re.search(r"A (\d+) by (\d+) grid", alt)
        assert m and (int(m.group(1)), int(m.group(2))) == (rows, cols) and len(titles) == 12, (name, alt)
    for name, n in (("filter_change_conv1", 12), ("filter_change_conv2", 8)):  # three numbered grids, one layout
        meta = json.loads((tmp_path / "figs" / f"{name}.json").read_text())
        panels = [ax for ax in figs[name].axes if ax.texts]
        assert len(panels) == 3
        for ax in panels:
            rows = len({round(t.get_position()[1], 3) for t in ax.texts})
            cols = len({round(t.get_position()[0], 3) for t in ax.texts})
            assert f"Three {rows} by {cols} grids of {n} " in meta["alt"] and f"a {rows}x{cols} grid" in \
                meta["caption"] and len(ax.texts) == n, (name, meta["alt"])


def test_the_report_shows_insight_figures_in_teaching_order(tmp_path):
    """A run's figures, then per layer the insight figures as a lesson reads them: how the filters changed, what
    excites them in the data, what input excites them most, and where the evidence for a class lies."""
    from PIL import Image

    from filterlab.viz.report import figure_entries

    names = ["saliency", "feature_vis_conv1", "top_patches_conv2", "curves", "filter_change_conv2", "top_patches_conv1",
             "weights_conv1", "feature_vis_conv2", "filter_change_conv1", "conv1_filters", "zz_other"]
    for n in names:
        Image.new("RGB", (4, 4)).save(tmp_path / f"{n}.png")
        (tmp_path / f"{n}.json").write_text(json.dumps({"figure": f"{n}.png", "caption": "c", "alt": "a"}))
    assert [e[0] for e in figure_entries(tmp_path)] == [
        "conv1_filters", "curves", "filter_change_conv1", "filter_change_conv2", "weights_conv1", "top_patches_conv1",
        "top_patches_conv2", "feature_vis_conv1", "feature_vis_conv2", "saliency", "zz_other"]
