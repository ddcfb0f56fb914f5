"""A layout check for any matplotlib figure: what a reader would notice at once, found by measuring.

The figure is drawn once on the Agg canvas with a renderer that records every piece of text it really draws (tick
labels outside the view are not drawn, so they are not checked). Then:

- no drawn text overlaps another drawn text;
- no drawn text leaves the canvas (a cut-off label);
- no tick label, title or axis label of one axes runs into the plotting area of another;
- no text of an axes covers the drawn data of an image in it (a filter number over the tiles of an image grid, an
  annotation over a feature map): the text's box, less ``TOLERANCE_PX``, is mapped onto the image's pixels, and any
  finite pixel under it is a fault; NaN pixels (the grid's gap-grey gutters and number bands) and pixels of the gap
  grey in RGB mosaics are background, and text may sit on them. Text written inside an image by design (the
  explainer's numbers in their cells, the padding's "pad", a confusion matrix's counts) says so by its gid: one of
  ``style.IN_IMAGE_GIDS`` ("cell", "pad", "in-image"); every other text over an image's data is a fault;
- no legend placed inside an axes covers a plotted point of it;
- every colour bar is at least ``min_colorbar_in`` inches long and ``min_colorbar_w_in`` wide, labelled, and no
  taller than the image panels it serves;
- no text is smaller than ``MIN_TEXT_PX`` pixels once the figure is scaled to fit a ``SCREEN_PX`` screen, at the dpi
  it is saved with and at the smallest dpi the config allows (so a huge figure does not pass by being huge);
- text that Pillow draws (GIF frames, their contact sheets) is recorded by ``PillowTexts`` and held to the same size.

``problems(fig)`` returns the faults in words (empty when the figure is clean). ``Watch`` checks every figure saved
(``Figure.savefig``, to a file or to bytes) and every text Pillow draws while it is active, measuring the figure
during the draw that saves it (no second drawing); the test suite holds one around every test (tests/conftest.py),
so a test that draws a faulty figure fails, and negative controls (figures made wrong on purpose) must fail it.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from .style import COLORBAR_MIN_IN, COLORBAR_W_IN, GAP_RGB, IN_IMAGE_GIDS, MIN_DPI, MIN_TEXT_PX, SCREEN_PX

TOLERANCE_PX = 1.0  # overlaps smaller than this (anti-aliasing, rounding) are not faults


@dataclass(frozen=True)
class Drawn:
    text: Text
    box: Bbox


def _recording(renderer: Any, seen: list[Text]) -> None:
    """Make ``renderer`` note every non-empty text it draws in ``seen`` (undo with ``del renderer.draw_text``)."""
    original = renderer.draw_text

    def recording(gc: Any, x: float, y: float, s: str, prop: Any, angle: float, ismath: Any = False,
                  mtext: Any = None) -> Any:
        if mtext is not None and s.strip():
            seen.append(mtext)
        return original(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

    renderer.draw_text = recording


def _boxes(seen: list[Text], renderer: Any) -> list[Drawn]:
    return [Drawn(t, t.get_window_extent(renderer)) for t in dict.fromkeys(seen)]


def drawn_texts(fig: Any) -> list[Drawn]:
    """Draw ``fig`` on an Agg canvas and return every non-empty text the renderer drew, with its box in pixels."""
    canvas = FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    seen: list[Text] = []
    _recording(renderer, seen)
    try:
        fig.draw(renderer)
    finally:
        del renderer.draw_text
    return _boxes(seen, renderer)


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


def axes_problems(fig: Any, texts: list[Drawn], renderer: Any = None) -> list[str]:
    """Texts of one axes (ticks, titles, labels) or of the figure that run into the plotting area of another axes."""
    renderer = renderer or fig.canvas.get_renderer()
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


def legend_problems(fig: Any, renderer: Any = None) -> list[str]:
    """A legend inside an axes must not cover any plotted point of that axes."""
    renderer = renderer or fig.canvas.get_renderer()
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
    """Texts under MIN_TEXT_PX tall once shown on SCREEN_PX, at ``dpi`` (the saved one) and at MIN_DPI. Text grows
    with the dpi until the figure fills the screen, so MIN_DPI, the least a run's config accepts, decides; a figure
    saved under it (a test's quick save) is judged at MIN_DPI too, as a run would draw it."""
    del dpi  # at any allowed dpi (>= MIN_DPI) the text is at least as large as at MIN_DPI
    w, h = fig.get_size_inches()
    per_pt = shown_px_per_pt(w, h, MIN_DPI)
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


def colorbar_problems(fig: Any, min_len_in: float = COLORBAR_MIN_IN, min_w_in: float = COLORBAR_W_IN,
                      renderer: Any = None) -> list[str]:
    out = []
    renderer = renderer or fig.canvas.get_renderer()
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


def _image_data(im: Any) -> np.ndarray | None:
    """(H, W) booleans: where ``im`` draws data (a finite, unmasked, not fully transparent pixel that is not the
    gap grey of an RGB mosaic); None for an image that is not an array."""
    a = im.get_array()
    if a is None:
        return None
    mask = np.ma.getmaskarray(a)
    v = np.ma.getdata(a).astype(float, copy=False)
    if v.ndim == 2:
        return ~mask & np.isfinite(v)
    if v.ndim != 3:
        return None
    drawn = np.isfinite(v).all(axis=2) & ~(mask.any(axis=2) if mask.ndim == 3 else mask)
    rgb = v[..., :3] / (255.0 if v.max(initial=0) > 1 else 1.0)
    drawn &= ~np.all(np.abs(rgb - np.asarray(GAP_RGB)) < 0.01, axis=2)
    if v.shape[2] == 4:
        drawn &= v[..., 3] > 0
    return drawn


def _covers_image(box: Bbox, ax: Any, im: Any, renderer: Any) -> bool:
    """Whether ``box`` (pixels), shrunk by TOLERANCE_PX, lies over any drawn data pixel of ``im`` in ``ax``."""
    drawn = _image_data(im)
    if drawn is None or not drawn.any():
        return False
    clip = Bbox.intersection(box, ax.patch.get_window_extent(renderer))
    if clip is None or clip.width <= 2 * TOLERANCE_PX or clip.height <= 2 * TOLERANCE_PX:
        return False
    x0, y0, x1, y1 = clip.x0 + TOLERANCE_PX, clip.y0 + TOLERANCE_PX, clip.x1 - TOLERANCE_PX, clip.y1 - TOLERANCE_PX
    (dx0, dy0), (dx1, dy1) = ax.transData.inverted().transform([(x0, y0), (x1, y1)])
    left, right, bottom, top = im.get_extent()
    h, w = drawn.shape
    row0 = top if im.origin == "upper" else bottom  # the data y of the array's first row's outer edge
    row1 = bottom if im.origin == "upper" else top
    cols = sorted(((dx0 - left) / (right - left) * w, (dx1 - left) / (right - left) * w))
    rows = sorted(((dy0 - row0) / (row1 - row0) * h, (dy1 - row0) / (row1 - row0) * h))
    c0, c1 = max(int(np.floor(cols[0])), 0), min(int(np.ceil(cols[1])), w)
    r0, r1 = max(int(np.floor(rows[0])), 0), min(int(np.ceil(rows[1])), h)
    return c0 < c1 and r0 < r1 and bool(drawn[r0:r1, c0:c1].any())


def image_problems(fig: Any, texts: list[Drawn], renderer: Any = None) -> list[str]:
    """Texts of an axes drawn over the data of an image in that axes (other axes' texts over it are
    ``axes_problems``), unless their gid says they are inside the image by design (``style.IN_IMAGE_GIDS``)."""
    renderer = renderer or fig.canvas.get_renderer()
    own = owners(fig)
    out = []
    for d in texts:
        ax = own.get(id(d.text))
        if ax is None or not ax.images or d.text.get_gid() in IN_IMAGE_GIDS:
            continue
        for im in ax.images:
            if im.get_visible() and _covers_image(d.box, ax, im, renderer):
                out.append(f"text {_name(d.text)} covers the image of axes {ax.get_title()!r} (mark text drawn "
                           "inside an image by design with a gid of style.IN_IMAGE_GIDS)")
                break
    return out


def measured(fig: Any, texts: list[Drawn], renderer: Any, dpi: float | None = None) -> list[str]:
    """Every layout fault of ``fig`` from the texts ``renderer`` drew of it (to be saved at ``dpi``)."""
    return (text_problems(fig, texts) + axes_problems(fig, texts, renderer) + image_problems(fig, texts, renderer)
            + legend_problems(fig, renderer) + colorbar_problems(fig, renderer=renderer)
            + text_size_problems(fig, texts, dpi))


def problems(fig: Any, dpi: float | None = None) -> list[str]:
    """Every layout fault of ``fig`` (to be saved at ``dpi``) in words; an empty list for a clean figure."""
    texts = drawn_texts(fig)
    return measured(fig, texts, fig.canvas.get_renderer(), dpi)


_PIL_ACTIVE: list[PillowTexts] = []  # nested recorders: the innermost records


class PillowTexts:
    """Records every text Pillow draws while it is active (``with PillowTexts() as rec:``): its font size in pixels
    and the size of the image it is drawn on, so GIF frames are held to the figures' text size. Nested, only the
    innermost records (a negative control inside the suite's watch is not also the watch's fault)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, float, tuple[int, int]]] = []
        self.on_fault: Any = None  # called (where, [fault]) at once for each faulty text (filterlab.viz.testwatch)

    def __enter__(self) -> PillowTexts:
        from PIL import ImageDraw  # noqa: PLC0415 - Pillow only where frames are checked

        if not _PIL_ACTIVE:
            orig = ImageDraw.ImageDraw.text

            def text(draw: Any, xy: Any, s: Any, *a: Any, **kw: Any) -> Any:
                font = kw.get("font") or (a[1] if len(a) > 1 else None)
                size = float(getattr(font, "size", 10))
                if str(s).strip() and _PIL_ACTIVE:
                    rec = _PIL_ACTIVE[-1]
                    rec.records.append((str(s), size, draw.im.size))
                    fault = _pillow_problem(str(s), size, draw.im.size)
                    if fault and rec.on_fault is not None:
                        rec.on_fault("a Pillow frame", [fault])
                return orig(draw, xy, s, *a, **kw)

            text.original = orig  # type: ignore[attr-defined]
            ImageDraw.ImageDraw.text = text  # type: ignore[method-assign,assignment]
        _PIL_ACTIVE.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        from PIL import ImageDraw  # noqa: PLC0415

        _PIL_ACTIVE.remove(self)
        if not _PIL_ACTIVE:
            ImageDraw.ImageDraw.text = ImageDraw.ImageDraw.text.original  # type: ignore[attr-defined,method-assign]

    def problems(self) -> list[str]:
        """Texts under MIN_TEXT_PX once their frame is scaled down to fit SCREEN_PX."""
        return sorted({p for s, size, wh in self.records if (p := _pillow_problem(s, size, wh))})


def _pillow_problem(s: str, size: float, frame: tuple[int, int]) -> str | None:
    w, h = frame
    px = size * min(1.0, SCREEN_PX[0] / w, SCREEN_PX[1] / h)
    if px < MIN_TEXT_PX - 1e-6:
        return f"Pillow text {s[:40]!r} is {px:.1f} px in a {w}x{h} frame; at least {MIN_TEXT_PX} px reads"
    return None


_WATCHES: list[Watch] = []  # nested watches: the innermost checks


class Watch:
    """Checks every matplotlib figure saved while it is active (``with Watch() as w:``), to a file or to bytes, and
    every text Pillow draws. The figure is measured inside the draw that saves it, at the dpi it is saved with, so
    the check costs its measuring only (``seconds``), not a second drawing. ``found``: the faults of each figure
    (by file name, or "a figure saved to bytes"), ``count``: figures saved to files, ``renders``: all figures saved;
    ``problems()``: every fault, the Pillow texts' included. Nested, only the innermost checks. ``Watch.total``:
    [figures checked, seconds spent measuring them] over every watch in this process; ``Watch.names``: the names of
    the figures checked (file names; "bytes" for figures saved to bytes)."""

    total: list[float] = [0, 0.0]
    names: set[str] = set()

    def __init__(self) -> None:
        self.found: dict[str, list[str]] = {}
        self.count = self.renders = 0
        self.seconds = 0.0
        self.pillow = PillowTexts()
        self.on_fault: Any = None  # called (figure name, faults) at once for each faulty figure (viz.testwatch)

    def __enter__(self) -> Watch:
        from matplotlib.figure import Figure  # noqa: PLC0415

        if not _WATCHES:
            Figure.savefig = _checked_savefig(Figure.savefig)  # type: ignore[method-assign]
        _WATCHES.append(self)
        self.pillow.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        from matplotlib.figure import Figure  # noqa: PLC0415

        self.pillow.__exit__(*exc)
        _WATCHES.remove(self)
        if not _WATCHES:
            Figure.savefig = Figure.savefig.original  # type: ignore[attr-defined,method-assign]

    def problems(self) -> list[str]:
        every = [f"{name}: {p}" for name, found in self.found.items() for p in found]
        return list(dict.fromkeys(every)) + self.pillow.problems()


def _checked_savefig(savefig: Any) -> Any:

    def checking(fig: Any, fname: Any, *args: Any, **kw: Any) -> Any:
        watch = _WATCHES[-1] if _WATCHES else None
        if watch is None:
            return savefig(fig, fname, *args, **kw)
        dpi = kw.get("dpi")
        dpi = fig.dpi if dpi in (None, "figure") else float(dpi)
        found: list[str] = []

        def draw(renderer: Any) -> None:  # the saving draw, recorded, then measured with its renderer
            if "draw_text" in vars(renderer):  # a layout pass with drawing disabled (constrained layout, tight bbox)
                return type(fig).draw(fig, renderer)
            seen: list[Text] = []
            _recording(renderer, seen)
            try:
                type(fig).draw(fig, renderer)
            finally:
                del renderer.draw_text
            start = time.perf_counter()
            found[:] = measured(fig, _boxes(seen, renderer), renderer, dpi)
            spent = time.perf_counter() - start
            watch.seconds += spent
            Watch.total[0] += 1
            Watch.total[1] += spent

        fig.draw = draw
        try:
            result = savefig(fig, fname, *args, **kw)
        finally:
            del fig.draw
        is_file = not isinstance(fname, io.BytesIO)
        watch.renders += 1
        watch.count += is_file
        title = (kw.get("metadata") or {}).get("Title")
        name = (f"{title}.{kw.get('format', 'png')}" if title else Path(fname).name if isinstance(fname, (str, Path))
                else "a figure saved to a file" if is_file else "a figure saved to bytes")
        Watch.names.add(name)
        if found:
            watch.found[name] = watch.found.get(name, []) + found
            if watch.on_fault is not None:
                watch.on_fault(name, found)
        return result

    checking.original = savefig  # type: ignore[attr-defined]
    return checking
