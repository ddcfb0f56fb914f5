"""Opening the files a user or a run folder names: regular files only, read within a bound.

Opening a FIFO waits for a writer (forever), a device such as /dev/zero never ends, and a folder is not a file. Every
config, image, kernel, IDX file and run file is opened through :func:`open_regular`, which opens without waiting
(``O_NONBLOCK``), then checks what it opened (``fstat``, so a file swapped between a check and the open is still
caught) and refuses anything that is not a regular file by name.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from .errors import InputError


class NotRegularFile(InputError):
    """A path that is a FIFO, a device, a socket or a folder where a regular file is needed."""


def kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | Path, what: str = "the file") -> BinaryIO:
    """``path`` opened for binary reading when it is a regular file (links followed); NotRegularFile naming it and
    what it is otherwise. FileNotFoundError, PermissionError and other OSErrors pass through for the caller."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(f"{path}: {kind_of(st.st_mode)}, not a regular file; {what} must be a regular "
                                 "file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | Path, limit: int, what: str = "the file") -> bytes:
    """At most ``limit + 1`` bytes of a regular file (so a caller can tell a file over its limit)."""
    with open_regular(path, what) as f:
        return f.read(limit + 1)


def check_regular(path: str | Path, what: str = "the file") -> None:
    """NotRegularFile unless ``path`` is a regular file; a missing path passes (the caller reports it its way)."""
    try:
        st = os.stat(path)
    except OSError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFile(f"{path}: {kind_of(st.st_mode)}, not a regular file; {what} must be a regular file")
