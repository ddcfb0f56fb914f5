"""The public Python API (``import filterlab as fl``): the same validation and messages as the command line, the same
runs, the kernel's state left as it was, and results that show themselves in a notebook."""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, need_dataset, wait_for

import filterlab as fl
from filterlab.cli import app

FOUR = REPO / "configs" / "single_four.yaml"
QUICK = {"train.steps": 60, "output.snapshot_every": 20}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# the summary fields that measure time, which two identical runs do not share
TIMING_FIELDS = {"train_seconds", "seconds_to_target", "images_per_second", "run_id"}


def test_import_is_lazy_and_load_config_needs_no_torch():
    code = ("import sys, filterlab as fl; assert 'torch' not in sys.modules; "
            f"c = fl.load_config({str(FOUR)!r}, overrides={{'train.steps': 7}}); assert c.train.steps == 7; "
            "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules; print(sorted(fl.__all__))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 0, p.stderr
    assert "train" in p.stdout and "open_run" in p.stdout


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        fl.trian  # noqa: B018


# (config data, the key, the value and the accepted values its message must name)
BAD = {
    "unknown key": ({"kind": "single_image", "train": {"lrr": 0.1}}, "train.lrr", "lrr", "'lr'"),
    "unknown optimizer": ({"kind": "single_image", "train": {"optimizer": "rmsprop"}}, "train.optimizer",
                          "'rmsprop'", "adam, adamw, sgd"),
    "wrong type": ({"kind": "single_image", "train": {"steps": "many"}}, "train.steps", "'many'", "an integer"),
    "out of range": ({"kind": "single_image", "model": {"filters": 0}}, "model.filters", "0", ">= 1"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_config_raises_one_error_naming_key_value_and_accepted_as_the_cli_does(case, runner, tmp_path):
    data, key, value, accepted = BAD[case]
    with pytest.raises(fl.ConfigError) as info:
        fl.load_config(data)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert key in message and value in message and accepted in message, message
    assert "--" not in message  # a library message names no command-line flag
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    r = runner.invoke(app, ["config", str(path)])
    assert r.exit_code == 2
    assert r.output.strip() == f"filterlab: error: {path}: {message}"
    # the same value given with --set: the CLI names the file and its --set options before the same message
    section, name = key.split(".")
    base = tmp_path / "base.yaml"
    base.write_text("kind: single_image\n")
    setting = f"{key}={yaml.safe_dump(data[section][name], default_flow_style=True).strip().removesuffix('...').strip()}"
    r = runner.invoke(app, ["config", str(base), "--set", setting])
    assert r.exit_code == 2
    assert r.output.strip() == f"filterlab: error: {base} with --set {setting}: {message}"


def test_override_values_are_taken_as_given_not_read_as_yaml():
    assert fl.load_config(FOUR, overrides={"name": "yes"}).name == "yes"
    with pytest.raises(fl.ConfigError, match="name: expected a string, got boolean true"):
        fl.load_config(FOUR, overrides=["name=yes"])  # the text form is read as YAML, as --set is
    cfg = fl.load_config({"kind": "single_image"}, overrides={"train.steps": 200, "model.filters": 3})
    assert (cfg.train.steps, cfg.model.filters) == (200, 3)


def test_a_config_object_built_in_python_is_validated_before_anything_runs(tmp_path):
    cfg = fl.load_config(FOUR)
    bad = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, optimizer="rmsprop"))
    with pytest.raises(fl.ConfigError, match="train.optimizer: 'rmsprop' is not one of adam, adamw, sgd"):
        fl.train(bad, out=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return fl.open_run(run_dir).model().state_dict()


def test_the_cli_from_yaml_and_fl_train_from_a_dict_make_the_same_run(runner, tmp_path):
    r = runner.invoke(app, ["train", str(FOUR), "--set", "train.steps=60", "--set", "output.snapshot_every=20",
                            "--seed", "3", "--out", str(tmp_path / "cli"), "-q"])
    assert r.exit_code == 0, r.output
    cli_run = fl.open_run(r.output.strip().splitlines()[-1])
    data = {**yaml.safe_load(FOUR.read_text()), "seed": 3, "train": {"steps": 60}, "output": {"snapshot_every": 20}}
    api_run = fl.train(data, out=tmp_path / "api", progress=False)
    assert api_run.status == cli_run.status == "completed"
    a, b = final_weights(cli_run.path), final_weights(api_run.path)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert TIMING_FIELDS & set(api_run.summary), "the summary has no timing field: the exclusion list is stale"
    strip = lambda s: {k: v for k, v in s.items() if k not in TIMING_FIELDS}
    assert strip(api_run.summary) == strip(cli_run.summary)
    assert api_run.config == cli_run.config


def scramble() -> None:
    """Global state as a training loop might leave it."""
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = True
    torch.set_flush_denormal(True)
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    dict.__setitem__(matplotlib.rcParams, "backend", "pdf")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def state() -> dict:
    from filterlab.state import flush_denormal_enabled

    return {"threads": torch.get_num_threads(), "det": torch.are_deterministic_algorithms_enabled(),
            "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
            "benchmark": torch.backends.cudnn.benchmark, "denormal": flush_denormal_enabled(),
            "torch": torch.get_rng_state(), "numpy": np.random.get_state()[1].tolist(), "python": random.getstate(),
            "backend": dict.__getitem__(matplotlib.rcParams, "backend"),
            "sigint": signal.getsignal(signal.SIGINT), "sigterm": signal.getsignal(signal.SIGTERM)}


def same(a: dict, b: dict) -> None:
    for k in a:
        if isinstance(a[k], torch.Tensor):
            assert torch.equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], k


@pytest.fixture
def odd_state():
    """A caller's own, unusual settings, put back after the test whatever happens."""
    from filterlab.state import State

    saved = State.now()
    torch.set_num_threads(3)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(1234)
    np.random.seed(1234)
    random.seed(1234)
    dict.__setitem__(matplotlib.rcParams, "backend", "svg")

    def handler(signum, frame):  # pragma: no cover - never called
        pass

    signal.signal(signal.SIGINT, handler)
    yield state()
    saved.restore()


def test_fl_train_leaves_the_process_state_as_it_found_it(odd_state, tmp_path):
    run = fl.train(FOUR, out=tmp_path, overrides=QUICK, progress=False)
    assert run.status == "completed" and run.meta["threads"] == 1  # the run used its own thread count...
    same(odd_state, state())  # ...and the caller has theirs back


def test_fl_train_restores_the_state_when_training_raises(odd_state, tmp_path, monkeypatch):
    from filterlab.experiments.single_image import experiment

    def broken(*args, **kwargs):
        scramble()
        raise RuntimeError("a bug inside the training loop")

    monkeypatch.setattr(experiment, "run", broken)
    with pytest.raises(RuntimeError, match="a bug inside the training loop"):
        fl.train(FOUR, out=tmp_path, overrides=QUICK, progress=False)
    same(odd_state, state())
    [run_dir] = list(tmp_path.glob("*/*"))
    assert fl.open_run(run_dir).status == "failed"  # recorded in the run before it was raised again


def test_an_interrupt_stops_the_run_resumably_and_fl_resume_finishes_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FILTERLAB_TEST_HOLD", "10")  # the run waits at its 10th step for the signal
    before = signal.getsignal(signal.SIGINT)

    def interrupt() -> None:
        wait_for(lambda: any(tmp_path.glob("*/*/held")), timeout=120)
        os.kill(os.getpid(), signal.SIGINT)  # what a notebook's interrupt button sends the kernel

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt, match="resumable"):
        fl.train(FOUR, out=tmp_path, overrides=QUICK, progress=False)
    assert signal.getsignal(signal.SIGINT) is before
    [run_dir] = list(tmp_path.glob("*/*"))
    stopped = fl.open_run(run_dir)
    assert stopped.status == "interrupted" and stopped.steps[-1] < 60
    done = fl.resume(stopped, progress=False)
    assert done.path == stopped.path and done.status == "completed" and done.steps[-1] == 60


@pytest.fixture(scope="module")
def four_run(tmp_path_factory) -> fl.Run:
    root = need_dataset("mnist")
    return fl.train(FOUR, out=tmp_path_factory.mktemp("four"), progress=False,
                    overrides={**QUICK, "data.root": str(root)})


def test_a_run_gives_config_summary_metrics_model_and_filters(four_run):
    run = four_run
    assert run.config.train.steps == 60 and run.summary["steps"] == 60
    assert [r["step"] for r in run.metrics] == run.steps  # a record per snapshot
    model = run.model()
    assert not model.training
    w = run.filters()
    assert w.shape == (len(run.steps), 5, 1, 28, 28)
    assert torch.equal(w[-1], model.conv.weight.detach())  # the last snapshot is the trained model
    assert fl.open_run(run.path).summary == run.summary


def test_metrics_frame_is_pandas_when_installed_and_says_so_when_not(four_run, monkeypatch):
    pandas = pytest.importorskip("pandas")
    frame = four_run.metrics_frame()
    assert isinstance(frame, pandas.DataFrame) and list(frame["step"]) == four_run.steps
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        four_run.metrics_frame()


def test_figures_carry_their_captions(four_run):
    figures = four_run.figures
    assert "evolution" in [f.name for f in figures]
    for f in figures:
        assert f.path.read_bytes().startswith(PNG_MAGIC) and f.caption and f.alt


def test_a_run_and_its_insight_results_render_html_and_png(four_run):
    assert four_run._repr_png_().startswith(PNG_MAGIC)
    page = four_run._repr_html_()
    assert "<table>" in page and "data:image/png;base64," in page and "completed" in page
    results = [four_run.filter_change(), four_run.top_patches(k=4), four_run.saliency("digit-4")]
    for r in results:
        assert r._repr_png_().startswith(PNG_MAGIC), r.name
        assert "data:image/png;base64," in r._repr_html_() and r.caption in __import__("html").unescape(
            r._repr_html_())
        assert type(r.figure()).__name__ == "Figure"


def test_insight_results_hold_the_numbers(four_run):
    change = four_run.filter_change()
    w = four_run.filters().double().flatten(2)
    rel = ((w[-1] - w[0]).norm(dim=1) / w[0].norm(dim=1)).numpy()
    assert np.allclose(change.data.relative[-1], rel)
    tops = four_run.top_patches(k=3)
    assert tops.data.values.shape == (5, 3) and np.all(np.diff(tops.data.values, axis=1) <= 0)
    s = four_run.saliency("digit-4", target=4)
    assert s.data.target == 4 and abs(float(s.data.probs.sum()) - 1) < 1e-5
    with pytest.raises(fl.InputError, match="target: 10; accepted: a class index from 0 to 9"):
        four_run.saliency("digit-4", target=10)
    with pytest.raises(fl.InputError, match="layer: 'conv9' is not one of conv"):
        four_run.filter_change("conv9")


def test_open_run_refuses_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(fl.InputError, match="not a run directory"):
        fl.open_run(tmp_path)


@pytest.mark.slow
def test_classifier_insight_results(tmp_path):
    root = need_dataset("mnist")
    run = fl.train(REPO / "configs" / "smoke_two_conv.yaml", out=tmp_path, progress=False,
                   overrides={"data.root": str(root), "data.train_limit": 512, "data.test_limit": 300})
    assert run.layers == ["conv1", "conv2"]
    fv = run.feature_vis("conv2", steps=20)
    assert fv.layer == "conv2" and fv.data.images.shape[0] == run.filters("conv2").shape[1]
    for r in (run.top_patches("conv2"), fv, run.saliency("test:first-7")):
        assert r._repr_png_().startswith(PNG_MAGIC) and "<table>" in r._repr_html_()




def test_every_public_name_resolves():
    assert set(fl.__all__) <= set(dir(fl))
    for name in fl.__all__:
        assert getattr(fl, name) is not None, name


def test_convolve_returns_the_numbers_pytorch_computes():
    x = np.arange(49, dtype=float).reshape(7, 7) % 5
    k = np.array([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]])
    c = fl.convolve(x, k, stride=2, padding=1, at=(1, 2), pool="max:2")
    ref = torch.nn.functional.conv2d(torch.tensor(x)[None, None], torch.tensor(k)[None, None], stride=2, padding=1)
    assert np.allclose(c.feature_map, ref[0, 0].numpy()) and c.output_size == (4, 4)
    assert (c.worked.row, c.worked.col) == (1, 2)
    assert c.worked.total == pytest.approx(float(ref[0, 0, 1, 2])) == pytest.approx(sum(c.worked.products))
    assert np.allclose(c.pooling.pooled, ref[0, 0].reshape(2, 2, 2, 2).amax(dim=(1, 3)).numpy())
    assert c.arithmetic()[0].endswith("= 4") and "sum = " in str(c)
    page = c._repr_html_()  # the lines and the figure's PNG
    assert "<pre>" in page and "data:image/png;base64," in page
    with pytest.raises(fl.InputError, match="at 9,9: outside the 4x4 feature map"):
        fl.convolve(x, k, stride=2, padding=1, at=(9, 9))


def test_output_size_and_shapes_follow_the_formula():
    assert fl.output_size(28, 5, padding=2) == 28 and fl.output_size(26, 3) == 24 and fl.output_size(24, 2, 2) == 12
    with pytest.raises(fl.InputError, match="does not fit"):
        fl.output_size(2, 5)
    rgb = fl.shapes(rgb=True)
    assert rgb.shape("conv1") == (6, 24, 24) and rgb.shape("pool2") == (12, 5, 5) and rgb.flattened == 108
    net = fl.shapes(REPO / "configs" / "notebook_two_conv.yaml")
    assert net.flattened == 1568 and net.shape("output") == (10,)
    field = net.receptive_field("conv2", at=(0, 0))
    assert field.size == 14 and field.region == (-6, 7, -6, 7)
    assert "<table>" in net._repr_html_() and "1568" in str(net)


def test_runs_sweep_and_compare(tmp_path):
    s = fl.sweep(FOUR, {"train.weight_decay": [0, 1e-5]}, out=tmp_path, overrides={"train.steps": 20,
                                                                                   "output.figures": False})
    assert [r.status for r in s.runs] == ["completed", "completed"]
    assert [r.config.train.weight_decay for r in s.runs] == [0, 1e-5]
    table = fl.runs(tmp_path)
    assert len(table) == 2 and {r["status"] for r in table} == {"completed"} and "completed" in str(table)
    c = fl.compare(s.runs, out=tmp_path / "cmp")
    assert "train.weight_decay" in c.table and c.varied == ["train.weight_decay"]
    assert {f.name for f in c.figures} >= {"compare_curves", "compare_filters"}


SMALL_CLASSIFIER = """kind: classifier
name: beside
device: cpu
data:
  dataset: mnist
  root: data/mnist
  download: false
  train_limit: 256
  test_limit: 200
model:
  channels: [4, 8]
  hidden: 0
train:
  epochs: 1
  batch_size: 64
output:
  figures: false
"""


def test_a_relative_data_root_in_a_config_file_is_read_from_the_files_folder(tmp_path, monkeypatch, runner):
    folder = tmp_path / "project"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "mnist").symlink_to(need_dataset("mnist"))
    (folder / "c.yaml").write_text(SMALL_CLASSIFIER)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run = fl.train(folder / "c.yaml", out="out", progress=False)
    assert run.status == "completed" and run.config.data.root == str(folder / "data" / "mnist")
    assert run.path.parent.parent == elsewhere / "out"
    r = runner.invoke(app, ["train", "../project/c.yaml", "--out", "out", "-q"])  # the CLI too, file named relatively
    assert r.exit_code == 0, r.output
    # a relative path given as an override (or in a dict) is read from the working folder, where there is none
    assert not (elsewhere / "data").exists()
    with pytest.raises(fl.InputError, match="data.root: mnist train split not found: .* in data/mnist"):
        fl.train(folder / "c.yaml", overrides={"data.root": "data/mnist"}, progress=False)


def test_the_shipped_configs_read_their_data_from_filterlab_data(monkeypatch, tmp_path):
    from filterlab.experiments.classifier.config import data_root

    cfg = fl.load_config(REPO / "configs" / "fashion_quick.yaml")
    assert cfg.data.root is None
    monkeypatch.setenv("FILTERLAB_DATA", str(tmp_path / "cache"))
    assert data_root(cfg.data) == str(tmp_path / "cache" / "fashion-mnist")
    monkeypatch.delenv("FILTERLAB_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert data_root(cfg.data) == str(tmp_path / ".cache" / "filterlab" / "data" / "fashion-mnist")


def test_fl_train_writes_tensorboard_events_when_asked(tmp_path):
    pytest.importorskip("tensorboard")
    run = fl.train(FOUR, out=tmp_path, overrides={"train.steps": 10, "output.figures": False}, progress=False,
                   tensorboard=True)
    assert run.config.output.tensorboard is True
    assert any((run.path / "tensorboard").glob("events.out.tfevents.*"))


NOTEBOOK_CELLS = [
    "import filterlab as fl, torch\nbefore = torch.get_num_threads()",
    "run = fl.train({'kind': 'single_image', 'train': {'steps': 30}, 'output': {'snapshot_every': 10}}, out=OUT)",
    "run",
    "run.filter_change()",
    "fl.convolve('seven', 'sobel_x')",
    "assert torch.get_num_threads() == before and run.status == 'completed'",
    "run.filter_change().figure()",  # a Figure drawn without pyplot shows itself too
]


@pytest.mark.slow  # a kernel start and torch's import in it: seconds
def test_in_a_notebook_kernel_the_run_shows_a_progress_bar_and_renders_itself(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"OUT = {str(tmp_path / 'out')!r}")] + \
        [nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS]
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
                            ).execute()
    train_out, run_out, change_out, conv_out = (nb.cells[i].outputs for i in (2, 3, 4, 5))
    shown = [o for o in train_out if o.get("output_type") in ("display_data", "update_display_data")]
    assert shown and "<progress value=" in shown[0]["data"]["text/html"]  # the bar, updated in place
    for outputs in (run_out, change_out, conv_out):
        data = outputs[0]["data"]
        assert "text/html" in data and "image/png" in data
    assert "<table>" in run_out[0]["data"]["text/html"] and "completed" in run_out[0]["data"]["text/html"]
    for outputs in (change_out, conv_out):  # the plain text beside the HTML is a few lines, not the arrays
        text = outputs[0]["data"]["text/plain"]
        assert len(text.splitlines()) <= 6 and "array(" not in text, text
    figure_out = nb.cells[7].outputs
    assert figure_out[0]["data"]["image/png"] and "Figure" in figure_out[0]["data"]["text/plain"]


def test_nearest_kernels_and_redraw(four_run, tmp_path):
    m = four_run.nearest_kernels()
    assert len(m.data) == 5 and all(0 <= abs(r["cosine"]) <= 1 for r in m.data)
    assert m._repr_png_().startswith(PNG_MAGIC) and "step 0" in m.caption
    figures = four_run.redraw(out=tmp_path / "again")
    assert {f.name for f in figures} >= {"evolution", "filters_raw"}
    assert all(f.path.parent == tmp_path / "again" and f.caption for f in figures)


# What each command does, a call does (the command line only parses and prints)


def test_sweep_settings_are_refused_in_the_words_of_the_call_and_of_the_command(runner, tmp_path):
    cases = [(dict(launcher="pbs"), ["--launcher", "pbs"], "launcher: 'pbs' is not one of local, slurm, submitit-local",
              "--launcher: 'pbs' is not one of local, slurm, submitit-local"),
             (dict(launcher="submitit-local", jobs=2), ["--launcher", "submitit-local", "-j", "2"],
              "jobs is for launcher local", "--jobs is for --launcher local"),
             (dict(wait=False), ["--no-wait"], "wait=False is for cluster sweeps (launcher slurm)",
              "--no-wait is for cluster sweeps (--launcher slurm)"),
             (dict(max_runs=3, seeds=2), ["--max-runs", "3", "--seeds", "2"], "max_runs", "--max-runs")]
    for kwargs, args, python_text, cli_text in cases:
        with pytest.raises(fl.InputError) as info:
            fl.sweep(FOUR, {"train.lr": [0.1, 0.2]}, out=tmp_path, **kwargs)
        assert python_text in str(info.value) and "--" not in str(info.value)
        r = runner.invoke(app, ["sweep", str(FOUR), "--grid", "train.lr=0.1,0.2", *args, "--out", str(tmp_path)])
        assert r.exit_code == 2 and cli_text in r.output, r.output
    assert not any(tmp_path.iterdir())


def test_sweep_status_of_a_folder_that_is_no_cluster_sweep_is_refused(runner, tmp_path):
    with pytest.raises(fl.InputError, match="not a cluster sweep folder"):
        fl.Sweep.open(tmp_path).status()
    r = runner.invoke(app, ["sweep", "--status", str(tmp_path)])
    assert r.exit_code == 2 and "not a cluster sweep folder" in r.output


def test_dump_config_is_what_filterlab_config_prints(runner):
    r = runner.invoke(app, ["config", str(FOUR), "--set", "train.steps=7"])
    assert r.exit_code == 0
    assert fl.dump_config(fl.load_config(FOUR, {"train.steps": 7})) == r.output
    assert fl.load_config(yaml.safe_load(r.output)) == fl.load_config(FOUR, {"train.steps": 7})


def test_the_gallery_the_colour_example_and_the_receptive_field_figure(runner, tmp_path):
    g = fl.kernel_gallery("seven")
    assert len(g.rows) >= 12 and all(out.shape == (28, 28) for _, _, out in g.rows)  # padding 1 keeps 28x28 for 3x3
    assert [p.name for p in g.save(tmp_path / "g")] == ["kernel_gallery.png"]
    ex = fl.rgb_example()
    assert ex.input.shape == (3, 26, 26) and ex.maps.shape == (6, 24, 24) and ex.pooled.shape == (6, 12, 12)
    ref = torch.nn.functional.conv2d(torch.tensor(ex.input)[None], torch.tensor(ex.kernels))[0].numpy()
    assert np.allclose(ex.maps, ref)
    r = runner.invoke(app, ["convolve", "--rgb", "--out", str(tmp_path / "cli")])
    assert r.exit_code == 0 and r.output.splitlines()[:-2] == ex.lines()
    net = fl.shapes(REPO / "configs" / "notebook_two_conv.yaml")
    fig = net.field_figure("conv2", at=(0, 0))
    assert fig.axes
    path = net.save_field(tmp_path / "f", "conv2", at=(0, 0))
    assert path.name == "receptive_field.png" and path.read_bytes().startswith(PNG_MAGIC)


@pytest.mark.slow  # TensorBoard's start: seconds
def test_tensorboard_from_python_exports_serves_and_stops(four_run, tmp_path):
    pytest.importorskip("tensorboard")
    import shutil
    import urllib.request

    copy = fl.open_run(shutil.copytree(four_run.path, tmp_path / "run"))
    with pytest.raises(fl.InputError, match="none of these runs has TensorBoard events"):
        fl.tensorboard(copy)
    assert copy.export_tensorboard() == copy.path / "tensorboard"
    board = fl.tensorboard([copy])
    try:
        assert board.running and [run for _, run in board.runs] == [copy.path.resolve()]
        with urllib.request.urlopen(board.url, timeout=30) as page:
            assert page.status == 200
        assert board.url in board._repr_html_()
    finally:
        board.stop()
    assert not board.running
