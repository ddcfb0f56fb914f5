"""What the commands call: each function computes, captions and saves one group of insight figures.

- :func:`change_figures`, cheap, after training: per conv layer ``filter_change_LAYER.png`` (initial, trained,
  change) and ``weights_LAYER.png`` (the weight histogram at every snapshot), with the change data for summary.json.
- :func:`insight_figures`, costlier (seconds), for ``visualize --insight``: per conv layer ``top_patches_LAYER.png``
  and ``feature_vis_LAYER.png``, each with a ``..._data.json`` sidecar of the numbers behind it.
- :func:`saliency_figure`, for ``visualize --image``: ``saliency.png`` for one image.

Figures are written as the rest of filterlab writes them (PNG, caption and alt text in NAME.json and in the PNG).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from filterlab.core.rundir import atomic_write_json
from filterlab.insight import change as ch
from filterlab.insight import figures as draw
from filterlab.insight.featvis import caption_feature_vis, comparison, feature_visualisation
from filterlab.insight.patches import caption_top_patches, sidecar, top_patches
from filterlab.insight.probe import InputScale, conv_probes
from filterlab.insight.saliency import Saliency, caption_saliency, explain, training_ranges
from filterlab.viz.style import FigureInfo, save


@dataclass
class Drawn:
    """Figures written and the numbers worth keeping in summary.json, by layer."""

    figures: list[FigureInfo] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def change_figures(snapshots: Mapping[str, Any], steps: Sequence[int], out_dir: Path, cmap: str = "RdBu_r",
                   dpi: int = 110) -> Drawn:
    """``snapshots``: {layer: (S, N, Cin, k, k) weights at ``steps``}. Summary: {layer: change summary}."""
    out = Drawn()
    for layer, snaps in snapshots.items():
        c = ch.filter_change(layer, snaps, steps)
        vlim, clim = draw.change_scales(snaps, c)
        out.figures.append(save(draw.draw_filter_change(c, cmap, vlim, clim), Path(out_dir), f"filter_change_{layer}",
                                *ch.caption_change(c, cmap, vlim, clim), dpi))
        edges, counts = ch.weight_histograms(snaps)
        out.figures.append(save(draw.draw_weight_histograms(layer, edges, counts, np.asarray(steps)), Path(out_dir),
                                f"weights_{layer}", *ch.caption_histogram(layer, edges, counts, np.asarray(steps),
                                                                          snaps), dpi))
        out.summary[layer] = ch.summary(c)
    return out


def insight_figures(model: nn.Module, scale: InputScale, images: np.ndarray, labels: np.ndarray, out_dir: Path,
                    k: int = 9, featvis_steps: int = 200, seed: int = 0, dpi: int = 110, split: str = "test") -> Drawn:
    """Top patches and feature visualisation for every conv layer of ``model`` over uint8 ``images`` (N, H, W[, C]).

    Summary: {layer: {"receptive_field", "featvis_above_dataset", ...}}.
    """
    out_dir = Path(out_dir)
    shape = (1, *images.shape[1:3]) if images.ndim == 3 else (images.shape[3], *images.shape[1:3])
    probes = conv_probes(model, shape)
    tops = top_patches(model, probes, images, labels, scale, k)
    out = Drawn()
    show = min(3, k)
    for p in probes:
        tp = tops[p.name]
        out.figures.append(save(draw.draw_top_patches(tp), out_dir, f"top_patches_{p.name}",
                                *caption_top_patches(tp, split), dpi))
        atomic_write_json(out_dir / f"top_patches_{p.name}_data.json", sidecar(tp))
        fv = feature_visualisation(model, p, scale, shape, steps=featvis_steps, seed=seed)
        out.figures.append(save(draw.draw_feature_vis(fv, tp, show), out_dir, f"feature_vis_{p.name}",
                                *caption_feature_vis(fv, tp.values[:, 0], tp.n_images, show), dpi))
        cmp = comparison(fv, tp.values[:, 0], tp.best_mean)
        atomic_write_json(out_dir / f"feature_vis_{p.name}_data.json", cmp)
        out.summary[p.name] = {"receptive_field": p.field.size, "channels": p.channels,
                               "featvis_above_dataset": cmp["above_dataset"],
                               "best_patch_activation": [round(float(v), 6) for v in tp.values[:, 0]]}
    return out


def saliency_figure(model: nn.Module, scale: InputScale, pixels: np.ndarray, out_dir: Path,
                    classes: Sequence[str] | None = None, train_images: np.ndarray | None = None,
                    target: int | None = None, cmap: str = "RdBu_r", dpi: int = 110,
                    name: str = "saliency") -> tuple[FigureInfo, Saliency]:
    """Probabilities, Grad-CAM / HiResCAM on the last conv layer and gradient x input for one uint8 image (H, W[, C]).

    With ``train_images`` the caption says when the image is unlike them (mean grey value or ink area)."""
    shape = (1, *pixels.shape[:2]) if pixels.ndim == 2 else (pixels.shape[2], *pixels.shape[:2])
    last = conv_probes(model, shape)[-1]
    ranges = training_ranges(train_images) if train_images is not None else None
    s = explain(model, last, scale, pixels, target, classes, ranges)
    return save(draw.draw_saliency(s, cmap), Path(out_dir), name, *caption_saliency(s, cmap), dpi), s
