"""TensorBoard event files, read back with TensorBoard's own reader (EventAccumulator): the scalars are the values in
metrics.jsonl, an image at a snapshot step is that snapshot's grid, the HParams hold the config, a finished run
exported from its files reads the same, and without TensorBoard asking for it stops before any work."""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import DATASETS, REPO, need_dataset
from PIL import Image

from filterlab.board import EVENTS_DIR, images
from filterlab.board.writer import hparam_values, scalar_tags
from filterlab.cli import app
from filterlab.core.artifacts import Snapshots
from filterlab.core.runfiles import read_metrics

SMOKE = REPO / "configs" / "smoke_two_conv.yaml"
FOUR = REPO / "configs" / "single_four.yaml"
SIZES = {"scalars": 0, "images": 0, "histograms": 0, "tensors": 0}  # 0: keep every event, none sampled away


def accumulator(run_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run_dir / EVENTS_DIR), size_guidance=SIZES)
    ea.Reload()
    return ea


def train(runner, out: Path, config: Path, *sets: str) -> Path:
    args = ["train", str(config), "--tensorboard", "--out", str(out), "-q", "--set", "output.figures=false"]
    for s in sets:
        args += ["--set", s]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    return Path(r.output.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory) -> Path:
    from typer.testing import CliRunner

    need_dataset("mnist")
    return train(CliRunner(), tmp_path_factory.mktemp("tb_cls"), SMOKE, f"data.root={DATASETS / 'mnist'}",
                 "train.log_every=5", "data.train_limit=1000", "data.test_limit=500")


@pytest.fixture(scope="module")
def single_run(tmp_path_factory) -> Path:
    from typer.testing import CliRunner

    return train(CliRunner(), tmp_path_factory.mktemp("tb_single"), FOUR, "train.steps=300")


def expected_scalars(run_dir: Path) -> dict[str, dict[int, float]]:
    """tag -> {step: value} as metrics.jsonl holds them, by the writer's naming rule."""
    out: dict[str, dict[int, float]] = {}
    for rec in read_metrics(run_dir):
        for tag, value in scalar_tags(rec).items():
            assert int(rec["step"]) not in out.setdefault(tag, {}), f"{tag} twice at step {rec['step']}"
            out[tag][int(rec["step"])] = value
    return out


def check_scalars_equal_metrics(run_dir: Path) -> None:
    ea = accumulator(run_dir)
    expected = expected_scalars(run_dir)
    assert expected, "the run logged no metrics"
    tags = set(ea.Tags()["scalars"])
    for tag, by_step in expected.items():
        assert tag in tags, tag
        events = ea.Scalars(tag)
        assert [e.step for e in events] == sorted(by_step), tag  # every step once, in order
        got = np.array([e.value for e in events], dtype=np.float32)
        want = np.array([by_step[s] for s in sorted(by_step)], dtype=np.float32)  # TensorBoard keeps float32
        assert np.array_equal(got, want, equal_nan=True), tag


@pytest.mark.slow
def test_classifier_scalars_equal_metrics(classifier_run):
    check_scalars_equal_metrics(classifier_run)
    tags = accumulator(classifier_run).Tags()["scalars"]
    # loss, accuracy, learning rate, each layer's filter change and cosine with the start
    for tag in ("step/loss", "step/lr", "epoch/test_accuracy", "epoch/test_loss", "snapshot/conv1_relative_change/"
                "median", "snapshot/conv2_cosine_to_initial/filter01", "final/test_accuracy"):
        assert tag in tags, tag


@pytest.mark.slow
def test_single_image_scalars_equal_metrics_and_change_is_computed_from_snapshots(single_run):
    from filterlab.insight import change as ch

    check_scalars_equal_metrics(single_run)
    ea = accumulator(single_run)
    snaps = Snapshots.load(single_run)
    c = ch.filter_change("conv", snaps.weights["conv"].numpy(), snaps.steps.tolist())
    for tag, table in (("change/conv/relative_change/filter3", c.relative), ("change/conv/cosine_to_initial/"
                                                                              "filter3", c.cosine)):
        events = ea.Scalars(tag)
        assert [e.step for e in events] == snaps.steps.tolist()
        assert np.allclose([e.value for e in events], table[:, 2],
                           rtol=1e-6, atol=1e-6, equal_nan=True)
    assert "snapshot/weight_cosine/filter1" in ea.Tags()["scalars"]  # every filter's cosine with the image
    assert "snapshot/change_cosine/filter5" in ea.Tags()["scalars"]  # and with its change


def decoded(event) -> np.ndarray:
    with Image.open(io.BytesIO(event.encoded_image_string)) as im:
        return np.asarray(im.convert("RGB"))


@pytest.mark.slow
@pytest.mark.parametrize("fixture,layers", [("classifier_run", ("conv1", "conv2")), ("single_run", ("conv",))])
def test_the_image_at_a_snapshot_step_is_that_snapshots_grid(request, fixture, layers):
    run_dir = request.getfixturevalue(fixture)
    ea = accumulator(run_dir)
    snaps = Snapshots.load(run_dir)
    steps = snaps.steps.tolist()
    cmap = json.loads(json.dumps(read_config(run_dir)))["output"]["cmap"]
    for layer in layers:
        events = ea.Images(f"filters/{layer}")
        assert [e.step for e in events] == steps  # one image per snapshot
        for j in (1, len(steps) // 2, len(steps) - 1):
            want = images.grid(snaps.weights[layer][j].numpy(), cmap).pixels
            assert np.array_equal(decoded(events[j]), want), (layer, steps[j])
        scale = ea.Scalars(f"filters/{layer}_scale")[-1].value
        assert np.isclose(scale, float(snaps.weights[layer][-1].abs().max()), rtol=1e-6)
        desc = ea.summary_metadata[f"filters/{layer}"].summary_description
        assert "zero-centred" in desc and "own scale" in desc and "step 0" not in desc  # the same for every step


def read_config(run_dir: Path) -> dict:
    import yaml

    return yaml.safe_load((run_dir / "config.yaml").read_text())


@pytest.mark.slow
def test_feature_maps_histograms_text_and_hparams(classifier_run):
    from tensorboard.plugins.hparams import metadata

    ea = accumulator(classifier_run)
    tags = ea.Tags()
    assert {"input/sample", "feature_maps/conv1", "feature_maps/conv2"} <= set(tags["images"])
    assert {"weights/conv1", "weights/conv2", "weights/hidden", "weights/output"} <= set(tags["histograms"])
    hist = ea.Histograms("weights/conv1")
    assert hist[0].step == 0 and hist[-1].histogram_value.num == 8 * 1 * 3 * 3
    text = {t: ea.Tensors(t) for t in tags["tensors"]}
    config = text["config/text_summary"][0].tensor_proto.string_val[0].decode()
    assert "snapshot_every: 10" in config and "train_limit: 1000" in config
    summary = json.loads((classifier_run / "summary.json").read_text())
    end = text["summary/text_summary"][-1]
    assert end.step == summary["steps"] and f"{100 * summary['test_accuracy']:.2f}%" in \
        end.tensor_proto.string_val[0].decode()
    content = ea.PluginTagToContent(metadata.PLUGIN_NAME)
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    assert start.hparams["model.hidden"].number_value == 32 and start.hparams["data.dataset"].string_value == "mnist"
    assert set(start.hparams) == set(hparam_values(__import__("filterlab").experiments.load_config(
        classifier_run / "config.yaml")))
    exp = metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG])
    assert "final/test_accuracy" in [m.name.tag for m in exp.metric_infos]
    assert ea.Scalars("final/test_accuracy")[-1].value == np.float32(summary["test_accuracy"])


@pytest.mark.slow
def test_export_of_a_run_without_events_reads_the_same(classifier_run, tmp_path, runner):
    copy = tmp_path / "copy"
    shutil.copytree(classifier_run, copy)
    shutil.rmtree(copy / EVENTS_DIR)
    r = runner.invoke(app, ["tensorboard", "--export", str(copy)])
    assert r.exit_code == 0, r.output
    assert str(copy / EVENTS_DIR) in r.output
    live, exported = accumulator(classifier_run), accumulator(copy)
    check_scalars_equal_metrics(copy)
    for tag in ("filters/conv1", "filters/conv2"):
        a, b = live.Images(tag), exported.Images(tag)
        assert [e.step for e in a] == [e.step for e in b]
        assert all(np.array_equal(decoded(x), decoded(y)) for x, y in zip(a, b))
    r = runner.invoke(app, ["tensorboard", "--export", str(copy)])  # once is enough
    assert r.exit_code == 2 and "already has TensorBoard events" in r.output


def test_without_tensorboard_asking_for_it_stops_before_any_work(runner, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "tensorboard" or m.startswith(("tensorboard.",
                                                                               "torch.utils.tensorboard"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # what `import tensorboard` meets when it is not installed
    r = runner.invoke(app, ["train", str(FOUR), "--tensorboard", "--out", str(tmp_path), "-q"])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert lines == ['filterlab: error: output.tensorboard: TensorBoard is not installed in this Python; install it '
                     'with pip install -e ".[tensorboard]" (from the filterlab folder) or pip install tensorboard']
    assert list(tmp_path.iterdir()) == []  # nothing created
    r = runner.invoke(app, ["train", str(FOUR), "--set", "output.tensorboard=true", "--out", str(tmp_path), "-q"])
    assert r.exit_code == 2 and "pip install" in r.output and list(tmp_path.iterdir()) == []
    r = runner.invoke(app, ["tensorboard", str(tmp_path)])
    assert r.exit_code == 2 and "pip install" in r.output


def test_the_grid_follows_the_figures_grid_rule():
    from filterlab.viz.style import grid_shape

    w = np.arange(5 * 1 * 4 * 4, dtype=float).reshape(5, 1, 4, 4) - 40
    g = images.grid(w, "RdBu_r")
    rows, cols = grid_shape(5)  # 1 x 5
    up = images.upscale(4)
    assert g.pixels.shape == (rows * 4 * up + (rows - 1) * images.GAP_PX, cols * 4 * up + (cols - 1) * images.GAP_PX,
                              3)
    assert g.scale == 40 and g.shown == 5
    # between the tiles: gap grey; weight 0 is the map's middle colour, -40 and +40 its ends
    assert tuple(g.pixels[0, 4 * up]) == images.GAP_RGB
    import matplotlib

    lut = (matplotlib.colormaps["RdBu_r"](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)
    assert tuple(g.pixels[0, 0]) == tuple(lut[0])  # w = -40 at filter 1's top-left
    w2 = np.zeros((1, 16, 3, 3))
    g2 = images.grid(w2, "RdBu_r")
    r2, c2 = grid_shape(16)
    assert g2.channels == 16 and g2.pixels.shape[0] == (r2 * 3 + (r2 - 1) * images.SEAM_PX) * images.upscale(
        c2 * 3 + (c2 - 1) * images.SEAM_PX)


def run_held(out: Path, config: Path, hold_at: int, *sets: str):
    """A training process with TensorBoard on, held at its ``hold_at``-th step (core/hold.py); (process, run)."""
    import os
    import subprocess

    from conftest import wait_for

    from filterlab.core.hold import HOLD_ENV, HOLD_FILE

    cmd = [sys.executable, "-m", "filterlab", "train", str(config), "--tensorboard", "-q", "--out", str(out),
           "--set", "output.figures=false"]
    for s in sets:
        cmd += ["--set", s]
    p = subprocess.Popen(cmd, env={**os.environ, HOLD_ENV: str(hold_at)}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=REPO)
    wait_for(lambda: any(out.glob(f"*/*/{HOLD_FILE}")), timeout=180)
    return p, next(out.glob(f"*/*/{HOLD_FILE}")).parent


def steps_on_disk(run_dir: Path, tag: str) -> list[int]:
    try:
        return [e.step for e in accumulator(run_dir).Scalars(tag)]
    except KeyError:
        return []


def check_each_step_once(run_dir: Path) -> None:
    """Every scalar, image and histogram tag holds each step once, and the scalars are metrics.jsonl's."""
    ea = accumulator(run_dir)
    for kind, read in (("scalars", ea.Scalars), ("images", ea.Images), ("histograms", ea.Histograms)):
        for tag in ea.Tags()[kind]:
            steps = [e.step for e in read(tag)]
            assert steps == sorted(set(steps)), (kind, tag)
    check_scalars_equal_metrics(run_dir)
    snaps = Snapshots.load(run_dir).steps.tolist()
    first = next(iter(Snapshots.load(run_dir).weights))
    assert [e.step for e in ea.Images(f"filters/{first}")] == snaps  # no snapshot missing either


@pytest.mark.slow
def test_a_killed_and_resumed_classifier_has_each_step_once(tmp_path):
    import json as _json
    import os
    import signal
    import subprocess

    from conftest import wait_for

    need_dataset("mnist")
    # 1,000 digits in batches of 64: 16 steps an epoch, a checkpoint at step 16; held at step 21, in epoch 2
    p, run = run_held(tmp_path, SMOKE, 16 + 2 + 5, f"data.root={DATASETS / 'mnist'}", "data.train_limit=1000",
                      "data.test_limit=500", "train.epochs=2", "train.log_every=1")
    wait_for(lambda: max(steps_on_disk(run, "step/loss"), default=0) > 16, timeout=60)  # past the checkpoint
    os.kill(p.pid, signal.SIGKILL)  # as a lost node or the OOM killer would: no chance to clean up
    p.communicate(timeout=60)
    assert _json.loads((run / "meta.json").read_text())["status"] == "running"  # it never knew
    r = subprocess.run([sys.executable, "-m", "filterlab", "train", "--resume", str(run), "-q"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    meta = _json.loads((run / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["resumed"][0]["from_step"] == 16
    assert len(list((run / EVENTS_DIR).glob("events.out.tfevents.*"))) == 2  # the killed stream and its sequel
    check_each_step_once(run)
    assert steps_on_disk(run, "step/loss") == list(range(1, 33))


@pytest.mark.slow
def test_an_interrupted_and_resumed_single_image_run_has_each_step_once(tmp_path):
    import os
    import signal
    import subprocess

    p, run = run_held(tmp_path, FOUR, 120, "train.steps=400")
    os.kill(p.pid, signal.SIGTERM)  # stops at its next step, with a checkpoint there
    p.communicate(timeout=60)
    assert p.returncode == 128 + signal.SIGTERM
    r = subprocess.run([sys.executable, "-m", "filterlab", "train", "--resume", str(run), "-q"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    check_each_step_once(run)
    assert steps_on_disk(run, "snapshot/loss") == Snapshots.load(run).steps.tolist()


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["classifier_run", "single_run"])
def test_the_estimate_counts_the_event_files(request, fixture):
    from filterlab import experiments
    from filterlab.preflight import check_geometry

    run_dir = request.getfixturevalue(fixture)
    cfg = experiments.load_config(run_dir / "config.yaml")
    est = experiments.card(cfg.kind).estimate(cfg, check_geometry(cfg), None)
    written = sum(p.stat().st_size for p in (run_dir / EVENTS_DIR).iterdir())
    assert written <= est.event_bytes <= 10 * written, (written, est.event_bytes)  # rough, and on the safe side
    off = experiments.load_config(run_dir / "config.yaml", ["output.tensorboard=false"])
    assert experiments.card(cfg.kind).estimate(off, check_geometry(off), None).event_bytes == 0


def test_event_files_beyond_the_limit_are_refused_before_anything_starts(runner, tmp_path):
    # 4,000 snapshots of 64 full-size filters: 0.8 GB of snapshots (accepted), over 1 GiB of events (not)
    args = ["train", str(FOUR), "--tensorboard", "--set", "model.filters=64", "--set", "train.steps=200000",
            "--set", "output.snapshot_every=50", "--out", str(tmp_path), "-q"]
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    assert r.output.startswith("filterlab: error: output.tensorboard: the TensorBoard event files would take about ")
    assert "turn output.tensorboard off" in r.output and list(tmp_path.iterdir()) == []
    r = runner.invoke(app, args[:2] + args[3:-3] + ["--set", "train.steps=10", "--out", str(tmp_path), "-q",
                                                    "--set", "output.figures=false"])
    assert r.exit_code == 0, r.output  # the same run, short, without TensorBoard: accepted


@pytest.mark.slow
def test_the_python_api_writes_events_too(tmp_path):
    import filterlab as fl

    run = fl.train(FOUR, tmp_path, overrides={"output.tensorboard": True, "train.steps": 100,
                                               "output.figures": False}, progress=False)
    assert run.status == "completed"
    check_scalars_equal_metrics(run.path)


@pytest.mark.parametrize("what", ["fifo", "link", "too much"])
def test_an_event_folder_holding_a_fifo_a_link_or_too_much_is_refused_by_name(runner, tmp_path, monkeypatch, what):
    """A run folder is untrusted input: TensorBoard would hang on a FIFO and follow a link out of the run, so
    `filterlab tensorboard` refuses the run in one line naming the entry, before any TensorBoard starts."""
    import os

    from filterlab import board
    from filterlab.board import serve

    run = train(runner, tmp_path / "out", FOUR, "train.steps=20")
    events = run / EVENTS_DIR
    assert any(p.name.startswith("events.out.tfevents.") for p in events.iterdir())
    if what == "fifo":
        bad = events / "events.out.tfevents.0.fifo"
        os.mkfifo(bad)
    elif what == "link":
        secret = tmp_path / "private.txt"
        secret.write_text("not the run's")
        bad = events / "events.out.tfevents.0.link"
        bad.symlink_to(secret)
    else:
        bad = events
        monkeypatch.setattr(board, "EVENTS_LIMIT_BYTES", 100)
    started = []
    monkeypatch.setattr(serve.TensorBoard, "__init__", lambda *a, **k: started.append(a))
    r = runner.invoke(app, ["tensorboard", str(run)])
    assert r.exit_code == 2, r.output
    lines = [x for x in r.output.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and str(bad) in lines[0] and "Traceback" not in r.output, r.output
    assert started == []
