"""Drawing only: the insight figures from data computed elsewhere (captions come from the compute modules).

Conventions kept: filters numbered from 1; square-ish grids (16 filters as 4x4, 32 as 4x8); signed weights on a
colour-blind-safe diverging map with one symmetric scale per figure; non-negative maps on cividis; image pixels in
grayscale, with the parts of a receptive field that fall outside the image in light blue (Okabe-Ito sky blue), which
no grayscale pixel can be mistaken for.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from filterlab.insight.change import Change
from filterlab.insight.featvis import FeatureVis
from filterlab.insight.patches import TopPatches
from filterlab.insight.saliency import Saliency, ink_mask
from filterlab.viz.style import LABEL, OKABE_ITO, TICK, InchLayout, cmap_of, new_figure, signed_colours

PAD_RGB = (0x56 / 255, 0xB4 / 255, 0xE9 / 255)  # outside the image
GAP_RGB = (0.8, 0.8, 0.8)  # between blocks: light grey, so white ink at a tile's edge still shows its edge
SEAM_RGB = (0.45, 0.45, 0.45)  # between the patches of one block
GAP_GREY = "0.72"  # between filter tiles on a diverging map: neither end nor its zero


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) of a square-ish grid: 16 -> 4x4, 32 -> 4x8, 64 -> 8x8, 5 -> 2x3."""
    rows = 2 ** int(math.log2(max(n, 1)) // 2)
    return rows, -(-n // rows)


def place(tiles: np.ndarray, rows: int, cols: int, gap: int, fill: float | tuple = np.nan
          ) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """(N, h, w[, 3]) tiles -> one image with ``gap`` pixels of ``fill`` between them, and each tile's top-left."""
    n, h, w = tiles.shape[:3]
    extra = tiles.shape[3:]
    out = np.empty((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, *extra))
    out[...] = fill
    origins = []
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = r * (h + gap), c * (w + gap)
        out[y:y + h, x:x + w] = tiles[i]
        origins.append((y, x))
    return out, origins


def filter_tiles(w: np.ndarray) -> np.ndarray:
    """(N, Cin, k, k) weights -> (N, th, tw): each filter's input channels in a square-ish grid, NaN seams."""
    if w.ndim == 3:
        return w
    if w.shape[1] == 1:
        return w[:, 0]
    r, c = grid_shape(w.shape[1])
    return np.stack([place(f, r, c, 1)[0] for f in w])


def _bare(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _number_tiles(ax: Any, origins: list[tuple[int, int]], tile_w: int, size: float) -> None:
    for i, (y, x) in enumerate(origins):
        ax.text(x + tile_w / 2 - 0.5, y - 0.7, str(i + 1), ha="center", va="bottom", fontsize=size)


def draw_filter_change(ch: Change, cmap: str, vlim: float) -> Any:
    """Initial, trained and change panels on one symmetric scale; filters numbered from 1."""
    panels = [("initial (step 0)", ch.initial), (f"trained (step {int(ch.steps[-1])})", ch.final),
              ("change = trained - initial", ch.final - ch.initial)]
    rows, cols = grid_shape(ch.filters)
    tiles = [filter_tiles(p) for _, p in panels]
    th, tw = tiles[0].shape[1:]
    gap = max(2, th // 3)
    mosaics = [place(t, rows, cols, gap) for t in tiles]
    mh, mw = mosaics[0][0].shape
    side_by_side = cols <= rows
    pw = 2.6 if side_by_side else min(9.0, 0.62 * cols * (tw + gap) / max(th, 5))
    ph = pw * (mh + gap) / mw
    n_across, n_down = (3, 1) if side_by_side else (1, 3)
    width, height = 0.3 + n_across * (pw + 0.35) + 1.1, n_down * (ph + 0.6) + 0.15
    fig = new_figure(width, height)
    im = None
    for j, ((title, _), (mos, origins)) in enumerate(zip(panels, mosaics, strict=True)):
        col, row = (j, 0) if side_by_side else (0, j)
        x0 = 0.3 + col * (pw + 0.35)
        y0 = height - (row + 1) * (ph + 0.6) + 0.05
        ax = fig.add_axes((x0 / width, y0 / height, pw / width, ph / height))
        im = ax.imshow(mos, cmap=cmap_of(cmap), vmin=-vlim, vmax=vlim, interpolation="nearest")
        ax.set_ylim(mh - 0.5, -gap - 0.5)  # room above the first row for its numbers
        _number_tiles(ax, origins, tw, 6.5)
        ax.set_title(title, fontsize=9, pad=9)  # above the row of filter numbers
        _bare(ax)
    assert im is not None  # three panels were drawn
    cax = fig.add_axes(((width - 1.0) / width, 0.25 / height, 0.14 / width, (height - 0.6) / height))
    fig.colorbar(im, cax=cax, label="weight")
    return fig


def draw_weight_histograms(layer: str, edges: np.ndarray, counts: np.ndarray, steps: np.ndarray) -> Any:
    """Heat map of the weight histogram (rows: weight value, columns: snapshots)."""
    fig = new_figure(7.0, 3.4)
    ax = fig.add_axes((0.14, 0.17, 0.69, 0.72))
    s = len(steps)
    im = ax.imshow(np.log10(1 + counts.T), origin="lower", aspect="auto", cmap="cividis", interpolation="nearest",
                   extent=(-0.5, s - 0.5, edges[0], edges[-1]))
    shown = sorted(set(np.linspace(0, s - 1, min(s, 9)).round().astype(int).tolist()))
    ax.set_xticks(shown, [str(int(steps[i])) for i in shown], fontsize=8)
    ax.set_xlabel("training step (one column per snapshot; columns are evenly spaced, steps are not)", fontsize=8)
    ax.set_ylabel(f"{layer} weight", fontsize=9)
    ax.axhline(0, color="white", linewidth=0.6, linestyle=":")
    ax.set_title(f"{layer}: distribution of all weights over training", fontsize=10)
    cax = fig.add_axes((0.86, 0.17, 0.025, 0.72))
    fig.colorbar(im, cax=cax, label="log10(1 + weights per bin)")
    return fig


def to_rgb(patches: np.ndarray) -> np.ndarray:
    """(m, S, S) grey or (m, S, S, 3) colour pixels in [0, 1], NaN outside the image -> (m, S, S, 3) RGB with that
    region in PAD_RGB."""
    rgb = np.repeat(patches[..., None], 3, axis=-1) if patches.ndim == 3 else patches.copy()
    rgb[np.isnan(rgb).any(axis=-1)] = PAD_RGB
    return rgb


def _blocks(per_channel: list[np.ndarray], inner_cols: int) -> tuple[np.ndarray, int]:
    """Each channel's (m, S, S, 3) tiles placed in a block ``inner_cols`` wide; returns (C, bh, bw, 3) blocks."""
    out = []
    for tiles in per_channel:
        rows = -(-len(tiles) // inner_cols)
        out.append(place(tiles, rows, inner_cols, 1, SEAM_RGB)[0])
    return np.stack(out), out[0].shape[1]


def _block_figure(blocks: np.ndarray, titles: list[str], inch_per_px: float, suptitle: str) -> Any:
    """Blocks in a square-ish grid (transposed for wide blocks, so the figure stays square-ish), titled."""
    rows, cols = grid_shape(len(blocks))
    if blocks.shape[2] > 2 * blocks.shape[1]:
        rows, cols = cols, rows
    bh, bw = blocks.shape[1:3]
    gap = max(4, bh // 4)
    mos, origins = place(blocks, rows, cols, gap, GAP_RGB)
    mh, mw = mos.shape[:2]
    top_px = gap + 2
    w_in, h_in = mw * inch_per_px, (mh + top_px) * inch_per_px
    if w_in < 6.0:  # room for the title line
        h_in, w_in = h_in * 6.0 / w_in, 6.0
    width, height = w_in + 0.3, h_in + 0.45
    fig = new_figure(width, height)
    ax = fig.add_axes((0.15 / width, 0.1 / height, w_in / width, h_in / height))
    ax.imshow(mos, interpolation="nearest")
    ax.set_ylim(mh - 0.5, -top_px - 0.5)
    for t, (y, x) in zip(titles, origins, strict=True):
        ax.text(x + bw / 2 - 0.5, y - 0.8, t, ha="center", va="bottom", fontsize=7)
    _bare(ax)
    fig.suptitle(suptitle, fontsize=9, y=1 - 0.08 / height, va="top")
    return fig


def draw_top_patches(tp: TopPatches) -> Any:
    k = tp.values.shape[1]
    inner = math.ceil(math.sqrt(k))
    blocks, _ = _blocks([to_rgb(tp.patches[c]) for c in range(tp.channels)], inner)
    titles = [f"{c + 1}: {tp.values[c, 0]:.3g}" for c in range(tp.channels)]
    s = tp.field.size
    return _block_figure(blocks, titles, max(0.012, 0.42 / s / inner * 3.2 / grid_shape(tp.channels)[1] ** 0.25),
                         f"{tp.layer}: the {k} strongest {s}x{s} test patches per filter\n"
                         "title: filter number: strongest activation")


def draw_feature_vis(fv: FeatureVis, tp: TopPatches, show: int = 3) -> Any:
    """Per filter: the optimised receptive field, then its ``show`` best dataset patches, in one row."""
    s = tp.field.size
    sep = np.empty((s, max(2, s // 4), 3))
    sep[...] = GAP_RGB  # a wider, lighter gap sets the optimised input apart from the patches
    blocks = np.stack([np.concatenate([to_rgb(fv.crops[c][None])[0], sep,
                                       place(to_rgb(tp.patches[c, :show]), 1, show, 1, SEAM_RGB)[0]], axis=1)
                       for c in range(len(fv.crops))])
    titles = [f"{c + 1}: {fv.value[c]:.3g} vs {tp.values[c, 0]:.3g}" for c in range(len(blocks))]
    return _block_figure(blocks, titles, max(0.016, 0.55 / s), f"{fv.layer}: optimised input, then the {show} "
                         "strongest test patches\ntitle: filter number: optimised vs best patch activation")


def _ink_outline(ax: Any, image: np.ndarray) -> None:
    ax.contour(ink_mask(image).astype(float), levels=[0.5], colors=[OKABE_ITO[5]], linewidths=0.8,
               linestyles="--")


def draw_saliency(s: Saliency, cmap: str = "RdBu_r") -> Any:
    """Input, class probabilities, Grad-CAM's signed map before its ReLU, Grad-CAM, HiResCAM, gradient x input."""
    fig = new_figure(15.2, 3.1)
    step, width = 1 / 6, 0.145
    axes = [fig.add_axes((0.008 + step * i, 0.1, width, 0.75)) for i in range(6)]
    grey = s.image if s.image.ndim == 2 else s.image.mean(axis=-1)
    axes[0].imshow(s.image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes[0].set_title("input", fontsize=9)
    bars = axes[1]
    bars.set_position((step + 0.03, 0.16, 0.11, 0.69))
    colours = [OKABE_ITO[1] if i == s.predicted else "0.6" for i in range(len(s.probs))]
    bars.barh(range(len(s.probs)), 100 * s.probs, color=colours)
    bars.set_yticks(range(len(s.probs)), s.classes, fontsize=8)
    bars.invert_yaxis()
    bars.set_xlim(0, 100)
    bars.set_xlabel("probability (%)", fontsize=8)
    bars.set_title(f"predicted {s.classes[s.predicted]} ({100 * s.probs[s.predicted]:.1f}%)", fontsize=9)
    h, w = grey.shape
    signed = s.layer_maps["gradcam"]
    lim = float(np.abs(signed).max()) or 1.0
    # one square per position of the layer, laid over the input's pixel grid so the ink outline lines up
    axes[2].imshow(signed, cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest",
                   extent=(-0.5, w - 0.5, h - 0.5, -0.5))
    _ink_outline(axes[2], grey)
    axes[2].set_title(f"Grad-CAM before ReLU, signed\n{s.layer}, class {s.classes[s.target]}", fontsize=9)
    for ax, key, title in ((axes[3], "gradcam", "Grad-CAM"), (axes[4], "hirescam", "HiResCAM")):
        m = getattr(s, key)
        ax.imshow(m, cmap="cividis", vmin=0, vmax=float(m.max()) or 1.0, interpolation="bilinear")
        _ink_outline(ax, grey)
        ax.set_title(f"{title}\n{s.layer}, class {s.classes[s.target]}", fontsize=9)
    lim = float(np.abs(s.grad_input).max()) or 1.0
    axes[5].imshow(s.grad_input, cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
    _ink_outline(axes[5], grey)
    axes[5].set_title(f"gradient x input\nclass {s.classes[s.target]}", fontsize=9)
    for ax in (axes[0], *axes[2:]):
        _bare(ax)
    low, high = signed_colours(cmap)
    fig.text(0.99, 0.02, f"dashed outline: the ink (pixels above half brightness); signed maps: {cmap}, centred at "
             f"zero, {high} pushes towards the class, {low} against it", ha="right", fontsize=7)
    return fig


def draw_class_outputs(values: np.ndarray, labels: np.ndarray, target: int, auc: np.ndarray, polarity: np.ndarray,
                       cosine: np.ndarray) -> Any:
    """Per filter, in one row, box plots of its outputs per class (negated for a negative template, ``polarity``
    -1); the target class filled orange and starred; each panel its own y axis."""
    f = values.shape[1]
    classes = np.unique(labels)
    pw, ph, left, sep = 2.55, 2.1, 0.85, 0.85
    lay = InchLayout(left + f * pw + (f - 1) * sep + 0.25, 0.55 + ph + 0.85)
    for i in range(f):
        ax = lay.axes(left + i * (pw + sep), 0.55, pw, ph)
        data = [values[labels == c, i] for c in classes]
        parts = ax.boxplot(data, whis=(5, 95), showfliers=False, patch_artist=True, widths=0.65,
                           medianprops={"color": "black"})
        for c, box in zip(classes, parts["boxes"], strict=True):
            box.set_facecolor(OKABE_ITO[1] if c == target else "0.85")
        ax.set_xticks(range(1, len(classes) + 1), [f"{c}*" if c == target else str(c) for c in classes],
                      fontsize=TICK)
        ax.tick_params(axis="y", labelsize=TICK)
        ax.set_title(f"filter {i + 1}, cos {cosine[i]:+.2f}\nAUC {target} vs rest {auc[i]:.2f}", fontsize=LABEL)
        ax.axhline(0, color="0.6", linewidth=0.6)
        ax.set_ylabel("-output (negative template)" if polarity[i] < 0 else "output", fontsize=LABEL)
    lay.text(lay.width / 2, 0.55 + ph + 0.45, f"digit class (* = target {target}, orange)", ha="center",
             fontsize=LABEL)
    return lay.fig
