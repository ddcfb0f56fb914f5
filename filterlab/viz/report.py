"""A self-contained HTML report per run: what happened, key results, every figure with its caption and alt text.

Images are embedded as data URIs, so ``report.html`` opens offline, from any folder, with no server. Built from
the run directory alone with a jinja2 template (autoescaped); no torch.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import jinja2

from .. import experiments
from ..core.errors import InputError, RunDirError
from ..core.rundir import CONFIG_FILE, FIGURES_DIR, SUMMARY_FILE, atomic_write_text
from ..core.runfiles import read_config_text, read_meta, sidecars
from .player import player_from

REPORT_FILE = "report.html"

# Figures in reading order; anything else found in figures/ follows alphabetically.
ORDER = ("filters_raw", "filters_binarised", "filter_change", "similarity", "loss", "conv1_filters", "feature_maps",
         "curves", "confusion", "evolution", "evolution_gif")
# then the insight figures in teaching order, layer by layer within each: how the filters changed, what excites
# them in the data, what input excites them most, and where the evidence for a class lies
INSIGHT_ORDER = ("filter_change_", "weights_", "top_patches_", "feature_vis_", "saliency")


def _rank(name: str) -> tuple[int, str]:
    if name in ORDER:
        return ORDER.index(name), ""
    for i, prefix in enumerate(INSIGHT_ORDER):
        if name.startswith(prefix):
            return len(ORDER) + i, name
    return len(ORDER) + len(INSIGHT_ORDER), name

def figure_entries(fig_dir: Path, problems: list[str] | None = None) -> list[tuple[str, Path, dict]]:
    """(name, image file, {"caption", "alt"}) for every figure with its sidecar, in reading order. A sidecar that
    fails its reader (a wrong type, a figure outside figures/, one over the size cap) is left out, and why is
    appended to ``problems``."""
    found = {}
    good, bad = sidecars(fig_dir) if fig_dir.is_dir() else ([], [])
    if problems is not None:
        problems += bad
    for side in good:
        found[side.name] = (side.name, side.image, side.meta)
    return [found[k] for k in sorted(found, key=_rank)]



_ENV = jinja2.Environment(loader=jinja2.PackageLoader("filterlab.viz", "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined)
RUN_KEYS = ("start_time", "end_time", "device", "cuda_device", "seed", "threads", "torch_version",
            "filterlab_version", "python_version")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


MAX_REPORT_FIGURES = 256 << 20  # bytes of figures embedded in one report at most; later ones are listed, not embedded


def _figures(fig_dir: Path, problems: list[str]) -> list[dict[str, str]]:
    out, total = [], 0
    for name, img, meta in figure_entries(fig_dir, problems):
        total += img.stat().st_size
        if total > MAX_REPORT_FIGURES:
            problems.append(f"{img}: not embedded; the report's figures would pass {MAX_REPORT_FIGURES:,} bytes")
            continue
        out.append({"name": name, "file": img.name, "mime": "image/gif" if img.suffix == ".gif" else "image/png",
                    "data": base64.b64encode(img.read_bytes()).decode("ascii"), "alt": meta.get("alt", ""),
                    "caption": meta.get("caption", "")})
    return out


def report_context(run_dir: Path, problems: list[str] | None = None, final: dict[str, Any] | None = None,
                   known_player: Any = None) -> dict[str, Any]:
    """Everything the template shows, from the run's files (each through its reader); the kind's card names and
    explains its results. Sidecars that fail their reader are left out and described in ``problems``.
    ``known_player``: the slider data the figure helper read from the GIF it wrote (viz.player.found)."""
    problems = [] if problems is None else problems
    meta = {**read_meta(run_dir), **(final or {})}  # final: the status the run is about to commit (lifecycle)
    kind = meta.get("kind")
    summary = experiments.read_summary(run_dir, kind) if (run_dir / SUMMARY_FILE).is_file() else {}
    card = experiments.card(kind) if kind in experiments.kinds() else None
    metrics = [{"label": m.label, "value": m.format(summary.get(m.key)), "meaning": m.meaning}
               for m in (card.metrics if card else ()) if m.key in summary]
    return {
        "run_name": run_dir.name, "meta": meta, "status": meta.get("status", "unknown"),
        "title": card.title if card else str(kind), "metrics": metrics,
        "what_happened": card.what_happened(summary) if card and summary else "",
        "tables": card.tables(summary) if card and summary else [],
        "run_rows": [(k, _fmt(meta.get(k))) for k in RUN_KEYS if meta.get(k) is not None],
        "figures": _figures(run_dir / FIGURES_DIR, problems),
        "player": player_from(run_dir / FIGURES_DIR, known_player),
        "config_text": read_config_text(run_dir / CONFIG_FILE),
        "command": " ".join(meta.get("command_line", [])),
    }


def build_report(run_dir: str | Path, final: dict[str, Any] | None = None, known_player: Any = None) -> Path:
    """Write RUN_DIR/report.html from the run's files and return its path; a figure sidecar left out is warned of."""
    run_dir = Path(run_dir)
    problems: list[str] = []
    html = _ENV.get_template("report.html.j2").render(**report_context(run_dir, problems, final, known_player))
    path = run_dir / REPORT_FILE
    try:
        atomic_write_text(path, html)
    except OSError as e:
        raise RunDirError(f"{path}: cannot be written ({e.strerror or e})") from None
    for p in problems:
        print(f"filterlab: warning: report.html leaves out {p}", file=sys.stderr)
    return path


def write_report(run_dir: Path, final: dict[str, Any] | None = None, known_player: Any = None) -> str | None:
    """The run's report.html (``final``: meta fields the run is about to commit, shown already). A failure is
    warned of and returned (a disk that cannot take the report: the caller does not end such a run completed)."""
    try:
        build_report(run_dir, final, known_player)
    except (InputError, OSError, jinja2.TemplateError) as e:
        print(f"filterlab: warning: could not write {run_dir}/report.html: {e}", file=sys.stderr)
        return str(e)
    return None
