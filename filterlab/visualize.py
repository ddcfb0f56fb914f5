"""Regenerate a run's figures and report from its directory alone: checkpoint, snapshots, metrics and summary.

Nothing is retrained. With the run's own inputs, the figures come back equal to the ones the run drew; ``image``
chooses another input for the classifier's feature maps, ``layer`` restricts them to one conv layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import config as C
from .runs import CHECKPOINT_FILE, CONFIG_FILE, SNAPSHOTS_FILE, SUMMARY_FILE, is_run_dir, read_json, read_metrics


class VisualizeError(ValueError):
    """A run directory that cannot be drawn, or a bad option; the message says which file or value."""


def load_run(run_dir: Path) -> tuple[Any, dict, dict]:
    if not is_run_dir(run_dir):
        raise VisualizeError(f"{run_dir}: not a run directory (no meta.json and config.yaml)")
    try:
        cfg = C.load(run_dir / CONFIG_FILE)
    except C.ConfigError as e:
        raise VisualizeError(str(e)) from None
    for f in (CHECKPOINT_FILE, SNAPSHOTS_FILE):
        if not (run_dir / f).is_file():
            raise VisualizeError(f"{run_dir / f}: missing; the run stopped before writing it")
    ckpt = torch.load(run_dir / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    snaps = torch.load(run_dir / SNAPSHOTS_FILE, map_location="cpu", weights_only=True)
    return cfg, ckpt, snaps


def single_image_data(cfg: Any, ckpt: dict, snaps: dict) -> dict[str, Any]:
    from .single_image import figure_data, scale_image, similarity

    x = scale_image(ckpt["image"].numpy(), cfg.data.scale)
    steps = snaps["steps"].tolist()
    sim = similarity(snaps["filters"], snaps["filters"][0], x)
    return figure_data(x, cfg.data.scale, int(ckpt["target"]), steps, snaps["filters"], snaps["loss_history"], sim)


def image_input(cfg: Any, ckpt: dict, image: str | None) -> tuple[np.ndarray, int | None, str]:
    """(uint8 pixels, label, description) of ``--image`` for a classifier run; the run's own sample without one."""
    from .images import ImageError, load_image

    if image is None:
        return ckpt["sample"].numpy(), ckpt["sample_label"], ckpt["sample_desc"]
    spec = image
    if spec.split(":")[0] in ("train", "test"):
        spec = f"{cfg.data.dataset}:{spec}"  # the run's own dataset, as data.sample does
    try:
        img = load_image(spec, cfg.data.root)
    except ImageError as e:
        raise VisualizeError(f"--image: {e}") from None
    sample = img.pixels
    if ckpt["in_channels"] == 3:
        sample = np.repeat(sample[..., None], 3, axis=-1)
    return sample, img.label, img.description


def classifier_data(cfg: Any, ckpt: dict, snaps: dict, run_dir: Path, image: str | None,
                    layer: str | None) -> dict[str, Any]:
    from .classifier import TwoConvNet, sample_maps

    summary = read_json(run_dir / SUMMARY_FILE)
    records = read_metrics(run_dir)
    model = TwoConvNet.from_config(ckpt["config"]["model"], ckpt["in_channels"], ckpt["image_size"],
                                   ckpt["num_classes"])
    model.load_state_dict(ckpt["model"])
    sample, label, desc = image_input(cfg, ckpt, image)
    maps, probs = sample_maps(model, sample, tuple(ckpt["mean"]), tuple(ckpt["std"]), ckpt["normalize"])
    if layer is not None:
        if layer not in maps:
            raise VisualizeError(f"--layer: {layer!r} is not one of {', '.join(maps)}")
        maps = {layer: maps[layer]}
    return {
        "filters": snaps["filters"].numpy(), "steps": snaps["steps"].numpy(), "snap_loss": snaps["loss"].numpy(),
        "history": [r for r in records if r.get("event") == "epoch"],
        "step_loss": np.asarray([(r["step"], r["loss"]) for r in records if r.get("event") == "step"],
                                dtype=float).reshape(-1, 2),
        "maps": maps, "sample": sample, "sample_desc": desc, "sample_label": label, "sample_pred": int(probs.argmax()),
        "confusion": np.asarray(summary["confusion"]), "classes": summary["classes"],
        "test_accuracy": summary["test_accuracy"], "dataset": summary["dataset"],
    }


def visualize(run_dir: str | Path, image: str | None = None, layer: str | None = None, cmap: str | None = None,
              out: str | Path | None = None) -> list[Path]:
    """Draw every figure of a run again (into ``out``, default RUN_DIR/figures) and rewrite its report."""
    from .train import render_figures, write_report

    run_dir = Path(run_dir)
    cfg, ckpt, snaps = load_run(run_dir)
    if cmap is not None and cmap not in C.DIVERGING_CMAPS:
        raise VisualizeError(f"--cmap: {cmap!r} is not one of the colour-blind-safe diverging maps "
                             f"{', '.join(C.DIVERGING_CMAPS)}")
    out_dir = Path(out) if out is not None else run_dir / "figures"
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.kind == "single_image":
        if image is not None:
            raise VisualizeError("--image: a single-image run is tied to its own image; retrain to use another")
        if layer not in (None, "conv"):
            raise VisualizeError(f"--layer: {layer!r}; a single-image run has one layer, conv")
        data = single_image_data(cfg, ckpt, snaps)
    else:
        data = classifier_data(cfg, ckpt, snaps, run_dir, image, layer)
    infos = render_figures(cfg.kind, data, out_dir, cmap or cfg.output.cmap, cfg.output.dpi)
    if out is None:
        write_report(run_dir)
    return [i.path for i in infos]
