"""Run directories: unique creation, atomic writes, metadata and status.

A run directory describes itself: ``config.yaml`` (the resolved config, enough to redo the run), ``meta.json``
(versions, device, seed, threads, command line, times, status), ``metrics.jsonl`` (history), ``summary.json``
(final metrics), ``checkpoint.pt``, ``snapshots.pt`` and ``figures/``. Every file except the metrics log is written
to a temporary file in the same folder and renamed into place, so a reader never sees half a file. This module does
not import torch at import time (``filterlab runs`` must stay fast).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from .errors import RunDirError
from .version import __version__

STATUSES = ("running", "completed", "failed", "interrupted", "diverged")

CONFIG_FILE = "config.yaml"
META_FILE = "meta.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
# Space a run holds back from its start to its end, so that a disk filled while it ran can still take the record of
# how it ended (summary.json and meta.json, some 15 KB, each written beside itself before the rename): Run.finish
# removes it first. A run killed outright leaves it behind; --resume takes it over.
RESERVE_FILE = ".reserve"
RESERVE_BYTES = 128 * 1024
CHECKPOINT_FILE = "checkpoint.pt"
SNAPSHOTS_FILE = "snapshots.pt"
FIGURES_DIR = "figures"


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


# ---------------------------------------------------------------------------------------------------------------------
# Atomic writes


def _temp_beside(path: Path, suffix: str = ".tmp") -> tuple[int, str]:
    """Create a fresh temporary file next to ``path`` with the permissions the umask gives (mkstemp's are 0600)."""
    for _ in range(100):
        tmp = str(path.parent / f".{path.stem}.{secrets.token_hex(4)}{suffix}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file beside {path}")  # pragma: no cover


@contextlib.contextmanager
def atomic_open(path: str | Path, suffix: str = ".tmp") -> Iterator[BinaryIO]:
    """A binary file that appears at ``path`` only once the block completes: written beside it under a temporary
    name, flushed, fsync'ed and renamed over ``path``. If the block raises, ``path`` keeps its previous content and
    the temporary file is removed."""
    path = Path(path)
    fd, tmp = _temp_beside(path, suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        _unlink_quietly(tmp)
        if isinstance(e, OSError) and e.filename is None and e.errno is not None:  # a failed write(2) names no
            raise OSError(e.errno, e.strerror, str(path)) from e  # file: name the one meant
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_open(path) as f:
        f.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` through atomic_open: the file at ``path`` is always a complete checkpoint (or absent).

    The archive is built in memory, then written: torch's own file writer reports a failed write(2) as a
    RuntimeError that names neither the file nor the cause ("[enforce fail at inline_container.cc...]"), while
    this write fails as the OSError it is (no space left, with the path)."""
    import io  # noqa: PLC0415

    import torch  # noqa: PLC0415 - only when saving: this module serves `filterlab runs`, which must not import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def atomic_savefig(fig: Any, path: str | Path, **kwargs: Any) -> None:
    """``fig.savefig`` through atomic_open, so an interrupted run never leaves half a PNG."""
    path = Path(path)
    with atomic_open(path, path.suffix) as f:
        fig.savefig(f, format=path.suffix.lstrip("."), **kwargs)


def _unlink_quietly(path: str | Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# ---------------------------------------------------------------------------------------------------------------------
# Creating a run directory


MAX_NAME = 100  # folder names stay well under the 255 bytes a filesystem accepts, in any script


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name[:MAX_NAME]).strip("._")
    return cleaned or "run"


def create_run_dir(out_root: str | Path, name: str, figures: bool = True) -> Path:
    """Create ``OUT/NAME/YYYYmmdd-HHMMSS-RANDOM`` (with ``figures/`` inside for a run) and return it.

    ``os.mkdir`` fails if the folder exists, and the 48-bit random suffix makes a clash between runs started in the same
    second practically impossible; on a clash we simply draw again, so two runs never share a folder.
    """
    parent = Path(out_root) / _safe_name(name)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise RunDirError(f"cannot create run folder under {parent}: a file of that name is in the way") from None
    except OSError as e:
        raise RunDirError(f"cannot create run folder under {parent}: {e.strerror or e}") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RunDirError(f"cannot create run folder under {parent}: the folder is not writable")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for _ in range(100):
        run_dir = parent / f"{stamp}-{secrets.token_hex(3)}"
        try:
            run_dir.mkdir()
        except FileExistsError:
            continue
        except OSError as e:
            raise RunDirError(f"cannot create run folder {run_dir}: {e.strerror or e}") from None
        if figures:
            (run_dir / FIGURES_DIR).mkdir()
        return run_dir
    raise RunDirError(f"cannot find a free run folder name under {parent}")


@contextlib.contextmanager
def no_empty_folder_on_error(path: str | Path, fresh: bool = False) -> Iterator[Path]:
    """A block that writes a command's output into ``path``. If it raises, the folders made for it are removed
    again while they are empty: those missing when the block began, or with ``fresh`` (the caller has just made
    ``path`` with create_run_dir) ``path`` and its name folder. A refused command leaves no empty folder; files are
    never removed."""
    path = Path(path)
    made = [path, path.parent] if fresh else [p for p in (path, *path.parents) if not p.exists()]
    try:
        yield path
    except BaseException:
        for p in made:  # deepest first; stop at the first that holds something
            try:
                p.rmdir()
            except OSError:
                break
        raise


# ---------------------------------------------------------------------------------------------------------------------
# Metadata, metrics and status


def base_meta(argv: list[str] | None = None) -> dict[str, Any]:

    return {
        "filterlab_version": __version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "hostname": platform.node(),
        "pid": os.getpid(),
        "command_line": list(sys.argv if argv is None else argv),
        "cwd": os.getcwd(),
        "start_time": now_iso(),
        "end_time": None,
        "status": "running",
        "error": None,
        "run_id": new_run_id(),
    }


def new_run_id() -> str:
    """A run's id: written into meta.json, summary.json, checkpoint.pt and snapshots.pt, so that files copied in
    from another run are told apart from the run's own (core/runfiles.py and artifacts.load_tied check it)."""
    return secrets.token_hex(8)


def run_id_of(run_dir: str | Path) -> str | None:
    """The run id in RUN_DIR/meta.json (None for a run from before ids, or an unreadable meta.json)."""
    try:
        meta = read_json(Path(run_dir) / META_FILE)
    except (OSError, ValueError, RecursionError):
        return None
    rid = meta.get("run_id") if isinstance(meta, dict) else None
    return rid if isinstance(rid, str) else None


class Run:
    """The writer side of one run directory: metadata, metrics log, summary and status."""

    def __init__(self, run_dir: str | Path, meta: dict[str, Any]):
        self.dir = Path(run_dir)
        self.meta = dict(meta)
        self._metrics = open(self.dir / METRICS_FILE, "a", encoding="utf-8")  # noqa: SIM115 - closed in finish()
        self.observers: list[Callable[[dict[str, Any]], None]] = []  # each gets every record as metrics.jsonl has it
        self.write_meta()
        self._hold_reserve()

    def _hold_reserve(self) -> None:
        """Write RESERVE_FILE (see there). Best effort: on a disk too full for it, the run goes on without."""
        path = self.dir / RESERVE_FILE
        try:
            with open(path, "wb") as f:
                f.write(bytes(RESERVE_BYTES))
        except OSError:
            _unlink_quietly(path)

    @property
    def figures_dir(self) -> Path:
        return self.dir / FIGURES_DIR

    def write_meta(self) -> None:
        atomic_write_json(self.dir / META_FILE, self.meta)

    def update_meta(self, **fields: Any) -> None:
        self.meta.update(fields)
        self.write_meta()

    def log(self, record: dict[str, Any]) -> None:
        """Append one metrics record as a JSON line (flushed, so a crash loses at most the line being written)."""
        line = json.dumps(record, default=_json_default)
        self._metrics.write(line + "\n")
        self._metrics.flush()
        if self.observers:
            plain = json.loads(line)
            for observe in self.observers:
                observe(plain)

    def write_summary(self, summary: dict[str, Any]) -> None:
        """summary.json, with the run's id and its status as meta.json has it now ("running" until the run ends:
        whatever the training loop thinks, the run's status is decided once, at its end, by :meth:`finish`)."""
        rid = self.meta.get("run_id")
        out = {**summary, "status": self.meta.get("status", "running")}
        atomic_write_json(self.dir / SUMMARY_FILE, {**out, "run_id": rid} if rid else out)

    def finish(self, status: str, error: str | None = None, between: Callable[[], None] | None = None,
               **fields: Any) -> None:
        """End the run with ``status``: the metrics log closed, summary.json's status, then meta.json's (the commit:
        a reader that sees a final status in meta.json sees the same in summary.json). ``between`` runs after the
        summary and before meta.json (a test hook)."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        if not self._metrics.closed:
            self._metrics.flush()
            os.fsync(self._metrics.fileno())
            self._metrics.close()
        _unlink_quietly(self.dir / RESERVE_FILE)  # the space held back for the writes that follow
        path = self.dir / SUMMARY_FILE
        if path.is_file():
            try:
                summary = read_json(path)
            except (OSError, ValueError):
                summary = None
            if isinstance(summary, dict):
                atomic_write_json(path, {**summary, "status": status})
        if between is not None:
            between()
        fields.setdefault("end_time", now_iso())
        self.update_meta(status=status, error=error, **fields)


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def is_run_dir(path: str | Path) -> bool:
    p = Path(path)
    return (p / META_FILE).is_file() and (p / CONFIG_FILE).is_file()


# ---------------------------------------------------------------------------------------------------------------------
# Listing runs (for `filterlab runs`; no torch)


def find_runs(root: str | Path) -> list[Path]:
    """Run directories at ROOT itself, or up to two levels below it (OUT/NAME/RUN), sorted by path."""
    root = Path(root)
    if is_run_dir(root):
        return [root]
    found = {p.parent for p in root.glob("*/meta.json")} | {p.parent for p in root.glob("*/*/meta.json")}
    return sorted(p for p in found if (p / CONFIG_FILE).is_file())
