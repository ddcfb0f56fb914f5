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
from typing import Any, Sequence

import numpy as np

from .runs import atomic_open, atomic_savefig, atomic_write_json

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
    from matplotlib.figure import Figure

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


def _hide_axes(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _step_axis(ax: Any, steps: np.ndarray) -> None:
    """Training steps on a symmetric-log axis when the run is long, so the fast first steps stay visible."""
    if len(steps) and steps[-1] > 200:
        from matplotlib.ticker import NullLocator

        ax.set_xscale("symlog", linthresh=10)
        ax.xaxis.set_minor_locator(NullLocator())  # symlog's many minor ticks cost a third of the drawing time
        ax.set_xlim(0, steps[-1] * 1.05)
        ax.set_xlabel("training step (linear to 10, log beyond)")
    else:
        ax.set_xlabel("training step")


def _panel(ax: Any, img: np.ndarray, title: str, **kw: Any) -> Any:
    im = ax.imshow(img, interpolation="nearest", **kw)
    ax.set_title(title, fontsize=9)
    _hide_axes(ax)
    return im


# ---------------------------------------------------------------------------------------------------------------------
# Single-image experiment


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


def _cmap(name: str | None):
    import matplotlib

    cmap = matplotlib.colormaps["gray" if name is None else name].with_extremes(bad=GAP_GREY)
    return cmap


def _filters_figure(image: np.ndarray, rows: Sequence[tuple[str, np.ndarray]], cmap: str | None, vlim: float | None,
                    binarise: bool) -> Any:
    """Image on the left, then a mosaic with one row of filter panels per entry of ``rows`` (label, (N, k, k))."""
    n, k = rows[0][1].shape[0], rows[0][1].shape[-1]
    stack = np.stack([f for _, f in rows])  # (R, N, k, k)
    if binarise:
        stack = (stack > stack.mean(axis=(2, 3), keepdims=True)).astype(float)
    gap = max(1, k // 7)
    tiles = mosaic(stack, gap)
    panel = 1.05  # inches per filter panel
    r = len(rows)
    img_w, bar_w, pad = 1.5, (0.9 if not binarise else 0.0), 0.25
    mos_w, mos_h = panel * n * (k + gap) / k, panel * r * (k + gap) / k
    width = pad + img_w + 0.75 + mos_w + bar_w + pad
    height = max(mos_h, img_w) + 0.75
    fig = new_figure(width, height)
    ax = fig.add_axes(((pad) / width, (height - img_w - 0.45) / height, img_w / width, img_w / height))
    shown = (image > image.mean()).astype(float) if binarise else image
    _panel(ax, shown, "image" + (" > its mean" if binarise else ""), cmap="gray")
    ax = fig.add_axes(((pad + img_w + 0.75) / width, 0.3 / height, mos_w / width, mos_h / height))
    if binarise:
        im = ax.imshow(tiles, cmap=_cmap(None), vmin=0, vmax=1, interpolation="nearest")
    else:
        im = ax.imshow(tiles, cmap=_cmap(cmap), vmin=-vlim, vmax=vlim, interpolation="nearest")
    ax.set_xticks([j * (k + gap) + (k - 1) / 2 for j in range(n)], [f"{j + 1}" for j in range(n)], fontsize=8)
    ax.set_yticks([i * (k + gap) + (k - 1) / 2 for i in range(r)], [label for label, _ in rows], fontsize=9)
    ax.tick_params(length=0)
    ax.xaxis.set_ticks_position("top")
    ax.set_xlabel("filter", fontsize=9)
    ax.xaxis.set_label_position("top")
    for spine in ax.spines.values():
        spine.set_visible(False)
    if not binarise:
        cax = fig.add_axes(((width - pad - bar_w + 0.2) / width, 0.3 / height, 0.15 / width, mos_h / height))
        fig.colorbar(im, cax=cax, label="weight")
    return fig


def single_image_figures(d: dict[str, Any], out_dir: Path, cmap: str, dpi: int,
                         only: Sequence[str] | None = None) -> list[FigureInfo]:
    """All figures of a single-image run.

    ``d`` holds: ``image`` (H, W) as the network saw it, ``scale``, ``target``, ``steps`` (S,) snapshot steps,
    ``filters`` (S, N, k, k), ``loss`` (T,) per step, and ``similarity`` with (S, N) arrays.
    """
    out: list[FigureInfo] = []
    image, filt, steps = d["image"], d["filters"], d["steps"]
    first, last = filt[0], filt[-1]
    n, k = first.shape[0], first.shape[-1]
    want = set(only) if only else None
    size = f"{k}x{k}" if k != image.shape[-1] else "full-size (28x28)"

    if want is None or "filters_raw" in want:
        vlim = sym_limit(first, last)
        fig = _filters_figure(image, [("initial", first), ("trained", last)], cmap, vlim, binarise=False)
        out.append(save(
            fig, out_dir, "filters_raw",
            f"The input image (grayscale, {d['scale']} scaling) and the {n} {size} filters before training (top) "
            f"and after {int(steps[-1])} steps (bottom), as raw weights on the {cmap} diverging map centred at zero. "
            f"All {2 * n} filter panels share one scale, -{vlim:.3g} to +{vlim:.3g}.",
            f"A grayscale digit on the left; to its right {n} noisy initial filters above {n} trained filters, "
            f"drawn in blue for negative and red for positive weights on one shared scale of +/-{vlim:.3g}.",
            dpi))
    if want is None or "filters_binarised" in want:
        fig = _filters_figure(image, [("initial", first), ("trained", last)], None, None, binarise=True)
        out.append(save(
            fig, out_dir, "filters_binarised",
            "The article's view: the image and every filter binarised at its own mean (white above, black below), "
            f"initial filters on top, trained after {int(steps[-1])} steps below. Thresholding hides how large the "
            "weights are and how little of each filter follows the image; see similarity.png for the measured values.",
            f"Black-and-white thresholded versions of the digit and of the {n} initial and {n} trained filters.",
            dpi))
    if want is None or "filter_change" in want:
        change = last - first
        vlim = sym_limit(change)
        fig = _filters_figure(image, [("change", change)], cmap, vlim, binarise=False)
        out.append(save(
            fig, out_dir, "filter_change",
            f"What training changed: each filter after {int(steps[-1])} steps minus its initial value, on the {cmap} "
            f"diverging map centred at zero, one shared scale -{vlim:.3g} to +{vlim:.3g}. The image is shown for "
            "comparison.",
            f"The grayscale digit beside {n} panels showing trained minus initial weights in blue and red; "
            "where training followed the image, the digit's strokes are visible in the change.",
            dpi))
    sim = d["similarity"]
    if want is None or "similarity" in want:
        fig = new_figure(9.5, 3.6)
        axes = fig.subplots(1, 2, sharex=True)
        fig.subplots_adjust(left=0.08, right=0.98, bottom=0.14, top=0.9, wspace=0.12)
        for ax, key, title in ((axes[0], "weight_cosine", "filter vs image"),
                               (axes[1], "change_cosine", "change of filter vs image")):
            for i in range(n):
                ax.plot(steps, sim[key][:, i], color=OKABE_ITO[i % 8], linestyle=LINESTYLES[(i // 8) % 4],
                        marker=MARKERS[i % 8], markevery=max(1, len(steps) // 8), markersize=4,
                        label=f"filter {i + 1}")
            ax.axhline(0, color="0.6", linewidth=0.8)
            ax.set_ylim(-1.05, 1.05)
            _step_axis(ax, steps)
            ax.set_title(f"cosine: {title}", fontsize=10)
        axes[0].set_ylabel("cosine similarity")
        if n <= 10:
            axes[1].legend(fontsize=7, loc="lower right", ncol=2)
        wend, dend = sim["weight_cosine"][-1], sim["change_cosine"][-1]
        out.append(save(
            fig, out_dir, "similarity",
            "How much each filter looks like the image, measured: cosine similarity between each filter and the "
            f"image{' patch that matches it best' if k != image.shape[-1] else ''} (left) and between each filter's "
            f"change since initialisation and the image (right), over training. At the end the filters' cosines "
            f"range {np.nanmin(wend):.2f} to {np.nanmax(wend):.2f} and the changes' {np.nanmin(dend):.2f} to "
            f"{np.nanmax(dend):.2f}; 1 means the same shape, 0 no resemblance, -1 the negative image.",
            f"Two line charts, one line per filter over {int(steps[-1])} training steps on a -1 to 1 axis. "
            "Final filter "
            f"cosines range {np.nanmin(wend):.2f} to {np.nanmax(wend):.2f}; final change cosines range "
            f"{np.nanmin(dend):.2f} to {np.nanmax(dend):.2f}.",
            dpi))
    if want is None or "loss" in want:
        loss = np.asarray(d["loss"], dtype=float)
        fig = new_figure(5.5, 3.4)
        ax = fig.subplots()
        fig.subplots_adjust(left=0.15, right=0.97, bottom=0.14, top=0.95)
        ax.plot(np.arange(len(loss)), loss, color=OKABE_ITO[0], linewidth=1)
        ax.set_yscale("symlog", linthresh=1e-6)
        ax.set_ylim(bottom=0)
        from matplotlib.ticker import NullLocator

        ax.yaxis.set_minor_locator(NullLocator())
        _step_axis(ax, np.arange(len(loss)))
        ax.set_ylabel("NLL loss (symlog)")
        zero = np.flatnonzero(loss == 0)
        zero_text = (f"The loss is first exactly 0 (float32) at step {int(zero[0])}, and exactly 0 at "
                     f"{100 * len(zero) / len(loss):.0f}% of all steps; " if len(zero) else "")
        out.append(save(
            fig, out_dir, "loss",
            f"Training loss (negative log-likelihood of class {d['target']}) at every step, on a symmetric-log axis "
            f"that is linear below 1e-6 so exact zeros show. {zero_text}final loss {loss[-1]:.3g}.",
            f"A line chart of the loss over {len(loss) - 1} steps, starting at {loss[0]:.3g} and ending at "
            f"{loss[-1]:.3g}.",
            dpi))
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Two-conv classifier


def _grid(stack: np.ndarray, cols: int) -> np.ndarray:
    """(N, h, w) -> (rows, cols, h, w), padding the last row with NaN panels."""
    n, h, w = stack.shape
    rows = -(-n // cols)
    out = np.full((rows * cols, h, w), np.nan)
    out[:n] = stack
    return out.reshape(rows, cols, h, w)


def _mosaic_axes(fig: Any, rect: tuple, tiles: np.ndarray, title: str, **kw: Any) -> Any:
    ax = fig.add_axes(rect)
    im = ax.imshow(tiles, interpolation="nearest", **kw)
    ax.set_title(title, fontsize=9)
    _hide_axes(ax)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return im


def classifier_figures(d: dict[str, Any], out_dir: Path, cmap: str, dpi: int,
                       only: Sequence[str] | None = None) -> list[FigureInfo]:
    """All figures of a classifier run.

    ``d`` holds ``filters`` (S, C1, Cin, k, k) conv1 snapshots at ``steps``, ``history`` (per-epoch records),
    ``step_loss`` (M, 2), ``maps`` {"conv1": (C, H, W), "conv2": ...} of ``sample``, ``confusion``, ``classes``.
    """
    out: list[FigureInfo] = []
    want = set(only) if only else None
    filt = d["filters"]
    first, last = filt[0], filt[-1]
    n, cin, k = first.shape[0], first.shape[1], first.shape[-1]
    cols = min(8, n)

    if want is None or "conv1_filters" in want:
        vlim = sym_limit(first, last)
        gap = 1
        blocks = []
        for c in range(cin):
            blocks.append((mosaic(_grid(first[:, c], cols), gap), mosaic(_grid(last[:, c], cols), gap)))
        h, w = blocks[0][0].shape
        panel_w = max(2.6, 0.42 * cols)
        panel_h = panel_w * h / w
        width, height = 2 * panel_w + 1.6, cin * (panel_h + 0.45) + 0.3
        fig = new_figure(width, height)
        im = None
        for c, (a, b) in enumerate(blocks):
            y = (height - (c + 1) * (panel_h + 0.45)) / height
            suffix = f", input channel {c + 1}" if cin > 1 else ""
            im = _mosaic_axes(fig, (0.2 / width, y, panel_w / width, panel_h / height), a, f"initial{suffix}",
                              cmap=_cmap(cmap), vmin=-vlim, vmax=vlim)
            _mosaic_axes(fig, ((0.5 + panel_w) / width, y, panel_w / width, panel_h / height), b,
                         f"trained, step {int(d['steps'][-1])}{suffix}", cmap=_cmap(cmap), vmin=-vlim, vmax=vlim)
        cax = fig.add_axes(((0.8 + 2 * panel_w) / width, 0.3 / height, 0.15 / width, (height - 0.9) / height))
        fig.colorbar(im, cax=cax, label="weight")
        chan = f" Each of the {cin} input channels has its own row of panels." if cin > 1 else ""
        out.append(save(
            fig, out_dir, "conv1_filters",
            f"The {n} conv1 filters ({k}x{k}) before training (left) and after {int(d['steps'][-1])} steps (right), "
            f"read left to right, top to bottom, as raw weights on the {cmap} diverging map centred at zero; all "
            f"panels share one scale, -{vlim:.3g} to +{vlim:.3g}.{chan}",
            f"Two grids of {n} small {k}x{k} squares in blue and red; the initial grid is noise, the trained grid "
            "shows oriented edge and blob detectors with stronger weights.",
            dpi))
    if want is None or "feature_maps" in want:
        sample = d["sample"].astype(float)
        maps = d["maps"]
        layer_tiles = []
        for name in [n for n in ("conv1", "conv2") if n in maps]:
            m = maps[name]
            c = m.shape[0]
            mc = min(16, c)
            tiles = mosaic(_grid(m, mc), max(1, m.shape[-1] // 10))
            layer_tiles.append((name, m, tiles))
        width = 11.0
        img_w = 1.7
        heights = [(width - img_w - 1.0) * t.shape[0] / t.shape[1] for _, _, t in layer_tiles]
        height = sum(heights) + 0.45 * len(heights) + 0.3
        fig = new_figure(width, max(height, img_w + 0.6))
        height = fig.get_figheight()
        ax = fig.add_axes((0.1 / width, (height - img_w - 0.4) / height, img_w / width, img_w / height))
        _panel(ax, sample if sample.ndim == 2 else sample / 255.0, "input", cmap="gray")
        y = height - 0.35
        scales = []
        for (name, m, tiles), hgt in zip(layer_tiles, heights):
            y -= hgt
            lo, hi = float(np.nanmin(m)), float(np.nanmax(m))
            scales.append(f"{name} {lo:.2g} to {hi:.2g}")
            _mosaic_axes(fig, ((img_w + 0.4) / width, y / height, (width - img_w - 1.0) / width, hgt / height),
                         tiles, f"{name}: {m.shape[0]} maps of {m.shape[1]}x{m.shape[2]}",
                         cmap=_cmap(None), vmin=lo, vmax=hi if hi > lo else lo + 1)
            y -= 0.45
        label = d.get("sample_label")
        out.append(save(
            fig, out_dir, "feature_maps",
            f"Feature maps of {d['sample_desc']} (label {label}, predicted {d['sample_pred']}): the activations "
            "after each conv layer (after batch norm and the activation, before pooling), one grayscale panel per "
            f"channel, white = strongest response. One scale per layer: {'; '.join(scales)}.",
            "The input image on the left; to its right " + " and below it ".join(
                f"a grid of {m.shape[0]} {name} maps of {m.shape[1]}x{m.shape[2]} pixels" for name, m, _ in layer_tiles)
            + "; conv1 maps still follow the strokes, conv2 maps are smaller and more abstract.",
            dpi))
    hist = d["history"]
    if (want is None or "curves" in want) and hist:
        fig = new_figure(10, 3.6)
        axes = fig.subplots(1, 2)
        fig.subplots_adjust(left=0.07, right=0.98, bottom=0.15, top=0.9, wspace=0.22)
        sl = d["step_loss"]
        epochs = [h["epoch"] for h in hist]
        steps = np.array([h["step"] for h in hist], dtype=float)
        if len(sl):
            axes[0].plot(sl[:, 0], sl[:, 1], color=OKABE_ITO[2], linewidth=0.8, label="train (per step)")
        axes[0].plot(steps, [h["train_loss"] for h in hist], color=OKABE_ITO[0], marker="o", label="train (epoch)")
        axes[0].plot(steps, [h["test_loss"] for h in hist], color=OKABE_ITO[1], marker="s", linestyle="--",
                     label="test")
        axes[0].set_yscale("log")
        axes[0].set_xlabel("training step")
        axes[0].set_ylabel("cross-entropy loss")
        axes[0].legend(fontsize=8)
        axes[1].plot(epochs, [100 * h["train_accuracy"] for h in hist], color=OKABE_ITO[0], marker="o",
                     label="train")
        axes[1].plot(epochs, [100 * h["test_accuracy"] for h in hist], color=OKABE_ITO[1], marker="s",
                     linestyle="--", label="test")
        if "val_accuracy" in hist[0]:
            axes[1].plot(epochs, [100 * h["val_accuracy"] for h in hist], color=OKABE_ITO[4], marker="^",
                         linestyle=":", label="validation")
        axes[1].set_xlabel("epoch")
        axes[1].set_ylabel("accuracy (%)")
        axes[1].legend(fontsize=8)
        best = max(h["test_accuracy"] for h in hist)
        out.append(save(
            fig, out_dir, "curves",
            f"Training curves on {d['dataset']}: loss per step and per epoch (left, log scale) and accuracy per "
            f"epoch (right). Final test accuracy {100 * hist[-1]['test_accuracy']:.2f}%, best {100 * best:.2f}%.",
            f"Two line charts over {len(hist)} epochs: the loss falls and the accuracy rises to "
            f"{100 * hist[-1]['test_accuracy']:.1f}% on the test split.",
            dpi))
    if want is None or "confusion" in want:
        cm = np.asarray(d["confusion"])
        classes = list(d["classes"])
        nc = len(classes)
        fig = new_figure(1.2 + 0.55 * nc, 1.0 + 0.5 * nc)
        ax = fig.subplots()
        fig.subplots_adjust(left=0.25, right=0.97, bottom=0.22, top=0.93)
        rate = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        ax.imshow(rate, cmap="Greys", vmin=0, vmax=1)
        for i in range(nc):
            for j in range(nc):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if rate[i, j] > 0.5 else "black")
        ax.set_xticks(range(nc), classes, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(nc), classes, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        off = cm.copy()
        np.fill_diagonal(off, 0)
        i, j = np.unravel_index(off.argmax(), off.shape)
        out.append(save(
            fig, out_dir, "confusion",
            f"Confusion matrix on the {cm.sum()} test images: counts in the cells, shading by the share of each "
            f"true class (black = all of it). Accuracy {100 * np.trace(cm) / cm.sum():.2f}%; the most frequent "
            f"confusion is true {classes[i]} predicted {classes[j]} ({off[i, j]} images).",
            f"A {nc} by {nc} grid with a dark diagonal of correct predictions; the largest off-diagonal count is "
            f"{off[i, j]}, true {classes[i]} taken for {classes[j]}.",
            dpi))
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Filter evolution, for both kinds: a contact sheet and an animated GIF, on one fixed scale


def evolution_columns(steps: Sequence[int], max_cols: int = 12) -> list[int]:
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
    import matplotlib

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
    from PIL import Image, ImageDraw

    n, k = filters.shape[1], filters.shape[-1]
    palette = gif_palette(cmap)
    grid_cols = min(8, n)
    scale = max(2, 96 // k)
    frames = []
    for j in range(len(filters)):
        idx = gif_indices(mosaic(_grid(filters[j], grid_cols), 1), vlim)
        body = Image.fromarray(idx, mode="P").resize((idx.shape[1] * scale, idx.shape[0] * scale), Image.NEAREST)
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
    panel = 0.62 if k > 8 else 0.42
    mos_w, mos_h = panel * len(cols) * (k + gap) / k, panel * rows * (k + gap) / k
    width, height = mos_w + 2.2, mos_h + 1.0
    fig = new_figure(width, height)
    ax = fig.add_axes((0.9 / width, 0.25 / height, mos_w / width, mos_h / height))
    im = ax.imshow(tiles, cmap=_cmap(cmap), vmin=-vlim, vmax=vlim, interpolation="nearest")
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
