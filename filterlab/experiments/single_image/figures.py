"""The single-image experiment's figures, from plain arrays (see ``figure_data`` in experiment.py).

One function per figure: it picks the data, computes the caption and alt text from it, and hands the arrays to a
drawing function that knows nothing of the captions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import NullLocator

from ...viz.evolution import gif, sheet
from ...viz.filters import Notes, Reference, binarised, filters_figure
from ...viz.style import (
    LABEL,
    LINESTYLES,
    MARKERS,
    OKABE_ITO,
    TICK,
    TITLE,
    Drawn,
    FigureInfo,
    InchLayout,
    capped,
    legend_beside,
    save_all,
    share,
    signed_colours,
    step_axis,
    sym_limit,
    weight_scale,
)

LINES_MAX = 10  # filters drawn as their own styled, labelled line; beyond, thin lines and the median


def _size(k: int, side: int) -> str:
    return f"{k}x{k}" if k != side else f"full-size ({side}x{side})"


def best_patches(image: np.ndarray, filters: np.ndarray) -> list[tuple[int, int]]:
    """The top-left (row, column) of the k x k image patch each (k, k) filter matches best: the largest |cosine|,
    the patch the similarity measures compare a smaller-than-image filter with."""
    k = filters.shape[-1]
    win = np.lib.stride_tricks.sliding_window_view(np.asarray(image, dtype=float), (k, k))  # (H-k+1, W-k+1, k, k)
    patches = win.reshape(-1, k * k)
    pn = patches / np.maximum(np.linalg.norm(patches, axis=1, keepdims=True), 1e-12)
    w = filters.reshape(len(filters), -1)
    cos = (w / np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-30)) @ pn.T  # (N, L)
    best = np.abs(cos).argmax(axis=1)
    return [divmod(int(b), win.shape[1]) for b in best]


def _reference(d: dict[str, Any], shown: int, image: np.ndarray, title: str) -> Reference:
    """The image beside the filters; for filters smaller than it, each trained filter's best patch outlined."""
    last = d["filters"][-1, :shown]
    k = last.shape[-1]
    if k == d["image"].shape[-1]:
        return Reference(image, title)
    return Reference(image, title, [(r, c, k) for r, c in best_patches(d["image"], last)])


def _end_notes(d: dict[str, Any], shown: int) -> tuple[np.ndarray, np.ndarray, Notes]:
    """The trained filters' cosine with the image (or its best patch) and binarised agreement, and the note drawn
    under each: a negative cosine marks a negative template, one that resembles the inverted image; for filters
    smaller than the image, where its best patch lies (row, column of its top-left pixel)."""
    cos = np.asarray(d["similarity"]["weight_cosine"][-1][:shown], dtype=float)
    agree = np.asarray(d["similarity"]["binary_agreement"][-1][:shown], dtype=float)
    notes = [f"{c:+.2f}\n{a:.2f}" for c, a in zip(cos, agree, strict=True)]
    label = "cosine\nagreement"
    last = d["filters"][-1, :shown]
    if last.shape[-1] != d["image"].shape[-1]:
        notes = [f"{n}\n{r},{c}" for n, (r, c) in zip(notes, best_patches(d["image"], last), strict=True)]
        label += "\npatch at"
    notes = [n + ("\nneg." if c < 0 else "") for n, c in zip(notes, cos, strict=True)]
    return cos, agree, Notes(label, notes)


def _patch_words(d: dict[str, Any], shown: int) -> str:
    last = d["filters"][-1, :shown]
    if last.shape[-1] == d["image"].shape[-1]:
        return ""
    k = last.shape[-1]
    places = len(set(best_patches(d["image"], last)))
    return (f" The yellow squares on the image are the {k}x{k} patches the trained filters match best ({places} "
            f"place{'s' if places > 1 else ''} for {len(last)} filters); 'patch at' gives each one's top-left row "
            "and column.")


def _polarity_words(cos: np.ndarray, agree: np.ndarray, against: str) -> str:
    """The caption's sentence on the measured cosines and agreements, naming the negative templates."""
    neg = [i + 1 for i in np.flatnonzero(cos < 0)]
    words = (f"Under each trained filter: its cosine with {against} ({_range(cos)}; 1 is the same shape, 0 none, "
             f"-1 the negative image) and its binarised agreement (share of pixels on the same side of their mean "
             f"in filter and image, {_range(agree)}; 0.5 is chance).")
    if neg:
        words += (f" {len(neg)} of {len(cos)} (filter{'s' if len(neg) > 1 else ''} "
                  f"{', '.join(map(str, neg))}) are negative templates, marked 'neg.': they resemble the "
                  f"inverted image.")
    return words


def _background_words(d: dict[str, Any], shown: int) -> str:
    """How much smaller the trained weights are where the image is dark than on its ink, measured (full-size only)."""
    image, last = d["image"], d["filters"][-1, :shown]
    if last.shape[-2:] != image.shape:
        return ""
    dark = image <= image.min()
    if not dark.any() or dark.all():
        return ""
    bg, ink = float(np.median(np.abs(last[:, dark]))), float(np.median(np.abs(last[:, ~dark])))
    if ink <= 0 or bg >= ink:
        return ""
    return (f" Where the image is dark the trained weights are small (median |weight| {bg:.2g} against {ink:.2g} on "
            f"the digit), so the digit's outline shows in every filter whichever way its strokes point.")


def filters_raw(d: dict[str, Any], cmap: str) -> Drawn:
    filt, image, steps = d["filters"], d["image"], d["steps"]
    n = filt.shape[1]
    shown, note = capped(n)
    first, last = filt[0, :shown], filt[-1, :shown]
    vlim = weight_scale(filt[:, :shown])  # the run's one scale: the same in the evolution figures
    neg, pos = signed_colours(cmap)
    cos, agree, notes = _end_notes(d, shown)
    fig = filters_figure([("initial", first), (f"step {int(steps[-1])}", last)], _reference(d, shown, image, "image"),
                         cmap, vlim, "weight", notes).fig
    size = _size(filt.shape[-1], image.shape[-1])
    against = "the image" if filt.shape[-1] == image.shape[-1] else "the image patch it matches best"
    caption = (f"The input image (grayscale, {d['scale']} scaling) and the {n} {size} filters before training and "
               f"after {int(steps[-1])} steps, numbered from 1, as raw weights on the {cmap} diverging map "
               f"centred at zero. All panels share the run's one weight scale (every snapshot), -{vlim:.3g} to "
               f"+{vlim:.3g}. "
               f"{_polarity_words(cos, agree, against)}{_patch_words(d, shown)}{_background_words(d, shown)}{note}")
    alt = (f"A grayscale digit; beside it {shown} initial filters and the same {shown} filters after training, drawn "
           f"in {neg} for negative and {pos} for positive weights on one shared scale of +/-{vlim:.3g}; the trained "
           f"filters' cosines with {against} range {_range(cos)}, {int((cos < 0).sum())} of them negative.")
    return Drawn("filters_raw", fig, caption, alt)


def filters_binarised(d: dict[str, Any]) -> Drawn:
    filt, image, steps = d["filters"], d["image"], d["steps"]
    n = filt.shape[1]
    shown, note = capped(n)
    states = [("initial", binarised(filt[0, :shown])), (f"step {int(steps[-1])}", binarised(filt[-1, :shown]))]
    cos, agree, notes = _end_notes(d, shown)
    fig = filters_figure(states, _reference(d, shown, binarised(image), "image > its mean"), None, 1.0, None, notes).fig
    against = "the image" if filt.shape[-1] == image.shape[-1] else "the image patch it matches best"
    flipped = (cos < 0) & (agree < 0.5)
    flip = ""
    if flipped.any():
        flip = (f" {int(flipped.sum())} negative template{'s are' if flipped.sum() > 1 else ' is'} below "
                "its mean on most of the digit's ink, so it binarises to the inverted digit (dark strokes on a light "
                "ground; agreement below 0.5): the look of a digit does not say which way the filter responds.")
    caption = ("The article's view: the image and every filter binarised at its own mean (white above, black below), "
               f"before training and after {int(steps[-1])} steps. Thresholding hides how large the weights are and "
               f"how little of each filter follows the image. {_polarity_words(cos, agree, against)}{flip}"
               f"{_patch_words(d, shown)}"
               f"{_background_words(d, shown)} See similarity.png for the values over training.{note}")
    alt = (f"Black-and-white thresholded versions of the digit and of {shown} filters before and after training; "
           f"{int((cos < 0).sum())} of the trained ones are negative templates, binarised agreement {_range(agree)}.")
    return Drawn("filters_binarised", fig, caption, alt)


def filter_change(d: dict[str, Any], cmap: str) -> Drawn:
    filt, image, steps = d["filters"], d["image"], d["steps"]
    n = filt.shape[1]
    shown, note = capped(n)
    change = filt[-1, :shown] - filt[0, :shown]
    vlim = sym_limit(change)
    neg, pos = signed_colours(cmap)
    fig = filters_figure([("change", change)], Reference(image, "image"), cmap, vlim, "trained - initial").fig
    end = d["similarity"]["change_cosine"][-1][:shown]
    caption = (f"What training changed: each filter after {int(steps[-1])} steps minus its initial value, on the "
               f"{cmap} diverging map centred at zero, one shared scale -{vlim:.3g} to +{vlim:.3g}; the image is "
               f"shown for comparison. The changes' cosines with the image range {_range(end)}.{note}")
    alt = (f"The grayscale digit beside {shown} panels of trained minus initial weights in {neg} (decreased) and "
           f"{pos} (increased); their cosines with the image range {_range(end)}.")
    return Drawn("filter_change", fig, caption, alt)


def _range(values: np.ndarray) -> str:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return "-" if not v.size else f"{v.min():.2f} to {v.max():.2f}"


def random_best_cosine(image: np.ndarray, k: int, count: int = 500, seed: int = 0) -> np.ndarray:
    """The cosine with the image of ``count`` random k x k filters (uniform, as PyTorch initialises them; a cosine
    does not depend on the scale), each compared with the patch it matches best in size, as training's filters
    are: the score a filter gets by chance. (count,) values, signed."""
    patches = np.lib.stride_tricks.sliding_window_view(np.asarray(image, dtype=float), (k, k)).reshape(-1, k * k)
    pn = patches / np.maximum(np.linalg.norm(patches, axis=1, keepdims=True), 1e-12)  # (L, K)
    w = np.random.default_rng(seed).uniform(-1, 1, size=(count, k * k))
    cos = (w / np.linalg.norm(w, axis=1, keepdims=True)) @ pn.T  # (count, L)
    return cos[np.arange(count), np.abs(cos).argmax(axis=1)]


def similarity(d: dict[str, Any]) -> Drawn:
    filt, image, steps, sim = d["filters"], d["image"], d["steps"], d["similarity"]
    n, k = filt.shape[1], filt.shape[-1]
    shown, note = capped(n)
    full = k == image.shape[-1]
    against = "image" if full else f"its best {k}x{k} patch"
    chance = np.abs(random_best_cosine(image, k))
    band = (float(np.percentile(chance, 5)), float(np.percentile(chance, 95)))
    agree = np.asarray(sim["binary_agreement"], dtype=float)[:, :shown]
    panels = [(sim["weight_cosine"][:, :shown], f"cosine: filter vs {against}"),
              (sim["change_cosine"][:, :shown], f"cosine: change of filter vs {against}"),
              (agree, f"binarised agreement with {against}")]
    fig = _similarity_figure(steps, panels, shown, band)
    wend, dend, aend = sim["weight_cosine"][-1], sim["change_cosine"][-1], agree[-1]
    rel = (np.linalg.norm((filt[-1] - filt[0]).reshape(n, -1), axis=1)
           / np.maximum(np.linalg.norm(filt[0].reshape(n, -1), axis=1), 1e-30))
    patches = (f" of the {(image.shape[-1] - k + 1) ** 2} positions" if not full else "")
    lines = ("one line per filter" if shown <= LINES_MAX
             else "a thin line per filter and their median in black")
    baseline = (f"The grey bands are chance: 500 random filters{' compared with their best patch' if not full else ''}"
                f" score |cosine| {band[0]:.2f} to {band[1]:.2f} (5th to 95th percentile)")
    caption = ("How much each filter looks like the image, measured: cosine similarity between each filter and "
               + ("the image" if full else f"the {k}x{k} image patch{patches} that it matches best (in size)")
               + f" (left) and between each filter's change since initialisation and the same (middle), over "
               f"{int(steps[-1])} training steps, {lines}. {baseline}, the score a filter gets before it has learnt "
               f"anything. At the end the filters' cosines range {_range(wend)} and the changes' {_range(dend)}; 1 "
               f"means the same shape, 0 no resemblance, -1 the negative image. The change is {_range(rel)} times "
               f"the initial filter's size (Euclidean norms). Right: the binarised agreement, the share of pixels on "
               f"the same side of their own mean in the filter and the same; 0.5 (dotted) is what no resemblance "
               f"gives, under 0.5 a negative template; at the end {_range(aend)}.{note}")
    alt = (f"Three line charts over {int(steps[-1])} training steps, {lines} ({shown} filters): two on a -1 to 1 "
           f"axis with grey chance bands at |cosine| {band[0]:.2f} to {band[1]:.2f}, then the binarised agreement "
           f"on a 0 to 1 axis with 0.5 dotted. Final filter cosines range {_range(wend)}; final change cosines "
           f"range {_range(dend)}; final agreements range {_range(aend)}.")
    return Drawn("similarity", fig, caption, alt)


def filter_style(i: int, n: int, points: int) -> dict[str, Any]:
    """Filter i of n: its own colour, dash and marker. On long lines the markers are evenly spaced and offset per
    filter, so that lines lying on top of each other still show every filter's markers; on short ones every point
    has its marker (a single point is then still seen)."""
    every = (0.1 * i / max(n, 1), 0.1) if points > 30 else None
    return {"color": OKABE_ITO[i % 7], "linestyle": LINESTYLES[(i + i // 4) % 4], "marker": MARKERS[i % 10],
            "markersize": 4, "markevery": every, "linewidth": 1.3}


def _similarity_figure(steps: np.ndarray, panels: list[tuple[np.ndarray, str]], n: int,
                       band: tuple[float, float]) -> Any:
    legend_w, pw, sep = 1.5, 3.6, 0.6
    layout = InchLayout(0.75 + len(panels) * pw + (len(panels) - 1) * sep + 0.1 + legend_w, 3.5)
    handles: dict[str, Any] = {}
    for p, (values, title) in enumerate(panels):
        ax = layout.axes(0.75 + p * (pw + sep), 0.4, pw, 2.45)
        if n <= LINES_MAX:
            for i in range(n):
                ax.plot(steps, values[:, i], label=f"filter {i + 1}", **filter_style(i, n, len(steps)))
        else:
            for i in range(n):
                ax.plot(steps, values[:, i], color=OKABE_ITO[4], linewidth=0.6, alpha=0.35,
                        label="each filter" if i == 0 else "_")
            some = np.isfinite(values).any(axis=1)  # the change is undefined (NaN) before the first step
            median = np.full(len(steps), np.nan)
            median[some] = np.nanmedian(values[some], axis=1)
            ax.plot(steps, median, color=OKABE_ITO[0], linewidth=1.8, label="median")
        step_axis(ax, steps[-1])
        ax.tick_params(labelsize=TICK)
        ax.set_title(title, fontsize=TITLE)
        if title.startswith("binarised agreement"):  # a share of pixels: 0.5 is no resemblance
            ax.axhline(0.5, color="0.3", linewidth=1.2, linestyle=":", label="agreement 0.5: no resemblance")
            ax.set_ylim(-0.03, 1.03)
            ax.set_ylabel("share of pixels", fontsize=LABEL)
        else:
            ax.axhline(0, color="0.6", linewidth=0.8)
            for sign in (1, -1):  # chance, on both sides: a cosine counts in size
                ax.axhspan(sign * band[0], sign * band[1], color="0.85", zorder=0,
                           label="chance: random filters" if sign == 1 else "_")
            ax.set_ylim(-1.05, 1.05)
            if p == 0:
                ax.set_ylabel("cosine similarity", fontsize=LABEL)
        for h, lbl in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lbl, h)
    legend_beside(ax, legend_w, entries=handles)  # one legend for the three panels
    return layout.fig


def loss(d: dict[str, Any]) -> Drawn:
    values = np.asarray(d["loss"], dtype=float)  # (T,): values[t] is the loss with the weights after t steps
    fig = _loss_figure(values)
    zero = np.flatnonzero(values == 0)
    total = len(values)
    if not len(zero):
        zero_text = "The loss never reaches exactly 0"
    elif (values[zero[0]:] == 0).all():
        zero_text = (f"The loss is exactly 0 (float32) from step {int(zero[0])} to the end: "
                     f"{share(len(zero), total)} recorded steps")
    else:
        zero_text = (f"The loss is exactly 0 (float32) first at step {int(zero[0])}, then not always: at "
                     f"{share(len(zero), total)} recorded steps")
    caption = (f"Training loss (negative log-likelihood of class {d['target']}) at every step from 0 (the initial "
               f"weights) to {total - 1}, on a symmetric-log axis that is linear below 1e-6 so exact zeros show. "
               f"{zero_text}; final loss {values[-1]:.3g}.")
    alt = (f"A line chart of the loss over {total - 1} steps, starting at {values[0]:.3g} and ending at "
           f"{values[-1]:.3g}.")
    return Drawn("loss", fig, caption, alt)


def _loss_figure(values: np.ndarray) -> Any:
    layout = InchLayout(5.6, 3.4)
    ax = layout.axes(0.85, 0.2, 4.55, 2.55)
    steps = np.arange(len(values))
    ax.plot(steps, values, color=OKABE_ITO[0], linewidth=1, marker="o" if len(values) <= 30 else None,
            markersize=3)
    ax.set_yscale("symlog", linthresh=1e-6)
    ax.set_ylim(bottom=0)
    ax.yaxis.set_minor_locator(NullLocator())
    step_axis(ax, steps[-1])
    ax.tick_params(labelsize=TICK)
    ax.set_ylabel("NLL loss (symlog)", fontsize=LABEL)
    return layout.fig


# figure_tasks' order for the figure helper, by figure name: the slowest first (the three-panel similarity figure,
# the GIF with the report's slider data the helper derives from it, the contact sheet), so that its two processes
# end about together
SLOWEST_FIRST = ("similarity", "evolution_gif", "evolution", "filters_raw", "loss", "filter_change",
                 "filters_binarised")


def figure_tasks(d: dict[str, Any], out_dir: Path, cmap: str, dpi: int,
                 slowest_first: bool = True) -> list[Callable[[], list[FigureInfo]]]:
    """Every figure of a single-image run as independent tasks, in SLOWEST_FIRST order (else in reading order):
    each draws and saves its own files, so the figure helper runs them in two processes at once
    (:func:`filterlab.viz.worker.draw_figures`).

    ``d`` holds: ``image`` (H, W) as the network saw it, ``scale``, ``target``, ``steps`` (S,) snapshot steps,
    ``filters`` (S, N, k, k), ``loss`` (T,) per step, and ``similarity`` with (S, N) arrays.
    """
    filters, steps = d["filters"], d["steps"]
    loss_at = np.asarray(d["loss"])[np.asarray(steps)]

    def one(figure: Callable[[], Drawn]) -> Callable[[], list[FigureInfo]]:
        return lambda: save_all([figure()], out_dir, dpi)

    tasks = {  # in reading order
        "filters_raw": one(lambda: filters_raw(d, cmap)),
        "filters_binarised": one(lambda: filters_binarised(d)),
        "filter_change": one(lambda: filter_change(d, cmap)),
        "similarity": one(lambda: similarity(d)),
        "loss": one(lambda: loss(d)),
        "evolution": lambda: [sheet(filters, steps, out_dir, cmap, dpi, "conv")],
        "evolution_gif": lambda: [gif(filters, steps, loss_at, out_dir, cmap, "conv", Reference(d["image"], "image"))],
    }
    return [tasks[name] for name in SLOWEST_FIRST] if slowest_first else list(tasks.values())


def draw_run(d: dict[str, Any], out_dir: Path, cmap: str, dpi: int) -> list[FigureInfo]:
    """Every figure of a single-image run, from the plain arrays of ``experiment.figure_data`` (no torch here: the
    figure helper draws them while the parent process imports torch and trains)."""
    return [info for task in figure_tasks(d, out_dir, cmap, dpi, slowest_first=False) for info in task()]

