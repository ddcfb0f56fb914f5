"""The single-image kind, the article's claim tested: every trained filter on every MNIST test digit, by class."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import REPO, load_model

from filterlab import experiments
from filterlab.experiments.single_image.classes import auc_vs_rest, class_output_figure, load_test_split, measure
from filterlab.insight.figures import draw_class_outputs
from filterlab.lifecycle import train_config


@pytest.fixture(scope="module")
def article_run(tmp_path_factory):
    # the preset as shipped, no data folder: the test split comes from the package, as on a fresh machine
    cfg = experiments.load_config(REPO / "configs" / "single_four.yaml", ["output.figures=false"])
    assert cfg.data.root is None
    out = train_config(cfg, out_root=tmp_path_factory.mktemp("runs"))
    assert out.status == "completed", out.error
    model, ckpt = load_model(out.run_dir)
    return model, ckpt, None, out.run_dir


def test_article_preset_per_class_outputs_for_all_ten_classes(article_run, tmp_path):
    model, ckpt, root, run_dir = article_run
    w, b = model.conv.weight.detach(), model.conv.bias.detach()
    summary = json.loads((run_dir / "summary.json").read_text())["class_outputs"]  # what `filterlab train` wrote
    cos = np.array([f["weight_cosine_end"] for f in json.loads((run_dir / "summary.json").read_text())["filters"]])
    co = measure(w, b, "raw", int(ckpt["target"]), root, cos)
    figs = [class_output_figure(co, tmp_path)]
    labels = load_test_split(root)[1]
    assert summary["target"] == 4 and summary["classes"] == list(range(10)) and summary["images"] == 10000
    assert len(summary["filters"]) == 5
    for f in summary["filters"]:
        counts = {c: v["count"] for c, v in f["per_class"].items()}
        assert counts == {str(c): int((labels == c).sum()) for c in range(10)}
        assert 1 <= f["target_rank_by_median"] <= 10
    side = json.loads((tmp_path / "class_outputs.json").read_text())
    assert [f.name for f in figs] == ["class_outputs"] and figs[0].path.is_file()
    assert ", ".join(f"{a:.2f}" for a in summary["auc_polarity_aware"]) in side["caption"]


def test_polarity_aware_auc_matches_a_hand_computation(article_run, tmp_path):
    """The sign comes from each filter's cosine with the "4", computed here from the weights; a negative template's
    outputs are negated; the AUC is then counted over every (4, other digit) pair. Summary, caption and the drawn
    panel titles all carry these numbers; never max(AUC, 1 - AUC)."""
    model, ckpt, root, run_dir = article_run
    images, labels = load_test_split(root)
    w = model.conv.weight.detach().double().flatten(1).numpy()  # (F, 784)
    four = ckpt["image"].double().flatten().numpy()  # raw 0-255, as the run saw it
    cos = w @ four / (np.linalg.norm(w, axis=1) * np.linalg.norm(four))
    with torch.no_grad():
        x = torch.from_numpy(images.astype(np.float32))[:, None]
        out = torch.nn.functional.conv2d(x, model.conv.weight, model.conv.bias).flatten(1).numpy()
    pos = labels == 4
    hand = []
    for f in range(out.shape[1]):
        v = out[:, f] * (-1.0 if cos[f] < 0 else 1.0)
        a, b = v[pos][:, None], v[~pos][None, :]
        hand.append(((a > b).sum() + 0.5 * (a == b).sum()) / (a.size * b.size))
    assert (cos < 0).sum() == 3  # the article's run: three negative templates
    summary = json.loads((run_dir / "summary.json").read_text())["class_outputs"]
    assert summary["polarity"] == [-1 if c < 0 else 1 for c in cos]
    assert summary["auc_polarity_aware"] == pytest.approx(hand, abs=1e-6)
    assert all(a > 0.5 for a in hand)  # signed correctly, every filter ranks the 4s higher
    assert summary["auc_target_vs_rest"] == pytest.approx([1 - a if c < 0 else a for a, c in zip(hand, cos)],
                                                          abs=1e-6)  # the raw AUC ranks the templates the other way
    co = measure(model.conv.weight.detach(), model.conv.bias.detach(), "raw", 4, root, cos)
    fig = draw_class_outputs(co.signed[:, :5], co.labels, 4, co.auc_polar[:5], co.polarity[:5], co.cosine[:5])
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [f"filter {f + 1}, cos {cos[f]:+.2f}\nAUC 4 vs rest {hand[f]:.2f}" for f in range(5)]
    caption = class_output_figure(co, tmp_path).caption
    assert ", ".join(f"{a:.2f}" for a in hand) in caption and "filters 1, 2, 5" in caption


def test_auc_equals_the_pairwise_count(article_run):
    # AUC = P(a random 4 outscores a random other digit), ties half: counted over every pair on the test split
    model, _, root, _ = article_run
    images, labels = load_test_split(root)
    with torch.no_grad():
        x = torch.from_numpy(images.astype(np.float32))[:, None]
        out = torch.nn.functional.conv2d(x, model.conv.weight, model.conv.bias).flatten(1).numpy()
    pos = labels == 4
    auc = auc_vs_rest(out, pos)
    for f in range(out.shape[1]):
        a, b = out[pos, f][:, None], out[~pos, f][None, :]
        assert auc[f] == pytest.approx(((a > b).sum() + 0.5 * (a == b).sum()) / (a.size * b.size), abs=1e-12)


def test_without_a_data_folder_the_shipped_test_split_is_used_and_a_damaged_one_is_a_note(tmp_path, monkeypatch):
    from filterlab.data import bundled

    w, b = torch.randn(5, 1, 28, 28, generator=torch.Generator().manual_seed(0)), torch.zeros(5)
    for root in (None, str(tmp_path)):  # no folder, or one without the test files: the copy in the package
        co = measure(w, b, "raw", 4, root, np.ones(5))
        assert not isinstance(co, str) and len(co.labels) == 10000 and co.filters == 5
    monkeypatch.setattr(bundled, "BUNDLED_DIR", tmp_path)  # an install that lost its copy
    note = measure(w, b, "raw", 4, None, np.ones(5))
    assert isinstance(note, str) and note.startswith("skipped: the test split is not available") and "set data.root" \
        in note


def test_at_most_max_filters_are_measured_and_the_caption_says_so(tmp_path):
    from filterlab.experiments.single_image.classes import PANELS_MAX
    from filterlab.viz.style import MAX_FILTERS

    n = MAX_FILTERS + 36
    w = torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    co = measure(w, torch.zeros(n), "unit", 4, None, np.ones(n))
    assert co.filters == MAX_FILTERS and co.total_filters == n and co.values.shape == (10000, MAX_FILTERS)
    caption = class_output_figure(co, tmp_path).caption
    assert (f"Only the first {MAX_FILTERS} of the run's {n} filters were measured; the first {PANELS_MAX} of the "
            f"{MAX_FILTERS} filters are drawn (summary.json holds all {MAX_FILTERS})") in caption
