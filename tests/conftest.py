"""Shared fixtures: where the real datasets are, and a quiet CLI runner.

The real data lives in ``../shared/datasets`` beside the repository, or wherever FILTERLAB_DATA points: the same
variable filterlab reads for the shipped configs' data (one subfolder per dataset), set here when it is unset so that
the library and every subprocess a test starts read it too. Tests that need it are skipped on a machine without it,
except under CI (CI=true), where missing data is a failure.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATASETS = Path(os.environ.get("FILTERLAB_DATA") or REPO.parent / "shared" / "datasets")
os.environ["FILTERLAB_DATA"] = str(DATASETS)
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def need_dataset(name: str) -> Path:
    """The folder of a shared dataset; skip (or, under CI, fail) when it is not there."""
    path = DATASETS / name
    if not path.is_dir():
        msg = f"dataset folder {path} is missing"
        if os.environ.get("CI"):
            pytest.fail(msg + " (CI must have it)")
        pytest.skip(msg)
    return path


def wait_for(predicate, timeout: float = 60.0) -> None:
    """Poll ``predicate`` every 50 ms until it holds; fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def wait_training(run_dir: Path, timeout: float = 120.0) -> None:
    """Wait until the run's training loop has beaten its heartbeat once since it took the run's lock: training is
    under way (the loop ticks only between steps)."""
    import json

    def beat() -> bool:
        try:
            lock = json.loads((Path(run_dir) / "lock").read_text())
        except (OSError, ValueError):
            return False
        return lock.get("heartbeat", 0) > lock.get("started", float("inf"))

    wait_for(beat, timeout)


@pytest.fixture
def runner():
    from typer.testing import CliRunner

    return CliRunner()


@pytest.fixture
def configs() -> Path:
    return REPO / "configs"


def preset_layers(name: str):
    """The layers and input shape of configs/NAME.yaml, as the registry gives them."""
    from filterlab import experiments

    cfg = experiments.load_config(REPO / "configs" / f"{name}.yaml")
    return experiments.card(cfg.kind).layers(cfg)


def load_checkpoint_dict(run_dir: Path) -> dict:
    """A run's checkpoint (any format) as one flat dict: config, model, step, kind, and the kind's own fields."""
    from filterlab.core.artifacts import Checkpoint

    c = Checkpoint.load(Path(run_dir))
    return {**c.model_args, **c.inputs, **c.training, "kind": c.kind, "config": c.config, "model": c.model,
            "step": c.step}


def load_model(run_dir: Path):
    """(the trained model rebuilt from the checkpoint alone, the checkpoint as a flat dict)."""
    from filterlab import experiments
    from filterlab.core.artifacts import Checkpoint

    c = Checkpoint.load(Path(run_dir))
    return experiments.get(c.kind).build_model(c), load_checkpoint_dict(run_dir)


def load_snapshots(run_dir: Path) -> dict:
    """A run's snapshots as a dict with the first layer's filters under "filters"."""
    from filterlab.core.artifacts import Snapshots

    s = Snapshots.load(Path(run_dir))
    return {"steps": s.steps, "filters": s.weights[s.first_layer], "weights": s.weights, "loss": s.loss,
            "loss_history": s.loss_history}


@pytest.fixture(scope="session")
def four_run(tmp_path_factory) -> Path:
    """A finished single_four run (300 steps, with its figures, sidecars and report), trained once per test session.
    Shared: copy it (copy_run) before changing anything in it."""
    from filterlab import experiments
    from filterlab.lifecycle import train_config

    cfg = experiments.load_config(REPO / "configs" / "single_four.yaml", ["train.steps=300", "threads=1"])
    outcome = train_config(cfg, out_root=tmp_path_factory.mktemp("four-run"))
    assert outcome.status == "completed", outcome.error
    return outcome.run_dir


def copy_run(run_dir: Path, dest: Path, name: str | None = None) -> Path:
    """A copy of a run folder at DEST/NAME/RUN (the layout `filterlab runs` lists; NAME the run's own unless given),
    without its lock file."""
    import shutil

    target = dest / (name or run_dir.parent.name) / run_dir.name
    shutil.copytree(run_dir, target, ignore=shutil.ignore_patterns("lock"))
    return target


_MEASURE = ("import resource, subprocess, sys\n"
            "r = subprocess.run(sys.argv[2:])\n"
            "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024))\n"
            "sys.exit(r.returncode)\n")


def run_measured(argv: list, timeout: float = 120.0, cwd: Path | None = None, env: dict | None = None):
    """Run ``argv`` (``"python"`` stands for this interpreter) as a child of a small wrapper process; returns (exit
    status, stdout, stderr, peak resident bytes). The peak is the kernel's ru_maxrss of the wrapper's children, and
    it has only the one. A command past ``timeout`` is killed and the test fails: a hang is a finding, never a wait."""
    import subprocess
    import sys
    import tempfile

    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    with tempfile.NamedTemporaryFile("r", suffix=".peak") as peak:
        cmd = [sys.executable, "-c", _MEASURE, peak.name,
               *[sys.executable if a == "python" else str(a) for a in argv]]
        p = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            p.communicate()
            raise AssertionError(f"{argv} did not end within {timeout} s") from None
        text = Path(peak.name).read_text().strip()
    return p.returncode, out, err, int(text or 0)


@pytest.fixture(scope="session")
def full_mnist_run(tmp_path_factory):
    """A preset trained on the full MNIST (60,000 training digits, ``mnist-full``) once per test session, shared by
    every test that asks for it: ``full_mnist_run("notebook_two_conv")`` -> the lifecycle's Outcome."""
    from filterlab import experiments
    from filterlab.lifecycle import train_config

    done: dict[str, object] = {}

    def get(preset: str):
        if preset not in done:
            root = need_dataset("mnist-full")
            cfg = experiments.load_config(REPO / "configs" / f"{preset}.yaml", [
                f"data.root={root}", "data.download=false", "output.figures=false", "device=cpu"])
            out = train_config(cfg, out_root=tmp_path_factory.mktemp(f"full-{preset}"))
            assert out.status == "completed", out.error
            done[preset] = out
        return done[preset]

    return get


# ---------------------------------------------------------------------------------------------------------------------
# The layout check on every figure the suite draws (filterlab.viz.layout, issue 21): every matplotlib figure a test
# saves (to a file or to bytes) and every text Pillow draws is checked; a fault fails the test at its teardown.
# In this process figures are drawn without a forked figure helper. A test that draws a
# faulty figure on purpose is marked ``layout_unchecked``, or holds its own layout.Watch (the innermost checks).


def pytest_configure(config):
    config.addinivalue_line("markers", "layout_unchecked: figures drawn wrong on purpose; the suite's layout check "
                                       "is off")


# Figures drawn in other processes (the CLI as a subprocess, its forked figure helpers, sweep workers, notebook
# kernels) are checked there by filterlab.viz.testwatch: FILTERLAB_TEST_LAYOUT names a folder of this session, set
# after this process imported filterlab (its hook stays off here: this process has the per-test Watch), and each
# test fails on the faults those processes wrote there since the previous test's check (so a module fixture's
# subprocess counts for the first test that uses it).
os.environ.pop("FILTERLAB_TEST_LAYOUT", None)  # this process is checked by the Watch below, never by the hook


def _other_processes(seen: dict) -> list[str]:
    from filterlab.viz import testwatch

    found, seen["since"] = testwatch.faults(seen["folder"], seen["since"])
    return [f"{f['figure']} (drawn by process {f['pid']}, {' '.join(f['argv'])}): {f['problem']}" for f in found]


@pytest.fixture(scope="session", autouse=True)
def _layout_folder(tmp_path_factory):
    import filterlab  # noqa: F401 - imported before the variable is set
    from filterlab.viz import testwatch

    seen = {"folder": tmp_path_factory.mktemp("layout-faults"), "since": {}}
    os.environ[testwatch.ENV] = str(seen["folder"])
    yield seen
    os.environ.pop(testwatch.ENV, None)
    found = _other_processes(seen)
    assert not found, "layout faults in figures drawn after the last test:\n" + "\n".join(found)


@pytest.fixture(autouse=True)
def _layout_checked(request, monkeypatch, _layout_folder):
    if request.node.get_closest_marker("layout_unchecked"):
        yield
        _other_processes(_layout_folder)  # drawn wrong on purpose: not the next test's fault
        return
    from filterlab.viz import layout, worker

    monkeypatch.setattr(worker.FigureWorker, "start", classmethod(lambda cls, *a, **k: None))
    with layout.Watch() as watch:
        yield
    found = watch.problems() + _other_processes(_layout_folder)
    assert not found, "layout faults in the figures this test drew:\n" + "\n".join(found)


def pytest_terminal_summary(terminalreporter, config):
    from filterlab.viz.layout import Watch

    n, s = Watch.total
    if n:
        terminalreporter.write_line(f"layout check: {n:.0f} figures measured in {s:.2f} s ({1000 * s / n:.0f} ms each)")
