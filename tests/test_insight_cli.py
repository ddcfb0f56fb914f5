"""``filterlab visualize RUN --insight`` and ``--image``: the insight figures of a finished run, end to end."""

from __future__ import annotations

import json

from conftest import REPO, need_dataset

from filterlab.cli import app


def test_visualize_insight_and_saliency_of_a_classifier_run(runner, tmp_path):
    root = need_dataset("mnist")
    args = ["train", str(REPO / "configs" / "smoke_two_conv.yaml"), "-q", "--out", str(tmp_path),
            "--set", f"data.root={root}", "--set", "data.test_limit=500", "--set", "threads=1"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    run = tmp_path / "smoke_two_conv"
    run = next(run.iterdir())
    res = runner.invoke(app, ["visualize", str(run), "--insight", "--image", "test:first-7"])
    assert res.exit_code == 0, res.output
    figs = run / "figures"
    for name in ("filter_change_conv1", "weights_conv1", "top_patches_conv1", "top_patches_conv2",
                 "feature_vis_conv1", "feature_vis_conv2", "saliency"):
        assert (figs / f"{name}.png").is_file() and json.loads((figs / f"{name}.json").read_text())["caption"]
    assert json.loads((figs / "top_patches_conv1_data.json").read_text())["images_searched"] == 500
    summary = json.loads((run / "summary.json").read_text())
    line = next(x for x in res.output.splitlines() if "predicted" in x)
    assert line.startswith("mnist test image #0 (label 7): predicted")
    assert "saliency.png" in (run / "report.html").read_text()
    # the same image the run itself explained in its summary gets the same prediction
    assert summary["sample"]["description"] == "mnist test image #0"
    assert f"predicted {summary['sample']['predicted']} with probability " \
           f"{100 * summary['sample']['probability']:.1f}%" in line


def test_insight_of_a_single_image_run_without_a_data_folder_uses_the_shipped_test_split(runner, tmp_path):
    res = runner.invoke(app, ["train", str(REPO / "configs" / "single_four.yaml"), "-q", "--out", str(tmp_path),
                              "--set", "train.steps=20"])
    assert res.exit_code == 0, res.output
    run = next((tmp_path / "single_four").iterdir())
    assert json.loads((run / "summary.json").read_text())["class_outputs"]["images"] == 10000
    assert not (run / "figures" / "class_outputs.png").exists()  # drawn on request only: it is the costly one
    res = runner.invoke(app, ["visualize", str(run), "--insight"])
    assert res.exit_code == 0, res.output
    assert (run / "figures" / "filter_change.png").is_file() and (run / "figures" / "class_outputs.png").is_file()
    caption = json.loads((run / "figures" / "class_outputs.json").read_text())["caption"]
    assert "on all 10000 test images" in caption
