"""A test hook: the layout check (:class:`layout.Watch`) in every process that draws, not only the test process.

The test suite checks the figures its own process saves (tests/conftest.py); figures drawn in other processes (the
CLI run as a subprocess, its forked figure helpers, sweep workers, notebook kernels) are checked by this hook. With
``FILTERLAB_TEST_LAYOUT=FOLDER`` in the environment, a process that imports filterlab holds a ``layout.Watch`` from
its first saved figure or first Pillow text on, and appends each fault at once (figure helpers end with
``os._exit``: no exit handler runs) as one JSON line ``{"pid", "argv", "figure", "problem"}`` to
``FOLDER/<pid>.jsonl``; :func:`faults` reads them back. Nothing is imported (matplotlib least of all: the CLI's
parent process never loads it) until the process itself imports matplotlib's figures or Pillow's drawing. Without the
variable this module does nothing.
"""

from __future__ import annotations

import importlib.abc
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ENV = "FILTERLAB_TEST_LAYOUT"
_STATE: dict[str, Any] = {}  # "folder": where faults go; "watch": the process's Watch once started
_LAZY: dict[tuple[Any, str], tuple[Any, Any]] = {}  # (class, attribute) -> (original, the starting wrapper)
_WAITING: dict[str, Callable[[Any], None]] = {}  # module name -> what to do once it is imported


def install() -> None:
    """Arm the hook in this process when FILTERLAB_TEST_LAYOUT names a folder (once; later calls do nothing)."""
    folder = os.environ.get(ENV, "").strip()
    if not folder or "folder" in _STATE:
        return
    _STATE["folder"] = folder
    for name, then in (("matplotlib.figure", _arm_figure), ("PIL.ImageDraw", _arm_pillow)):
        if name in sys.modules:
            then(sys.modules[name])
        else:
            _WAITING[name] = then
    if _WAITING:
        sys.meta_path.insert(0, _AfterImport())


class _AfterImport(importlib.abc.MetaPathFinder):
    """A meta-path finder that finds nothing itself: it lets the other finders find a waited-for module and runs the
    waiting action right after the module has executed."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        name = fullname
        if name not in _WAITING:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        execute = loader.exec_module

        def exec_module(module: Any) -> None:
            execute(module)
            then = _WAITING.pop(name, None)
            if then is not None:
                then(module)

        loader.exec_module = exec_module
        return spec


def _lazy(cls: Any, attr: str) -> None:
    """Replace ``cls.attr`` by a wrapper that starts the process's Watch on its first call, then calls through."""
    if "watch" in _STATE:
        return
    original = getattr(cls, attr)

    def first(*args: Any, **kw: Any) -> Any:
        _start()
        return getattr(cls, attr)(*args, **kw)

    _LAZY[(cls, attr)] = (original, first)
    setattr(cls, attr, first)


def _arm_figure(module: Any) -> None:
    _lazy(module.Figure, "savefig")


def _arm_pillow(module: Any) -> None:
    _lazy(module.ImageDraw, "text")


def _start() -> None:
    if "watch" in _STATE:
        return
    _STATE["watch"] = None
    for (cls, attr), (original, first) in _LAZY.items():
        if getattr(cls, attr) is first:
            setattr(cls, attr, original)
    from . import layout  # noqa: PLC0415 - matplotlib: only in a process that draws

    watch = layout.Watch()
    watch.on_fault = _report
    watch.pillow.on_fault = _report
    _STATE["watch"] = watch.__enter__()


def _in_warm_up() -> bool:
    """Whether this is the figure helper's warm-up (worker._warm_up): a scrap figure drawn to load the libraries,
    never saved to a file nor shown."""
    frame: Any = sys._getframe()
    while frame is not None:
        if frame.f_code.co_name == "_warm_up" and frame.f_globals.get("__name__") == "filterlab.viz.worker":
            return True
        frame = frame.f_back
    return False


def _report(figure: str, found: list[str]) -> None:
    if _in_warm_up():
        return
    folder = Path(_STATE["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps({"pid": os.getpid(), "argv": sys.argv[:4], "figure": figure, "problem": p}) + "\n"
                    for p in found)
    with open(folder / f"{os.getpid()}.jsonl", "a", encoding="utf-8") as f:
        f.write(lines)


def faults(folder: Path, since: dict[str, int] | None = None) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """(the faults written to ``folder`` after the byte offsets ``since``, file name -> offset, the offsets now)."""
    since = since or {}
    found: list[dict[str, Any]] = []
    now: dict[str, int] = {}
    for path in sorted(Path(folder).glob("*.jsonl")) if Path(folder).is_dir() else []:
        with open(path, "rb") as f:
            f.seek(since.get(path.name, 0))
            raw = f.read()
        whole = raw[:raw.rfind(b"\n") + 1]  # a line still being written is read next time
        now[path.name] = since.get(path.name, 0) + len(whole)
        found += [json.loads(line) for line in whole.decode("utf-8").splitlines() if line.strip()]
    return found, now
