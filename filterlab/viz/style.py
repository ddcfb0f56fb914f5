"""Figures, each saved as a PNG with a caption and alt text beside it and inside it.

Accessibility rules kept by every function here: images in grayscale; signed weights on a colour-blind-safe
diverging map centred at zero whose scale (shared or per panel) is stated in the caption and on a colour bar; line
plots in the Okabe-Ito palette with distinct line styles, so no line is told apart by colour alone. The functions
take plain NumPy arrays, so they serve a run in progress and ``filterlab visualize`` alike, and they use
``matplotlib.figure.Figure`` directly (no pyplot, no global state).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from ..core.rundir import atomic_savefig, atomic_write_json

# Okabe & Ito (2008), ordered for contrast on white; yellow last.
OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442")
LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


@dataclass(frozen=True)
class FigureInfo:
    name: str
    path: Path
    caption: str
    alt: str


def new_figure(width: float, height: float, constrained: bool = False):
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


def sym_limit(*arrays: np.ndarray) -> float:
    """Half-width of a symmetric colour scale that holds every value."""
    m = max(float(np.abs(a).max()) for a in arrays if a.size)
    return m if m > 0 else 1.0


def hide_axes(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def step_axis(ax: Any, steps: np.ndarray) -> None:
    """Training steps on a symmetric-log axis when the run is long, so the fast first steps stay visible."""
    if len(steps) and steps[-1] > 200:
        ax.set_xscale("symlog", linthresh=10)
        ax.xaxis.set_minor_locator(NullLocator())  # symlog's many minor ticks cost a third of the drawing time
        ax.set_xlim(0, steps[-1] * 1.05)
        ax.set_xlabel("training step (linear to 10, log beyond)")
    else:
        ax.set_xlabel("training step")


def panel(ax: Any, img: np.ndarray, title: str, **kw: Any) -> Any:
    im = ax.imshow(img, interpolation="nearest", **kw)
    ax.set_title(title, fontsize=9)
    hide_axes(ax)
    return im


GAP_GREY = "0.72"  # between mosaic panels: neither black, white, nor the diverging map's zero


def mosaic(stack: np.ndarray, gap: int) -> np.ndarray:
    """(R, N, h, w) panels -> one (R*h + (R-1)*gap, N*w + (N-1)*gap) image with NaN gaps.

    One imshow of a mosaic draws in milliseconds where R*N separate axes take a second.
    """
    r, n, h, w = stack.shape
    out = np.full((r * h + (r - 1) * gap, n * w + (n - 1) * gap), np.nan)
    for i in range(r):
        for j in range(n):
            out[i * (h + gap):i * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = stack[i, j]
    return out


def cmap_of(name: str | None):
    cmap = matplotlib.colormaps["gray" if name is None else name].with_extremes(bad=GAP_GREY)
    return cmap


def grid(stack: np.ndarray, cols: int) -> np.ndarray:
    """(N, h, w) -> (rows, cols, h, w), padding the last row with NaN panels."""
    n, h, w = stack.shape
    rows = -(-n // cols)
    out = np.full((rows * cols, h, w), np.nan)
    out[:n] = stack
    return out.reshape(rows, cols, h, w)


def mosaic_axes(fig: Any, rect: tuple, tiles: np.ndarray, title: str, **kw: Any) -> Any:
    ax = fig.add_axes(rect)
    im = ax.imshow(tiles, interpolation="nearest", **kw)
    ax.set_title(title, fontsize=9)
    hide_axes(ax)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return im


