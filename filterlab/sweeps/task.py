"""One task of a cluster sweep, as it runs inside its job: one run, started, resumed or left alone.

submitit pickles :func:`run_task` with its :class:`TaskSpec` and calls it in the job. The task keeps a small record
in ``SWEEP_DIR/tasks/NNNN.json`` (written only by the task's own job): its run folder, job id, status and how often
it was requeued. A requeued job finds its run folder there and resumes it from the last checkpoint
(:func:`filterlab.train.resume_run`), so the run ends where an uninterrupted one ends (on the CPU, bit for bit).

Signals: the scheduler's checkpoint signal (SIGUSR2, which submitit asks Slurm to send ``signal_delay_s`` before the
time limit, and which ``scancel --signal=USR2`` sends on preemption) and SIGTERM both stop training at its next step
through the same :class:`filterlab.train.StopFlag` that Ctrl-C uses; the run writes its checkpoint and ends
``interrupted``. After the checkpoint signal the task then requeues its own job; after SIGTERM alone it does not
(Slurm requeues a preempted job itself; a cancelled one stays interrupted until the sweep is run again).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit

from .. import experiments
from ..core.errors import InputError
from ..core.rundir import (
    CHECKPOINT_FILE,
    META_FILE,
    METRICS_FILE,
    SNAPSHOTS_FILE,
    SUMMARY_FILE,
    atomic_write_json,
    create_run_dir,
    now_iso,
    read_json,
)
from ..lifecycle import StopFlag, resume_run, train_config

TASKS_DIR = "tasks"
FINAL = ("completed", "diverged")  # a run that ended like this is never run again
CHECKPOINT_SIGNAL = signal.SIGUSR2  # submitit's preemption / time-limit signal (its default, USR2)


@dataclass(frozen=True)
class TaskSpec:
    """Everything a task needs, independent of the submitting shell: absolute paths and the run's full config."""

    index: int
    total: int
    config: dict[str, Any]  # the run's resolved config (plain data)
    out: str  # absolute folder that receives the run folder (OUT/NAME/RUN)
    sweep_dir: str  # absolute sweep folder
    argv: list[str]
    max_requeues: int


class TaskFailed(RuntimeError):
    """Raised after the failure is recorded, so that the scheduler, too, sees the job fail."""


def say(text: str) -> None:
    """A line in the job's log (submitit's stdout file), where `filterlab sweep --status` finds its tail."""
    print(f"filterlab: {text}", flush=True)


def task_path(sweep_dir: str | Path, index: int) -> Path:
    return Path(sweep_dir) / TASKS_DIR / f"{index:04d}.json"


def read_task(sweep_dir: str | Path, index: int) -> dict[str, Any] | None:
    try:
        return read_json(task_path(sweep_dir, index))
    except (OSError, ValueError):
        return None


def this_job_id() -> str:
    """submitit's id of the job we are in ("123_4" for an array task on Slurm, the controller's pid locally)."""
    try:
        return str(submitit.JobEnvironment().job_id)
    except (RuntimeError, KeyError):  # called outside a submitit job (tests, or by hand)
        return f"pid-{os.getpid()}"


class TaskRecord:
    """The task's own record file; each update rewrites it atomically."""

    def __init__(self, spec: TaskSpec):
        self.path = task_path(spec.sweep_dir, spec.index)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        old = read_task(spec.sweep_dir, spec.index) or {}
        job_id = this_job_id()
        same_job = old.get("job_id") == job_id  # a requeued job keeps its id; a new submission starts counting anew
        self.data: dict[str, Any] = {
            "index": spec.index, "job_id": job_id, "run_dir": old.get("run_dir"),
            "starts": (old.get("starts", 0) if same_job else 0) + 1,
            "requeues": old.get("requeues", 0) if same_job else 0,
            "host": socket.gethostname(), "pid": os.getpid(), "status": "starting", "error": None,
            "signal": None, "time": now_iso(),
        }
        self.write()

    def update(self, **fields: Any) -> None:
        self.data.update(fields, time=now_iso())
        self.write()

    def write(self) -> None:
        atomic_write_json(self.path, self.data)


def run_task(spec: TaskSpec) -> dict[str, Any]:
    """Run (or resume) the task's run; requeue the job after the checkpoint signal. Returns the run's outcome."""
    stop = StopFlag()
    signals: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        signals.append(signum)
        stop.signum = signum

    # Ours, not submitit's: submitit would checkpoint and exit inside the handler, mid-step. During training the
    # StopFlag's own SIGTERM handler takes over; it does the same.
    for sig in (CHECKPOINT_SIGNAL, signal.SIGTERM):
        signal.signal(sig, on_signal)
    record = TaskRecord(spec)
    say(f"task {spec.index + 1} of {spec.total}, job {record.data['job_id']}, start {record.data['starts']}")
    cfg = experiments.config_from_data(spec.config, f"sweep task {spec.index + 1} of {spec.total}")
    outcome = _start_or_resume(spec, cfg, record, stop)
    if outcome is None:  # already finished by an earlier attempt
        return {"run_dir": record.data["run_dir"], "status": record.data["status"], "exit_code": 0, "error": None}
    result = {"run_dir": str(outcome.run_dir), "status": outcome.status, "exit_code": outcome.exit_code,
              "error": outcome.error}
    if stop.signum is not None and stop.signum not in signals:  # SIGTERM during training reaches the StopFlag only
        signals.append(stop.signum)
    names = [signal.Signals(s).name for s in signals]
    if outcome.status == "interrupted" and CHECKPOINT_SIGNAL in signals:
        if record.data["requeues"] < spec.max_requeues:
            result["error"] = _requeue(record, names, spec.max_requeues)  # returns only if the requeue failed
        else:
            result["error"] = f"signalled again after {spec.max_requeues} requeues (launcher.max_requeues)"
    record.update(status=outcome.status, error=result["error"], signal=names[-1] if names else None)
    say(f"run {outcome.run_dir} {outcome.status}" + (f": {result['error']}" if result["error"] else ""))
    if outcome.status == "failed":
        raise TaskFailed(f"run {outcome.run_dir} failed: {outcome.error}")
    return result


def _start_or_resume(spec: TaskSpec, cfg: Any, record: TaskRecord, stop: StopFlag) -> Any:
    """Train into a new run folder, or resume the one an earlier attempt left; None when it had already finished."""
    argv = list(spec.argv) + [f"(sweep run {spec.index + 1} of {spec.total}, job {record.data['job_id']})"]
    run_dir = Path(record.data["run_dir"]) if record.data["run_dir"] else None
    meta = _meta(run_dir)
    if meta.get("status") in FINAL:
        record.update(status=meta["status"])
        say(f"run {run_dir} already {meta['status']}; nothing to do")
        return None
    try:
        if run_dir is not None and meta and (run_dir / CHECKPOINT_FILE).is_file():
            record.update(status="running")
            say(f"resuming run {run_dir} ({meta.get('status')}) from its checkpoint")
            return resume_run(run_dir, argv=argv, quiet=True, stop=stop)
        fresh = run_dir is None
        if run_dir is None:
            run_dir = create_run_dir(spec.out, cfg.name)
        else:
            _clear(run_dir)  # an attempt that never reached its first checkpoint: start again in the same folder
        record.update(status="running", run_dir=str(run_dir))
        say(f"{'starting' if fresh else 'starting again (no checkpoint yet)'}: run {run_dir}")
        return train_config(cfg, out_root=spec.out, argv=argv, quiet=True, stop=stop, run_dir=run_dir)
    except (InputError, OSError) as e:  # bad input on this node (data missing, device absent): recorded, not raised
        if run_dir is not None and not (run_dir / META_FILE).exists():
            shutil.rmtree(run_dir, ignore_errors=True)
            record.update(run_dir=None)
        record.update(status="failed", error=str(e))
        raise TaskFailed(str(e)) from None


def _meta(run_dir: Path | None) -> dict[str, Any]:
    if run_dir is None:
        return {}
    try:
        return read_json(run_dir / META_FILE)
    except (OSError, ValueError):
        return {}


def _clear(run_dir: Path) -> None:
    for name in (META_FILE, METRICS_FILE, SUMMARY_FILE, SNAPSHOTS_FILE):
        (run_dir / name).unlink(missing_ok=True)
    (run_dir / "figures").mkdir(exist_ok=True)


def _requeue(record: TaskRecord, names: list[str], limit: int) -> str:
    """Put this job back in the queue and leave; the next attempt resumes the run. Returns only if that failed,
    with the reason."""
    requeues = record.data["requeues"] + 1
    record.update(status="requeued", requeues=requeues, signal=names[-1], error=None)
    say(f"{names[-1]}: checkpoint written; requeuing the job (requeue {requeues} of at most {limit})")
    env = submitit.JobEnvironment()
    try:
        # Slurm: `scontrol requeue JOBID`; submitit's local executor: exits with the status its controller reruns.
        env._requeue(limit - requeues)
    except (subprocess.SubprocessError, OSError) as e:
        record.update(requeues=requeues - 1)
        return f"could not requeue the job: {e}"
    raise SystemExit(0)  # no result: submitit writes none, and the requeued job runs the task again
