"""The single-image kind, the article's claim tested: every trained filter on every MNIST test digit, by class."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import REPO, load_model, need_dataset

from filterlab import experiments
from filterlab.experiments.single_image.classes import auc_vs_rest, class_output_figure, load_test_split, measure
from filterlab.lifecycle import train_config


@pytest.fixture(scope="module")
def article_run(tmp_path_factory):
    root = need_dataset("mnist")
    cfg = experiments.load_config(REPO / "configs" / "single_four.yaml", [f"data.root={root}", "output.figures=false"])
    out = train_config(cfg, out_root=tmp_path_factory.mktemp("runs"))
    assert out.status == "completed", out.error
    model, ckpt = load_model(out.run_dir)
    return model, ckpt, str(root), out.run_dir


def test_article_preset_per_class_outputs_for_all_ten_classes(article_run, tmp_path):
    model, ckpt, root, run_dir = article_run
    w, b = model.conv.weight.detach(), model.conv.bias.detach()
    summary = json.loads((run_dir / "summary.json").read_text())["class_outputs"]  # what `filterlab train` wrote
    co = measure(w, b, "raw", int(ckpt["target"]), root)
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
    assert ", ".join(f"{a:.2f}" for a in summary["auc_target_vs_rest"]) in side["caption"]


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


def test_skipped_with_a_note_without_the_test_split(tmp_path):
    w, b = torch.zeros(5, 1, 28, 28), torch.zeros(5)
    note = measure(w, b, "raw", 4, None)
    assert isinstance(note, str) and "data.root is not set" in note
    note = measure(w, b, "raw", 4, str(tmp_path))
    assert isinstance(note, str) and "test split not found" in note and str(tmp_path) in note
