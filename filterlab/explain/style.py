"""Drawing helpers shared by the explainer's figures: grids of cells with their numbers, outlines, the padding ring.

Grey for images, a colour-blind-safe diverging map centred at zero for signed values, outlines in the accent
colours of ``filterlab.viz.style`` (none near a diverging map's ends) with a dark stroke so they stay visible on any
cell colour. Cells are drawn at integer data coordinates: array element [i, j] sits at x = j, y = i, so input
position x[r, c] (negative or past the edge in the padding) sits at (c, r) in every figure.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import matplotlib
import numpy as np
from matplotlib import patheffects
from matplotlib.patches import Circle, Rectangle

from ..viz.style import GAP_GREY, SMALL, TICK, text_width_in
from .arithmetic import is_pad
from .kernels import fmt_number

PAD_FACE = "#f2f2f2"  # padding cells: near white, hatched, labelled "pad"
MAX_NUMBERED = 12  # inputs and maps up to this side get their numbers in the cells


def colormap(name: str) -> Any:
    return matplotlib.colormaps[name].with_extremes(bad=GAP_GREY)


def _text_colour(rgba: tuple[float, ...]) -> str:
    lum = 0.2126 * rgba[0] + 0.7152 * rgba[1] + 0.0722 * rgba[2]
    return "black" if lum > 0.5 else "white"


def grid_panel(ax: Any, values: np.ndarray, cmap: str, vmin: float, vmax: float, *, numbers: bool,
               origin: int = 0, shape: tuple[int, int] | None = None, fontsize: float = TICK, gid: str = "") -> Any:
    """Draw ``values`` as cells; ``origin`` is the coordinate of its first row and column (-P for a padded input).

    With ``shape`` (the unpadded input's H, W), cells outside it are drawn as padding: hatched, labelled "pad".
    Every number drawn is a Text artist with gid "cell" at the cell's centre, its string fmt_number(value).
    """
    h, w = values.shape
    extent = (origin - 0.5, origin + w - 0.5, origin + h - 0.5, origin - 0.5)
    im = ax.imshow(values, cmap=colormap(cmap), vmin=vmin, vmax=vmax, interpolation="nearest", extent=extent)
    ax.set_gid(gid)
    norm = im.norm
    for (i, j), v in np.ndenumerate(values):
        r, c = i + origin, j + origin
        if shape is not None and is_pad(r, c, shape):
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, facecolor=PAD_FACE, edgecolor="0.6", hatch="///",
                                   linewidth=0.4, gid="pad"))
            if numbers:
                ax.text(c, r, "pad", ha="center", va="center", fontsize=SMALL, color="0.35", gid="pad")
            continue
        if numbers:
            ax.text(c, r, fmt_number(v), ha="center", va="center", fontsize=fontsize, gid="cell",
                    color=_text_colour(im.cmap(norm(v))))
    if numbers or h <= 2 * MAX_NUMBERED:
        _cell_lines(ax, origin, h, w)
    return im


def _widest_in(texts: list[Any], size: float | None = None) -> float:
    return max(text_width_in(t.get_text(), size or float(t.get_fontsize())) for t in texts)


def fit_cell_numbers(fig: Any) -> None:
    """Once the figure is laid out: in each panel whose cell numbers are wider than their cells, the numbers at the
    smallest size that still reads (SMALL); where even that is too wide, the numbers are taken off and the panel's
    title says so (the printed output has them), instead of numbers written over each other."""
    fig.draw_without_rendering()
    fw, _ = fig.get_size_inches()
    for ax in fig.axes:
        cells = [t for t in ax.texts if t.get_gid() in ("cell", "pad")]
        if not cells:
            continue
        x0, x1 = ax.get_xlim()
        cell_in = ax.get_position().width * fw / abs(x1 - x0)
        if _widest_in(cells) <= 0.95 * cell_in:
            continue
        if _widest_in(cells, SMALL) <= 0.95 * cell_in:
            for t in cells:
                t.set_fontsize(SMALL)
            continue
        for t in cells:
            t.remove()
        ax.set_title(ax.get_title() + "\n(too many digits for the cells: see the printed values)",
                     fontsize=ax.title.get_fontsize())


def _cell_lines(ax: Any, origin: int, h: int, w: int) -> None:
    for i in range(h + 1):
        ax.axhline(origin + i - 0.5, color="0.55", linewidth=0.4)
    for j in range(w + 1):
        ax.axvline(origin + j - 0.5, color="0.55", linewidth=0.4)


def index_ticks(ax: Any, origin: int, h: int, w: int, fontsize: float = SMALL, col_origin: int | None = None) -> None:
    """Row and column indices on the axes (every index when small, every fourth from 0 otherwise, plus the first
    padding index when it is not next to 0); ``col_origin`` where the columns start elsewhere than the rows."""
    step = 1 if max(h, w) <= 16 else 4

    def ticks(first: int, n: int) -> list[int]:
        if step == 1:
            return list(range(first, first + n))
        # the input's 0, 4, 8, ...; the first padding index too unless it sits next to 0 (its label would run into
        # 0's: "-1" and "0" read as "-10")
        return ([first] if first <= -2 else []) + list(range(0, first + n, step))

    ax.set_xticks(ticks(origin if col_origin is None else col_origin, w))
    ax.set_yticks(ticks(origin, h))
    ax.tick_params(labelsize=fontsize, length=2, pad=1)
    ax.xaxis.set_ticks_position("top")


def outline_cells(ax: Any, cells: Iterable[tuple[int, int]], colour: str, *, gid: str, dashed: bool = False,
                  width: float = 2.2, zorder: float = 4) -> None:
    """Outline each cell (r, c) on its own: right for dilated windows, whose cells are not contiguous."""
    stroke = [patheffects.withStroke(linewidth=width + 1.6, foreground="black")]
    for r, c in cells:
        ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor=colour, linewidth=width,
                               linestyle="--" if dashed else "-", path_effects=stroke, gid=gid, zorder=zorder))


def mark_cell(ax: Any, r: int, c: int, colour: str, *, gid: str) -> None:
    """A ring inside cell (r, c): the winner of a max-pooling window."""
    stroke = [patheffects.withStroke(linewidth=4, foreground="black")]
    ax.add_patch(Circle((c, r), 0.3, fill=False, edgecolor=colour, linewidth=2.2, path_effects=stroke, gid=gid,
                        zorder=6))


def outline_box(ax: Any, cells: list[tuple[int, int]], colour: str, *, gid: str, dashed: bool = False,
                width: float = 2.6) -> None:
    """One rectangle around the bounding box of ``cells``."""
    rows, cols = [r for r, _ in cells], [c for _, c in cells]
    stroke = [patheffects.withStroke(linewidth=width + 1.6, foreground="black")]
    ax.add_patch(Rectangle((min(cols) - 0.5, min(rows) - 0.5), max(cols) - min(cols) + 1, max(rows) - min(rows) + 1,
                           fill=False, edgecolor=colour, linewidth=width, linestyle="--" if dashed else "-",
                           path_effects=stroke, gid=gid, zorder=5))
