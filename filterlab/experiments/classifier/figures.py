"""The classifier's figures, from plain arrays (see ``figure_data`` in experiment.py).

One function per figure: it picks the data, computes the caption and alt text from it, and hands the arrays to a
drawing function that knows nothing of the captions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...viz.evolution import sheet
from ...viz.filters import filters_figure
from ...viz.style import (
    COLORBAR_BELOW_IN,
    COLORBAR_MIN_IN,
    LABEL,
    NUMBER_IN,
    OKABE_ITO,
    SMALL,
    TICK,
    TITLE,
    Drawn,
    FigureInfo,
    InchLayout,
    capped,
    cmap_of,
    colorbar,
    colorbar_space,
    grid_geometry,
    grid_shape,
    hide_axes,
    legend_beside,
    log_y,
    numbered_grid,
    save_all,
    signed_colours,
    step_axis,
    text_width_in,
    weight_scale,
)


def conv1_filters(d: dict[str, Any], cmap: str) -> Drawn:
    filt, steps = d["filters"], d["steps"]  # (S, C1, Cin, k, k)
    n, cin, k = filt.shape[1], filt.shape[2], filt.shape[-1]
    shown, note = capped(n)
    first, last = filt[0, :shown], filt[-1, :shown]
    vlim = weight_scale(filt[:, :shown])  # the run's one scale: the same in filter_change and the evolution
    states = []
    for c in range(cin):
        suffix = f", input channel {c + 1}" if cin > 1 else ""
        states += [(f"initial{suffix}", first[:, c]), (f"step {int(steps[-1])}{suffix}", last[:, c])]
    fig = filters_figure(states, None, cmap, vlim, "weight").fig
    neg, pos = signed_colours(cmap)
    chan = f" Each of the {cin} input channels has its own pair of panels." if cin > 1 else ""
    caption = (f"The {n} conv1 filters ({k}x{k}), numbered from 1, before training and after {int(steps[-1])} steps, "
               f"as raw weights on the {cmap} diverging map centred at zero; all panels share the run's one weight "
               f"scale (every snapshot), -{vlim:.3g} to +{vlim:.3g}.{chan}{note}")
    alt = (f"{shown} small {k}x{k} squares before training and the same {shown} after it, in {neg} for negative and "
           f"{pos} for positive weights on one scale of +/-{vlim:.3g}.")
    return Drawn("conv1_filters", fig, caption, alt)


def feature_maps(d: dict[str, Any]) -> Drawn:
    maps = d["maps"]  # {"conv1": (C, H, W), ...}
    sample = d["sample"].astype(float)
    shown = {name: m[:capped(m.shape[0])[0]] for name, m in maps.items()}
    scales = {name: (float(np.nanmin(m)), float(np.nanmax(m))) for name, m in shown.items()}
    classes = d.get("classes") or []
    label, pred = d.get("sample_label"), d["sample_pred"]

    def named(c: int | None) -> str:
        return "unknown" if c is None else (f"{classes[c]} ({c})" if c < len(classes) and str(classes[c]) != str(c)
                                            else str(c))

    prob = d.get("sample_prob")
    beside = [f"label: {named(label)}", f"predicted: {named(pred)}"
              + (f", {100 * prob:.1f}%" if prob is not None else "")]
    fig = _feature_maps_figure(sample if sample.ndim == 2 else sample / 255.0, shown, scales, beside)
    norm = "batch norm and " if d.get("batch_norm") else ""
    act = d.get("activation", "the activation")
    capped_layers = [f"the first {len(shown[n])} of {m.shape[0]} {n} maps" for n, m in maps.items()
                     if len(shown[n]) < m.shape[0]]
    cap_text = f" Only {', '.join(capped_layers)} are drawn." if capped_layers else ""
    if d.get("pool_first"):  # the net pools before its batch norm and activation (model.pool_first)
        if norm:
            positive = ", ".join(f"{pos} of {n} {name} channels" for name, (pos, n) in d["positive_scale"].items())
            stats, where = (" (batch norm with its running statistics)",
                            f" wherever that channel's batch-norm scale is positive ({positive})")
        else:
            stats, where = "", ""
        cap_text += (f" This net pools straight after each convolution, then applies {norm}{act}; the maps apply "
                     f"them at the convolution's full resolution{stats}, so max-pooling a map gives what the next "
                     f"layer receives{where}.")
    caption = (f"Feature maps of {d['sample_desc']} ({beside[0]}, {beside[1]}): the activations "
               f"after each conv layer's convolution, {norm}{act} (before pooling), one grayscale panel per channel, "
               f"numbered from 1, white = strongest response. One scale per layer, on the colour bar under it: "
               + "; ".join(f"{n} {lo:.2g} to {hi:.2g}" for n, (lo, hi) in scales.items()) + "." + cap_text)
    alt = (f"The input image on the left, {beside[0]}, {beside[1]}; to its right " + ", then ".join(
        f"a {'x'.join(map(str, grid_shape(m.shape[0])))} grid of {m.shape[0]} {name} maps of "
        f"{m.shape[1]}x{m.shape[2]} pixels" for name, m in shown.items())
        + ", each map bright where its filter responds to the input.")
    return Drawn("feature_maps", fig, caption, alt)


def _feature_maps_figure(sample: np.ndarray, maps: dict[str, np.ndarray], scales: dict[str, tuple[float, float]],
                         beside: list[str]) -> Any:
    """Input (with its label and the prediction under it) on the left, one numbered grid per layer to its right with
    a colour bar under it, wrapping to a new row beyond 12 inches."""
    title_h, sep, max_w = 0.3, 0.45, 12.0
    block_h = max(2.2, max(grid_shape(m.shape[0])[0] for m in maps.values()) * 0.5)  # maps 0.35 in at least
    blocks = []
    for name, m in maps.items():
        rows = grid_shape(m.shape[0])[0]
        geo = grid_geometry(m.shape[0], m.shape[-1], min(1.1, block_h / rows - NUMBER_IN))
        title = f"{name}: {m.shape[0]} maps of {m.shape[1]}x{m.shape[2]}"
        blocks.append((name, m, geo, title, max(geo.width, text_width_in(title, LABEL), COLORBAR_MIN_IN)))
    in_w = max(1.6, *(text_width_in(t, TICK) for t in beside))
    left0 = 0.2 + in_w + sep
    row_h = title_h + block_h + COLORBAR_BELOW_IN
    placed, x, y, right = [], left0, 0.15, left0
    for b in blocks:
        if x > left0 and x + b[4] > max_w:
            x, y = left0, y + row_h + sep
        placed.append((b, x, y))
        x += b[4] + sep
        right = max(right, x - sep)
    layout = InchLayout(right + 0.2, max(y + row_h + 0.1, 2.9))
    ax = layout.axes(0.2 + (in_w - 1.6) / 2, 0.15 + title_h, 1.6, 1.6)
    ax.imshow(sample, cmap="gray", interpolation="nearest")
    ax.set_title("input", fontsize=LABEL)
    hide_axes(ax)
    layout.text(0.2 + in_w / 2, 0.15 + title_h + 1.7, "\n".join(beside), ha="center", fontsize=TICK, linespacing=1.3)
    for (name, m, geo, title, w), bx, by in placed:
        lo, hi = scales[name]
        ax = layout.axes(bx + (w - geo.width) / 2, by + title_h, geo.width, geo.height)
        im = numbered_grid(ax, m, geo, cmap=cmap_of(None), vmin=lo, vmax=hi if hi > lo else lo + 1)
        ax.set_title(title, fontsize=LABEL, pad=3)
        colorbar(layout, im, bx + (w - min(w, max(geo.width, COLORBAR_MIN_IN))) / 2,
                 by + title_h + geo.height + 0.2, min(w, max(geo.width, COLORBAR_MIN_IN)), f"{name} activation",
                 horizontal=True)
    return layout.fig


def curves(d: dict[str, Any]) -> Drawn | None:
    hist = d["history"]
    if not hist:
        return None
    batch = np.asarray(d["step_loss"], dtype=float).reshape(-1, 2)
    fig = _curves_figure(hist, batch)
    last, best = hist[-1]["test_accuracy"], max(h["test_accuracy"] for h in hist)
    epochs = len(hist)
    right = ("the accuracy at the end of each epoch (right), on the same step axis" if epochs > 1
             else "the accuracies after the one epoch as bars (right: one epoch gives no curve)")
    gap = 100 * (hist[-1]["test_accuracy"] - hist[-1]["train_accuracy"])
    running = (" 'train' is the running mean over each epoch's batches, taken while the weights still change, "
               "not a measurement after the epoch"
               + (f": it can sit below the test value ({gap:.1f} points below it in the last epoch) without any "
                  f"bug." if gap > 0 else "."))
    caption = (f"Training curves on {d['dataset']}: the training loss of the batches at {len(batch)} logged steps, "
               f"the mean training loss and the test loss after each epoch (left, log scale), and {right}. "
               f"Test accuracy after {epochs} epoch{'s' if epochs > 1 else ''}: {100 * last:.2f}%"
               + (f", best {100 * best:.2f}%." if epochs > 1 else ".") + running)
    alt = (f"Two charts over {epochs} epoch{'s' if epochs > 1 else ''} ({int(hist[-1]['step'])} steps): the loss goes "
           f"from {_first_loss(batch, hist):.3g} to {hist[-1]['train_loss']:.3g} (training) and the test accuracy "
           f"ends at {100 * last:.1f}%.")
    return Drawn("curves", fig, caption, alt)


def _first_loss(batch: np.ndarray, hist: list[dict]) -> float:
    finite = batch[np.isfinite(batch[:, 1])] if len(batch) else batch
    return float(finite[0, 1]) if len(finite) else float(hist[0]["train_loss"])


RUNNING = "train (running, during the epoch)"
SPLITS = (("train", OKABE_ITO[0], "o", "-"), ("test", OKABE_ITO[1], "s", "--"), ("val", OKABE_ITO[4], "^", ":"))


def _curves_figure(hist: list[dict], batch: np.ndarray) -> Any:
    pw, ph, lw = 3.3, 2.5, 1.25
    layout = InchLayout(2 * (1.0 + pw + lw) - (lw - 0.3 if len(hist) == 1 else 0), 3.45)
    ax = layout.axes(1.0, 0.4, pw, ph)
    steps = np.array([h["step"] for h in hist], dtype=float)
    ok = batch[np.isfinite(batch[:, 1])] if len(batch) else batch
    if len(ok):
        ax.plot(ok[:, 0], ok[:, 1], color=OKABE_ITO[2], linewidth=0.9, label="train batches")
    for split, colour, marker, dash in SPLITS[:2]:
        label = RUNNING if split == "train" else f"{split} (after the epoch)"
        ax.plot(steps, [h[f"{split}_loss"] for h in hist], color=colour, marker=marker, linestyle=dash, label=label)
    log_y(ax)
    step_axis(ax, steps[-1])
    ax.set_ylabel("cross-entropy loss", fontsize=LABEL)
    ax.set_title("loss", fontsize=TITLE)
    legend_beside(ax, lw)
    ax = layout.axes(1.0 + pw + lw + 1.0, 0.4, pw, ph)
    present = [s for s in SPLITS if f"{s[0]}_accuracy" in hist[0]]
    if len(hist) > 1:  # on the loss panel's axis: the step at which each epoch ended
        for split, colour, marker, dash in present:
            ax.plot(steps, [100 * h[f"{split}_accuracy"] for h in hist], color=colour, marker=marker, linestyle=dash,
                    label=RUNNING if split == "train" else f"{split} (after the epoch)")
        step_axis(ax, steps[-1])
        ax.set_title("accuracy", fontsize=TITLE)
        legend_beside(ax, lw)
    else:
        _accuracy_bars(ax, hist[0], present)
    ax.set_ylabel("accuracy (%)", fontsize=LABEL)
    ax.tick_params(labelsize=TICK)
    return layout.fig


def _accuracy_bars(ax: Any, rec: dict, present: list[tuple[str, str, str, str]]) -> None:
    values = [100 * rec[f"{s[0]}_accuracy"] for s in present]
    ax.bar(range(len(present)), values, color=[s[1] for s in present], width=0.6)
    for i, v in enumerate(values):
        ax.text(i, v + 2, f"{v:.1f}%", ha="center", va="bottom", fontsize=SMALL)
    ax.set_xticks(range(len(present)), ["train (running)" if s[0] == "train" else s[0] for s in present],
                  fontsize=TICK)
    ax.set_ylim(0, 112)
    ax.set_yticks(range(0, 101, 20))
    ax.set_title(f"accuracy after epoch {rec['epoch']}", fontsize=TITLE)


def confusion(d: dict[str, Any]) -> Drawn:
    cm = np.asarray(d["confusion"])
    classes = [str(c) for c in d["classes"]]
    fig = _confusion_figure(cm, classes)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    i, j = np.unravel_index(off.argmax(), off.shape)
    nc = len(classes)
    caption = (f"Confusion matrix on the {cm.sum()} test images: counts in the cells, shading by the share of each "
               f"true class (black = all of it). Accuracy {100 * np.trace(cm) / max(cm.sum(), 1):.2f}%; the most "
               f"frequent confusion is true {classes[i]} predicted {classes[j]} ({off[i, j]} images).")
    alt = (f"A {nc} by {nc} grid with a dark diagonal of correct predictions; the largest off-diagonal count is "
           f"{off[i, j]}, true {classes[i]} taken for {classes[j]}.")
    return Drawn("confusion", fig, caption, alt)


def _confusion_figure(cm: np.ndarray, classes: list[str]) -> Any:
    """The matrix as a square centred in its figure: margins sized from the class names, a colour bar on the right."""
    nc = len(classes)
    side = max(COLORBAR_MIN_IN, 0.42 * nc)
    names_w = max(text_width_in(c, TICK) for c in classes)
    upright = names_w > 0.38  # names wider than a cell are written upwards (never slanted: their boxes overlap)
    left = 0.35 + names_w + 0.15
    bottom = 0.3 + (names_w if upright else 0.12) + 0.25
    layout = InchLayout(left + side + colorbar_space(0, 1), 0.25 + side + bottom)
    ax = layout.axes(left, 0.25, side, side)
    rate = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    im = ax.imshow(rate, cmap="Greys", vmin=0, vmax=1)
    size = SMALL if nc <= 12 else 5.5
    for i in range(nc):
        for j in range(nc):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=size,
                        color="white" if rate[i, j] > 0.5 else "black", gid="in-image")
    ax.set_xticks(range(nc), classes, rotation=90 if upright else 0, fontsize=TICK)
    ax.set_yticks(range(nc), classes, fontsize=TICK)
    ax.set_xlabel("predicted", fontsize=LABEL)
    ax.set_ylabel("true", fontsize=LABEL)
    colorbar(layout, im, left + side + 0.2, 0.25, side, "share of the true class")
    return layout.fig


def classifier_figures(d: dict[str, Any], out_dir: Path, cmap: str, dpi: int) -> list[FigureInfo]:
    """All figures of a classifier run.

    ``d`` holds ``filters`` (S, C1, Cin, k, k) conv1 snapshots at ``steps``, ``history`` (per-epoch records),
    ``step_loss`` (M, 2), ``maps`` {"conv1": (C, H, W), "conv2": ...} of ``sample``, ``confusion``, ``classes``,
    ``batch_norm`` and ``activation``.
    """
    drawn = [conv1_filters(d, cmap), feature_maps(d), curves(d), confusion(d)]
    return save_all([x for x in drawn if x is not None], out_dir, dpi) + deeper_evolution(d, out_dir, cmap, dpi)


def deeper_evolution(d: dict[str, Any], out_dir: Path, cmap: str, dpi: int) -> list[FigureInfo]:
    """The contact sheet of the second conv layer over training (evolution_conv2.png), each filter one tile summed
    over its input channels (as in filter_change_conv2.png, on the same scale); none for a one-layer model."""
    convs = [n for n, w in d.get("weights", {}).items() if np.ndim(w) == 5]  # (S, N, Cin, k, k) conv snapshots
    if len(convs) < 2:
        return []
    name = convs[1]
    w = np.asarray(d["weights"][name], dtype=float)
    return [sheet(w.sum(axis=2), np.asarray(d["steps"]), out_dir, cmap, dpi, name, f"evolution_{name}", w.shape[2])]
