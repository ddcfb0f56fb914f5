"""The single-image experiment's runtime: inputs, training, figure data and model rebuilding (imports torch)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ...core import config as C
from ...core.artifacts import Checkpoint, load_tied, load_tied_checkpoint
from ...core.errors import InputError, short_repr
from ...core.rundir import Run
from ...core.runfiles import read_metrics
from ...data.datasets import DataError, load_split
from ...data.images import Image28, ImageError, load_image
from ...insight.probe import InputScale
from ..base import Curve, Experiment, FigureOptions, Hooks, Probing
from . import CARD, classes
from .analysis import MNIST_MEAN, MNIST_STD, scale_image, similarity
from .config import SingleImageConfig
from .model import SingleImageNet, single_image_net
from .train import run

if TYPE_CHECKING:
    from ...viz.style import FigureInfo


def prepare(cfg: SingleImageConfig) -> Image28:
    """The image to train on, checked: it must exist, show something, and have a class to train towards."""
    try:
        image = load_image(cfg.data.image, cfg.data.root)
    except ImageError as e:
        raise InputError(f"data.image: {e}") from None
    lo, hi = int(image.pixels.min()), int(image.pixels.max())
    if lo == hi:
        what = f"{'blank' if lo == 0 else 'constant'}: every pixel is {lo}{' after conversion' if image.notes else ''}"
        raise InputError(f"data.image: {short_repr(cfg.data.image, 200)} ({image.description}) is {what}; there is "
                         "nothing for the filters to learn; use an image that shows a shape")
    target = cfg.data.target if cfg.data.target is not None else image.label
    if target is None:
        raise InputError(f"data.target: the image {cfg.data.image!r} has no known label; set data.target to the "
                         f"class to train towards (0 to {cfg.model.num_classes - 1})")
    if target >= cfg.model.num_classes:
        raise InputError(f"data.target: {target} is not a class of a {cfg.model.num_classes}-class model "
                         f"(accepted: 0 to {cfg.model.num_classes - 1})")
    return image


def figure_data(run_dir: Path, cfg: SingleImageConfig, options: FigureOptions) -> dict[str, Any]:
    """Plain arrays for the figures, from the run's checkpoint and snapshots alone."""
    if options.image is not None:
        raise InputError("image: a single-image run is tied to its own image; retrain to use another")
    if options.layer not in (None, "conv"):
        raise InputError(f"layer: {options.layer!r}; a single-image run has one layer, conv")
    ckpt, snaps = load_tied(run_dir, C.tied(cfg.model))
    assert ckpt is not None
    x = scale_image(ckpt.inputs["image"].numpy(), cfg.data.scale)
    filters = snaps.weights[snaps.first_layer]
    loss = snaps.loss_history if snaps.loss_history is not None else snaps.loss
    sim = similarity(filters, filters[0], x)
    return {"image": x[0].numpy(), "scale": cfg.data.scale, "target": int(ckpt.inputs["target"]),
            "steps": snaps.steps.numpy(), "filters": filters[:, :, 0].numpy(), "loss": loss.numpy(),
            "similarity": sim}


def draw(data: dict[str, Any], out_dir: Path, cmap: str, dpi: int) -> list[FigureInfo]:
    from .figures import draw_run  # noqa: PLC0415 - matplotlib only where this process draws (not the CLI's parent)

    return draw_run(data, out_dir, cmap, dpi)


def build_model(ckpt: Checkpoint) -> SingleImageNet:
    net = single_image_net(ckpt.config["model"])
    net.load_state_dict(ckpt.model)
    return net.eval()


def insight(run_dir: Path, cfg: SingleImageConfig, options: FigureOptions, out_dir: Path
            ) -> tuple[list[FigureInfo], list[str]]:
    """``--insight``: class_outputs.png, each filter's output on every test digit by class (the article's claim
    tested). Its numbers are in summary.json from the end of training; the figure (~0.5 s of matplotlib, most of
    the article preset's figure time) is drawn only when asked for, like the classifier's top patches."""
    if not options.insight:
        return [], []
    ckpt, snaps = load_tied(run_dir, C.tied(cfg.model))
    assert ckpt is not None
    x = scale_image(ckpt.inputs["image"].numpy(), cfg.data.scale)
    filters = snaps.weights[snaps.first_layer]
    cosine = similarity(filters[-1:], filters[0], x)["weight_cosine"][-1]
    net = build_model(ckpt)
    co = classes.measure(net.conv.weight.detach(), net.conv.bias, cfg.data.scale, int(ckpt.inputs["target"]),
                         cfg.data.root, cosine)
    if isinstance(co, str):
        return [], [f"class outputs: {co}"]
    return [classes.class_output_figure(co, out_dir, cfg.output.dpi)], []


SCALES = {"raw": InputScale((0.0,), (1 / 255,)), "unit": InputScale((0.0,), (1.0,)),
          "standard": InputScale((MNIST_MEAN,), (MNIST_STD,))}  # data.scale as an InputScale of [0, 1] pixels


def probing(run_dir: Path, cfg: SingleImageConfig) -> Probing:
    """The run's net, and the MNIST splits under data.root (the digits the one image was drawn from; the test split
    also without one: it ships with filterlab)."""

    def split(name: str) -> tuple[np.ndarray, np.ndarray]:
        try:
            s = load_split(cfg.data.root, "mnist", name)
        except DataError as e:
            raise InputError(f"the {name} split (data.root {cfg.data.root}): {e}") from None
        return s.images, s.labels

    def image(spec: str) -> Image28:
        try:
            return load_image(spec, cfg.data.root)
        except ImageError as e:
            raise InputError(f"image: {e}") from None

    net = build_model(load_tied_checkpoint(run_dir, C.tied(cfg.model)))
    return Probing(net, SCALES[cfg.data.scale], None, split, image)


def curves(run_dir: Path, cfg: SingleImageConfig) -> list[Curve]:
    """From metrics.jsonl alone (the run logged every snapshot's cosines), so a broken checkpoint does not stop
    `compare`."""
    recs = [r for r in read_metrics(run_dir) if "weight_cosine" in r]

    def mean_abs(key: str) -> np.ndarray:
        return np.asarray([np.nanmean(np.abs(np.asarray(r[key], dtype=float))) if any(v is not None for v in r[key])
                           else np.nan for r in recs])

    steps = np.asarray([r["step"] for r in recs])
    return [Curve("mean |cosine| of filter and image", "training step", steps, mean_abs("weight_cosine"), "symlog",
                  (0, 1.05)),
            Curve("mean |cosine| of change and image", "training step", steps[1:], mean_abs("change_cosine")[1:],
                  "symlog", (0, 1.05))]


def train(cfg: SingleImageConfig, inputs: Image28, run_: Run, device: torch.device, hooks: Hooks,
          resume: Checkpoint | None) -> dict[str, Any]:
    if resume is not None:  # the image the run was trained on, as it was then
        inputs = Image28(resume.inputs["image"].numpy(), inputs.label, inputs.description, inputs.spec, inputs.notes)
    return run(cfg, inputs, run_, device, hooks, resume)


EXPERIMENT = Experiment(CARD, prepare, train, figure_data, draw, build_model, insight, curves, probing)
