"""Several runs side by side: their trained filters, their curves, and a table of what differs and what came of it.

Runs are labelled by the config keys that differ between them. Everything kind-specific (curves, key metrics) comes
from the experiment registry.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import experiments
from ..core.artifacts import Snapshots
from ..core.config import flatten, to_dict
from ..core.errors import InputError
from ..core.rundir import CONFIG_FILE, atomic_write_text, is_run_dir
from ..runs import describe_run
from .style import LINESTYLES, MARKERS, OKABE_ITO, cmap_of, grid, mosaic, new_figure, save, sym_limit

IGNORED = {"name"}  # differs between presets without changing the experiment


class CompareError(InputError):
    pass


def varying_keys(configs: list[dict]) -> list[str]:
    flat = [flatten(c) for c in configs]
    keys = sorted(set().union(*flat))
    return [k for k in keys if k not in IGNORED and len({json.dumps(f.get(k)) for f in flat}) > 1]


def labels_for(configs: list[dict], run_dirs: list[Path]) -> tuple[list[str], list[str]]:
    keys = varying_keys(configs)
    if not keys:
        return [d.name for d in run_dirs], keys
    flat = [flatten(c) for c in configs]
    return [", ".join(f"{k}={f.get(k)}" for k in keys) for f in flat], keys


def load_runs(run_dirs: Sequence[str | Path]) -> tuple[list[Path], list[Any], str]:
    """The run folders, their configs and their one kind; CompareError for anything that cannot be compared."""
    dirs = [Path(d) for d in run_dirs]
    if len(dirs) < 2:
        raise CompareError(f"compare needs two or more run folders, got {len(dirs)}")
    for d in dirs:
        if not is_run_dir(d):
            raise CompareError(f"{d}: not a run directory (no meta.json and config.yaml)")
    cfgs = [experiments.load_config(d / CONFIG_FILE) for d in dirs]
    kinds = {c.kind for c in cfgs}
    if len(kinds) > 1:
        raise CompareError(f"runs of different kinds cannot be compared: {', '.join(sorted(kinds))}")
    return dirs, cfgs, kinds.pop()


def filters_figure(dirs: list[Path], labels: list[str], what: str, out_dir: Path, cmap: str, dpi: int) -> None:
    """The trained filters of the first snapshotted layer of every run, one column each, on one shared scale."""
    snaps = [Snapshots.load(d) for d in dirs]
    layer = snaps[0].first_layer
    last = [s.weights[s.first_layer][-1][:, 0].numpy() for s in snaps]  # (N, k, k) each
    vlim = sym_limit(*last)
    n_runs, n = len(dirs), last[0].shape[0]
    cols = 1 if last[0].shape[-1] > 9 else min(4, n)
    fig = new_figure(min(2.6 * n_runs + 1.2, 30), 1.3 * int(np.ceil(n / cols)) + 1.2)
    axes = fig.subplots(1, n_runs, squeeze=False)[0]
    fig.subplots_adjust(left=0.02, right=0.9, bottom=0.02, top=0.82, wspace=0.08)
    im = None
    for ax, filt, label in zip(axes, last, labels):
        tiles = mosaic(grid(filt, cols), max(1, filt.shape[-1] // 7))
        im = ax.imshow(tiles, cmap=cmap_of(cmap), vmin=-vlim, vmax=vlim, interpolation="nearest")
        ax.set_title(label.replace(", ", "\n"), fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, cax=fig.add_axes((0.92, 0.1, 0.015, 0.7)), label="weight")
    save(fig, out_dir, "compare_filters",
         f"Trained {layer} filters of {n_runs} runs side by side, one column per run, labelled by what differs "
         f"between their configs ({what}). Raw weights on the {cmap} diverging map centred at zero, one scale for "
         f"all runs, -{vlim:.3g} to +{vlim:.3g}.",
         f"{n_runs} columns of trained filters in blue and red, one per run: " + "; ".join(labels) + ".", dpi)


def curves_figure(dirs: list[Path], cfgs: list[Any], labels: list[str], what: str, out_dir: Path, dpi: int) -> None:
    """The kind's training curves (from the registry), one panel each, one line per run."""
    exp = experiments.get(cfgs[0].kind)
    runs = [exp.curves(d, c) for d, c in zip(dirs, cfgs)]
    panels = len(runs[0])
    fig = new_figure(4.75 * panels, 3.8)
    axes = fig.subplots(1, panels, squeeze=False)[0]
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.15, top=0.88, wspace=0.22)
    for i, (curves, label) in enumerate(zip(runs, labels)):
        style = dict(color=OKABE_ITO[i % 8], linestyle=LINESTYLES[(i // 8) % 4], marker=MARKERS[i % 8],
                     markersize=4, label=label)
        for ax, c in zip(axes, curves):
            ax.plot(c.x, c.y, markevery=max(1, len(c.x) // 8), **style)
    for ax, c in zip(axes, runs[0]):
        ax.set_title(c.title, fontsize=10)
        ax.set_xlabel(c.xlabel)
        if c.xscale == "symlog":
            ax.set_xscale("symlog", linthresh=10)
        if c.ylim is not None:
            ax.set_ylim(*c.ylim)
    axes[-1].legend(fontsize=7)
    titles = ", ".join(c.title for c in runs[0])
    save(fig, out_dir, "compare_curves", f"{titles} over training for {len(dirs)} runs labelled by what differs "
         f"({what}).", f"{panels} line charts with one line per run ({len(dirs)} runs), each line with its own "
         "colour, dash and marker.", dpi)


def compare(run_dirs: Sequence[str | Path], out_dir: Path) -> dict[str, Any]:
    """Write compare_*.png (with captions and alt text), compare.md, compare.csv and compare.json into ``out_dir``."""
    dirs, cfgs, kind = load_runs(run_dirs)
    if out_dir.exists() and not out_dir.is_dir():
        raise CompareError(f"--out {out_dir}: a file is in the way; give a folder")
    configs = [to_dict(c) for c in cfgs]
    labels, keys = labels_for(configs, dirs)
    what = ", ".join(keys) if keys else "nothing in their configs (different seeds or repeats)"
    out_dir.mkdir(parents=True, exist_ok=True)
    filters_figure(dirs, labels, what, out_dir, cfgs[0].output.cmap, cfgs[0].output.dpi)
    curves_figure(dirs, cfgs, labels, what, out_dir, cfgs[0].output.dpi)
    return write_tables(dirs, configs, labels, keys, kind, out_dir)


def write_tables(dirs: list[Path], configs: list[dict], labels: list[str], keys: list[str], kind: str,
                 out_dir: Path) -> dict[str, Any]:
    """compare.md, compare.csv and compare.json: what differs and the kind's key metrics, one row per run."""
    records = [describe_run(d) for d in dirs]
    metric_keys = [m.key for m in experiments.card(kind).metrics]
    rows = []
    for rec, label, cfg in zip(records, labels, configs):
        flat = flatten(cfg)
        rows.append({"run": rec["run"], "label": label, "status": rec["status"],
                     **{k: flat.get(k) for k in keys}, **{k: rec["metrics"].get(k) for k in metric_keys}})
    header = ["run", "status", *keys, *metric_keys]
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
    md = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    md += ["| " + " | ".join(fmt(r.get(h)) for h in header) + " |" for r in rows]
    table = "\n".join(md)
    atomic_write_text(out_dir / "compare.md", table + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["label", *header])
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out_dir / "compare.csv", buf.getvalue())
    atomic_write_text(out_dir / "compare.json", json.dumps({"kind": kind, "varying": keys, "runs": rows}, indent=2))
    return {"kind": kind, "varying": keys, "labels": labels, "rows": rows, "table": table}
