"""The torch thread count of a run: set for its duration and restored after, recorded as it changes."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import TracebackType
from typing import Any


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class ThreadPlan:
    """torch.set_num_threads for a run: ``threads`` as asked, 0 meaning every CPU this process may use."""

    def __init__(self, requested: int, run_dir: Path | None = None):
        self.requested = requested
        self.run_dir = run_dir
        self.threads = requested or available_cpus()
        self.interop_threads = 0
        self.history: list[dict[str, Any]] = []
        self._old: int | None = None

    @classmethod
    def start(cls, requested: int, run_dir: Path | None = None) -> ThreadPlan:
        return cls(requested, run_dir)

    def __enter__(self) -> ThreadPlan:
        import torch  # noqa: PLC0415 - the training runtime has imported it already; this module serves torch-free callers too

        self._old = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        self.interop_threads = torch.get_num_interop_threads()
        self.history.append({"time": time.time(), "threads": self.threads})
        return self

    def rebalance(self) -> None:
        """Called every step; nothing to do while the count is fixed."""

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        import torch  # noqa: PLC0415

        if self._old is not None:
            torch.set_num_threads(self._old)
