"""The classifier's runtime: inputs, training, figure data and model rebuilding (imports torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...core import config as C
from ...core.artifacts import Checkpoint, load_tied
from ...core.errors import InputError
from ...core.runfiles import read_metrics, read_summary
from ...data.datasets import DataError, load_split
from ...insight.entry import change_figures, insight_figures, saliency_figure
from ...insight.probe import InputScale
from ...viz.evolution import evolution_figures
from ...viz.style import FigureInfo
from ..base import Curve, Experiment, FigureOptions, Probing
from . import CARD
from .config import ClassifierConfig, data_root
from .data import prepare_data, sample_image
from .figures import classifier_figures
from .model import ConvNet
from .train import run, sample_maps


def build_model(ckpt: Checkpoint) -> ConvNet:
    a = ckpt.model_args
    model = ConvNet(ckpt.config["model"], a["in_channels"], a["image_size"], a["num_classes"])
    model.load_state_dict(ckpt.model)
    return model.eval()


def figure_data(run_dir: Path, cfg: ClassifierConfig, options: FigureOptions) -> dict[str, Any]:
    """Plain arrays for the figures, from the run's files alone (the same at the end of training and later)."""
    ckpt, snaps = load_tied(run_dir, C.tied(cfg.model))
    assert ckpt is not None
    summary = read_summary(run_dir, CARD.summary_fields)
    records = read_metrics(run_dir)
    model = build_model(ckpt)
    inp = ckpt.inputs
    sample, label, desc = inp["sample"].numpy(), inp["sample_label"], inp["sample_desc"]
    if options.image is not None:
        img = sample_image(cfg, options.image, ckpt.model_args["in_channels"], key="image")
        sample, label, desc = img.pixels, img.label, img.description
    maps, probs = sample_maps(model, sample, tuple(inp["mean"]), tuple(inp["std"]), inp["normalize"])
    if options.layer is not None:
        if options.layer not in maps:
            raise InputError(f"layer: {options.layer!r} is not one of {', '.join(maps)}")
        maps = {options.layer: maps[options.layer]}
    return {
        "filters": snaps.weights[snaps.first_layer].numpy(), "steps": snaps.steps.numpy(),
        "weights": {k: v.numpy() for k, v in snaps.weights.items()}, "snap_loss": snaps.loss.numpy(),
        "history": [r for r in records if r.get("event") == "epoch"],
        "step_loss": batch_losses(records, snaps.steps.numpy(), snaps.loss.numpy()),
        "maps": maps, "sample": sample, "sample_desc": desc, "sample_label": label, "sample_pred": int(probs.argmax()),
        "sample_prob": float(probs.max()),
        "confusion": np.asarray(summary["confusion"]), "classes": summary["classes"],
        "test_accuracy": summary["test_accuracy"], "dataset": summary["dataset"],
        "batch_norm": bool(cfg.model.batch_norm), "activation": cfg.model.activation,
        "pool_first": bool(cfg.model.pool_first) and any(q > 1 for q in cfg.model.pool),
        "positive_scale": model.positive_scales(),
    }


def batch_losses(records: list[dict[str, Any]], snap_steps: np.ndarray, snap_loss: np.ndarray) -> np.ndarray:
    """(M, 2) training-batch losses by step: the logged ones and those kept with the snapshots, so that a short run
    (fewer steps than train.log_every) still has a loss curve."""
    pairs = {int(r["step"]): float(r["loss"]) for r in records if r.get("event") == "step"}
    for step, value in zip(snap_steps.tolist(), snap_loss.tolist()):
        if np.isfinite(value):
            pairs.setdefault(int(step), float(value))
    return np.asarray(sorted(pairs.items()), dtype=float).reshape(-1, 2)


def draw_run(data: dict[str, Any], out_dir: Path, cmap: str, dpi: int) -> list[FigureInfo]:
    """Every figure of a classifier run, from the plain arrays of figure_data (the figure helper's entry)."""
    return draw(data, out_dir, cmap, dpi)


def draw(data: dict[str, Any], out_dir: Path, cmap: str, dpi: int) -> list[FigureInfo]:
    first = next(iter(data["weights"]))
    change = change_figures(data["weights"], data["steps"].tolist(), out_dir, cmap, dpi)
    return (classifier_figures(data, out_dir, cmap, dpi) + change.figures
            + evolution_figures(data["filters"][:, :, 0], data["steps"], data["snap_loss"], out_dir, cmap, dpi, first))


def input_scale(ckpt: Checkpoint) -> InputScale:
    """How the run turned [0, 1] pixels into the network's input."""
    inp, c = ckpt.inputs, int(ckpt.model_args.get("in_channels", 1))
    if inp.get("normalize"):
        return InputScale(tuple(inp["mean"]), tuple(inp["std"]))
    return InputScale((0.0,) * c, (1.0,) * c)


def split_images(cfg: ClassifierConfig, name: str, limit: int = 0) -> tuple[np.ndarray, np.ndarray]:
    try:
        s = load_split(data_root(cfg.data), cfg.data.dataset, name)
    except DataError as e:
        raise InputError(f"the insight figures need the run's {name} split (data.root {data_root(cfg.data)}): {e}"
                         ) from None
    n = limit or len(s.labels)
    return s.images[:n], s.labels[:n]


def probing(run_dir: Path, cfg: ClassifierConfig) -> Probing:
    ckpt = Checkpoint.load(run_dir)
    classes = ckpt.inputs.get("classes")
    return Probing(build_model(ckpt), input_scale(ckpt), tuple(classes) if classes else None,
                   lambda name: split_images(cfg, name, cfg.data.test_limit if name == "test" else 0),
                   lambda spec: sample_image(cfg, spec, ckpt.model_args["in_channels"], key="image"))


def insight(run_dir: Path, cfg: ClassifierConfig, options: FigureOptions, out_dir: Path
            ) -> tuple[list[FigureInfo], list[str]]:
    """Top test patches and feature visualisation (``--insight``); probabilities and saliency for ``--image``."""
    ckpt = load_tied(run_dir, C.tied(cfg.model))[0]
    assert ckpt is not None
    model, scale = build_model(ckpt), input_scale(ckpt)
    figures: list[FigureInfo] = []
    lines: list[str] = []
    if options.insight:
        images, labels = split_images(cfg, "test", cfg.data.test_limit)
        figures += insight_figures(model, scale, images, labels, out_dir, dpi=cfg.output.dpi).figures
    if options.image is not None:
        img = sample_image(cfg, options.image, ckpt.model_args["in_channels"], key="image")
        try:
            train = split_images(cfg, "train")[0]
        except InputError:
            train = None
            lines.append("note: the training split is not available, so the image is not compared with it")
        info, s = saliency_figure(model, scale, np.asarray(img.pixels), out_dir, classes=ckpt.inputs.get("classes"),
                                  train_images=train, cmap=options.cmap or cfg.output.cmap,
                                  dpi=cfg.output.dpi)
        figures.append(info)
        known = f" (label {img.label})" if img.label is not None else ""
        lines.append(f"{img.description}{known}: predicted {s.classes[s.predicted]} with probability "
                     f"{100 * s.probs[s.predicted]:.1f}%")
        lines += [f"warning: {u}" for u in s.unlike]
    return figures, lines


def curves(run_dir: Path, cfg: ClassifierConfig) -> list[Curve]:
    hist = [r for r in read_metrics(run_dir) if r.get("event") == "epoch"]
    epochs = np.asarray([h["epoch"] for h in hist], dtype=float)
    return [Curve("test loss", "epoch", epochs, np.asarray([h["test_loss"] for h in hist], dtype=float)),
            Curve("test accuracy (%)", "epoch", epochs,
                  np.asarray([100 * h["test_accuracy"] for h in hist], dtype=float))]


EXPERIMENT = Experiment(CARD, prepare_data, run, figure_data, draw, build_model, insight, curves, probing)
