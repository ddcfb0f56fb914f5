"""Sweeps on a cluster scheduler through submitit: every grid point x seed one task of a Slurm job array.

``launch`` plans the sweep (validated before anything is submitted), finds the sweep folder of the same sweep if an
earlier command made one (same runs, whatever the launcher settings), submits every run that has not completed and
is not already queued or running as one job array, records the job ids, and waits, reporting runs as they end. The
summary (``sweep.json``, ``sweep.csv``, comparison figures) is the local pool's. Ctrl-C while waiting detaches:
the jobs go on, and ``filterlab sweep --status SWEEP_DIR`` shows where they stand.

The same code path runs on submitit's local executor (``--launcher submitit-local``: each task a local process, with
the same signals, requeue and resume), which is how the tests exercise it without a cluster.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import submitit
from submitit.core.utils import FailedJobError, FailedSubmissionError

from .. import experiments
from ..core.rundir import atomic_write_json, create_run_dir, now_iso, read_json
from .plan import Job, SweepError, absolute_paths, identity, plan, resolved_configs
from .status import LAUNCHES_FILE, PLAN_FILE, SUBMITIT_DIR, TaskState, collect, read_launches, settle
from .summary import summarise
from .task import TaskSpec, run_task

SKIP = ("completed", "diverged", "queued", "running")  # statuses that are not submitted again


class SlurmScheduler:
    """Slurm through submitit's SlurmExecutor; states from ``squeue`` (and ``sacct`` where accounting is on)."""

    name = "slurm"
    max_poll_s = 10.0  # the longest pause between two squeue calls while nothing changes

    def check(self) -> None:
        if shutil.which("sbatch") is None or shutil.which("srun") is None:
            raise SweepError("launcher slurm: sbatch and srun are not on PATH; run the sweep where Slurm jobs are "
                             "submitted (a login node), or use the local launcher")

    def executor(self, folder: Path, launcher: Any, job_name: str) -> submitit.Executor:
        ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=launcher.max_requeues)
        params: dict[str, Any] = dict(job_name=job_name, time=launcher.time_min, cpus_per_task=launcher.cpus_per_task,
                                      mem=f"{max(1, round(launcher.mem_gb * 1024))}M",
                                      array_parallelism=launcher.array_parallelism,
                                      signal_delay_s=launcher.signal_delay_s)
        if launcher.partition:
            params["partition"] = launcher.partition
        if launcher.gpus_per_task:
            params["gpus_per_node"] = launcher.gpus_per_task  # one task per job: per node is per task
        ex.update_parameters(**params)
        return ex

    def adopt(self, jobs: list[Any]) -> None:
        pass

    def states(self, job_ids: list[str]) -> dict[str, tuple[str, str]] | None:
        """job id -> (STATE, reason) for every job Slurm still knows; None when Slurm cannot be asked."""
        masters = sorted({j.split("_")[0] for j in job_ids})
        if not masters:
            return {}
        try:
            p = subprocess.run(["squeue", "-h", "--array", "-t", "all", "-j", ",".join(masters), "-o", "%i|%T|%r"],
                               capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if p.returncode != 0 and "Invalid job id" not in p.stderr:
            return None
        found = {}
        for line in p.stdout.splitlines():
            jid, _, rest = line.strip().partition("|")
            state, _, reason = rest.partition("|")
            found[jid] = (state, reason)
        found.update({k: v for k, v in _sacct(set(job_ids) - set(found)).items()})
        return found


def _sacct(job_ids: set[str]) -> dict[str, tuple[str, str]]:
    """Final states of jobs that squeue no longer lists, where Slurm's accounting is on (else nothing)."""
    if not job_ids:
        return {}
    masters = sorted({j.split("_")[0] for j in job_ids})
    try:
        p = subprocess.run(["sacct", "-n", "-P", "-X", "-j", ",".join(masters), "-o", "JobID,State"],
                           capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if p.returncode != 0:  # "Slurm accounting storage is disabled"
        return {}
    out = {}
    for line in p.stdout.splitlines():
        jid, _, state = line.partition("|")
        if jid in job_ids and state:
            out[jid] = (state.split()[0], "")  # "CANCELLED by 0" -> CANCELLED
    return out


class LocalScheduler:
    """submitit's LocalExecutor: each task a local process under a controller that reruns it when it requeues."""

    name = "submitit-local"
    max_poll_s = 2.0

    def __init__(self) -> None:
        self.held: dict[str, Any] = {}

    def check(self) -> None:
        pass

    def executor(self, folder: Path, launcher: Any, job_name: str) -> submitit.Executor:
        ex = submitit.LocalExecutor(folder=folder, max_num_timeout=launcher.max_requeues)
        ex.update_parameters(timeout_min=launcher.time_min, signal_delay_s=launcher.signal_delay_s)
        return ex

    def adopt(self, jobs: list[Any]) -> None:
        self.held.update({j.job_id: j for j in jobs})

    def states(self, job_ids: list[str]) -> dict[str, tuple[str, str]]:
        out = {}
        for jid in job_ids:
            job = self.held.get(jid)
            alive = job.get_info()["jobState"] == "RUNNING" if job is not None else _process_alive(jid)
            if alive:
                out[jid] = ("RUNNING", "")
        return out


def _process_alive(pid: str) -> bool:
    """The local job id is its controller's pid; a zombie counts as ended."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
    except (OSError, ValueError):
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


SCHEDULERS: dict[str, Callable[[], Any]] = {"slurm": SlurmScheduler, "submitit-local": LocalScheduler}


def scheduler_for(sweep_dir: Path) -> Any:
    """The scheduler a sweep folder was submitted to (from its plan)."""
    return SCHEDULERS[read_json(Path(sweep_dir) / PLAN_FILE)["launcher"]]()


# ---------------------------------------------------------------------------------------------------------------------
# Planning, submitting, waiting


def open_sweep(config: Path, grid: dict[str, list[str]], seeds: int, base_sets: list[str], out: Path,
               launcher_name: str) -> tuple[Path, list[Job], list[dict], Any, bool]:
    """Plan the sweep and find its folder (made now if no earlier command made it): (folder, jobs, configs,
    launcher settings, reused)."""
    sets = absolute_paths(config, base_sets)
    base = experiments.load_config(config, sets)
    jobs = plan(config, grid, seeds, sets, threads=base.launcher.cpus_per_task)
    configs = resolved_configs(config, jobs)
    ident = identity(configs)
    out = Path(out).resolve()
    for found in sorted((out / "sweeps").glob(f"*/*/{PLAN_FILE}"), reverse=True):
        try:
            old = read_json(found)
        except (OSError, ValueError):
            continue
        if old.get("identity") == ident and old.get("launcher") == launcher_name:
            return found.parent, jobs, configs, base.launcher, True
    sweep_dir = create_run_dir(out / "sweeps", base.name, figures=False)
    atomic_write_json(sweep_dir / PLAN_FILE, {
        "identity": ident, "launcher": launcher_name, "config": str(Path(config).resolve()), "grid": grid,
        "seeds": seeds, "base_sets": sets, "out": str(out), "created": now_iso(),
        "tasks": [{"index": j.index, "sets": j.sets, "point": j.point} for j in jobs]})
    return sweep_dir, jobs, configs, base.launcher, False


def submit(sweep_dir: Path, scheduler: Any, jobs: list[Job], configs: list[dict], launcher: Any,
           states: list[TaskState], argv: list[str]) -> dict[int, str]:
    """Submit every task not completed, queued or running, as one job array; record and return their job ids."""
    todo = [j for j, st in zip(jobs, states, strict=True) if st.status not in SKIP]
    if not todo:
        return {}
    out = read_json(sweep_dir / PLAN_FILE)["out"]
    specs = [TaskSpec(j.index, len(jobs), configs[j.index], out, str(sweep_dir), list(argv), launcher.max_requeues)
             for j in todo]
    ex = scheduler.executor(sweep_dir / SUBMITIT_DIR, launcher, f"filterlab-{configs[0]['name']}")
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # submitit prints sbatch's complaint; the error says it once
            submitted = ex.map_array(run_task, specs)
    except (FailedJobError, FailedSubmissionError, OSError) as e:  # sbatch's own message, e.g. a bad partition
        why = "; ".join(line.strip() for line in str(e).splitlines() if line.strip())
        raise SweepError(f"launcher {scheduler.name}: submitting failed: {why}") from None
    scheduler.adopt(submitted)
    ids = {j.index: s.job_id for j, s in zip(todo, submitted, strict=True)}
    line = json.dumps({"time": now_iso(), "launcher": scheduler.name, "jobs": {str(k): v for k, v in ids.items()},
                       "parameters": dict(getattr(ex, "parameters", {}))}, default=str)
    with open(sweep_dir / LAUNCHES_FILE, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())
    return ids


def poll(sweep_dir: Path, scheduler: Any) -> list[TaskState]:
    ids = sorted(set(read_launches(sweep_dir).values()))
    return collect(sweep_dir, scheduler.states(ids))


def wait(sweep_dir: Path, scheduler: Any, progress: Callable[[TaskState, int], None] | None,
         first: list[TaskState]) -> tuple[list[TaskState], bool]:
    """Poll until every task has ended, reporting each change of status; (states, detached by Ctrl-C)."""
    seen = {st.index: (st.status, st.detail) for st in first}
    detached = False

    def on_sigint(signum: int, frame: Any) -> None:
        nonlocal detached
        detached = True

    old = signal.signal(signal.SIGINT, on_sigint) if threading.current_thread() is threading.main_thread() else None
    delay = 0.5
    try:
        while True:
            states = poll(sweep_dir, scheduler)
            changed = [st for st in states if seen.get(st.index) != (st.status, st.detail)]
            for st in changed:
                seen[st.index] = (st.status, st.detail)
                if progress:
                    progress(st, len(states))
            if all(st.ended for st in states) or detached:
                return states, detached
            delay = 0.5 if changed else min(delay * 1.5, scheduler.max_poll_s)  # quick while things happen
            end = time.monotonic() + delay
            while time.monotonic() < end and not detached:
                time.sleep(0.1)
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)


def launch(config: Path, grid: dict[str, list[str]], seeds: int, base_sets: list[str], out: Path,
           launcher_name: str, argv: list[str] | None = None, wait_for_end: bool = True,
           progress: Callable[[TaskState, int], None] | None = None,
           note: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Plan, submit what is left to run, wait (unless told not to) and summarise. Returns the summary."""
    say = note or (lambda text: None)
    scheduler = SCHEDULERS[launcher_name]()
    scheduler.check()
    sweep_dir, jobs, configs, launcher, reused = open_sweep(config, grid, seeds, base_sets, out, launcher_name)
    states = poll(sweep_dir, scheduler) if reused else collect(sweep_dir, {})
    if reused:
        kept = ", ".join(f"{n} {s}" for s in SKIP if (n := sum(st.status == s for st in states)))
        say(f"sweep {sweep_dir} again: " + (f"{kept} left as they are" if kept else "no run to keep"))
    try:
        ids = submit(sweep_dir, scheduler, jobs, configs, launcher, states, list(argv or sys.argv))
    except SweepError:
        if not reused:  # refused by the scheduler (a bad partition, say): leave no sweep folder behind
            shutil.rmtree(sweep_dir, ignore_errors=True)
            for empty in (sweep_dir.parent, sweep_dir.parent.parent):
                with contextlib.suppress(OSError):
                    empty.rmdir()
        raise
    if ids:
        say(f"submitted {len(ids)} run(s) to {scheduler.name}: job(s) {_compact(list(ids.values()))}")
    states = poll(sweep_dir, scheduler)
    detached = False
    if wait_for_end:
        states, detached = wait(sweep_dir, scheduler, progress, states)
        if detached:
            say(f"detached: the jobs go on; watch them with: filterlab sweep --status {sweep_dir}")
    return finish(sweep_dir, states, detached, draw=wait_for_end and not detached)


def finish(sweep_dir: Path, states: list[TaskState], detached: bool, draw: bool) -> dict[str, Any]:
    """Write the summary from the tasks' states (and the comparison figures once every run has ended)."""
    settle(states)
    p = read_json(sweep_dir / PLAN_FILE)
    todo = [Job(st.index, [], st.point, st.result()) for st in states]
    summary = summarise(todo, p["grid"], p["seeds"], sweep_dir, Path(p["config"]), detached,
                        extra={"launcher": p["launcher"], "jobs": _compact(sorted({st.job_id for st in states
                                                                                  if st.job_id}))})
    done = [st.run_dir for st in states if st.status == "completed"]
    if draw and len(done) >= 2 and all(st.ended for st in states):
        from ..viz.compare import CompareError, compare  # noqa: PLC0415 - here: torch and matplotlib only once there is something to draw

        try:
            summary["compare"] = compare([Path(d) for d in done if d], sweep_dir)["table"]
        except (CompareError, OSError) as e:
            summary["compare_error"] = str(e)
    return summary


def _compact(job_ids: list[str]) -> str:
    """["12_0", "12_1", "13"] -> "12_[0-1], 13" (roughly as Slurm writes arrays)."""
    groups: dict[str, list[int]] = {}
    singles = []
    for jid in job_ids:
        master, sep, idx = jid.partition("_")
        if sep and idx.isdigit():
            groups.setdefault(master, []).append(int(idx))
        else:
            singles.append(jid)
    parts = [f"{m}_[{_ranges(sorted(v))}]" for m, v in groups.items()] + singles
    return ", ".join(parts)


def _ranges(values: list[int]) -> str:
    out, start = [], None
    for i, v in enumerate(values):
        start = v if start is None else start
        if i + 1 == len(values) or values[i + 1] != v + 1:
            out.append(str(v) if v == start else f"{start}-{v}")
            start = None
    return ",".join(out)


def status_of(sweep_dir: Path) -> list[TaskState]:
    """Every task's state now (for ``filterlab sweep --status``)."""
    if not (Path(sweep_dir) / PLAN_FILE).is_file():
        raise SweepError(f"{sweep_dir}: not a cluster sweep folder (no {PLAN_FILE}); local sweeps end "
                         f"with their summary in sweep.json")
    return poll(Path(sweep_dir), scheduler_for(sweep_dir))
