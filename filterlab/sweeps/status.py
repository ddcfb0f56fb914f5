"""Where every run of a cluster sweep stands: queued, running, completed, failed (or diverged, interrupted).

Three sources, each written by one party: ``plan.json`` and ``launches.jsonl`` (the submitting command: what was
asked for and which job runs each task), ``tasks/NNNN.json`` (the task's own job: its run folder and what it is
doing) and each run's ``meta.json``; the scheduler is asked only whether a job is still queued or running. A task
whose job has left the scheduler without its run ending is failed, with the job's last state where the scheduler
still knows it and the tail of the job's log.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.rundir import META_FILE, atomic_write_json, read_json
from .task import read_task

PLAN_FILE = "plan.json"
LAUNCHES_FILE = "launches.jsonl"
SUBMITIT_DIR = "submitit"
QUEUED = ("PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "CONFIGURING", "RESV_DEL_HOLD", "SUSPENDED")
RUNNING = ("RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "RESIZING", "STOPPED")
ENDED_STATUSES = ("completed", "diverged", "failed", "interrupted", "not submitted")
REQUEUE_GRACE_S = 120  # a task that requeued itself is queued for this long even if the scheduler lost sight of it


@dataclass
class TaskState:
    index: int
    point: dict[str, Any]
    status: str  # not submitted, queued, running, completed, diverged, failed, interrupted
    job_id: str | None = None
    run_dir: str | None = None
    detail: str = ""  # what the scheduler says, requeues, ...
    error: str | None = None
    job_state: str | None = None  # the scheduler's own state of the job, where it still knows it
    log_tail: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ended(self) -> bool:
        return self.status in ENDED_STATUSES

    def result(self) -> dict[str, Any]:
        """The row fields for sweep.json / sweep.csv."""
        out = {"run_dir": self.run_dir, "status": self.status, "error": self.error, "job_id": self.job_id,
               "job_state": self.job_state, "requeues": self.extra.get("requeues", 0)}
        if self.log_tail:
            out["log_tail"] = self.log_tail
        return out


def read_launches(sweep_dir: Path) -> dict[int, str]:
    """Task index -> the job id of its latest submission."""
    latest: dict[int, str] = {}
    path = Path(sweep_dir) / LAUNCHES_FILE
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            latest.update({int(k): v for k, v in rec.get("jobs", {}).items()})
    return latest


def log_tail(sweep_dir: Path, job_id: str | None, lines: int = 12) -> str | None:
    """The last lines of the job's logs (submitit's files for task 0 of the job): its stdout, where submitit and
    the task say what happened, and its stderr, where a traceback lands."""
    if job_id is None:
        return None
    parts: list[str] = []
    for suffix in ("out", "err"):
        path = Path(sweep_dir) / SUBMITIT_DIR / f"{job_id}_0_log.{suffix}"
        if path.is_file() and path.stat().st_size:
            text = path.read_text(encoding="utf-8", errors="replace").splitlines()
            parts += [f"[{path.name}]", *text[-lines:]]
    return "\n".join(parts) or None


def collect(sweep_dir: Path, scheduler_states: Mapping[str, tuple[str, str]] | None) -> list[TaskState]:
    """Every task's state. ``scheduler_states``: job id -> (STATE, reason) for the jobs the scheduler knows; a job
    missing from it has ended; None when the scheduler could not be asked (then only the files speak)."""
    plan = read_json(Path(sweep_dir) / PLAN_FILE)
    jobs = read_launches(sweep_dir)
    out = []
    for task in plan["tasks"]:
        i = task["index"]
        job_id = jobs.get(i)
        sched = None if scheduler_states is None or job_id is None else scheduler_states.get(job_id, ("ENDED", ""))
        out.append(_derive(Path(sweep_dir), i, task["point"], job_id, read_task(sweep_dir, i), sched))
    return out


def _derive(sweep_dir: Path, index: int, point: dict, job_id: str | None, record: dict | None,
            sched: tuple[str, str] | None) -> TaskState:
    st = TaskState(index, point, "not submitted", job_id)
    ours = record is not None and record.get("job_id") == job_id  # the record of this submission's job
    if record is not None:
        st.run_dir = record.get("run_dir")
        st.extra["requeues"] = record.get("requeues", 0) if ours else 0
    meta = _run_meta(st.run_dir)
    if job_id is None:
        st.status = meta.get("status") or "not submitted"
        return st
    state, reason = sched if sched is not None else (None, "")
    alive = state in QUEUED or state in RUNNING
    st.job_state = state if state != "ENDED" else None
    if alive and (not ours or state in QUEUED or (record or {}).get("status") not in ("completed", "diverged")):
        st.status = "queued" if state in QUEUED else "running"
        st.detail = _detail(state, reason, st.extra.get("requeues", 0), record if ours else None)
        return st
    if not ours:  # the job has not started this task (or cannot be asked): submitted, waiting
        if sched is None:
            st.status, st.detail = "queued", "submitted"
            return st
        return _lost(st, sweep_dir, "the job ended before its task started")
    assert record is not None  # ours: this job's own record
    return _from_record(st, sweep_dir, record, meta, sched is None)


def _from_record(st: TaskState, sweep_dir: Path, record: dict, meta: dict, unknown: bool) -> TaskState:
    """The task has started in this job, and the job is no longer queued or running (or cannot be asked)."""
    status = record.get("status")
    st.error = record.get("error") or meta.get("error")
    if status in ("completed", "diverged", "failed", "interrupted"):
        st.status = str(meta.get("status") if meta.get("status") in ("completed", "diverged") else status)
        if st.status == "interrupted":
            st.detail = f"stopped by {record.get('signal') or 'a signal'}; the same sweep command resumes it"
        if st.status == "failed":
            st.log_tail = log_tail(sweep_dir, st.job_id)
        return st
    if unknown:  # the scheduler cannot be asked: believe the record
        st.status = "queued" if status == "requeued" else "running"
        return st
    if status == "requeued" and _age_s(record.get("time")) < REQUEUE_GRACE_S:
        st.status, st.detail = "queued", "requeued"
        return st
    if status == "requeued":
        st.status = "interrupted"
        st.error = "the task requeued its job after the checkpoint signal, but the scheduler no longer has the job"
        return st
    return _lost(st, sweep_dir, "the job ended while the run was running")


def _lost(st: TaskState, sweep_dir: Path, what: str) -> TaskState:
    st.status = "failed"
    st.error = f"{what} (job {st.job_id}, state {st.job_state or 'unknown: the scheduler no longer lists it'})"
    st.log_tail = log_tail(sweep_dir, st.job_id)
    return st


def _detail(state: str | None, reason: str, requeues: int, record: dict | None) -> str:
    parts = [(state or "unknown").lower()]
    if reason and reason not in ("None", "(null)"):
        parts.append(reason)
    if requeues:
        parts.append(f"requeued {requeues}x")
    if record is not None and record.get("status") in ("starting", "running"):
        parts.append(f"on {record.get('host')}")
    return ", ".join(parts)


def _run_meta(run_dir: str | None) -> dict[str, Any]:
    if not run_dir:
        return {}
    try:
        return read_json(Path(run_dir) / META_FILE)
    except (OSError, ValueError):
        return {}


def _age_s(iso: str | None) -> float:
    if not iso:
        return float("inf")
    return (_dt.datetime.now(_dt.timezone.utc) - _dt.datetime.fromisoformat(iso)).total_seconds()


def settle(states: list[TaskState]) -> None:
    """A run whose job is gone while its meta.json still says running is marked failed, with the reason."""
    for st in states:
        if st.status == "failed" and st.run_dir:
            meta = _run_meta(st.run_dir)
            if meta.get("status") == "running":
                meta.update(status="failed", error=st.error)
                atomic_write_json(Path(st.run_dir) / META_FILE, meta)


def counts(states: list[TaskState]) -> str:
    order = ("completed", "running", "queued", "failed", "diverged", "interrupted", "not submitted")
    n = {s: sum(st.status == s for st in states) for s in order}
    return ", ".join(f"{v} {k}" for k, v in n.items() if v or k in ("completed", "running", "queued", "failed"))


def table(states: list[TaskState], keys: list[str]) -> list[str]:
    """The status as text lines: one row per run, a failed run's log tail under it."""
    head = ["run", *keys, "status", "job", "run folder", "detail"]
    rows = []
    for st in states:
        detail = st.detail or (st.error.splitlines()[0] if st.error else "")
        rows.append([str(st.index + 1), *(_fmt(st.point.get(k)) for k in keys), st.status, st.job_id or "-",
                     st.run_dir or "-", detail])
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    lines = []
    for state, row in zip([None, *states], [head, *rows], strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if state is not None and state.status == "failed" and state.log_tail:
            lines += ["    | " + x for x in state.log_tail.splitlines()]
    return lines


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)
