"""How far each filter moved from its initial value: relative change and cosine with the start, per snapshot.

For a stack of snapshots W_0, ..., W_S of one conv layer (any shape (S, N, ...)), per filter n and snapshot s:
``relative_change = ||W_s - W_0|| / ||W_0||`` and ``cosine = <W_s, W_0> / (||W_s|| ||W_0||)``. A filter that only
grew or shrank keeps cosine 1 with a relative change above 0; a filter that turned into something new has a cosine
well below 1. Also the histogram of every weight of the layer at every snapshot, on one set of bins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Change:
    """Change of one layer's filters over its snapshots; arrays are (S, N)."""

    layer: str
    steps: np.ndarray  # (S,)
    initial: np.ndarray  # (N, ...) first snapshot
    final: np.ndarray  # (N, ...) last snapshot
    relative: np.ndarray  # (S, N) ||W_s - W_0|| / ||W_0||
    cosine: np.ndarray  # (S, N) cos(W_s, W_0)

    @property
    def filters(self) -> int:
        return self.relative.shape[1]


def filter_change(layer: str, snapshots: Any, steps: Sequence[int]) -> Change:
    """``snapshots``: (S, N, ...) array or tensor of one layer's weights at ``steps`` (the first is the start)."""
    w = np.asarray(snapshots, dtype=np.float64)
    s, n = w.shape[:2]
    flat = w.reshape(s, n, -1)
    w0 = flat[0]
    n0 = np.linalg.norm(w0, axis=1)  # (N,)
    ns = np.linalg.norm(flat, axis=2)  # (S, N)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.linalg.norm(flat - w0, axis=2) / n0
        cos = (flat * w0).sum(axis=2) / (ns * n0)
    return Change(layer, np.asarray(steps), w[0], w[-1], rel, cos)


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else round(float(x), 6)


def summary(ch: Change) -> dict[str, Any]:
    """For summary.json: each filter's final relative change and cosine, and the layer's median and range."""
    rel, cos = ch.relative[-1], ch.cosine[-1]
    return {
        "layer": ch.layer, "step": int(ch.steps[-1]), "filters": ch.filters,
        "relative_change": [_num(v) for v in rel], "cosine_to_initial": [_num(v) for v in cos],
        "relative_change_median": _num(np.median(rel)), "relative_change_min": _num(rel.min()),
        "relative_change_max": _num(rel.max()), "cosine_to_initial_median": _num(np.median(cos)),
    }


def metrics(ch: Change, j: int) -> dict[str, Any]:
    """For the metrics line of snapshot ``j``: {"LAYER_relative_change": [...], "LAYER_cosine_to_initial": [...]}."""
    return {f"{ch.layer}_relative_change": [_num(v) for v in ch.relative[j]],
            f"{ch.layer}_cosine_to_initial": [_num(v) for v in ch.cosine[j]]}


def weight_histograms(snapshots: Any, bins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(edges (bins + 1,), counts (S, bins)) of every weight at every snapshot, on bins symmetric about zero.

    By default about sqrt(weights) bins, odd so that zero is a bin's centre, between 15 and 61."""
    w = np.asarray(snapshots, dtype=np.float64)
    flat = w.reshape(w.shape[0], -1)
    if bins is None:
        bins = min(61, max(15, int(np.sqrt(flat.shape[1])))) | 1
    lim = float(np.abs(flat).max()) or 1.0
    edges = np.linspace(-lim, lim, bins + 1)
    counts = np.stack([np.histogram(row, edges)[0] for row in flat])
    return edges, counts


def _filters_list(idx: np.ndarray) -> str:
    return ", ".join(str(int(i) + 1) for i in idx)


def caption_change(ch: Change, cmap: str, vlim: float, clim: float) -> tuple[str, str]:
    from ..viz.style import MAX_FILTERS, capped, grid_shape  # noqa: PLC0415 - the drawing style, for captions only

    rel, cos = ch.relative[-1], ch.cosine[-1]
    most, least = np.argsort(rel)[::-1][:3], np.argsort(rel)[:3]
    k = "x".join(str(v) for v in ch.initial.shape[-2:])
    shown, note = capped(ch.filters, MAX_FILTERS)
    rows, cols = grid_shape(shown)
    summed = ch.initial.ndim == 4 and ch.initial.shape[1] > 1
    per_in = (f" Each filter spans {ch.initial.shape[1]} input channels; each tile is their sum (one {k} tile per "
              "filter), so the scale is that of the sums; the numbers below use every weight." if summed else "")
    caption = (f"{ch.layer}'s {ch.filters} filters ({k}) at the start and after {int(ch.steps[-1])} steps, on the "
               f"{cmap} map centred at zero with the run's one weight scale, -{vlim:.3g} to +{vlim:.3g}, and the "
               f"change between them on its own scale, -{clim:.3g} to +{clim:.3g} (third panel); each panel a "
               f"{rows}x{cols} grid, filters numbered from 1.{per_in}{note} Relative change "
               f"||W - W0|| / ||W0||: median {np.median(rel):.2f}, from {rel.min():.2f} (filter "
               f"{int(least[0]) + 1}) to {rel.max():.2f} (filter {int(most[0]) + 1}); cosine with the start: median "
               f"{np.median(cos):.2f}, lowest {cos.min():.2f}. The most changed filters are "
               f"{_filters_list(most)}.")
    alt = (f"Three {rows} by {cols} grids of {shown} small squares in the map's two colours: initial filters, "
           f"trained filters and their difference, a colour bar under each scale; the median filter moved by "
           f"{np.median(rel):.0%} of its initial size.")
    return caption, alt


def caption_histogram(layer: str, edges: np.ndarray, counts: np.ndarray, steps: np.ndarray,
                      snapshots: Any) -> tuple[str, str]:
    w = np.asarray(snapshots, dtype=np.float64).reshape(len(steps), -1)
    s0, s1 = w[0].std(), w[-1].std()
    lim0 = np.abs(w[0]).max()
    outside = float((np.abs(w[-1]) > lim0).mean())
    caption = (f"The distribution of all {w.shape[1]} {layer} weights at each of the {len(steps)} snapshots "
               f"(columns, steps {int(steps[0])} to {int(steps[-1])}): shade = number of weights in each bin "
               f"(log scale, cividis map). Standard deviation {s0:.3g} at the start and {s1:.3g} at the end; "
               f"{100 * outside:.1f}% of the final weights lie outside the initial range +/-{lim0:.3g}.")
    alt = (f"A heat map with training step across and weight value up, one column per snapshot; the band of "
           f"weights {'widens' if s1 > 1.05 * s0 else 'narrows' if s1 < 0.95 * s0 else 'keeps its width'} "
           f"from a standard deviation of {s0:.3g} to {s1:.3g}.")
    return caption, alt
