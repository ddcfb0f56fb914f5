"""What a convolution computes, in plain NumPy: the sliding sum, pooling, and one output pixel worked out by hand.

PyTorch's "convolution" is cross-correlation: out[i, j] = sum_{a,b} x_pad[i*S + a*D, j*S + b*D] * k[a, b], the
kernel not flipped. The textbook convolution flips the kernel in both axes first.

One label scheme for padding, in text and figures alike: positions are always input coordinates x[row, col]; a row or
column below 0 or past the input's last one lies in the zero padding, reads 0 and is marked "pad".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import InputError
from ..core.geometry import out_size


class ExplainError(InputError):
    """Bad input to the explainer; the message names the option and what is accepted."""


def parse_at(at: str, shape: tuple[int, ...], grid: str) -> tuple[int, int]:
    """``ROW,COL`` inside a grid of ``shape``; ``grid`` names it in the error ("the 4x4 feature map")."""
    try:
        row, col = (int(v) for v in at.split(","))
    except ValueError:
        raise ExplainError(f"at {at!r}: expected ROW,COL such as 3,4") from None
    if not (0 <= row < shape[0] and 0 <= col < shape[1]):
        raise ExplainError(f"at {at}: outside {grid} (rows and columns count from 0)")
    return row, col


def is_pad(r: int, c: int, shape: tuple[int, ...]) -> bool:
    """Whether input position x[r, c] lies in the zero padding (outside the input)."""
    return not (0 <= r < shape[0] and 0 <= c < shape[1])


def cell_name(r: int, c: int, shape: tuple[int, ...]) -> str:
    """x[r,c], followed by "pad" where the position lies in the padding."""
    return f"x[{r},{c}]" + (" pad" if is_pad(r, c, shape) else "")


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
        raise ExplainError(f"pool {kind}:{k}: the window is larger than the {x.shape[0]}x{x.shape[1]} map")
    blocks = x[:h * k, :w * k].reshape(h, k, w, k)
    return blocks.max(axis=(1, 3)) if kind == "max" else blocks.mean(axis=(1, 3))


def pool_window(i: int, j: int, k: int) -> list[tuple[int, int]]:
    """The feature-map cells that pooled cell (i, j) reads, row by row."""
    return [(i * k + a, j * k + b) for a in range(k) for b in range(k)]


def pool_winner(fmap: np.ndarray, i: int, j: int, k: int) -> tuple[int, int]:
    """The cell of pooled cell (i, j)'s window that max-pooling keeps (the first of equal maxima, row by row)."""
    cells = pool_window(i, j, k)
    return cells[int(np.argmax([fmap[r, c] for r, c in cells]))]


def window_cells(row: int, col: int, kshape: tuple[int, ...], stride: int, padding: int,
                 dilation: int) -> list[tuple[int, int]]:
    """The input positions x[r, c] that output pixel (row, col) reads, in kernel order (row by row)."""
    return [(row * stride + a * dilation - padding, col * stride + b * dilation - padding)
            for a in range(kshape[0]) for b in range(kshape[1])]


@dataclass(frozen=True)
class Worked:
    """One output pixel as a sum of products, in the order written."""

    row: int
    col: int
    terms: list[tuple[int, int, float, float]]  # (input row, input col, input value, kernel weight)
    total: float
    shape: tuple[int, int]  # the unpadded input's (H, W), to tell padding from input

    @property
    def window(self) -> list[tuple[int, int]]:
        return [(r, c) for r, c, _, _ in self.terms]

    @property
    def products(self) -> list[float]:
        return [v * w for _, _, v, w in self.terms]

    def lines(self) -> list[str]:
        out = [f"output pixel ({self.row}, {self.col}) = sum of input x kernel over the window "
               f"(x[row,col] in input coordinates; \"pad\" marks the zero padding):"]
        for r, c, v, w in self.terms:
            out.append(f"  {cell_name(r, c, self.shape):>13} = {v + 0.0:9.4f}  x  {w + 0.0:8.4f}  = "
                       f"{v * w + 0.0:10.4f}")
        out.append(f"  sum = {self.total:.6g}")
        return out


def worked_pixel(x: np.ndarray, k: np.ndarray, row: int, col: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, flip: bool = False) -> Worked:
    """Every product of one output pixel, summed in the order written (a position in the padding reads 0)."""
    kk = k[::-1, ::-1] if flip else k
    terms = []
    total = 0.0
    for (r, c), w in zip(window_cells(row, col, k.shape, stride, padding, dilation), kk.ravel(), strict=True):
        v = 0.0 if is_pad(r, c, x.shape) else float(x[r, c])
        terms.append((r, c, v, float(w)))
        total += v * float(w)
    return Worked(row, col, terms, total, (x.shape[0], x.shape[1]))
