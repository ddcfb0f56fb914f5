"""Figures from a run directory alone: regenerated equal, the evolution GIF and sheet, reports, runs, compare."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, REPO, load_snapshots
from PIL import Image

from filterlab.cli import app
from filterlab.viz import evolution as figures
from filterlab.viz import style

FOUR = REPO / "configs" / "single_four.yaml"
SMOKE = REPO / "configs" / "smoke_two_conv.yaml"
MINI = ["--set", f"data.root={FIXTURES / 'mnist-mini'}", "--set", "data.train_limit=0", "--set", "data.test_limit=0"]


def train(runner, out: Path, *args: str) -> Path:
    r = runner.invoke(app, ["train", *args, "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    return Path(r.output.strip().splitlines()[-1])


def pixels(fig_dir: Path) -> dict[str, np.ndarray]:
    out = {}
    for p in sorted(fig_dir.glob("*.png")) + sorted(fig_dir.glob("*.gif")):
        with Image.open(p) as im:
            frames = []
            for i in range(getattr(im, "n_frames", 1)):
                im.seek(i)
                frames.append(np.asarray(im.convert("RGB")))
        out[p.name] = np.stack(frames)
    return out


@pytest.fixture(scope="module")
def single_run(tmp_path_factory):
    from typer.testing import CliRunner

    return train(CliRunner(), tmp_path_factory.mktemp("single"), str(FOUR), "--set", "train.steps=300")


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory):
    from typer.testing import CliRunner

    return train(CliRunner(), tmp_path_factory.mktemp("cls"), str(SMOKE), *MINI, "--set", "output.snapshot_every=2")


@pytest.mark.parametrize("which", ["single_run", "classifier_run"])
def test_deleted_figures_come_back_equal(runner, request, which):
    run = request.getfixturevalue(which)
    before = pixels(run / "figures")
    sidecars = {p.name: p.read_text() for p in (run / "figures").glob("*.json")}
    assert len(before) >= 6
    shutil.rmtree(run / "figures")
    (run / "report.html").unlink()
    r = runner.invoke(app, ["visualize", str(run)])
    assert r.exit_code == 0, r.output
    after = pixels(run / "figures")
    assert after.keys() == before.keys()
    for name in before:
        assert np.array_equal(before[name], after[name]), name
    assert {p.name: p.read_text() for p in (run / "figures").glob("*.json")} == sidecars
    assert (run / "report.html").is_file()


def test_gif_has_one_frame_per_snapshot_on_a_fixed_scale(single_run):
    snaps = load_snapshots(single_run)
    with Image.open(single_run / "figures" / "evolution.gif") as im:
        assert im.n_frames == len(snaps["steps"])
    filters = snaps["filters"][:, :, 0].numpy()
    vlim = style.sym_limit(filters)
    frames = figures.gif_frames(filters, snaps["steps"].numpy(), snaps["loss"].numpy(), "RdBu_r", vlim)
    assert len(frames) == len(snaps["steps"])
    lay = figures.gif_layout(5, 28, False)
    for j in (0, len(frames) // 2, len(frames) - 1):  # every frame maps weights with the same global scale
        for i in range(5):
            x, y = lay.tile_origin(i)
            tile = np.asarray(frames[j])[y:y + 28 * lay.scale:lay.scale, x:x + 28 * lay.scale:lay.scale]
            assert np.array_equal(tile, figures.gif_indices(filters[j, i], vlim))
    assert len({f.getpalette()[:750] == frames[0].getpalette()[:750] for f in frames}) == 1
    caption = json.loads((single_run / "figures" / "evolution_gif.json").read_text())["caption"]
    assert f"{vlim:.3g}" in caption and "fixed scale" in caption


def test_contact_sheet_matches_the_snapshots(single_run):
    snaps = load_snapshots(single_run)
    filters, steps = snaps["filters"][:, :, 0].numpy(), snaps["steps"].numpy()
    cols = figures.evolution_columns(steps)
    assert cols[0] == 0 and cols[-1] == len(steps) - 1 and len(cols) <= 12
    sheet = figures.sheet_panels(filters, cols)
    assert sheet.shape == (5, len(cols), 28, 28)
    for i in range(5):
        for j, c in enumerate(cols):
            assert np.array_equal(sheet[i, j], filters[c, i])
    caption = json.loads((single_run / "figures" / "evolution.json").read_text())["caption"]
    assert f"{len(steps)} snapshot steps" in caption


def test_visualize_options_on_a_classifier(runner, classifier_run, tmp_path):
    out = tmp_path / "figs"
    r = runner.invoke(app, ["visualize", str(classifier_run), "--image", "test:first-3", "--layer", "conv2",
                            "--cmap", "PuOr_r", "--out", str(out)])
    assert r.exit_code == 0, r.output
    cap = json.loads((out / "feature_maps.json").read_text())["caption"]
    assert "label: 3" in cap and "conv2" in cap and "conv1" not in cap
    assert "PuOr_r" in json.loads((out / "conv1_filters.json").read_text())["caption"]
    r = runner.invoke(app, ["visualize", str(classifier_run), "--image", "digit-5", "--out", str(out)])
    assert r.exit_code == 0 and "label: 5" in json.loads((out / "feature_maps.json").read_text())["caption"]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--image", "MISSING.png"], "MISSING.png"),
        (["--layer", "conv9"], "conv9"),
        (["--cmap", "jet"], "colour-blind-safe"),
    ],
)
def test_visualize_bad_options(runner, classifier_run, tmp_path, args, needle):
    if args[0] == "--image":
        bad = tmp_path / "MISSING.png"
        bad.write_bytes(b"not an image")
        args = ["--image", str(bad)]
    r = runner.invoke(app, ["visualize", str(classifier_run), *args, "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and needle in r.output, r.output


def test_report_embeds_every_figure(single_run):
    html = (single_run / "report.html").read_text()
    figs = sorted((single_run / "figures").glob("*.json"))
    assert html.count('<img src="data:image/') == len(figs) == 7
    for side in figs:
        meta = json.loads(side.read_text())
        assert meta["caption"].split(" ")[0] in html
    assert "How much each filter looks like the image" in html and "config" in html


def _browser_check(report: Path) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(report.resolve().as_uri())
        page.wait_for_load_state("load")
        images = page.evaluate("""() => Array.from(document.images).map(i => ({
            alt: i.alt, ok: i.complete && i.naturalWidth > 0, shown: i.getBoundingClientRect().width > 0}))""")
        browser.close()
    return {"errors": errors, "images": images}


def test_report_in_a_real_browser(single_run, classifier_run, tmp_path):
    if shutil.which("chromium") is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is missing: .ci/run installs it")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    for run in (single_run, classifier_run):
        result = _browser_check(run / "report.html")
        assert result["errors"] == []
        n = len(list((run / "figures").glob("*.json")))
        assert len(result["images"]) == n and all(i["ok"] and i["shown"] and i["alt"] for i in result["images"])
    broken = tmp_path / "report.html"  # the check must fail when an image is missing or corrupt
    html = (single_run / "report.html").read_text()
    start = html.index("data:image/png;base64,") + len("data:image/png;base64,")
    broken.write_text(html[:start] + "AAAA" + html[start + 400:])
    result = _browser_check(broken)
    assert sum(not i["ok"] for i in result["images"]) == 1


def test_compare_labels_columns_by_weight_decay(runner, tmp_path):
    runs = [train(runner, tmp_path / "runs", str(FOUR), "--set", "train.steps=200", "--set", f"train.weight_decay={wd}")
            for wd in ("0", "1e-5", "0.001")]
    out = tmp_path / "cmp"
    r = runner.invoke(app, ["compare", *map(str, runs), "--out", str(out)])
    assert r.exit_code == 0, r.output
    data = json.loads((out / "compare.json").read_text())
    assert data["varying"] == ["train.weight_decay"]
    assert [row["label"] for row in data["runs"]] == ["train.weight_decay=0.0", "train.weight_decay=1e-05",
                                                     "train.weight_decay=0.001"]
    alt = json.loads((out / "compare_filters.json").read_text())["alt"]
    assert all(lbl in alt for lbl in ("train.weight_decay=0.0", "train.weight_decay=1e-05", "train.weight_decay=0.001"))
    assert (out / "compare_filters.png").is_file() and (out / "compare_curves.png").is_file()
    assert "train.weight_decay" in r.output and (out / "compare.csv").read_text().count("\n") == 4


def test_compare_refuses_mixed_kinds(runner, single_run, classifier_run, tmp_path):
    r = runner.invoke(app, ["compare", str(single_run), str(classifier_run), "--out", str(tmp_path)])
    assert r.exit_code == 2 and "different kinds" in r.output


def test_runs_json_lists_every_run_with_its_status(runner, tmp_path, monkeypatch):
    out = tmp_path / "runs"
    done = train(runner, out, str(FOUR), "--set", "train.steps=50", "--set", "train.lr=0.01")
    r = runner.invoke(app, ["train", str(FOUR), "--out", str(out), "-q", "--set", "train.optimizer=sgd",
                            "--set", "train.lr=1e30", "--set", "train.steps=100"])
    diverged = Path(r.output.strip().splitlines()[-1])
    from filterlab import experiments
    from filterlab.experiments.single_image import train as single_image_train
    from filterlab.lifecycle import StopFlag, train_config

    class Now(StopFlag):
        def __call__(self):
            self.signum = 2
            return True

    interrupted = train_config(experiments.load_config(FOUR, ["train.steps=500"]), out_root=out, stop=Now()).run_dir

    def boom(*a, **k):
        raise RuntimeError("simulated failure while measuring")

    monkeypatch.setattr(single_image_train, "similarity", boom)
    failed = train_config(experiments.load_config(FOUR, ["train.steps=50"]), out_root=out).run_dir
    monkeypatch.undo()

    p = subprocess.run([sys.executable, "-c", "import sys; from filterlab.cli import app; sys.argv=['filterlab', "
                        f"'runs', {str(out)!r}, '--json']; app(standalone_mode=False); "
                        "assert 'torch' not in sys.modules, 'runs imported torch'"],
                       capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 0, p.stderr
    listed = {Path(x["run"]): x for x in json.loads(p.stdout)}
    assert set(listed) == {done, diverged, interrupted, failed}
    assert listed[done]["status"] == "completed" and listed[done]["changes"] == {
        "name": "single_four", "train.lr": 0.01, "train.steps": 50}
    assert listed[diverged]["status"] == "diverged"
    assert listed[interrupted]["status"] == "interrupted"
    assert listed[failed]["status"] == "failed" and "simulated failure" in listed[failed]["error"]
    assert listed[done]["metrics"]["final_loss"] is not None
    table = runner.invoke(app, ["runs", str(out)])
    assert table.exit_code == 0 and max(map(len, table.output.splitlines())) <= 100
    assert all(str(run.relative_to(out)) in table.output for run in listed)
