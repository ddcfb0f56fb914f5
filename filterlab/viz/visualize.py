"""Regenerate a run's figures and report from its directory alone: checkpoint, snapshots, metrics and summary.

Nothing is retrained. With the run's own inputs, the figures come back equal to the ones the run drew; ``image``
chooses another input for the figures that show one image, ``layer`` restricts per-layer figures to one layer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .. import experiments
from ..core.config import DIVERGING_CMAPS
from ..core.errors import InputError, RunDirError
from ..core.rundir import CONFIG_FILE, FIGURES_DIR, SUMMARY_FILE, is_run_dir
from ..core.runfiles import read_meta, sidecars
from ..experiments.base import FigureOptions
from .report import build_report


def load_run_config(run_dir: Path) -> Any:
    """The run's config, or InputError when the folder is not a run."""
    if not is_run_dir(run_dir):
        raise InputError(f"{run_dir}: not a run directory (no meta.json and config.yaml)")
    return experiments.load_config(run_dir / CONFIG_FILE)


def check_run_files(run_dir: Path, kind: str, report: bool) -> None:
    """Every small file of the run through its reader before anything is drawn: meta.json, summary.json and, when
    the report is rewritten, every figure sidecar; InputError naming the first file and key that fail."""
    read_meta(run_dir)
    if (run_dir / SUMMARY_FILE).exists():
        experiments.read_summary(run_dir, kind)
    if report and (run_dir / FIGURES_DIR).is_dir():
        problems = sidecars(run_dir / FIGURES_DIR)[1]
        if problems:
            raise InputError(problems[0])


def writable_folder(path: Path, flag: str) -> None:
    """InputError naming the folder when it cannot be written (read-only, no permission), before any work."""
    probe = path if path.exists() else next((p for p in path.parents if p.exists()), Path("."))
    if not os.access(probe, os.W_OK | os.X_OK):
        raise RunDirError(f"{flag}{probe}: the folder is not writable (read-only or no permission); "
                          f"{'give another out folder to draw elsewhere' if not flag else 'choose another folder'}")


def visualize(run_dir: str | Path, image: str | None = None, layer: str | None = None, cmap: str | None = None,
              out: str | Path | None = None, insight: bool = False) -> tuple[list[Path], list[str]]:
    """Draw every figure of a run again (into ``out``, default RUN_DIR/figures) and rewrite its report; with
    ``insight`` or ``image``, also the kind's insight figures. Returns the figures' paths and lines to print."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    if cmap is not None and cmap not in DIVERGING_CMAPS:
        raise InputError(f"cmap: {cmap!r} is not one of the colour-blind-safe diverging maps "
                         f"{', '.join(DIVERGING_CMAPS)}")
    out_dir = Path(out) if out is not None else run_dir / FIGURES_DIR
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"out {out_dir}: a file is in the way; give a folder")
    check_run_files(run_dir, cfg.kind, report=out is None)
    writable_folder(out_dir, "out " if out is not None else "")
    if out is None:
        writable_folder(run_dir, "")
    exp = experiments.get(cfg.kind)
    options = FigureOptions(image=image, layer=layer, insight=insight, cmap=cmap)
    data = exp.figure_data(run_dir, cfg, options)
    out_dir.mkdir(parents=True, exist_ok=True)
    infos = exp.draw(data, out_dir, cmap or cfg.output.cmap, cfg.output.dpi)
    lines: list[str] = []
    if insight or image is not None:
        more, lines = exp.insight(run_dir, cfg, options, out_dir)
        infos += more
    if out is None:
        build_report(run_dir)
    return [i.path for i in infos], lines
