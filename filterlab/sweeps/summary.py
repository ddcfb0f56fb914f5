"""The sweep's summary: ``sweep.json`` and ``sweep.csv``, one row per run with its grid point, status and final
metrics, written the same way whichever launcher ran the sweep."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ..core.rundir import atomic_write_text
from ..runtable import describe_run
from .plan import Job

# Statuses of a run that has not ended (yet): neither completed nor a failure.
PENDING_STATUSES = ("not started", "queued", "running")
# Row fields kept out of sweep.csv (multi-line text); sweep.json has them.
JSON_ONLY = ("log_tail",)


def summarise(todo: list[Job], grid: dict, seeds: int, sweep_dir: Path, config: Path, interrupted: bool,
              extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write sweep.json and sweep.csv from every job's ``result`` (run_dir, status, error and any launcher fields)."""
    rows = []
    for job in todo:
        res = job.result or {"run_dir": None, "status": "not started", "error": None}
        metrics: dict[str, Any] = {}
        if res.get("run_dir") and Path(res["run_dir"]).is_dir():
            metrics = describe_run(Path(res["run_dir"])).get("metrics") or {}
        more = {k: v for k, v in res.items() if k not in ("run_dir", "status", "error", "exit_code")}
        rows.append({**job.point, "run_dir": res.get("run_dir"), "status": res["status"], "error": res.get("error"),
                     **more, **metrics})
    keys = list(grid) + (["seed"] if seeds > 1 else [])
    summary = {"config": str(config), "grid": grid, "seeds": seeds, "varied": keys, "sweep_dir": str(sweep_dir),
               **(extra or {}), "runs": rows, "completed": sum(r["status"] == "completed" for r in rows),
               "failed": [r["run_dir"] or f"run {i + 1}" for i, r in enumerate(rows)
                          if r["status"] not in ("completed", *PENDING_STATUSES)],
               "interrupted": interrupted}
    atomic_write_text(sweep_dir / "sweep.json", json.dumps(summary, indent=2) + "\n")
    fields = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in JSON_ONLY]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(sweep_dir / "sweep.csv", buf.getvalue())
    return summary
