"""What the explainer's commands write and print, so the commands in ``filterlab.cli`` only parse and print.

Each function takes input already loaded and checked (so nothing is written for bad input), writes its files into
``target`` and returns the lines to print.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.geometry import size_arithmetic
from ..viz.style import FigureInfo
from .animation import animate
from .figures import convolve_figure
from .gallery import gallery_figure
from .page import write_page
from .rgb import rgb_example, rgb_figure
from .shapes import RGB_INPUT, RGB_LAYERS, shapes_lines
from .walkthrough import ConvCase

DPI = 110


def _figure_lines(infos: list[FigureInfo]) -> list[str]:
    return [f"figure: {info.path}" for info in infos]


def draw_case(case: ConvCase, target: Path, cmap: str, *, animation: bool = False, html: bool = False) -> list[str]:
    """The static figure, and the animation and the HTML page when asked for."""
    infos = [convolve_figure(case, target, cmap, DPI)]
    if animation:
        infos += animate(case, target, cmap)
    lines = _figure_lines(infos)
    if html:
        lines.append(f"page: {write_page(case, target, cmap)}")
    return lines


def rgb_lines(target: Path, cmap: str) -> list[str]:
    """The colour example: its first block computed and drawn, the whole chain's shapes printed."""
    ex = rgb_example()
    lines = ["input: 26x26x3 (R, G, B = the MNIST test split's first 7, 3 and 1, cropped to 26x26)",
             "six 3x3x3 kernels, stride 1, no padding: each output channel sums its three per-channel "
             "cross-correlations",
             "  " + size_arithmetic("height", 26, 3, 1, 0, 1), "  " + size_arithmetic("width", 26, 3, 1, 0, 1),
             f"feature maps: {ex['maps'].shape[1]}x{ex['maps'].shape[2]}x{ex['maps'].shape[0]}; ReLU and 2x2 "
             f"max-pool: {ex['pooled'].shape[1]}x{ex['pooled'].shape[2]}x{ex['pooled'].shape[0]}"]
    lines += [f"  kernel {i + 1}: {name}" for i, name in enumerate(ex["names"])]
    lines += ["the whole chain (filterlab shapes --rgb):", *("  " + line for line in shapes_lines(RGB_LAYERS,
                                                                                                 RGB_INPUT))]
    return lines + _figure_lines([rgb_figure(ex, target, cmap, DPI)])


def gallery_lines(x: np.ndarray, desc: str, target: Path, cmap: str) -> list[str]:
    return [f"input: {desc}, {x.shape[0]}x{x.shape[1]}", *_figure_lines([gallery_figure(x, desc, target, cmap, DPI)])]
