"""One figure style for the whole package: sizes, fonts, colour bars, filter grids, axes and run styles.

Accessibility rules kept by every figure: images in grayscale; signed weights on a colour-blind-safe diverging map
centred at zero whose scale is stated in the caption and on a colour bar of at least ``COLORBAR_MIN_IN`` inches;
line plots in the Okabe-Ito palette with distinct line styles and markers, so no line is told apart by colour alone.
Filters are numbered from 1 everywhere. Figures are laid out in inches (``InchLayout``), not by constrained layout
(0.2 s a figure), and ``filterlab.viz.layout`` checks in the tests that no text overlaps another or leaves the canvas.
The functions take plain NumPy arrays and use ``matplotlib.figure.Figure`` directly (no pyplot, no global state).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextPath
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator

from ..core.rundir import atomic_savefig, atomic_write_json

# Font sizes in points: one scale for every figure.
TITLE, LABEL, TICK, SMALL = 10.0, 9.0, 8.0, 7.0
COLORBAR_MIN_IN = 1.4  # a colour bar shorter than this squashes its ticks into each other
COLORBAR_W_IN = 0.14
MAX_FILTERS = 64  # filters drawn in one figure at most (model.filters may be 4096); captions say when capped
MAX_STYLES = 20  # runs told apart by colour, dash and marker; beyond it, figures summarise

# Okabe & Ito (2008), ordered for contrast on white; yellow last (weak on white: lines use the first seven).
OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442")
LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


@dataclass(frozen=True)
class FigureInfo:
    name: str
    path: Path
    caption: str
    alt: str


@dataclass
class Drawn:
    """One figure before it is saved: the Figure, its file name, and the caption and alt text computed beside its
    data (never inside the drawing code)."""

    name: str
    fig: Any
    caption: str
    alt: str


def new_figure(width: float, height: float, constrained: bool = False) -> Figure:
    """A bare Figure; constrained layout only where text sizes really vary (it costs ~0.2 s per figure)."""
    return Figure(figsize=(width, height), layout="constrained" if constrained else None)


def save(fig: Any, out_dir: Path, name: str, caption: str, alt: str, dpi: int) -> FigureInfo:
    """Write NAME.png (caption and alt text in its text chunks) and NAME.json beside it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.png"
    meta = {"Title": name, "Description": alt, "Comment": caption, "Software": "filterlab"}
    atomic_savefig(fig, path, dpi=dpi, metadata=meta)
    atomic_write_json(out_dir / f"{name}.json", {"figure": path.name, "caption": caption, "alt": alt})
    return FigureInfo(name, path, caption, alt)


def save_all(drawn: list[Drawn], out_dir: Path, dpi: int) -> list[FigureInfo]:
    return [save(d.fig, out_dir, d.name, d.caption, d.alt, dpi) for d in drawn]


class InchLayout:
    """A figure whose axes are placed in inches from its top-left corner, so margins are planned, not guessed."""

    def __init__(self, width: float, height: float):
        self.width, self.height = width, height
        self.fig = new_figure(width, height)

    def rect(self, left: float, top: float, width: float, height: float) -> tuple[float, float, float, float]:
        return (left / self.width, 1 - (top + height) / self.height, width / self.width, height / self.height)

    def axes(self, left: float, top: float, width: float, height: float) -> Axes:
        return self.fig.add_axes(self.rect(left, top, width, height))

    def text(self, left: float, top: float, s: str, **kw: Any) -> Any:
        """Figure text with its top-left corner (unless ``ha``/``va`` say otherwise) at inches from the top-left."""
        kw.setdefault("va", "top")
        return self.fig.text(left / self.width, 1 - top / self.height, s, **kw)


def text_width_in(s: str, size: float = TICK) -> float:
    """The width of a one-line label in inches at ``size`` points, measured from the font's glyph outlines."""
    if not s:
        return 0.0
    return float(TextPath((0, 0), s, size=size, prop=FontProperties(family="DejaVu Sans")).get_extents().width) / 72


def wrap_label(s: str, width_in: float, size: float = SMALL) -> str:
    """Break a label between words so that each line fits ``width_in`` inches (a word longer than that is cut)."""
    lines: list[str] = []
    for word in s.split(" "):
        if lines and text_width_in(lines[-1] + " " + word, size) <= width_in:
            lines[-1] += " " + word
            continue
        while text_width_in(word, size) > width_in and len(word) > 4:
            cut = max(2, int(len(word) * width_in / text_width_in(word, size)) - 1)
            lines.append(word[:cut])
            word = word[cut:]
        lines.append(word)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------------
# Colours and scales


GAP_GREY = "0.72"  # between mosaic panels: neither black, white, nor the diverging map's zero


def cmap_of(name: str | None) -> Any:
    return matplotlib.colormaps["gray" if name is None else name].with_extremes(bad=GAP_GREY)


def sym_limit(*arrays: np.ndarray) -> float:
    """Half-width of a symmetric colour scale that holds every value."""
    sizes = [float(np.nanmax(np.abs(a))) for a in arrays if a.size and np.isfinite(a).any()]
    m = max(sizes, default=0.0)
    return m if m > 0 else 1.0


def _bar_tick(v: float, _: Any = None) -> str:
    return "0" if v == 0 else f"{v:.3g}"


def colorbar(layout: InchLayout, im: Any, left: float, top: float, length: float, label: str) -> Any:
    """A vertical colour bar at inches (left, top), at least ``COLORBAR_MIN_IN`` long, with at most 5 ticks written
    in full (no offset text above the bar)."""
    cax = layout.axes(left, top, COLORBAR_W_IN, max(length, COLORBAR_MIN_IN))
    bar = layout.fig.colorbar(im, cax=cax)
    bar.locator = MaxNLocator(5, symmetric=im.norm.vmin == -im.norm.vmax)
    bar.formatter = FuncFormatter(_bar_tick)
    bar.update_ticks()
    bar.ax.tick_params(labelsize=TICK)
    bar.set_label(label, fontsize=LABEL)
    return bar


def colorbar_space(lo: float, hi: float) -> float:
    """Inches a colour bar for values lo..hi takes to the right of the content: gap, bar, tick labels, label."""
    ticks = MaxNLocator(5, symmetric=lo == -hi).tick_values(lo, hi)
    widest = max(text_width_in(_bar_tick(float(t)), TICK) for t in ticks)
    return 0.25 + COLORBAR_W_IN + 0.1 + widest + 0.12 + LABEL / 72 + 0.15



# ---------------------------------------------------------------------------------------------------------------------
# Grids of filters


def grid_shape(n: int) -> tuple[int, int]:
    """Rows and columns for n panels: square-ish, few empty cells, at most twice as wide as tall (16 -> 4x4,
    32 -> 4x8, 5 -> 2x3); up to 3 panels in one row."""
    if n <= 3:
        return 1, max(n, 1)
    best: tuple[int, int, int, int] | None = None
    for cols in range(math.ceil(math.sqrt(n)), n + 1):
        rows = math.ceil(n / cols)
        if cols > 2 * rows:
            break
        key = (rows * cols - n, cols - rows, rows, cols)
        best = key if best is None or key < best else best
    assert best is not None
    return best[2], best[3]


def capped(n: int, cap: int = MAX_FILTERS) -> tuple[int, str]:
    """How many of n filters to draw, and the caption's words for it ("" when all are drawn)."""
    if n <= cap:
        return n, ""
    return cap, f" Only the first {cap} of the {n} filters are drawn."


def mosaic(stack: np.ndarray, gap: int, gap_y: int | None = None, lead: int = 0) -> np.ndarray:
    """(R, N, h, w) panels -> one image with NaN gaps (``gap`` between columns, ``gap_y`` between rows, ``lead``
    rows above the first row, where numbers can go).

    One imshow of a mosaic draws in milliseconds where R*N separate axes take a second.
    """
    r, n, h, w = stack.shape
    gy = gap if gap_y is None else gap_y
    out = np.full((lead + r * h + (r - 1) * gy, n * w + (n - 1) * gap), np.nan)
    for i in range(r):
        for j in range(n):
            y = lead + i * (h + gy)
            out[y:y + h, j * (w + gap):j * (w + gap) + w] = stack[i, j]
    return out


def grid(stack: np.ndarray, cols: int) -> np.ndarray:
    """(N, h, w) -> (rows, cols, h, w), padding the last row with NaN panels."""
    n, h, w = stack.shape
    rows = -(-n // cols)
    out = np.full((rows * cols, h, w), np.nan)
    out[:n] = stack
    return out.reshape(rows, cols, h, w)


NUMBER_IN = 0.13  # the height of the band above a tile that holds its number


@dataclass(frozen=True)
class GridGeometry:
    """A numbered grid of n k x k tiles: its rows, columns, gaps (in kernel pixels) and size in inches."""

    n: int
    k: int
    rows: int
    cols: int
    gap: int
    band: int  # kernel pixels above each tile row, for the numbers
    tile_in: float

    @property
    def px_in(self) -> float:
        return self.tile_in / self.k

    @property
    def width(self) -> float:
        return self.px_in * (self.cols * self.k + (self.cols - 1) * self.gap)

    @property
    def height(self) -> float:
        return self.px_in * self.rows * (self.k + self.band)


def grid_geometry(n: int, k: int, tile_in: float, cols: int | None = None) -> GridGeometry:
    rows, c = grid_shape(n) if cols is None else (-(-n // cols), cols)
    px = tile_in / k
    gap = max(1, round(0.06 / px))
    band = max(1, math.ceil(NUMBER_IN / px))
    return GridGeometry(n, k, rows, c, gap, band, tile_in)


def numbered_grid(ax: Axes, stack: np.ndarray, geo: GridGeometry, first: int = 1, **imshow: Any) -> Any:
    """Draw (N, k, k) tiles as a grid with each tile's number (from ``first``) in the band above it."""
    tiles = mosaic(grid(stack, geo.cols), geo.gap, geo.band, lead=geo.band)
    im = ax.imshow(tiles, interpolation="nearest", **imshow)
    hide_axes(ax)
    for spine in ax.spines.values():
        spine.set_visible(False)
    size = min(SMALL, max(5.0, geo.tile_in * 72 * 0.32))
    for i in range(stack.shape[0]):
        r, c = divmod(i, geo.cols)
        x = c * (geo.k + geo.gap) + (geo.k - 1) / 2
        y = r * (geo.k + geo.band) + (geo.band - 1) / 2
        ax.text(x, y, str(first + i), ha="center", va="center", fontsize=size, color="0.15")
    return im


def hide_axes(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def panel(ax: Any, img: np.ndarray, title: str, **kw: Any) -> Any:
    im = ax.imshow(img, interpolation="nearest", **kw)
    ax.set_title(title, fontsize=LABEL)
    hide_axes(ax)
    return im


def mosaic_axes(fig: Any, rect: tuple, tiles: np.ndarray, title: str, **kw: Any) -> Any:
    ax = fig.add_axes(rect)
    im = ax.imshow(tiles, interpolation="nearest", **kw)
    ax.set_title(title, fontsize=LABEL)
    hide_axes(ax)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return im


# ---------------------------------------------------------------------------------------------------------------------
# Axes of line charts


def step_axis(ax: Any, last_step: float) -> None:
    """Training steps from 0: integer ticks on a linear axis; a symmetric-log axis for long runs (over 200 steps),
    so the fast first steps stay visible."""
    last = max(float(last_step), 1.0)
    if last > 200:
        ax.set_xscale("symlog", linthresh=10)
        ax.xaxis.set_minor_locator(NullLocator())  # symlog's many minor ticks cost a third of the drawing time
        ax.set_xlim(0, last * 1.15)  # room for the markers at the last step
        ax.set_xlabel("training step (linear to 10, log beyond)", fontsize=LABEL)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(6, integer=True))
        ax.set_xlim(0, last * 1.04)  # room for the markers at the last step
        ax.set_xlabel("training step", fontsize=LABEL)
    ax.tick_params(labelsize=TICK)


def _plain(v: float) -> str:
    return f"{v:.3g}"


def log_y(ax: Any) -> None:
    """A log y axis with plain numbers (0.5, not 5x10^-1); minor ticks 2 and 5 labelled when it spans few decades.
    Call it after plotting: the span is read from the data limits."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _plain(v)))
    lo, hi = ax.get_ylim()
    few = hi / max(lo, 1e-300) < 150

    def minor(v: float, _: Any) -> str:
        lead = round(v / 10 ** np.floor(np.log10(v))) if v > 0 else 0
        return _plain(v) if few and lead in (2, 5) else ""

    ax.yaxis.set_minor_formatter(FuncFormatter(minor))
    ax.tick_params(axis="y", which="both", labelsize=TICK)


def epoch_axis(ax: Any, epochs: int) -> None:
    """Epochs 1..n with integer ticks; a one-epoch axis is a single labelled position, not a stretch of decimals."""
    ax.xaxis.set_major_locator(MaxNLocator(8, integer=True, min_n_ticks=1))
    ax.set_xlim(0.5, max(epochs, 1) + 0.5)
    ax.set_xlabel("epoch", fontsize=LABEL)
    ax.tick_params(labelsize=TICK)


def run_style(i: int) -> dict[str, Any]:
    """Colour, dash and marker of the i-th of up to MAX_STYLES lines: no two of them share colour and dash."""
    return {"color": OKABE_ITO[i % 7], "linestyle": LINESTYLES[(i // 7) % 4], "marker": MARKERS[i % 10]}


def legend_beside(ax: Any, width_in: float, title: str | None = None, **kw: Any) -> Any:
    """A legend to the right of the axes (never over the data); ``width_in`` is the room left for it."""
    handles, labels = ax.get_legend_handles_labels()
    wrapped = [wrap_label(lbl, max(width_in - 0.55, 0.8), SMALL) for lbl in labels]
    return ax.legend(handles, wrapped, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                     fontsize=SMALL, title=title, title_fontsize=SMALL, frameon=False, **kw)


_ENDS = {"RdBu": ("red", "blue"), "PuOr": ("orange", "purple"), "BrBG": ("brown", "teal"), "RdYlBu": ("red", "blue")}


def signed_colours(cmap: str) -> tuple[str, str]:
    """The colour words of a diverging map's negative and positive ends, for alt text ("blue", "red" for RdBu_r)."""
    base, rev = (cmap[:-2], True) if cmap.endswith("_r") else (cmap, False)
    lo, hi = _ENDS.get(base, ("dark", "light"))
    return (hi, lo) if rev else (lo, hi)


def share(count: int, total: int) -> str:
    """"4,990 of 5,001 (99.8%)": a percentage that never rounds to 100% or 0% unless it is exactly that."""
    pct = 100 * count / max(total, 1)
    text = f"{pct:.1f}%"
    if count < total and text == "100.0%":
        text = ">99.9%"
    elif count > 0 and text == "0.0%":
        text = "<0.1%"
    return f"{count:,} of {total:,} ({text})"
