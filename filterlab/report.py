"""A self-contained HTML report per run: config, status, metrics and every figure with its caption and alt text.

Images are embedded as data URIs, so ``report.html`` opens offline, from any folder, with no server. Built from
the run directory alone; no torch.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from .runs import CONFIG_FILE, FIGURES_DIR, META_FILE, SUMMARY_FILE, atomic_write_text, read_json

REPORT_FILE = "report.html"

# Figures in reading order; anything else found in figures/ follows alphabetically.
ORDER = ("filters_raw", "filters_binarised", "filter_change", "similarity", "loss", "conv1_filters", "feature_maps",
         "curves", "confusion", "evolution", "evolution_gif")

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #111;
       line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th { background: #eee; } td.l, th.l { text-align: left; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: 0.95em; margin-top: 0.4em; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.status-completed { color: #006d2c; } .status-failed, .status-diverged { color: #a50f15; }
.status-interrupted, .status-running { color: #8c510a; }
"""


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def figure_entries(fig_dir: Path) -> list[tuple[str, Path, dict]]:
    """(name, image file, {"caption", "alt"}) for every figure with its sidecar, in reading order."""
    found = {}
    for side in sorted(fig_dir.glob("*.json")):
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        img = fig_dir / meta.get("figure", "")
        if img.is_file():
            found[side.stem] = (side.stem, img, meta)
    ranked = [found.pop(n) for n in ORDER if n in found]
    return ranked + [found[k] for k in sorted(found)]


def _similarity_table(summary: dict) -> str:
    rows = []
    for f in summary.get("filters", []):
        rows.append("<tr>" + "".join(f"<td>{_esc(_fmt(f.get(k)))}</td>" for k in (
            "filter", "weight_cosine_start", "weight_cosine_end", "change_cosine_end", "binary_agreement_start",
            "binary_agreement_end", "norm_start", "norm_end")) + "</tr>")
    head = ("<tr><th>filter</th><th>cosine with image, start</th><th>cosine with image, end</th>"
            "<th>cosine of change with image</th><th>binary agreement, start</th><th>binary agreement, end</th>"
            "<th>norm, start</th><th>norm, end</th></tr>")
    return (f"<h2>How much each filter looks like the image</h2><table>{head}{''.join(rows)}</table>"
            "<p>Cosine similarity: 1 is the image's own shape, 0 no resemblance, -1 its negative. Binary agreement: "
            "the share of pixels on the same side of their mean in filter and image, which is what the thresholded "
            "pictures show (0.5 is chance; near 0, the negative image).</p>")


def build_report(run_dir: str | Path) -> Path:
    """Write RUN_DIR/report.html from the run's files and return its path."""
    run_dir = Path(run_dir)
    meta = read_json(run_dir / META_FILE)
    summary = read_json(run_dir / SUMMARY_FILE) if (run_dir / SUMMARY_FILE).is_file() else {}
    config_text = (run_dir / CONFIG_FILE).read_text(encoding="utf-8")
    status = meta.get("status", "unknown")
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>filterlab run {_esc(run_dir.name)}</title><style>{CSS}</style></head><body>",
             f"<h1>filterlab run <code>{_esc(run_dir.name)}</code></h1>",
             f"<p>{_esc(meta.get('kind', ''))} &middot; {_esc(meta.get('name', ''))} &middot; status "
             f"<strong class='status-{_esc(status)}'>{_esc(status)}</strong>"
             f"{' (' + _esc(meta['error']) + ')' if meta.get('error') else ''}</p>"]
    keys = ("start_time", "end_time", "device", "cuda_device", "seed", "threads", "torch_version",
            "filterlab_version", "python_version")
    parts.append("<h2>Run</h2><table>" + "".join(
        f"<tr><th class='l'>{_esc(k)}</th><td class='l'>{_esc(_fmt(meta.get(k)))}</td></tr>" for k in keys
        if meta.get(k) is not None) + "</table>")
    scalars = {k: v for k, v in summary.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
    if scalars:
        parts.append("<h2>Final metrics</h2><table>" + "".join(
            f"<tr><th class='l'>{_esc(k)}</th><td>{_esc(_fmt(v))}</td></tr>" for k, v in scalars.items()) + "</table>")
    if summary.get("kind") == "single_image":
        parts.append(_similarity_table(summary))
    figs = figure_entries(run_dir / FIGURES_DIR)
    if figs:
        parts.append("<h2>Figures</h2>")
    for name, img, fmeta in figs:
        mime = "image/gif" if img.suffix == ".gif" else "image/png"
        data = base64.b64encode(img.read_bytes()).decode("ascii")
        parts.append(f"<figure id='{_esc(name)}'><img src='data:{mime};base64,{data}' alt='{_esc(fmeta['alt'])}'>"
                     f"<figcaption><strong>{_esc(img.name)}</strong>: {_esc(fmeta['caption'])}</figcaption></figure>")
    parts.append(f"<h2>Resolved config</h2><pre>{_esc(config_text)}</pre>")
    parts.append(f"<p>Command: <code>{_esc(' '.join(meta.get('command_line', [])))}</code></p></body></html>\n")
    path = run_dir / REPORT_FILE
    atomic_write_text(path, "\n".join(parts))
    return path
