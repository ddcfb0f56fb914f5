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
from functools import lru_cache
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont
from matplotlib.textpath import TextPath
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator

from ..core.rundir import atomic_open, atomic_savefig, atomic_write_json
from .limits import MAX_FILTERS

# Font sizes in points: one scale for every figure. SMALL is the floor: at the smallest allowed dpi (MIN_DPI) it is
# still MIN_TEXT_PX pixels tall, the least that reads on a projector (filterlab.viz.layout checks every figure).
TITLE, LABEL, TICK, SMALL = 10.0, 9.0, 8.0, 7.5
MIN_DPI = 100  # output.dpi accepts no less: SMALL would fall under MIN_TEXT_PX
MIN_TEXT_PX = 10  # no text smaller, once the figure is scaled to fit SCREEN_PX
SCREEN_PX = (1920, 1080)  # the projector a figure must read on
COLORBAR_MIN_IN = 1.0  # a colour bar shorter than this squashes its ticks into each other
COLORBAR_W_IN = 0.14
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
GAP_RGB = (0.72, 0.72, 0.72)  # the same grey for RGB mosaics
GAP_RGB8 = (184, 184, 184)  # and for Pillow-drawn frames (GIFs, TensorBoard grids)

# Accents drawn over images and grids. None is orange or red, so none collides with the ends of the diverging maps
# (RdBu: red and blue; PuOr: orange and purple) or with each other under the common colour-vision deficiencies: they
# differ in lightness and line style as well as hue, and each has a dark stroke around it.
WINDOW = "#F0E442"  # Okabe-Ito yellow, solid: the worked window and output cell
NEXT = "#FFFFFF"  # white, dashed: the next window position (the stride)
POOL = "#009E73"  # bluish green, solid: the pooling window
INK = "#FFFFFF"  # white, dashed, dark stroke: the outline of the ink on an image or map (cividis ends in yellow)
TARGET = "#E69F00"  # Okabe-Ito orange, only in charts without a diverging map: the class in question
HIGHLIGHT = "0.15"  # near black: the one bar a chart is about where a diverging map is in the same figure (no hue
# that could be read as one of its ends); the others in "0.7"

# Texts written inside an image by design carry one of these gids (filterlab.viz.layout lets them cover the image's
# data; any other text over an image's pixels is a layout fault): "cell", a number in its cell; "pad", the padding
# marker; "in-image", any other (a confusion matrix's counts).
IN_IMAGE_GIDS = frozenset({"cell", "pad", "in-image"})


def cmap_of(name: str | None) -> Any:
    return matplotlib.colormaps["gray" if name is None else name].with_extremes(bad=GAP_GREY)


def sym_limit(*arrays: np.ndarray) -> float:
    """Half-width of a symmetric colour scale that holds every value."""
    sizes = [float(np.nanmax(np.abs(a))) for a in arrays if a.size and np.isfinite(a).any()]
    m = max(sizes, default=0.0)
    return m if m > 0 else 1.0


MINUS = "\N{MINUS SIGN}"  # the one minus sign of every tick label (matplotlib's axes use it too)


def decimals_of(values: Any) -> int | None:
    """The fewest decimals (0 to 4) that write every one of a set of tick values exactly; None when 4 do not (tiny
    or irregular values, written to 3 significant digits instead)."""
    vals = [float(v) for v in values]
    for d in range(5):
        if all(abs(round(v, d) - v) <= 1e-9 * max(1.0, abs(v)) for v in vals):
            return d
    return None


def tick_text(v: float, decimals: int | None = None) -> str:
    """The one tick format: "0" for zero, else ``decimals`` fixed decimals (3 significant digits when None), with
    the one minus sign."""
    if v == 0:
        return "0"
    return (f"{v:.3g}" if decimals is None else f"{v:.{decimals}f}").replace("-", MINUS)


def _bar_tick(v: float, _: Any = None) -> str:
    return tick_text(v)


def _fixed_ticks(values: Any) -> FuncFormatter:
    """A formatter writing every tick of ``values`` with the same number of decimals (-0.30, -0.15, 0, 0.15, 0.30)."""
    d = decimals_of(values)
    return FuncFormatter(lambda v, _: tick_text(v, d))


def colorbar(layout: InchLayout, im: Any, left: float, top: float, length: float, label: str,
             horizontal: bool = False) -> Any:
    """The one colour bar of every figure: at inches (left, top), ``length`` long (at least ``COLORBAR_MIN_IN``;
    the caller keeps it no longer than the panels it serves), labelled, with at most 5 ticks written in full (no
    offset text). Vertical beside its panels, or ``horizontal`` under panels too short for a vertical bar."""
    size = (max(length, COLORBAR_MIN_IN), COLORBAR_W_IN)
    cax = layout.axes(left, top, *(size if horizontal else size[::-1]))
    bar = layout.fig.colorbar(im, cax=cax, orientation="horizontal" if horizontal else "vertical")
    # side by side, long tick labels need room: fewer ticks on a horizontal bar
    bar.locator = MaxNLocator(3 if horizontal else 5, symmetric=im.norm.vmin == -im.norm.vmax)
    lo, hi = sorted((float(im.norm.vmin), float(im.norm.vmax)))
    bar.formatter = _fixed_ticks([t for t in bar.locator.tick_values(lo, hi) if lo - 1e-12 <= t <= hi + 1e-12])
    bar.update_ticks()
    bar.ax.tick_params(labelsize=TICK)
    bar.set_label(label, fontsize=LABEL)
    return bar


def colorbar_below(layout: InchLayout, im: Any, left: float, top: float, length: float, label: str) -> Any:
    """A horizontal colour bar under the panels it serves, ticks and label below it."""
    return colorbar(layout, im, left, top, length, label, horizontal=True)


COLORBAR_BELOW_IN = 0.2 + COLORBAR_W_IN + 0.55  # gap, bar, tick labels and label under it


def colorbar_space(lo: float, hi: float) -> float:
    """Inches a colour bar for values lo..hi takes to the right of the content: gap, bar, tick labels, label."""
    ticks = MaxNLocator(5, symmetric=lo == -hi).tick_values(lo, hi)
    d = decimals_of(ticks)
    widest = max(text_width_in(tick_text(float(t), d), TICK) for t in ticks)
    return 0.25 + COLORBAR_W_IN + 0.1 + widest + 0.12 + LABEL / 72 + 0.15



# ---------------------------------------------------------------------------------------------------------------------
# Grids of filters


STRIP_MAX = 8  # up to this many filters in one row (the article's 5 as 1x5)


def grid_shape(n: int) -> tuple[int, int]:
    """The one rule for laying out n filters, wherever a set of them is drawn: up to 8 in one row (5 -> 1x5);
    beyond, a power-of-two number of rows, at most twice as many columns (16 -> 4x4, 32 -> 4x8, 64 -> 8x8), and for
    counts that would be wider than that, a square-ish grid (12 -> 3x4). A figure with runs or steps in rows keeps
    this rule inside each cell."""
    if n <= STRIP_MAX:
        return 1, max(n, 1)
    rows = 2 ** (int(math.log2(n)) // 2)
    if -(-n // rows) > 2 * rows:
        rows = int(math.sqrt(n))
    return rows, -(-n // rows)


def block_grid(n: int, block_h: int, block_w: int) -> tuple[int, int]:
    """Rows and columns of n blocks (a filter's patches, say): the grid rule for blocks up to twice as wide as tall;
    for wider blocks (an optimised input and its patches in a row), the columns whose drawing comes closest to the
    screen's shape, so that 8 wide blocks are neither one long row nor one tall column."""
    rows, cols = grid_shape(n)
    if block_w <= 2 * block_h:
        return rows, cols
    screen = SCREEN_PX[0] / SCREEN_PX[1]
    cols = min(range(1, n + 1), key=lambda c: abs(math.log(c * block_w / (-(-n // c) * block_h) / screen)))
    return -(-n // cols), cols


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


NUMBER_IN = 0.15  # the height of the band above a tile that holds its number (SMALL text)


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
    size = SMALL
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


def legend_beside(ax: Any, width_in: float, title: str | None = None, entries: dict[str, Any] | None = None,
                  **kw: Any) -> Any:
    """A legend to the right of the axes (never over the data); ``width_in`` is the room left for it; ``entries``
    (label -> handle) for a legend that serves several axes, else the axes' own."""
    handles, labels = (list(entries.values()), list(entries)) if entries else ax.get_legend_handles_labels()
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


def weight_scale(snapshots: np.ndarray) -> float:
    """The one symmetric scale of a layer's weights in every figure of a run: the largest |weight| of the drawn
    filters over all snapshots (S, N, ...), so initial, trained and every frame of the evolution read alike."""
    return sym_limit(np.asarray(snapshots))


# ---------------------------------------------------------------------------------------------------------------------
# Pillow-drawn frames (GIFs, contact sheets of their frames): one font, one GIF writer, one contact sheet


GIF_TEXT_PX = 13  # Pillow text in frames shown at their own size: over MIN_TEXT_PX with room for small x-heights


@lru_cache(maxsize=8)
def pil_font(px: int = GIF_TEXT_PX) -> Any:
    """The figures' font (DejaVu Sans) for Pillow at ``px`` pixels, never under GIF_TEXT_PX."""
    from PIL import ImageFont  # noqa: PLC0415 - Pillow only where frames are drawn

    return ImageFont.truetype(findfont(FontProperties(family="DejaVu Sans")), max(int(px), GIF_TEXT_PX))


def write_gif(frames: list[Any], path: Path, durations: int | list[int]) -> None:
    """Write Pillow frames as one looping GIF with one palette: palette ("P") frames keep theirs; RGB frames are
    quantised to one palette made from the first and the last frame (the last holds every output colour), so no
    colour shifts between frames."""
    from PIL import Image  # noqa: PLC0415 - Pillow only where frames are drawn

    if frames[0].mode != "P":
        both = Image.new("RGB", (frames[0].width, 2 * frames[0].height))
        both.paste(frames[0], (0, 0))
        both.paste(frames[-1], (0, frames[0].height))
        pal = both.quantize(colors=255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        frames = [im.quantize(palette=pal, dither=Image.Dither.NONE) for im in frames]
    with atomic_open(path, ".gif") as f:
        frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0,
                       optimize=False, disposal=1)


def sheet_indices(n: int, most: int = 16) -> list[int]:
    """Which frames a contact sheet shows: all up to ``most``, else evenly spaced from the first to the last."""
    if n <= most:
        return list(range(n))
    return sorted({int(round(v)) for v in np.linspace(0, n - 1, most)})


def contact_sheet(images: list[Any]) -> tuple[Any, list[int]]:
    """As many frames as fit SCREEN_PX at their own size (evenly spaced from the first to the last), in a grid with
    gap-grey gutters, so the frames' text stays as readable as in the GIF; returns the sheet and the frames shown."""
    from PIL import Image  # noqa: PLC0415 - Pillow only where frames are drawn

    w, h = images[0].size
    cols = max(1, (SCREEN_PX[0] + 6) // (w + 6))
    rows = max(1, (SCREEN_PX[1] + 6) // (h + 6))
    indices = sheet_indices(len(images), cols * rows)
    cols = min(cols, len(indices))
    rows = -(-len(indices) // cols)
    sheet = Image.new("RGB", (cols * w + (cols - 1) * 6, rows * h + (rows - 1) * 6), GAP_RGB8)
    for n, i in enumerate(indices):
        sheet.paste(images[i].convert("RGB"), ((n % cols) * (w + 6), (n // cols) * (h + 6)))
    return sheet, indices
