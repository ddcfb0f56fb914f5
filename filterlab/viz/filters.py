"""Figures of filters for every kind: states of the same filters (initial, trained, change) side by side.

Up to 8 filters are drawn as strips (one row per state, filters numbered along the top, as the article shows its 5);
more are drawn as square-ish numbered grids, one per state (16 -> 4x4, 32 -> 4x8). At most ``MAX_FILTERS`` are drawn;
the caller says so in the caption (``style.capped``). Signed weights share one zero-centred scale and a colour bar.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib import patheffects
from matplotlib.patches import Rectangle

from .style import (
    COLORBAR_MIN_IN,
    LABEL,
    TICK,
    WINDOW,
    InchLayout,
    cmap_of,
    colorbar,
    colorbar_space,
    grid_geometry,
    hide_axes,
    mosaic,
    numbered_grid,
    text_width_in,
)

STRIP_MAX = 8  # up to this many filters, one strip per state


@dataclass(frozen=True)
class Reference:
    """An image shown beside the filters (the digit they were trained on), grayscale; ``outlines``: squares (top,
    left, size) outlined on it, in the accent of a window (the image patch each filter matches best)."""

    image: np.ndarray
    title: str
    outlines: Sequence[tuple[int, int, int]] = ()


@dataclass(frozen=True)
class Notes:
    """Numbers under each filter of a strip: ``label`` names the lines at the left, ``notes`` one per filter."""

    label: str
    notes: Sequence[str]


def binarised(stack: np.ndarray) -> np.ndarray:
    """Each panel thresholded at its own mean: 1 above, 0 at or below (the article's pictures)."""
    return (stack > stack.mean(axis=(-2, -1), keepdims=True)).astype(float)


def _reference(layout: InchLayout, ref: Reference | None, top: float, size: float) -> float:
    """Draw the reference image at the left; return the inches it takes (0 without one)."""
    if ref is None:
        return 0.0
    ax = layout.axes(0.2, top, size, size)
    ax.imshow(ref.image, cmap="gray", interpolation="nearest")
    ax.set_title(ref.title, fontsize=LABEL)
    hide_axes(ax)
    stroke = [patheffects.withStroke(linewidth=3.2, foreground="black")]
    for r, c, k in ref.outlines:
        ax.add_patch(Rectangle((c - 0.5, r - 0.5), k, k, fill=False, edgecolor=WINDOW, linewidth=1.6,
                               path_effects=stroke, gid="best-patch"))
    return 0.2 + size + 0.35


def strips_figure(states: Sequence[tuple[str, np.ndarray]], ref: Reference | None, cmap: str | None, vlim: float,
                  bar_label: str | None, under: Notes | None = None) -> InchLayout:
    """One row per state (label, (N, k, k)), filters numbered 1..N along the top; a colour bar unless
    ``bar_label`` is None (binarised pictures); ``under``: a (multi-line) note per filter below its last tile."""
    n, k = states[0][1].shape[0], states[0][1].shape[-1]
    tile = 0.95 if k > 9 else 0.5
    if bar_label is not None:  # the colour bar is no taller than the strips it serves
        tile = max(tile, COLORBAR_MIN_IN / len(states))
    gap = max(1, round(0.08 / (tile / k)))
    stack = np.stack([s for _, s in states])  # (R, N, k, k)
    tiles = mosaic(stack, gap)
    px = tile / k
    mos_w, mos_h = tiles.shape[1] * px, tiles.shape[0] * px
    label_w = max([text_width_in(lbl, LABEL) for lbl, _ in states]
                  + [text_width_in(x, TICK) for x in (under.label.split("\n") if under else [])]) + 0.15
    ref_size = 1.45 if ref is not None else 0.0
    top = 0.62
    bar = colorbar_space(-vlim, vlim) if bar_label is not None else 0.25
    body_h = max(mos_h, ref_size + 0.25, COLORBAR_MIN_IN if bar_label is not None else 0.0)
    width = (0.2 + ref_size + 0.35 if ref else 0.2) + label_w + mos_w + bar
    lines = max((u.count("\n") + 1 for u in under.notes), default=0) if under else 0
    under_h = lines * TICK * 1.3 / 72 + 0.1 if lines else 0.0
    layout = InchLayout(width, top + body_h + under_h + 0.2)
    left = _reference(layout, ref, top, ref_size) or 0.2
    left += label_w
    ax = layout.axes(left, top + (body_h - mos_h) / 2, mos_w, mos_h)
    im = ax.imshow(tiles, cmap=cmap_of(cmap), vmin=-vlim if bar_label else 0, vmax=vlim if bar_label else 1,
                   interpolation="nearest")
    label_rows(ax, n, k, gap, [i * (k + gap) + (k - 1) / 2 for i in range(len(states))],
               [lbl for lbl, _ in states], LABEL)
    if under:
        y = top + (body_h + mos_h) / 2 + 0.08
        layout.text(left - 0.1, y, under.label, ha="right", fontsize=TICK, linespacing=1.15)
        for j, note in enumerate(under.notes):
            layout.text(left + (j * (k + gap) + k / 2) * px, y, note, ha="center", fontsize=TICK, linespacing=1.15)
    if bar_label is not None:
        length = max(mos_h, COLORBAR_MIN_IN)
        colorbar(layout, im, left + mos_w + 0.25, top + (body_h - length) / 2, length, bar_label)
    return layout


def grids_figure(states: Sequence[tuple[str, np.ndarray]], ref: Reference | None, cmap: str | None, vlim: float,
                 bar_label: str | None, per_row: int = 2) -> InchLayout:
    """One numbered square-ish grid per state, ``per_row`` grids to a row; one colour bar for all."""
    n, k = states[0][1].shape[0], states[0][1].shape[-1]
    geo = grid_geometry(n, k, 0.45 if k <= 9 else 0.9)
    if geo.width > 4.2:
        geo = grid_geometry(n, k, geo.tile_in * 4.2 / geo.width)
    cols = min(per_row, len(states))
    rows = -(-len(states) // cols)
    title_h, sep = 0.3, 0.35
    ref_size = 1.45 if ref is not None else 0.0
    left0 = (0.2 + ref_size + 0.35) if ref else 0.25
    grid_w = max(geo.width, max(text_width_in(t, LABEL) for t, _ in states))
    body_h = rows * (title_h + geo.height) + (rows - 1) * sep
    bar = colorbar_space(-vlim, vlim) if bar_label is not None else 0.25
    width = left0 + cols * grid_w + (cols - 1) * sep + bar
    top = 0.15
    height = top + max(body_h, ref_size + 0.3, 1.5 if bar_label else 0.0) + 0.15
    layout = InchLayout(width, height)
    _reference(layout, ref, top + 0.25, ref_size)
    im = None
    for i, (title, stack) in enumerate(states):
        r, c = divmod(i, cols)
        x = left0 + c * (grid_w + sep) + (grid_w - geo.width) / 2
        y = top + r * (title_h + geo.height + sep)
        ax = layout.axes(x, y + title_h, geo.width, geo.height)
        im = numbered_grid(ax, stack, geo, cmap=cmap_of(cmap), vmin=-vlim if bar_label else 0,
                           vmax=vlim if bar_label else 1)
        ax.set_title(title, fontsize=LABEL, pad=3)
    if bar_label is not None and im is not None:
        colorbar(layout, im, width - bar + 0.25, top + title_h, body_h - title_h, bar_label)
    return layout


def filters_figure(states: Sequence[tuple[str, np.ndarray]], ref: Reference | None, cmap: str | None, vlim: float,
                   bar_label: str | None, under: Notes | None = None) -> InchLayout:
    """Strips for up to 8 filters (with ``under``, a note below each), numbered grids beyond (no notes: the caller
    says the numbers in the caption)."""
    if states[0][1].shape[0] <= STRIP_MAX:
        return strips_figure(states, ref, cmap, vlim, bar_label, under)
    return grids_figure(states, ref, cmap, vlim, bar_label)


def label_rows(ax: Any, n: int, k: int, gap: float, row_y: Sequence[float], row_labels: Sequence[str],
               row_font: float) -> None:
    """A strip mosaic's axes: filters numbered from 1 along the top, one label per row, no ticks or frame."""
    ax.set_xticks([j * (k + gap) + (k - 1) / 2 for j in range(n)], [str(j + 1) for j in range(n)], fontsize=TICK)
    ax.set_yticks(list(row_y), list(row_labels), fontsize=row_font)
    ax.tick_params(length=0)
    ax.xaxis.set_ticks_position("top")
    ax.set_xlabel("filter", fontsize=LABEL)
    ax.xaxis.set_label_position("top")
    for spine in ax.spines.values():
        spine.set_visible(False)
