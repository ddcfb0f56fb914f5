"""The insight figures of one finished run, from its directory alone: ``filterlab visualize RUN --insight`` and the
saliency part of ``--image``.

A stop-gap that reads today's run layout (checkpoint, snapshots, config); the commands will reach the same entry
points (:mod:`filterlab.insight.entry`, :mod:`filterlab.experiments.single_image.classes`) through the experiment
registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from filterlab.data import DataError, load_split
from filterlab.experiments.single_image.classes import class_output_figures
from filterlab.insight.entry import change_figures, insight_figures, saliency_figure
from filterlab.insight.probe import InputScale
from filterlab.models import load_checkpoint
from filterlab.runs import CHECKPOINT_FILE, atomic_write_json
from filterlab.visualize import VisualizeError, image_input, load_run


def classifier_scale(ckpt: dict[str, Any]) -> InputScale:
    """How the run turned [0, 1] pixels into the net's input."""
    c = int(ckpt.get("in_channels", 1))
    if ckpt.get("normalize"):
        return InputScale(tuple(ckpt["mean"]), tuple(ckpt["std"]))
    return InputScale((0.0,) * c, (1.0,) * c)


def _split(cfg: Any, name: str) -> Any:
    try:
        return load_split(cfg.data.root, cfg.data.dataset, name)
    except DataError as e:
        raise VisualizeError(f"--insight needs the run's {name} split (data.root {cfg.data.root}): {e}") from None


def _torch_threads(cfg: Any) -> int:
    return int(cfg.threads) if getattr(cfg, "threads", 0) else torch.get_num_threads()


def run_insight(run_dir: Path, out_dir: Path, patches: bool, image: str | None) -> tuple[list[Path], list[str]]:
    """Draw the insight figures of a run into ``out_dir``; returns their paths and lines to print."""
    cfg, ckpt, snaps = load_run(run_dir)
    model, _ = load_checkpoint(run_dir / CHECKPOINT_FILE)
    paths: list[Path] = []
    lines: list[str] = []
    layer = snaps.get("layer", "conv1")
    torch.set_num_threads(_torch_threads(cfg))
    if patches:
        drawn = change_figures({layer: snaps["filters"].numpy()}, snaps["steps"].tolist(), out_dir,
                               cfg.output.cmap, cfg.output.dpi)
        paths += [f.path for f in drawn.figures]
        atomic_write_json(out_dir / "filter_change_data.json", drawn.summary)
        if cfg.kind == "single_image":
            conv = model.get_submodule("conv")
            assert isinstance(conv, torch.nn.Conv2d)
            figs, summary = class_output_figures(conv.weight.detach(), conv.bias, cfg.data.scale,
                                                 int(ckpt["target"]), cfg.data.root, out_dir, cfg.output.dpi)
            atomic_write_json(out_dir / "class_outputs_data.json", summary)
            paths += [f.path for f in figs]
            lines += [f"class outputs: {summary['note']}"] if "note" in summary else []
        else:
            test = _split(cfg, "test")
            n = cfg.data.test_limit or len(test.labels)  # the run's own test images
            drawn = insight_figures(model, classifier_scale(ckpt), test.images[:n], test.labels[:n], out_dir,
                                    dpi=cfg.output.dpi)
            paths += [f.path for f in drawn.figures]
    if image is not None and cfg.kind == "classifier":
        pixels, label, desc = image_input(cfg, ckpt, image)
        try:
            train = load_split(cfg.data.root, cfg.data.dataset, "train").images
        except DataError:
            train = None
            lines.append("note: the training split is not available, so the image is not compared with it")
        info, s = saliency_figure(model, classifier_scale(ckpt), np.asarray(pixels), out_dir,
                                  classes=ckpt.get("classes"), train_images=train, cmap=cfg.output.cmap,
                                  dpi=cfg.output.dpi)
        paths.append(info.path)
        known = f" (label {label})" if label is not None else ""
        lines.append(f"{desc}{known}: predicted {s.classes[s.predicted]} with probability "
                     f"{100 * s.probs[s.predicted]:.1f}%")
        lines += [f"warning: {u}" for u in s.unlike]
    return paths, lines
