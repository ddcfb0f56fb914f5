"""The classifier's config: a small conv net (two conv blocks by default) on an MNIST-like dataset."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ...core.budget import Estimate, count, event_bytes, largest, snapshot_count, totals
from ...core.config import DEVICES, MAX_SEED, MAX_THREADS, OPTIMIZERS, Launcher, Output, opt, section
from ...core.geometry import Layer, Row
from ...data.home import dataset_home


@dataclass(frozen=True)
class ClassifierData:
    dataset: str = opt("mnist", "mnist, fashion_mnist, kmnist, or idx (your own MNIST-like IDX files)",
                       choices=("mnist", "fashion_mnist", "kmnist", "idx"))
    root: str | None = opt(None, "folder with the four IDX files (plain, .gz, or torchvision's DATASET/raw layout); "
                           "null: the per-user data folder, $FILTERLAB_DATA/DATASET (default ~/.cache/filterlab/data/"
                           "DATASET); a relative path in a config file is read from the file's folder")
    download: bool = opt(True, "download named datasets with torchvision when the files are missing")
    normalize: bool = opt(True, "subtract the dataset's mean and divide by its std (idx: computed from train)")
    val_fraction: float = opt(0.0, "share of the training split held out for validation (0: none)", ge=0, le=0.5)
    val_seed: int = opt(0, "seed of the validation split, fixed so every run holds out the same images", ge=0,
                        le=MAX_SEED)
    train_limit: int = opt(0, "use only this many training images after shuffling (0: all); for smoke tests", ge=0)
    test_limit: int = opt(0, "evaluate on only the first N test images (0: all); for smoke tests", ge=0)
    augment_shift: int = opt(0, "random shift of each training image by up to this many pixels (0: off)", ge=0, le=8)
    augment_flip: bool = opt(False, "mirror each training image left to right with probability 1/2: for datasets whose "
                             "classes look the same mirrored (Fashion-MNIST's clothes), not for digits or letters")
    channels: int | None = opt(None, "input channels the model is built for; null: the dataset's (1 for MNIST)",
                               ge=1, le=4)
    image_size: int | None = opt(None, "input side in pixels; null: the dataset's (28 for MNIST); a dataset of "
                                 "another size is refused before training", ge=4, le=512)
    sample: str = opt("test:first-7", "image for feature maps: SPLIT:INDEX or SPLIT:first-LABEL of this dataset, "
                      "a shipped sample, or a PNG path")


@dataclass(frozen=True)
class ClassifierModel:
    channels: tuple[int, ...] = opt((16, 32), "output channels of each conv block, one entry per block (16/32: twice "
                                    "the images per second of 32/64 on a CPU)", ge=1, le=1024)
    kernel_size: tuple[int, ...] = opt((3, 3), "kernel side of each conv block", ge=1, le=64)
    stride: tuple[int, ...] = opt((1, 1), "stride of each conv block", ge=1, le=8)
    padding: tuple[int, ...] = opt((1, 1), "zero padding of each conv block", ge=0, le=32)
    pool: tuple[int, ...] = opt((2, 2), "pooling window after each conv block (1: no pooling)", ge=1, le=8)
    pool_type: str = opt("max", "max or avg pooling", choices=("max", "avg"))
    pool_first: bool = opt(False, "pool straight after each convolution, then batch norm and the activation: a "
                           "quarter of their work with 2x2 pools (1.7x the images per second of 24/48 on a 2-core "
                           "CPU); the feature maps are still drawn at the convolution's resolution")
    activation: str = opt("relu", "after each conv and the hidden layer", choices=("relu", "gelu", "tanh"))
    batch_norm: bool = opt(True, "batch norm after each conv: faster, steadier training")
    dropout: float = opt(0.0, "dropout before the hidden and the output layer (0: fastest to a target accuracy; "
                         "long runs gain from 0.25)", ge=0, le=0.9)
    hidden: int = opt(128, "units of the hidden linear layer (0: conv features go straight to the output)", ge=0,
                      le=65536)


@dataclass(frozen=True)
class ClassifierTrain:
    optimizer: str = opt("adamw", "sgd (with momentum), adam, adamw or adadelta", choices=OPTIMIZERS)
    lr: float = opt(8e-3, "peak learning rate (with one-cycle, the top of the cycle)", gt=0)
    weight_decay: float = opt(5e-4, "weight decay (decoupled for adamw, L2 otherwise)", ge=0)
    momentum: float = opt(0.9, "SGD momentum", ge=0, le=1)
    betas: tuple[float, float] = opt((0.9, 0.999), "Adam/AdamW betas (torch defaults)", ge=0, le=1)
    epochs: int = opt(2, "passes over the training split; the one-cycle schedule spans them all", ge=1)
    batch_size: int = opt(128, "images per step", ge=1)
    schedule: str = opt("onecycle", "learning-rate schedule: none, step (gamma every step_size epochs), onecycle",
                        choices=("none", "step", "onecycle"))
    warmup: float = opt(0.15, "share of the one-cycle schedule spent raising the learning rate", gt=0, le=0.9)
    step_size: int = opt(1, "epochs between decays of the step schedule", ge=1)
    gamma: float = opt(0.7, "decay factor of the step schedule", gt=0, le=1)
    label_smoothing: float = opt(0.0, "cross-entropy label smoothing", ge=0, le=0.5)
    target_accuracy: float | None = opt(None, "stop once test accuracy reaches this (0-1); null: run all epochs",
                                        gt=0, le=1)
    eval_every: int = opt(0, "also evaluate every N steps (0: once per epoch)", ge=0)
    eval_batch_size: int = opt(128, "images per evaluation batch; measured on a 2-core CPU, 1000-image batches were "
                               "2-3x slower (they overflow the cache); on a GPU larger ones pay", ge=1)
    log_every: int = opt(50, "steps between training-loss records in metrics.jsonl", ge=1)
    channels_last: bool = opt(True, "NHWC memory layout for the convolutions: 1.3x faster on this CPU (measured)")
    amp: str = opt("none", "mixed precision of the training step (autocast; evaluation stays float32): none; bf16 on "
                   "CUDA or the CPU (a CPU pays only with native bf16, AMX or AVX-512 BF16: 1.3-1.9x the images per "
                   "second on a 2-core Xeon with AMX, measured); fp16 on CUDA with a gradient scaler (ignored on the "
                   "CPU); auto: bf16 where the device computes it natively, none elsewhere",
                   choices=("none", "bf16", "fp16", "auto"))


@dataclass(frozen=True)
class ClassifierOutput(Output):
    snapshot_every: int = opt(100, "steps between snapshots of every conv layer's filters (initial and final always "
                              "kept)", ge=1)


@dataclass(frozen=True)
class ClassifierConfig:
    kind: str = opt("classifier", "experiment kind", choices=("classifier",))
    name: str = opt("classifier", "run name: the run folder is outputs/NAME/TIMESTAMP-ID")
    seed: int = opt(0, "seeds init, shuffling and dropout; the same seed on the CPU gives identical runs", ge=0,
                   le=MAX_SEED)
    device: str = opt("auto", "auto (CUDA when present), cpu or cuda (an error without a GPU)", choices=DEVICES)
    threads: int = opt(0, "torch CPU threads; 0: every core this process may use", ge=0, le=MAX_THREADS)
    data: ClassifierData = section(ClassifierData)
    model: ClassifierModel = section(ClassifierModel)
    train: ClassifierTrain = section(ClassifierTrain)
    output: ClassifierOutput = section(ClassifierOutput)
    launcher: Launcher = section(Launcher)

    def check(self) -> list[tuple[str, str]]:
        problems = []
        if self.data.dataset == "idx" and self.data.download:
            problems.append(("data.download", "the idx dataset cannot be downloaded; set it to false"))
        if self.data.dataset == "idx" and self.data.root is None:
            problems.append(("data.root", "null, but the idx dataset is your own files: set data.root to their folder"))
        m = self.model
        n = len(m.channels)
        for key in ("kernel_size", "stride", "padding", "pool"):
            if len(getattr(m, key)) != n:
                problems.append((f"model.{key}", f"has {len(getattr(m, key))} entries but model.channels has {n}: "
                                                 "give one value per conv block"))
        if not 1 <= n <= 8:
            problems.append(("model.channels", f"{n} conv blocks; accepted: 1 to 8"))
        return problems


def data_root(d: ClassifierData) -> str:
    """data.root, or for null the dataset's folder in the per-user data folder."""
    return d.root if d.root is not None else str(dataset_home(d.dataset))


def layers(cfg: ClassifierConfig) -> tuple[list[Layer], tuple[int, int, int]]:
    """The network as geometry records, and its input (C, H, W): data.channels x data.image_size, MNIST's when null."""
    m = cfg.model
    out: list[Layer] = []
    for i, (c, k, s, p, q) in enumerate(zip(m.channels, m.kernel_size, m.stride, m.padding, m.pool), start=1):
        out.append(Layer(f"conv{i}", "conv", c, k, s, p, bias=not m.batch_norm))
        if q > 1 and m.pool_first:
            out.append(Layer(f"pool{i}", "pool", 0, q, q, detail=m.pool_type))
        if m.batch_norm:
            out.append(Layer(f"bn{i}", "norm", detail="batch norm"))
        out.append(Layer(f"{m.activation}{i}", "act", detail=m.activation))
        if q > 1 and not m.pool_first:
            out.append(Layer(f"pool{i}", "pool", 0, q, q, detail=m.pool_type))
    out.append(Layer("flatten", "flatten"))
    if m.hidden:
        out += [Layer("hidden", "linear", m.hidden), Layer(f"{m.activation}_hidden", "act", detail=m.activation)]
    out.append(Layer("output", "linear", 10))
    side = cfg.data.image_size or 28
    return out, (cfg.data.channels or 1, side, side)


TRAIN_IMAGES = 60_000  # the largest training split of the named datasets


def estimate(cfg: ClassifierConfig, table: list[Row], inputs: Any = None) -> Estimate:
    """Weights with gradient and optimiser state, one batch's activations (forward and backward), the data held as
    float32, and the snapshots of every conv layer."""
    params, acts, conv = totals(table)
    t, o = cfg.train, cfg.output
    image = math.prod(table[0].shape)
    # the loaded data's count when there is one; before it is read, the memory assumes the largest split a named
    # dataset has and the step and snapshot counts only what data.train_limit says (checked again once it is read)
    known = len(inputs.train_y) if inputs is not None else cfg.data.train_limit
    limit = known or TRAIN_IMAGES
    steps = t.epochs * math.ceil(known / t.batch_size)
    snaps = snapshot_count(steps, o.snapshot_every, o.early_snapshots)
    batch = max(t.batch_size, t.eval_batch_size)
    batch_key = "train.batch_size" if t.batch_size >= t.eval_batch_size else "train.eval_batch_size"
    data_key = "data.image_size" if image > 28 * 28 else "data.train_limit"
    parts = {"model": 4 * 4 * params, batch_key: 4 * 3 * acts * batch, data_key: 4 * (limit + 10_000) * image,
             "output.snapshot_every": 4 * snaps * conv}
    # TensorBoard: two scalars per filter at each snapshot (change, cosine), a loss and learning rate every
    # train.log_every steps, about ten numbers an epoch or evaluation
    records = steps // t.log_every + t.epochs + (steps // t.eval_every if t.eval_every else 0)
    events = event_bytes(table, snaps, 2, records, 10) if o.tensorboard else 0
    return Estimate(sum(parts.values()), 4 * snaps * conv, snaps,
                    f"{count(params)} parameters, {count(acts)} activations per image x {count(batch)} images per "
                    f"batch, {count(snaps)} snapshots", largest(parts), steps, "train.epochs", events)
