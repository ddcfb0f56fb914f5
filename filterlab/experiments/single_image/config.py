"""The single-image experiment's config: one image, N filters as large as it, a linear layer after them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...core.budget import Estimate, count, event_bytes, largest, snapshot_count, totals
from ...core.config import DEVICES, MAX_SEED, MAX_THREADS, Launcher, Output, opt, section
from ...core.geometry import Layer, Row


@dataclass(frozen=True)
class SingleImageData:
    image: str = opt("four", "a shipped sample (four, seven, digit-0..digit-9), DATASET:SPLIT:INDEX, or a PNG path")
    root: str | None = opt(None, "folder with the dataset's IDX files, for DATASET:SPLIT:INDEX images")
    scale: str = opt("raw", "input scaling: raw 0-255 grey values (as the article), unit [0, 1], or standard "
                     "(MNIST mean/std)", choices=("raw", "unit", "standard"))
    target: int | None = opt(None, "class the network is trained towards; null means the image's own label",
                             ge=0)


@dataclass(frozen=True)
class SingleImageModel:
    filters: int = opt(5, "number of convolution filters (the article uses 5)", ge=1, le=4096)
    kernel_size: int = opt(28, "filter side in pixels; 28 = as large as the image, so each filter yields one number",
                           ge=1, le=28)
    conv_bias: bool = opt(True, "bias on the convolution, as nn.Conv2d has by default")
    activation: str = opt("none", "between the convolution and the linear layer (the article has none)",
                          choices=("none", "relu"))
    num_classes: int = opt(10, "outputs of the linear layer (MNIST has 10 classes)", ge=2)


@dataclass(frozen=True)
class SingleImageTrain:
    optimizer: str = opt("adam", "adam (L2 in the gradient, as torch.optim.Adam), adamw or sgd",
                         choices=("adam", "adamw", "sgd"))
    lr: float = opt(1e-3, "learning rate (the article: 1e-3)", gt=0)
    weight_decay: float = opt(1e-5, "L2 weight decay (the article: 1e-5)", ge=0)
    momentum: float = opt(0.0, "SGD momentum; ignored by adam and adamw", ge=0, le=1)
    betas: tuple[float, float] = opt((0.9, 0.999), "Adam's beta1, beta2 (torch defaults)", ge=0, le=1)
    eps: float = opt(1e-8, "Adam's epsilon (torch default)", gt=0)
    steps: int = opt(5000, "full-batch steps (the article: 5000)", ge=1)
    batch_size: int = opt(1, "one image is the whole batch; only 1 is meaningful here", ge=1, le=1)
    flush_denormal: bool = opt(True, "flush floats below 1.2e-38 to zero while training: once the loss saturates the "
                               "softmax tail is denormal and slows x86 arithmetic ~2.5x; weights move by < 1e-29")


@dataclass(frozen=True)
class SingleImageConfig:
    kind: str = opt("single_image", "experiment kind", choices=("single_image",))
    name: str = opt("single_image", "run name: the run folder is outputs/NAME/TIMESTAMP-ID")
    seed: int = opt(0, "seeds the initial filters; the same seed on the CPU gives identical filters", ge=0,
                   le=MAX_SEED)
    device: str = opt("cpu", "auto, cpu or cuda; cpu by default: five filters on one image are launch-bound on a GPU",
                      choices=DEVICES)
    threads: int = opt(1, "torch CPU threads; 1 because the tensors are tiny and parallel sweeps share cores", ge=0,
                       le=MAX_THREADS)
    data: SingleImageData = section(SingleImageData)
    model: SingleImageModel = section(SingleImageModel)
    train: SingleImageTrain = section(SingleImageTrain)
    output: Output = section(Output)
    launcher: Launcher = section(Launcher)

    def check(self) -> list[tuple[str, str]]:
        problems = []
        if self.model.kernel_size > 28:
            problems.append(("model.kernel_size", "must be at most the image size, 28"))
        return problems




def layers(cfg: SingleImageConfig) -> tuple[list[Layer], tuple[int, int, int]]:
    """The network as geometry records, and its input (C, H, W): one grey 28x28 image."""
    m = cfg.model
    out = [Layer("conv", "conv", m.filters, m.kernel_size, bias=m.conv_bias)]
    if m.activation != "none":
        out.append(Layer("relu", "act", detail=m.activation))
    out += [Layer("flatten", "flatten"), Layer("linear", "linear", m.num_classes)]
    return out, (1, 28, 28)


def estimate(cfg: SingleImageConfig, table: list[Row], inputs: Any = None) -> Estimate:
    """Weights with gradient and two Adam moments, one loss per step, and the filter snapshots, in float32."""
    params, acts, conv = totals(table)
    o = cfg.output
    snaps = snapshot_count(cfg.train.steps, o.snapshot_every, o.early_snapshots)
    parts = {"model.filters": 4 * (4 * conv + 2 * acts), "model.num_classes": 4 * 4 * (params - conv),
             "train.steps": 4 * cfg.train.steps, "output.snapshot_every": 4 * snaps * conv}
    # TensorBoard: at each snapshot six scalars per filter (cosines with the image and with the change, binary
    # agreement, norm, change and cosine with the start), the loss and the scale
    events = event_bytes(table, snaps, 6, snaps, 2) if o.tensorboard else 0
    return Estimate(sum(parts.values()), 4 * snaps * conv, snaps,
                    f"{count(params)} parameters, {count(cfg.train.steps)} per-step losses, {count(snaps)} snapshots",
                    largest(parts), cfg.train.steps, "train.steps", events)
