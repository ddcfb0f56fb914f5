"""Single input images: the samples shipped with filterlab, dataset digits by index, and the user's PNG files.

One spec grammar serves the whole program (``data.image`` in a config, ``--image`` on the command line):

- ``four``: the article's "4" (MNIST training image #164); ``digit-0`` ... ``digit-9``: the first of each class in the
  MNIST test split (``seven`` is ``digit-7``, the test split's very first image);
- ``DATASET:SPLIT:INDEX`` or ``DATASET:SPLIT:first-LABEL``, e.g. ``mnist:test:0`` or ``mnist:test:first-7``, read from
  the dataset folder given as ``root`` (``mnist:test:...`` also without one: the MNIST test split ships with the
  package);
- a path to a PNG (or any image Pillow reads), converted to 28x28 grey as MNIST is: light-on-dark, the ink fitted
  into a 20x20 box and centred by its centre of mass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..core.errors import InputError, short_repr
from ..core.regular import NotRegularFile, check_regular, open_regular
from .bundled import bundled_files
from .datasets import DataError, dataset_info, load_split

SIZE = 28
MAX_PIXELS = 4096 * 4096  # larger images are refused before decoding: a small PNG can decode to gigabytes

# name -> (file, label, where it comes from)
SAMPLES: dict[str, tuple[str, int, str]] = {
    "four": ("four.png", 4, "the article's 4: MNIST training image #164"),
    **{f"digit-{d}": (f"digit-{d}.png", d, f"the first {d} of the MNIST test split (test index {i})")
       for d, i in enumerate((3, 2, 1, 18, 4, 8, 11, 0, 61, 7))},
}
ALIASES = {"seven": "digit-7"}
_DATASET_SPEC = re.compile(r"^(?P<name>[a-z_]+):(?P<split>[a-z]+):(?P<index>\d+|first-\d+)$")
_SPLIT_SPEC = re.compile(r"^(?P<split>train|test):(?P<index>\d+|first-\d+)$")


class ImageError(InputError):
    """An image spec that cannot be resolved or an image file that cannot be read."""


@dataclass(frozen=True)
class Image28:
    pixels: np.ndarray  # (28, 28) uint8, light ink on a dark background as in MNIST
    label: int | None  # known for samples and dataset digits, None for a user's file
    description: str
    spec: str
    notes: tuple[str, ...] = field(default=())


def sample_names() -> list[str]:
    return list(SAMPLES) + list(ALIASES)


def load_image(spec: str, root: str | Path | None = None, dataset: str | None = None,
               keep_channels: bool = False) -> Image28:
    """Resolve an image spec (see the module docstring) to a 28x28 uint8 image.

    With ``dataset``, the short form ``SPLIT:INDEX`` (``test:first-7``) means ``DATASET:SPLIT:INDEX`` of that dataset.
    ``keep_channels`` keeps a colour dataset's (H, W, C) pixels as they are (for a classifier's sample image).
    """
    spec = str(spec).strip()
    short = _SPLIT_SPEC.match(spec)
    if short and dataset is not None:
        spec = f"{dataset}:{spec}"
    name = ALIASES.get(spec, spec)
    if name in SAMPLES:
        fname, label, desc = SAMPLES[name]
        with resources.as_file(resources.files("filterlab") / "samples" / fname) as p:
            pixels = _read_png(Path(p))
        return Image28(pixels, label, desc, spec)
    m = _DATASET_SPEC.match(spec)
    if m:
        return _dataset_image(spec, m, root, keep_channels)
    path = Path(spec)
    if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm") or path.exists():
        try:
            check_regular(path, "an image")
        except NotRegularFile as e:
            raise ImageError(str(e)) from None
        if not path.is_file():
            raise ImageError(f"{path}: no such image file")
        pixels, notes = mnist_like(_read_png(path))
        return Image28(pixels, None, f"{path.name}, converted to 28x28 grey", spec, notes)
    raise ImageError(f"image {short_repr(spec)} is neither a shipped sample ({', '.join(sample_names())}), "
                     "a DATASET:SPLIT:INDEX such as mnist:test:0 or mnist:test:first-7, nor an image file")


def _read_png(path: Path) -> np.ndarray:
    """Any image Pillow reads as (H, W) uint8 grey with its full range kept: 16-bit scaled down (never clipped),
    palette and CMYK converted, transparency composited onto white (as a viewer shows it)."""
    try:
        with open_regular(path, "an image") as f, Image.open(f) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise ImageError(f"{path}: {w}x{h} pixels is too large; accepted: at most {MAX_PIXELS:,} pixels "
                                 "(4096x4096)")
            im.load()
            return grey_pixels(im)
    except NotRegularFile as e:
        raise ImageError(str(e)) from None
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageError(f"{path}: refused as a decompression bomb; accepted: at most {MAX_PIXELS:,} pixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise ImageError(f"{path}: cannot read it as an image ({type(e).__name__}: {short_repr(str(e), 80)})") from None


def grey_pixels(im: Image.Image) -> np.ndarray:
    """A loaded Pillow image -> (H, W) uint8 grey, whatever its mode."""
    if im.mode.startswith("I") or im.mode == "F":  # 16- or 32-bit grey: scale to 0-255, never clip
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        return np.clip(np.rint(a * (255.0 / top)), 0, 255).astype(np.uint8)
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "La", "RGBa"):
        page = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(page, im.convert("RGBA"))
    return np.asarray(im.convert("L"), dtype=np.uint8)


def mnist_like(grey: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Convert any grey image to MNIST's form: 28x28, light ink on dark, fitted to 20x20 and centred by mass."""
    notes = []
    a = grey.astype(np.float32)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    if border.mean() > 127:  # dark ink on a light page: MNIST is the other way round
        a = 255.0 - a
        notes.append("inverted (the image had a light background)")
    if a.shape == (SIZE, SIZE):
        return a.astype(np.uint8), tuple(notes)
    if a.min() == a.max():  # no ink to fit into 20x20: a constant page stays constant (and is refused for training)
        notes.append(f"resized from {grey.shape[1]}x{grey.shape[0]} to 28x28")
        return np.full((SIZE, SIZE), a.flat[0], np.uint8), tuple(notes)
    ink = a > 0.1 * a.max() if a.max() > 0 else np.ones_like(a, dtype=bool)
    rows, cols = np.nonzero(ink)
    a = a[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    scale = 20.0 / max(a.shape)
    h, w = max(1, round(a.shape[0] * scale)), max(1, round(a.shape[1] * scale))
    small = np.asarray(Image.fromarray(a.astype(np.uint8)).resize((w, h), Image.Resampling.LANCZOS), dtype=np.float32)
    out = np.zeros((SIZE, SIZE), np.float32)
    total = small.sum()
    cy, cx = ((np.indices(small.shape) * small).reshape(2, -1).sum(1) / total) if total > 0 else (h / 2, w / 2)
    top = int(np.clip(round(SIZE / 2 - cy), 0, SIZE - h))
    left = int(np.clip(round(SIZE / 2 - cx), 0, SIZE - w))
    out[top:top + h, left:left + w] = small
    notes.append(f"resized from {grey.shape[1]}x{grey.shape[0]} to fit 20x20, centred by mass in 28x28")
    return np.clip(out, 0, 255).astype(np.uint8), tuple(notes)


def _dataset_image(spec: str, m: re.Match, root: str | Path | None, keep_channels: bool) -> Image28:
    name, split, index = m["name"], m["split"], m["index"]
    try:
        dataset_info(name)
    except DataError as e:
        raise ImageError(f"image {spec!r}: {e}") from None
    if root is None and bundled_files(name, split) is None:  # the MNIST test split ships with the package
        raise ImageError(f"image {spec!r} needs the dataset folder: set data.root")
    one = None if index.startswith("first-") else int(index)  # one image: only it is kept in memory
    try:
        data = load_split(root, name, split, pick=None if one is None else (lambda n: np.array([min(one, n - 1)])))
    except DataError as e:
        raise ImageError(f"image {spec!r}: {e}") from None
    if index.startswith("first-"):
        label = int(index.split("-", 1)[1])
        hits = np.flatnonzero(data.labels == label)
        if len(hits) == 0:
            raise ImageError(f"image {spec!r}: no image with label {label} in the {split} split")
        i = int(hits[0])
    else:
        i = int(index)
        if i >= len(data):
            raise ImageError(f"image {spec!r}: index {i} is out of range; the {split} split has {len(data)} images")
    pixels = data.images[0 if data.picked is not None else i]
    if keep_channels:
        return Image28(np.array(pixels), int(data.labels[i]), f"{name} {split} image #{i}", spec)
    if pixels.ndim == 3:  # an RGB dataset: the single-image experiment works on grey
        pixels = pixels.mean(axis=-1).astype(np.uint8)
    if pixels.shape != (SIZE, SIZE):
        pixels, _ = mnist_like(pixels)
    return Image28(np.array(pixels), int(data.labels[i]), f"{name} {split} image #{i}", spec)
