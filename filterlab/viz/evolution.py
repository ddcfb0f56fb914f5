"""Filter evolution over training, for any kind: a contact sheet (filters x steps) and an animated GIF.

The GIF is drawn with Pillow, not matplotlib (a hundred frames in a fraction of a second): every frame has the same
fixed palette and layout (the filters in a numbered square-ish grid, the reference image where the kind has one, a
colour bar with its scale, and the step and loss written on top), so only the filter tiles and the header change.
Its sidecar ``evolution_gif.json`` also lists every frame's step and loss, for the report's step slider.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from PIL import Image, ImageDraw

from ..core.rundir import atomic_write_json
from .filters import Reference
from .style import (
    GAP_RGB8,
    LABEL,
    TICK,
    FigureInfo,
    InchLayout,
    capped,
    cmap_of,
    colorbar,
    colorbar_space,
    grid_shape,
    mosaic,
    pil_font,
    save,
    signed_colours,
    text_width_in,
    tick_text,
    weight_scale,
    write_gif,
)

SHEET_ROWS = 16  # filters shown as rows of the contact sheet at most


def evolution_columns(steps: Sequence[int] | np.ndarray, max_cols: int = 12) -> list[int]:
    """Indices of the snapshots shown in the contact sheet: the first, the last, and between them the snapshots
    nearest to geometrically spaced steps, since filters change fastest early on."""
    steps = np.asarray(steps)
    if len(steps) <= max_cols:
        return list(range(len(steps)))
    targets = np.geomspace(1, max(int(steps[-1]), 2), max_cols - 1)
    picked = {0, len(steps) - 1}
    for t in targets:
        picked.add(int(np.abs(steps - t).argmin()))
    return sorted(picked)


def sheet_panels(filters: np.ndarray, cols: Sequence[int], max_rows: int = SHEET_ROWS) -> np.ndarray:
    """(S, N, k, k) snapshots -> (rows, len(cols), k, k) panels: filters as rows, the chosen steps as columns."""
    n = min(filters.shape[1], max_rows)
    return np.stack([filters[list(cols), i] for i in range(n)])


def sheet_figure(panels: np.ndarray, step_labels: list[str], layer: str, cmap: str, vlim: float,
                 bar_label: str = "weight") -> Any:
    """Filters as rows (numbered from 1), steps as columns, one colour bar; laid out in inches."""
    rows, ncols, k = panels.shape[0], panels.shape[1], panels.shape[-1]
    tile = 0.62 if k > 8 else 0.42
    gap = max(1, round(0.06 / (tile / k)))
    tiles = mosaic(panels, gap)
    px = tile / k
    mos_w, mos_h = tiles.shape[1] * px, tiles.shape[0] * px
    widest = max(text_width_in(s, TICK) for s in step_labels)
    rotate = widest > tile * 0.9
    head = 0.45 + (widest if rotate else 0.15)
    body = max(mos_h, 1.45)
    layout = InchLayout(0.75 + mos_w + colorbar_space(-vlim, vlim), head + body + 0.2)
    ax = layout.axes(0.75, head + (body - mos_h) / 2, mos_w, mos_h)
    im = ax.imshow(tiles, cmap=cmap_of(cmap), vmin=-vlim, vmax=vlim, interpolation="nearest")
    ax.set_xticks([j * (k + gap) + (k - 1) / 2 for j in range(ncols)], step_labels, fontsize=TICK,
                  rotation=90 if rotate else 0)
    ax.set_yticks([i * (k + gap) + (k - 1) / 2 for i in range(rows)], [str(i + 1) for i in range(rows)],
                  fontsize=TICK)
    ax.tick_params(length=0)
    ax.xaxis.set_ticks_position("top")
    ax.set_xlabel("training step", fontsize=LABEL)
    ax.xaxis.set_label_position("top")
    ax.set_ylabel(f"{layer} filter", fontsize=LABEL)
    for spine in ax.spines.values():
        spine.set_visible(False)
    length = max(mos_h, 1.4)
    colorbar(layout, im, 0.75 + mos_w + 0.25, head + (body - length) / 2, length, bar_label)
    return layout.fig


def sheet(filters: np.ndarray, steps: np.ndarray, out_dir: Path, cmap: str, dpi: int, layer: str,
          name: str = "evolution", summed_over: int = 0) -> FigureInfo:
    """The contact sheet of (S, N, k, k) snapshots; ``summed_over``: the input channels each tile sums (a deeper
    layer's filters drawn one k x k tile each, as in its filter-change figure, on the same scale)."""
    s_count, n = filters.shape[0], filters.shape[1]
    vlim = weight_scale(filters[:, :capped(n)[0]])  # the run's one scale, as in every other figure of its filters
    cols = evolution_columns(steps)
    panels = sheet_panels(filters, cols)
    bar = f"weight, summed over {summed_over} inputs" if summed_over else "weight"
    fig = sheet_figure(panels, [f"{int(steps[c]):,}" for c in cols], layer, cmap, vlim, bar)
    rows = panels.shape[0]
    shown = f"the first {rows} of {n} filters" if rows < n else f"all {n} filters"
    caption = (f"Filter evolution: {shown} of {layer} (rows, numbered from 1) at {len(cols)} of the {s_count} snapshot "
               f"steps (columns, from step {int(steps[0])} to {int(steps[-1])}), raw weights on the {cmap} diverging "
               f"map centred at zero with one scale for every panel, -{vlim:.3g} to +{vlim:.3g}."
               + (f" Each filter spans {summed_over} input channels; each tile is their sum (the scale is that of the "
                  "sums, as in the layer's filter-change figure)." if summed_over else " evolution.gif shows every "
                  "snapshot."))
    alt = (f"A grid of small filter images, one row per filter ({rows}) and one column per training step "
           f"({len(cols)}), from the initial filters on the left to the filters after {int(steps[-1])} steps on the "
           "right.")
    return save(fig, out_dir, name, caption, alt, dpi)


# ---------------------------------------------------------------------------------------------------------------------
# The GIF


GIF_LEVELS = 200  # palette entries for the colour map
GIF_GREYS = 50  # then a grey ramp for the reference image
GIF_GAP, GIF_WHITE, GIF_BLACK = GIF_LEVELS + GIF_GREYS, GIF_LEVELS + GIF_GREYS + 1, GIF_LEVELS + GIF_GREYS + 2
GIF_MAX_W = 520  # pixels the filter grid may take
HEADER_H = 36  # the frame's top strip, holding step and loss


def gif_palette(cmap: str) -> list[int]:
    colours = (matplotlib.colormaps[cmap](np.linspace(0, 1, GIF_LEVELS))[:, :3] * 255).round().astype(int)
    greys = np.repeat(np.linspace(0, 255, GIF_GREYS).round().astype(int)[:, None], 3, axis=1)
    return [*colours.ravel().tolist(), *greys.ravel().tolist(), *GAP_RGB8, 255, 255, 255, 0, 0, 0]


def gif_indices(panels: np.ndarray, vlim: float) -> np.ndarray:
    """Weights -> palette indices on the fixed scale [-vlim, vlim]; NaN (gaps) -> the gap grey."""
    idx = np.clip(np.round((np.nan_to_num(panels) + vlim) / (2 * vlim) * (GIF_LEVELS - 1)), 0, GIF_LEVELS - 1)
    idx = idx.astype(np.uint8)
    idx[np.isnan(panels)] = GIF_GAP
    return idx


@dataclass(frozen=True)
class GifLayout:
    """Where everything sits in a frame, in pixels: the grid of n k x k filters scaled by ``scale``."""

    n: int
    k: int
    cols: int
    scale: int
    gap: int  # pixels between tiles
    band: int  # pixels above each tile row, for its numbers
    grid_x: int
    grid_y: int
    ref_size: int
    width: int
    height: int

    def tile_origin(self, i: int) -> tuple[int, int]:
        r, c = divmod(i, self.cols)
        return (self.grid_x + c * (self.k * self.scale + self.gap),
                self.grid_y + r * (self.k * self.scale + self.band) + self.band)


def gif_layout(n: int, k: int, has_ref: bool) -> GifLayout:
    rows, cols = grid_shape(n)
    scale = max(1, min(96 // k, GIF_MAX_W // (cols * k)))
    tile = k * scale
    gap, band = 6, 16
    ref_size = 112 if has_ref else 0
    grid_x = 12 + (ref_size + 24 if has_ref else 0)
    grid_y = HEADER_H + 4
    grid_w, grid_h = cols * tile + (cols - 1) * gap, rows * (tile + band)
    width = grid_x + grid_w + 90
    height = grid_y + max(grid_h, ref_size + 20, 170) + 12
    return GifLayout(n, k, cols, scale, gap, band, grid_x, grid_y, ref_size, max(width, 380), height)


def _base_frame(lay: GifLayout, palette: list[int], ref: Reference | None, vlim: float) -> Image.Image:
    """Everything that is the same in every frame: numbers, reference image, colour bar and its labels."""
    frame = Image.new("P", (lay.width, lay.height), GIF_WHITE)
    frame.putpalette(palette)
    draw = ImageDraw.Draw(frame)
    small = pil_font()
    for i in range(lay.n):
        x, y = lay.tile_origin(i)
        draw.text((x + lay.k * lay.scale // 2, y - 2), str(i + 1), fill=GIF_BLACK, font=small, anchor="mb")
    if ref is not None:
        img = ref.image.astype(float)
        span = float(img.max() - img.min()) or 1.0
        grey = (GIF_LEVELS + np.round((img - img.min()) / span * (GIF_GREYS - 1))).astype(np.uint8)
        body = Image.fromarray(grey, mode="P").resize((lay.ref_size, lay.ref_size), Image.Resampling.NEAREST)
        frame.paste(body, (12, lay.grid_y + lay.band))
        draw.text((12 + lay.ref_size // 2, lay.grid_y + lay.band - 2), ref.title, fill=GIF_BLACK, font=small,
                  anchor="mb")
    bar_x, bar_y, bar_h = lay.width - 78, lay.grid_y + lay.band, max(lay.height - lay.grid_y - lay.band - 24, 120)
    ramp = np.linspace(GIF_LEVELS - 1, 0, bar_h).round().astype(np.uint8)[:, None].repeat(14, axis=1)
    frame.paste(Image.fromarray(ramp, mode="P"), (bar_x, bar_y))
    for frac, text in ((0.0, f"+{vlim:.3g}"), (0.5, "0"), (1.0, tick_text(-vlim))):
        draw.text((bar_x + 18, bar_y + round(frac * (bar_h - 1))), text, fill=GIF_BLACK, font=small, anchor="lm")
    draw.text((bar_x + 7, bar_y - 4), "weight", fill=GIF_BLACK, font=small, anchor="mb")
    return frame


def frame_label(steps: np.ndarray, loss: np.ndarray, j: int, layer: str) -> str:
    """The header of frame j: layer, step and loss."""
    lv = float(loss[j]) if j < len(loss) else float("nan")
    return (f"{layer + ' filters, ' if layer else ''}step {int(steps[j]):,} of {int(steps[-1]):,}   "
            f"loss {'-' if not np.isfinite(lv) else f'{lv:.4g}'}")


def gif_frames(filters: np.ndarray, steps: np.ndarray, loss: np.ndarray, cmap: str, vlim: float,
               ref: Reference | None = None, layer: str = "") -> list[Image.Image]:
    """One palette image per snapshot of (S, N, k, k) filters: the same palette, scale and layout in every frame."""
    n, k = filters.shape[1], filters.shape[-1]
    lay = gif_layout(n, k, ref is not None)
    base = _base_frame(lay, gif_palette(cmap), ref, vlim)
    header = pil_font(15)
    frames = []
    for j in range(len(filters)):
        frame = base.copy()
        for i in range(n):
            tile = Image.fromarray(gif_indices(filters[j, i], vlim), mode="P")
            frame.paste(tile.resize((k * lay.scale, k * lay.scale), Image.Resampling.NEAREST), lay.tile_origin(i))
        ImageDraw.Draw(frame).text((12, 12), frame_label(steps, loss, j, layer), fill=GIF_BLACK, font=header)
        frames.append(frame)
    return frames


def frames_record(steps: np.ndarray, loss: np.ndarray, lay: GifLayout, layer: str) -> dict[str, Any]:
    """What the report's step slider needs besides the GIF: each frame's step and loss, and where the tiles are."""
    values = np.asarray(loss, dtype=float)
    return {"steps": [int(s) for s in steps],
            "loss": [float(values[j]) if j < len(values) and np.isfinite(values[j]) else None
                     for j in range(len(steps))],
            "layer": layer, "n": lay.n, "k": lay.k, "scale": lay.scale,
            "origins": [list(lay.tile_origin(i)) for i in range(lay.n)],
            "header": [0, 0, lay.width, HEADER_H], "labels": [frame_label(steps, loss, j, layer)
                                                             for j in range(len(steps))]}


def gif(filters: np.ndarray, steps: np.ndarray, loss: np.ndarray, out_dir: Path, cmap: str, layer: str,
        ref: Reference | None) -> FigureInfo:
    s_count, n = filters.shape[0], filters.shape[1]
    shown, note = capped(n)
    vlim = weight_scale(filters[:, :shown])
    frames = gif_frames(filters[:, :shown], steps, loss, cmap, vlim, ref, layer)
    out_dir.mkdir(parents=True, exist_ok=True)  # as style.save does: the GIF may be the first file drawn there
    path = out_dir / "evolution.gif"
    write_gif(frames, path, 120)
    neg, pos = signed_colours(cmap)
    with_ref = f", beside {ref.title}" if ref is not None else ""
    caption = (f"Animation of {layer}'s {n} filters over the {s_count} snapshots (one frame each; step and loss "
               f"written on every frame), numbered from 1{with_ref}, on the {cmap} map with one fixed scale, "
               f"-{vlim:.3g} to +{vlim:.3g}, shown on the colour bar.{note}")
    alt = (f"An animation of {shown} filters in {neg} and {pos} changing over {int(steps[-1])} training steps, "
           f"one frame per snapshot.")
    frames_meta = frames_record(steps, loss, gif_layout(shown, filters.shape[-1], ref is not None), layer)
    atomic_write_json(out_dir / "evolution_gif.json", {"figure": path.name, "caption": caption, "alt": alt,
                                                       "frames": frames_meta})
    return FigureInfo("evolution_gif", path, caption, alt)


def evolution_figures(filters: np.ndarray, steps: np.ndarray, loss: np.ndarray, out_dir: Path, cmap: str, dpi: int,
                      layer: str, ref: Reference | None = None) -> list[FigureInfo]:
    """``filters``: (S, N, k, k) snapshots of one layer (first input channel) at ``steps``, ``loss`` at each;
    ``ref``: an image to show beside the GIF's filters (the one a single-image run trains on)."""
    return [sheet(filters, steps, out_dir, cmap, dpi, layer), gif(filters, steps, loss, out_dir, cmap, layer, ref)]
