"""The pictures TensorBoard shows: a conv layer's filters, or one image's feature maps, as one RGB grid.

A live view cannot know the run's final weight range, so every grid is zero-centred on its own scale: the diverging
map's middle is 0 and its ends are -m and +m, where m is the largest absolute value in that layer at that step
(``scale``, also written as a scalar beside the image). Shapes and signs are comparable from step to step; sizes are
read from the scale. Filters are laid out by the figures' grid rule (:func:`filterlab.viz.style.grid_shape`), numbered
row by row from 1; a filter with several input channels shows them as a small grid of its own inside its tile, by the
same rule. At most ``MAX_FILTERS`` filters are drawn, as in the figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib
import numpy as np

from ..core.budget import EVENT_GAP_PX as GAP_PX  # between tiles (the run's estimate counts the same)
from ..core.budget import EVENT_TILE_PX as TILE_PX  # a tile is scaled up by whole pixels to about this side
from ..viz.style import GAP_RGB8, MAX_FILTERS, grid_shape

SEAM_PX = 1  # between the input channels inside one tile
GAP_RGB = GAP_RGB8  # the figures' gap grey: neither end of a diverging map nor its zero
MAX_CHANNELS = 16  # input channels shown inside one tile at most


@dataclass(frozen=True)
class Grid:
    pixels: np.ndarray  # (H, W, 3) uint8
    scale: float  # the map's ends are -scale and +scale
    shown: int  # filters (or maps) drawn
    total: int
    channels: int  # input channels shown inside each tile

    def description(self, what: str, cmap: str) -> str:
        capped = f" Only the first {self.shown} of the {self.total} are drawn." if self.shown < self.total else ""
        inner = (f" Each tile holds the filter's first {self.channels} input channels as a small grid."
                 if self.channels > 1 else "")
        # TensorBoard keeps the description of a tag's first event for all its steps: nothing here may vary by step
        return (f"{what}, numbered row by row from 1, on the {cmap} map zero-centred on each step's own scale: "
                f"the middle colour is 0 and the ends are -m and +m, where m is the largest absolute value at that "
                f"step (the scalar of the same name with _scale gives m at every step).{inner}{capped}")


def upscale(side: int) -> int:
    return max(1, TILE_PX // max(side, 1))


def _tiles(w: np.ndarray) -> tuple[np.ndarray, int]:
    """(N, C, k, k) -> (N, th, tw) tiles with NaN seams between the input channels; and the channels shown."""
    c = min(w.shape[1], MAX_CHANNELS)
    if c == 1:
        return w[:, 0], 1
    rows, cols = grid_shape(c)
    n, _, h, k = w.shape
    out = np.full((n, rows * h + (rows - 1) * SEAM_PX, cols * k + (cols - 1) * SEAM_PX), np.nan)
    for j in range(c):
        r, q = divmod(j, cols)
        out[:, r * (h + SEAM_PX):r * (h + SEAM_PX) + h, q * (k + SEAM_PX):q * (k + SEAM_PX) + k] = w[:, j]
    return out, c


def grid(values: np.ndarray, cmap: str) -> Grid:
    """(N, C, k, k) filters or (N, h, w) maps -> one RGB grid, zero-centred on ±max|values|."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 3:
        v = v[:, None]
    total = v.shape[0]
    v = v[:MAX_FILTERS]
    finite = v[np.isfinite(v)]
    scale = float(np.abs(finite).max()) if finite.size else 0.0
    tiles, channels = _tiles(v)
    n, th, tw = tiles.shape
    up = upscale(max(th, tw))
    rows, cols = grid_shape(n)
    lut = (matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)
    idx = np.clip(np.round((np.nan_to_num(tiles) / (scale or 1.0) + 1) / 2 * 255), 0, 255).astype(np.intp)
    rgb = lut[idx]  # (n, th, tw, 3)
    rgb[np.isnan(tiles)] = GAP_RGB
    rgb = rgb.repeat(up, axis=1).repeat(up, axis=2)
    h, w = th * up, tw * up
    out = np.empty((rows * h + (rows - 1) * GAP_PX, cols * w + (cols - 1) * GAP_PX, 3), np.uint8)
    out[...] = GAP_RGB
    for i in range(n):
        r, q = divmod(i, cols)
        out[r * (h + GAP_PX):r * (h + GAP_PX) + h, q * (w + GAP_PX):q * (w + GAP_PX) + w] = rgb[i]
    return Grid(out, scale, n, total, channels)


def grey(image: np.ndarray) -> np.ndarray:
    """A uint8 image (H, W) or (H, W, C) as (H', W', 3), scaled up by whole pixels to about 4 tiles wide."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    if a.dtype != np.uint8:
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        a = np.round((a - lo) / ((hi - lo) or 1.0) * 255).astype(np.uint8)
    if a.shape[2] == 1:
        a = a.repeat(3, axis=2)
    a = a[..., :3]
    up = max(1, math.ceil(4 * TILE_PX / max(a.shape[:2])) // 2)
    return a.repeat(up, axis=0).repeat(up, axis=1)
