"""A run from start to end: checks before the folder exists, training, signals, statuses, resume, the report.

Everything that can be checked before training is (config, geometry, inputs, device, output folder), so a bad input
creates no run directory. During training the process's global state stays under control: the torch thread count is
set for the run and restored after, the seed goes into a forked RNG, and SIGINT/SIGTERM only ask the training loop
to stop at its next step. A run folder holds a lock while a process trains in it, so two processes never write the
same folder, and a resume from any working folder finds its data (paths are saved absolute).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import experiments
from .board import require
from .core import config as C
from .core.artifacts import Checkpoint, load_tied
from .core.cores import CoreShare
from .core.errors import EXIT_DIVERGED, EXIT_FAILED, EXIT_OK, ArtifactError, InputError, RunDirError
from .core.hold import Hold
from .core.locks import RunLock
from .core.rundir import (
    CONFIG_FILE,
    METRICS_FILE,
    Run,
    atomic_write_text,
    base_meta,
    create_run_dir,
    is_run_dir,
    now_iso,
)
from .core.runfiles import read_meta, read_metrics
from .experiments.base import Experiment, FigureOptions, Hooks
from .preflight import check_config, check_geometry
from .viz.worker import FigureWorker, draw_figures


class DeviceError(InputError):
    pass


@dataclass
class Outcome:
    run_dir: Path
    status: str
    exit_code: int
    summary: dict[str, Any] | None = None
    error: str | None = None


def resolve_device(name: str) -> Any:
    """auto -> cuda when torch sees a GPU, else cpu; an explicit cuda without a GPU is an error, never a fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device: cuda was asked for, but torch sees no CUDA GPU (torch.cuda.is_available() is "
                          "False); set device to cpu or auto")
    if name not in ("cpu", "cuda"):
        raise DeviceError(f"device: {name!r} is not one of auto, cpu, cuda")
    return torch.device(name)


class StopFlag:
    """SIGINT/SIGTERM set a flag that the training loop reads at its next step; a second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self) -> bool:
        return self.signum is not None

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopFlag]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def handler(signum: int, frame: Any) -> None:
            if self.signum is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.signum = signum

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)


class Progress:
    """A progress bar on stderr (rich) when it is a terminal; silent otherwise or when quiet."""

    def __init__(self, label: str, quiet: bool):
        self.label = label
        self.enabled = not quiet and sys.stderr.isatty()
        self.last = 0.0
        self._bar: Any = None
        self._task: Any = None

    def __call__(self, step: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if step < total and now - self.last < 0.1:
            return
        self.last = now
        if self._bar is None:
            from rich.console import Console  # noqa: PLC0415 - only on a terminal: rich costs 0.1 s to import
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn  # noqa: PLC0415
            from rich.progress import Progress as Bar  # noqa: PLC0415

            self._bar = Bar(TextColumn(self.label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=Console(stderr=True))
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=total)
        self._bar.update(self._task, completed=step, total=total)
        if step >= total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


# ---------------------------------------------------------------------------------------------------------------------
# Before the folder exists




def train_config(cfg: Any, out_root: str | Path = "outputs", argv: list[str] | None = None, quiet: bool = True,
                 stop: StopFlag | None = None, figure_helper: bool = False, run_dir: Path | None = None,
                 preset: str | Path | None = None, progress: Any = None, reraise: bool = False,
                 worker: FigureWorker | None = None) -> Outcome:
    """Run one validated config; returns where it went and how it ended. Bad input raises before a folder exists.

    ``figure_helper``: draw the figures in a forked helper process that overlaps torch's import and the training
    (see :mod:`filterlab.viz.worker`); the command line turns it on, library callers get in-process drawing.
    ``run_dir``: an empty run folder made beforehand (a cluster task records it before training starts).
    ``preset``: the config file ``cfg`` was read from, recorded in meta.json so that ``filterlab runs`` can tell
    what the run changed from it.
    ``progress``: a progress display (called with step and total, then ``close()``) instead of the terminal bar.
    ``reraise``: after a failure is recorded in the run, raise the exception again (a Python caller's traceback).
    ``worker``: a figure helper the caller forked before torch was imported (:func:`start_figure_worker`); this
    function owns it from here on (it is cancelled if the run does not get to its figures).
    """
    try:
        check_geometry(cfg)
        exp = experiments.get(cfg.kind)
        inputs = exp.prepare(cfg)
        check_config(cfg, inputs)
    except BaseException:
        if worker:
            worker.cancel()  # refused before a folder exists: the helper exits
        raise
    written = experiments.absolute_paths(cfg)
    if worker is None and figure_helper and cfg.output.figures:
        worker = FigureWorker.start(_draw, experiments.card(cfg.kind).figures)
    elif worker is not None and not cfg.output.figures:
        worker.cancel()
        worker = None
    try:
        device = resolve_device(cfg.device)
        run_dir = create_run_dir(out_root, cfg.name) if run_dir is None else Path(run_dir)
        lock = RunLock.acquire(run_dir)
        atomic_write_text(run_dir / CONFIG_FILE, C.dump_yaml(written))
        meta = base_meta(argv)
        meta.update(kind=cfg.kind, name=cfg.name, seed=cfg.seed, device=str(device), torch_version=torch.__version__,
                    cuda_device=torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                    paths_as_written=experiments.path_values(cfg),
                    preset=str(Path(preset).resolve()) if preset is not None else None)
        run = Run(run_dir, meta)
    except BaseException:
        if worker:
            worker.cancel()
        raise
    return _train_in(run, lock, exp, written, inputs, device, progress or Progress(cfg.name, quiet), stop, worker,
                     reraise=reraise)


def resume_run(run_dir: str | Path, argv: list[str] | None = None, quiet: bool = True, stop: StopFlag | None = None,
               figure_helper: bool = False, progress: Any = None, reraise: bool = False) -> Outcome:
    """Continue an interrupted, killed or failed run from its last complete checkpoint, in its own directory.

    Metrics logged after that checkpoint are dropped first, so the finished run's files are those of a run that was
    never interrupted (on the CPU, with the same seed: bit for bit). A run whose process is still alive is refused.
    """
    run_dir = Path(run_dir).resolve()
    if not is_run_dir(run_dir):
        raise InputError(f"{run_dir}: not a run directory (no meta.json and config.yaml)")
    if not os.access(run_dir, os.W_OK | os.X_OK):  # before the lock file: a read-only folder is one line
        raise RunDirError(f"{run_dir}: the folder is not writable (read-only or no permission); a run is resumed in "
                          "its own folder: copy it somewhere writable and resume the copy")
    lock = RunLock.acquire(run_dir)  # refuses a run that a live process holds
    try:
        meta = read_meta(run_dir)
        if meta["status"] == "completed":
            raise InputError(f"{run_dir}: the run is already completed; nothing to resume")
        try:
            cfg = experiments.load_config(run_dir / CONFIG_FILE)
        except InputError as e:
            raise InputError(f"{run_dir}: {e}") from None
        if cfg.output.tensorboard:
            require(f"{run_dir}: output.tensorboard")
        ckpt = _resumable(run_dir, cfg)
        exp = experiments.get(cfg.kind)
        inputs = exp.prepare(cfg)
        device = resolve_device(cfg.device)
        kept = [r for r in read_metrics(run_dir) if r.get("step", 0) <= ckpt.step]
    except BaseException:
        lock.release()
        raise
    atomic_write_text(run_dir / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in kept))
    resumes = list(meta.get("resumed", [])) + [{"time": now_iso(), "from_step": ckpt.step, "pid": os.getpid(),
                                                 "previous_status": meta.get("status")}]
    meta.update(status="running", error=None, end_time=None, resumed=resumes, pid=os.getpid(),
                command_line=list(sys.argv if argv is None else argv))
    run = Run(run_dir, meta)
    worker = FigureWorker.start(_draw, experiments.card(cfg.kind).figures) if figure_helper and cfg.output.figures \
        else None
    return _train_in(run, lock, exp, cfg, inputs, device, progress or Progress(cfg.name, quiet), stop, worker,
                     resume=ckpt, reraise=reraise)


def _resumable(run_dir: Path, cfg: Any) -> Checkpoint:
    if not (run_dir / "checkpoint.pt").is_file():
        raise InputError(f"{run_dir}: no checkpoint to resume from (the run stopped before its first one); "
                         f"start it again with: filterlab train {run_dir / CONFIG_FILE}")
    try:
        ckpt = load_tied(run_dir, C.tied(cfg.model))[0]
        assert ckpt is not None
    except ArtifactError as e:
        raise InputError(f"{run_dir}: {e}") from None
    if ckpt.kind != cfg.kind or not ckpt.training.get("optimizer"):
        raise InputError(f"{run_dir}: the checkpoint holds no training state to resume from; start it "
                         f"again with: filterlab train {run_dir / CONFIG_FILE}")
    return ckpt


# ---------------------------------------------------------------------------------------------------------------------
# Training and how it ends


def _draw(kind: str, data: dict, out_dir: Path, cmap: str, dpi: int, claim: Any = None) -> list:
    """Every figure of a run, from plain arrays (in the figure helpers, sharing them through ``claim``, or
    in-process)."""
    return draw_figures(kind, data, out_dir, cmap, dpi, claim)


def _train_in(run: Run, lock: RunLock, exp: Experiment, cfg: Any, inputs: Any, device: Any, progress: Any,
              stop: StopFlag | None, worker: FigureWorker | None, resume: Checkpoint | None = None,
              reraise: bool = False) -> Outcome:
    stop = stop or StopFlag()
    earlier = list(run.meta.get("threads_history", []))  # a resumed run keeps its earlier attempts' counts
    cores = CoreShare(cfg.threads, device.type, str(run.dir), step=resume.step if resume else 0,
                      on_change=lambda share: run.update_meta(threads=share.history[0]["threads"],
                                                              threads_source=share.source,
                                                              threads_history=earlier + share.history))

    hold = Hold.from_env(run.dir)  # a test hook; None unless FILTERLAB_TEST_HOLD is set

    def at(phase: str) -> None:
        if hold is not None:
            hold.at(phase, stop)

    with stop.installed():  # from here to the commit, a signal only asks to stop: never a half-ended run
        return _train_and_end(run, lock, exp, cfg, inputs, device, progress, stop, worker, resume, reraise, cores,
                              hold, at)


def _train_and_end(run: Run, lock: RunLock, exp: Experiment, cfg: Any, inputs: Any, device: Any, progress: Any,
                   stop: StopFlag, worker: FigureWorker | None, resume: Checkpoint | None, reraise: bool,
                   cores: CoreShare, hold: Hold | None, at: Callable[[str], None]) -> Outcome:
    """Train, draw, then end the run in one order (see :func:`_ended`); the status is decided once, after the
    figures: completed only when training finished, the figures are drawn and no stop was asked for."""
    diverged: list[tuple[int, float]] = []

    def tick(step: int = 0, force: bool = False) -> None:
        lock.heartbeat()
        cores.rebalance(step, force)
        if hold is not None:
            hold.tick(stop)

    hooks = Hooks(progress=progress, should_stop=stop, diverged=lambda step, value: diverged.append((step, value)),
                  tick=tick)
    board: list[Any] = []  # the TensorBoard writer once open (output.tensorboard), closed by _ended
    extras: dict[str, Any] = {}  # what the figure helper derived beyond the files (the report's slider data)
    try:
        with cores:
            run.update_meta(interop_threads=torch.get_num_interop_threads())
            if cfg.output.tensorboard:
                from .board.writer import Board  # noqa: PLC0415 - TensorBoard only when asked for

                hooks.board = Board(run.dir, cfg, resume.step if resume else None)
                board.append(hooks.board)
                run.observers.append(hooks.board.record)
            summary = exp.train(cfg, inputs, run, device, hooks, resume)
            at("trained")
            if not (stop() or diverged):
                extras = _figures(exp, cfg, run, worker)
                at("figures")
            elif worker is not None:
                worker.cancel()  # no figures for a run that did not finish: --resume draws them
    except KeyboardInterrupt:
        return _ended(run, lock, worker, progress, "interrupted", 128 + signal.SIGINT,
                      "interrupted by a second Ctrl-C", board=board, at=at)
    except Exception as e:  # noqa: BLE001 - any failure inside training is recorded in the run, not lost
        error = os_error_text(e) or f"{type(e).__name__}: {e}"
        outcome = _ended(run, lock, worker, progress, "failed", EXIT_FAILED, error, traceback.format_exc(limit=-3),
                         board=board, at=at)
        if reraise:
            raise
        return outcome
    if diverged:
        step, value = diverged[0]
        msg = f"the loss became {value} at step {step}; the last checkpoint with a finite loss is kept"
        return _ended(run, lock, None, progress, "diverged", EXIT_DIVERGED, msg, summary=summary, board=board, at=at)
    if stop():
        return _ended(run, lock, None, progress, "interrupted", 128 + int(stop.signum or 0),
                      f"stopped by signal {stop.signum}", summary=summary, board=board, at=at)
    return _ended(run, lock, None, progress, "completed", EXIT_OK, None, summary=summary, board=board, at=at,
                  known_player=extras.get("player"))


def os_error_text(e: BaseException) -> str | None:
    """An OSError (no space left, read-only, permission) as one line naming the path and the cause (the run's own
    writes name their file: core.rundir.atomic_open). None for any other exception."""
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename or '?'}: {e.strerror}"
    return None


def _figures(exp: Experiment, cfg: Any, run: Run, worker: FigureWorker | None) -> dict[str, Any]:
    """The run's figures, from its own files (exactly what `filterlab visualize` draws); returns what the figure
    helper derived beyond them (FigureWorker.extras)."""
    if not cfg.output.figures:
        return {}
    data = exp.figure_data(run.dir, cfg, FigureOptions())
    job = dict(kind=cfg.kind, data=data, out_dir=run.figures_dir, cmap=cfg.output.cmap, dpi=cfg.output.dpi)
    if worker is not None:
        worker.submit(**job)
        from .viz import report  # noqa: F401, PLC0415 - jinja2 and the report's code load while the helpers draw
        worker.wait()
        return worker.extras
    _draw(**job)
    return {}


def _ended(run: Run, lock: RunLock, worker: FigureWorker | None, progress: Any, status: str, code: int,
           error: str | None, tb: str | None = None, summary: dict[str, Any] | None = None,
           board: list[Any] | None = None, at: Callable[[str], None] = lambda phase: None,
           known_player: Any = None) -> Outcome:
    """End a run in one order, so that whenever a kill lands the files agree: report.html (already showing the final
    status), summary.json's status, meta.json's status (the commit), the lock released; the caller then prints the
    run folder and exits with ``code``. Killed before the commit, meta.json still says running (shown as stale) and
    --resume finishes the run; after it, every file says the final status."""
    progress.close()
    if worker is not None:
        worker.cancel()
    for b in board or []:
        try:
            b.finish(summary, status)  # the summary text, final metrics and HParams end, then close
        except Exception as e:  # noqa: BLE001 - the run's own files matter more than its event files
            print(f"filterlab: warning: the TensorBoard events could not be finished: {e}", file=sys.stderr)
    extra = {"traceback": tb} if tb else {}
    final = {"status": status, "error": error, "end_time": now_iso(), **extra}
    from .viz.report import write_report  # noqa: PLC0415 - jinja2: loaded once training is over

    problem = write_report(run.dir, final, known_player)
    if problem is not None and status == "completed":  # no report: the run is not complete (--resume writes it)
        status, code, error = "failed", EXIT_FAILED, f"report.html: {problem}"
        final.update(status=status, error=error)
    at("report")
    run.finish(status, error=error, between=lambda: at("summary"), **{k: v for k, v in final.items()
                                                                      if k not in ("status", "error")})
    at("committed")
    lock.release()
    return Outcome(run.dir, status, code, summary, error=error if status != "completed" else None)
