"""Run one experiment config into a new run directory: the library entry point behind ``filterlab train``.

Everything that can be checked before training is (config, input image or data, device, output folder), so a bad
input creates no run directory. During training the process's global state stays under control: the torch thread
count is set for the run and restored after, the seed goes into a forked RNG, and SIGINT/SIGTERM only ask the
training loop to stop at its next step.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from . import config as C
from .runs import CONFIG_FILE, Run, atomic_write_text, base_meta, create_run_dir, now_iso

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DIVERGED = 0, 1, 2, 3


class InputError(ValueError):
    """Bad input found before training: the message names the file, key or value and what is accepted."""


class DeviceError(InputError):
    pass


class Diverged(RuntimeError):
    def __init__(self, step: int, value: float):
        super().__init__(f"the loss became {value} at step {step}")
        self.step, self.value = step, value


@dataclass
class Outcome:
    run_dir: Path
    status: str
    exit_code: int
    summary: dict[str, Any] | None = None
    error: str | None = None


def resolve_device(name: str) -> Any:
    """auto -> cuda when torch sees a GPU, else cpu; an explicit cuda without a GPU is an error, never a fallback."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device: cuda was asked for, but torch sees no CUDA GPU (torch.cuda.is_available() is "
                          "False); use --device cpu or --device auto")
    if name not in ("cpu", "cuda"):
        raise DeviceError(f"device: {name!r} is not one of auto, cpu, cuda")
    return torch.device(name)


def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[int]:
    """Set torch's intra-op thread count for the duration of a run and restore it after."""
    import torch

    old = torch.get_num_threads()
    n = n or default_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(old)


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
    """A one-line progress bar on stderr when it is a terminal; silent otherwise or when quiet."""

    def __init__(self, label: str, quiet: bool):
        self.label = label
        self.enabled = not quiet and sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, step: int, total: int, text: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if step < total and now - self.last < 0.1:
            return
        self.last = now
        width = 30
        done = int(width * step / max(total, 1))
        sys.stderr.write(f"\r{self.label} [{'#' * done}{'.' * (width - done)}] {step}/{total} {text}")
        if step >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


@dataclass
class Hooks:
    progress: Callable[[int, int], None]
    should_stop: Callable[[], bool]
    figures: Callable[[str, dict], None]
    diverged: Callable[[int, float], None] = field(default=lambda step, value: None)


def prepare(cfg: Any) -> dict[str, Any]:
    """Load and check the run's inputs before any run directory exists."""
    if cfg.kind == "single_image":
        from .images import ImageError, load_image

        try:
            image = load_image(cfg.data.image, cfg.data.root)
        except ImageError as e:
            raise InputError(f"data.image: {e}") from None
        target = cfg.data.target if cfg.data.target is not None else image.label
        if target is None:
            raise InputError(f"data.target: the image {cfg.data.image!r} has no known label; set data.target to the "
                             f"class to train towards (0 to {cfg.model.num_classes - 1})")
        if target >= cfg.model.num_classes:
            raise InputError(f"data.target: {target} is not a class of a {cfg.model.num_classes}-class model "
                             f"(accepted: 0 to {cfg.model.num_classes - 1})")
        return {"image": image}
    if cfg.kind == "classifier":
        from .classifier import prepare_data

        return {"data": prepare_data(cfg)}
    raise InputError(f"kind: {cfg.kind!r} cannot be trained")  # pragma: no cover - config validation stops this


def render_figures(kind: str, data: dict, out_dir: Path, cmap: str, dpi: int) -> list:
    """Every figure of a run, from plain arrays (in the figure helper process or in-process)."""
    from . import figures

    if kind == "single_image":
        out = figures.single_image_figures(data, out_dir, cmap, dpi)
        filters, loss, layer = data["filters"], np.asarray(data["loss"])[np.asarray(data["steps"])], "conv"
    else:
        out = figures.classifier_figures(data, out_dir, cmap, dpi)
        filters, loss, layer = data["filters"][:, :, 0], data["snap_loss"], "conv1"
    return out + figures.evolution_figures(filters, data["steps"], loss, out_dir, cmap, dpi, layer)


def train_config(cfg: Any, out_root: str | Path = "outputs", argv: list[str] | None = None, quiet: bool = True,
                 stop: StopFlag | None = None, figure_helper: bool = False, run_dir: Path | None = None) -> Outcome:
    """Run one validated config; returns where it went and how it ended. Bad input raises before a folder exists.

    ``figure_helper``: draw the figures in a forked helper process that overlaps torch's import and the training
    (see :mod:`filterlab.figure_worker`); the command line turns it on, library callers get in-process drawing.
    ``run_dir``: an empty run folder made beforehand (a cluster task records it before training starts).
    """
    inputs = prepare(cfg)
    worker = None
    if figure_helper and cfg.output.figures:
        from .figure_worker import FigureWorker

        worker = FigureWorker.start(render_figures)
    try:
        device = resolve_device(cfg.device)
        run_dir = create_run_dir(out_root, cfg.name) if run_dir is None else Path(run_dir)
    except BaseException:
        if worker:
            worker.cancel()
        raise
    try:
        import torch

        atomic_write_text(run_dir / CONFIG_FILE, C.dump_yaml(cfg))
        meta = base_meta(argv)
        meta.update(kind=cfg.kind, name=cfg.name, seed=cfg.seed, device=str(device), torch_version=torch.__version__,
                    cuda_device=torch.cuda.get_device_name(device) if device.type == "cuda" else None)
        run = Run(run_dir, meta)
    except BaseException:
        if worker:
            worker.cancel()
        raise
    return _train_in(run, cfg, inputs, device, quiet, stop, worker)


def resume_run(run_dir: str | Path, argv: list[str] | None = None, quiet: bool = True, stop: StopFlag | None = None,
               figure_helper: bool = False) -> Outcome:
    """Continue an interrupted, killed or failed run from its last complete checkpoint, in its own directory.

    Metrics logged after that checkpoint are dropped first, so the finished run's files are those of a run that was
    never interrupted (on the CPU, with the same seed: bit for bit).
    """
    from .runs import CHECKPOINT_FILE, META_FILE, METRICS_FILE, atomic_write_text as write, is_run_dir, read_json
    from .runs import read_metrics

    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        raise InputError(f"--resume {run_dir}: not a run directory (no meta.json and config.yaml)")
    meta = read_json(run_dir / META_FILE)
    if meta.get("status") == "completed":
        raise InputError(f"--resume {run_dir}: the run is already completed; nothing to resume")
    try:
        cfg = C.load(run_dir / CONFIG_FILE)
    except C.ConfigError as e:
        raise InputError(f"--resume {run_dir}: {e}") from None
    ckpt_path = run_dir / CHECKPOINT_FILE
    if not ckpt_path.is_file():
        raise InputError(f"--resume {run_dir}: no checkpoint to resume from (the run stopped before its first one); "
                         f"start it again with: filterlab train {run_dir / CONFIG_FILE}")
    inputs = prepare(cfg)
    device = resolve_device(cfg.device)
    import torch

    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    if ckpt.get("kind") != cfg.kind or (cfg.kind == "single_image" and "optimizer" not in ckpt):
        raise InputError(f"--resume {run_dir}: the checkpoint cannot be resumed")
    if cfg.kind == "single_image":
        from .images import Image28

        old = inputs["image"]
        inputs["image"] = Image28(ckpt["image"].numpy(), old.label, old.description, old.spec, old.notes)
    step = int(ckpt["step"])
    kept = [r for r in read_metrics(run_dir) if r.get("step", 0) <= step]
    write(run_dir / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in kept))
    resumes = list(meta.get("resumed", [])) + [{"time": now_iso(), "from_step": step,
                                                 "previous_status": meta.get("status")}]
    meta.update(status="running", error=None, end_time=None, resumed=resumes,
                command_line=list(sys.argv if argv is None else argv))
    run = Run(run_dir, meta)
    worker = None
    if figure_helper and cfg.output.figures:
        from .figure_worker import FigureWorker

        worker = FigureWorker.start(render_figures)  # after torch: it falls back to drawing in-process
    return _train_in(run, cfg, inputs, device, quiet, stop, worker, resume=ckpt)


def _train_in(run: Run, cfg: Any, inputs: dict, device: Any, quiet: bool, stop: StopFlag | None, worker: Any,
              resume: dict | None = None) -> Outcome:
    import torch

    run_dir = run.dir
    stop = stop or StopFlag()
    progress = Progress(cfg.name, quiet)
    diverged: list[tuple[int, float]] = []

    def figures(kind: str, data: dict) -> None:
        job = dict(kind=kind, data=data, out_dir=run.figures_dir, cmap=cfg.output.cmap, dpi=cfg.output.dpi)
        if worker is not None:
            worker.submit(**job)
        else:
            render_figures(**job)

    hooks = Hooks(progress=progress, should_stop=stop, figures=figures,
                  diverged=lambda step, value: diverged.append((step, value)))
    try:
        with stop.installed(), torch_threads(cfg.threads) as threads:
            run.update_meta(threads=threads, interop_threads=torch.get_num_interop_threads())
            if cfg.kind == "single_image":
                from . import single_image

                summary = single_image.run(cfg, inputs["image"], run, device, hooks, resume=resume)
            else:
                from . import classifier

                summary = classifier.run(cfg, inputs["data"], run, device, hooks, resume=resume)
            if worker is not None:
                if stop() or diverged:
                    worker.cancel()  # no figures for a run that did not finish
                else:
                    worker.wait()
    except KeyboardInterrupt:
        if worker is not None:
            worker.cancel()
        run.finish("interrupted", error="interrupted by a second Ctrl-C")
        write_report(run_dir)
        return Outcome(run_dir, "interrupted", 128 + signal.SIGINT, error="interrupted")
    except Exception as e:
        if worker is not None:
            worker.cancel()
        tb = traceback.format_exc(limit=-3)
        run.finish("failed", error=f"{type(e).__name__}: {e}", traceback=tb)
        write_report(run_dir)
        return Outcome(run_dir, "failed", EXIT_FAILED, error=f"{type(e).__name__}: {e}")
    if diverged:
        step, value = diverged[0]
        msg = f"the loss became {value} at step {step}; the last checkpoint with a finite loss is kept"
        run.finish("diverged", error=msg)
        outcome = Outcome(run_dir, "diverged", EXIT_DIVERGED, summary, error=msg)
    elif stop():
        run.finish("interrupted", error=f"stopped by signal {stop.signum}")
        outcome = Outcome(run_dir, "interrupted", 128 + int(stop.signum), summary, error="interrupted")
    else:
        run.finish("completed")
        outcome = Outcome(run_dir, "completed", EXIT_OK, summary)
    write_report(run_dir)
    return outcome


def write_report(run_dir: Path) -> None:
    """The run's report.html; a failure here is reported but does not change how the run ended."""
    from .report import build_report

    try:
        build_report(run_dir)
    except Exception as e:  # noqa: BLE001 - the run's own files are complete; only the report is missing
        print(f"filterlab: warning: could not write {run_dir}/report.html: {type(e).__name__}: {e}", file=sys.stderr)
