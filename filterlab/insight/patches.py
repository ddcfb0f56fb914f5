"""Top dataset patches: for every channel of every conv layer, the k image regions of a split that excite it most.

One batched pass over the split captures every probed layer at once (the forward pass stops after the last one).
Each image counts once per channel, at the position of its strongest response, so a channel's k patches come from
k different images (the "dataset examples" convention of the Distill circuits work); the top-1 patch is therefore
the argmax over every image and every position. A patch is the receptive field of that position
(:func:`filterlab.core.geometry.receptive_fields`); where the field runs over the image's edge the patch holds NaN,
drawn as padding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from filterlab.core.geometry import Field
from filterlab.insight.probe import InputScale, Probe, capture


@dataclass
class TopPatches:
    """The top-k patches of one layer: arrays indexed [channel, rank]."""

    layer: str
    field: Field
    values: np.ndarray  # (C, k) channel activation at the patch's centre position, descending
    index: np.ndarray  # (C, k) image index in the split
    labels: np.ndarray  # (C, k) that image's label
    pos: np.ndarray  # (C, k, 2) (row, col) in the layer's activation map
    patches: np.ndarray  # (C, k, S, S) or (C, k, S, S, 3): pixels in [0, 1], NaN outside the image
    best_mean: np.ndarray  # (C,) the largest spatial mean of the channel over any one image of the split
    n_images: int

    @property
    def channels(self) -> int:
        return self.values.shape[0]


@torch.no_grad()
def per_image_peaks(model: nn.Module, probes: Sequence[Probe], images: np.ndarray, scale: InputScale,
                    batch_size: int = 500) -> dict[str, dict[str, torch.Tensor]]:
    """For every probed layer: each image's peak activation per channel, where it is, and the spatial mean.

    Returns {layer: {"peak": (N, C), "where": (N, C) flat position, "mean": (N, C), "width": (1,)}}, on the CPU.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    n = len(images)
    out: dict[str, dict[str, torch.Tensor]] = {}
    try:
        for i in range(0, n, batch_size):
            x = scale.from_uint8(images[i:i + batch_size], device)
            acts = capture(model, x, probes)
            for p in probes:
                a = acts[p.name].flatten(2)  # (B, C, H*W)
                peak, where = a.max(dim=2)
                rec = out.setdefault(p.name, {
                    "peak": torch.empty(n, a.shape[1]), "where": torch.empty(n, a.shape[1], dtype=torch.long),
                    "mean": torch.empty(n, a.shape[1]), "width": torch.tensor([acts[p.name].shape[-1]])})
                rec["peak"][i:i + len(x)] = peak.cpu()
                rec["where"][i:i + len(x)] = where.cpu()
                rec["mean"][i:i + len(x)] = a.mean(dim=2).cpu()
    finally:
        model.train(was_training)
    return out


def cut_patch(image: np.ndarray, field: Field, row: int, col: int) -> np.ndarray:
    """The receptive field of output position (row, col) from an (H, W[, C]) image of [0, 1] floats, with NaN
    wherever the field lies outside the image."""
    r0, r1, c0, c1 = field.region(row, col)
    h, w = image.shape[:2]
    out = np.full((field.size, field.size, *image.shape[2:]), np.nan)
    rr0, rr1, cc0, cc1 = max(r0, 0), min(r1, h - 1), max(c0, 0), min(c1, w - 1)
    if rr0 <= rr1 and cc0 <= cc1:
        out[rr0 - r0:rr1 - r0 + 1, cc0 - c0:cc1 - c0 + 1] = image[rr0:rr1 + 1, cc0:cc1 + 1]
    return out


def top_patches(model: nn.Module, probes: Sequence[Probe], images: np.ndarray, labels: np.ndarray,
                scale: InputScale, k: int = 9, batch_size: int = 500) -> dict[str, TopPatches]:
    """The k most exciting patches of ``images`` (uint8 (N, H, W[, C])) for every channel of every probe."""
    k = min(k, len(images))
    peaks = per_image_peaks(model, probes, images, scale, batch_size)
    out = {}
    for p in probes:
        rec = peaks[p.name]
        top, top_idx = rec["peak"].topk(k, dim=0)  # (k, C): over images, each image once per channel
        width = int(rec["width"][0])
        values, idx = top.t().numpy(), top_idx.t().numpy()  # (C, k)
        where = rec["where"].gather(0, top_idx).t().numpy()
        pos = np.stack([where // width, where % width], axis=-1)
        cut = np.stack([np.stack([cut_patch(images[idx[c, r]] / 255.0, p.field, *pos[c, r]) for r in range(k)])
                        for c in range(len(values))])
        out[p.name] = TopPatches(p.name, p.field, values, idx, np.asarray(labels)[idx], pos, cut,
                                 rec["mean"].max(dim=0).values.numpy(), len(images))
    return out


def sidecar(tp: TopPatches) -> dict[str, Any]:
    """The JSON beside the figure: every patch's activation, source image, label, position and region."""
    chans = []
    for c in range(tp.channels):
        chans.append({"filter": c + 1, "patches": [
            {"activation": float(tp.values[c, r]), "image_index": int(tp.index[c, r]), "label": int(tp.labels[c, r]),
             "position": [int(v) for v in tp.pos[c, r]],
             "region_rows_cols": [int(v) for v in tp.field.region(*tp.pos[c, r])]}
            for r in range(tp.values.shape[1])]})
    return {"layer": tp.layer, "receptive_field": tp.field.size, "jump": tp.field.jump, "offset": tp.field.offset,
            "images_searched": tp.n_images, "k": int(tp.values.shape[1]), "filters": chans}


def _padding_share(tp: TopPatches) -> float:
    return float(np.isnan(tp.patches).mean())


def caption_top_patches(tp: TopPatches, split: str = "test") -> tuple[str, str]:
    """Caption and alt text of a top-patches figure, from the patches in hand."""
    c, k, s = tp.channels, tp.values.shape[1], tp.field.size
    dead = [i + 1 for i in range(c) if tp.values[i, 0] <= 0]
    purity = [np.bincount(tp.labels[i]).max() / k for i in range(c)]
    pure = [i + 1 for i in range(c) if purity[i] >= 2 / 3 and tp.values[i, 0] > 0]
    pad = _padding_share(tp)
    dead_text = (f" Filters {', '.join(map(str, dead))} never respond above 0 on this split." if dead else "")
    pure_text = (f" For {len(pure)} of {c} filters at least two thirds of the patches come from one class "
                 f"(filters {', '.join(map(str, pure[:12]))}{', ...' if len(pure) > 12 else ''})."
                 if pure else " No filter draws two thirds of its patches from one class.")
    pad_text = (f" Light blue marks the field running over the image edge ({100 * pad:.1f}% of the pixels shown)."
                if pad > 0 else "")
    caption = (f"The {k} {split} patches ({s}x{s} pixels, {tp.layer}'s receptive field) that excite each of "
               f"{tp.layer}'s {c} filters most, one image each, searched over all {tp.n_images} {split} images; "
               f"grayscale pixels, white = ink, strongest patch first. Each title gives the filter number and its "
               f"strongest activation ({tp.values[:, 0].min():.3g} to {tp.values[:, 0].max():.3g}).{pure_text}"
               f"{dead_text}{pad_text} Values, image indices and positions are in the JSON beside the figure.")
    from ..viz.style import block_grid  # noqa: PLC0415 - the drawing's grid rule, so the alt text says the layout

    inner = math.ceil(math.sqrt(k))
    side = inner * s + inner - 1  # a block: the patches in a square-ish grid with 1-pixel seams
    rows, cols = block_grid(c, -(-k // inner) * s + -(-k // inner) - 1, side)
    alt = (f"A {rows} by {cols} grid of {c} blocks, one per {tp.layer} filter, each holding {k} small grayscale "
           f"{s}x{s} image crops that excite that filter most.")
    return caption, alt
