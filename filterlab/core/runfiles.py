"""One reader per run-folder file: meta.json, summary.json, metrics.jsonl and the figures' sidecars.

A run folder is input like any other: it may come from another filterlab, another person, an editor or a disk that
filled up. Every command that reads a run (``runs``, ``visualize``, ``compare``, ``--resume``, the insight figures,
the report) reads it through these functions, which check each known field's type and range the way the config
loader checks a config. What passes is a plain dict whose known fields have the types the code expects (fields
filterlab does not know are kept as they are, for tools that add their own); what does not is an
:class:`ArtifactError` of one line naming the file, the key and what is accepted. ``config.yaml`` is read by the
config loader itself (``experiments.load_config``); checkpoint.pt and snapshots.pt by :mod:`.artifacts`, and
:func:`check_tied` checks that they belong to the run's config and summary.

No torch here: ``filterlab runs`` imports this module.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ArtifactError, short_repr
from .regular import NotRegularFile, kind_of, read_regular
from .rundir import META_FILE, METRICS_FILE, STATUSES, SUMMARY_FILE

FOREIGN = "the file was edited or is not filterlab's"

# ---------------------------------------------------------------------------------------------------------------------
# A small schema language: a check takes a value and returns what is wrong with it (None when it is fine)

Check = Callable[[Any, str], None]  # raises Bad(key, accepted, value)


class Bad(Exception):
    def __init__(self, key: str, accepted: str, value: Any):
        super().__init__(key)
        self.key, self.accepted, self.value = key, accepted, value


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def text(max_len: int = 100_000) -> Check:
    def check(v: Any, key: str) -> None:
        if not isinstance(v, str) or len(v) > max_len:
            raise Bad(key, f"a string of at most {max_len:,} characters", v)
    return check


def integer(lo: int | None = None, hi: int | None = None) -> Check:
    def check(v: Any, key: str) -> None:
        if not _is_int(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
            rng = " and ".join(x for x in (f">= {lo}" if lo is not None else "",
                                           f"<= {hi}" if hi is not None else "") if x)
            raise Bad(key, f"an integer{' ' + rng if rng else ''}", v)
    return check


def number(lo: float = -math.inf, hi: float = math.inf, finite: bool = False) -> Check:
    """A JSON number (NaN and infinities are numbers too: a diverged run writes them) within [lo, hi]."""
    def check(v: Any, key: str) -> None:
        ok = _is_num(v) and (math.isnan(v) and not finite or lo <= v <= hi) and (not finite or math.isfinite(v))
        if not ok:
            rng = "" if (lo, hi) == (-math.inf, math.inf) else f" from {lo:g} to {hi:g}"
            raise Bad(key, f"a number{rng}", v)
    return check


def one_of(*values: Any) -> Check:
    def check(v: Any, key: str) -> None:
        if not any(v == x and type(v) is type(x) for x in values):
            raise Bad(key, "one of " + ", ".join(map(str, values)), v)
    return check


def timestamp() -> Check:
    def check(v: Any, key: str) -> None:
        try:
            if not isinstance(v, str) or len(v) > 40:
                raise ValueError
            _dt.datetime.fromisoformat(v)
        except ValueError:
            raise Bad(key, "an ISO 8601 time such as 2026-01-31T12:00:00.000+00:00", v) from None
    return check


def optional(inner: Check) -> Check:
    def check(v: Any, key: str) -> None:
        if v is not None:
            inner(v, key)
    return check


def list_of(item: Check, max_len: int = 1_000_000) -> Check:
    def check(v: Any, key: str) -> None:
        if not isinstance(v, list) or len(v) > max_len:
            raise Bad(key, f"a list of at most {max_len:,} items", v)
        for i, x in enumerate(v):
            item(x, f"{key}[{i}]")
    return check


def mapping(value: Check, key_pattern: str | None = None, keys: str = "") -> Check:
    """An object whose keys (matching ``key_pattern``) may be anything and whose values all pass ``value``."""
    pat = re.compile(key_pattern) if key_pattern else None

    def check(v: Any, key: str) -> None:
        if not isinstance(v, dict):
            raise Bad(key, "an object", v)
        for k, x in v.items():
            if pat is not None and not pat.fullmatch(k):
                raise Bad(f"{key}.{k}", keys or f"keys matching {key_pattern}", k)
            value(x, f"{key}.{k}")
    return check


def fields(spec: Mapping[str, Check], required: tuple[str, ...] = ()) -> Check:
    """An object with the named fields checked where present (``required`` ones must be); others are kept."""
    def check(v: Any, key: str) -> None:
        if not isinstance(v, dict):
            raise Bad(key, "an object", v)
        for name in required:
            if name not in v:
                raise Bad(f"{key}.{name}" if key else name, "present", "missing")
        for name, inner in spec.items():
            if name in v:
                inner(v[name], f"{key}.{name}" if key else name)
    return check


def validate(obj: Any, spec: Check, path: Path) -> None:
    """ArtifactError naming ``path``, the dotted key and what is accepted, when ``obj`` does not pass ``spec``."""
    try:
        spec(obj, "")
    except Bad as b:
        got = "missing" if b.value == "missing" else f"got {short_repr(b.value)}"
        raise ArtifactError(f"{path}: key {b.key!r}: expected {b.accepted}, {got}; {FOREIGN}") from None


# ---------------------------------------------------------------------------------------------------------------------
# Reading a small file safely: a regular file, of bounded size

MAX_JSON_BYTES = 64 << 20  # summary.json of 4096 filters is 1.5 MB; a larger meta or summary is not a run's


def regular_file(path: Path, what: str = "file") -> os.stat_result:
    """The file's status when it is a regular file; ArtifactError naming it when it is missing, a FIFO, a device or
    a folder (opening a FIFO would wait forever for a writer)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing; the run folder is incomplete (the run did not finish, or the file "
                            "was removed)") from None
    except OSError as e:
        raise ArtifactError(f"{path}: cannot be read ({e.strerror or e})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ArtifactError(f"{path}: {kind_of(st.st_mode)}, not a regular file; a run's {what} is a regular file")
    return st


def read_json_file(path: str | Path, limit: int = MAX_JSON_BYTES) -> Any:
    """The JSON value in a run's file: a regular file of at most ``limit`` bytes, parsed; ArtifactError otherwise."""
    path = Path(path)
    size = regular_file(path, "JSON file").st_size
    if size > limit:
        raise ArtifactError(f"{path}: {size:,} bytes; filterlab writes at most a few MB here (accepted: "
                            f"{limit:,}); the file is not filterlab's")
    try:
        data = read_regular(path, limit, f"a run's {path.name}")
        if len(data) > limit:
            raise ArtifactError(f"{path}: more than {limit:,} bytes; the file is not filterlab's")
        return json.loads(data.decode("utf-8"))
    except NotRegularFile as e:
        raise ArtifactError(str(e)) from None
    except (OSError, ValueError, RecursionError) as e:
        raise ArtifactError(f"{path}: not readable JSON ({type(e).__name__}: {short_repr(str(e), 80)})") from None


def read_json_object(path: str | Path, spec: Check | None = None) -> dict[str, Any]:
    """A run's JSON file that must hold an object, checked against ``spec``."""
    path = Path(path)
    obj = read_json_file(path)
    if not isinstance(obj, dict):
        raise ArtifactError(f"{path}: expected a JSON object, got {type(obj).__name__}; the file is not filterlab's")
    if spec is not None:
        validate(obj, spec, path)
    return obj


# ---------------------------------------------------------------------------------------------------------------------
# meta.json

RUN_ID = re.compile(r"[0-9a-f]{16}")
_STEP = integer(0, 10**12)


def run_id_check(v: Any, key: str) -> None:
    """The run's id (rundir.new_run_id): written into meta, summary, checkpoint and snapshots to tie them."""
    if not (isinstance(v, str) and RUN_ID.fullmatch(v)):
        raise Bad(key, "16 hexadecimal digits", v)

META = fields({
    "filterlab_version": text(100), "python_version": text(100), "platform": text(1000), "hostname": text(1000),
    "pid": integer(0), "command_line": list_of(text(), 10_000), "cwd": text(10_000),
    "start_time": timestamp(), "end_time": optional(timestamp()), "status": one_of(*STATUSES),
    "error": optional(text()), "traceback": optional(text()), "kind": text(100), "name": text(1000),
    "seed": integer(0), "device": text(100), "torch_version": text(100), "cuda_device": optional(text(1000)),
    "paths_as_written": mapping(optional(text(10_000)), r"[a-z_]+\.[a-z_]+", "dotted config keys such as data.root"),
    "preset": optional(text(10_000)),
    "threads": integer(1), "threads_source": text(10_000), "interop_threads": integer(1),
    "threads_history": list_of(fields({"threads": integer(1), "step": _STEP, "time": timestamp(),
                                       "runs": integer(0)}), 1_000_000),
    "resumed": list_of(fields({"time": timestamp(), "from_step": _STEP, "pid": integer(0),
                               "previous_status": optional(text(100))}), 1_000_000),
    "run_id": run_id_check,
}, required=("status",))


def read_meta(run_dir: str | Path) -> dict[str, Any]:
    """meta.json, checked: status one of the known ones, times ISO 8601, the command line a list of strings, ..."""
    return read_json_object(Path(run_dir) / META_FILE, META)


# ---------------------------------------------------------------------------------------------------------------------
# summary.json: the fields every kind writes, then the kind's own (its card's ``summary_fields``)

SUMMARY = fields({"kind": text(100), "steps": _STEP, "status": text(100), "train_seconds": number(0),
                  "run_id": run_id_check})


def read_summary(run_dir: str | Path, kind_fields: Check | None = None) -> dict[str, Any]:
    """summary.json, checked against the common fields and the kind's own (``kind_fields``)."""
    path = Path(run_dir) / SUMMARY_FILE
    obj = read_json_object(path, SUMMARY)
    if kind_fields is not None:
        validate(obj, kind_fields, path)
    return obj


# ---------------------------------------------------------------------------------------------------------------------
# metrics.jsonl: one JSON object a line, each checked; a last line cut short by a crash is ignored

_NUMS = list_of(optional(number()), 100_000)
METRIC = fields({"step": _STEP, "event": text(100), "epoch": integer(0), "loss": optional(number()),
                 "lr": optional(number()), "train_seconds": optional(number(0)),
                 "weight_cosine": _NUMS, "change_cosine": _NUMS, "binary_agreement": _NUMS, "filter_norm": _NUMS,
                 **{f"{split}_{what}": optional(number()) for split in ("train", "val", "test")
                    for what in ("loss", "accuracy")}})
MAX_METRICS_BYTES = 1 << 30


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The metrics history. A last line cut short (a crash while it was written) is dropped; any other line that is
    not a JSON object, or whose known fields have the wrong type, is an ArtifactError naming the line and key."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists() and not path.is_symlink():
        return []
    size = regular_file(path, "metrics log").st_size
    if size > MAX_METRICS_BYTES:
        raise ArtifactError(f"{path}: {size:,} bytes; accepted: at most {MAX_METRICS_BYTES:,}; {FOREIGN}")
    out: list[dict[str, Any]] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().split("\n")
    except OSError as e:
        raise ArtifactError(f"{path}: cannot be read ({e.strerror or e})") from None
    last = len(lines) - 1
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            if n == last:  # no newline after it: the line being written when the run stopped
                break
            raise ArtifactError(f"{path}: line {n + 1} is not JSON; {FOREIGN}") from None
        if not isinstance(record, dict):
            raise ArtifactError(f"{path}: line {n + 1} is a JSON {type(record).__name__}, not an object; {FOREIGN}")
        try:
            METRIC(record, "")
        except Bad as b:
            raise ArtifactError(f"{path}: line {n + 1}: key {b.key!r}: expected {b.accepted}, got "
                                f"{short_repr(b.value)}; {FOREIGN}") from None
        out.append(record)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Figure sidecars: figures/NAME.json beside figures/NAME.png, naming its image, caption and alt text

MAX_FIGURE_BYTES = 64 << 20  # the largest figure filterlab draws (the 4096-filter GIF) is about 30 MB
MAX_SIDECAR_BYTES = 16 << 20
_PIXEL = integer(0, 1 << 16)
FRAMES = fields({"steps": list_of(_STEP, 100_000), "loss": list_of(optional(number()), 100_000),
                 "layer": text(1000), "n": integer(0, 1 << 16), "k": integer(1, 256), "scale": integer(1, 64),
                 "origins": list_of(list_of(_PIXEL, 2), 1 << 16), "header": list_of(_PIXEL, 4),
                 "labels": list_of(text(1000), 100_000)},
                required=("steps", "k", "scale", "origins", "header", "labels"))
SIDECAR = fields({"figure": text(255), "caption": text(), "alt": text(), "frames": FRAMES}, required=("figure",))


@dataclass(frozen=True)
class Sidecar:
    name: str  # the sidecar's stem
    image: Path  # the figure it describes, inside figures/
    meta: dict[str, Any]  # figure, caption, alt (and the kind's own fields, checked)


def figure_path(fig_dir: Path, name: str, source: Path) -> Path:
    """``fig_dir/name`` when it is a regular file inside ``fig_dir`` of at most MAX_FIGURE_BYTES; a sidecar may name
    only a file beside it (no folder, no '..', no absolute path, no link out of figures/)."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or "\0" in name:
        raise ArtifactError(f"{source}: key 'figure': {short_repr(name)} is not a file name in {fig_dir.name}/ "
                            "(accepted: a name such as loss.png, nothing outside the figures folder)")
    image = fig_dir / name
    if image.resolve().parent != fig_dir.resolve():
        raise ArtifactError(f"{source}: key 'figure': {short_repr(name)} leads out of {fig_dir} (a link); only "
                            "figures inside the figures folder are read")
    try:
        st = regular_file(image, "figure")
    except ArtifactError as e:
        raise ArtifactError(f"{source}: key 'figure': {e}") from None
    if st.st_size > MAX_FIGURE_BYTES:
        raise ArtifactError(f"{source}: key 'figure': {name} is {st.st_size:,} bytes; accepted: figures of at most "
                            f"{MAX_FIGURE_BYTES:,} bytes")
    return image


def read_sidecar(path: Path) -> Sidecar:
    """One sidecar, checked, with the figure it names (see :func:`figure_path`)."""
    meta = read_json_object(path, SIDECAR)
    return Sidecar(path.stem, figure_path(path.parent, meta["figure"], path), meta)


def sidecars(fig_dir: Path) -> tuple[list[Sidecar], list[str]]:
    """Every figure sidecar in ``fig_dir`` (sorted by name) and, for each JSON file that is not a usable sidecar,
    one line saying why (the report lists those instead of failing). JSON files without a "figure" key are not
    sidecars (nearest_kernels.jsonl, another tool's files) and are passed over silently."""
    found, problems = [], []
    for side in sorted(fig_dir.glob("*.json")):
        try:
            obj = read_json_file(side, MAX_SIDECAR_BYTES)
            if not isinstance(obj, dict) or "figure" not in obj:
                continue
            found.append(read_sidecar(side))
        except ArtifactError as e:
            problems.append(str(e))
    return found, problems



# ---------------------------------------------------------------------------------------------------------------------
# config.yaml's text, for the report (the config itself is read and checked by experiments.load_config)


def read_config_text(path: Path, limit: int = 64 * 1024) -> str:
    data = read_json_bytes(path, limit)
    return data.decode("utf-8", errors="replace")


def read_json_bytes(path: Path, limit: int) -> bytes:
    """A run file's bytes: a regular file of at most ``limit`` bytes; ArtifactError otherwise."""
    regular_file(path)
    try:
        data = read_regular(path, limit, f"a run's {path.name}")
    except NotRegularFile as e:
        raise ArtifactError(str(e)) from None
    except OSError as e:
        raise ArtifactError(f"{path}: cannot be read ({e.strerror or e})") from None
    if len(data) > limit:
        raise ArtifactError(f"{path}: more than {limit:,} bytes; accepted: at most {limit:,}; {FOREIGN}")
    return data
