"""The command line, end to end: the files a run writes, its exit codes, and bad input leaving nothing behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import load_model, load_snapshots
from PIL import Image

from filterlab.cli import app

FAST = ["--set", "train.steps=120", "--set", "output.snapshot_every=40"]


def train(runner, args, out):
    result = runner.invoke(app, ["train", *args, "--out", str(out), "-q"])
    return result


def run_dirs(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("*/*") if p.is_dir())


def test_help_lists_commands_and_imports_no_torch():
    code = ("import sys; from typer.testing import CliRunner; from filterlab.cli import app; "
            "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; print(r.output); "
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "train" in out and "config" in out
    assert out.strip().endswith("NO-TORCH")


def test_every_command_has_help(runner):
    from typer.main import get_command

    for name in get_command(app).commands:
        r = runner.invoke(app, [name, "--help"])
        assert r.exit_code == 0, (name, r.output)
        assert "Usage" in r.output


def test_train_writes_a_complete_run_directory(runner, configs, tmp_path):
    r = train(runner, [str(configs / "single_four.yaml"), *FAST], tmp_path)
    assert r.exit_code == 0, r.output
    run = Path(r.output.strip().splitlines()[-1])
    assert run_dirs(tmp_path) == [run]
    assert run.parent.name == "single_four"
    for name in ("config.yaml", "meta.json", "metrics.jsonl", "summary.json", "checkpoint.pt", "snapshots.pt"):
        assert (run / name).is_file(), name
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["seed"] == 0 and meta["device"] == "cpu"
    for key in ("filterlab_version", "torch_version", "python_version", "threads", "command_line", "start_time",
                "end_time"):
        assert meta[key] is not None, key
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["train"]["steps"] == 120 and cfg["train"]["lr"] == 0.001

    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    snaps = load_snapshots(run)
    assert [x["step"] for x in lines] == snaps["steps"].tolist() == [0, 1, 2, 4, 8, 16, 32, 40, 80, 120]
    assert snaps["filters"].shape == (10, 5, 1, 28, 28)

    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 120 and summary["predicted_class"] == 4 and len(summary["filters"]) == 5
    assert summary["filters"][0]["weight_cosine_end"] == pytest.approx(lines[-1]["weight_cosine"][0])

    # the checkpoint rebuilds the model by itself and loads with weights_only=True
    model, ckpt = load_model(run)
    assert torch.equal(model.conv.weight, snaps["filters"][-1])
    x = ckpt["image"].float().view(1, 1, 28, 28)
    assert int(model(x).argmax()) == summary["predicted_class"]

    figs = {p.stem for p in (run / "figures").glob("*.png")}
    assert figs == {"filters_raw", "filters_binarised", "filter_change", "similarity", "loss", "evolution"}
    for stem in figs:
        side = json.loads((run / "figures" / f"{stem}.json").read_text())
        assert len(side["caption"]) > 40 and len(side["alt"]) > 20
        with Image.open(run / "figures" / f"{stem}.png") as im:
            assert im.text["Description"] == side["alt"] and im.text["Comment"] == side["caption"]
    gif = json.loads((run / "figures" / "evolution_gif.json").read_text())
    assert gif["figure"] == "evolution.gif" and gif["caption"] and gif["alt"]
    assert not list(run.rglob(".*.tmp")), "no temporary files left behind"


def test_seed_and_device_flags(runner, configs, tmp_path):
    r = train(runner, [str(configs / "single_four.yaml"), *FAST, "--seed", "7", "--device", "cpu"], tmp_path)
    assert r.exit_code == 0, r.output
    run = Path(r.output.strip().splitlines()[-1])
    assert yaml.safe_load((run / "config.yaml").read_text())["seed"] == 7


def test_same_seed_runs_give_identical_filters(runner, configs, tmp_path):
    outs = []
    for _ in range(2):
        r = train(runner, [str(configs / "single_four.yaml"), *FAST], tmp_path)
        assert r.exit_code == 0, r.output
        outs.append(Path(r.output.strip().splitlines()[-1]))
    assert outs[0] != outs[1]
    a, b = (load_snapshots(o) for o in outs)
    assert torch.equal(a["filters"], b["filters"])


@pytest.mark.parametrize(
    "text, sets, needles",
    [
        ("kind: single_image\ntrain:\n  lr: [1\n", [], ["invalid YAML at line 4", "opened at line 3, column 7"]),
        ("kind: single_image\ntrain:\n  lrr: 1\n", [], ["train.lrr", "did you mean 'lr'"]),
        ("kind: single_image\ntrain:\n  steps: many\n", [], ["train.steps", "integer"]),
        ("kind: single_image\ntrain:\n  lr: -1e-3\n", [], ["train.lr", "out of range"]),
        ("kind: single_image\n", ["train.lr=-1"], ["train.lr", "out of range"]),
        ("kind: single_image\ndata:\n  image: nosuch\n", [], ["data.image", "nosuch", "shipped sample"]),
        ("kind: single_image\ndata:\n  image: missing.png\n", [], ["data.image", "missing.png"]),
        ("kind: single_image\ndata:\n  target: 12\n", [], ["data.target", "0 to 9"]),
    ],
)
def test_bad_input_exits_non_zero_and_creates_no_run(runner, tmp_path, text, sets, needles):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    out = tmp_path / "out"
    r = train(runner, [str(cfg), *sum((["--set", s] for s in sets), [])], out)
    assert r.exit_code == 2, r.output
    for needle in needles:
        assert needle in r.output, (needle, r.output)
    assert run_dirs(out) == []


def test_cuda_without_gpu_is_an_error(runner, configs, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    r = train(runner, [str(configs / "single_four.yaml"), "--device", "cuda"], tmp_path)
    assert r.exit_code == 2 and "cuda" in r.output and "set device to cpu or auto" in r.output
    assert run_dirs(tmp_path) == []


def test_unreadable_png_is_refused(runner, configs, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    r = train(runner, [str(configs / "single_four.yaml"), "--set", f"data.image={bad}", "--set", "data.target=4"],
              tmp_path / "out")
    assert r.exit_code == 2 and "broken.png" in r.output and "cannot read" in r.output
    assert run_dirs(tmp_path / "out") == []


def test_png_input_is_converted_like_mnist(runner, configs, tmp_path):
    # the real "4", drawn dark on light and four times larger, as a user's scan might be
    big = Image.open(configs.parent / "filterlab" / "samples" / "four.png").resize((112, 112))
    png = tmp_path / "scan.png"
    Image.eval(big, lambda v: 255 - v).save(png)
    r = train(runner, [str(configs / "single_four.yaml"), *FAST, "--set", f"data.image={png}",
                       "--set", "data.target=4"], tmp_path / "out")
    assert r.exit_code == 0, r.output
    run = Path(r.output.strip().splitlines()[-1])
    notes = json.loads((run / "summary.json").read_text())["image"]["notes"]
    assert any("inverted" in n for n in notes) and any("resized" in n for n in notes)


def test_unwritable_output_folder(runner, configs, tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        if (out / "probe").exists() or _can_write(out):
            pytest.skip("running with permissions that ignore the folder mode")
        r = train(runner, [str(configs / "single_four.yaml"), *FAST], out)
        assert r.exit_code == 2 and str(out) in r.output and "cannot create run folder" in r.output
    finally:
        out.chmod(0o700)


def test_output_path_blocked_by_a_file(runner, configs, tmp_path):
    blocker = tmp_path / "outputs"
    blocker.write_text("a file where the output folder should be")
    r = train(runner, [str(configs / "single_four.yaml"), *FAST], blocker)
    assert r.exit_code == 2 and "cannot create run folder" in r.output and str(blocker) in r.output
    assert blocker.read_text() == "a file where the output folder should be"


def _can_write(folder: Path) -> bool:
    try:
        (folder / "probe").mkdir()
    except OSError:
        return False
    (folder / "probe").rmdir()
    return True


def test_config_command_prints_the_resolved_config(runner, configs):
    r = runner.invoke(app, ["config", str(configs / "single_four.yaml"), "--set", "train.lr=1e-2"])
    assert r.exit_code == 0, r.output
    cfg = yaml.safe_load(r.output)
    assert cfg["train"]["lr"] == 0.01 and cfg["train"]["steps"] == 5000 and cfg["model"]["filters"] == 5


def test_last_stdout_line_is_the_run_dir_in_a_real_process(configs, tmp_path):
    """As a shell loop uses it: RUN=$(filterlab train ... | tail -1)."""
    p = subprocess.run([sys.executable, "-m", "filterlab", "train", str(configs / "single_four.yaml"), *FAST,
                        "--out", str(tmp_path)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    last = p.stdout.strip().splitlines()[-1]
    assert Path(last).is_dir() and Path(last).parent.parent == tmp_path
    # no progress bar when stderr is not a terminal; the result and the report's path, for the log
    assert "\r" not in p.stderr and "predicted class 4 (target 4)" in p.stderr
    assert p.stderr.strip().splitlines()[-1] == f"report: {Path(last) / 'report.html'}"


def test_train_draws_its_figures_in_a_helper_forked_before_torch(tmp_path):
    """`filterlab train` forks the figure helper before torch is imported (the helper loads matplotlib and the
    kind's drawing code while the parent imports torch and trains), and the helper draws every figure: the parent
    never imports matplotlib, and imports torch without the garbage collector (cli.heavy_imports)."""
    code = (
        "import sys, json, os, gc\n"
        "LOG = sys.argv[3]\n"
        "PARENT, _exit = os.getpid(), os._exit\n"
        "def spy_exit(code):\n"
        "    if os.getpid() == PARENT:\n"
        "        with open(LOG + '.exit', 'w') as f:\n"
        "            f.write(json.dumps({'code': code, 'matplotlib': 'matplotlib' in sys.modules,\n"
        "                                'collector': gc.isenabled(), 'frozen': gc.get_freeze_count() > 10000}))\n"
        "    _exit(code)\n"
        "os._exit = spy_exit\n"
        "from filterlab.viz import worker\n"
        "start = worker.FigureWorker.start.__func__\n"
        "def spy(cls, render, preload=''):\n"
        "    torch_loaded = 'torch' in sys.modules\n"
        "    w = start(cls, render, preload)\n"
        "    if w is not None or torch_loaded:  # the parent (the helper itself returns into nothing)\n"
        "        with open(LOG, 'a') as f:\n"
        "            f.write(json.dumps({'torch': torch_loaded, 'forked': w is not None, 'preload': preload}) + '\\n')\n"
        "    return w\n"
        "worker.FigureWorker.start = classmethod(spy)\n"
        "from filterlab.cli import main\n"
        "sys.argv = ['filterlab', 'train', sys.argv[1], '-q', '--out', sys.argv[2], '--set', 'train.steps=5']\n"
        "main()\n"
    )
    log = tmp_path / "starts.jsonl"
    p = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent.parent / "configs" / "single_four.yaml"),
                        str(tmp_path / "runs"), str(log)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    seen = [json.loads(x) for x in log.read_text().splitlines()]
    assert seen == [{"torch": False, "forked": True, "preload": "filterlab.experiments.single_image.figures"}]
    # torch was imported without the garbage collector, its objects frozen after, and the collector is back on
    assert json.loads(Path(f"{log}.exit").read_text()) == {"code": 0, "matplotlib": False, "collector": True,
                                                          "frozen": True}
    figures = next((tmp_path / "runs" / "single_four").iterdir()) / "figures"
    assert {"filters_raw.png", "similarity.png", "evolution.gif"} <= {f.name for f in figures.iterdir()}
