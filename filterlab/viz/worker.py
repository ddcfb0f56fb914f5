"""Draw a run's figures in a forked helper process while the main process imports torch and trains.

A short run's time is mostly fixed cost: importing torch (~1.5-2 s here) and importing matplotlib, loading its
fonts and drawing (~0.8 s). The two need different libraries and there are two cores, so the helper is forked
before torch is imported (a process without threads forks safely), imports matplotlib and warms it up while the
parent imports torch and trains, then draws from the plain arrays the parent sends. Where fork is not available,
or torch is already loaded in this process (several runs in one process), figures are drawn in-process instead.
"""

from __future__ import annotations

import os
import pickle
import sys
import traceback
from collections.abc import Callable
from typing import Any


def draw_figures(kind: str, data: dict[str, Any], out_dir: Any, cmap: str, dpi: int) -> list[Any]:
    """Every figure of a run of ``kind`` from plain arrays, through the kind's figures module (card.figures)."""
    import importlib  # noqa: PLC0415

    from .. import experiments  # noqa: PLC0415 - the registry is torch-free; the kind's module may not be

    module = experiments.card(kind).figures or experiments.KINDS[kind] + ".experiment"
    result: list[Any] = importlib.import_module(module).draw_run(data, out_dir, cmap, dpi)
    return result


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
    """Import matplotlib and draw one tiny figure: font loading and first-draw set-up happen now, not later."""
    import io  # noqa: PLC0415 - the warm-up runs in the forked helper only

    from matplotlib.figure import Figure  # noqa: PLC0415 - imported in the helper, before torch

    fig = Figure(figsize=(1, 1))
    fig.add_subplot().plot([0, 1], label="x")
    fig.savefig(io.BytesIO(), format="png", dpi=30)


class FigureWorker:
    """One forked helper that draws one run's figures: ``submit`` the job, then ``wait`` for it."""

    def __init__(self, pid: int, job_w: int, result_r: int):
        self.pid, self._job_w, self._result_r = pid, job_w, result_r
        self._done = False

    @classmethod
    def start(cls, render: Callable[..., Any], preload: str = "") -> FigureWorker | None:
        """Fork the helper, or return None where that is not possible or not safe; ``preload``: a module the helper
        imports while it waits (the kind's drawing code), so the drawing starts at once when the job comes."""
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
                _warm_up()
                if preload:
                    import importlib  # noqa: PLC0415

                    importlib.import_module(preload)
                payload = _read_all(job_r)
                if payload:
                    kwargs = pickle.loads(payload)
                    render(**kwargs)
                _write_all(result_w, pickle.dumps(("ok", None)))
            except BaseException as e:  # noqa: BLE001 - everything is reported to the parent
                # the machine at fault (no space left, read-only): one line naming the file; a bug: its traceback
                why = (f"{e.filename or '?'}: {e.strerror}" if isinstance(e, OSError) and e.strerror
                       else traceback.format_exc())
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
        outcome = pickle.loads(raw) if raw else ("error", f"the figure helper died (wait status {status})")
        if outcome[0] != "ok":
            raise FigureError(f"drawing the figures failed:\n{outcome[1]}")

    def cancel(self) -> None:
        """Stop waiting for figures that will not come (the run failed); the helper exits."""
        try:
            self.wait()
        except FigureError:
            pass
