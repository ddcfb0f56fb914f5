"""Feature visualisation: for each channel of a conv layer, an input image optimised to excite it.

All channels of a layer are optimised together as one batch (image c for channel c), from the same fixed-seed start:
low-contrast noise around mid-grey. The choices, and why:

- Objective: by default the channel's value at the centre of its map, not its mean over the map. A conv layer is
  translation-equivariant, so the optimum of the map's mean is a texture; for a first layer, linear in a bounded
  input, it is a flat image (every pixel pushed the same way by the filter's summed weight), which says nothing.
  The centre position's optimum is the pattern inside one receptive field, measured at one position, exactly like a
  top dataset patch, so the two activations compare directly. ``objective="mean"`` gives the map's mean instead.
- The value is taken *before* the channel's activation function: a ReLU channel that is silent on the random start
  would otherwise get no gradient at all. Results are measured on the final image without jitter, before and after
  the activation.
- The image is kept in the data's own pixel range, [0, 1] (a projection after every step), and mapped to the
  model's input by its :class:`InputScale`. A bound is needed (a conv layer is linear in its input, so without one
  the activation grows without limit), and this bound is the one the data obeys, so a result above the best dataset
  patch's activation means the optimiser found more than the data holds. The box takes the place of an L2 penalty,
  which would only dim the image without making it comparable.
- Total variation (mean absolute difference of neighbouring pixels), because handwriting and clothing are smooth
  strokes and areas on a flat background: it removes the pixel-level checkerboard that gradient ascent produces
  through strided pooling (an L2 penalty would keep that noise, only smaller). Its weight is relative to the
  channel's current objective, so one setting serves channels whose activations differ by orders of magnitude.
- Jitter: the image is shifted by up to ``jitter`` pixels (circularly) at every step, so the pattern must work at
  neighbouring positions too rather than exploit one exact alignment with the pooling grid. By default the shift is
  a seventh of the receptive field (2 pixels for a 14x14 field, none for a 5x5 one, where a 2-pixel shift would
  blur the whole pattern).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from filterlab.insight.patches import cut_patch
from filterlab.insight.probe import InputScale, Probe, capture


@dataclass
class FeatureVis:
    """Optimised inputs of one layer, one per channel, and what they achieve."""

    layer: str
    images: np.ndarray  # (C, H, W) or (C, H, W, 3): pixels in [0, 1]
    crops: np.ndarray  # (C, S, S[, 3]): the receptive field of the centre position, what the centre value sees
    objective_name: str  # "centre" or "mean"
    start_objective: np.ndarray  # (C,) the objective (before the activation function) on the random start
    objective: np.ndarray  # (C,) the same on the final image
    value: np.ndarray  # (C,) the objective's position(s) after the activation function: comparable with patches
    steps: int
    seed: int
    tv_weight: float
    jitter: int


def total_variation(p: torch.Tensor) -> torch.Tensor:
    """Per image: mean absolute difference between vertical and horizontal neighbours. (B, C, H, W) -> (B,)."""
    dv = (p[:, :, 1:, :] - p[:, :, :-1, :]).abs().mean(dim=(1, 2, 3))
    dh = (p[:, :, :, 1:] - p[:, :, :, :-1]).abs().mean(dim=(1, 2, 3))
    return dv + dh


def _diagonal(acts: torch.Tensor) -> torch.Tensor:
    """(C, C, H, W) activations of C images -> (C, H, W): image c's map of channel c."""
    c = acts.shape[0]
    return acts[torch.arange(c), torch.arange(c)]


def _reduce(maps: torch.Tensor, objective: str) -> torch.Tensor:
    """(C, H, W) -> (C,): the centre position's value or the map's mean."""
    if objective == "mean":
        return maps.mean(dim=(1, 2))
    return maps[:, maps.shape[1] // 2, maps.shape[2] // 2]


@torch.no_grad()
def measure(model: nn.Module, probe: Probe, scale: InputScale, pixels: torch.Tensor, objective: str = "centre"
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """The objective of channel c on image c, before and after the activation function: ((C,), (C,))."""
    x = scale.to_model(pixels)
    pre = _diagonal(capture(model, x, [probe], where="pre")[probe.name])
    post = _diagonal(capture(model, x, [probe], where="post")[probe.name])
    return _reduce(pre, objective), _reduce(post, objective)


def centre_crop(images: np.ndarray, probe: Probe) -> np.ndarray:
    """(C, H, W[, 3]) -> (C, S, S[, 3]): the receptive field of the map's centre position, NaN outside the image."""
    i, j = probe.map_size[0] // 2, probe.map_size[1] // 2
    return np.stack([cut_patch(im, probe.field, i, j) for im in images])


def feature_visualisation(model: nn.Module, probe: Probe, scale: InputScale, image_shape: tuple[int, int, int],
                          steps: int = 200, lr: float = 0.05, tv_weight: float = 0.3, jitter: int | None = None,
                          seed: int = 0, objective: str = "centre") -> FeatureVis:
    """Optimise one (C_in, H, W) image per channel of ``probe`` to maximise that channel's ``objective``."""
    if objective not in ("centre", "mean"):
        raise ValueError(f"objective {objective!r} is not one of centre, mean")
    jitter = probe.field.size // 7 if jitter is None else jitter
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    flags = [prm.requires_grad for prm in model.parameters()]
    for prm in model.parameters():  # only the image is optimised; restored below
        prm.requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    start = (0.5 + 0.1 * (torch.rand(probe.channels, *image_shape, generator=gen) - 0.5)).to(device)
    shifts = torch.randint(-jitter, jitter + 1, (steps, 2), generator=gen).tolist()
    p = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([p], lr=lr)
    try:
        for dy, dx in shifts:
            shifted = torch.roll(p, shifts=(dy, dx), dims=(2, 3))
            pre = _diagonal(capture(model, scale.to_model(shifted), [probe], where="pre")[probe.name])
            value = _reduce(pre, objective)  # (C,)
            # image c's loss depends on channel c only, so one summed loss optimises every channel independently
            loss = (-value + tv_weight * value.detach().abs().clamp_min(1e-3) * total_variation(p)).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                p.clamp_(0.0, 1.0)
        start_pre, _ = measure(model, probe, scale, start, objective)
        pre_end, post_end = measure(model, probe, scale, p.detach(), objective)
    finally:
        for prm, flag in zip(model.parameters(), flags, strict=True):
            prm.requires_grad_(flag)
        model.train(was_training)
    imgs = p.detach().cpu().numpy()
    imgs = imgs[:, 0] if imgs.shape[1] == 1 else np.moveaxis(imgs, 1, -1)
    return FeatureVis(probe.name, imgs, centre_crop(imgs, probe), objective, start_pre.cpu().numpy(),
                      pre_end.cpu().numpy(), post_end.cpu().numpy(), steps, seed, tv_weight, jitter)


def comparison(fv: FeatureVis, best_patch: np.ndarray, best_mean: np.ndarray) -> dict[str, object]:
    """For the JSON sidecar and summary.json: per filter, the optimised input's activation beside the best dataset
    patch's (``best_patch``: (C,) top-1 patch activations; ``best_mean``: (C,) best map mean of any one image)."""
    best = best_mean if fv.objective_name == "mean" else best_patch
    filters = [{"filter": c + 1, "start_objective": round(float(fv.start_objective[c]), 6),
                "objective": round(float(fv.objective[c]), 6), "activation": round(float(fv.value[c]), 6),
                "best_dataset_activation": round(float(best[c]), 6),
                "ratio": round(float(fv.value[c] / best[c]), 4) if best[c] > 0 else None}
               for c in range(len(fv.value))]
    return {"layer": fv.layer, "objective": fv.objective_name, "steps": fv.steps, "seed": fv.seed,
            "tv_weight": fv.tv_weight, "jitter": fv.jitter, "pixel_range": [0.0, 1.0],
            "above_dataset": int((fv.value > best).sum()), "filters": filters}


def caption_feature_vis(fv: FeatureVis, best_patch: np.ndarray, n_images: int, show: int) -> tuple[str, str]:
    c = len(fv.value)
    above = fv.value > best_patch
    ratio = fv.value[best_patch > 0] / best_patch[best_patch > 0]
    s = fv.crops.shape[1]
    where = "the centre position of its map" if fv.objective_name == "centre" else "its map's mean"
    ratio_text = (f" Optimised / best patch: median {np.median(ratio):.2f}, from {ratio.min():.2f} to "
                  f"{ratio.max():.2f}." if len(ratio) else "")
    caption = (f"Feature visualisation of {fv.layer}: for each of its {c} filters, the {s}x{s} input (pixels kept in "
               f"[0, 1], the data's range) that {fv.steps} steps of gradient ascent on {where} produced from a fixed "
               f"random start (seed {fv.seed}; total-variation weight {fv.tv_weight:g}, jitter {fv.jitter} px), "
               f"then the filter's {show} most exciting patches of the {n_images} test images. Titles: the "
               f"optimised input's activation vs the best patch's. For {int(above.sum())} of {c} filters the "
               f"optimiser found an input that excites the filter more than any test patch.{ratio_text}")
    from ..viz.style import block_grid  # noqa: PLC0415 - the drawing's grid rule, so the alt text says the layout

    sep = max(2, s // 4)  # as draw_feature_vis lays a block out: the optimised input, a gap, the patches
    rows, cols = block_grid(c, s, s + sep + show * s + (show - 1))
    alt = (f"{c} blocks in {rows} row{'s' if rows > 1 else ''} of {cols}, one per {fv.layer} filter, each an "
           f"optimised grayscale pattern followed by {show} image crops that excite the same filter.")
    return caption, alt
