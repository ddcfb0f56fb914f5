"""MNIST-like datasets by name: where their IDX files are, how to read them, and how to download them.

A split is read whole into memory as one uint8 array (60,000 digits are 47 MB); the training code turns it into one
device tensor and draws batches by index, so there is no per-sample transform or DataLoader. torchvision is imported
only by :func:`download`: importing it costs seconds and the reading path does not need it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from .bundled import BundledError, bundled_files, check_md5, is_bundled
from .idx import IdxError, read_idx

SPLITS = ("train", "test")
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    classes: tuple[str, ...]
    mean: float | None  # per-pixel mean of the official training split on [0, 1]; None: computed from the data
    std: float | None
    counts: dict[str, int] | None  # official split sizes
    torchvision_class: str | None  # None: cannot be downloaded

    def files(self, split: str) -> tuple[str, str]:
        return _FILES[split]


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo("mnist", tuple(str(i) for i in range(10)), 0.1307, 0.3081,
                         {"train": 60000, "test": 10000}, "MNIST"),
    "fashion_mnist": DatasetInfo(
        "fashion_mnist",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        0.2860, 0.3530, {"train": 60000, "test": 10000}, "FashionMNIST"),
    "kmnist": DatasetInfo("kmnist", ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"), 0.1918, 0.3483,
                          {"train": 60000, "test": 10000}, "KMNIST"),
    # The user's own MNIST-like data: the same four file names, classes and statistics taken from the files.
    "idx": DatasetInfo("idx", (), None, None, None, None),
}


class DataError(InputError):
    """Data that cannot be found, downloaded or read; the message says where we looked and what to do."""


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # (N, H, W) or (N, H, W, C), uint8
    labels: np.ndarray  # (N,), int64
    files: tuple[str, str]
    picked: np.ndarray | None = None  # with load_split(pick=...): the indices whose images ``images`` holds

    def __len__(self) -> int:
        return len(self.labels)


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; accepted: {', '.join(DATASETS)}")
    return DATASETS[name]


def candidate_dirs(root: Path, info: DatasetInfo) -> list[Path]:
    """Folders searched for a dataset's files: the root itself, torchvision's layout, and a folder per name."""
    dirs = [root]
    if info.torchvision_class:
        dirs.append(root / info.torchvision_class / "raw")
    dirs += [root / info.name, root / info.name.replace("_", "-")]
    return list(dict.fromkeys(dirs))  # mnist has no "_": its two per-name folders are one


def find_files(root: str | Path | None, name: str, split: str) -> tuple[Path, Path] | None:
    """The (images, labels) files of a split, plain or .gz, or None when either is missing.

    Where the folders under ``root`` hold no MNIST test split (or ``root`` is None), the copy shipped inside the
    package stands in (data/bundled.py): the same official files, md5-checked when read.
    """
    info = dataset_info(name)
    for d in candidate_dirs(Path(root), info) if root is not None else []:
        found = [next((d / f for f in (base, base + ".gz") if (d / f).is_file()), None) for base in info.files(split)]
        images, labels = found
        if images is not None and labels is not None:
            return images, labels
    shipped = bundled_files(name, split)
    if shipped is not None and all(p.is_file() for p in shipped):
        return shipped
    return None


def placement_hint(root: str | Path, name: str, offer_download: bool = True) -> str:
    info = dataset_info(name)
    how = (f"Place the four IDX files ({', '.join(f for s in SPLITS for f in info.files(s))}, gzip or not) in "
           f"{root}, or set data.root to the folder that holds them")
    if info.torchvision_class and offer_download:
        how += ", or allow downloading with data.download=true on a machine with a network"
    return how + "."


def missing_message(root: str | Path, name: str, split: str) -> str:
    info = dataset_info(name)
    dirs = ", ".join(str(d) for d in candidate_dirs(Path(root), info))
    files = ", ".join(f"{b}[.gz]" for b in info.files(split))
    return f"{name} {split} split not found: looked for {files} in {dirs}. {placement_hint(root, name)}"


def load_split(root: str | Path | None, name: str, split: str,
               pick: Callable[[int], np.ndarray] | None = None) -> Split:
    """Read one split; a truncated or corrupt file raises DataError naming it. With ``pick`` (the number of images
    the file declares -> the indices wanted), only those images are kept in memory, in that order (``picked``);
    the labels are always all read (one byte each).

    ``root`` None: only a split shipped with the package (the MNIST test split) can be found.
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; accepted: {', '.join(SPLITS)}")
    paths = find_files(root, name, split)
    if paths is None:
        if root is None:
            raise DataError(f"no {name} {split} split is shipped with filterlab; set data.root to the folder with "
                            "its files")
        raise DataError(missing_message(root, name, split))
    img_path, lbl_path = paths
    try:
        if is_bundled(img_path):
            check_md5(img_path)
            check_md5(lbl_path)
        labels = read_idx(lbl_path, expect_ndim=1)
        declared: list[int] = []
        chosen: list[np.ndarray] = []

        def rows(n: int) -> np.ndarray:
            declared.append(n)
            chosen.append(np.asarray(pick(n) if pick is not None else np.arange(n), dtype=np.int64))
            return chosen[0]

        images = read_idx(img_path, rows=rows if pick is not None else None)
    except (IdxError, BundledError) as e:
        raise DataError(str(e)) from None
    except OSError as e:
        raise DataError(f"{e.filename}: cannot read: {e.strerror}") from None
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
        raise DataError(f"{img_path}: images must be N x H x W or N x H x W x C with C = 1 or 3, got {images.shape}")
    count = declared[0] if pick is not None else len(images)
    if count != len(labels):
        raise DataError(f"{img_path} holds {count} images but {lbl_path} holds {len(labels)} labels")
    return Split(images, labels.astype(np.int64), (str(img_path), str(lbl_path)),
                 chosen[0] if pick is not None else None)


def download(root: str | Path, name: str) -> None:
    """Download a named dataset with torchvision's downloader (its mirrors and checksums).

    Files are fetched into a temporary folder beside their destination and moved into place only once torchvision
    has verified them, so a failed or interrupted download never leaves a partial file under a final name.
    """
    info = dataset_info(name)
    if info.torchvision_class is None:
        raise DataError(f"dataset {name!r} cannot be downloaded; place its IDX files by hand")
    root = Path(root)
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    import socket  # noqa: PLC0415 - with the download only

    import torchvision.datasets as tvd  # noqa: PLC0415 - imported here only: it costs seconds

    cls = getattr(tvd, info.torchvision_class)
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(15)  # an unreachable mirror must fail in seconds, not hang
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=root))
    try:
        for train in (True, False):
            cls(str(tmp), train=train, download=True)
        src = tmp / info.torchvision_class / "raw"
        dest = root / info.torchvision_class / "raw"
        dest.mkdir(parents=True, exist_ok=True)
        for f in src.iterdir():
            if not f.name.endswith(".gz"):
                os.replace(f, dest / f.name)
    except Exception as e:  # noqa: BLE001 - torchvision raises RuntimeError, URLError, OSError ... on a failed download
        reason = " ".join(str(e).split())
        raise DataError(f"downloading {name} into {root} failed ({type(e).__name__}: {reason}). "
                        + placement_hint(root, name, offer_download=False)) from None
    finally:
        socket.setdefaulttimeout(old_timeout)
        shutil.rmtree(tmp, ignore_errors=True)
        if created and root.is_dir() and not any(root.iterdir()):
            root.rmdir()  # leave no empty folder behind when nothing arrived
