"""Runs started side by side on one machine share its CPU cores, without a server.

Each live run registers itself as a small JSON file in a per-user runtime folder (``$XDG_RUNTIME_DIR/filterlab``,
else ``/tmp/filterlab-$UID``, mode 0700): pid, the process's start time from /proc (so a reused pid is not taken for
the run), host, the CPUs it may use, how it chose its thread count, and that count. The file is written atomically
(temporary name, then rename), removed when the run ends (a ``finally`` and, as a backstop, ``atexit``), and ignored
and deleted by the next reader once its process is gone (killed with SIGKILL, say).

A run with ``threads: 0`` takes its share of the CPUs this process may use (``os.sched_getaffinity``; inside Slurm
also capped by what the job or task was given) when it starts, and checks again at each epoch, every
:data:`CHECK_EVERY` seconds of steps, and within :data:`POLL_EVERY` seconds of a run registering or leaving (the
folder's modification time changes). :meth:`CoreShare.rebalance` is called every step and costs a clock read when
nothing is due. The share rule, for the runs that can run on the same CPUs (same host, same Slurm job step and task,
overlapping affinity):

- a run with an explicit count (``threads: N``, ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` in its environment, a CUDA
  run counted as 1, or sharing turned off) keeps it and is counted at it;
- the CPUs left are divided evenly among the ``threads: 0`` runs, at least 1 each; the remainder goes one CPU each to
  the runs that started first (they finish first and hand their CPUs on).

Fewer threads are taken at once; more only once the larger share has held for one check interval, so a sweep
worker starting its next run does not make its neighbour grow and shrink again in between.
``FILTERLAB_SHARE_CORES=0`` turns sharing off: ``threads: 0`` then means every CPU, as if the run were alone.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import platform
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .rundir import atomic_write_json, now_iso

CHECK_EVERY = 2.0  # seconds between registry reads while training: one listdir and a few small files (~0.2 ms)
POLL_EVERY = 0.25  # seconds between looks at the folder's mtime (one stat): a new neighbour is seen within this
SHARE_ENV = "FILTERLAB_SHARE_CORES"  # "0": no sharing, threads: 0 takes every CPU (the benchmark's baseline)
THREAD_ENVS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # torch reads these at import; a run respects them as given
FIXED_MODES = ("explicit", "env", "cuda", "unshared")  # modes whose count is fixed; "auto" takes a share

_PROC = Path("/proc/self/stat").exists()
_OWNED: dict[Path, int] = {}  # registration files this process wrote -> its pid (a forked child must not remove them)
_warned: list[str] = []


class RegistryError(OSError):
    """The runtime folder cannot be used safely (not ours, not a folder, not writable)."""


# ---------------------------------------------------------------------------------------------------------------------
# The CPUs this process may use


@dataclass(frozen=True)
class Pool:
    """The CPUs one run may use, and the runs it shares them with."""

    cpus: tuple[int, ...]  # CPU ids from sched_getaffinity
    budget: int  # threads the runs of this pool share; Slurm may allow fewer than len(cpus)
    scope: str  # runs share only within a scope: "" outside Slurm, else "slurm:JOB.STEP.TASK"
    source: str  # where the budget comes from, for meta.json


def expand_slurm_counts(text: str) -> list[int]:
    """SLURM_JOB_CPUS_PER_NODE's compressed form, one entry per node: "4(x2),2" -> [4, 4, 2]; [] if unreadable."""
    out: list[int] = []
    for part in text.split(","):
        count, _, times = part.strip().partition("(x")
        if not count.isdigit() or (times and not times.rstrip(")").isdigit()):
            return []
        out += [int(count)] * (int(times.rstrip(")")) if times else 1)
    return out


def _slurm_cap(env: Mapping[str, str]) -> tuple[int | None, str, str]:
    """(CPUs Slurm gave this process, where that number comes from, scope); (None, "", "") outside Slurm.

    The batch script may use the job's CPUs on its node; an ``srun`` task those of its task (``-c``), else the job's.
    Separate srun tasks have CPUs of their own, so they do not count each other.
    """
    job = env.get("SLURM_JOB_ID")
    if not job:
        return None, "", ""
    step, task = env.get("SLURM_STEP_ID", "batch"), env.get("SLURM_PROCID", "0")
    per_node = expand_slurm_counts(env.get("SLURM_JOB_CPUS_PER_NODE", ""))
    node = int(env["SLURM_NODEID"]) if env.get("SLURM_NODEID", "").isdigit() else 0
    on_node = per_node[node] if node < len(per_node) else None
    per_task = int(env["SLURM_CPUS_PER_TASK"]) if env.get("SLURM_CPUS_PER_TASK", "").isdigit() else None
    scope = f"slurm:{job}.{step}.{task}"
    if "SLURM_STEP_ID" in env and per_task:
        return per_task, f"SLURM_CPUS_PER_TASK={per_task}", scope
    if on_node:
        return on_node, f"SLURM_JOB_CPUS_PER_NODE={env['SLURM_JOB_CPUS_PER_NODE']} (node {node}: {on_node})", scope
    if per_task:
        return per_task, f"SLURM_CPUS_PER_TASK={per_task}", scope
    return None, "", scope


def cpu_pool(env: Mapping[str, str] | None = None) -> Pool:
    """The CPUs this process may use: its affinity, capped inside Slurm by what the job or task was given."""
    env = os.environ if env is None else env
    try:
        cpus = tuple(sorted(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = tuple(range(os.cpu_count() or 1))
    cap, why, scope = _slurm_cap(env)
    if cap is not None and cap <= len(cpus):
        return Pool(cpus, cap, scope, why)
    return Pool(cpus, len(cpus), scope, "sched_getaffinity")


# ---------------------------------------------------------------------------------------------------------------------
# Is a process still the one that registered?


def process_start(pid: int) -> tuple[int, str] | None:
    """(start time in clock ticks since boot, state letter) of a process from /proc; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # the name in parentheses may hold spaces; fields 3.. follow it
    return int(fields[19]), fields[0]


def is_alive(pid: int, start: int | None) -> bool:
    """True while ``pid`` runs and is the process that started at ``start`` (a reused pid is not); zombies are dead."""
    if _PROC:
        found = process_start(pid)
        return found is not None and found[1] not in "ZX" and (start is None or found[0] == start)
    try:  # pragma: no cover - no /proc: the pid alone
        os.kill(pid, 0)
    except ProcessLookupError:  # pragma: no cover
        return False
    except PermissionError:  # pragma: no cover
        return True
    return True  # pragma: no cover


# ---------------------------------------------------------------------------------------------------------------------
# The registry


def runtime_dir(env: Mapping[str, str] | None = None) -> Path:
    """The per-user folder of live registrations, created 0700; RegistryError if it exists but is not safely ours."""
    env = os.environ if env is None else env
    base = env.get("XDG_RUNTIME_DIR")
    path = Path(base) / "filterlab" if base and Path(base).is_dir() else Path(f"/tmp/filterlab-{os.getuid()}")
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        st = path.lstat()
    except OSError as e:
        raise RegistryError(f"{path}: {e.strerror or e}") from None
    if not path.is_dir() or path.is_symlink():
        raise RegistryError(f"{path} is not a folder")
    if st.st_uid != os.getuid():
        raise RegistryError(f"{path} belongs to another user (uid {st.st_uid})")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


@dataclass
class Entry:
    """One registered run, as its file says."""

    pid: int
    start: int | None  # process start time in clock ticks since boot (/proc/PID/stat field 22)
    host: str
    scope: str
    cpus: list[int]
    mode: str  # auto, or one of FIXED_MODES
    requested: int  # the config's threads (0: a share)
    threads: int  # the count in use now
    since: float  # registration time (time.time()): the start order that gets the remainder
    run_dir: str | None = None
    path: Path = field(default=Path(), compare=False, repr=False)

    def record(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "path"}


def _name_pid(name: str) -> tuple[int, int | None] | None:
    """PID-START-TOKEN.json (or a temporary .PID-START-TOKEN...tmp) -> (pid, start)."""
    parts = name.lstrip(".").split("-")
    if len(parts) < 3 or not parts[0].isdigit():
        return None
    return int(parts[0]), int(parts[1]) if parts[1].isdigit() else None


def _read_entry(path: Path) -> Entry | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Entry(**{k: data[k] for k in Entry.__dataclass_fields__ if k != "path" and k in data}, path=path)
    except (OSError, ValueError, TypeError):
        return None


def live_runs(folder: Path, host: str, clean: bool = True) -> list[Entry]:
    """Every registered run on this host whose process is alive; files of dead processes are deleted."""
    out: list[Entry] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return out
    for name in names:
        who = _name_pid(name)
        if who is None or not (name.endswith(".json") or name.startswith(".")):
            continue
        path = folder / name
        entry = None if name.startswith(".") else _read_entry(path)
        if entry is not None and entry.host != host:
            continue  # a folder shared with another machine: not ours to judge
        if not is_alive(*who):
            if clean:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            continue
        if entry is not None:
            out.append(entry)
    return out


def neighbours(me: Entry, runs: list[Entry]) -> list[Entry]:
    """The runs that compete with ``me`` for CPUs (``me`` included): same scope, overlapping affinity."""
    mine = set(me.cpus)
    return [r for r in runs if r.path == me.path or (r.scope == me.scope and mine.intersection(r.cpus))]


def share_of(me: Entry, runs: list[Entry], budget: int) -> int:
    """``me``'s thread count under the share rule (module docstring); ``runs`` are its neighbours, ``me`` included."""
    if me.mode != "auto":
        return me.threads
    others = [r for r in runs if r.path != me.path]
    fixed = sum(r.threads for r in others if r.mode in FIXED_MODES)
    auto = sorted([r for r in others if r.mode == "auto"] + [me], key=lambda r: (r.since, r.pid, r.path.name))
    free = budget - fixed
    if free <= len(auto):
        return 1
    base, extra = divmod(free, len(auto))
    return base + (1 if auto.index(me) < extra else 0)


def _remove_owned() -> None:
    for path, pid in list(_OWNED.items()):
        if pid == os.getpid():
            with contextlib.suppress(OSError):
                path.unlink()
            _OWNED.pop(path, None)


atexit.register(_remove_owned)


# ---------------------------------------------------------------------------------------------------------------------
# One run's share


def _torch() -> Any:
    import torch  # noqa: PLC0415 - here, not at module level: filterlab.core stays importable without torch

    return torch


def _warn(message: str) -> None:
    if message not in _warned:
        _warned.append(message)
        print(f"filterlab: warning: {message}", file=sys.stderr)


class CoreShare:
    """One run's registration and torch thread count: a context manager around the run.

    ``start`` (on entering) registers and sets the count. ``rebalance(step)``, called every step, re-reads the
    registry when a check is due (every ``interval`` seconds, after the folder changed, or ``force``) and changes the
    count if the share changed. ``close`` (on leaving, also after an exception) removes the registration and restores
    torch's previous count. ``history`` lists every count with the step and time it took effect and the number of
    runs sharing the CPUs then; ``on_change(self)`` is called after each entry.
    """

    def __init__(self, requested: int, device: str = "cpu", run_dir: str | None = None,
                 env: Mapping[str, str] | None = None, interval: float | None = None, poll: float | None = None,
                 on_change: Callable[[CoreShare], None] | None = None, step: int = 0):
        self.env = os.environ if env is None else env
        self.pool = cpu_pool(self.env)
        self.requested, self.device, self.run_dir = requested, device, run_dir
        self.interval = CHECK_EVERY if interval is None else interval  # read at call time: tests shorten them
        self.poll = POLL_EVERY if poll is None else poll
        self.on_change, self.first_step = on_change, step
        self.history: list[dict[str, Any]] = []
        self.entry: Entry | None = None
        self.folder: Path | None = None
        self._active = False  # True between start and close for a threads: 0 run that could register
        self._due = self._poll_due = 0.0  # time.monotonic() of the next full check, and of the next stat
        self._seen: int | None = None  # the folder's mtime at the last full check
        self._grow_since: float | None = None  # when a larger share was first seen
        self._old: int | None = None
        self.mode, self.source = self._mode()

    @property
    def threads(self) -> int:
        return self.history[-1]["threads"] if self.history else 0

    def _mode(self) -> tuple[str, str]:
        """How the count is chosen, and the sentence meta.json gives for it."""
        if self.requested:
            return "explicit", f"threads: {self.requested} in the config"
        given = [f"{k}={self.env[k]}" for k in THREAD_ENVS if self.env.get(k)]
        if given:
            return "env", f"{', '.join(given)} in the environment (torch's count, respected as given)"
        if self.device == "cuda":
            return "cuda", "threads: 0 on CUDA: the work is on the GPU, so 1 CPU thread (counted as 1 by other runs)"
        if self.env.get(SHARE_ENV, "1") == "0":
            return "unshared", f"threads: 0 with {SHARE_ENV}=0: all {self.pool.budget} CPUs, not shared"
        return "auto", (f"threads: 0: a share of the {self.pool.budget} CPUs this process may use "
                        f"({self.pool.source}) among the live filterlab runs on them")

    def _fixed_count(self) -> int:
        if self.mode == "explicit":
            return self.requested
        if self.mode == "env":
            return _torch().get_num_threads()
        return 1 if self.mode == "cuda" else self.pool.budget

    def start(self, step: int = 0) -> int:
        """Register (before reading the others, so two runs starting together see each other) and set the count."""
        self._old = _torch().get_num_threads()
        first = self.pool.budget if self.mode == "auto" else self._fixed_count()
        found = process_start(os.getpid()) if _PROC else None
        self.entry = Entry(os.getpid(), found[0] if found else None, platform.node(), self.pool.scope,
                           list(self.pool.cpus), self.mode, self.requested, first, time.time(), self.run_dir)
        try:
            self.folder = runtime_dir(self.env)
            self.entry.path = self.folder / f"{self.entry.pid}-{self.entry.start}-{secrets.token_hex(4)}.json"
            self._write()
        except OSError as e:  # RegistryError included: the run goes on, as if alone
            self.folder = None
            _warn(f"runs cannot share the cores ({e}); threads: 0 uses every CPU this process may use")
        runs = [self.entry]
        if self.folder is not None:
            self._seen = self._mtime()
            runs = neighbours(self.entry, live_runs(self.folder, self.entry.host))
            first = share_of(self.entry, runs, self.pool.budget)
        self._apply(first, step, len(runs))
        self._active = self.mode == "auto" and self.folder is not None
        self._due, self._poll_due = time.monotonic() + self.interval, time.monotonic() + self.poll
        return first

    def rebalance(self, step: int = 0, force: bool = False) -> int:
        """Take the current share if a check is due (or ``force``, as at an epoch); the thread count in use."""
        now = time.monotonic()
        if not self._active or (not force and now < self._poll_due):
            return self.threads
        self._poll_due = now + self.poll
        mtime = self._mtime()
        if not force and now < self._due and mtime == self._seen:
            return self.threads
        self._due, self._seen = now + self.interval, mtime
        assert self.entry is not None and self.folder is not None
        runs = neighbours(self.entry, live_runs(self.folder, self.entry.host))
        want = share_of(self.entry, runs, self.pool.budget)
        if want > self.threads:  # grow only once the larger share has held for one interval
            self._grow_since = now if self._grow_since is None else self._grow_since
            if now - self._grow_since < self.interval:
                return self.threads
        self._grow_since = None
        if want != self.threads:
            self._apply(want, step, len(runs))
        return self.threads

    def _mtime(self) -> int | None:
        try:
            return os.stat(self.folder).st_mtime_ns if self.folder is not None else None
        except OSError:
            return None

    def _apply(self, n: int, step: int, runs: int) -> None:
        if self.mode != "env":
            _torch().set_num_threads(n)
        self.history.append({"threads": n, "step": step, "time": now_iso(), "runs": runs})
        if self.entry is not None:
            self.entry.threads = n
            if self.folder is not None:
                self._write()
        if self.on_change is not None:
            self.on_change(self)

    def _write(self) -> None:
        assert self.entry is not None
        _OWNED[self.entry.path] = os.getpid()
        atomic_write_json(self.entry.path, self.entry.record())

    def close(self) -> None:
        self._active = False
        if self.entry is not None and self.folder is not None:
            with contextlib.suppress(FileNotFoundError):
                self.entry.path.unlink()
            _OWNED.pop(self.entry.path, None)
        if self._old is not None and self.mode != "env":
            _torch().set_num_threads(self._old)

    def __enter__(self) -> CoreShare:
        self.start(self.first_step)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
