"""The classifier experiment: a small conv net on MNIST-like data, its filters, feature maps and curves.

This module is the kind's card (no torch); its runtime is in ``experiment.py``.
"""

from __future__ import annotations

from typing import Any

from ...core.runfiles import Bad, fields, integer, list_of, mapping, number, optional, text
from ..base import Card, Metric
from .config import ClassifierConfig, estimate, layers

METRICS = (
    Metric("test_accuracy", "test accuracy", "share of the test split classified correctly after training", ".4f"),
    Metric("train_seconds", "training seconds", "time spent in training steps, evaluation excluded", ".1f"),
    Metric("epochs_done", "epochs", "passes over the training split completed", "d"),
)


def headline(s: dict[str, Any]) -> list[str]:
    """The result in words, from summary.json."""
    acc = s.get("test_accuracy")
    acc_text = "-" if acc is None else f"{100 * acc:.2f}%"
    lines = [f"test accuracy {acc_text} on {s.get('test_images')} {s.get('dataset')} test images after "
             f"{s.get('epochs_done')} epoch(s), {s.get('steps')} steps, {s.get('train_seconds')} s of training"]
    change = s.get("filter_change") or {}
    if change:
        lines.append("filter change ||W - W0|| / ||W0|| (median): " + ", ".join(
            f"{layer} {v['relative_change_median']:.2f}" for layer, v in change.items()))
    return lines


def what_happened(s: dict[str, Any]) -> str:
    """A short paragraph for the report, written from the numbers."""
    acc, best = s.get("test_accuracy"), s.get("best_test_accuracy")
    parts = [f"The network trained for {s.get('epochs_done')} epoch(s) ({s.get('steps')} steps) on "
             f"{s.get('train_images')} {s.get('dataset')} images and classifies "
             f"{'-' if acc is None else f'{100 * acc:.2f}%'} of the {s.get('test_images')} test images correctly."]
    if best is not None and acc is not None and best > acc + 1e-9:
        parts.append(f"Its best epoch reached {100 * best:.2f}%.")
    cm, classes = s.get("confusion"), s.get("classes")
    if cm and classes:
        pairs = [(cm[i][j], classes[i], classes[j]) for i in range(len(cm)) for j in range(len(cm)) if i != j]
        if pairs:
            n, a, b = max(pairs)
            if n:
                parts.append(f"The most common mistake: {n} test image(s) of class {a} taken for {b}.")
    sample = s.get("sample") or {}
    if sample:
        parts.append(f"The sample ({sample.get('description')}) is predicted as class {sample.get('predicted')} "
                     f"with probability {sample.get('probability', 0):.2f}.")
    return " ".join(parts)


_SHARE = optional(number(0, 1))
_FIELDS = fields({
    "dataset": text(1000), "epochs_done": integer(0), "stopped": optional(text(100)), "test_accuracy": _SHARE,
    "test_loss": optional(number()), "best_test_accuracy": _SHARE, "val_accuracy": _SHARE, "train_accuracy": _SHARE,
    "seconds_to_target": optional(number(0)), "target_accuracy": _SHARE, "images_per_second": optional(number(0)),
    "parameters": integer(0), "train_images": integer(0), "test_images": integer(0),
    "sample": fields({"description": text(), "label": optional(integer(0)), "predicted": integer(0),
                      "probability": number(0, 1)}),
    "data_notes": list_of(text()), "classes": list_of(text(1000), 100_000),
    "confusion": list_of(list_of(integer(0), 100_000), 100_000),
    "filter_change": mapping(fields({"relative_change_median": number()}, required=("relative_change_median",))),
}, required=("dataset", "test_accuracy", "classes", "confusion"))


def summary_fields(s: Any, key: str) -> None:
    """summary.json of a classifier: the fields' types, and a square confusion matrix with a row per class."""
    _FIELDS(s, key)
    n = len(s["classes"])
    if len(s["confusion"]) != n or any(len(row) != n for row in s["confusion"]):
        raise Bad("confusion", f"a {n}x{n} matrix (one row and column per class)", s["confusion"])


CARD = Card("classifier", "a small conv-net classifier", ClassifierConfig, METRICS, layers, headline, what_happened,
            estimate=estimate, paths=("data.root", "data.sample"), summary_fields=summary_fields,
            figures="filterlab.experiments.classifier.experiment")  # imports torch: the helper has time for it
