"""A layout check for any matplotlib figure: what a reader would notice at once, found by measuring.

The figure is drawn once on the Agg canvas with a renderer that records every piece of text it really draws (tick
labels outside the view are not drawn, so they are not checked). Then:

- no drawn text overlaps another drawn text;
- no drawn text leaves the canvas (a cut-off label);
- no tick label, title or axis label of one axes runs into the plotting area of another;
- no legend placed inside an axes covers a plotted point of it;
- every colour bar is at least ``min_colorbar_in`` inches long and ``min_colorbar_w_in`` wide, labelled, and no
  taller than the image panels it serves;
- no text is smaller than ``MIN_TEXT_PX`` pixels once the figure is scaled to fit a ``SCREEN_PX`` screen, at the dpi
  it is saved with and at the smallest dpi the config allows (so a huge figure does not pass by being huge);
- text that Pillow draws (GIF frames, their contact sheets) is recorded by ``PillowTexts`` and held to the same size.

``problems(fig)`` returns the faults in words (empty when the figure is clean); the tests run it on every figure every
command draws, and on a figure with a deliberately overlapping label, which must fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from .style import COLORBAR_MIN_IN, COLORBAR_W_IN, MIN_DPI, MIN_TEXT_PX, SCREEN_PX

TOLERANCE_PX = 1.0  # overlaps smaller than this (anti-aliasing, rounding) are not faults


@dataclass(frozen=True)
class Drawn:
    text: Text
    box: Bbox


def drawn_texts(fig: Any) -> list[Drawn]:
    """Draw ``fig`` on an Agg canvas and return every non-empty text the renderer drew, with its box in pixels."""
    canvas = FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    seen: list[Text] = []
    original = renderer.draw_text

    def recording(gc: Any, x: float, y: float, s: str, prop: Any, angle: float, ismath: Any = False,
                  mtext: Any = None) -> Any:
        if mtext is not None and s.strip():
            seen.append(mtext)
        return original(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

    renderer.draw_text = recording
    try:
        fig.draw(renderer)
    finally:
        del renderer.draw_text
    unique = list(dict.fromkeys(seen))
    return [Drawn(t, t.get_window_extent(renderer)) for t in unique]


def _overlap(a: Bbox, b: Bbox) -> float:
    """Overlap of two boxes in pixels: the smaller of the overlapping width and height (0 when apart)."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(0.0, min(w, h))


def _name(t: Text) -> str:
    s = t.get_text().replace("\n", " ")
    return repr(s if len(s) <= 40 else s[:37] + "...")


def owners(fig: Any) -> dict[int, Any]:
    """id(text) -> the axes whose tree holds it (tick labels, titles, legends, colour-bar labels); figure texts are
    not in the map."""
    out: dict[int, Any] = {}
    for ax in fig.axes:
        for t in ax.findobj(Text):
            out.setdefault(id(t), ax)
    return out


def _plot_area(ax: Any, renderer: Any) -> Bbox:
    return ax.patch.get_window_extent(renderer)


def text_problems(fig: Any, texts: list[Drawn]) -> list[str]:
    out = []
    w, h = fig.bbox.width, fig.bbox.height
    for d in texts:
        box = d.box
        if box.x0 < -TOLERANCE_PX or box.y0 < -TOLERANCE_PX or box.x1 > w + TOLERANCE_PX or box.y1 > h + TOLERANCE_PX:
            out.append(f"text {_name(d.text)} is cut off by the canvas edge ({box.x0:.0f},{box.y0:.0f})-"
                       f"({box.x1:.0f},{box.y1:.0f}) on {w:.0f}x{h:.0f}")
    for i, first in enumerate(texts):
        for second in texts[i + 1:]:
            if _overlap(first.box, second.box) > TOLERANCE_PX:
                out.append(f"text {_name(first.text)} overlaps text {_name(second.text)}")
    return out


def axes_problems(fig: Any, texts: list[Drawn]) -> list[str]:
    """Texts of one axes (ticks, titles, labels) or of the figure that run into the plotting area of another axes."""
    renderer = fig.canvas.get_renderer()
    own = owners(fig)
    out = []
    areas = [(ax, _plot_area(ax, renderer)) for ax in fig.axes if ax.get_visible()]
    for d in texts:
        owner = own.get(id(d.text))
        for ax, area in areas:
            if ax is not owner and _overlap(d.box, area) > TOLERANCE_PX:
                where = "a colour bar" if getattr(ax, "_colorbar", None) is not None else "another axes"
                out.append(f"text {_name(d.text)} runs into the plotting area of {where} ({ax.get_title()!r})")
    return out


def legend_problems(fig: Any) -> list[str]:
    """A legend inside an axes must not cover any plotted point of that axes."""
    renderer = fig.canvas.get_renderer()
    out = []
    for ax in fig.axes:
        leg = ax.get_legend()
        if not isinstance(leg, Legend) or not leg.get_visible():
            continue
        box = leg.get_window_extent(renderer)
        area = _plot_area(ax, renderer)
        if _overlap(box, area) <= TOLERANCE_PX:
            continue  # beside the axes
        for line in ax.get_lines():
            if not isinstance(line, Line2D) or not line.get_visible() or str(line.get_label()).startswith("_"):
                continue
            xy = _dense(line)
            if not len(xy):
                continue
            pts = line.get_transform().transform(xy)
            inside = ((pts[:, 0] > box.x0) & (pts[:, 0] < box.x1) & (pts[:, 1] > box.y0) & (pts[:, 1] < box.y1))
            if inside.any():
                out.append(f"the legend of axes {ax.get_title()!r} covers the line {line.get_label()!r}")
                break
    return out


def _dense(line: Line2D) -> np.ndarray:
    """A line's points, with 8 points between neighbours so a segment crossing a legend is caught."""
    xy = np.asarray(line.get_xydata(), dtype=float)
    xy = xy[np.isfinite(xy).all(axis=1)]
    if len(xy) < 2 or line.get_linestyle() in ("None", "", " "):
        return xy
    t = np.linspace(0, 1, 9)[:-1]
    seg = xy[:-1, None, :] + (xy[1:, None, :] - xy[:-1, None, :]) * t[None, :, None]
    return np.concatenate([seg.reshape(-1, 2), xy[-1:]])


def shown_px_per_pt(width_in: float, height_in: float, dpi: float) -> float:
    """Pixels per point of a figure saved at ``dpi`` and shown scaled down (never up) to fit SCREEN_PX."""
    return min(dpi, SCREEN_PX[0] / width_in, SCREEN_PX[1] / height_in) / 72


def text_size_problems(fig: Any, texts: list[Drawn], dpi: float | None = None) -> list[str]:
    """Texts under MIN_TEXT_PX tall once shown on SCREEN_PX, at ``dpi`` (the saved one) and at MIN_DPI."""
    w, h = fig.get_size_inches()
    per_pt = shown_px_per_pt(w, h, min(MIN_DPI, dpi or MIN_DPI))
    out = []
    for d in texts:
        px = float(d.text.get_fontsize()) * per_pt
        if px < MIN_TEXT_PX - 1e-6:
            out.append(f"text {_name(d.text)} is {px:.1f} px on a {SCREEN_PX[0]}x{SCREEN_PX[1]} screen "
                       f"({d.text.get_fontsize():g} pt in a {w:.1f}x{h:.1f} in figure); at least {MIN_TEXT_PX} px "
                       "reads")
    return out


def _served_height(fig: Any, bar: Any, renderer: Any) -> float:
    """Pixels spanned, top to bottom, by the image axes a colour bar serves: those drawn with its map and limits."""
    cmap, clim = bar.mappable.get_cmap().name, tuple(bar.mappable.get_clim())
    boxes = [ax.get_window_extent(renderer) for ax in fig.axes if getattr(ax, "_colorbar", None) is None
             and any(m.get_cmap().name == cmap and tuple(m.get_clim()) == clim for m in ax.images + ax.collections
                     if hasattr(m, "get_clim"))]
    if not boxes:
        return float("inf")
    return max(b.y1 for b in boxes) - min(b.y0 for b in boxes)


def colorbar_problems(fig: Any, min_len_in: float = COLORBAR_MIN_IN, min_w_in: float = COLORBAR_W_IN) -> list[str]:
    out = []
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        bar = getattr(ax, "_colorbar", None)
        if bar is None:
            continue
        box = ax.get_window_extent(renderer)
        label = bar.ax.get_ylabel() or bar.ax.get_xlabel()
        if not label.strip():
            out.append("a colour bar has no label: say what its colours measure")
        served = _served_height(fig, bar, renderer)
        # a vertical bar may reach a title band past its panels (0.2 in), not more
        if box.height > served + 0.2 * fig.dpi and box.height >= box.width:
            out.append(f"colour bar {label!r} is {box.height / fig.dpi:.2f} in tall, taller than the panels it "
                       f"serves ({served / fig.dpi:.2f} in)")
        long_in, short_in = max(box.width, box.height) / fig.dpi, min(box.width, box.height) / fig.dpi
        if long_in < min_len_in - 1e-6 or short_in < min_w_in * 0.7:
            label = bar.ax.get_ylabel() or bar.ax.get_xlabel()
            out.append(f"colour bar {label!r} is {long_in:.2f} x {short_in:.2f} in; at least {min_len_in} x "
                       f"{min_w_in * 0.7:.2f} in is readable")
    return out


def problems(fig: Any, dpi: float | None = None) -> list[str]:
    """Every layout fault of ``fig`` (to be saved at ``dpi``) in words; an empty list for a clean figure."""
    texts = drawn_texts(fig)
    return (text_problems(fig, texts) + axes_problems(fig, texts) + legend_problems(fig) + colorbar_problems(fig)
            + text_size_problems(fig, texts, dpi))


class PillowTexts:
    """Records every text Pillow draws while it is active (``with PillowTexts() as rec:``): its font size in pixels
    and the size of the image it is drawn on, so GIF frames are held to the figures' text size."""

    def __init__(self) -> None:
        self.records: list[tuple[str, float, tuple[int, int]]] = []

    def __enter__(self) -> PillowTexts:
        from PIL import ImageDraw  # noqa: PLC0415 - Pillow only where frames are checked

        self._orig = ImageDraw.ImageDraw.text
        rec = self.records
        orig = self._orig

        def text(draw: Any, xy: Any, s: Any, *a: Any, **kw: Any) -> Any:
            font = kw.get("font") or (a[1] if len(a) > 1 else None)
            size = float(getattr(font, "size", 10))
            if str(s).strip():
                rec.append((str(s), size, draw.im.size))
            return orig(draw, xy, s, *a, **kw)

        ImageDraw.ImageDraw.text = text  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: Any) -> None:
        from PIL import ImageDraw  # noqa: PLC0415

        ImageDraw.ImageDraw.text = self._orig  # type: ignore[method-assign]

    def problems(self) -> list[str]:
        """Texts under MIN_TEXT_PX once their frame is scaled down to fit SCREEN_PX."""
        out = []
        for s, size, (w, h) in self.records:
            px = size * min(1.0, SCREEN_PX[0] / w, SCREEN_PX[1] / h)
            if px < MIN_TEXT_PX - 1e-6:
                out.append(f"Pillow text {s[:40]!r} is {px:.1f} px in a {w}x{h} frame; at least {MIN_TEXT_PX} px reads")
        return sorted(set(out))
