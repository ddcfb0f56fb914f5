"""Hand-made kernels and the explainer's inputs: built-in kernels, small matrices, images as 0-1 floats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from ..core.config import parse_yaml
from ..core.errors import ConfigError
from ..core.regular import NotRegularFile, check_regular, open_regular
from ..data.images import ImageError, load_image
from .arithmetic import ExplainError

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
    "outline": (np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], float),
                "the image-kernel tutorials' name for the 8-neighbour Laplacian: bright where the ink's edge is"),
}
# Kernels that repeat another's numbers under a second name: left out where kernels are told apart (match).
DUPLICATES = {"outline": "laplacian"}

# Small matrices with whole numbers, for working a convolution out by hand.
SMALL_INPUTS: dict[str, tuple[np.ndarray, str]] = {
    "edge6x6": (np.array([[0, 0, 0, 10, 10, 10]] * 6, float),
                "edge6x6 (a 6x6 image, dark left half, bright right half: one vertical edge)"),
}


def load_kernel(spec: str) -> tuple[np.ndarray, str]:
    """A built-in kernel by name, or a file: rows of numbers (text, commas or spaces) or YAML (list of rows)."""
    if spec in KERNELS:
        k, what = KERNELS[spec]
        return k.copy(), f"{spec} ({what})"
    path = Path(spec)
    try:
        check_regular(path, "a kernel file")
    except NotRegularFile as e:
        raise ExplainError(f"kernel {e}") from None
    if not path.is_file():
        raise ExplainError(f"kernel {spec!r}: neither a built-in kernel ({', '.join(KERNELS)}) nor a file")
    return read_matrix(path, "kernel"), path.name


MAX_MATRIX_BYTES = 64 * 1024  # a kernel or a small input matrix; an image belongs in a PNG


def _rows(path: Path, text: str) -> list[list[float]]:
    if path.suffix.lower() in (".yaml", ".yml"):
        data = parse_yaml(text, str(path))  # safe, aliases refused: a few KB of aliases must not expand to GB
        if isinstance(data, dict):
            data = data.get("kernel", data.get("image"))
        return [[float(v) for v in row] for row in data]
    return [[float(v) for v in line.replace(",", " ").split()] for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def read_matrix(path: Path, what: str) -> np.ndarray:
    """A rectangle of finite numbers from a text file (rows of numbers) or YAML (a list of rows)."""
    try:
        with open_regular(path, "a matrix file") as f:
            text = f.read(4 * MAX_MATRIX_BYTES + 4).decode("utf-8")
    except NotRegularFile as e:
        raise ExplainError(f"{what} {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ExplainError(f"{what} {path}: cannot read it ({e})") from None
    if len(text) > MAX_MATRIX_BYTES:
        raise ExplainError(f"{what} {path}: more than {MAX_MATRIX_BYTES:,} characters; a matrix file holds a kernel "
                           "or a small input (use a PNG for an image)")
    try:
        rows = _rows(path, text)
    except (TypeError, ValueError, yaml.YAMLError, ConfigError) as e:
        raise ExplainError(f"{what} {path}: expected rows of numbers ({e})") from None
    if not rows or any(len(r) != len(rows[0]) for r in rows) or not rows[0]:
        raise ExplainError(f"{what} {path}: expected a rectangle of numbers, every row the same length")
    m = np.array(rows, dtype=float)
    if not np.isfinite(m).all():
        raise ExplainError(f"{what} {path}: every number must be finite")
    return m


def load_input(spec: str, root: str | None = None) -> tuple[np.ndarray, str]:
    """A small built-in matrix (edge6x6), a matrix file (.txt, .csv, .yaml) as it is, or an image spec (see
    filterlab.images) as 0-1 floats."""
    if spec in SMALL_INPUTS:
        m, what = SMALL_INPUTS[spec]
        return m.copy(), what
    path = Path(spec)
    if path.suffix.lower() in (".txt", ".csv", ".yaml", ".yml"):
        return read_matrix(path, "image"), path.name
    try:
        img = load_image(spec, root)
    except ImageError as e:
        raise ExplainError(f"image: {e} (or a small matrix: {', '.join(SMALL_INPUTS)}, or a .txt/.csv/.yaml "
                           "file of numbers)") from None
    return img.pixels.astype(float) / 255.0, img.description


def fmt_number(v: float) -> str:
    """A cell's number: whole numbers without a decimal point, others to 3 significant digits; never "-0"."""
    v = float(v) + 0.0
    if abs(v - round(v)) < 1e-9 and abs(v) < 1e6:
        return str(int(round(v)))
    text = f"{v:.3g}"
    return "0" if float(text) == 0 else text


def kernel_text(k: np.ndarray) -> str:
    """The kernel's numbers as text rows, with a common fraction taken out where there is one (1/16 x ...)."""
    for d in range(1, 33):
        scaled = k * d
        if np.allclose(scaled, np.round(scaled), atol=1e-9):
            rows = "\n".join(" ".join(f"{int(round(v)):>2}" for v in row) for row in scaled)
            return rows if d == 1 else f"1/{d} x\n{rows}"
    return "\n".join(" ".join(fmt_number(v) for v in row) for row in k)
