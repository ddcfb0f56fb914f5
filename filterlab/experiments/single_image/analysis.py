"""What the single-image filters became: cosines with the image and with their change, binarised agreement.

All of it is computed from the snapshots alone, so a finished run's numbers and figures can be rebuilt from its
files.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def scale_image(pixels: np.ndarray, scale: str) -> torch.Tensor:
    """uint8 (28, 28) -> float32 (1, 28, 28) as the network sees it: raw 0-255, unit [0, 1] or standardised."""
    x = torch.from_numpy(np.asarray(pixels, dtype=np.float32)).unsqueeze(0)
    if scale == "raw":
        return x
    x = x / 255.0
    if scale == "unit":
        return x
    if scale == "standard":
        return (x - MNIST_MEAN) / MNIST_STD
    raise ValueError(f"unknown scale {scale!r}")


def patches(x: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """im2col of one image: (1, H, W) -> (k*k, L), column l is the patch under output position l (row-major)."""
    return F.unfold(x.unsqueeze(0), kernel_size).squeeze(0)



def similarity(filters: torch.Tensor, initial: torch.Tensor, image: torch.Tensor) -> dict[str, np.ndarray]:
    """How much each filter, and each filter's change since ``initial``, looks like the image.

    ``filters``: (S, N, 1, k, k) snapshots; ``initial``: (N, 1, k, k); ``image``: (1, H, W) as the network saw it.
    For a full-size filter the comparison is with the whole image; for a smaller kernel, with the image patch whose
    cosine is largest in size. Returns (S, N) arrays: ``weight_cosine``, ``change_cosine`` (NaN where nothing changed
    yet), ``binary_agreement`` (share of pixels on the same side of their own mean, filter and image patch: what the
    article's thresholded pictures show), and ``norm``.
    """
    k = filters.shape[-1]
    P = patches(image.double(), k)  # (K, L)
    Pn = P / P.norm(dim=0).clamp_min(1e-12)
    w = filters.double().flatten(2)  # (S, N, K)
    dw = w - initial.double().flatten(1)

    def best_cos(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        norm = a.norm(dim=-1, keepdim=True)
        # one snapshot at a time: a batched product's rounding depends on how many snapshots there are, and a
        # resumed run must log, bit for bit, the numbers an uninterrupted one logs
        cos = torch.stack([(a_s / n_s.clamp_min(1e-300)) @ Pn for a_s, n_s in zip(a, norm)])  # (S, N, L)
        idx = cos.abs().argmax(dim=-1, keepdim=True)
        best = cos.gather(-1, idx).squeeze(-1)
        best[norm.squeeze(-1) == 0] = float("nan")
        return best, idx.squeeze(-1)

    wcos, widx = best_cos(w)
    dcos, _ = best_cos(dw)
    patch = P.t()[widx]  # (S, N, K): the patch each filter is compared with
    agree = ((w > w.mean(-1, keepdim=True)) == (patch > patch.mean(-1, keepdim=True))).double().mean(-1)
    return {"weight_cosine": wcos.numpy(), "change_cosine": dcos.numpy(), "binary_agreement": agree.numpy(),
            "norm": w.norm(dim=-1).numpy()}


def _num(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def summarise(loss_t: torch.Tensor, steps_done: int, logits: torch.Tensor, sim: dict[str, np.ndarray], target: int,
              seconds: float) -> dict[str, Any]:
    loss = loss_t.numpy()
    zero = np.flatnonzero(loss == 0.0)
    filters = []
    for i in range(sim["weight_cosine"].shape[1]):
        filters.append({
            "filter": i + 1,
            "weight_cosine_start": _num(sim["weight_cosine"][0, i]),
            "weight_cosine_end": _num(sim["weight_cosine"][-1, i]),
            "change_cosine_end": _num(sim["change_cosine"][-1, i]),
            "binary_agreement_start": _num(sim["binary_agreement"][0, i]),
            "binary_agreement_end": _num(sim["binary_agreement"][-1, i]),
            "norm_start": _num(sim["norm"][0, i]),
            "norm_end": _num(sim["norm"][-1, i]),
        })
    wc, dc = sim["weight_cosine"][-1], sim["change_cosine"][-1]
    return {
        "kind": "single_image",
        "steps": steps_done,
        "target": target,
        "predicted_class": int(logits.argmax()),
        "final_loss": _num(loss[-1]),
        "first_zero_loss_step": int(zero[0]) if len(zero) else None,
        "weight_cosine_abs_mean": _num(np.abs(wc).mean()),
        "change_cosine_abs_min": _num(np.abs(dc).min()),
        # a filter that turned into the negative image agrees on few pixels; either polarity counts as a match here
        "binary_agreement_either_polarity_mean": _num(np.maximum(sim["binary_agreement"][-1],
                                                                 1 - sim["binary_agreement"][-1]).mean()),
        "train_seconds": round(seconds, 4),
        "filters": filters,
    }


def metric_records(loss: torch.Tensor | dict[int, float], snap_steps: list[int], sim: dict[str, np.ndarray]
                   ) -> list[dict[str, Any]]:
    """One metrics line per snapshot step; ``loss[step]`` is the loss there (a tensor of every step's, or a dict)."""
    out = []
    for j, step in enumerate(snap_steps):
        out.append({
            "step": step,
            "loss": _num(float(loss[step])),
            "weight_cosine": [_num(v) for v in sim["weight_cosine"][j]],
            "change_cosine": [_num(v) for v in sim["change_cosine"][j]],
            "binary_agreement": [_num(v) for v in sim["binary_agreement"][j]],
            "filter_norm": [_num(v) for v in sim["norm"][j]],
        })
    return out


