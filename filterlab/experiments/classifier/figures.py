"""The classifier's figures, from plain arrays (see ``figure_data`` in experiment.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...viz.style import (
    OKABE_ITO,
    FigureInfo,
    cmap_of,
    grid,
    mosaic,
    mosaic_axes,
    new_figure,
    panel,
    save,
    sym_limit,
)


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
            blocks.append((mosaic(grid(first[:, c], cols), gap), mosaic(grid(last[:, c], cols), gap)))
        h, w = blocks[0][0].shape
        panel_w = max(2.6, 0.42 * cols)
        panel_h = panel_w * h / w
        width, height = 2 * panel_w + 1.6, cin * (panel_h + 0.45) + 0.3
        fig = new_figure(width, height)
        im = None
        for c, (a, b) in enumerate(blocks):
            y = (height - (c + 1) * (panel_h + 0.45)) / height
            suffix = f", input channel {c + 1}" if cin > 1 else ""
            im = mosaic_axes(fig, (0.2 / width, y, panel_w / width, panel_h / height), a, f"initial{suffix}",
                              cmap=cmap_of(cmap), vmin=-vlim, vmax=vlim)
            mosaic_axes(fig, ((0.5 + panel_w) / width, y, panel_w / width, panel_h / height), b,
                         f"trained, step {int(d['steps'][-1])}{suffix}", cmap=cmap_of(cmap), vmin=-vlim, vmax=vlim)
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
            tiles = mosaic(grid(m, mc), max(1, m.shape[-1] // 10))
            layer_tiles.append((name, m, tiles))
        width = 11.0
        img_w = 1.7
        heights = [(width - img_w - 1.0) * t.shape[0] / t.shape[1] for _, _, t in layer_tiles]
        height = sum(heights) + 0.45 * len(heights) + 0.3
        fig = new_figure(width, max(height, img_w + 0.6))
        height = fig.get_figheight()
        ax = fig.add_axes((0.1 / width, (height - img_w - 0.4) / height, img_w / width, img_w / height))
        panel(ax, sample if sample.ndim == 2 else sample / 255.0, "input", cmap="gray")
        y = height - 0.35
        scales = []
        for (name, m, tiles), hgt in zip(layer_tiles, heights):
            y -= hgt
            lo, hi = float(np.nanmin(m)), float(np.nanmax(m))
            scales.append(f"{name} {lo:.2g} to {hi:.2g}")
            mosaic_axes(fig, ((img_w + 0.4) / width, y / height, (width - img_w - 1.0) / width, hgt / height),
                         tiles, f"{name}: {m.shape[0]} maps of {m.shape[1]}x{m.shape[2]}",
                         cmap=cmap_of(None), vmin=lo, vmax=hi if hi > lo else lo + 1)
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


