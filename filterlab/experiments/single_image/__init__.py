"""The single-image, full-size-filter experiment: one 28x28 image, N filters as large as it, a linear layer.

This module is the kind's card (no torch); its runtime is in ``experiment.py``.
"""

from __future__ import annotations

from typing import Any

from ...core.runfiles import fields, integer, list_of, number, optional, text
from ..base import Card, Metric, Table
from .config import SingleImageConfig, estimate, layers

METRICS = (
    Metric("final_loss", "final loss", "cross-entropy on the one image after the last step (0: certain of the target)",
           ".3g"),
    Metric("weight_cosine_abs_mean", "|cos(filter, image)|",
           "mean over filters of how much each trained filter looks like the image (1: the image itself, 0: unlike)"),
    Metric("change_cosine_abs_min", "min |cos(change, image)|",
           "the least image-like filter change (trained minus initial); near 1 means every filter moved towards "
           "the image or its negative"),
    Metric("binary_agreement_either_polarity_mean", "binarised agreement",
           "share of pixels where a filter, thresholded at its mean, matches the thresholded image (either "
           "polarity; 0.5 is chance)"),
)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def headline(s: dict[str, Any]) -> list[str]:
    """The result in words, from summary.json."""
    filters = s.get("filters") or []
    cos = ", ".join(_pct(f.get("weight_cosine_end")) for f in filters)
    change = ", ".join(_pct(f.get("change_cosine_end")) for f in filters)
    return [f"predicted class {s.get('predicted_class')} (target {s.get('target')}), final loss "
            f"{Metric('', '', '', '.3g').format(s.get('final_loss'))} after {s.get('steps')} steps",
            f"cos(filter, image) per filter: {cos}; cos(change, image): {change}; binarised agreement "
            f"{_pct(s.get('binary_agreement_either_polarity_mean'))}"]


def what_happened(s: dict[str, Any]) -> str:
    """A short paragraph for the report, written from the numbers."""
    filters = s.get("filters") or []
    n = len(filters)
    ends = [abs(f["weight_cosine_end"]) for f in filters if f.get("weight_cosine_end") is not None]
    changes = [abs(f["change_cosine_end"]) for f in filters if f.get("change_cosine_end") is not None]
    zero = s.get("first_zero_loss_step")
    loss_text = (f"The loss reached exactly 0 at step {zero}" if zero is not None
                 else f"The loss ended at {Metric('', '', '', '.3g').format(s.get('final_loss'))}")
    parts = [f"{n} filter{'s' if n != 1 else ''} trained for {s.get('steps')} steps towards class {s.get('target')}; "
             f"the network predicts class {s.get('predicted_class')}. {loss_text}."]
    if ends:
        parts.append(f"The trained filters' |cosine| with the image ranges from {min(ends):.2f} to {max(ends):.2f} "
                     f"(1 would be the image itself).")
    if changes:
        verdict = "strongly" if min(changes) > 0.9 else "partly" if min(changes) > 0.5 else "weakly"
        parts.append(f"What training added to each filter is {verdict} image-like: |cos(change, image)| from "
                     f"{min(changes):.2f} to {max(changes):.2f}.")
    return " ".join(parts)


def tables(s: dict[str, Any]) -> list[Table]:
    """Per filter (numbered from 1, as in the figures): how much it looks like the image, before and after."""
    keys = ("weight_cosine_start", "weight_cosine_end", "change_cosine_end", "binary_agreement_start",
            "binary_agreement_end", "norm_start", "norm_end")
    rows = [(str(i + 1), *(_pct(f.get(k)) for k in keys)) for i, f in enumerate(s.get("filters") or [])]
    header = ("filter", "cos(filter, image) start", "cos(filter, image) end", "cos(change, image)",
              "binarised agreement start", "binarised agreement end", "norm start", "norm end")
    note = ("Cosine similarity: 1 is the image's own shape, 0 no resemblance, -1 its negative. Binarised agreement: "
            "the share of pixels on the same side of their mean in filter and image, which is what the thresholded "
            "pictures show (0.5 is chance; near 0, the negative image).")
    return [Table("How much each filter looks like the image", header, rows, note)]


_COS = optional(number(-1.000001, 1.000001))
_SHARE = optional(number(0, 1.000001))
SUMMARY_FIELDS = fields({
    "target": integer(0), "predicted_class": integer(0), "final_loss": optional(number()),
    "first_zero_loss_step": optional(integer(0)), "weight_cosine_abs_mean": _SHARE, "change_cosine_abs_min": _SHARE,
    "binary_agreement_either_polarity_mean": _SHARE,
    "filters": list_of(fields({"filter": integer(0), "weight_cosine_start": _COS, "weight_cosine_end": _COS,
                               "change_cosine_end": _COS, "binary_agreement_start": _SHARE,
                               "binary_agreement_end": _SHARE, "norm_start": optional(number(0)),
                               "norm_end": optional(number(0))}), 1 << 16),
    "image": fields({"spec": text(), "description": text(), "label": optional(integer(0)), "notes": list_of(text())}),
    "class_outputs": fields({"note": text(), "target": integer(0), "images": integer(0),
                             "auc_mean": optional(number())}),
})

CARD = Card("single_image", "single image, full-size filters", SingleImageConfig, METRICS, layers, headline,
            what_happened,
            estimate=estimate, paths=("data.root", "data.image"), tables=tables, summary_fields=SUMMARY_FIELDS,
            figures="filterlab.experiments.single_image.figures")
