"""The kernel gallery: every built-in kernel applied to one digit, in one figure, each panel titled with its numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..viz.style import LABEL, TICK, FigureInfo, new_figure, save, sym_limit
from .arithmetic import correlate2d
from .kernels import KERNELS, kernel_text
from .style import colormap

COLS = 7


def gallery_data(x: np.ndarray, padding: int = 1) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, kernel, output) for every built-in kernel, cross-correlated with ``x`` (stride 1, ``padding``)."""
    return [(name, k, correlate2d(x, k, 1, padding)) for name, (k, _) in KERNELS.items()]


def gallery_figure(x: np.ndarray, x_desc: str, out_dir: Path, cmap: str, dpi: int, padding: int = 1) -> FigureInfo:
    rows = gallery_data(x, padding)
    n = len(rows) + 1
    nrows = -(-n // COLS)
    fig = new_figure(1.95 * COLS, 3.0 * nrows, constrained=True)
    axes = fig.subplots(nrows, COLS).ravel()
    axes[0].imshow(x, cmap="gray", interpolation="nearest")
    axes[0].set_title(f"input {x.shape[0]}x{x.shape[1]}\n(grey, {x.min():.3g} to {x.max():.3g})", fontsize=LABEL)
    scales = []
    for ax, (name, k, out) in zip(axes[1:], rows, strict=False):
        v = sym_limit(out)
        scales.append(v)
        ax.imshow(out, cmap=colormap(cmap), vmin=-v, vmax=v, interpolation="nearest")
        ax.set_title(f"{name}\n{kernel_text(k)}", fontsize=TICK, family="monospace", loc="center")
        ax.set_xlabel(f"scale -{v:.3g} to +{v:.3g}", fontsize=TICK)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[n:]:
        ax.set_visible(False)
    names = ", ".join(name for name, _, _ in rows)
    caption = (f"Every built-in kernel ({names}) cross-correlated with {x_desc} (stride 1, padding {padding}, so each "
               f"output is {rows[0][2].shape[0]}x{rows[0][2].shape[1]}). Each panel is titled with its kernel's "
               f"numbers and drawn on the {cmap} diverging map centred at zero with its own symmetric scale, written "
               f"under it (from {min(scales):.3g} to {max(scales):.3g}).")
    alt = (f"A grid of {n} small images: the input digit, then the digit as each of {len(rows)} kernels sees it: "
           "blurred, sharpened, edges in different directions, embossed.")
    return save(fig, out_dir, "kernel_gallery", caption, alt, dpi)
