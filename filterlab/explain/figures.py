"""The static convolution figure: input, kernel, feature map and pooling on top, one pixel's arithmetic below.

Top row: the input (its padding ring hatched and labelled "pad") with the worked pixel's window outlined in yellow
and the next window position dashed in white (the stride), the kernel, the feature map with the worked pixel outlined,
and the pooled map with the pooling window and its winner marked. Bottom row: the window's input values, the kernel
as applied, their products and the sum, which equals the outlined feature-map value. Inputs and maps up to 12x12 carry
every value in their cells.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..viz.style import LABEL, NEXT, POOL, SMALL, TICK, TITLE, WINDOW, FigureInfo, new_figure, save, sym_limit
from .arithmetic import pool_window, pool_winner, window_cells
from .kernels import fmt_number
from .style import MAX_NUMBERED, fit_cell_numbers, grid_panel, index_ticks, mark_cell, outline_box, outline_cells
from .walkthrough import ConvCase


def next_window(case: ConvCase) -> tuple[tuple[int, int], list[tuple[int, int]]] | None:
    """The output pixel after the worked one (to the right, else below) and its window: shows the stride."""
    r, c = case.worked.row, case.worked.col
    oh, ow = case.fmap.shape
    nxt = (r, c + 1) if c + 1 < ow else ((r + 1, c) if r + 1 < oh else None)
    if nxt is None:
        return None
    return nxt, window_cells(*nxt, case.k.shape, case.stride, case.padding, case.dilation)


def grey_range(x: np.ndarray) -> tuple[float, float]:
    lo = min(0.0, float(x.min()))
    return lo, max(float(x.max()), lo + 1e-12)


def _fontsize(side: int) -> float:
    return 8.5 if side <= 7 else SMALL  # never under SMALL, the least that reads on a projector


def _input_panel(ax: Any, case: ConvCase) -> None:
    x, p = case.x, case.padding
    lo, hi = grey_range(x)
    numbers = max(x.shape) <= MAX_NUMBERED
    grid_panel(ax, np.pad(x, p), "gray", lo, hi, numbers=numbers, origin=-p, shape=x.shape,
               fontsize=_fontsize(max(x.shape) + 2 * p), gid="input")
    index_ticks(ax, -p, x.shape[0] + 2 * p, x.shape[1] + 2 * p)
    window = case.worked.window
    if case.dilation == 1:
        outline_box(ax, window, WINDOW, gid="window")
    else:  # a dilated window's cells are apart: outline each
        outline_cells(ax, window, WINDOW, gid="window")
    nxt = next_window(case)
    if nxt is not None:
        outline_box(ax, nxt[1], NEXT, gid="next-window", dashed=True, width=1.8)
    pad = f", padding {p} (hatched: pad = 0)" if p else ""
    ax.set_title(f"input {x.shape[0]}x{x.shape[1]}{pad}\ngrey {fmt_number(lo)} to {fmt_number(hi)}", fontsize=LABEL)


def kernel_panel(ax: Any, k: np.ndarray, cmap: str, title: str, gid: str) -> Any:
    v = sym_limit(k)
    im = grid_panel(ax, k, cmap, -v, v, numbers=k.size <= 81, fontsize=_fontsize(max(k.shape)), gid=gid)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"{title}\nscale -{fmt_number(v)} to +{fmt_number(v)}", fontsize=LABEL)
    return im


def _map_panel(ax: Any, case: ConvCase, cmap: str, vlim: float) -> Any:
    fmap, w = case.fmap, case.worked
    im = grid_panel(ax, fmap, cmap, -vlim, vlim, numbers=max(fmap.shape) <= MAX_NUMBERED,
                    fontsize=_fontsize(max(fmap.shape)), gid="feature map")
    index_ticks(ax, 0, *fmap.shape)
    outline_cells(ax, [(w.row, w.col)], WINDOW, gid="worked pixel", width=2.6, zorder=7)  # above the pool window
    nxt = next_window(case)
    if nxt is not None:
        outline_cells(ax, [nxt[0]], NEXT, gid="next pixel", dashed=True, width=1.8)
    p = case.pooling
    if p is not None:
        i, j = p.cell
        outline_box(ax, pool_window(i, j, p.size), POOL, gid="pool-window", width=2.0)
        if p.kind == "max":
            r, c = pool_winner(fmap, i, j, p.size)
            mark_cell(ax, r, c, POOL, gid="pool-winner")
    ax.set_title(f"feature map {fmap.shape[0]}x{fmap.shape[1]}\n({w.row}, {w.col}) = {fmt_number(fmap[w.row, w.col])}",
                 fontsize=LABEL)
    return im


def _pooled_panel(ax: Any, case: ConvCase, cmap: str, vlim: float) -> None:
    p = case.pooling
    assert p is not None
    grid_panel(ax, p.pooled, cmap, -vlim, vlim, numbers=max(p.pooled.shape) <= MAX_NUMBERED,
               fontsize=_fontsize(max(p.pooled.shape)), gid="pooled")
    index_ticks(ax, 0, *p.pooled.shape)
    outline_cells(ax, [p.cell], POOL, gid="pooled cell", width=2.6)
    i, j = p.cell
    what = "max" if p.kind == "max" else "mean"
    ax.set_title(f"{p.name} (stride {p.size}): {p.pooled.shape[0]}x{p.pooled.shape[1]}\n"
                 f"({i}, {j}) = {what} of the green window = {fmt_number(p.pooled[i, j])}", fontsize=LABEL)


def _arithmetic_row(fig: Any, grid: Any, case: ConvCase, cmap: str) -> None:
    """Window values x kernel as applied = products; their sum is the worked feature-map value."""
    w, kh, kw = case.worked, *case.k.shape
    values = np.array([v for _, _, v, _ in w.terms]).reshape(kh, kw)
    products = np.array(w.products).reshape(kh, kw)
    ax = fig.add_subplot(grid[1, 0])
    lo, hi = grey_range(case.x)
    grid_panel(ax, values, "gray", lo, hi, numbers=True, fontsize=_fontsize(kh), gid="window values")
    pads = [i for i, (r, c) in enumerate(w.window) if not (0 <= r < case.x.shape[0] and 0 <= c < case.x.shape[1])]
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"the yellow window's values\n({len(pads)} in the padding)" if pads else
                 "the yellow window's values", fontsize=LABEL)
    kernel_panel(fig.add_subplot(grid[1, 1]), case.applied, cmap,
                  "x the kernel, flipped" if case.flip else "x the kernel (not flipped)", "applied kernel")
    kernel_panel(fig.add_subplot(grid[1, 2]), products, cmap, "= the products", "products")
    ax = fig.add_subplot(grid[1, 3])
    ax.axis("off")
    ax.text(0.0, 0.98, f"sum of the {len(products.ravel())} products\n= {w.total:.6g}\n= feature map "
            f"({w.row}, {w.col})\n\n{case.op_name},\n{case.settings}", fontsize=TITLE, va="top", gid="sum")
    ax.text(0.0, 0.0, legend_text(case), fontsize=TICK, va="bottom", gid="legend")


def legend_text(case: ConvCase) -> str:
    """What each outline colour marks, for this figure."""
    w = case.worked
    lines = [f"yellow: output ({w.row}, {w.col}) and its window"]
    nxt = next_window(case)
    if nxt is not None:
        lines.append(f"dashed white: output {nxt[0]} and its window,\n  {case.stride} on (the stride)")
    if case.pooling is not None:
        lines.append("green: the pooling window" + (", its maximum ringed" if case.pooling.kind == "max" else ""))
    if case.padding:
        lines.append("hatched \"pad\": the zero padding")
    return "\n".join(lines)


def draw_convolve(case: ConvCase, cmap: str) -> tuple[Any, float]:
    """The figure and the shared scale of the feature map and the pooled map."""
    fig = new_figure(13.5, 7.6, constrained=True)
    grid = fig.add_gridspec(2, 4, height_ratios=(1.5, 1))
    vlim = sym_limit(case.fmap)
    _input_panel(fig.add_subplot(grid[0, 0]), case)
    kernel_panel(fig.add_subplot(grid[0, 1]), case.k, cmap, f"kernel {case.k.shape[0]}x{case.k.shape[1]}", "kernel")
    map_ax = fig.add_subplot(grid[0, 2])
    im = _map_panel(map_ax, case, cmap, vlim)
    axes = [map_ax]
    if case.pooling is not None:
        axes.append(fig.add_subplot(grid[0, 3]))
        _pooled_panel(axes[-1], case, cmap, vlim)
    fig.colorbar(im, ax=axes, shrink=0.7, label=f"feature map value (shared, -{vlim:.3g} to +{vlim:.3g})")
    _arithmetic_row(fig, grid, case, cmap)
    fit_cell_numbers(fig)
    return fig, vlim


def convolve_caption(case: ConvCase, cmap: str, vlim: float) -> tuple[str, str]:
    x, k, fmap, w = case.x, case.k, case.fmap, case.worked
    pad = f" Its padding ring ({case.padding} wide, hatched, marked pad) reads 0." if case.padding else ""
    pooled = ""
    p = case.pooling
    if p is not None:
        mark = " and its maximum circled" if p.kind == "max" else ""
        pooled = (f" {p.name} gives {p.pooled.shape[0]}x{p.pooled.shape[1]} on the same scale; the green square is "
                  f"the window of pooled cell {p.cell}{mark}.")
    nxt = next_window(case)
    step = f"{case.stride} pixel{'s' if case.stride > 1 else ''}"
    stride = (f" The dashed white window is output pixel {nxt[0]}'s, {step} on: the stride."
              if nxt is not None else "")
    caption = (f"{case.x_desc} ({x.shape[0]}x{x.shape[1]}, grey) {case.op_name} with the kernel {case.k_desc} "
               f"({k.shape[0]}x{k.shape[1]}, {case.settings}) gives a {fmap.shape[0]}x{fmap.shape[1]} feature map "
               f"on the {cmap} diverging map centred at zero, scale -{vlim:.3g} to +{vlim:.3g}.{pad} The yellow "
               f"window is output pixel ({w.row}, {w.col})'s: its values times the kernel give the products below, "
               f"which sum to {w.total:.6g}, the outlined feature-map value.{stride}{pooled}")
    alt = (f"Top: a {x.shape[0]}x{x.shape[1]} input with an outlined {k.shape[0]}x{k.shape[1]} window, the kernel, "
           f"and the {fmap.shape[0]}x{fmap.shape[1]} feature map with one outlined cell"
           + (", and the pooled map." if p is not None else ".")
           + " Bottom: the window's values, the kernel and their products, with the sum.")
    return caption, alt


def convolve_figure(case: ConvCase, out_dir: Path, cmap: str, dpi: int, name: str = "convolve") -> FigureInfo:
    fig, vlim = draw_convolve(case, cmap)
    caption, alt = convolve_caption(case, cmap, vlim)
    return save(fig, out_dir, name, caption, alt, dpi)
