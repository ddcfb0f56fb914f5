"""The single-image experiment's runtime: inputs, training, figure data and model rebuilding (imports torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...core.artifacts import Checkpoint, Snapshots
from ...core.errors import InputError
from ...core.rundir import Run
from ...data.images import Image28, ImageError, load_image
from ...viz.evolution import evolution_figures
from ...viz.filters import Reference
from ...viz.style import FigureInfo
from ..base import Curve, FigureOptions, Hooks
from . import CARD
from .analysis import scale_image, similarity
from .config import SingleImageConfig
from .figures import single_image_figures
from .model import SingleImageNet, single_image_net
from .train import run


def prepare(cfg: SingleImageConfig) -> Image28:
    """The image to train on, checked: it must exist, show something, and have a class to train towards."""
    try:
        image = load_image(cfg.data.image, cfg.data.root)
    except ImageError as e:
        raise InputError(f"data.image: {e}") from None
    lo, hi = int(image.pixels.min()), int(image.pixels.max())
    if lo == hi:
        raise InputError(f"data.image: {image.description} is blank (every pixel is {lo}); there is nothing for the "
                         "filters to learn; use an image that shows a shape")
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
        raise InputError("--image: a single-image run is tied to its own image; retrain to use another")
    if options.layer not in (None, "conv"):
        raise InputError(f"--layer: {options.layer!r}; a single-image run has one layer, conv")
    ckpt, snaps = Checkpoint.load(run_dir), Snapshots.load(run_dir)
    x = scale_image(ckpt.inputs["image"].numpy(), cfg.data.scale)
    filters = snaps.weights[snaps.first_layer]
    loss = snaps.loss_history if snaps.loss_history is not None else snaps.loss
    return {"image": x[0].numpy(), "scale": cfg.data.scale, "target": int(ckpt.inputs["target"]),
            "steps": snaps.steps.numpy(), "filters": filters[:, :, 0].numpy(), "loss": loss.numpy(),
            "similarity": similarity(filters, filters[0], x)}


def draw(data: dict[str, Any], out_dir: Path, cmap: str, dpi: int) -> list[FigureInfo]:
    filters, steps = data["filters"], data["steps"]
    loss = np.asarray(data["loss"])[np.asarray(steps)]
    return (single_image_figures(data, out_dir, cmap, dpi)
            + evolution_figures(filters, steps, loss, out_dir, cmap, dpi, "conv", Reference(data["image"], "image")))


def curves(run_dir: Path, cfg: SingleImageConfig) -> list[Curve]:
    ckpt, snaps = Checkpoint.load(run_dir), Snapshots.load(run_dir)
    x = scale_image(ckpt.inputs["image"].numpy(), cfg.data.scale)
    filters = snaps.weights[snaps.first_layer]
    sim = similarity(filters, filters[0], x)
    steps = snaps.steps.numpy()
    return [Curve("mean |cosine| of filter and image", "training step", steps,
                  np.abs(sim["weight_cosine"]).mean(1), "symlog", (0, 1.05)),
            Curve("mean |cosine| of change and image", "training step", steps[1:],
                  np.abs(sim["change_cosine"][1:]).mean(1), "symlog", (0, 1.05))]


class SingleImage:
    card = CARD

    def prepare(self, cfg: SingleImageConfig) -> Image28:
        return prepare(cfg)

    def train(self, cfg: SingleImageConfig, inputs: Image28, run_: Run, device: torch.device, hooks: Hooks,
              resume: Checkpoint | None) -> dict[str, Any]:
        if resume is not None:  # the image the run was trained on, as it was then
            inputs = Image28(resume.inputs["image"].numpy(), inputs.label, inputs.description, inputs.spec,
                             inputs.notes)
        return run(cfg, inputs, run_, device, hooks, resume)

    def figure_data(self, run_dir: Path, cfg: SingleImageConfig, options: FigureOptions) -> dict[str, Any]:
        return figure_data(run_dir, cfg, options)

    def draw(self, data: dict[str, Any], out_dir: Path, cmap: str, dpi: int) -> list[FigureInfo]:
        return draw(data, out_dir, cmap, dpi)

    def curves(self, run_dir: Path, cfg: SingleImageConfig) -> list[Curve]:
        return curves(run_dir, cfg)

    def build_model(self, ckpt: Checkpoint) -> SingleImageNet:
        net = single_image_net(ckpt.config["model"])
        net.load_state_dict(ckpt.model)
        return net.eval()


EXPERIMENT = SingleImage()
