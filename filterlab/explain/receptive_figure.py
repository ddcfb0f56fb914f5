"""The receptive field drawn: the input region one output pixel sees, outlined on a digit, beside the layer's grid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from ..core.geometry import Layer
from ..viz.style import LABEL, NEXT, WINDOW, FigureInfo, new_figure, save
from .receptive import field_of
from .style import PAD_FACE, grid_panel, index_ticks, outline_box


def fit_image(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """The digit centre-cropped (or zero-padded) to the network's input size."""
    out = np.zeros((h, w))
    sh, sw = min(h, x.shape[0]), min(w, x.shape[1])
    xr, xc = (x.shape[0] - sh) // 2, (x.shape[1] - sw) // 2
    orr, oc = (h - sh) // 2, (w - sw) // 2
    out[orr:orr + sh, oc:oc + sw] = x[xr:xr + sh, xc:xc + sw]
    return out


def _next_pixel(pixel: tuple[int, int], grid: tuple[int, int]) -> tuple[int, int] | None:
    return (pixel[0], pixel[1] + 1) if pixel[1] + 1 < grid[1] else None


def draw_receptive(x: np.ndarray, layers: list[Layer], chw: tuple[int, int, int], name: str,
                   pixel: tuple[int, int]) -> Any:
    """The input with the field outlined (padding drawn where the field reaches past the edge), and the layer's
    output grid with the pixel marked; the next pixel and its field dashed, to show the jump."""
    field, grid = field_of(layers, chw, name)
    r0, r1, c0, c1 = field.region(*pixel)
    h, w = chw[1], chw[2]
    img = fit_image(x, h, w)
    lo_r, hi_r, lo_c, hi_c = min(r0, 0), max(r1, h - 1), min(c0, 0), max(c1, w - 1)
    canvas = np.full((hi_r - lo_r + 1, hi_c - lo_c + 1), np.nan)  # NaN: padding
    canvas[-lo_r:-lo_r + h, -lo_c:-lo_c + w] = img
    fig = new_figure(10.5, 5.6, constrained=True)
    ax_in, ax_out = fig.subplots(1, 2, width_ratios=(1.35, 1))
    ax_in.set_gid("input")
    ax_in.imshow(canvas, cmap=matplotlib.colormaps["gray"].with_extremes(bad=PAD_FACE), vmin=0,
                 vmax=max(float(img.max()), 1e-12), interpolation="nearest",
                 extent=(lo_c - 0.5, hi_c + 0.5, hi_r + 0.5, lo_r - 0.5))
    outline_box(ax_in, [(r0, c0), (r1, c1)], WINDOW, gid="field")
    nxt = _next_pixel(pixel, grid)
    if nxt is not None:
        n0, n1, m0, m1 = field.region(*nxt)
        outline_box(ax_in, [(n0, max(m0, lo_c)), (n1, min(m1, hi_c))], NEXT, gid="next-field", dashed=True, width=1.6)
    index_ticks(ax_in, lo_r, hi_r - lo_r + 1, hi_c - lo_c + 1, col_origin=lo_c)
    ax_in.set_title(f"input {h}x{w}: {name} pixel {pixel} sees rows {r0} to {r1}, cols {c0} to {c1},\n"
                    f"a {field.size}x{field.size} field" + (" (light grey: zero padding)" if canvas.shape != (h, w)
                                                            else ""), fontsize=LABEL)
    grid_panel(ax_out, np.zeros(grid), "gray_r", 0, 1, numbers=False, gid="output")
    outline_box(ax_out, [pixel], WINDOW, gid="pixel")
    if nxt is not None:
        outline_box(ax_out, [nxt], NEXT, gid="next-pixel", dashed=True, width=1.6)
    index_ticks(ax_out, 0, *grid)
    ax_out.set_title(f"{name}'s output {grid[0]}x{grid[1]}: pixel {pixel} (yellow)"
                     + (f"\nthe dashed white pixel's field is {_pixels(field.jump)} to the right" if nxt else ""),
                     fontsize=LABEL)
    return fig


def _pixels(n: int) -> str:
    return f"{n} input pixel{'s' if n > 1 else ''}"


def receptive_caption(x_desc: str, layers: list[Layer], chw: tuple[int, int, int], name: str,
                      pixel: tuple[int, int]) -> tuple[str, str]:
    field, grid = field_of(layers, chw, name)
    r0, r1, c0, c1 = field.region(*pixel)
    h, w = chw[1], chw[2]
    nxt = _next_pixel(pixel, grid)
    caption = (f"The receptive field of {name}'s output pixel {pixel}: on {x_desc} ({h}x{w}, grey), the "
               f"{field.size}x{field.size} input region, rows {r0} to {r1} and columns {c0} to {c1}, that this pixel "
               f"depends on, by the closed form for a chain of convolutions and pools (jump {field.jump}, offset "
               f"{field.offset}). Positions outside rows 0-{h - 1} and columns 0-{w - 1} lie in the zero padding.")
    if nxt is not None:
        caption += f" Dashed blue: the field of the next pixel to the right, {_pixels(field.jump)} on."
    alt = (f"Left: a digit with an yellow square of {field.size} by {field.size} pixels. Right: a {grid[0]} by "
           f"{grid[1]} grid with one cell outlined.")
    return caption, alt


def receptive_figure(x: np.ndarray, x_desc: str, layers: list[Layer], chw: tuple[int, int, int], name: str,
                     pixel: tuple[int, int], out_dir: Path, dpi: int) -> FigureInfo:
    fig = draw_receptive(x, layers, chw, name, pixel)
    caption, alt = receptive_caption(x_desc, layers, chw, name, pixel)
    return save(fig, out_dir, "receptive_field", caption, alt, dpi)
