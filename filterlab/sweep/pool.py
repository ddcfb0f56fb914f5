"""Sweeps: every combination of a grid, times seeds, one run directory each, in a few long-lived worker processes.

A worker imports torch once and trains run after run, so start-up is paid per worker, not per run. Each worker is
its own process: a run that fails, or a worker that is killed, is recorded as failed and the sweep goes on with a
fresh worker. ``--jobs J`` runs J workers at once; a ``threads: 0`` run takes its share of the cores like any run
(:mod:`filterlab.core.cores`), so the last one takes the cores back, and an explicit count is capped at cores // J.
The sweep folder gets ``sweep.json``, ``sweep.csv`` and the comparison figures.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .. import experiments
from ..core.cores import cpu_pool
from ..core.errors import InputError
from ..core.lifecycle import train_config
from ..core.rundir import atomic_write_json, create_run_dir, find_runs, read_json
from ..viz.compare import CompareError, compare
from .plan import Job, plan
from .summary import summarise

# ---------------------------------------------------------------------------------------------------------------------
# The worker: one process, many runs; one JSON line in, one JSON line out per run


def worker_main() -> None:  # pragma: no cover - runs in the worker process; exercised through the sweep tests
    """Read jobs from stdin, train each, answer on the protocol stream (stdout is kept clean for it)."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything else printed goes to stderr, never into the protocol

    for line in sys.stdin:
        job = json.loads(line)
        if "compare" in job:  # the sweep's last step, done here where torch and matplotlib are already loaded
            try:
                answer = {"table": compare(job["compare"], Path(job["out"]))["table"]}
            except (CompareError, OSError) as e:
                answer = {"table": None, "error": str(e)}
            proto.write(json.dumps(answer) + "\n")
            continue
        try:
            cfg = experiments.load_config(job["config"], job["sets"])
            outcome = train_config(cfg, out_root=job["out"], argv=job["argv"], quiet=True)
            answer = {"run_dir": str(outcome.run_dir), "status": outcome.status, "exit_code": outcome.exit_code,
                      "error": outcome.error}
        except (InputError, OSError) as e:
            answer = {"run_dir": None, "status": "failed", "exit_code": 2, "error": str(e)}
        proto.write(json.dumps(answer) + "\n")
        if answer["status"] == "interrupted":
            break


class Worker:
    def __init__(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "filterlab.sweep"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        self.job: Job | None = None

    def send(self, job: Job, payload: dict) -> None:
        self.job = job
        self.proc.stdin.write(json.dumps(payload) + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()


def run_sweep(config: Path, grid: dict[str, list[str]], seeds: int = 1, jobs: int = 1, out: Path = Path("outputs"),
              base_sets: list[str] | None = None, argv: list[str] | None = None,
              progress: Any = None) -> dict[str, Any]:
    """Run the sweep; returns the summary (also written as sweep.json and sweep.csv in the sweep folder)."""
    cores = cpu_pool().budget
    jobs = max(1, min(jobs, cores))
    threads = max(1, cores // jobs)
    todo = plan(config, grid, seeds, list(base_sets or []), threads)
    name = experiments.load_config(config, list(base_sets or [])).name
    sweep_dir = create_run_dir(Path(out) / "sweeps", name, figures=False)
    started = time.time()
    queue = list(todo)
    workers = [Worker() for _ in range(min(jobs, len(queue)))]
    sel = selectors.DefaultSelector()
    for w in workers:
        sel.register(w.proc.stdout, selectors.EVENT_READ, w)
    interrupted = False

    def on_signal(signum: int, frame: Any) -> None:
        """Ctrl-C or SIGTERM: start nothing new, and ask the running runs to stop at their next step (they save a
        checkpoint and end interrupted); the sweep then writes its summary as usual."""
        nonlocal interrupted
        interrupted = True
        for key in list(sel.get_map().values()):
            if key.data.job is not None and key.data.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(key.data.proc.pid, signal.SIGINT)

    compare_table: list[str | None] = []

    def dispatch(w: Worker) -> None:
        if queue and not interrupted:
            job = queue.pop(0)
            w.send(job, {"config": str(config), "sets": job.sets, "out": str(out),
                         "argv": list(argv or sys.argv) + [f"(sweep run {job.index + 1} of {len(todo)})"]})
            return
        w.job = None
        busy = [x.data for x in sel.get_map().values() if x.data is not w and x.data.job is not None]
        done = [j.result["run_dir"] for j in todo if j.result.get("status") == "completed"]
        if not busy and not interrupted and not compare_table and len(done) >= 2:
            # the last worker draws the comparison: it has torch and matplotlib loaded already
            compare_table.append(None)
            w.proc.stdin.write(json.dumps({"compare": done, "out": str(sweep_dir)}) + "\n")
            w.proc.stdin.flush()
            answer = json.loads(w.proc.stdout.readline() or "{}")
            compare_table[0] = answer.get("table")
        w.close()

    for w in workers:
        dispatch(w)
    old_handlers = {}
    if threading.current_thread() is threading.main_thread():
        old_handlers = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while sel.get_map():
            for key, _ in sel.select():
                w: Worker = key.data
                line = w.proc.stdout.readline()
                if line:
                    w.job.result = json.loads(line)
                    if progress:
                        progress(w.job, len(todo))
                    if w.job.result["status"] == "interrupted":
                        interrupted = True
                    dispatch(w)
                    continue
                # the worker is gone: its run (if any) failed, and a fresh worker takes the rest
                sel.unregister(w.proc.stdout)
                code = w.proc.wait()
                if w.job is not None and not w.job.result:
                    w.job.result = {"run_dir": _find_run_dir(out, w.job, started), "status": "failed",
                                    "exit_code": 1, "error": f"the worker process died (exit status {code})"}
                    if progress:
                        progress(w.job, len(todo))
                    if queue and not interrupted:
                        nw = Worker()
                        sel.register(nw.proc.stdout, selectors.EVENT_READ, nw)
                        dispatch(nw)
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
    summary = summarise(todo, grid, seeds, sweep_dir, config, interrupted)
    if compare_table and compare_table[0]:
        summary["compare"] = compare_table[0]
    return summary


def _find_run_dir(out: Path, job: Job, since: float) -> str | None:
    """The run directory a dead worker was writing, found by the job marker in its command line."""
    marker = f"(sweep run {job.index + 1} of "
    for d in find_runs(out):
        try:
            meta = read_json(d / "meta.json")
        except (OSError, ValueError):
            continue
        if any(marker in a for a in meta.get("command_line", [])) and d.stat().st_mtime >= since - 1:
            if meta.get("status") == "running":
                meta.update(status="failed", error="the sweep worker running it was killed")
                atomic_write_json(d / "meta.json", meta)
            return str(d)
    return None
