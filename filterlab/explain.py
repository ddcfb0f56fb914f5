"""The convolution explainer: what a convolution computes, before any training, in plain NumPy.

Hand-made kernels, the output-size arithmetic floor((W + 2P - D(K-1) - 1) / S) + 1, one output pixel worked out by
hand, pooling, and the difference between cross-correlation (what deep-learning libraries, PyTorch included, call
convolution: the kernel is not flipped) and the textbook convolution (the kernel flipped in both axes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .core.errors import InputError

KERNELS: dict[str, tuple[np.ndarray, str]] = {
    "identity": (np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], float), "leaves the image as it is"),
    "box_blur": (np.full((3, 3), 1 / 9), "averages each 3x3 neighbourhood"),
    "gaussian_blur": (np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], float) / 16, "a weighted average, centre heaviest"),
    "sharpen": (np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], float), "the image plus its 4-neighbour Laplacian"),
    "laplacian": (np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], float), "second derivative, all 8 neighbours"),
    "laplacian4": (np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], float), "second derivative, 4 neighbours"),
    "sobel_x": (np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float), "horizontal gradient: vertical edges"),
    "sobel_y": (np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], float), "vertical gradient: horizontal edges"),
    "prewitt_x": (np.array([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]], float), "horizontal gradient, unweighted"),
    "prewitt_y": (np.array([[-1, -1, -1], [0, 0, 0], [1, 1, 1]], float), "vertical gradient, unweighted"),
    "emboss": (np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], float), "a diagonal gradient plus the image"),
}


class ExplainError(InputError):
    pass


def out_size(w: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    return (w + 2 * p - d * (k - 1) - 1) // s + 1


def size_arithmetic(side: str, w: int, k: int, s: int, p: int, d: int) -> str:
    """One line of the output-size formula with the numbers filled in."""
    top = w + 2 * p - d * (k - 1) - 1
    return (f"{side}: floor((W + 2P - D(K-1) - 1) / S) + 1 = floor(({w} + 2*{p} - {d}*({k}-1) - 1) / {s}) + 1 "
            f"= floor({top} / {s}) + 1 = {top // s} + 1 = {top // s + 1}")


def load_kernel(spec: str) -> tuple[np.ndarray, str]:
    """A built-in kernel by name, or a file: rows of numbers (text, commas or spaces) or YAML (list of rows)."""
    if spec in KERNELS:
        k, what = KERNELS[spec]
        return k.copy(), f"{spec} ({what})"
    path = Path(spec)
    if not path.is_file():
        raise ExplainError(f"--kernel {spec!r}: neither a built-in kernel ({', '.join(KERNELS)}) nor a file")
    return read_matrix(path, "--kernel"), path.name


def read_matrix(path: Path, what: str) -> np.ndarray:
    import yaml  # noqa: PLC0415

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ExplainError(f"{what} {path}: cannot read it ({e})") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text)
            if isinstance(data, dict):
                data = data.get("kernel", data.get("image"))
            rows = [[float(v) for v in row] for row in data]
        else:
            rows = [[float(v) for v in line.replace(",", " ").split()] for line in text.splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]
    except (TypeError, ValueError, yaml.YAMLError) as e:
        raise ExplainError(f"{what} {path}: expected rows of numbers ({e})") from None
    if not rows or any(len(r) != len(rows[0]) for r in rows) or not rows[0]:
        raise ExplainError(f"{what} {path}: expected a rectangle of numbers, every row the same length")
    m = np.array(rows, dtype=float)
    if not np.isfinite(m).all():
        raise ExplainError(f"{what} {path}: every number must be finite")
    return m


def load_input(spec: str, root: str | None = None) -> tuple[np.ndarray, str]:
    """An image spec (see filterlab.images) as 0-1 floats, or a small matrix file (.txt, .csv, .yaml) as it is."""
    from .data.images import ImageError, load_image  # noqa: PLC0415 - Pillow only when an image is read

    path = Path(spec)
    if path.suffix.lower() in (".txt", ".csv", ".yaml", ".yml"):
        return read_matrix(path, "--image"), path.name
    try:
        img = load_image(spec, root)
    except ImageError as e:
        raise ExplainError(f"--image: {e}") from None
    return img.pixels.astype(float) / 255.0, img.description


def correlate2d(x: np.ndarray, k: np.ndarray, stride: int = 1, padding: int = 0, dilation: int = 1) -> np.ndarray:
    """Cross-correlation as PyTorch computes it: out[i, j] = sum_{a,b} x_pad[i*S + a*D, j*S + b*D] * k[a, b]."""
    xp = np.pad(x, padding)
    kh, kw = k.shape
    oh = out_size(x.shape[0], kh, stride, padding, dilation)
    ow = out_size(x.shape[1], kw, stride, padding, dilation)
    if oh < 1 or ow < 1:
        raise ExplainError(f"the kernel ({kh}x{kw}, dilation {dilation}) does not fit the padded input "
                           f"({x.shape[0] + 2 * padding}x{x.shape[1] + 2 * padding})")
    out = np.zeros((oh, ow))
    for a in range(kh):
        for b in range(kw):
            rows = slice(a * dilation, a * dilation + (oh - 1) * stride + 1, stride)
            cols = slice(b * dilation, b * dilation + (ow - 1) * stride + 1, stride)
            out += k[a, b] * xp[rows, cols]
    return out


def convolve2d(x: np.ndarray, k: np.ndarray, stride: int = 1, padding: int = 0, dilation: int = 1) -> np.ndarray:
    """The textbook convolution: the same sliding sum with the kernel flipped in both axes."""
    return correlate2d(x, k[::-1, ::-1], stride, padding, dilation)


def pool2d(x: np.ndarray, kind: str, k: int) -> np.ndarray:
    """Non-overlapping k x k pooling (stride k), as nn.MaxPool2d(k) / nn.AvgPool2d(k); a ragged edge is dropped."""
    h, w = x.shape[0] // k, x.shape[1] // k
    if h < 1 or w < 1:
        raise ExplainError(f"--pool {kind}:{k}: the window is larger than the {x.shape[0]}x{x.shape[1]} map")
    blocks = x[:h * k, :w * k].reshape(h, k, w, k)
    return blocks.max(axis=(1, 3)) if kind == "max" else blocks.mean(axis=(1, 3))


@dataclass
class Worked:
    row: int
    col: int
    terms: list[tuple[int, int, float, float]]  # (input row, input col, input value, kernel weight)
    total: float

    def lines(self) -> list[str]:
        out = [f"output pixel ({self.row}, {self.col}) = sum of input x kernel over the window:"]
        for r, c, v, w in self.terms:
            where = f"x[{r},{c}]" if r >= 0 else f"pad[{r},{c}]"
            out.append(f"  {where:>11} = {v + 0.0:9.4f}  x  {w + 0.0:8.4f}  = {v * w + 0.0:10.4f}")
        out.append(f"  sum = {self.total:.6g}")
        return out


def worked_pixel(x: np.ndarray, k: np.ndarray, row: int, col: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, flip: bool = False) -> Worked:
    """Every product of one output pixel, summed in the order written (positions in unpadded input coordinates;
    a position in the padding reads 0)."""
    kk = k[::-1, ::-1] if flip else k
    terms = []
    total = 0.0
    for a in range(k.shape[0]):
        for b in range(k.shape[1]):
            r = row * stride + a * dilation - padding
            c = col * stride + b * dilation - padding
            v = float(x[r, c]) if 0 <= r < x.shape[0] and 0 <= c < x.shape[1] else 0.0
            terms.append((r, c, v, float(kk[a, b])))
            total += v * float(kk[a, b])
    return Worked(row, col, terms, total)


def rgb_example() -> dict:
    """26x26x3 through six 3x3x3 kernels to 24x24x6, then 2x2 max-pool to 12x12x6, on real digits.

    The three channels are three real MNIST test digits (the first 7, 3 and 1), centre-cropped to 26x26, so every
    kernel's per-channel slices act on visibly different content.
    """
    from .data.images import load_image  # noqa: PLC0415 - Pillow only when an image is read

    chans = [load_image(n).pixels[1:27, 1:27].astype(float) / 255 for n in ("digit-7", "digit-3", "digit-1")]
    x = np.stack(chans)  # (3, 26, 26)
    z = np.zeros((3, 3))
    sx, sy, lap = KERNELS["sobel_x"][0], KERNELS["sobel_y"][0], KERNELS["laplacian4"][0]
    box = KERNELS["box_blur"][0]
    kernels = np.stack([
        np.stack([sx, z, z]),  # vertical edges of the red channel only
        np.stack([z, sy, z]),  # horizontal edges of the green channel only
        np.stack([z, z, lap]),  # outline of the blue channel only
        np.stack([box, box, box]) / 3,  # brightness, all channels averaged
        np.stack([box, -box, z]),  # red minus green
        np.stack([sx, sx, sx]),  # vertical edges in every channel
    ])  # (6, 3, 3, 3): out channels, in channels, rows, cols
    names = ["sobel_x on R", "sobel_y on G", "laplacian4 on B", "mean brightness", "R minus G", "sobel_x on RGB"]
    maps = np.stack([sum(correlate2d(x[c], kern[c]) for c in range(3)) for kern in kernels])  # (6, 24, 24)
    pooled = np.stack([pool2d(m, "max", 2) for m in maps])  # (6, 12, 12)
    return {"input": x, "kernels": kernels, "names": names, "maps": maps, "pooled": pooled}


# ---------------------------------------------------------------------------------------------------------------------
# Learned filters against hand-made kernels


def resize_kernel(k: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resampling of a kernel to size x size (sample centres aligned), so any filter size can be matched."""
    if k.shape == (size, size):
        return k
    src = np.linspace(0, k.shape[0] - 1, size)
    rows = np.stack([np.interp(src, np.arange(k.shape[1]), row) for row in k])  # (k0, size)
    return np.stack([np.interp(src, np.arange(k.shape[0]), col) for col in rows.T], axis=1)


def nearest_kernels(filters: np.ndarray) -> list[dict]:
    """For each filter (N, k, k), the built-in kernel with the largest |cosine| after matching the size."""
    size = filters.shape[-1]
    names = list(KERNELS)
    bank = np.stack([resize_kernel(KERNELS[n][0], size).ravel() for n in names])
    bank = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    out = []
    for i, f in enumerate(filters.reshape(len(filters), -1)):
        cos = bank @ (f / max(np.linalg.norm(f), 1e-12))
        j = int(np.abs(cos).argmax())
        out.append({"filter": i + 1, "nearest": names[j], "cosine": float(cos[j]),
                    "all": {n: float(c) for n, c in zip(names, cos)}})
    return out
