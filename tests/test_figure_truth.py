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
    for ax in drawn.fig.axes:
        assert "best 5x5 patch" in ax.get_title()
        spans = sorted(tuple(np.round(p.get_extents().bounds, 6)) for p in ax.patches)
        ys = sorted({round(float(v), 6) for p in ax.patches for v in p.get_path().transformed(p.get_patch_transform()
                                                                                            ).vertices[:, 1]})
        assert len(spans) == 2 and ys == pytest.approx(sorted([-hi, -lo, lo, hi]), abs=1e-6)
    assert f"|cosine| {lo:.2f} to {hi:.2f}" in drawn.caption and "576 positions" in drawn.caption
    start = np.abs(d["similarity"]["weight_cosine"][0])
    assert ((start > chance.min()) & (start < chance.max())).all()


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
    |weight| of the drawn filters over every snapshot."""
    import re

    from conftest import load_snapshots

    from filterlab.cli import app

    r = runner.invoke(app, ["train", str(REPO / "configs" / "smoke_two_conv.yaml"), "--out", str(tmp_path), "-q",
                            "--set", f"data.root={FIXTURES / 'mnist-mini'}", "--set", "data.train_limit=128"])
    assert r.exit_code == 0, r.output
    run = Path(r.output.strip().splitlines()[-1])
    w = load_snapshots(run)["weights"]["conv1"].numpy()
    want = f"{np.abs(w).max():.3g}"
    for name in ("conv1_filters", "filter_change_conv1", "evolution", "evolution_gif"):
        caption = json.loads((run / "figures" / f"{name}.json").read_text())["caption"]
        first = re.search(r"-(\d[\d.e-]*\d) to \+(\d[\d.e-]*\d)", caption)
        assert first and first.group(1) == first.group(2) == want, (name, caption)


@pytest.mark.slow
def test_insight_alt_text_says_the_grid_drawn(runner, tmp_path, monkeypatch):
    """Feature visualisation and top patches: the alt text's rows and columns are those of the drawn blocks."""
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
