"""TensorBoard for filterlab runs: event files written while a run trains (``output.tensorboard: true``), exported
afterwards from a finished run's files, and ``filterlab tensorboard`` to look at them.

This module imports neither torch nor TensorBoard: the command line asks :func:`require` before any work starts, so
a missing install is one line, not a traceback after the data has loaded.
"""

from __future__ import annotations

import os
import stat
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


EVENTS_LIMIT_BYTES = 4 * 1024**3  # all event files of one run, at most: what TensorBoard would be asked to load


def has_events(run_dir: str | Path) -> bool:
    d = events_dir(run_dir)
    return d.is_dir() and any(p.name.startswith("events.out.tfevents.") for p in d.iterdir())


def check_events(run_dir: str | Path) -> None:
    """The run's event folder as TensorBoard would read it: only folders and regular files (a FIFO, device or
    symbolic link would hang TensorBoard's loader or reach outside the run), in all at most ``EVENTS_LIMIT_BYTES``;
    InputError naming the first entry that is not."""
    root, total = events_dir(run_dir), 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath, name)
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                raise InputError(f"{path}: a symbolic link in the run's event folder; only regular files are read")
            if stat.S_ISDIR(st.st_mode):
                continue
            if not stat.S_ISREG(st.st_mode):
                raise InputError(f"{path}: not a regular file (a FIFO, socket or device); the run's event folder "
                                 "may hold only regular files")
            total += st.st_size
    if total > EVENTS_LIMIT_BYTES:
        raise InputError(f"{root}: {total / 1024**3:.1f} GiB of event files; at most "
                         f"{EVENTS_LIMIT_BYTES / 1024**3:.0f} GiB are served")
