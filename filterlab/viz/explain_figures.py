"""The explainer's figures (kept here until the explainer package owns them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .style import FigureInfo, cmap_of, hide_axes, new_figure, panel, save, sym_limit


def _kernel_panel(ax: Any, k: np.ndarray, cmap: str, title: str) -> Any:
    vlim = sym_limit(k)
    im = ax.imshow(k, cmap=cmap_of(cmap), vmin=-vlim, vmax=vlim, interpolation="nearest")
    if k.size <= 49:
        for (i, j), v in np.ndenumerate(k):
            ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=8 if k.shape[0] <= 5 else 6,
                    color="white" if abs(v) > 0.6 * vlim else "black")
    ax.set_title(title, fontsize=9)
    hide_axes(ax)
    return im


def convolve_figure(x: np.ndarray, k: np.ndarray, fmap: np.ndarray, pooled: np.ndarray | None, names: dict[str, str],
                    out_dir: Path, cmap: str, dpi: int, name: str = "convolve") -> FigureInfo:
    """Input (grayscale), kernel with its numbers, feature map (diverging, centred at zero), pooled map."""
    n = 4 if pooled is not None else 3
    fig = new_figure(3.2 * n, 3.6, constrained=True)
    axes = fig.subplots(1, n)
    panel(axes[0], x, f"input {x.shape[0]}x{x.shape[1]}", cmap="gray")
    _kernel_panel(axes[1], k, cmap, f"kernel {k.shape[0]}x{k.shape[1]}")
    vlim = sym_limit(fmap)
    im = panel(axes[2], fmap, f"feature map {fmap.shape[0]}x{fmap.shape[1]}", cmap=cmap_of(cmap), vmin=-vlim,
                vmax=vlim)
    fig.colorbar(im, ax=axes[2], shrink=0.75)
    if pooled is not None:
        im = panel(axes[3], pooled, f"{names['pool']} {pooled.shape[0]}x{pooled.shape[1]}", cmap=cmap_of(cmap),
                    vmin=-vlim, vmax=vlim)
        fig.colorbar(im, ax=axes[3], shrink=0.75)
    pooled_text = (f", then {names['pool']} to {pooled.shape[0]}x{pooled.shape[1]} (same scale)"
                   if pooled is not None else "")
    return save(
        fig, out_dir, name,
        f"{names['input']} ({x.shape[0]}x{x.shape[1]}, grayscale) {names['op']} the kernel {names['kernel']} "
        f"(its numbers in the cells, {names['settings']}) gives a {fmap.shape[0]}x{fmap.shape[1]} feature map on the "
        f"{cmap} diverging map centred at zero, scale -{vlim:.3g} to +{vlim:.3g}{pooled_text}.",
        f"Left to right: the input image, a {k.shape[0]}x{k.shape[1]} grid of kernel weights with their values, the "
        f"resulting feature map in blue and red" + (", and the smaller pooled map." if pooled is not None else "."),
        dpi)


def rgb_figure(ex: dict, out_dir: Path, cmap: str, dpi: int) -> FigureInfo:
    """The RGB example: channels, each kernel's three slices with numbers, the six maps and the pooled maps."""
    x, kernels, maps, pooled = ex["input"], ex["kernels"], ex["maps"], ex["pooled"]
    fig = new_figure(11, 14, constrained=True)
    grid = fig.add_gridspec(7, 5)
    for c, label in enumerate(("R", "G", "B")):
        panel(fig.add_subplot(grid[0, c]), x[c], f"input channel {label}", cmap="gray", vmin=0, vmax=1)
    rgb = np.moveaxis(x, 0, -1)
    panel(fig.add_subplot(grid[0, 3]), rgb, "input as RGB 26x26x3")
    vlim = sym_limit(maps)
    map_axes = []
    for o in range(6):
        for c, label in enumerate(("R", "G", "B")):
            _kernel_panel(fig.add_subplot(grid[1 + o, c]), kernels[o, c], cmap, f"k{o + 1} slice {label}")
        map_axes.append(fig.add_subplot(grid[1 + o, 3]))
        im = panel(map_axes[-1], maps[o], f"map {o + 1}: {ex['names'][o]}", cmap=cmap_of(cmap), vmin=-vlim, vmax=vlim)
        map_axes.append(fig.add_subplot(grid[1 + o, 4]))
        panel(map_axes[-1], pooled[o], "2x2 max-pool 12x12", cmap=cmap_of(cmap), vmin=-vlim, vmax=vlim)
    fig.colorbar(im, ax=map_axes, shrink=0.4, label="map value")
    return save(
        fig, out_dir, "rgb_example",
        "A colour input of 26x26x3 (three real MNIST digits as the R, G and B channels) through six 3x3x3 kernels "
        "gives 24x24x6; 2x2 max-pooling gives 12x12x6. Each row shows one kernel's three per-channel slices (numbers "
        "in the cells), its feature map (the sum over the channels of each slice's cross-correlation) and the pooled "
        f"map, on the {cmap} diverging map centred at zero with one scale, -{vlim:.3g} to +{vlim:.3g}.",
        "Top: the three grayscale input channels and their colour composite. Below: six rows, each with three small "
        "3x3 weight grids, a feature map and its pooled version.",
        dpi)


def match_figure(filters: np.ndarray, rows: list[dict], out_dir: Path, cmap: str, dpi: int) -> FigureInfo:
    """Each learned filter beside its nearest hand-made kernel (resized to the filter's size)."""
    from ..explain import KERNELS, resize_kernel  # noqa: PLC0415 - temporary, until explain owns this module

    n, k = filters.shape[0], filters.shape[-1]
    cols = min(8, n)
    nrows = -(-n // cols)
    fig = new_figure(1.5 * cols, 2.9 * nrows + 0.4, constrained=True)
    grid = fig.add_gridspec(2 * nrows, cols)
    for i, r in enumerate(rows):
        rr, cc = divmod(i, cols)
        f = filters[i]
        v = sym_limit(f)
        panel(fig.add_subplot(grid[2 * rr, cc]), f, f"filter {i + 1}", cmap=cmap_of(cmap), vmin=-v, vmax=v)
        kern = resize_kernel(KERNELS[r["nearest"]][0], k) * np.sign(r["cosine"] or 1)
        v = sym_limit(kern)
        panel(fig.add_subplot(grid[2 * rr + 1, cc]), kern,
               f"{'-' if r['cosine'] < 0 else ''}{r['nearest']}\ncos {r['cosine']:.2f}", cmap=cmap_of(cmap),
               vmin=-v, vmax=v)
    mean = float(np.mean([abs(r["cosine"]) for r in rows]))
    return save(
        fig, out_dir, "nearest_kernels",
        f"Each of the {n} learned conv1 filters (summed over input channels; top of each pair) beside the hand-made "
        f"kernel it is most similar to by cosine, after resizing the kernel to {k}x{k} (bottom; a minus sign means "
        f"the filter matches the negated kernel). Each panel has its own symmetric scale on the {cmap} map. Mean "
        f"|cosine| {mean:.2f}.",
        f"Pairs of small grids: {n} learned filters, each above its nearest classic kernel such as Sobel or Laplacian.",
        dpi)
