"""The plan of a sweep: every combination of the ``--grid`` values times ``--seeds``, validated before anything runs.

Both launchers start from the same plan. For a cluster the plan is also the sweep's identity: the resolved config of
every run (launcher settings left out), hashed, so that running the same sweep command again finds the same sweep
folder and submits only the runs that have not completed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import experiments
from ..core import config as C
from ..core.errors import InputError
from ..preflight import check_config


class SweepError(InputError):
    pass


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """``["train.lr=0.1,0.01", "seed=0,1"]`` -> {"train.lr": ["0.1", "0.01"], "seed": ["0", "1"]}."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        vals = [v.strip() for v in split_top_level(values)] if sep else []
        if not key.strip() or not vals or any(v == "" for v in vals):
            raise SweepError(f"grid {item!r}: expected KEY=V1,V2,..., for example train.lr=0.1,0.01")
        if key.strip() in grid:
            raise SweepError(f"grid key {key.strip()!r} is given twice")
        grid[key.strip()] = vals
    return grid


MAX_RUNS = 10_000  # runs in one sweep unless --max-runs says more: planning alone takes about 1 ms a run


def check_size(grid: dict[str, list[str]], seeds: int, max_runs: int = MAX_RUNS) -> int:
    """The number of runs the grid and seeds make, counted before anything is planned; SweepError past
    ``max_runs``."""
    runs = seeds
    for values in grid.values():
        runs *= len(values)
    if runs > max_runs:
        sizes = " x ".join(f"{len(v)} ({k})" for k, v in grid.items())
        raise SweepError(f"grid and seeds: {sizes} x {seeds} seed(s) = {runs:,} runs; accepted: at most "
                         f"{max_runs:,} runs (raise max_runs if you mean it)")
    return runs


def split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets: "[16,32],[32,64]" -> ["[16,32]", "[32,64]"]."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


@dataclass
class Job:
    index: int
    sets: list[str]  # --set overrides of this run
    point: dict[str, Any]  # the grid values (and seed) of this run, as the config reads them
    result: dict[str, Any] = field(default_factory=dict)


def plan(config: Path, grid: dict[str, list[str]], seeds: int, base_sets: list[str], threads: int) -> list[Job]:
    """Every combination, validated now: a bad value stops the sweep before any run starts."""
    keys = list(grid)
    jobs: list[Job] = []
    base = experiments.load_config(config, base_sets)
    for combo in itertools.product(*(grid[k] for k in keys)):
        for s in range(seeds):
            sets = list(base_sets) + [f"{k}={v}" for k, v in zip(keys, combo, strict=True)]
            if seeds > 1:
                sets.append(f"seed={base.seed + s}")
            try:
                cfg = experiments.load_config(config, sets)
                if cfg.threads > threads:  # threads: 0 runs share the cores through the registry of live runs
                    sets.append(f"threads={threads}")
                    cfg = experiments.load_config(config, sets)
                check_config(cfg)  # geometry and budget of every run, before any starts
            except InputError as e:
                raise SweepError(str(e)) from None
            flat = {k: v for k, v in C.flatten(C.to_dict(cfg)).items() if k in keys or (seeds > 1 and k == "seed")}
            jobs.append(Job(len(jobs), sets, flat))
    return jobs


def absolute_paths(config: Path, base_sets: list[str]) -> list[str]:
    """Overrides that make the config's relative data paths absolute, so a run folder stands alone on a shared
    filesystem: a job may start in another working folder, and a requeued one re-reads the saved config."""
    cfg = experiments.load_config(config, base_sets)
    before, after = experiments.path_values(cfg), experiments.path_values(experiments.absolute_paths(cfg))
    return list(base_sets) + [f"{k}={after[k]}" for k in before if after[k] != before[k]]


def resolved_configs(config: Path, jobs: list[Job]) -> list[dict[str, Any]]:
    """The full config of every run, as plain data (what the cluster jobs receive)."""
    return [C.to_dict(experiments.load_config(config, job.sets)) for job in jobs]


def identity(configs: list[dict[str, Any]]) -> str:
    """A hash of every run's config without its launcher section: the same sweep asked for again, even with more
    time or another partition, has the same identity."""
    stripped = [{k: v for k, v in cfg.items() if k != "launcher"} for cfg in configs]
    return hashlib.sha256(json.dumps(stripped, sort_keys=True).encode()).hexdigest()[:16]
