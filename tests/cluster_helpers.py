"""Helpers of the cluster sweep tests (submitit's local executor and real Slurm): a task's record, waiting for a
task to train, and the bit-identical comparison of two runs."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from conftest import wait_for

from filterlab.core import runfiles
from filterlab.core.artifacts import Checkpoint


def task_record(sweep_root: Path, index: int) -> dict | None:
    found = list(sweep_root.glob(f"sweeps/*/*/tasks/{index:04d}.json"))
    return json.loads(found[0].read_text()) if found else None


def running_task(out: Path, index: int) -> dict:
    """Wait until task ``index`` is training (its run folder has meta.json); its record."""
    rec: list[dict] = []

    def look() -> bool:
        r = task_record(out, index)
        if r and r["status"] == "running" and r["run_dir"] and (Path(r["run_dir"]) / "meta.json").is_file():
            rec[:] = [r]
        return bool(rec)

    wait_for(look, timeout=120)
    return rec[0]


def same_result(run: Path, ref: Path) -> None:
    """Bit-identical end: every checkpoint tensor, the metrics and the summary (timings aside)."""
    a, b = Checkpoint.load(ref), Checkpoint.load(run)
    assert a.step == b.step
    assert all(torch.equal(a.model[k], b.model[k]) for k in a.model)
    opt_a, opt_b = a.training["optimizer"], b.training["optimizer"]
    assert all(torch.equal(opt_a[k], opt_b[k]) for k in opt_a)
    # train_seconds is a timing; run_id names the run folder it was written in (each run has its own)
    strip = lambda d: {k: v for k, v in d.items() if k not in ("train_seconds", "run_id")}  # noqa: E731
    assert strip(json.loads((run / "summary.json").read_text())) == strip(json.loads((ref / "summary.json")
                                                                                      .read_text()))
    assert runfiles.read_metrics(run) == runfiles.read_metrics(ref)
