"""The colour example: 26x26x3 through six 3x3x3 kernels, and the whole tutorial chain to 3x3x12 -> 108 -> 10.

The first block is computed on real digits with hand-made kernels (``rgb_example``); the chain after it is given as
layers (``RGB_LAYERS``), so ``filterlab shapes --rgb`` prints every shape and ``convolve --rgb`` draws the first block.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.geometry import layer_table
from ..data.images import load_image
from ..viz.style import LABEL, FigureInfo, new_figure, save, sym_limit
from .arithmetic import correlate2d, pool2d
from .figures import kernel_panel
from .kernels import KERNELS
from .shapes import RGB_INPUT, RGB_LAYERS, InputShape
from .style import colormap


def rgb_example() -> dict:
    """conv1, relu1 and pool1 of the chain on real digits: 26x26x3 -> 24x24x6 -> 12x12x6.

    The three channels are three real MNIST test digits (the first 7, 3 and 1), centre-cropped to 26x26, so every
    kernel's per-channel slices act on visibly different content.
    """
    chans = [load_image(n).pixels[1:27, 1:27].astype(float) / 255 for n in ("digit-7", "digit-3", "digit-1")]
    x = np.stack(chans)  # (3, 26, 26)
    z = np.zeros((3, 3))
    sx, sy, lap = KERNELS["sobel_x"][0], KERNELS["sobel_y"][0], KERNELS["laplacian4"][0]
    box = KERNELS["box_blur"][0]
    kernels = np.stack([
        np.stack([sx, z, z]),  # vertical edges of the red channel only
        np.stack([z, sy, z]),  # horizontal edges of the green channel only
        np.stack([z, z, lap]),  # outline of the blue channel only
        np.stack([box, box, box]) / 3,  # brightness, all channels averaged
        np.stack([box, -box, z]),  # red minus green
        np.stack([sx, sx, sx]),  # vertical edges in every channel
    ])  # (6, 3, 3, 3): out channels, in channels, rows, cols
    names = ["sobel_x on R", "sobel_y on G", "laplacian4 on B", "mean brightness", "R minus G", "sobel_x on RGB"]
    maps = np.stack([sum(correlate2d(x[c], kern[c]) for c in range(3)) for kern in kernels])  # (6, 24, 24)
    pooled = np.stack([pool2d(np.maximum(m, 0), "max", 2) for m in maps])  # relu1 then pool1: (6, 12, 12)
    return {"input": x, "kernels": kernels, "names": names, "maps": maps, "pooled": pooled}


def chain_text(shape: InputShape = RGB_INPUT) -> str:
    """The chain on one line, the layers between the shapes they change: 26x26x3 -(conv1)-> 24x24x6 -(relu1,
    pool1)-> 12x12x6 ... -(output)-> 10."""
    rows = layer_table(RGB_LAYERS, shape.chw)
    parts, between = [shape.show(rows[0].shape)], []
    for prev, r in zip(rows, rows[1:], strict=False):
        between.append(r.name)
        if r.shape != prev.shape:
            parts.append(f"-({', '.join(between)})-> {shape.show(r.shape)}")
            between = []
    return " ".join(parts)


def rgb_figure(ex: dict, out_dir: Path, cmap: str, dpi: int) -> FigureInfo:
    """Channels, each kernel's three slices with numbers, the six maps and the pooled maps; the chain on top."""
    x, kernels, maps, pooled = ex["input"], ex["kernels"], ex["maps"], ex["pooled"]
    fig = new_figure(12, 11.9, constrained=True)  # fits a 1920x1080 screen with its text 10 px or more
    fig.suptitle("the whole chain (shapes; this figure computes it to 12x12x6):\n" + chain_text(), fontsize=LABEL)
    grid = fig.add_gridspec(7, 5)
    for c, label in enumerate(("R", "G", "B")):
        ax = fig.add_subplot(grid[0, c])
        ax.imshow(x[c], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"input channel {label} (grey 0-1)", fontsize=LABEL)
    ax = fig.add_subplot(grid[0, 3])
    ax.imshow(np.moveaxis(x, 0, -1), interpolation="nearest")
    ax.set_title("input as RGB 26x26x3", fontsize=LABEL)
    vlim = sym_limit(maps)
    map_axes = []
    for o in range(6):
        for c, label in enumerate(("R", "G", "B")):
            kernel_panel(fig.add_subplot(grid[1 + o, c]), kernels[o, c], cmap, f"k{o + 1} slice {label}", "kernel")
        map_axes += [fig.add_subplot(grid[1 + o, 3]), fig.add_subplot(grid[1 + o, 4])]
        im = map_axes[-2].imshow(maps[o], cmap=colormap(cmap), vmin=-vlim, vmax=vlim, interpolation="nearest")
        map_axes[-2].set_title(f"map {o + 1}: {ex['names'][o]}", fontsize=LABEL)
        map_axes[-1].imshow(pooled[o], cmap=colormap(cmap), vmin=-vlim, vmax=vlim, interpolation="nearest")
        map_axes[-1].set_title("ReLU, max-pool\n2x2: 12x12", fontsize=LABEL)
    for ax in fig.axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=map_axes, shrink=0.4, label=f"map value (shared, -{vlim:.3g} to +{vlim:.3g})")
    return save(
        fig, out_dir, "rgb_example",
        "A colour input of 26x26x3 (three real MNIST digits as the R, G and B channels) through six 3x3x3 kernels "
        "gives 24x24x6; ReLU and 2x2 max-pooling give 12x12x6. Each row shows one kernel's three per-channel slices "
        "(numbers in the cells, each slice on its own symmetric scale), its feature map (the sum over the channels "
        "of each slice's cross-correlation) and the pooled map, on the "
        f"{cmap} diverging map centred at zero with one scale, -{vlim:.3g} to +{vlim:.3g}. The title gives the "
        f"rest of the chain, shapes only: {chain_text()}.",
        "Top: the three grayscale input channels and their colour composite. Below: six rows, each with three small "
        "3x3 weight grids, a feature map and its pooled version.",
        dpi)
