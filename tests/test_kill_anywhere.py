"""Kill anywhere: SIGTERM and SIGKILL at 20 moments of a short single_four run after start-up, each found by the run's
test hook (FILTERLAB_TEST_HOLD: a training step, or a named phase of the end of the run), never by a timer.

After each: meta.json, summary.json, the exit status and the printed run folder agree, and `--resume` either
completes the run with tensors and metric values bit-identical to an uninterrupted run, or says it is complete and
it is. A kill inside training resumes from the checkpoint written at step 0 (a short run writes no other before its
end); two more kills run with a checkpoint at every snapshot step, so that the resume starts from a later one.
Every process has a timeout (a hang fails, never stalls). About 40 processes: slow lane."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, wait_for

from filterlab.core.artifacts import Checkpoint, Snapshots
from filterlab.core.runfiles import read_metrics
from filterlab.experiments.base import snapshot_schedule

STEPS = 300
SETS = [f"train.steps={STEPS}", "threads=1"]
PHASES = ["trained", "figures", "report", "summary", "committed", "printed"]
TICKS = [1, 40, 150, 299, STEPS]  # steps inside training, its first and its last
MOMENTS = ([("TERM", str(t)) for t in TICKS] + [("TERM", p) for p in PHASES] + [("KILL", p) for p in PHASES]
           + [("KILL", "2"), ("KILL", "200"), ("KILL", str(STEPS))])  # 20
EVERY_SNAPSHOT = [("KILL", "151"), ("KILL", "299")]  # with a checkpoint at every snapshot step
TIMEOUT = 180
DECIDED = ("report", "summary", "committed", "printed")  # phases after the run's status is decided
# the CLI with the single-image checkpoint interval set to nothing: a checkpoint at every snapshot step
EVERY = ("import sys; import filterlab.experiments.single_image.train as t; t.CHECKPOINT_SECONDS = t.CHECKPOINT_COST"
         " = 0.0; from filterlab.cli import main; sys.argv[0] = 'filterlab'; main()")


def _start(out: Path, hold: str, every: bool = False) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "FILTERLAB_TEST_HOLD": hold, "FILTERLAB_TEST_HOLD_TIMEOUT": "120"}
    args = [sys.executable, *(("-c", EVERY) if every else ("-m", "filterlab")), "train",
            REPO / "configs" / "single_four.yaml", "--out", out, "-q", *[x for s in SETS for x in ("--set", s)]]
    return subprocess.Popen(list(map(str, args)), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _resume(run: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "filterlab", "train", "--resume", str(run), "-q"], env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)


def _status(path: Path) -> str | None:
    return json.loads(path.read_text())["status"] if path.is_file() else None


def _values(run: Path) -> dict:
    """What must be bit-identical: model, optimiser state, step, snapshot tensors, metrics and summary values
    (times, the run id and the status aside)."""
    ck, sn = Checkpoint.load(run), Snapshots.load(run)
    summary = json.loads((run / "summary.json").read_text())
    return {"model": ck.model, "step": ck.step, "optimizer": ck.training["optimizer"], "steps": sn.steps,
            "weights": sn.weights, "loss": sn.loss, "history": sn.loss_history,
            "metrics": [{k: v for k, v in r.items() if k != "train_seconds"} for r in read_metrics(run)],
            "summary": {k: v for k, v in summary.items() if k not in ("train_seconds", "run_id", "status")}}


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and a.dtype == b.dtype and bool(
            torch.equal(a, b) or torch.equal(torch.nan_to_num(a, nan=1234.5), torch.nan_to_num(b, nan=1234.5)))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("ref")
    p = _start(out, "")
    stdout, stderr = p.communicate(timeout=TIMEOUT)
    assert p.returncode == 0, stderr
    run = Path(stdout.strip().splitlines()[-1])
    return _values(run)


def _resumed_from(run: Path) -> int:
    return int(json.loads((run / "meta.json").read_text())["resumed"][-1]["from_step"])


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "hold"), MOMENTS, ids=[f"{s}-at-{h}" for s, h in MOMENTS])
def test_a_signal_anywhere_leaves_files_that_agree_and_a_run_that_resumes(reference, tmp_path, sig, hold):
    run = _signal_and_resume(reference, tmp_path, sig, hold)
    if sig == "KILL" and hold.isdigit():  # killed inside training: resumed from a checkpoint of a snapshot step
        assert _resumed_from(run) in [s for s in snapshot_schedule(STEPS, 50, True) if s < int(hold)]


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "hold"), EVERY_SNAPSHOT, ids=[f"{s}-at-{h}" for s, h in EVERY_SNAPSHOT])
def test_a_kill_inside_training_resumes_from_the_last_snapshot_checkpoint(reference, tmp_path, sig, hold):
    run = _signal_and_resume(reference, tmp_path, sig, hold, every=True)
    step = int(hold) - 1  # the N-th tick comes after step N-1's loss, before its update
    assert _resumed_from(run) == max(s for s in snapshot_schedule(STEPS, 50, True) if s <= step and s < STEPS)


def _signal_and_resume(reference: dict, tmp_path: Path, sig: str, hold: str, every: bool = False) -> Path:
    out = tmp_path / "out"
    p = _start(out, hold, every)
    try:
        wait_for(lambda: any(out.glob("*/*/held")) or p.poll() is not None, timeout=TIMEOUT)
        assert p.poll() is None, p.communicate()[1][-3000:]
        run = next(out.glob("*/*/held")).parent
        p.send_signal(signal.SIGTERM if sig == "TERM" else signal.SIGKILL)
        stdout, stderr = p.communicate(timeout=TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    code, meta, summary = p.returncode, _status(run / "meta.json"), _status(run / "summary.json")
    printed = stdout.strip().splitlines()[-1] if stdout.strip() else None
    assert "Traceback" not in stderr, stderr[-3000:]
    if sig == "TERM":  # the process ends itself: its exit status, files and printed folder say one thing
        assert printed == str(run), (printed, stderr[-2000:])
        if code == 0:
            # the status is decided once the figures are drawn; a stop asked for after that does not change it
            assert hold in DECIDED, "a stop asked for before the status was decided must not end completed"
            assert meta == summary == "completed" and (run / "report.html").is_file()
        else:
            assert code == 128 + signal.SIGTERM and meta == "interrupted", (code, meta, stderr[-2000:])
            assert summary in (None, "interrupted"), summary
            assert "interrupted" in (run / "report.html").read_text()
    else:  # killed: no exit status of its own; meta.json is the commit record
        assert code == -signal.SIGKILL
        if meta == "completed":
            assert hold in ("committed", "printed") and summary == "completed" and (run / "report.html").is_file()
        else:
            assert meta == "running", meta  # shown as stale by `filterlab runs`: nothing holds its lock
            assert summary in (None, "running") or (hold == "summary" and summary == "completed"), summary
    r = _resume(run)
    if meta == "completed":
        assert r.returncode == 2 and "the run is already completed; nothing to resume" in r.stderr, r.stderr
    else:  # a kill inside training too: the run checkpoints at step 0 and then from time to time
        assert r.returncode == 0, r.stderr[-3000:]
        assert r.stdout.strip().splitlines()[-1] == str(run)
    assert _status(run / "meta.json") == _status(run / "summary.json") == "completed"
    assert (run / "report.html").is_file() and (run / "figures" / "evolution.gif").is_file()
    got = _values(run)
    assert _equal(got, reference), [k for k in got if not _equal(got[k], reference[k])]
    return run


@pytest.mark.slow
def test_a_kill_inside_training_with_tensorboard_resumes_with_each_step_once(tmp_path):
    """TensorBoard's writer skips the steps up to a resumed run's checkpoint, so the scalars of the snapshots up to a
    checkpoint written inside training must be on disk before it: after a kill there and --resume, every tag holds
    each step once and the scalars are metrics.jsonl's."""
    from test_tensorboard import check_each_step_once, steps_on_disk

    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO), "FILTERLAB_TEST_HOLD": "151", "FILTERLAB_TEST_HOLD_TIMEOUT": "120"}
    args = [sys.executable, "-c", EVERY, "train", REPO / "configs" / "single_four.yaml", "--out", out, "-q",
            "--tensorboard", "--set", "output.figures=false", *[x for s in SETS for x in ("--set", s)]]
    p = subprocess.Popen(list(map(str, args)), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: any(out.glob("*/*/held")) or p.poll() is not None, timeout=TIMEOUT)
        assert p.poll() is None, p.communicate()[1][-3000:]
        run = next(out.glob("*/*/held")).parent
        p.kill()
        p.communicate(timeout=TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert steps_on_disk(run, "snapshot/loss")[-1] == 150  # logged with the checkpoint at step 150
    r = _resume(run)
    assert r.returncode == 0, r.stderr[-3000:]
    assert _resumed_from(run) == 150
    check_each_step_once(run)
    assert steps_on_disk(run, "snapshot/loss") == Snapshots.load(run).steps.tolist()
