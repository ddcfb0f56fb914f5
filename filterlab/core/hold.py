"""A test hook: hold a run at a chosen moment until it is asked to stop, so that a test signals it in a known state.

Tests that interrupt a run (a preemption signal, a kill) must not guess how long training takes: on a fast machine
a short run is over before a fixed sleep ends. With ``FILTERLAB_TEST_HOLD=N`` in the environment, the run's N-th
lifecycle tick (one per training step for the single-image kind) writes ``held`` into the run folder and waits there
until its stop flag is set (a signal) or ``FILTERLAB_TEST_HOLD_TIMEOUT`` seconds pass (default 300). A test waits
for the file, then sends its signal. A run whose folder already holds ``held`` (a resumed one) is not held again.
``FILTERLAB_TEST_HOLD=PHASE`` (a name: trained, figures, report, summary, committed, printed) holds the run at that
named point of the end of a run instead (:meth:`Hold.at`), the same way. Without the variable this module does
nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

HOLD_ENV = "FILTERLAB_TEST_HOLD"
HOLD_FILE = "held"
# the end of a run, in order: training done (checkpoint, snapshots, summary written), figures drawn, report written,
# summary.json's status written, meta.json's status written (the commit), the run folder printed (the CLI)
PHASES = ("trained", "figures", "report", "summary", "committed", "printed")


class Hold:
    def __init__(self, run_dir: Path, at_tick: int, timeout: float, phase: str | None = None):
        self.marker = Path(run_dir) / HOLD_FILE
        self.at_tick = at_tick
        self.phase = phase
        self.timeout = timeout
        self.ticks = 0

    @classmethod
    def from_env(cls, run_dir: Path) -> Hold | None:
        raw = os.environ.get(HOLD_ENV, "").strip()
        timeout = float(os.environ.get(HOLD_ENV + "_TIMEOUT", "300"))
        if raw in PHASES:
            return cls(run_dir, 0, timeout, raw)
        if not raw.isdigit() or int(raw) < 1:
            return None
        return cls(run_dir, int(raw), timeout)

    def tick(self, stopped: Callable[[], bool]) -> None:
        self.ticks += 1
        if self.ticks != self.at_tick or self.marker.exists():
            return
        self._wait(stopped)

    def at(self, phase: str, stopped: Callable[[], bool]) -> None:
        """Hold here when this is the named phase asked for (once per run folder)."""
        if phase == self.phase and not self.marker.exists():
            self._wait(stopped)

    def _wait(self, stopped: Callable[[], bool]) -> None:
        self.marker.write_text(f"{os.getpid()}\n")
        end = time.monotonic() + self.timeout
        while not stopped() and time.monotonic() < end:
            time.sleep(0.01)
