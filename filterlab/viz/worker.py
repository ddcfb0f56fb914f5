"""Draw a run's figures in forked helper processes while the main process imports torch and trains.

A short run's time is mostly fixed cost: importing torch (~1.5-2 s here) and importing matplotlib, loading its
fonts and drawing (~1.2 s of CPU). The two need different libraries and there are two cores, so the helper is forked
before torch is imported (a process without threads forks safely), imports matplotlib and warms it up while the
parent imports torch and trains, then draws from the plain arrays the parent sends. The parent only waits while the
figures are drawn, so the helper forks once more when the job comes (the copy is warm already) and the two take
the kind's figure tasks (``figure_tasks`` in its figures module) from one queue. Where fork is not available, or
torch is already loaded in this process (several runs in one process), figures are drawn in-process instead.
"""

from __future__ import annotations

import gc
import os
import pickle
import struct
import sys
import traceback
from collections.abc import Callable
from typing import Any


def draw_figures(kind: str, data: dict[str, Any], out_dir: Any, cmap: str, dpi: int,
                 claim: Callable[[], int | None] | None = None) -> list[Any]:
    """Every figure of a run of ``kind`` from plain arrays, through the kind's figures module (card.figures): its
    ``figure_tasks`` where it has them, else its ``draw_run`` as one task.

    ``claim``: where several processes share the drawing, it hands out task numbers (each once, across them all)
    and None once all are taken; this process draws only the tasks it claims (see :func:`run_tasks`)."""
    import importlib  # noqa: PLC0415

    from .. import experiments  # noqa: PLC0415 - the registry is torch-free; the kind's module may not be

    module = importlib.import_module(experiments.card(kind).figures or experiments.KINDS[kind] + ".experiment")
    tasks = (module.figure_tasks(data, out_dir, cmap, dpi) if hasattr(module, "figure_tasks")
             else [lambda: module.draw_run(data, out_dir, cmap, dpi)])
    if claim is not None:  # a figure helper: what the report needs from the GIF is derived here, beside the drawing
        tasks = [_and_player(task, out_dir) for task in tasks]
    return run_tasks(tasks, claim)


EXTRAS: dict[str, Any] = {}  # what this helper derived for the parent beyond the files: "player" (see _and_player)


def _and_player(task: Callable[[], list[Any]], out_dir: Any) -> Callable[[], list[Any]]:
    """``task``, and once it has written the evolution GIF, the report's slider data read back from it (as the
    report would read it: viz.player.found), so the parent does not decode the GIF again after the drawing."""
    def run() -> list[Any]:
        infos = task()
        if any(getattr(info, "name", None) == "evolution_gif" for info in infos):
            from pathlib import Path  # noqa: PLC0415

            from .player import found  # noqa: PLC0415

            try:
                EXTRAS["player"] = found(Path(out_dir))
            except Exception:  # noqa: BLE001 - only a head start: the report reads the GIF itself then
                EXTRAS.pop("player", None)
        return infos
    return run


QUEUE = 1024  # task numbers in a shared queue (4 bytes each: well within a pipe's buffer)


def run_tasks(tasks: list[Callable[[], list[Any]]], claim: Callable[[], int | None] | None = None) -> list[Any]:
    """Run every task (``claim`` None), or those whose numbers ``claim`` hands out until it says None or gives a
    number past the last task; the queue's last number, QUEUE - 1, takes every task from there on."""
    if claim is None:
        return [info for task in tasks for info in task()]
    done: list[Any] = []
    while (i := claim()) is not None and i < len(tasks):
        for task in tasks[i:] if i == QUEUE - 1 else tasks[i:i + 1]:
            done += task()
    return done


class _Claims:
    """Task numbers 0, 1, ... for the processes that share one pipe: each read takes the next whole number (a pipe
    read is atomic under the pipe's lock), so every task is drawn once, by whichever process is free first."""

    def __init__(self) -> None:
        self._r, w = os.pipe()
        _write_all(w, b"".join(struct.pack("=I", i) for i in range(QUEUE)))
        os.close(w)

    def __call__(self) -> int | None:
        raw = os.read(self._r, 4)
        return struct.unpack("=I", raw)[0] if len(raw) == 4 else None


def _render_in_two(render: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """``render(**kwargs)`` shared between this helper and a copy forked from it now (warm already: the fork costs
    milliseconds), the figure tasks taken from one queue; raises FigureError if the copy failed."""
    claims = _Claims()
    result_r, result_w = os.pipe()
    gc.freeze()  # the copy's collector leaves the shared objects alone: their pages are not copied for nothing
    pid = os.fork()
    if pid == 0:  # the copy: draws what it claims, reports, exits
        code = 0
        try:
            os.close(result_r)
            render(**kwargs, claim=claims)
            _write_all(result_w, pickle.dumps(("ok", EXTRAS)))
        except BaseException as e:  # noqa: BLE001 - everything is reported to the helper
            try:
                _write_all(result_w, pickle.dumps(("error", _why(e))))
            except BaseException:  # noqa: BLE001
                pass
            code = 1
        finally:
            os._exit(code)
    os.close(result_w)
    try:
        render(**kwargs, claim=claims)
    finally:
        raw = _read_all(result_r)
        os.close(result_r)
        _, status = os.waitpid(pid, 0)
    outcome: tuple[str, Any] = (pickle.loads(raw) if raw
                                else ("error", f"the second figure helper died (wait status {status})"))
    if outcome[0] != "ok":
        raise FigureError(outcome[1])
    EXTRAS.update(outcome[1] or {})


def _why(e: BaseException) -> str:
    """The machine at fault (no space left, read-only): one line naming the file; a bug: its traceback."""
    return f"{e.filename or '?'}: {e.strerror}" if isinstance(e, OSError) and e.strerror else traceback.format_exc()


def start_figure_worker(cfg: Any) -> FigureWorker | None:
    """A figure helper for one run of ``cfg``, forked now (call it before torch is imported), or None."""
    from .. import experiments  # noqa: PLC0415

    if not cfg.output.figures:
        return None
    return FigureWorker.start(draw_figures, experiments.card(cfg.kind).figures)


class FigureError(RuntimeError):
    """Drawing the figures failed; the message holds the helper's traceback."""


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _warm_up() -> None:
    """Import matplotlib and Pillow and draw one tiny figure that takes the paths the run's figures take (an image
    with a colour bar, a symmetric-log axis whose tick labels go through mathtext, a legend, text measured as a
    path, a palette GIF): the imports, font loading, mathtext's parser and first-draw set-up happen now, while
    the parent imports torch and trains, not after the training."""
    import io  # noqa: PLC0415 - the warm-up runs in the forked helper only

    import numpy as np  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415 - imported in the helper, before torch
    from matplotlib.font_manager import FontProperties, findfont  # noqa: PLC0415
    from matplotlib.textpath import TextPath  # noqa: PLC0415
    from PIL import Image, ImageDraw, ImageFont  # noqa: PLC0415

    fig = Figure(figsize=(2, 2))
    ax = fig.add_subplot()
    ax.plot([0, 1000], [1e-3, 1], label="x", marker="o")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_yscale("log")
    ax.set_title("x", fontsize=10)
    ax.legend(fontsize=7.5)
    im = fig.add_axes((0.8, 0.1, 0.1, 0.1)).imshow(np.zeros((2, 2)), cmap="RdBu_r", vmin=-1, vmax=1)
    fig.colorbar(im, cax=fig.add_axes((0.92, 0.1, 0.02, 0.5)))
    fig.savefig(io.BytesIO(), format="png", dpi=30)
    font = FontProperties(family="DejaVu Sans")
    TextPath((0, 0), "x", size=8, prop=font).get_extents()
    frame = Image.new("P", (8, 8))
    ImageDraw.Draw(frame).text((0, 0), "1", font=ImageFont.truetype(findfont(font), 13))
    frame.save(io.BytesIO(), format="GIF", save_all=True, append_images=[frame.copy()], duration=100, loop=0)


class FigureWorker:
    """One forked helper that draws one run's figures: ``submit`` the job, then ``wait`` for it."""

    def __init__(self, pid: int, job_w: int, result_r: int):
        self.pid, self._job_w, self._result_r = pid, job_w, result_r
        self._done = False
        self.extras: dict[str, Any] = {}  # what the helpers derived beyond the files (EXTRAS), once wait returned

    @classmethod
    def start(cls, render: Callable[..., Any], preload: str = "") -> FigureWorker | None:
        """Fork the helper, or return None where that is not possible or not safe; ``preload``: a module the helper
        imports while it waits (the kind's drawing code), so the drawing starts at once when the job comes.
        ``render(**job, claim=...)`` draws the job's figures, those that ``claim`` hands it (see draw_figures)."""
        if not hasattr(os, "fork") or "torch" in sys.modules or os.environ.get("FILTERLAB_NO_FORK"):
            return None
        job_r, job_w = os.pipe()
        result_r, result_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the helper: never returns into the caller's code
            code = 0
            try:
                import signal  # noqa: PLC0415

                # Ctrl-C reaches the whole process group: the parent decides, the helper just finishes or exits
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                os.close(job_w)
                os.close(result_r)
                gc.disable()  # imports without collector passes (see cli.heavy_imports), then frozen
                try:
                    _warm_up()
                except Exception:  # noqa: BLE001 - only a head start: a real problem shows when the figures are drawn
                    pass
                if preload:
                    import importlib  # noqa: PLC0415

                    importlib.import_module(preload)
                gc.freeze()
                gc.enable()
                payload = _read_all(job_r)
                if payload:
                    _render_in_two(render, pickle.loads(payload))
                _write_all(result_w, pickle.dumps(("ok", EXTRAS)))
            except BaseException as e:  # noqa: BLE001 - everything is reported to the parent
                why = str(e) if isinstance(e, FigureError) else _why(e)  # the copy's own report, as it gave it
                try:
                    _write_all(result_w, pickle.dumps(("error", why)))
                except BaseException:  # noqa: BLE001
                    pass
                code = 1
            finally:
                os._exit(code)
        os.close(job_r)
        os.close(result_w)
        return cls(pid, job_w, result_r)

    def submit(self, **kwargs: Any) -> None:
        try:
            _write_all(self._job_w, pickle.dumps(kwargs, protocol=pickle.HIGHEST_PROTOCOL))
        finally:
            os.close(self._job_w)
            self._job_w = -1

    def wait(self) -> None:
        """Wait for the helper; raise FigureError if it failed."""
        if self._done:
            return
        if self._job_w >= 0:  # nothing was submitted: let the helper exit
            os.close(self._job_w)
            self._job_w = -1
        raw = _read_all(self._result_r)
        os.close(self._result_r)
        _, status = os.waitpid(self.pid, 0)
        self._done = True
        outcome: tuple[str, Any] = (pickle.loads(raw) if raw
                                    else ("error", f"the figure helper died (wait status {status})"))
        if outcome[0] != "ok":
            raise FigureError(f"drawing the figures failed:\n{outcome[1]}")
        self.extras = outcome[1] or {}

    def cancel(self) -> None:
        """Stop waiting for figures that will not come (the run failed); the helper exits."""
        try:
            self.wait()
        except FigureError:
            pass
