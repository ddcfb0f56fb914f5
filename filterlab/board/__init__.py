"""TensorBoard for filterlab runs: event files written while a run trains (``output.tensorboard: true``), exported
afterwards from a finished run's files, and ``filterlab tensorboard`` to look at them.

This module imports neither torch nor TensorBoard: the command line asks :func:`require` before any work starts, so
a missing install is one line, not a traceback after the data has loaded.
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import InputError

EVENTS_DIR = "tensorboard"  # RUN/tensorboard holds the run's event files
INSTALL = 'pip install -e ".[tensorboard]"'


def require(what: str) -> None:
    """InputError naming ``what`` (the key or command that asked) when TensorBoard cannot be imported."""
    try:
        import tensorboard  # noqa: F401, PLC0415 - only asked for when a run or command wants TensorBoard
    except ImportError:
        raise InputError(f"{what}: TensorBoard is not installed in this Python; install it with {INSTALL} (from "
                         "the filterlab folder) or pip install tensorboard") from None


def events_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / EVENTS_DIR


def has_events(run_dir: str | Path) -> bool:
    d = events_dir(run_dir)
    return d.is_dir() and any(p.name.startswith("events.out.tfevents.") for p in d.iterdir())
