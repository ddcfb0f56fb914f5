"""Several runs side by side: their trained filters, their curves, and tables of what differs and what came of it.

Runs are labelled by the config keys that differ between them. Runs that differ only in their seed form a group (the
swept value, or values, with several seeds): each group gets its mean and spread across seeds, in a table and in a
figure with error bars, and its curves are drawn as the mean with a band from the lowest to the highest seed. Figures
fit a page whatever the number of runs: filters are paged (``compare_filters.png``, ``compare_filters_2.png``, ...),
curves beyond ``MAX_STYLES`` lines are summarised. Everything kind-specific comes from the experiment registry.

``group_rows`` works on plain rows (one dict per run), so a sweep's summary can group its own rows the same way.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator

from .. import experiments
from ..core.artifacts import Snapshots
from ..core.config import flatten, to_dict
from ..core.errors import InputError
from ..core.escape import for_markdown
from ..core.rundir import CONFIG_FILE, SUMMARY_FILE, atomic_write_text, is_run_dir
from ..core.runfiles import read_meta, read_metrics
from ..experiments.base import Curve, Metric
from ..runtable import describe_run
from .filters import label_rows
from .style import (
    COLORBAR_MIN_IN,
    LABEL,
    MAX_STYLES,
    OKABE_ITO,
    SMALL,
    TICK,
    TITLE,
    Drawn,
    InchLayout,
    cmap_of,
    colorbar,
    colorbar_space,
    legend_beside,
    mosaic,
    run_style,
    save_all,
    signed_colours,
    sym_limit,
    text_width_in,
    wrap_label,
)

IGNORED = {"name"}  # differs between presets without changing the experiment
SEED = "seed"
MAX_PAGES = 12  # filter pages at most; later runs are in the tables only


class CompareError(InputError):
    pass


def varying_keys(configs: list[dict]) -> list[str]:
    """Config keys whose values differ between the runs, sorted, the seed last (it labels repeats, not settings)."""
    flat = [flatten(c) for c in configs]
    keys = sorted(set().union(*flat), key=lambda k: (k == SEED, k))
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
    for d, c in zip(dirs, cfgs):  # every file the comparison reads, through its reader, before anything is drawn
        read_meta(d)
        if (d / SUMMARY_FILE).exists():
            experiments.read_summary(d, c.kind)
        read_metrics(d)
    kinds = {c.kind for c in cfgs}
    if len(kinds) > 1:
        raise CompareError(f"runs of different kinds cannot be compared: {', '.join(sorted(kinds))}")
    return dirs, cfgs, kinds.pop()


# ---------------------------------------------------------------------------------------------------------------------
# Groups: the swept value(s), with mean and spread across seeds


@dataclass(frozen=True)
class Group:
    label: str  # "train.weight_decay=0.001", or "all runs" when only the seed differs
    values: dict[str, Any]  # the swept keys' values
    members: tuple[int, ...]  # indices of its runs


def group_runs(rows: list[dict[str, Any]], keys: Sequence[str]) -> list[Group]:
    """Runs grouped by the values of ``keys`` (the varying keys but the seed), in order of first appearance."""
    swept = [k for k in keys if k != SEED]
    found: dict[str, list[int]] = {}
    values: dict[str, dict[str, Any]] = {}
    for i, row in enumerate(rows):
        v = {k: row.get(k) for k in swept}
        label = ", ".join(f"{k}={v[k]}" for k in swept) or "all runs"
        found.setdefault(label, []).append(i)
        values[label] = v
    return [Group(label, values[label], tuple(m)) for label, m in found.items()]


def _stats(xs: list[float]) -> dict[str, float | int | None]:
    a = np.asarray([x for x in xs if x is not None and math.isfinite(x)], dtype=float)
    if not a.size:
        return {"n": 0, "mean": None, "sd": None, "min": None, "max": None}
    return {"n": int(a.size), "mean": float(a.mean()), "sd": float(a.std(ddof=1)) if a.size > 1 else None,
            "min": float(a.min()), "max": float(a.max())}


def group_rows(rows: list[dict[str, Any]], keys: Sequence[str], metric_keys: Sequence[str]) -> list[dict[str, Any]]:
    """One row per group of runs that differ only in their seed: the swept values, the number of runs, and per metric
    its mean, sample standard deviation, minimum and maximum across the group's runs (runs without a value, such as
    failed ones, are left out of the statistics and counted in ``runs``)."""
    out = []
    for g in group_runs(rows, keys):
        members = [rows[i] for i in g.members]
        row: dict[str, Any] = {"group": g.label, **g.values, "runs": len(members)}
        for m in metric_keys:
            vals = [r.get(m) for r in members]
            stats = _stats([float(v) for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)])
            row.update({f"{m}_{s}": v for s, v in stats.items()})
        out.append(row)
    return out


def is_grouped(groups: list[Group]) -> bool:
    """True when at least one group holds several runs (seeds), so that a spread can be shown."""
    return any(len(g.members) > 1 for g in groups)


# ---------------------------------------------------------------------------------------------------------------------
# Filters, paged


def filter_pages(n_runs: int, n_filters: int, k: int, group: int = 1) -> tuple[int, int, int]:
    """(filters per run, runs per page, pages): at most 64 filters a page, 8 runs a page, MAX_PAGES pages; with
    groups of ``group`` runs each (seeds), pages hold whole groups where that fits."""
    strip = min(n_filters, 8 if k > 9 else 16)
    per_page = max(1, min(8, 64 // strip))
    if 1 < group <= per_page:
        per_page -= per_page % group
    return strip, per_page, min(MAX_PAGES, -(-n_runs // per_page))


def filters_page(filters: list[np.ndarray], labels: list[str], cmap: str, vlim: float) -> Any:
    """One row per run: its label on the left, its filters (N, k, k) in a numbered strip, one shared colour bar."""
    n, k = filters[0].shape[0], filters[0].shape[-1]
    tile = 0.8 if k > 9 else 0.4
    rows_in = len(filters) * (tile + 0.12)
    if rows_in < COLORBAR_MIN_IN:  # the colour bar is no taller than the strips it serves
        tile *= COLORBAR_MIN_IN / rows_in
    gap = max(1, round(0.07 / (tile / k)))
    tiles = mosaic(np.stack(filters), gap, gap_y=max(1, round(0.12 / (tile / k))))
    px = tile / k
    mos_w, mos_h = tiles.shape[1] * px, tiles.shape[0] * px
    wrapped = [wrap_label(lbl, 2.6, SMALL) for lbl in labels]
    label_w = max(max(text_width_in(line, SMALL) for line in w.split("\n")) for w in wrapped) + 0.2
    body = max(mos_h, 1.5)
    layout = InchLayout(0.15 + label_w + mos_w + colorbar_space(-vlim, vlim), 0.55 + body + 0.15)
    ax = layout.axes(0.15 + label_w, 0.55, mos_w, mos_h)
    im = ax.imshow(tiles, cmap=cmap_of(cmap), vmin=-vlim, vmax=vlim, interpolation="nearest")
    gy = (tiles.shape[0] - len(filters) * k) / max(len(filters) - 1, 1)
    label_rows(ax, n, k, gap, [i * (k + gy) + (k - 1) / 2 for i in range(len(filters))], wrapped, SMALL)
    colorbar(layout, im, 0.15 + label_w + mos_w + 0.25, 0.55, mos_h, "weight")
    return layout.fig


def filters_figures(dirs: list[Path], labels: list[str], what: str, cmap: str, group: int = 1) -> list[Drawn]:
    """The trained filters of the first snapshotted layer of every run (first input channel), on one shared scale,
    paged so that each page fits."""
    snaps = [Snapshots.load(d) for d in dirs]
    layer = snaps[0].first_layer
    last = [s.weights[s.first_layer][-1][:, 0].numpy() for s in snaps]  # (N, k, k) each
    n, k = last[0].shape[0], last[0].shape[-1]
    strip, per_page, pages = filter_pages(len(dirs), n, k, group)
    vlim = sym_limit(*[f[:strip] for f in last])
    neg, pos = signed_colours(cmap)
    out = []
    for p in range(pages):
        idx = list(range(p * per_page, min((p + 1) * per_page, len(dirs))))
        fig = filters_page([last[i][:strip] for i in idx], [labels[i] for i in idx], cmap, vlim)
        name = "compare_filters" if p == 0 else f"compare_filters_{p + 1}"
        page = f" Page {p + 1} of {pages}: runs {idx[0] + 1} to {idx[-1] + 1} of {len(dirs)}." if pages > 1 else ""
        left = (f" Runs after the first {pages * per_page} are in compare.md only."
                if pages * per_page < len(dirs) else "")
        shown = f"the first {strip} of {n}" if strip < n else f"all {n}"
        caption = (f"Trained {layer} filters ({shown}, numbered from 1) of {len(dirs)} runs, one row per run, labelled "
                   f"by what differs between their configs ({what}). Raw weights on the {cmap} diverging map centred "
                   f"at zero, one scale for all runs, -{vlim:.3g} to +{vlim:.3g}.{page}{left}")
        alt = (f"{len(idx)} rows of trained filters in {neg} and {pos}, one per run: "
               + "; ".join(labels[i] for i in idx) + ".")
        out.append(Drawn(name, fig, caption, alt))
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Curves: one line per run, or the mean and spread of each group, or a summary beyond MAX_STYLES lines


def _on_grid(curves: list[Curve]) -> tuple[np.ndarray, np.ndarray]:
    """Curves of several runs on the first one's x (interpolated where they differ): (x, (R, T) y)."""
    x = np.asarray(curves[0].x, dtype=float)
    ys = [np.asarray(c.y, dtype=float) if np.array_equal(np.asarray(c.x, dtype=float), x)
          else np.interp(x, np.asarray(c.x, dtype=float), np.asarray(c.y, dtype=float)) for c in curves]
    return x, np.stack(ys)


def _x_axis(ax: Any, c: Curve, xs: np.ndarray) -> None:
    if c.xscale == "symlog" and len(xs) and xs.max() > 200:  # a short run reads best on a linear axis
        ax.set_xscale("symlog", linthresh=10)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlim(0, max(float(xs.max()), 1.0) * 1.15)
    elif len(xs) and np.allclose(xs, np.round(xs)):  # epochs, steps: whole numbers get whole ticks
        ax.xaxis.set_major_locator(MaxNLocator(6, integer=True, min_n_ticks=1))
        lo, hi = float(xs.min()), float(xs.max())
        pad = 0.5 if hi - lo < 2 else 0.03 * (hi - lo)  # a single epoch is one labelled position
        ax.set_xlim(lo - pad, hi + pad)
    log = ax.get_xscale() == "symlog"
    ax.set_xlabel(f"{c.xlabel} (linear to 10, log beyond)" if log else c.xlabel, fontsize=LABEL)
    if c.ylim is not None:
        ax.set_ylim(*c.ylim)
    ax.set_title(c.title, fontsize=TITLE)
    ax.tick_params(labelsize=TICK)


def _every(points: int, i: int, n: int) -> Any:
    """Markers evenly spaced along the drawn line (whatever the axis scale), offset per line; all of them on short
    lines."""
    return (0.1 * i / max(n, 1), 0.1) if points > 12 else None


def curves_figure(runs: list[list[Curve]], labels: list[str], groups: list[Group]) -> tuple[Any, str]:
    """The kind's curves, one panel each; returns the figure and the words for how the lines were drawn."""
    panels = len(runs[0])
    legend_w = 2.3
    layout = InchLayout(panels * (0.75 + 3.5) + 0.2 + legend_w, 3.4)
    mode = "groups" if is_grouped(groups) and len(groups) <= MAX_STYLES else (
        "runs" if len(runs) <= MAX_STYLES else "summary")
    for p in range(panels):
        ax = layout.axes(0.75 + p * (0.75 + 3.5), 0.4, 3.5, 2.45)
        if mode == "runs":
            for i, label in enumerate(labels):
                c = runs[i][p]
                ax.plot(c.x, c.y, markersize=4, markevery=_every(len(c.x), i, len(labels)), label=label,
                        **run_style(i))
        elif mode == "groups":
            for i, g in enumerate(groups):
                x, ys = _on_grid([runs[m][p] for m in g.members])
                style = run_style(i)
                ax.fill_between(x, ys.min(0), ys.max(0), color=style["color"], alpha=0.18, linewidth=0)
                ax.plot(x, ys.mean(0), markersize=4, markevery=_every(len(x), i, len(groups)),
                        label=f"{g.label} ({len(g.members)} runs)", **style)
        else:
            x, ys = _on_grid([r[p] for r in runs])
            ax.fill_between(x, ys.min(0), ys.max(0), color=OKABE_ITO[2], alpha=0.25, linewidth=0, label="min to max")
            ax.fill_between(x, *np.percentile(ys, [25, 75], axis=0), color=OKABE_ITO[4], alpha=0.35, linewidth=0,
                            label="middle half")
            ax.plot(x, np.median(ys, 0), color=OKABE_ITO[0], linewidth=1.6, label="median")
        _x_axis(ax, runs[0][p], np.concatenate([np.asarray(r[p].x, dtype=float) for r in runs]))
    legend_beside(ax, legend_w)
    words = {"runs": "one line per run, each with its own colour, dash and marker",
             "groups": "per group of seeds, the mean as a line and the lowest to highest run as a band",
             "summary": f"all {len(runs)} runs summarised: median, middle half and min-to-max band"}[mode]
    return layout.fig, words


def curves_drawn(dirs: list[Path], cfgs: list[Any], labels: list[str], groups: list[Group], what: str) -> Drawn:
    exp = experiments.get(cfgs[0].kind)
    runs = [exp.curves(d, c) for d, c in zip(dirs, cfgs)]
    fig, words = curves_figure(runs, labels, groups)
    titles = ", ".join(c.title for c in runs[0])
    caption = f"{titles} over training for {len(dirs)} runs labelled by what differs ({what}): {words}."
    alt = f"{len(runs[0])} line charts of {len(dirs)} runs: {words}."
    return Drawn("compare_curves", fig, caption, alt)


# ---------------------------------------------------------------------------------------------------------------------
# The grouped figure: each key metric per swept value, mean and spread across seeds


def groups_figure(rows: list[dict[str, Any]], grouped: list[dict[str, Any]], groups: list[Group],
                  metrics: list[Metric], swept: list[str]) -> Any:
    """One panel per metric: the swept value(s) along x, each run as a dot, the group mean with +/- 1 sd bars."""
    cols = min(2, len(metrics))
    nrows = -(-len(metrics) // cols)
    ticks = [", ".join(str(g.values[k]) for k in swept) or g.label for g in groups]
    wrapped = [wrap_label(t, 0.95 * 3.6 / max(len(groups), 1) + 0.5, TICK) for t in ticks]
    tick_h = max(t.count("\n") + 1 for t in wrapped) * 0.14
    xlabel = ", ".join(swept) or "runs"
    ph, pw = 2.2, 3.6
    cell_h = 0.35 + ph + 0.2 + tick_h + 0.3
    top = 0.3
    layout = InchLayout(cols * (0.85 + pw) + 0.25, top + nrows * cell_h + 0.1)
    layout.text(0.2, 0.1, "dots: each run;  bar: the mean over its seeds +/- one standard deviation", fontsize=SMALL)
    for p, m in enumerate(metrics):
        r, c = divmod(p, cols)
        ax = layout.axes(0.85 + c * (0.85 + pw), top + 0.35 + r * cell_h, pw, ph)
        for i, g in enumerate(groups):
            vals = [float(v) for v in (rows[j].get(m.key) for j in g.members)
                    if isinstance(v, (int, float)) and math.isfinite(v)]
            jitter = np.linspace(-0.12, 0.12, len(vals)) if len(vals) > 1 else np.zeros(len(vals))
            ax.plot(i + jitter, vals, linestyle="none", marker="o", markersize=3.5, color=OKABE_ITO[2],
                    label="each run" if i == 0 else "_")
            mean, sd = grouped[i][f"{m.key}_mean"], grouped[i][f"{m.key}_sd"]
            if mean is not None:
                ax.errorbar(i, mean, yerr=sd if sd is not None else None, color=OKABE_ITO[0], marker="_",
                            markersize=14, capsize=4, linewidth=1.4, label="mean +/- sd" if i == 0 else "_")
        ax.set_xticks(range(len(groups)), wrapped, fontsize=TICK)
        ax.set_xlim(-0.6, len(groups) - 0.4)
        _plain_y(ax)
        ax.set_title(m.label, fontsize=TITLE)
        ax.set_xlabel(xlabel, fontsize=LABEL)
        ax.tick_params(labelsize=TICK)
    return layout.fig


def _plain_y(ax: Any) -> None:
    """Numbers written out (no offset such as "1e-12+1"); values that hardly differ get a readable range around
    them instead of one magnified into noise."""
    lo, hi = ax.get_ylim()
    ys = np.concatenate([np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()] or [np.zeros(1)])
    ys = ys[np.isfinite(ys)]
    if ys.size and ys.max() - ys.min() < 1e-6 * max(abs(float(ys.mean())), 1e-3):
        mid, pad = float(ys.mean()), 0.05 * max(abs(float(ys.mean())), 1e-3)
        ax.set_ylim(mid - pad, mid + pad)
    ax.yaxis.set_major_locator(MaxNLocator(6))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))


def groups_drawn(rows: list[dict[str, Any]], grouped: list[dict[str, Any]], groups: list[Group], kind: str,
                 swept: list[str]) -> Drawn | None:
    metrics = [m for m in experiments.card(kind).metrics
               if any(isinstance(r.get(m.key), (int, float)) and not isinstance(r.get(m.key), bool) for r in rows)]
    if not metrics or not is_grouped(groups):
        return None
    fig = groups_figure(rows, grouped, groups, metrics, swept)
    sizes = sorted({len(g.members) for g in groups})
    per = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]} to {sizes[-1]}"
    by = ", ".join(swept) if swept else "nothing but the seed"
    caption = (f"Key results of {len(rows)} runs grouped by {by} ({len(groups)} groups of {per} runs that differ only "
               f"in their seed): each run as a dot, the group's mean with a bar of +/- one standard deviation across "
               f"its runs. " + "; ".join(m.label + ": " + m.meaning for m in metrics) + ".")
    alt = (f"{len(metrics)} charts, one per result, with {len(groups)} positions along x ({by}); at each, the runs' "
           "values as dots and their mean with an error bar.")
    return Drawn("compare_groups", fig, caption, alt)


# ---------------------------------------------------------------------------------------------------------------------
# The command


def compare(run_dirs: Sequence[str | Path], out_dir: Path) -> dict[str, Any]:
    """Write compare_*.png (with captions and alt text), compare.md, compare.csv, compare_groups.csv and compare.json
    into ``out_dir``; return the kind, what varies, the rows, the groups and the printable table."""
    dirs, cfgs, kind = load_runs(run_dirs)
    if out_dir.exists() and not out_dir.is_dir():
        raise CompareError(f"out {out_dir}: a file is in the way; give a folder")
    configs = [to_dict(c) for c in cfgs]
    labels, keys = labels_for(configs, dirs)
    what = ", ".join(keys) if keys else "nothing in their configs (different seeds or repeats)"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = run_rows(dirs, configs, labels, keys, kind)
    groups = group_runs(rows, keys)
    metric_keys = [m.key for m in experiments.card(kind).metrics]
    grouped = group_rows(rows, keys, metric_keys)
    swept = [k for k in keys if k != SEED]
    cmap, dpi = cfgs[0].output.cmap, cfgs[0].output.dpi
    sizes = {len(g.members) for g in groups}
    drawn = (filters_figures(dirs, labels, what, cmap, sizes.pop() if len(sizes) == 1 else 1)
             + [curves_drawn(dirs, cfgs, labels, groups, what)])
    extra = groups_drawn(rows, grouped, groups, kind, swept)
    save_all(drawn + ([extra] if extra else []), out_dir, dpi)
    return write_tables(rows, grouped if is_grouped(groups) else [], keys, swept, kind, out_dir)


def run_rows(dirs: list[Path], configs: list[dict], labels: list[str], keys: list[str], kind: str
             ) -> list[dict[str, Any]]:
    records = [describe_run(d) for d in dirs]
    metric_keys = [m.key for m in experiments.card(kind).metrics]
    rows = []
    for rec, label, cfg in zip(records, labels, configs):
        flat = flatten(cfg)
        rows.append({"run": rec["run"], "label": label, "status": rec["status"],
                     **{k: flat.get(k) for k in keys}, **{k: rec["metrics"].get(k) for k in metric_keys}})
    return rows


def _fmt(v: Any, metric: Metric | None = None) -> str:
    if v is None:
        return ""
    if metric is not None:
        return metric.format(v)
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _md(header: list[str], body: list[list[str]]) -> str:
    """A Markdown table; every cell escaped for Markdown (core.escape.for_markdown: one line, HTML escaped, and a "|"
    inside a cell, as in |cos(filter, image)|, as "\\|")."""
    def row(cells: list[str]) -> str:
        return "| " + " | ".join(for_markdown(c) for c in cells) + " |"

    return "\n".join([row(header), "|" + "|".join("---" for _ in header) + "|", *(row(r) for r in body)])


def grouped_table(grouped: list[dict[str, Any]], swept: list[str], metrics: tuple[Metric, ...]) -> str:
    """Markdown: one row per group, each metric as mean +/- sd (min to max)."""
    body = []
    for g in grouped:
        cells = [_fmt(g.get(k)) for k in swept] or [g["group"]]
        cells.append(str(g["runs"]))
        for m in metrics:
            mean, sd, lo, hi = (g[f"{m.key}_{s}"] for s in ("mean", "sd", "min", "max"))
            cells.append("" if mean is None else f"{m.format(mean)} +/- {_fmt(sd, m) or '-'} "
                         f"({m.format(lo)} to {m.format(hi)})")
        body.append(cells)
    return _md([*(swept or ["group"]), "runs", *(f"{m.label}: mean +/- sd (min to max)" for m in metrics)], body)


def write_tables(rows: list[dict[str, Any]], grouped: list[dict[str, Any]], keys: list[str], swept: list[str],
                 kind: str, out_dir: Path) -> dict[str, Any]:
    """compare.md, compare.csv, compare_groups.csv (when runs repeat over seeds) and compare.json."""
    metrics = experiments.card(kind).metrics
    header = ["run", "status", *keys, *(m.label for m in metrics)]
    body = [[r["run"], r["status"], *(_fmt(r.get(k)) for k in keys), *(_fmt(r.get(m.key), m) for m in metrics)]
            for r in rows]
    table = _md(header, body)
    if grouped:
        table = (f"{grouped_table(grouped, swept, metrics)}\n\n"
                 f"Each run:\n\n{table}")
    atomic_write_text(out_dir / "compare.md", table + "\n")
    metric_keys = [m.key for m in metrics]
    atomic_write_text(out_dir / "compare.csv", _csv(rows, ["run", "label", "status", *keys, *metric_keys]))
    if grouped:
        atomic_write_text(out_dir / "compare_groups.csv", _csv(grouped, list(grouped[0])))
    atomic_write_text(out_dir / "compare.json", json.dumps({"kind": kind, "varying": keys, "swept": swept,
                                                            "runs": rows, "groups": grouped}, indent=2))
    return {"kind": kind, "varying": keys, "labels": [r["label"] for r in rows], "rows": rows, "groups": grouped,
            "table": table}


def _csv(rows: list[dict[str, Any]], fields: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
