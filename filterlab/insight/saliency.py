"""Where the network looks in one image: class probabilities, Grad-CAM and gradient x input, and whether the image
resembles the training data at all.

- Grad-CAM (Selvaraju et al. 2017) on the last conv layer's channel activation A (after its activation function,
  before pooling): channel weights are the spatial mean of d logit / dA, the map is ReLU(sum_c w_c A_c), upsampled
  bilinearly to the input. Coarse (one value per position of that layer), class-specific. Averaging the gradient
  over positions assumes the head treats every position alike (global average pooling). A head that flattens the
  maps into a linear layer, as the two-conv nets here do, weighs each position differently, and the average can
  have the opposite sign of the evidence where the ink is: measured on the notebook net, Grad-CAM for the first
  test 7 puts none of its mass on the digit. The figure therefore also draws Grad-CAM's signed map before that
  ReLU, at the layer's own resolution: there the digit shows up, with a negative sign, so a learner sees what the
  ReLU threw away and why. It also shows
- HiResCAM (Draelos & Carin 2020): ReLU(sum_c dlogit/dA_c * A_c), position by position, without the averaging.
  For a max-pool + linear head its signed sum is exactly the logit minus the head's bias (tested), so it shows
  where the class evidence really sits, including "no ink here" evidence on the background.
- Gradient x input: d logit / d x times (x - x_black), where x_black is the model's input for an all-black image.
  Measuring from black rather than from 0 matters once inputs are standardised: there the background is not 0, and
  plain gradient x input would light up the empty background. Pixel-sharp, signed (the high end of the
  diverging map pushes towards the class).
- Image statistics: the mean grey value and the ink area (share of pixels above half brightness) against the
  training split's 0.5th-99.5th percentiles; an image outside either range is flagged, since the prediction of a
  net on inputs unlike its training data means little.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from filterlab.insight.probe import InputScale, Probe, forward_with
from filterlab.viz.style import signed_colours

INK_LEVEL = 0.5  # a pixel is ink above half brightness (MNIST digits are light on dark)
RANGE_PERCENTILES = (0.5, 99.5)


@dataclass(frozen=True)
class Ranges:
    """The training split's typical range of each image statistic (percentiles ``RANGE_PERCENTILES``)."""

    mean: tuple[float, float]
    ink: tuple[float, float]
    images: int


def image_stats(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean grey value and ink share of uint8 images (N, H, W[, C]) on [0, 1]: ((N,), (N,))."""
    f = np.asarray(pixels, dtype=np.float32).reshape(len(pixels), -1) / 255.0
    return f.mean(axis=1), (f > INK_LEVEL).mean(axis=1)


def training_ranges(train_images: np.ndarray) -> Ranges:
    mean, ink = image_stats(train_images)
    lo, hi = RANGE_PERCENTILES
    return Ranges(tuple(np.percentile(mean, [lo, hi]).tolist()), tuple(np.percentile(ink, [lo, hi]).tolist()),
                  len(train_images))


def unlike_training(pixels: np.ndarray, ranges: Ranges) -> list[str]:
    """Sentences naming each statistic of one uint8 image that falls outside the training split's range."""
    mean, ink = (float(v[0]) for v in image_stats(pixels[None]))
    out = []
    span = f"{RANGE_PERCENTILES[1] - RANGE_PERCENTILES[0]:g}% of the {ranges.images} training images"
    for what, v, (lo, hi) in (("mean grey value", mean, ranges.mean), ("ink area", ink, ranges.ink)):
        if not lo <= v <= hi:
            out.append(f"its {what} {v:.3f} is outside the range of {span} ({lo:.3f} to {hi:.3f})")
    if mean > 0.5:
        out.append("it is mostly bright: the training digits are light strokes on a dark background")
    return out


@dataclass
class Saliency:
    """One image explained for one class."""

    image: np.ndarray  # (H, W) or (H, W, 3) pixels in [0, 1]
    probs: np.ndarray  # (classes,)
    target: int  # the class explained (the predicted one unless asked otherwise)
    layer: str  # the conv layer Grad-CAM used
    gradcam: np.ndarray  # (H, W) >= 0, upsampled from the layer's map
    hirescam: np.ndarray  # (H, W) >= 0, the same without averaging the gradient over positions
    layer_maps: dict[str, np.ndarray]  # "gradcam", "hirescam": the signed maps at the layer's own resolution
    grad_input: np.ndarray  # (H, W) signed, summed over input channels
    classes: tuple[str, ...]
    unlike: list[str] = field(default_factory=list)

    @property
    def predicted(self) -> int:
        return int(self.probs.argmax())


def explain(model: nn.Module, probe: Probe, scale: InputScale, pixels: np.ndarray, target: int | None = None,
            classes: Sequence[str] | None = None, ranges: Ranges | None = None) -> Saliency:
    """Probabilities, Grad-CAM on ``probe`` (normally the last conv layer) and gradient x input for one uint8 image."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        x = scale.from_uint8(pixels[None], device).requires_grad_(True)  # (1, C, H, W)
        logits, acts = forward_with(model, x, probe)
        acts.retain_grad()
        probs = F.softmax(logits.detach(), dim=1)[0]
        target = int(probs.argmax()) if target is None else target
        logits[0, target].backward()
        a, g = acts.detach(), acts.grad  # (1, C, h, w)
        assert g is not None and x.grad is not None  # both are on the graph of the logit
        signed = {"gradcam": (g.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1)[0], "hirescam": (g * a).sum(dim=1)[0]}
        up = {k: F.interpolate(F.relu(v)[None, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
              for k, v in signed.items()}
        black = scale.to_model(torch.zeros_like(x))
        gxi = (x.grad * (x.detach() - black)).sum(dim=1)[0]
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    image = np.asarray(pixels, dtype=np.float64) / 255.0
    names = tuple(classes) if classes is not None else tuple(str(i) for i in range(len(probs)))
    return Saliency(image, probs.cpu().numpy(), target, probe.name, up["gradcam"].cpu().numpy(),
                    up["hirescam"].cpu().numpy(), {k: v.cpu().numpy() for k, v in signed.items()},
                    gxi.detach().cpu().numpy(), names, unlike_training(pixels, ranges) if ranges else [])


def ink_mask(image: np.ndarray) -> np.ndarray:
    grey = image if image.ndim == 2 else image.mean(axis=-1)
    return grey > INK_LEVEL


def ink_cells(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The positions of a coarse (h, w) map whose patch of the image holds any ink (adaptive max pooling)."""
    mask = torch.from_numpy(ink_mask(image).astype(np.float32))[None, None]
    return F.adaptive_max_pool2d(mask, shape)[0, 0].numpy() > 0


def mass_on(mask: np.ndarray, values: np.ndarray) -> float:
    """Share of a non-negative map's total on the masked pixels (NaN for an all-zero map)."""
    total = float(values.sum())
    return float(values[mask].sum()) / total if total > 0 else float("nan")


def _share_text(name: str, share: float) -> str:
    return f"{name} {100 * share:.0f}%" if np.isfinite(share) else f"{name} none (its map is zero everywhere)"


@dataclass(frozen=True)
class SignedOnInk:
    """Grad-CAM's signed map (before its ReLU) on the ink, at the layer's own resolution."""

    cells: np.ndarray  # (h, w) bool: the positions whose patch of the image holds any ink
    total: float  # the signed map summed over those positions
    share: float  # their share of the map's absolute mass (NaN for an all-zero map)


def signed_on_ink(s: Saliency) -> SignedOnInk:
    signed = s.layer_maps["gradcam"]
    cells = ink_cells(s.image, signed.shape)
    return SignedOnInk(cells, float(signed[cells].sum()), mass_on(cells, np.abs(signed)))


def _positions(n: int) -> str:
    return f"{n} position" + ("" if n == 1 else "s")


def signed_gradcam_text(s: Saliency, cmap: str = "RdBu_r") -> str:
    """What Grad-CAM's signed map (before its ReLU) does on the ink, at the layer's own resolution, in one sentence."""
    m = signed_on_ink(s)
    if not m.cells.any() or not np.isfinite(m.share):
        return ""
    n = int(m.cells.sum())
    sign = "negative" if m.total < 0 else ("positive" if m.total > 0 else "zero")
    why = (f" Averaged over positions, the gradient makes the channels that fire on these strokes count, on balance, "
           f"against class {s.classes[s.target]}; Grad-CAM's ReLU drops every negative position." if m.total < 0
           else "")
    return (f" Before its ReLU, Grad-CAM's signed map ({cmap}, one square per {s.layer} position) sums to "
            f"{m.total:+.3g} over the {_positions(n)} that hold ink ({100 * m.cells.mean():.0f}% of the map), "
            f"{sign} on the digit, and {'these carry' if n > 1 else 'it carries'} {100 * m.share:.0f}% of its "
            f"absolute mass.{why}")


def caption_saliency(s: Saliency, cmap: str = "RdBu_r") -> tuple[str, str]:
    ink = ink_mask(s.image)
    low, high = signed_colours(cmap)
    shares = [_share_text("Grad-CAM", mass_on(ink, s.gradcam)), _share_text("HiResCAM", mass_on(ink, s.hirescam)),
              _share_text("positive gradient x input", mass_on(ink, np.clip(s.grad_input, 0, None)))]
    top2 = np.argsort(s.probs)[::-1][:2]
    pred, p = s.classes[s.predicted], float(s.probs[s.predicted])
    runner = f"; next {s.classes[top2[1]]} at {100 * s.probs[top2[1]]:.1f}%" if len(top2) > 1 else ""
    explained = "" if s.target == s.predicted else f" The maps explain class {s.classes[s.target]}, not the prediction."
    warn = (" Caution: this image looks unlike the training data: " + "; ".join(s.unlike) + ".") if s.unlike else ""
    caption = (f"Predicted {pred} with probability {100 * p:.1f}%{runner} (bar chart). Where the evidence for class "
               f"{s.classes[s.target]} sits: Grad-CAM and HiResCAM on {s.layer} (cividis, brighter = more; one "
               f"value per {s.layer} position, upsampled) and gradient x input measured from a black image ({cmap} "
               f"centred at zero, {high} pushes towards the class, {low} against it). The ink (pixels above half "
               f"brightness) covers {100 * ink.mean():.0f}% of the image; its share of each map's mass: "
               f"{', '.join(shares)}.{signed_gradcam_text(s, cmap)}{explained}{warn}")
    warned = " The caption warns that the image is unlike the training data." if s.unlike else ""
    alt = (f"A grayscale input image, a bar chart of {len(s.probs)} class probabilities with {pred} highest at "
           f"{100 * p:.0f}%, a coarse {high}-{low} map of Grad-CAM's signed values before its ReLU, two coarse heat "
           f"maps of where the last conv layer finds evidence, and a {high}-{low} pixel map of each pixel's "
           f"contribution.{warned}")
    return caption, alt
