""":func:`preserved` wraps ``fl.train`` and ``fl.resume``. It restores, when the block returns or raises:
torch's intra-op thread count, the deterministic-algorithm flags, cuDNN's ``deterministic`` and ``benchmark``, the
flush-denormal flag, the random states of torch (CPU and any initialised CUDA device), NumPy and Python, the
matplotlib backend, and the SIGINT and SIGTERM handlers. torch's inter-op thread count can be set only once per
process and filterlab never sets it, so it is not touched.
"""

from __future__ import annotations

import contextlib
import random
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def flush_denormal_enabled() -> bool:
    """torch has no getter for this flag; a float32 denormal result tells: 1e-38 / 100 is 1e-40, or 0 when flushed."""
    return bool((torch.tensor(1e-38, dtype=torch.float32) / 100).item() == 0.0)


def _backend() -> Any:
    """matplotlib's backend setting as it stands, without resolving an automatic backend (which would import one)."""
    import matplotlib  # noqa: PLC0415 - only when a run starts: the state module is imported by fl.train alone

    return dict.__getitem__(matplotlib.rcParams, "backend")


def _set_backend(value: Any) -> None:
    import sys  # noqa: PLC0415 - local to the one place it is needed

    import matplotlib  # noqa: PLC0415 - see _backend

    if _backend() == value:
        return
    if "matplotlib.pyplot" in sys.modules and isinstance(value, str):
        sys.modules["matplotlib.pyplot"].switch_backend(value)
    else:
        dict.__setitem__(matplotlib.rcParams, "backend", value)


@dataclass
class State:
    threads: int
    deterministic: bool
    deterministic_warn_only: bool
    cudnn_deterministic: bool
    cudnn_benchmark: bool
    flush_denormal: bool
    torch_rng: torch.Tensor
    cuda_rng: list[torch.Tensor] | None
    numpy_rng: Any
    python_rng: Any
    backend: Any
    handlers: dict[int, Any]

    @classmethod
    def now(cls) -> State:
        main = threading.current_thread() is threading.main_thread()
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
        return cls(torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
                   torch.is_deterministic_algorithms_warn_only_enabled(), torch.backends.cudnn.deterministic,
                   torch.backends.cudnn.benchmark, flush_denormal_enabled(), torch.get_rng_state(), cuda,
                   np.random.get_state(), random.getstate(), _backend(),
                   {s: signal.getsignal(s) for s in SIGNALS} if main else {})

    def restore(self) -> None:
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        torch.use_deterministic_algorithms(self.deterministic, warn_only=self.deterministic_warn_only)
        torch.backends.cudnn.deterministic = self.cudnn_deterministic
        torch.backends.cudnn.benchmark = self.cudnn_benchmark
        torch.set_flush_denormal(self.flush_denormal)
        torch.set_rng_state(self.torch_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)
        np.random.set_state(self.numpy_rng)
        random.setstate(self.python_rng)
        _set_backend(self.backend)
        for s, h in self.handlers.items():
            if h is not None:  # None: a handler not installed from Python, which cannot be put back from here
                signal.signal(s, h)


@contextlib.contextmanager
def preserved() -> Iterator[State]:
    """The block's changes to the state above are undone when it returns or raises."""
    before = State.now()
    try:
        yield before
    finally:
        before.restore()
