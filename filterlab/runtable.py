"""Listing runs for `filterlab runs` and `compare`: status, times, key metrics, what the config changed.

No torch is imported here: listing a folder of runs takes a fraction of a second. One broken or hostile run folder
is reported on its own line and never stops the listing of the others.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from . import experiments
from .core import config as C
from .core.errors import InputError, short_repr
from .core.escape import for_terminal
from .core.locks import is_held
from .core.rundir import CONFIG_FILE, SUMMARY_FILE
from .core.runfiles import read_meta


def live_status(run_dir: Path, status: str | None) -> str | None:
    """A run marked running whose process is gone (no lock held, no fresh heartbeat) is shown as stale."""
    if status != "running" or is_held(run_dir):
        return status
    return "stale"


def config_changes(run_dir: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Config keys whose value differs from the kind's code defaults (the preset's choices and the run's own)."""
    data, _ = C.read_data(run_dir / CONFIG_FILE)
    cfg = experiments.config_from_data(data, str(run_dir / CONFIG_FILE))
    defaults = experiments.defaults(cfg.kind)
    return {k: b for k, (_, b) in C.diff(defaults, C.to_dict(cfg)).items()}


def describe_run(run_dir: Path) -> dict[str, Any]:
    """One run as a plain record: status, times, key metrics, and the config keys that differ from the defaults."""
    rec: dict[str, Any] = {"run": str(run_dir), "name": run_dir.parent.name}

    def unreadable(e: Exception, kind: str | None = None) -> dict[str, Any]:
        return {**rec, "kind": kind, "status": "unreadable", "error": str(e), "changes": None, "metrics": {}}

    try:
        meta = read_meta(run_dir)
    except InputError as e:
        return unreadable(e)
    kind = meta.get("kind") if meta.get("kind") in experiments.kinds() else None
    summary: dict[str, Any] = {}
    if (run_dir / SUMMARY_FILE).exists():
        try:
            summary = experiments.read_summary(run_dir, kind)
        except InputError as e:
            return unreadable(e, kind)
    rec.update(kind=kind, status=live_status(run_dir, meta["status"]), start_time=meta.get("start_time"),
               end_time=meta.get("end_time"), error=meta.get("error"))
    try:
        rec["changes"] = config_changes(run_dir, meta)
    except InputError as e:
        rec["changes"] = None
        rec["error"] = rec.get("error") or f"config.yaml: {short_repr(str(e), 200)}"
    metrics = experiments.card(kind).metrics if kind is not None else ()
    rec["metrics"] = {m.key: summary.get(m.key) for m in metrics}
    return rec


# ---------------------------------------------------------------------------------------------------------------------
# What a run changed from its preset file, and the preset from the defaults


CONFIG_SUFFIXES = (".yaml", ".yml")


def preset_path(meta: dict[str, Any]) -> Path | None:
    """The config file the run was started from: meta.json's ``preset`` (recorded at train time), or for older runs
    the one YAML file on its command line (resolved against its working folder); None when it cannot be told."""
    if isinstance(meta.get("preset"), str):
        return Path(meta["preset"])
    argv = [a for a in (meta.get("command_line") or []) if isinstance(a, str)]
    found = [a for a in argv[1:] if a.endswith(CONFIG_SUFFIXES)]
    if len(found) > 1:  # several configs in one command: the one whose file is named like the run
        found = [a for a in found if Path(a).stem == meta.get("name")]
    if len(found) != 1:
        return None
    path = Path(found[0])
    return path if path.is_absolute() else Path(str(meta.get("cwd") or ".")) / path


def _plain_config(data: dict[str, Any], source: str) -> dict[str, Any]:
    return C.to_dict(experiments.config_from_data(data, source))


def preset_changes(run_dir: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """{"preset": its path or None, "own": {key: value} the run changed from it (its --set, --seed, --device),
    "preset_changes": {key: value} the preset changed from the code defaults}; own is None when the preset file is
    gone or no longer valid."""
    path = preset_path(meta)
    data, source = C.read_data(run_dir / CONFIG_FILE)
    run = _plain_config(data, source)
    for key, written in (meta.get("paths_as_written") or {}).items():  # the run saved them absolute
        section, name = key.split(".")  # read_meta checked the key's form
        if isinstance(run.get(section), dict):
            run[section][name] = written
    out: dict[str, Any] = {"preset": str(path) if path else None, "own": None, "preset_changes": None}
    if path is None:
        return out
    try:
        preset = C.to_dict(experiments.load_config(path))  # its relative paths read from its folder, as at train time
    except InputError:
        return out
    defaults = experiments.defaults(preset["kind"])
    out["own"] = {k: b for k, (_, b) in C.diff(preset, run).items() if k not in IGNORED_CHANGES}
    out["preset_changes"] = {k: b for k, (_, b) in C.diff(defaults, preset).items() if k not in IGNORED_CHANGES}
    return out


IGNORED_CHANGES = {"name"}


def with_preset(rec: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """The record with ``preset_info`` (see :func:`preset_changes`) for the table; the JSON listing has none."""
    try:
        info = preset_changes(run_dir, read_meta(run_dir))
    except InputError:
        info = {}
    return {**rec, "preset_info": info}


# ---------------------------------------------------------------------------------------------------------------------
# The table of `filterlab runs`


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else ("-" if v is None else str(v))


def _pairs(d: dict[str, Any] | None) -> str:
    if d is None:
        return "?"
    return " ".join(f"{k}={_fmt(v)}" for k, v in d.items()) or "none"


def _cut(s: str, width: int) -> str:
    return s if len(s) <= width else s[: max(width - 1, 0)] + "…"


def _short_run(run: str, root: Path) -> str:
    p = Path(run)
    try:
        return str(p.relative_to(root)) or p.name
    except ValueError:
        return str(p)


ERROR_CHARS = 300  # an error in the table is cut here; --json keeps it whole


def _error_text(error: Any) -> str:
    """A run's error on one line: whitespace collapsed, other non-printable characters escaped, cut to ERROR_CHARS."""
    return _cut(for_terminal(" ".join(str(error).split())), ERROR_CHARS)


def _changes(rec: dict[str, Any]) -> str:
    ch = rec.get("preset_info") or {}
    preset = Path(ch["preset"]).name if ch.get("preset") else None
    if ch.get("own") is None:  # no preset to measure against: the changes from the code defaults
        if rec.get("changes") is None:
            return "changes unknown (its config.yaml cannot be read)"
        vs = _pairs({k: v for k, v in rec["changes"].items() if k not in IGNORED_CHANGES})
        why = f"preset {preset} is gone or invalid" if preset else "preset not known"
        return f"vs defaults ({why}): {vs}"
    return f"vs preset: {_pairs(ch['own'])} | {preset} vs defaults: {_pairs(ch['preset_changes'])}"


def _notes(rec: dict[str, Any]) -> list[str]:
    """What the run changed (unless it cannot be read) and why it failed or cannot be read, as meta.json or the reader
    says: the lines under a run's row, or its last column with --wide."""
    notes = [] if rec["status"] == "unreadable" else [for_terminal(_changes(rec))]
    return notes + ([f"error: {_error_text(rec['error'])}"] if rec.get("error") else [])


def _row(rec: dict[str, Any], root: Path, wide: bool) -> list[str]:
    metrics = rec.get("metrics") or {}
    card = experiments.card(rec["kind"]) if rec.get("kind") in experiments.kinds() else None
    fmt = {m.key: m for m in card.metrics} if card else {}
    values = {k: fmt[k].format(v) if k in fmt else _fmt(v) for k, v in metrics.items()}
    status = rec["status"] or "?"
    if wide:
        result = " ".join(f"{k}={v}" for k, v in values.items())
        return [rec["run"], rec.get("kind") or "?", status, (rec.get("start_time") or "")[:19], result,
                " | ".join(_notes(rec))]
    return [_short_run(rec["run"], root), status, " ".join(values.values())]


def table_lines(records: list[dict[str, Any]], root: Path, wide: bool = False, width: int = 100) -> list[str]:
    """`filterlab runs` as text. By default within ``width`` columns: a line per run (run, status, key results),
    its config changes on an indented line below (wrapped), and what the results are at the end; with ``wide``,
    everything on one line per run however long.

    The changes read "vs preset: what the run changed from its preset file (its --set, --seed, --device) | PRESET vs
    defaults: what the preset file changes from the code defaults".
    """
    rows = [[for_terminal(c) for c in _row(r, root, wide)] for r in records]  # a folder name is data, not a command
    head = (["run", "kind", "status", "started", "metrics", "changes"] if wide else ["run", "status", "result"])
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    if not wide:
        widths[0] = min(widths[0], width - 14 - max(len(r[2]) for r in rows) - 4)
    lines = ["  ".join(c.ljust(w) for c, w in zip(head, widths)).rstrip()]
    for rec, row in zip(records, rows):
        lines.append("  ".join(_cut(c, w).ljust(w) for c, w in zip(row, widths)).rstrip())
        if not wide:
            for note in _notes(rec):
                lines += textwrap.wrap(note, width, initial_indent="    ", subsequent_indent="      ",
                                       break_on_hyphens=False)
    if not wide:
        for kind in sorted({r["kind"] for r in records if r.get("kind") in experiments.kinds()}):
            labels = ", ".join(m.label for m in experiments.card(kind).metrics)
            lines += textwrap.wrap(f"result of {kind}: {labels}", width, subsequent_indent="  ")
    return lines
