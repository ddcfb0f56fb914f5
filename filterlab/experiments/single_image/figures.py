"""The single-image experiment's figures, from plain arrays (see ``figure_data`` in experiment.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import NullLocator

from ...viz.style import (
    LINESTYLES,
    MARKERS,
    OKABE_ITO,
    FigureInfo,
    cmap_of,
    mosaic,
    new_figure,
    panel,
    save,
    step_axis,
    sym_limit,
)


def _filters_figure(image: np.ndarray, rows: Sequence[tuple[str, np.ndarray]], cmap: str | None, vlim: float,
                    binarise: bool) -> Any:
    """Image on the left, then a mosaic with one row of filter panels per entry of ``rows`` (label, (N, k, k))."""
    n, k = rows[0][1].shape[0], rows[0][1].shape[-1]
    stack = np.stack([f for _, f in rows])  # (R, N, k, k)
    if binarise:
        stack = (stack > stack.mean(axis=(2, 3), keepdims=True)).astype(float)
    gap = max(1, k // 7)
    tiles = mosaic(stack, gap)
    panel_in = 1.05  # inches per filter panel
    r = len(rows)
    img_w, bar_w, pad = 1.5, (0.9 if not binarise else 0.0), 0.25
    mos_w, mos_h = panel_in * n * (k + gap) / k, panel_in * r * (k + gap) / k
    width = pad + img_w + 0.75 + mos_w + bar_w + pad
    height = max(mos_h, img_w) + 0.75
    fig = new_figure(width, height)
    ax = fig.add_axes(((pad) / width, (height - img_w - 0.45) / height, img_w / width, img_w / height))
    shown = (image > image.mean()).astype(float) if binarise else image
    panel(ax, shown, "image" + (" > its mean" if binarise else ""), cmap="gray")
    ax = fig.add_axes(((pad + img_w + 0.75) / width, 0.3 / height, mos_w / width, mos_h / height))
    if binarise:
        im = ax.imshow(tiles, cmap=cmap_of(None), vmin=0, vmax=1, interpolation="nearest")
    else:
        im = ax.imshow(tiles, cmap=cmap_of(cmap), vmin=-vlim, vmax=vlim, interpolation="nearest")
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
        fig = _filters_figure(image, [("initial", first), ("trained", last)], None, 1.0, binarise=True)
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
            step_axis(ax, steps)
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
        ax.yaxis.set_minor_locator(NullLocator())
        step_axis(ax, np.arange(len(loss)))
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


