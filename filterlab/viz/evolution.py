"""Filter evolution over training, for any kind: a contact sheet (filters x steps) and an animated GIF."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw

from ..core.rundir import atomic_open, atomic_write_json
from .style import FigureInfo, cmap_of, grid, mosaic, new_figure, save, sym_limit


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


def contact_sheet(filters: np.ndarray, cols: Sequence[int], max_rows: int = 16) -> np.ndarray:
    """(S, N, k, k) snapshots -> (rows, len(cols), k, k) panels: filters as rows, the chosen steps as columns."""
    n = min(filters.shape[1], max_rows)
    return np.stack([filters[list(cols), i] for i in range(n)])


GIF_LEVELS = 250  # palette entries for the colour map; then gap grey, white, black
GIF_GAP, GIF_WHITE, GIF_BLACK = GIF_LEVELS, GIF_LEVELS + 1, GIF_LEVELS + 2


def gif_palette(cmap: str) -> list[int]:
    colours = (matplotlib.colormaps[cmap](np.linspace(0, 1, GIF_LEVELS))[:, :3] * 255).round().astype(int)
    return [*colours.ravel().tolist(), 184, 184, 184, 255, 255, 255, 0, 0, 0]


def gif_indices(panels: np.ndarray, vlim: float) -> np.ndarray:
    """Weights -> palette indices on the fixed scale [-vlim, vlim]; NaN (gaps) -> the gap grey."""
    idx = np.clip(np.round((np.nan_to_num(panels) + vlim) / (2 * vlim) * (GIF_LEVELS - 1)), 0, GIF_LEVELS - 1)
    idx = idx.astype(np.uint8)
    idx[np.isnan(panels)] = GIF_GAP
    return idx


def gif_frames(filters: np.ndarray, steps: np.ndarray, loss: np.ndarray, cmap: str, vlim: float) -> list:
    """One palette image per snapshot: every filter in a grid, one shared palette and scale, step and loss on top.

    The frames share one fixed palette, so the GIF needs no per-frame colour quantisation (and none can shift a
    colour between frames).
    """
    n, k = filters.shape[1], filters.shape[-1]
    palette = gif_palette(cmap)
    grid_cols = min(8, n)
    scale = max(2, 96 // k)
    frames = []
    for j in range(len(filters)):
        idx = gif_indices(mosaic(grid(filters[j], grid_cols), 1), vlim)
        size = (idx.shape[1] * scale, idx.shape[0] * scale)
        body = Image.fromarray(idx, mode="P").resize(size, Image.Resampling.NEAREST)
        frame = Image.new("P", (max(body.width, 260), body.height + 34), GIF_WHITE)
        frame.putpalette(palette)
        frame.paste(body, (0, 34))
        lv = float(loss[j]) if j < len(loss) else float("nan")
        text = f"step {int(steps[j])}   loss {'-' if not np.isfinite(lv) else f'{lv:.4g}'}   scale +/-{vlim:.3g}"
        ImageDraw.Draw(frame).text((6, 10), text, fill=GIF_BLACK)
        frames.append(frame)
    return frames


def evolution_figures(filters: np.ndarray, steps: np.ndarray, loss: np.ndarray, out_dir: Path, cmap: str, dpi: int,
                      layer: str) -> list[FigureInfo]:
    """``filters``: (S, N, k, k) snapshots of one layer (first input channel) at ``steps``, ``loss`` at each."""
    out: list[FigureInfo] = []
    s_count, n, k = filters.shape[0], filters.shape[1], filters.shape[-1]
    vlim = sym_limit(filters)
    cols = evolution_columns(steps)
    panels = contact_sheet(filters, cols)
    rows = panels.shape[0]
    gap = max(1, k // 7)
    tiles = mosaic(panels, gap)
    panel_in = 0.62 if k > 8 else 0.42
    mos_w, mos_h = panel_in * len(cols) * (k + gap) / k, panel_in * rows * (k + gap) / k
    width, height = mos_w + 2.2, mos_h + 1.0
    fig = new_figure(width, height)
    ax = fig.add_axes((0.9 / width, 0.25 / height, mos_w / width, mos_h / height))
    im = ax.imshow(tiles, cmap=cmap_of(cmap), vmin=-vlim, vmax=vlim, interpolation="nearest")
    ax.set_xticks([j * (k + gap) + (k - 1) / 2 for j in range(len(cols))], [str(int(steps[c])) for c in cols],
                  fontsize=7, rotation=90)
    ax.set_yticks([i * (k + gap) + (k - 1) / 2 for i in range(rows)], [str(i + 1) for i in range(rows)], fontsize=7)
    ax.tick_params(length=0)
    ax.xaxis.set_ticks_position("top")
    ax.set_xlabel("training step", fontsize=9)
    ax.xaxis.set_label_position("top")
    ax.set_ylabel(f"{layer} filter", fontsize=9)
    for spine in ax.spines.values():
        spine.set_visible(False)
    cax = fig.add_axes(((width - 1.0) / width, 0.25 / height, 0.15 / width, mos_h / height))
    fig.colorbar(im, cax=cax, label="weight")
    shown = f"the first {rows} of {n} filters" if rows < n else f"all {n} filters"
    out.append(save(
        fig, out_dir, "evolution",
        f"Filter evolution: {shown} of {layer} (rows) at {len(cols)} of the {s_count} snapshot steps (columns, from "
        f"step {int(steps[0])} to {int(steps[-1])}), raw weights on the {cmap} diverging map centred at zero with "
        f"one scale for every panel, -{vlim:.3g} to +{vlim:.3g}. evolution.gif shows every snapshot.",
        "A grid of small filter images, one row per filter and one column per training step, changing from noise "
        "on the left to their trained form on the right.",
        dpi))

    # The GIF: one frame per snapshot, every filter on the same fixed scale, step and loss written in each frame
    frames = gif_frames(filters, steps, loss, cmap, vlim)
    gif = out_dir / "evolution.gif"
    with atomic_open(gif, ".gif") as f:
        frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:], duration=120, loop=0,
                       optimize=False)
    caption = (f"Animation of {layer}'s {n} filters over the {s_count} snapshots (one frame each, step and loss "
               f"written on every frame), on the {cmap} map with one fixed scale, -{vlim:.3g} to +{vlim:.3g}.")
    alt = f"An animation of {n} filters changing from random noise to their trained form over {int(steps[-1])} steps."
    atomic_write_json(out_dir / "evolution_gif.json", {"figure": gif.name, "caption": caption, "alt": alt})
    out.append(FigureInfo("evolution_gif", gif, caption, alt))
    return out


# ---------------------------------------------------------------------------------------------------------------------
# The convolution explainer


