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
from typing import IO, Any

from .. import experiments
from ..core.cores import cpu_pool
from ..core.errors import InputError
from ..core.rundir import atomic_write_json, create_run_dir, find_runs, read_json
from ..lifecycle import train_config
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
    """One worker process; what it prints besides the protocol goes to its own log file in the sweep folder."""

    def __init__(self, log: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.log = log
        with open(log, "a", encoding="utf-8") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "filterlab.sweeps"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        self.job: Job | None = None

    @property
    def stdin(self) -> IO[str]:
        assert self.proc.stdin is not None
        return self.proc.stdin

    @property
    def stdout(self) -> IO[str]:
        assert self.proc.stdout is not None
        return self.proc.stdout

    def send(self, job: Job | None, payload: dict) -> None:
        self.job = job
        self.stdin.write(json.dumps(payload) + "\n")
        self.stdin.flush()

    def close(self) -> None:
        if not self.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.stdin.close()

    def death(self, code: int) -> str:
        """Why the process ended: its signal or exit status, and the last line it wrote to its log."""
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        try:
            lines = [x for x in self.log.read_text(encoding="utf-8", errors="replace").splitlines() if x.strip()]
        except OSError:
            lines = []
        cause = f": {lines[-1].strip()[:300]}" if lines else ""
        return f"the worker process died ({how}){cause} (log: {self.log})"


class LocalSweep:
    """The worker pool of one sweep: dispatch jobs, read answers, replace dead workers, stop on a signal."""

    def __init__(self, config: Path, todo: list[Job], out: Path, sweep_dir: Path, argv: list[str] | None,
                 progress: Any, jobs: int):
        self.config, self.todo, self.out, self.sweep_dir = config, todo, out, sweep_dir
        self.argv, self.progress = list(argv or sys.argv), progress
        self.queue = list(todo)
        self.started = time.time()
        self.interrupted = False
        self.compare_table: str | None = None
        self.compared = False
        self.sel = selectors.DefaultSelector()
        (sweep_dir / "workers").mkdir(exist_ok=True)
        self.count = 0
        for _ in range(min(jobs, len(self.queue))):
            self.dispatch(self.start_worker())

    def start_worker(self) -> Worker:
        self.count += 1
        w = Worker(self.sweep_dir / "workers" / f"{self.count}.log")
        self.sel.register(w.stdout, selectors.EVENT_READ, w)
        return w

    def busy(self, but: Worker) -> bool:
        return any(k.data is not but and k.data.job is not None for k in self.sel.get_map().values())

    def dispatch(self, w: Worker) -> None:
        """The next job to ``w``; with none left, the last worker draws the comparison and every worker closes."""
        if self.queue and not self.interrupted:
            job = self.queue.pop(0)
            w.send(job, {"config": str(self.config), "sets": job.sets, "out": str(self.out),
                         "argv": self.argv + [f"(sweep run {job.index + 1} of {len(self.todo)})"]})
            return
        w.job = None
        done = [j.result["run_dir"] for j in self.todo if j.result.get("status") == "completed"]
        if not self.busy(w) and not self.interrupted and not self.compared and len(done) >= 2:
            # the last worker draws the comparison: it has torch and matplotlib loaded already
            self.compared = True
            w.send(None, {"compare": done, "out": str(self.sweep_dir)})
            self.compare_table = json.loads(w.stdout.readline() or "{}").get("table")
        w.close()

    def on_signal(self, signum: int, frame: Any) -> None:
        """Ctrl-C or SIGTERM: start nothing new, and ask the running runs to stop at their next step (they save a
        checkpoint and end interrupted); the sweep then writes its summary as usual."""
        self.interrupted = True
        for key in list(self.sel.get_map().values()):
            if key.data.job is not None and key.data.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(key.data.proc.pid, signal.SIGINT)

    def answered(self, w: Worker, line: str) -> None:
        assert w.job is not None
        w.job.result = json.loads(line)
        if self.progress:
            self.progress(w.job, len(self.todo))
        if w.job.result["status"] == "interrupted":
            self.interrupted = True
        self.dispatch(w)

    def died(self, w: Worker) -> None:
        """The worker is gone: its run (if any) failed, and a fresh worker takes the rest."""
        self.sel.unregister(w.stdout)
        code = w.proc.wait()
        if w.job is None or w.job.result:
            return
        w.job.result = {"run_dir": _find_run_dir(self.out, w.job, self.started), "status": "failed",
                        "exit_code": 1, "error": w.death(code)}
        if self.progress:
            self.progress(w.job, len(self.todo))
        if self.queue and not self.interrupted:
            self.dispatch(self.start_worker())

    def run(self) -> bool:
        """Until every worker has closed; returns whether the sweep was interrupted."""
        old = {}
        if threading.current_thread() is threading.main_thread():
            old = {sig: signal.signal(sig, self.on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            while self.sel.get_map():
                for key, _ in self.sel.select():
                    line = key.data.stdout.readline()
                    if line:
                        self.answered(key.data, line)
                    else:
                        self.died(key.data)
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
        return self.interrupted


def run_sweep(config: Path, grid: dict[str, list[str]], seeds: int = 1, jobs: int = 1, out: Path = Path("outputs"),
              base_sets: list[str] | None = None, argv: list[str] | None = None,
              progress: Any = None) -> dict[str, Any]:
    """Run the sweep; returns the summary (also written as sweep.json and sweep.csv in the sweep folder)."""
    cores = cpu_pool().budget
    jobs = max(1, min(jobs, cores))
    todo = plan(config, grid, seeds, list(base_sets or []), max(1, cores // jobs))
    name = experiments.load_config(config, list(base_sets or [])).name
    sweep_dir = create_run_dir(Path(out) / "sweeps", name, figures=False)
    pool = LocalSweep(config, todo, Path(out), sweep_dir, argv, progress, jobs)
    interrupted = pool.run()
    summary = summarise(todo, grid, seeds, sweep_dir, config, interrupted)
    if pool.compare_table:
        summary["compare"] = pool.compare_table
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
