"""The classifier's data: a whole MNIST-like split held as one tensor on the training device.

Everything is found, read and checked before a run folder exists; a missing or malformed dataset raises an
InputError that says how to fix it. Batches are drawn by a shuffled index on the device (no DataLoader, no per-sample
transform); the optional random shift and left-right flip are the only augmentations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...core.errors import InputError
from ...data.bundled import is_bundled
from ...data.datasets import DataError, Split, dataset_info, download, find_files, load_split
from ...data.images import Image28, ImageError, load_image
from .config import ClassifierConfig, ClassifierData, data_root


@dataclass
class Data:
    """Everything a classifier run reads, loaded and checked before the run directory is created."""

    dataset: str
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    train_x: np.ndarray  # (N, H, W[, C]) uint8
    train_y: np.ndarray
    val_x: np.ndarray | None
    val_y: np.ndarray | None
    test_x: np.ndarray
    test_y: np.ndarray
    sample: np.ndarray  # (H, W[, C]) uint8
    sample_label: int | None
    sample_desc: str
    files: dict[str, list[str]]
    notes: list[str]

    @property
    def channels(self) -> int:
        return 1 if self.train_x.ndim == 3 else int(self.train_x.shape[-1])

    @property
    def image_size(self) -> int:
        return int(self.train_x.shape[1])


def read_splits(d: ClassifierData) -> tuple[Split, Split]:
    """The train and test splits, downloaded first where allowed and missing."""
    info, root = dataset_info(d.dataset), data_root(d)
    missing = [s for s in ("train", "test") if find_files(root, d.dataset, s) is None]
    if missing and d.download and info.torchvision_class:
        try:
            download(root, d.dataset)
        except DataError as e:
            raise InputError(f"data: {e}") from None
    # only the images the run uses are kept (data.train_limit, data.test_limit): the same ones, in the same order, as
    # shuffling the whole split and cutting it, so a bounded read changes no result
    train_pick = ((lambda n: np.random.default_rng(d.val_seed).permutation(n)[:d.train_limit]) if d.train_limit
                  else None)
    test_pick = (lambda n: np.arange(min(n, d.test_limit))) if d.test_limit else None
    try:
        train = load_split(root, d.dataset, "train", pick=train_pick)
        test = load_split(root, d.dataset, "test", pick=test_pick)
    except DataError as e:
        raise InputError(f"data.root: {e}") from None
    if train.images.shape[1:] != test.images.shape[1:]:
        raise InputError(f"data.root: train images are {train.images.shape[1:]} but test images are "
                         f"{test.images.shape[1:]}")
    return train, test


def check_shape(d: ClassifierData, train: Split) -> None:
    """data.channels and data.image_size, where set, must be what the files hold."""
    side, root = int(train.images.shape[1]), data_root(d)
    channels = 1 if train.images.ndim == 3 else int(train.images.shape[-1])
    if d.image_size is not None and d.image_size != side:
        raise InputError(f"data.image_size: {d.image_size}, but the {d.dataset} images in {root} are {side}x{side}; "
                         f"set data.image_size to {side} or null")
    if d.channels is not None and d.channels != channels:
        raise InputError(f"data.channels: {d.channels}, but the {d.dataset} images in {root} have {channels}; "
                         f"set data.channels to {channels} or null")


def channel_stats(d: ClassifierData, tx: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:  # noqa: E501
    """The dataset's published mean and std, or for the user's own data those of its training split, per channel."""
    info = dataset_info(d.dataset)
    if info.mean is not None and info.std is not None:
        return (info.mean,), (info.std,)
    f = tx.astype(np.float64) / 255.0
    return tuple(np.atleast_1d(f.mean(axis=(0, 1, 2))).tolist()), tuple(np.atleast_1d(f.std(axis=(0, 1, 2))).tolist())


def prepare_data(cfg: ClassifierConfig) -> Data:
    """Find (or download), read and check the dataset; raise InputError with a remedy if anything is missing."""
    d = cfg.data
    info = dataset_info(d.dataset)
    train, test = read_splits(d)
    check_shape(d, train)
    notes = [f"{split}: {len(s)} images (the official {d.dataset} {split} split has {info.counts[split]})"
             for split, s in (("train", train), ("test", test)) if info.counts and len(s) != info.counts[split]]
    if is_bundled(test.files[0]):
        notes.append(f"test: {d.root} holds no test split; the MNIST test split shipped with filterlab was used")
    n_classes = int(max(train.labels.max(), test.labels.max())) + 1
    classes = info.classes or tuple(str(i) for i in range(n_classes))
    if n_classes > len(classes):
        raise InputError(f"data: labels go up to {n_classes - 1}, but {d.dataset} has {len(classes)} classes")
    if train.picked is not None:  # read_splits kept only these (data.train_limit)
        tx, ty = train.images, train.labels[train.picked]
    else:
        order = np.random.default_rng(d.val_seed).permutation(len(train))
        tx, ty = train.images[order], train.labels[order]
    vx = vy = None
    if d.val_fraction:
        n_val = max(1, int(round(len(tx) * d.val_fraction)))
        vx, vy, tx, ty = tx[:n_val], ty[:n_val], tx[n_val:], ty[n_val:]
    sx, sy = test.images, (test.labels if test.picked is None else test.labels[test.picked])
    mean, std = channel_stats(d, tx)
    sample = sample_image(cfg, d.sample, int(train.images.shape[-1]) if train.images.ndim == 4 else 1)
    return Data(d.dataset, classes, mean, std, tx, ty, vx, vy, sx, sy, sample.pixels, sample.label,
                sample.description, {"train": list(train.files), "test": list(test.files)}, notes)


def sample_image(cfg: ClassifierConfig, spec: str, channels: int, key: str = "data.sample") -> Image28:
    """A sample image for feature maps and saliency: SPLIT:INDEX of the run's dataset or any image spec."""
    try:
        img = load_image(spec, Path(data_root(cfg.data)), dataset=cfg.data.dataset, keep_channels=True)
    except ImageError as e:
        raise ImageError(f"{key}: {e}") from None
    if channels > 1 and img.pixels.ndim == 2:
        img = type(img)(np.repeat(img.pixels[..., None], channels, axis=-1), img.label, img.description, img.spec,
                        img.notes)
    return img


def to_tensor(x: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...], normalize: bool,
              device: torch.device) -> torch.Tensor:
    """uint8 (N, H, W[, C]) -> float32 (N, C, H, W) on the device, normalised once."""
    t = torch.from_numpy(np.array(x, copy=True)).to(device)  # IDX arrays are read-only views
    t = t.unsqueeze(1) if t.dim() == 3 else t.permute(0, 3, 1, 2)
    t = t.float().div_(255.0)
    if normalize:
        m = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        s = torch.tensor(std, device=device).view(1, -1, 1, 1)
        t = t.sub_(m).div_(s)
    return t.contiguous()


def random_shift(x: torch.Tensor, max_shift: int, fill: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Shift each image of a batch by its own random offset in [-max_shift, max_shift]^2, filling with background."""
    b, c, h, w = x.shape
    p = max_shift
    padded = fill.view(1, -1, 1, 1).expand(b, c, h + 2 * p, w + 2 * p).clone()
    padded[:, :, p:p + h, p:p + w] = x
    off = torch.randint(0, 2 * p + 1, (2, b), generator=gen, device=gen.device).to(x.device)
    rows = (torch.arange(h, device=x.device).view(1, h) + off[0].view(b, 1)).view(b, 1, h, 1).expand(b, c, h, w)
    cols = (torch.arange(w, device=x.device).view(1, w) + off[1].view(b, 1)).view(b, 1, 1, w).expand(b, c, h, w)
    return _crop(padded, rows, cols)


def random_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Mirror each image of a batch left to right with probability 1/2, drawn from ``gen``."""
    flip = (torch.rand(len(x), generator=gen, device=gen.device) < 0.5).to(x.device).view(-1, 1, 1, 1)
    return torch.where(flip, x.flip(3), x)


def _crop(padded: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    b, c, h, w = rows.shape
    bi = torch.arange(b, device=padded.device).view(b, 1, 1, 1)
    ci = torch.arange(c, device=padded.device).view(1, c, 1, 1)
    return padded[bi, ci, rows, cols]


