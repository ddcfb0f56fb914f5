"""The MNIST test split shipped inside the package (filterlab/data/mnist_test, CC BY-SA 3.0; see its README.md).

The two gzip files are the official ones; their md5 sums are checked every time they are read, so a damaged or
altered copy is refused by name instead of being measured on. Only the test split is shipped (1.7 MB): what needs
nothing else (the single-image claim test, top test patches) runs without a download; the training split is read
from ``data.root`` or downloaded there.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

BUNDLED_DIR = Path(__file__).resolve().parent / "mnist_test"
LICENCE = "MNIST (Y. LeCun, C. Cortes, C. J. C. Burges), CC BY-SA 3.0"
MD5 = {  # the official md5 sums of the published gzip files
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


class BundledError(Exception):
    """The shipped copy is missing or does not match its md5 sum."""


def bundled_files(dataset: str, split: str, folder: Path | None = None) -> tuple[Path, Path] | None:
    """The shipped (images, labels) files of a split, or None when the package ships none for it (all but the
    MNIST test split)."""
    if dataset != "mnist" or split != "test":
        return None
    d = BUNDLED_DIR if folder is None else folder
    return d / "t10k-images-idx3-ubyte.gz", d / "t10k-labels-idx1-ubyte.gz"


def is_bundled(path: str | Path) -> bool:
    return Path(path).resolve().parent == BUNDLED_DIR


def check_md5(path: Path) -> None:
    """Raise BundledError unless ``path`` holds exactly the official bytes."""
    expected = MD5[path.name]
    try:
        got = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
    except OSError as e:
        raise BundledError(f"{path}: the MNIST test split shipped with filterlab cannot be read ({e.strerror}); "
                           "reinstall filterlab, or set data.root to a folder with the MNIST test files") from None
    if got != expected:
        raise BundledError(f"{path}: md5 {got} is not the official {expected}: the MNIST test split shipped with "
                           "filterlab is damaged; reinstall filterlab, or set data.root to a folder with the MNIST "
                           "test files")
