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
from filterlab.viz.style import (
    COLORBAR_BELOW_IN,
    GAP_RGB,
    HIGHLIGHT,
    INK,
    LABEL,
    MAX_FILTERS,
    SMALL,
    TARGET,
    TICK,
    TITLE,
    InchLayout,
    block_grid,
    cmap_of,
    colorbar,
    colorbar_below,
    grid_geometry,
    grid_shape,
    new_figure,
    numbered_grid,
    signed_colours,
    sym_limit,
    weight_scale,
)

PAD_RGB = (0x56 / 255, 0xB4 / 255, 0xE9 / 255)  # outside the image
SEAM_RGB = (0.45, 0.45, 0.45)  # between the patches of one block


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


def draw_filter_change(ch: Change, cmap: str, vlim: float, clim: float) -> Any:
    """Initial and trained filters on the run's weight scale ``vlim``, their change on its own scale ``clim``, each a
    numbered grid by the grid rule (filters with several input channels summed over them, one k x k tile each);
    horizontal colour bars under the panels they serve."""
    init, final = change_tiles(ch.initial), change_tiles(ch.final)
    n, k = init.shape[0], init.shape[-1]
    geo = grid_geometry(n, k, 0.45 if k <= 9 else 0.9)
    if geo.width > 4.2:
        geo = grid_geometry(n, k, geo.tile_in * 4.2 / geo.width)
    title_h, sep = 0.32, 0.45
    gw = max(geo.width, 2.2)
    lay = InchLayout(0.25 + 3 * gw + 2 * sep + 0.25, 0.15 + title_h + geo.height + COLORBAR_BELOW_IN + 0.1)
    panels = [("initial (step 0)", init, vlim), (f"trained (step {int(ch.steps[-1])})", final, vlim),
              ("change = trained - initial", final - init, clim)]
    ims = []
    for j, (title, tiles, lim) in enumerate(panels):
        x = 0.25 + j * (gw + sep)
        ax = lay.axes(x + (gw - geo.width) / 2, 0.15 + title_h, geo.width, geo.height)
        ims.append(numbered_grid(ax, tiles, geo, cmap=cmap_of(cmap), vmin=-lim, vmax=lim))
        ax.set_title(title, fontsize=LABEL, pad=3)
    top = 0.15 + title_h + geo.height + 0.2
    summed = ch.initial.ndim == 4 and ch.initial.shape[1] > 1
    what = f"weight, summed over {ch.initial.shape[1]} inputs" if summed else "weight"
    colorbar_below(lay, ims[0], 0.25 + (gw - geo.width) / 2, top, gw + sep + geo.width, f"{what} (both panels)")
    colorbar_below(lay, ims[2], 0.25 + 2 * (gw + sep) + (gw - geo.width) / 2, top, geo.width,
                   "change (its own scale)")
    return lay.fig


def change_scales(snapshots: Any, ch: Change) -> tuple[float, float]:
    """(the run's one weight scale for the drawn tiles over every snapshot, the change's own scale)."""
    vlim = weight_scale(np.stack([change_tiles(s) for s in np.asarray(snapshots)]))
    return vlim, sym_limit(change_tiles(ch.final) - change_tiles(ch.initial))


def change_tiles(w: np.ndarray) -> np.ndarray:
    """(N, Cin, k, k) or (N, k, k) weights -> (N', k, k): the first MAX_FILTERS filters, summed over their input
    channels (one tile per filter; 16 sub-tiles of 5 x 5 per filter cannot be read)."""
    w = np.asarray(w)[:MAX_FILTERS]
    return w.sum(axis=1) if w.ndim == 4 else w


def draw_weight_histograms(layer: str, edges: np.ndarray, counts: np.ndarray, steps: np.ndarray) -> Any:
    """Heat map of the weight histogram (rows: weight value, columns: snapshots)."""
    fig = new_figure(7.0, 3.4)
    ax = fig.add_axes((0.14, 0.17, 0.69, 0.72))
    s = len(steps)
    im = ax.imshow(np.log10(1 + counts.T), origin="lower", aspect="auto", cmap="cividis", interpolation="nearest",
                   extent=(-0.5, s - 0.5, edges[0], edges[-1]))
    shown = sorted(set(np.linspace(0, s - 1, min(s, 9)).round().astype(int).tolist()))
    ax.set_xticks(shown, [str(int(steps[i])) for i in shown], fontsize=TICK)
    ax.set_xlabel("training step (one column per snapshot; columns are evenly spaced, steps are not)", fontsize=TICK)
    ax.set_ylabel(f"{layer} weight", fontsize=LABEL)
    ax.axhline(0, color="white", linewidth=0.6, linestyle=":")
    ax.set_title(f"{layer}: distribution of all weights over training", fontsize=TITLE)
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
    bh, bw = blocks.shape[1:3]
    rows, cols = block_grid(len(blocks), bh, bw)
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
        ax.text(x + bw / 2 - 0.5, y - 0.8, t, ha="center", va="bottom", fontsize=SMALL)
    _bare(ax)
    fig.suptitle(suptitle, fontsize=LABEL, y=1 - 0.08 / height, va="top")
    return fig


def draw_top_patches(tp: TopPatches) -> Any:
    k = tp.values.shape[1]
    inner = math.ceil(math.sqrt(k))
    blocks, _ = _blocks([to_rgb(tp.patches[c]) for c in range(tp.channels)], inner)
    titles = [f"{c + 1}: {tp.values[c, 0]:.3g}" for c in range(tp.channels)]
    s = tp.field.size
    return _block_figure(blocks, titles, max(0.012, 0.42 / s / inner * 3.2 / grid_shape(tp.channels)[1] ** 0.25),
                         f"{tp.layer}: the {k} strongest {s}x{s} test patches per filter\n"
                         f"title: filter number: strongest activation{_outside(tp.patches)}")


def _outside(patches: np.ndarray) -> str:
    """The figure's own key to the light blue, where some patch runs over the image edge."""
    return "; light blue: outside the image" if np.isnan(patches).any() else ""


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
                         "strongest test patches\ntitle: filter number: optimised vs best patch activation"
                         f"{_outside(tp.patches[:, :show])}")


def _ink_outline(ax: Any, image: np.ndarray) -> None:
    from matplotlib import patheffects  # noqa: PLC0415 - only the saliency figure strokes its lines

    cs = ax.contour(ink_mask(image).astype(float), levels=[0.5], colors=[INK], linewidths=1.2, linestyles="--")
    cs.set(path_effects=[patheffects.withStroke(linewidth=2.6, foreground="black")])


def draw_saliency(s: Saliency, cmap: str = "RdBu_r") -> Any:
    """Input, class probabilities, Grad-CAM's signed map before its ReLU, Grad-CAM, HiResCAM, gradient x input; a
    labelled colour bar under each map, each on its own stated scale."""
    side, pitch = 2.0, 2.5
    lay = InchLayout(0.3 + 6 * pitch, 0.6 + side + COLORBAR_BELOW_IN + 0.45)
    top = 0.6
    axes = [lay.axes(0.3 + pitch * i, top, side, side) for i in range(6)]
    grey = s.image if s.image.ndim == 2 else s.image.mean(axis=-1)
    axes[0].imshow(s.image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes[0].set_title("input", fontsize=LABEL)
    bars = axes[1]
    bars.set_position(lay.rect(0.3 + pitch + 0.45, top, side - 0.45, side))
    colours = [HIGHLIGHT if i == s.predicted else "0.7" for i in range(len(s.probs))]  # beside RdBu: no orange
    bars.barh(range(len(s.probs)), 100 * s.probs, color=colours)
    bars.set_yticks(range(len(s.probs)), s.classes, fontsize=TICK)
    bars.invert_yaxis()
    bars.set_xlim(0, 100)
    bars.tick_params(axis="x", labelsize=TICK)
    bars.set_xlabel("probability (%)", fontsize=TICK)
    bars.set_title(f"predicted {s.classes[s.predicted]}\n({100 * s.probs[s.predicted]:.1f}%)", fontsize=LABEL)
    h, w = grey.shape
    signed = s.layer_maps["gradcam"]
    lim = float(np.abs(signed).max()) or 1.0
    # one square per position of the layer, laid over the input's pixel grid so the ink outline lines up
    ims = [axes[2].imshow(signed, cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest",
                          extent=(-0.5, w - 0.5, h - 0.5, -0.5))]
    axes[2].set_title(f"Grad-CAM before ReLU, signed\n{s.layer}, class {s.classes[s.target]}", fontsize=LABEL)
    for ax, key, title in ((axes[3], "gradcam", "Grad-CAM"), (axes[4], "hirescam", "HiResCAM")):
        m = getattr(s, key)
        ims.append(ax.imshow(m, cmap="cividis", vmin=0, vmax=float(m.max()) or 1.0, interpolation="bilinear"))
        ax.set_title(f"{title}\n{s.layer}, class {s.classes[s.target]}", fontsize=LABEL)
    lim = float(np.abs(s.grad_input).max()) or 1.0
    ims.append(axes[5].imshow(s.grad_input, cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest"))
    axes[5].set_title(f"gradient x input\nclass {s.classes[s.target]}", fontsize=LABEL)
    for ax, im, what in zip(axes[2:], ims, ("signed evidence", "evidence (ReLU)", "evidence (ReLU)",
                                            "gradient x input"), strict=True):
        _ink_outline(ax, grey)
        colorbar(lay, im, ax_left(lay, ax), top + side + 0.2, side, f"{what}, own scale", horizontal=True)
    for ax in (axes[0], *axes[2:]):
        _bare(ax)
    low, high = signed_colours(cmap)
    lay.text(lay.width - 0.15, lay.height - 0.12, f"dashed outline: the ink (pixels above half brightness); signed "
             f"maps: {cmap}, centred at zero, {high} pushes towards the class, {low} against it", ha="right",
             va="bottom", fontsize=TICK)
    return lay.fig


def ax_left(lay: InchLayout, ax: Any) -> float:
    """The left edge of ``ax`` in inches from the figure's left."""
    return float(ax.get_position().x0 * lay.width)


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
            box.set_facecolor(TARGET if c == target else "0.85")
        ax.set_xticks(range(1, len(classes) + 1), [f"{c}*" if c == target else str(c) for c in classes],
                      fontsize=TICK)
        ax.tick_params(axis="y", labelsize=TICK)
        ax.set_title(f"filter {i + 1}, cos {cosine[i]:+.2f}\nAUC {target} vs rest {auc[i]:.2f}", fontsize=LABEL)
        ax.axhline(0, color="0.6", linewidth=0.6)
        ax.set_ylabel("-output (negative template)" if polarity[i] < 0 else "output", fontsize=LABEL)
    lay.text(lay.width / 2, 0.55 + ph + 0.45, f"digit class (* = target {target}, orange)", ha="center",
             fontsize=LABEL)
    return lay.fig
