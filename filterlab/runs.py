"""Listing runs for `filterlab runs` and `compare`: status, times, key metrics, what the config changed.

No torch is imported here: listing a folder of runs takes a fraction of a second. One broken or hostile run folder
is reported on its own line and never stops the listing of the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import experiments
from .core import config as C
from .core.errors import InputError, short_repr
from .core.locks import is_held
from .core.rundir import CONFIG_FILE, META_FILE, SUMMARY_FILE, read_json_object


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
    try:
        meta = read_json_object(run_dir / META_FILE)
    except InputError as e:
        return {**rec, "kind": None, "status": "unreadable", "error": str(e), "changes": None, "metrics": {}}
    kind = meta.get("kind") if isinstance(meta.get("kind"), str) else None
    rec.update(kind=kind, status=live_status(run_dir, meta.get("status")), start_time=meta.get("start_time"),
               end_time=meta.get("end_time"), error=meta.get("error"))
    try:
        rec["changes"] = config_changes(run_dir, meta)
    except InputError as e:
        rec["changes"] = None
        rec["error"] = rec.get("error") or f"config.yaml: {short_repr(str(e), 200)}"
    summary: dict[str, Any] = {}
    if (run_dir / SUMMARY_FILE).is_file():
        try:
            summary = read_json_object(run_dir / SUMMARY_FILE)
        except InputError as e:
            rec["error"] = rec.get("error") or str(e)
    metrics = experiments.card(kind).metrics if kind in experiments.kinds() else ()
    rec["metrics"] = {m.key: summary.get(m.key) for m in metrics}
    return rec
