"""``filterlab shapes``: every layer's output shape and parameter count, for any input size and channel count.

Shapes are written C x H x W (PyTorch's order, 3x26x26) or H x W x C (the order of many tutorials and of image files,
26x26x3), as the user wrote the input; the arithmetic is :mod:`filterlab.core.geometry`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..core.geometry import GeometryError, Layer, Row, layer_table
from .arithmetic import ExplainError

CHANNEL_COUNTS = (1, 2, 3, 4)  # grey, grey + alpha, RGB, RGBA: what a number at one end of HxWxC usually is


@dataclass(frozen=True)
class InputShape:
    chw: tuple[int, int, int]
    hwc: bool  # the user wrote H x W x C: print shapes that way

    def show(self, shape: tuple[int, ...]) -> str:
        """A (C, H, W) or (N,) shape in the user's notation."""
        if len(shape) == 3 and self.hwc:
            c, h, w = shape
            return f"{h}x{w}x{c}"
        return "x".join(map(str, shape))

    @property
    def notation(self) -> str:
        return "H x W x C" if self.hwc else "C x H x W"


def parse_input(text: str) -> InputShape:
    """'3x26x26', '26x26x3', '28x28', 'chw:64x7x7' or 'hwc:4x4x3' -> InputShape; ExplainError otherwise."""
    spec = text.strip().lower()
    order = None
    if spec[:4] in ("chw:", "hwc:"):
        order, spec = spec[:3], spec[4:]
    if not re.fullmatch(r"\d+(x\d+){1,2}", spec.replace(" ", "")):
        raise ExplainError(f"input {text!r}: expected CxHxW (3x26x26), HxWxC (26x26x3) or HxW (28x28)")
    n = [int(v) for v in spec.replace(" ", "").split("x")]
    if min(n) < 1:
        raise ExplainError(f"input {text!r}: every size must be at least 1")
    if len(n) == 2:
        return InputShape((1, n[0], n[1]), order == "hwc")
    if order is None:
        first, last = n[0] in CHANNEL_COUNTS, n[2] in CHANNEL_COUNTS
        order = "hwc" if last and not first else "chw"
    if order == "hwc":
        return InputShape((n[2], n[0], n[1]), True)
    return InputShape((n[0], n[1], n[2]), False)


def describe(layer: Layer | None) -> str:
    """What a layer does, in a few words: conv 3x3 s1 p1, max-pool 2x2, relu, ..."""
    if layer is None:
        return ""
    if layer.op == "conv":
        extra = f" d{layer.dilation}" if layer.dilation > 1 else ""
        return f"conv {layer.kernel}x{layer.kernel} s{layer.stride} p{layer.padding}{extra}"
    if layer.op == "pool":
        return f"{layer.detail or 'max'}-pool {layer.kernel}x{layer.kernel} s{layer.stride}"
    if layer.op == "linear":
        return "linear"
    return layer.detail or layer.op


def table_lines(rows: list[Row], shape: InputShape) -> list[str]:
    """The printed table, the flattened size and the total parameter count."""
    lines = [f"{'layer':<10}{'operation':<20}{'output (' + shape.notation + ')':>22}{'parameters':>14}"]
    for r in rows:
        lines.append(f"{r.name:<10}{describe(r.layer):<20}{shape.show(r.shape):>22}{r.params:>14,}")
    flat = next((r.shape[0] for r in rows if r.layer is not None and r.layer.op == "flatten"), None)
    total = f"total parameters: {sum(r.params for r in rows):,}"
    lines.append(f"flattened into the linear layer: {flat}; {total}" if flat is not None else total)
    return lines


def shapes_lines(layers: list[Layer], shape: InputShape) -> list[str]:
    """layer_table through the table; a layer that does not fit raises GeometryError naming it and what feeds it."""
    try:
        rows = layer_table(layers, shape.chw)
    except GeometryError as e:
        names = [la.name for la in layers]
        name = str(e).split(":", 1)[0]
        if name not in names:
            raise
        i = names.index(name)
        spatial = [j for j in range(i) if layers[j].spatial]
        feeding = " -> ".join(names[spatial[-1]:i]) if spatial else "the input"
        raise GeometryError(f"{e} (its input comes from {feeding})") from None
    return table_lines(rows, shape)


# The tutorial's colour network, convolve --rgb's: 26x26x3 -> six 3x3x3 kernels -> ... -> 3x3x12 -> 108 -> 10
RGB_INPUT = InputShape((3, 26, 26), hwc=True)  # the tutorial writes 26x26x3
RGB_LAYERS = [
    Layer("conv1", "conv", 6, 3), Layer("relu1", "act", detail="relu"), Layer("pool1", "pool", 0, 2, 2, detail="max"),
    Layer("conv2", "conv", 12, 3), Layer("relu2", "act", detail="relu"), Layer("pool2", "pool", 0, 2, 2, detail="max"),
    Layer("conv3", "conv", 12, 3), Layer("relu3", "act", detail="relu"),
    Layer("flatten", "flatten"), Layer("output", "linear", 10),
]
