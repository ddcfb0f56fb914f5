"""One convolution explained: the case computed once from the user's options, and its text.

The same :class:`ConvCase` feeds the printed walk-through, the static figure, the animation and the HTML page, so the
window outlined in a figure is the one whose products the text lists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.geometry import size_arithmetic
from .arithmetic import (
    ExplainError,
    Worked,
    convolve2d,
    correlate2d,
    parse_at,
    pool2d,
    pool_window,
    pool_winner,
    worked_pixel,
)
from .kernels import load_input, load_kernel


@dataclass(frozen=True)
class Pooling:
    kind: str  # max or avg
    size: int  # window side K; stride K
    pooled: np.ndarray  # (H // K, W // K)
    cell: tuple[int, int]  # the pooled cell worked out: the one holding the worked output pixel where there is one

    @property
    def name(self) -> str:
        return f"{self.kind}-pool {self.size}x{self.size}"


@dataclass(frozen=True)
class ConvCase:
    """An input, a kernel, the settings, the feature map, one output pixel worked out, and optional pooling."""

    x: np.ndarray  # (H, W)
    k: np.ndarray  # (kh, kw) as given
    x_desc: str
    k_desc: str
    stride: int
    padding: int
    dilation: int
    flip: bool  # True: the textbook convolution (kernel flipped); False: PyTorch's cross-correlation
    fmap: np.ndarray  # (oh, ow)
    worked: Worked
    pooling: Pooling | None

    @property
    def applied(self) -> np.ndarray:
        """The kernel as it multiplies the window: flipped in both axes for the textbook convolution."""
        return self.k[::-1, ::-1] if self.flip else self.k

    @property
    def settings(self) -> str:
        return f"stride {self.stride}, padding {self.padding}, dilation {self.dilation}"

    @property
    def op_name(self) -> str:
        return "convolution (kernel flipped)" if self.flip else "cross-correlation"


def parse_pool(pool: str) -> tuple[str, int]:
    kind, _, size = pool.partition(":")
    if kind not in ("max", "avg") or not size.isdigit() or int(size) < 1:
        raise ExplainError(f"pool {pool!r}: expected max:K or avg:K, for example max:2")
    return kind, int(size)


def _pooling(fmap: np.ndarray, pool: str, row: int, col: int) -> Pooling:
    kind, size = parse_pool(pool)
    pooled = pool2d(fmap, kind, size)
    cell = (row // size, col // size)
    if not (cell[0] < pooled.shape[0] and cell[1] < pooled.shape[1]):  # the worked pixel lies in a dropped edge
        i, j = np.unravel_index(np.abs(pooled).argmax(), pooled.shape)
        cell = (int(i), int(j))
    return Pooling(kind, size, pooled, cell)


def finite_map(x: np.ndarray, k: np.ndarray, k_desc: str, stride: int, padding: int, dilation: int,
               flip: bool) -> np.ndarray:
    """The feature map, refused when it (or the flipped one the walk-through compares with) is not finite: a kernel
    of 1e308s overflows every sum of products, and nothing after it could be printed or drawn."""
    with np.errstate(over="ignore", invalid="ignore"):
        fmap = (convolve2d if flip else correlate2d)(x, k, stride, padding, dilation)
        other = (correlate2d if flip else convolve2d)(x, k, stride, padding, dilation)
    if not (np.isfinite(fmap).all() and np.isfinite(other).all()):
        raise ExplainError(f"kernel {k_desc}: the sums of products overflow (kernel values up to "
                           f"{float(np.abs(k).max()):.3g} times inputs up to {float(np.abs(x).max()):.3g} pass the "
                           "largest number, about 1.8e308); accepted: a kernel whose products with the input stay "
                           "finite (values up to about 1e300 for a 0-1 image)")
    return fmap


def build_case(image: str, kernel: str, *, stride: int = 1, padding: int = 0, dilation: int = 1,
               flip: bool = False, at: str | None = None, pool: str | None = None,
               data_root: str | None = None) -> ConvCase:
    """Load the input and kernel, compute the feature map and work out one pixel (by default the strongest)."""
    x, x_desc = load_input(image, data_root)
    k, k_desc = load_kernel(kernel)
    side = max(x.shape)
    if padding > side:  # before np.pad: a padding of a million would allocate terabytes
        raise ExplainError(f"padding {padding}: at most {side} (the input's larger side) is accepted; more only "
                           "adds rows and columns of zeros")
    fmap = finite_map(x, k, k_desc, stride, padding, dilation, flip)
    if at is None:  # the strongest response: a pixel where something happens
        row, col = (int(v) for v in np.unravel_index(np.abs(fmap).argmax(), fmap.shape))
    else:
        row, col = parse_at(at, fmap.shape, f"the {fmap.shape[0]}x{fmap.shape[1]} feature map")
    pooling = _pooling(fmap, pool, row, col) if pool is not None else None
    worked = worked_pixel(x, k, row, col, stride, padding, dilation, flip)
    return ConvCase(x, k, x_desc, k_desc, stride, padding, dilation, flip, fmap, worked, pooling)


def case_lines(case: ConvCase) -> list[str]:
    """The printed walk-through: input, kernel, operation, the size arithmetic, every product, the flip, pooling."""
    x, k, fmap, w = case.x, case.k, case.fmap, case.worked
    name = ("convolution (kernel flipped, the textbook definition)" if case.flip else
            "cross-correlation (what PyTorch's conv2d computes: the kernel is not flipped)")
    lines = [f"input: {case.x_desc}, {x.shape[0]}x{x.shape[1]}", f"kernel: {case.k_desc}, {k.shape[0]}x{k.shape[1]}",
             f"operation: {name}; {case.settings}", "output size:"]
    for side, n, kn in (("height", x.shape[0], k.shape[0]), ("width", x.shape[1], k.shape[1])):
        lines.append("  " + size_arithmetic(side, n, kn, case.stride, case.padding, case.dilation))
    lines += w.lines()
    lines.append(f"feature map at ({w.row}, {w.col}): {fmap[w.row, w.col]:.6g}")
    other = (correlate2d if case.flip else convolve2d)(x, k, case.stride, case.padding, case.dilation)
    lo, hi = float(x.min()), float(x.max())
    if lo == hi:
        lines.append(f"note: the input is {'blank' if hi == 0 else 'constant'} (every value is {lo:.6g}): every "
                     "window sees the same numbers, so the feature map says nothing about what the kernel detects")
    if np.array_equal(k, k[::-1, ::-1]):
        lines.append("the kernel is symmetric under flipping, so convolution and cross-correlation agree here")
    elif np.array_equal(other, fmap):
        lines.append("convolution (flipped kernel) and cross-correlation give the same map for this input, so the "
                     "flip cannot show here" + (" (the input is blank or constant)" if lo == hi else ""))
    else:
        lines.append(f"{'cross-correlation' if case.flip else 'convolution (flipped kernel)'} would give "
                     f"{other[w.row, w.col]:.6g} at ({w.row}, {w.col}); the two maps differ by up to "
                     f"{np.abs(other - fmap).max():.6g}: for an asymmetric kernel the flip matters")
    p = case.pooling
    if p is not None:
        lines.append(f"{p.name}: {fmap.shape[0]}x{fmap.shape[1]} -> {p.pooled.shape[0]}x{p.pooled.shape[1]}")
        lines.append(pool_line(case))
    return lines


def pool_line(case: ConvCase) -> str:
    """The worked pooled cell: which window, and its maximum or mean."""
    p = case.pooling
    assert p is not None
    i, j = p.cell
    cells = pool_window(i, j, p.size)
    where = f"pooled ({i}, {j}) reads feature map rows {cells[0][0]}-{cells[-1][0]}, cols {cells[0][1]}-{cells[-1][1]}"
    if p.kind == "max":
        r, c = pool_winner(case.fmap, i, j, p.size)
        return f"{where}: the maximum {case.fmap[r, c]:.6g}, at ({r}, {c})"
    return f"{where}: the mean of {len(cells)} values, {p.pooled[i, j]:.6g}"
