"""The sliding window, animated: the window moving over the input while the output fills in, cell by cell.

Frames are computed as data first (:class:`Frame`: the window read, the output so far, the sum of products) and drawn
with Pillow afterwards, so the tests check what a frame shows against the arithmetic. Small outputs get one frame per
output position, each showing that position's products and sum; large ones one frame per output row. Stride, padding
and dilation change where the window goes, as in conv_arithmetic's drawings; max and average pooling get their own
animation. Every frame uses one fixed palette, so no colour shifts between frames.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont, PngImagePlugin

from ..core.rundir import atomic_open, atomic_write_json
from ..viz.style import GAP_RGB8, POOL, WINDOW, FigureInfo, contact_sheet, pil_font, sym_limit, write_gif
from .arithmetic import ExplainError, is_pad, pool_window, pool_winner, worked_pixel
from .kernels import fmt_number
from .style import MAX_NUMBERED
from .walkthrough import ConvCase

MAX_FRAMES = 144  # up to this many output positions, one frame each; beyond, one frame per output row
YELLOW, GREEN = ImageColor.getrgb(WINDOW)[:3], ImageColor.getrgb(POOL)[:3]  # the static figure's accents
NOT_YET = GAP_RGB8  # output cells not computed yet: the figures' gap grey, apart from the map's near-white 0
Cell = tuple[int, int]


@dataclass(frozen=True)
class Frame:
    """One step of the animation."""

    pos: Cell  # the output cell worked out (when a frame covers a whole row: the row's strongest response)
    window: list[Cell]  # the cells it reads: input positions x[r, c] (conv) or feature-map cells (pooling)
    filled: np.ndarray  # the output so far, NaN where not yet computed
    products: np.ndarray | None  # (kh, kw) products of this position (conv frames), None for pooling
    value: float  # the output value at pos
    winner: Cell | None = None  # max pooling: the cell the window keeps
    note: str = ""  # a whole row's frame: what it works out, and why a row of zeros is zero


def _strongest(row: np.ndarray) -> int:
    """The column of a row's largest |value|: the position a whole-row frame works out (the middle when all are 0,
    so a row of zeros shows a typical window)."""
    a = np.abs(row)
    return int(a.argmax()) if a.max() > 0 else len(row) // 2


def _row_note(case: ConvCase, i: int, j: int) -> str:
    """A whole-row frame's first header line: the strongest position worked out, or why every sum is 0."""
    ow = case.fmap.shape[1]
    v = float(case.fmap[i, j])
    if v != 0:
        n = case.k.size
        return (f"output row {i} filled in; worked out: ({i}, {j}), its strongest response = sum of {n} products = "
                f"{v:.4g}")
    h, w = case.x.shape
    seen = [case.x[r, c] for jj in range(ow)
            for r, c in worked_pixel(case.x, case.k, i, jj, case.stride, case.padding, case.dilation, case.flip).window
            if 0 <= r < h and 0 <= c < w]
    if not any(seen):
        return f"output row {i} filled in: all {ow} sums are 0 because its windows see no ink (every input read is 0)"
    return f"output row {i} filled in: its windows see ink, but every sum cancels to 0; ({i}, {j}) shown"


def conv_frames(case: ConvCase, max_frames: int = MAX_FRAMES) -> list[Frame]:
    """One frame per output position (by rows), or per output row when there are more than ``max_frames``; a row's
    frame works out the row's strongest response (a blank position's sum, 0, would teach nothing)."""
    oh, ow = case.fmap.shape
    per_row = oh * ow > max_frames
    filled = np.full((oh, ow), np.nan)
    frames = []
    for i in range(oh):
        if per_row:
            filled[i] = case.fmap[i]
        for j in range(ow) if not per_row else [_strongest(case.fmap[i])]:
            filled[i, j] = case.fmap[i, j]
            w = worked_pixel(case.x, case.k, i, j, case.stride, case.padding, case.dilation, case.flip)
            frames.append(Frame((i, j), w.window, filled.copy(), np.array(w.products).reshape(case.k.shape),
                                w.total, note=_row_note(case, i, j) if per_row else ""))
    return frames


def pool_frames(case: ConvCase, max_frames: int = MAX_FRAMES) -> list[Frame]:
    """One frame per pooled cell (per pooled row beyond ``max_frames``, working out the row's strongest cell): its
    K x K window on the feature map, the winner for max pooling."""
    p = case.pooling
    assert p is not None
    filled = np.full(p.pooled.shape, np.nan)
    per_row = p.pooled.size > max_frames
    frames = []
    for i in range(p.pooled.shape[0]):
        if per_row:
            filled[i] = p.pooled[i]
        for j in range(p.pooled.shape[1]) if not per_row else [_strongest(p.pooled[i])]:
            v = p.pooled[i, j]
            filled[i, j] = v
            winner = pool_winner(case.fmap, i, j, p.size) if p.kind == "max" else None
            note = ""
            if per_row and v == 0:
                note = (f"pooled row {i} filled in: every value is 0 because its windows read only 0s of the feature "
                        "map (no ink there)" if not np.any(case.fmap[p.size * i:p.size * (i + 1)]) else "")
            frames.append(Frame((i, j), pool_window(i, j, p.size), filled.copy(), None, float(v), winner, note))
    return frames


# ---------------------------------------------------------------------------------------------------------------------
# Drawing with Pillow


def _lut(cmap: str) -> np.ndarray:
    return (matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


@dataclass(frozen=True)
class Painter:
    """Colours and sizes shared by every frame of one animation."""

    cell: int  # pixels per input / output cell
    small: int  # pixels per kernel / products cell
    grey: tuple[float, float]  # input value range, black to white
    vlim: float  # symmetric scale of the output (and of the feature map being pooled)
    lut: np.ndarray  # (256, 3) diverging map

    def diverging(self, v: float, vlim: float | None = None) -> tuple[int, int, int]:
        lim = vlim or self.vlim
        t = int(np.clip(round((v + lim) / (2 * lim) * 255), 0, 255))
        return tuple(int(c) for c in self.lut[t])  # type: ignore[return-value]

    def grey_of(self, v: float) -> tuple[int, int, int]:
        lo, hi = self.grey
        g = int(np.clip(round((v - lo) / (hi - lo) * 255), 0, 255))
        return g, g, g


def _ink(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    return (0, 0, 0) if 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2] > 128 else (255, 255, 255)


def draw_grid(d: ImageDraw.ImageDraw, xy: tuple[int, int], values: np.ndarray, cs: int, origin: int,
              colour: Callable[[float], tuple[int, int, int]], font: ImageFont.FreeTypeFont | None,
              shape: tuple[int, ...] | None = None) -> None:
    """Cells at xy (top left); NaN cells blank; with ``shape``, cells outside it are hatched padding ("pad")."""
    x0, y0 = xy
    for (i, j), v in np.ndenumerate(values):
        box = (x0 + j * cs, y0 + i * cs, x0 + (j + 1) * cs, y0 + (i + 1) * cs)
        if shape is not None and is_pad(i + origin, j + origin, shape):
            d.rectangle(box, fill=(242, 242, 242), outline=(170, 170, 170))
            for t in range(0, 2 * cs, max(4, cs // 4)):  # hatching: diagonal lines inside the cell
                d.line((box[0] + max(0, t - cs), box[1] + min(t, cs), box[0] + min(t, cs), box[1] + max(0, t - cs)),
                       fill=(190, 190, 190))
            if font is not None:
                d.text(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), "pad", fill=(90, 90, 90), font=font,
                       anchor="mm")
            continue
        if np.isnan(v):
            d.rectangle(box, fill=NOT_YET, outline=(150, 150, 150))
            continue
        rgb = colour(float(v))
        d.rectangle(box, fill=rgb, outline=(150, 150, 150))
        if font is not None:
            d.text(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), fmt_number(v), fill=_ink(rgb), font=font,
                   anchor="mm")


def outline(d: ImageDraw.ImageDraw, xy: tuple[int, int], cells: Sequence[Cell], cs: int, origin: int,
            rgb: tuple[int, int, int], width: int = 3, box: bool = False) -> None:
    """Outline each cell (r, c) of a grid drawn at xy whose first row and column are ``origin``; with ``box``, one
    rectangle around them all (a contiguous window)."""
    x0, y0 = xy
    if box:
        rows, cols = [r for r, _ in cells], [c for _, c in cells]
        cells = [(min(rows), min(cols))]
        span = (max(rows) - min(rows) + 1, max(cols) - min(cols) + 1)
    else:
        span = (1, 1)
    for r, c in cells:
        box_xy = (x0 + (c - origin) * cs, y0 + (r - origin) * cs, x0 + (c - origin + span[1]) * cs,
                  y0 + (r - origin + span[0]) * cs)
        d.rectangle(box_xy, outline=(0, 0, 0), width=width + 2)
        d.rectangle((box_xy[0] + 1, box_xy[1] + 1, box_xy[2] - 1, box_xy[3] - 1), outline=rgb, width=width)


@dataclass(frozen=True)
class Layout:
    """Where the panels of one animation's frames go; every frame of an animation has the same size."""

    size: tuple[int, int]
    panels: list[tuple[str, tuple[int, int]]]  # (label, top-left) of each panel, left to right


MARGIN, GAP, HEADER, LABEL, FOOTER = 14, 28, 50, 22, 40


def _layout(label_widths: list[tuple[str, int, int]], texts: list[str], font: ImageFont.FreeTypeFont) -> Layout:
    """Panels side by side: ``label_widths`` holds (label, width, height) of each."""
    x, panels = MARGIN, []
    for label, w, _ in label_widths:
        panels.append((label, (x, HEADER + LABEL)))
        x += max(w, int(font.getlength(label))) + GAP
    lines = [line for t in texts for line in t.splitlines()]
    width = max(x - GAP + MARGIN, *(int(font.getlength(t)) + 2 * MARGIN for t in lines))
    height = HEADER + LABEL + max(h for _, _, h in label_widths) + FOOTER + MARGIN
    return Layout((width, height), panels)


def _sizes(case: ConvCase) -> tuple[int, int]:
    side = max(case.x.shape) + 2 * case.padding
    cs = int(np.clip(round(264 / side), 8, 44))
    return cs, max(cs, 48)


def _canvas(layout: Layout, header: list[str], footer: str, font: ImageFont.FreeTypeFont,
            label_font: ImageFont.FreeTypeFont) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("RGB", layout.size, (255, 255, 255))
    d = ImageDraw.Draw(img)
    for n, line in enumerate(header):
        d.text((MARGIN, 8 + n * 20), line, fill=(0, 0, 0), font=font)
    for label, (x, y) in layout.panels:
        d.text((x, y - LABEL + 2), label, fill=(60, 60, 60), font=label_font)
    d.multiline_text((MARGIN, layout.size[1] - FOOTER - MARGIN // 2 + 6), footer, fill=(60, 60, 60), font=label_font,
                     spacing=3)
    return img, d


def render_conv(case: ConvCase, frames: list[Frame], cmap: str) -> list[Image.Image]:
    """One RGB image per frame: input with the window, kernel, this position's products, the output so far."""
    cs, ks = _sizes(case)
    x, p, k = case.x, case.padding, case.applied
    numbers = max(x.shape) <= MAX_NUMBERED and cs >= 32  # room for a number in GIF_TEXT_PX text
    out_numbers = max(case.fmap.shape) <= MAX_NUMBERED and cs >= 32
    font, label_font, cell_font = pil_font(16), pil_font(14), pil_font()
    paint = Painter(cs, ks, (min(0.0, float(x.min())), max(float(x.max()), 1e-12)), sym_limit(case.fmap), _lut(cmap))
    oh, ow = case.fmap.shape
    kv, pv = sym_limit(k), sym_limit(*(f.products for f in frames if f.products is not None))
    footer = (f"input grey {fmt_number(paint.grey[0])} to {fmt_number(paint.grey[1])}; on {cmap} centred at 0: kernel "
              f"+/-{fmt_number(kv)},\nproducts +/-{fmt_number(pv)}, output +/-{fmt_number(paint.vlim)}; grey cells: "
              "not computed yet")
    pad = f", padding {p}" if p else ""
    panels = [(f"input {x.shape[0]}x{x.shape[1]}{pad}", (x.shape[1] + 2 * p) * cs, (x.shape[0] + 2 * p) * cs),
              ("kernel" + (", flipped" if case.flip else ""), k.shape[1] * ks, k.shape[0] * ks),
              ("products", k.shape[1] * ks, k.shape[0] * ks), (f"output {oh}x{ow}", ow * cs, oh * cs)]
    headers = [_conv_header(case, f, n, len(frames)) for n, f in enumerate(frames)]
    layout = _layout(panels, [h for hs in headers for h in hs] + [footer], font)
    images = []
    for f, header in zip(frames, headers, strict=True):
        img, d = _canvas(layout, header, footer, font, label_font)
        (_, at_in), (_, at_k), (_, at_p), (_, at_out) = layout.panels
        draw_grid(d, at_in, np.pad(x, p), cs, -p, paint.grey_of, cell_font if numbers else None, x.shape)
        outline(d, at_in, f.window, cs, -p, YELLOW, 3 if cs >= 16 else 2, box=case.dilation == 1)
        draw_grid(d, at_k, k, ks, 0, lambda v: paint.diverging(v, kv), cell_font)
        if f.products is not None:
            draw_grid(d, at_p, f.products, ks, 0, lambda v: paint.diverging(v, pv), cell_font)
        draw_grid(d, at_out, f.filled, cs, 0, paint.diverging, cell_font if out_numbers else None)
        outline(d, at_out, [f.pos], cs, 0, YELLOW, 3 if cs >= 16 else 2)
        images.append(img)
    return images


def _conv_header(case: ConvCase, f: Frame, n: int, total: int) -> list[str]:
    i, j = f.pos
    oh, ow = case.fmap.shape
    if total < oh * ow:  # one frame per output row
        first = f.note
    else:
        assert f.products is not None
        first = f"output ({i}, {j}) = sum of the {f.products.size} products = {f.value:.4g}"
    return [first, f"{case.op_name}, {case.settings}; frame {n + 1} of {total}"]


def render_pool(case: ConvCase, frames: list[Frame], cmap: str) -> list[Image.Image]:
    """One RGB image per pooled cell: the feature map with the pooling window (and its winner), the pooled map."""
    p = case.pooling
    assert p is not None
    fmap = case.fmap
    cs = int(np.clip(round(264 / max(fmap.shape)), 8, 44))
    numbers = max(fmap.shape) <= MAX_NUMBERED and cs >= 32
    font, label_font, cell_font = pil_font(16), pil_font(14), pil_font()
    paint = Painter(cs, cs, (0.0, 1.0), sym_limit(fmap), _lut(cmap))
    ph, pw = p.pooled.shape
    footer = (f"feature map and pooled map on {cmap} centred at 0,\none scale: +/-{fmt_number(paint.vlim)}; grey "
              "cells: not computed yet")
    panels = [(f"feature map {fmap.shape[0]}x{fmap.shape[1]}", fmap.shape[1] * cs, fmap.shape[0] * cs),
              (f"{p.name}, stride {p.size}: {ph}x{pw}", pw * cs, ph * cs)]
    headers = [_pool_header(case, f, n, len(frames)) for n, f in enumerate(frames)]
    layout = _layout(panels, [h for hs in headers for h in hs] + [footer], font)
    images = []
    for f, header in zip(frames, headers, strict=True):
        img, d = _canvas(layout, header, footer, font, label_font)
        (_, at_map), (_, at_pool) = layout.panels
        draw_grid(d, at_map, fmap, cs, 0, paint.diverging, cell_font if numbers else None)
        outline(d, at_map, f.window, cs, 0, GREEN, 3 if cs >= 16 else 2, box=True)
        if f.winner is not None:
            r, c = f.winner
            x0, y0 = at_map[0] + c * cs, at_map[1] + r * cs
            d.ellipse((x0 + cs * 0.15, y0 + cs * 0.15, x0 + cs * 0.85, y0 + cs * 0.85), outline=(0, 0, 0),
                      width=max(2, cs // 10))
        draw_grid(d, at_pool, f.filled, cs, 0, paint.diverging, cell_font if numbers else None)
        outline(d, at_pool, [f.pos], cs, 0, GREEN, 3 if cs >= 16 else 2)
        images.append(img)
    return images


def _pool_header(case: ConvCase, f: Frame, n: int, total: int) -> list[str]:
    p = case.pooling
    assert p is not None
    (i, j), (r0, c0), (r1, c1) = f.pos, f.window[0], f.window[-1]
    where = f"pooled ({i}, {j}) reads rows {r0}-{r1}, cols {c0}-{c1}"
    if total < p.pooled.size:  # one frame per pooled row
        if f.note:
            return [f.note, f"{p.name}, stride {p.size}; frame {n + 1} of {total}"]
        where = f"pooled row {i} filled in; its strongest, ({i}, {j}), reads rows {r0}-{r1}, cols {c0}-{c1}"
    if f.winner is not None:
        first = f"{where}: max = {f.value:.4g}, at {f.winner} (ringed)"
    else:
        first = f"{where}: mean of {len(f.window)} values = {f.value:.4g}"
    return [first, f"{p.name}, stride {p.size}; frame {n + 1} of {total}"]


# ---------------------------------------------------------------------------------------------------------------------
# Files: the GIF, and a contact sheet of its frames


def save_animation(images: list[Image.Image], out_dir: Path, name: str, caption: str, alt: str) -> list[FigureInfo]:
    """NAME.gif and NAME_frames.png, each with NAME[_frames].json (caption and alt text) beside it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    gif = out_dir / f"{name}.gif"
    write_gif(images, gif, [700] * (len(images) - 1) + [2800])  # hold the finished output before looping
    atomic_write_json(out_dir / f"{name}_gif.json", {"figure": gif.name, "caption": caption, "alt": alt})
    sheet, idx = contact_sheet(images)
    shown = f"all {len(images)} frames" if len(idx) == len(images) else f"{len(idx)} of the {len(images)} frames"
    sheet_caption = f"Contact sheet of {name}.gif, {shown}, left to right and top to bottom. {caption}"
    sheet_alt = f"A grid of {len(idx)} frames of the animation. {alt}"
    png = out_dir / f"{name}_frames.png"
    info = PngImagePlugin.PngInfo()
    for key, value in (("Title", f"{name}_frames"), ("Description", sheet_alt), ("Comment", sheet_caption),
                       ("Software", "filterlab")):
        info.add_text(key, value)
    with atomic_open(png, ".png") as f:
        sheet.save(f, format="PNG", pnginfo=info, optimize=True)
    atomic_write_json(out_dir / f"{name}_frames.json", {"figure": png.name, "caption": sheet_caption,
                                                          "alt": sheet_alt})
    return [FigureInfo(f"{name}_gif", gif, caption, alt), FigureInfo(f"{name}_frames", png, sheet_caption, sheet_alt)]


def frame_pixels(case: ConvCase) -> tuple[int, int]:
    """(frames, pixels per frame) the conv animation will draw, from the case's sizes alone (no drawing): the four
    panels side by side (at least the input, kernel, products and output grids) and the header and footer."""
    cs, ks = _sizes(case)
    x, p, k = case.x, case.padding, case.applied
    oh, ow = case.fmap.shape
    frames = oh if oh * ow > MAX_FRAMES else oh * ow  # conv_frames: one per row beyond MAX_FRAMES positions
    width = 2 * MARGIN + 3 * GAP + (x.shape[1] + 2 * p) * cs + 2 * k.shape[1] * ks + ow * cs
    height = HEADER + LABEL + max((x.shape[0] + 2 * p) * cs, k.shape[0] * ks, oh * cs) + FOOTER + MARGIN
    return frames, width * height


def check_cost(case: ConvCase, limit_mpx: float) -> None:
    """ExplainError before anything is drawn when the animation (and its pooling animation, about as large) would
    hold more than ``limit_mpx`` million frame pixels (each pixel is 4 bytes in memory while the GIF is built)."""
    frames, pixels = frame_pixels(case)
    total = frames * pixels * (2 if case.pooling is not None else 1)
    if total > limit_mpx * 1e6:
        raise ExplainError(f"animate: {frames} frames of {pixels / 1e6:.2f} megapixels"
                           f"{' (and the pooling animation)' if case.pooling is not None else ''} = "
                           f"{total / 1e6:,.0f} million frame pixels (frames x pixels); accepted: at most "
                           f"{limit_mpx:g} million (animation_limit); use a smaller input, a larger stride, or "
                           "raise animation_limit")


def animate(case: ConvCase, out_dir: Path, cmap: str, name: str = "convolve") -> list[FigureInfo]:
    """The sliding-window animation of the case (and of its pooling, if any), with contact sheets."""
    frames = conv_frames(case)
    oh, ow = case.fmap.shape
    each = ("one frame per output position" if len(frames) == oh * ow
            else f"one frame per output row ({oh}), each working out the row's strongest response")
    caption = (f"The {case.k.shape[0]}x{case.k.shape[1]} window ({case.k_desc}) sliding over the "
               f"{case.x.shape[0]}x{case.x.shape[1]} input ({case.x_desc}; {case.op_name}, {case.settings}) while "
               f"the {oh}x{ow} output fills in, {each}; each frame writes that position's sum of products. The "
               f"window and the output cell are outlined in yellow; the output uses {cmap} centred at zero, "
               f"+/-{sym_limit(case.fmap):.3g}.")
    alt = (f"An animation: an yellow window steps across a {case.x.shape[0]}x{case.x.shape[1]} grid and a "
           f"{oh}x{ow} output grid fills in, {len(frames)} frames.")
    out = save_animation(render_conv(case, frames, cmap), out_dir, name, caption, alt)
    if case.pooling is not None:
        p = case.pooling
        pframes = pool_frames(case)
        caption = (f"{p.name} with stride {p.size}: the {p.size}x{p.size} window (green) steps over the "
                   f"{case.fmap.shape[0]}x{case.fmap.shape[1]} feature map and the {p.pooled.shape[0]}x"
                   f"{p.pooled.shape[1]} pooled map fills in, "
                   + ("one frame per pooled cell" if len(pframes) == p.pooled.size else "one frame per pooled row")
                   + ("; the window's maximum is ringed." if p.kind == "max" else "; each cell is its window's mean.")
                   + f" One {cmap} scale, +/-{sym_limit(case.fmap):.3g}.")
        alt = f"An animation: a green square steps over a feature map while a smaller pooled map fills in, " \
              f"{len(pframes)} frames."
        out += save_animation(render_pool(case, pframes, cmap), out_dir, f"{name}_pool", caption, alt)
    return out
