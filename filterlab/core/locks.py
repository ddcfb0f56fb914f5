"""A run folder's lock: one live process trains in a folder at a time.

``RUN/lock`` holds an exclusive ``flock`` while a process trains there (the kernel drops it when the process dies, so
a killed run never leaves a stale lock behind on its host) and, as JSON, the holder's pid, host and a heartbeat time
refreshed every few seconds, for readers on other hosts of a shared filesystem (where flock may not reach) and for
``filterlab runs`` to tell a live run from a dead one.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .errors import InputError

LOCK_FILE = "lock"
HEARTBEAT_EVERY = 5.0  # seconds between heartbeats
STALE_AFTER = 120.0  # a heartbeat older than this, from another host, means its process is gone


class RunBusy(InputError):
    """The run folder is held by a live process."""


def read_lock(run_dir: Path) -> dict[str, Any] | None:
    try:
        with open(Path(run_dir) / LOCK_FILE, "rb") as f:
            data = json.loads(f.read(4096))  # ours is under 100 bytes; a hostile one is never read whole
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("heartbeat", 0), (int, float)):
        return None
    return data


def is_held(run_dir: Path) -> bool:
    """True while a live process holds the run: its flock on this host, or a fresh heartbeat from another host."""
    path = Path(run_dir) / LOCK_FILE
    info = read_lock(run_dir)
    if info is not None and info.get("host") != socket.gethostname():
        return abs(time.time() - float(info.get("heartbeat", 0))) < STALE_AFTER  # abs: a clock far ahead is no life
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops a lock this probe took
    return False


@dataclass
class RunLock:
    run_dir: Path
    file: IO[str] | None
    last: float = 0.0
    started: float = 0.0

    @classmethod
    def acquire(cls, run_dir: Path) -> RunLock:
        """Take the run's lock, or raise RunBusy naming the process that holds it."""
        run_dir = Path(run_dir)
        info = read_lock(run_dir)
        if info is not None and info.get("host") != socket.gethostname() and is_held(run_dir):
            raise RunBusy(f"{run_dir}: the run is in progress on host {info.get('host')} (pid {info.get('pid')}, "
                          f"heartbeat {time.time() - float(info.get('heartbeat', 0)):.0f} s ago); wait for it to end")
        f = open(run_dir / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            holder = f" (pid {info.get('pid')})" if info else ""
            raise RunBusy(f"{run_dir}: the run is in progress{holder}; two processes cannot train in one folder; "
                          "wait for it to end, or stop it first") from None
        lock = cls(run_dir, f, started=time.time())
        lock.heartbeat(force=True, now=lock.started)  # heartbeat == started: the loop has not beaten yet
        return lock

    def heartbeat(self, force: bool = False, now: float | None = None) -> None:
        """Refresh the heartbeat (cheap when called every step: it writes at most every HEARTBEAT_EVERY s)."""
        now = time.time() if now is None else now
        if self.file is None or (not force and now - self.last < HEARTBEAT_EVERY):
            return
        self.last = now
        self.file.seek(0)
        self.file.truncate()
        self.file.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": self.started,
                                    "heartbeat": now}))
        self.file.flush()

    def release(self) -> None:
        if self.file is None:
            return
        # The file stays (empty): unlinking it would let a process that opened the old file and one that creates a
        # new one both hold "the" lock.
        self.file.seek(0)
        self.file.truncate()
        self.file.close()  # drops the flock
        self.file = None
