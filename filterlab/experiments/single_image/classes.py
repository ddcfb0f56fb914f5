"""The article's claim tested on the whole test split: "the more the image looks like the filter, the higher the value".

Each trained filter is applied to every test image (scaled as the run scaled its own image) and its outputs are
grouped by digit class. If the filters had become detectors of the digit they were trained on, the target class
would get the highest outputs; per filter, the AUC of target-vs-rest says how well the output alone ranks the
target's images above all others (1: every target image above every other; 0.5: no better than chance; below 0.5:
it ranks them lower). A filter whose cosine with the training image is negative is a negative template: the claim
then predicts the target's outputs *lowest*, so its outputs are negated before ranking (the polarity-aware AUC). The
sign comes from the filter's cosine with the image, fixed before the test split is looked at; never
max(AUC, 1 - AUC), which would let chance pick the better side. A full-size filter gives one number per image; a
smaller one gives a map, and its largest value (the best match anywhere in the image) is used.

The test split is read from ``data.root`` when it holds one, otherwise from the copy shipped inside the package
(md5-checked); only where neither can be read is this skipped, with a note saying why. At most the first
``MAX_FILTERS`` filters are measured (a run may have 4096; their per-class table would dwarf the rest of the run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from filterlab.data.datasets import DataError, load_split
from filterlab.experiments.single_image.analysis import scale_image
from filterlab.viz.limits import MAX_FILTERS

if TYPE_CHECKING:
    from filterlab.viz.style import FigureInfo


@dataclass
class ClassOutputs:
    """Every filter's output on every image of a split, with the labels."""

    values: np.ndarray  # (N, F) filter outputs
    labels: np.ndarray  # (N,)
    target: int
    auc: np.ndarray  # (F,) target-vs-rest of the raw outputs
    polarity: np.ndarray  # (F,) +1, or -1 for a negative template (negative cosine with the training image)
    cosine: np.ndarray  # (F,) each filter's cosine with the training image (or the patch it matches best)
    ink_r: np.ndarray  # (F,) correlation of each filter's output with the image's total ink (sum of pixel values)
    scale: str
    full_size: bool  # one output per image (kernel as large as the image) or the best position of a map
    total_filters: int = 0  # filters the run has; more than ``filters`` when only the first MAX_FILTERS were measured

    @property
    def filters(self) -> int:
        return self.values.shape[1]

    @property
    def signed(self) -> np.ndarray:
        """(N, F) outputs, negated for the negative templates: high means "like the image, in the filter's sign"."""
        return self.values * self.polarity[None, :]

    @property
    def auc_polar(self) -> np.ndarray:
        """(F,) polarity-aware AUC of target-vs-rest: the AUC of the signed outputs."""
        return auc_vs_rest(self.signed, self.labels == self.target)


def filter_outputs(weight: torch.Tensor, bias: torch.Tensor | None, images: np.ndarray, scale: str,
                   batch_size: int = 2000) -> np.ndarray:
    """(N, F) outputs of conv filters ``weight`` (F, 1, k, k) on uint8 images (N, H, W), scaled like the run's image.

    For kernels smaller than the image, the largest value over positions.
    """
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            # scale_image turns (H, W) into (1, H, W); given (B, H, W) it gives (1, B, H, W): move the 1 to dim 1
            x = scale_image(images[i:i + batch_size], scale).movedim(0, 1)
            z = F.conv2d(x, weight.float(), None if bias is None else bias.float())  # (B, F, h, w)
            out.append(z.flatten(2).amax(dim=2))
    return torch.cat(out).numpy()


def auc_vs_rest(values: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Per column of ``values`` (N, F): the probability that a random positive outranks a random negative, ties
    counting half (the Mann-Whitney U statistic divided by n_pos * n_neg)."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return np.full(values.shape[1], np.nan)
    out = np.empty(values.shape[1])
    for f in range(values.shape[1]):
        _, inverse, counts = np.unique(values[:, f], return_inverse=True, return_counts=True)
        # the average 1-based rank of each distinct value, so tied values share their rank
        avg_rank = np.cumsum(counts) - (counts - 1) / 2.0
        ranks = avg_rank[inverse]
        out[f] = (ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    return out


def class_outputs(weight: torch.Tensor, bias: torch.Tensor | None, images: np.ndarray, labels: np.ndarray,
                  scale: str, target: int, cosine: np.ndarray) -> ClassOutputs:
    """``cosine``: (F,) each filter's cosine with the training image, whose sign says its polarity."""
    values = filter_outputs(weight, bias, images, scale)
    labels = np.asarray(labels)
    ink = images.reshape(len(images), -1).sum(axis=1, dtype=np.float64)
    ink_r = np.array([np.corrcoef(values[:, f], ink)[0, 1] for f in range(values.shape[1])])
    cosine = np.asarray(cosine, dtype=float)
    polarity = np.where(cosine < 0, -1.0, 1.0)
    return ClassOutputs(values, labels, target, auc_vs_rest(values, labels == target), polarity, cosine, ink_r,
                        scale, weight.shape[-1] == images.shape[-1])


def load_test_split(root: str | None, dataset: str = "mnist") -> tuple[np.ndarray, np.ndarray] | str:
    """(images, labels) of the test split (from ``root``, else the copy shipped with filterlab), or a note saying why
    it is not available."""
    try:
        split = load_split(root, dataset, "test")
    except DataError as e:
        return f"skipped: the test split is not available: {e}"
    return split.images, split.labels


def _stats(v: np.ndarray) -> dict[str, float]:
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return {"mean": round(float(v.mean()), 6), "median": round(float(med), 6), "q1": round(float(q1), 6),
            "q3": round(float(q3), 6), "count": len(v)}


def summary(co: ClassOutputs) -> dict[str, Any]:
    """For summary.json: per filter its AUC of target-vs-rest, the rank of the target by median output, and the
    distribution's quartiles per class (all 10 classes)."""
    classes = np.unique(co.labels)
    auc_polar = co.auc_polar  # computed once: each access ranks every filter again
    filters = []
    for f in range(co.filters):
        per = {str(int(c)): _stats(co.values[co.labels == c, f]) for c in classes}
        medians = {c: per[c]["median"] for c in per}
        order = sorted(medians, key=lambda c: medians[c], reverse=True)
        filters.append({"filter": f + 1, "auc_target_vs_rest": round(float(co.auc[f]), 6),
                        "cosine_with_image": round(float(co.cosine[f]), 6), "polarity": int(co.polarity[f]),
                        "auc_polarity_aware": round(float(auc_polar[f]), 6),
                        "target_rank_by_median": order.index(str(co.target)) + 1 if str(co.target) in order else None,
                        "per_class": per})
    return {"target": co.target, "images": len(co.labels), "classes": [int(c) for c in classes],
            "filters_measured": co.filters, "filters_total": max(co.total_filters, co.filters),
            "output": "the filter's single output" if co.full_size else "the largest value of the filter's map",
            "auc_target_vs_rest": [round(float(a), 6) for a in co.auc],
            "auc_mean": round(float(np.nanmean(co.auc)), 6),
            "polarity": [int(p) for p in co.polarity],
            "auc_polarity_aware": [round(float(a), 6) for a in auc_polar],
            "auc_polarity_aware_mean": round(float(np.nanmean(auc_polar)), 6),
            "correlation_with_ink": [round(float(r), 6) for r in co.ink_r], "filters": filters}


PANELS_MAX = 5  # class-output panels drawn at most; the summary holds every filter


def caption_class_outputs(co: ClassOutputs) -> tuple[str, str]:
    n = len(co.labels)
    auc = co.auc_polar
    shown = min(co.filters, PANELS_MAX)
    above = int((auc > 0.5).sum())
    best = int(np.nanargmax(auc))
    what = "output" if co.full_size else "largest value over positions"
    classes = np.unique(co.labels)
    signed = co.signed
    medians = np.array([[np.median(signed[co.labels == c, f]) for c in classes] for f in range(co.filters)])
    top_is_target = int((classes[medians.argmax(axis=1)] == co.target).sum())
    neg = [i + 1 for i in np.flatnonzero(co.polarity < 0)]
    neg_words = (f"{len(neg)} of {co.filters} filters have a negative cosine with the training image (negative "
                 f"templates: filter{'s' if len(neg) > 1 else ''} {_list(neg)}); for them the claim predicts the "
                 f"{co.target}s lowest, so their outputs are drawn and ranked negated ('-output'). " if neg else
                 "Every filter has a positive cosine with the training image. ")
    drawn = (f"All {co.filters} filters are drawn" if shown == co.filters
             else f"The first {shown} of the {co.filters} filters are drawn (summary.json holds every one)")
    if co.total_filters > co.filters:
        drawn = (f"Only the first {co.filters} of the run's {co.total_filters} filters were measured; "
                 + drawn[0].lower() + drawn[1:].replace(" (summary.json holds every one)", " (summary.json holds "
                                                        f"all {co.filters})"))
    caption = (f"Each trained filter's {what} on all {n} test images ({co.scale} scaling, as in training), one box "
               f"per digit class (box: quartiles, line: median, whiskers: 5th to 95th percentile), the target class "
               f"{co.target} filled in orange; each panel has its own y axis. {drawn}. The article's claim predicts "
               f"the {co.target}s highest. {neg_words}Polarity-aware AUC of {co.target}-vs-rest per filter (the "
               f"probability that a random {co.target} outranks a random other digit, the sign fixed by the cosine, "
               f"never chosen afterwards): {_list(f'{a:.2f}' for a in auc)}; {above} of {co.filters} filters rank the "
               f"{co.target}s above the other digits more often than not (AUC > 0.5), the best is filter {best + 1} "
               f"at {auc[best]:.2f}, and for {top_is_target} of {co.filters} filters the {co.target}s have the "
               f"highest median of the {len(classes)} classes. Correlation of each filter's raw output with the "
               f"image's total ink: {_list(f'{r:.2f}' for r in co.ink_r)}.")
    layout = "one row" if shown <= 5 else "a grid"
    alt = (f"{shown} box-plot panels in {layout}, one per filter"
           + (f" (the first {shown} of {co.filters})" if shown < co.filters else "")
           + f", each with {len(classes)} boxes, one per digit class; the orange box of class {co.target} has the "
           f"highest median in {sum(int(classes[medians[f].argmax()] == co.target) for f in range(shown))} of them; "
           f"polarity-aware AUCs {_list(f'{a:.2f}' for a in auc[:shown])}.")
    return caption, alt


def _list(items: Any) -> str:
    return ", ".join(str(x) for x in items)


def measure(weight: torch.Tensor, bias: torch.Tensor | None, scale: str, target: int, root: str | None,
            cosine: np.ndarray) -> ClassOutputs | str:
    """Every filter's output on every test image, or a note saying why the test split is not available;
    ``cosine`` (F,): each filter's cosine with the training image (its sign is the filter's polarity)."""
    split = load_test_split(root)
    if isinstance(split, str):
        return split
    n, k = len(weight), MAX_FILTERS
    co = class_outputs(weight[:k], None if bias is None else bias[:k], *split, scale, target, np.asarray(cosine)[:k])
    co.total_filters = n
    return co


def class_output_figure(co: ClassOutputs, out_dir: Path, dpi: int = 110) -> FigureInfo:
    """class_outputs.png: each filter's output per digit class."""
    from filterlab.insight.figures import draw_class_outputs  # noqa: PLC0415 - matplotlib: only for the figure
    from filterlab.viz.style import save  # noqa: PLC0415

    shown = min(co.filters, PANELS_MAX)
    fig = draw_class_outputs(co.signed[:, :shown], co.labels, co.target, co.auc_polar[:shown], co.polarity[:shown],
                             co.cosine[:shown])
    return save(fig, Path(out_dir), "class_outputs", *caption_class_outputs(co), dpi)
