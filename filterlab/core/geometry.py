"""Layer geometry by arithmetic alone (no torch): output shapes, parameter counts and receptive fields.

Every experiment describes its network as a list of :class:`Layer` records (``Experiment.layers(cfg, input_shape)``).
The same list serves ``filterlab shapes``, the check that a config's geometry fits before a run folder is made, and
the receptive field of any output pixel (top patches, the explainer's receptive-field figure).

Sizes follow PyTorch: out = floor((W + 2P - D(K-1) - 1) / S) + 1, for convolutions and pooling alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class GeometryError(ValueError):
    """A layer does not fit its input; the message names the layer and shows the arithmetic."""


@dataclass(frozen=True)
class Layer:
    """One layer. ``op`` is conv, pool, act, norm, flatten or linear; the spatial fields matter for conv and pool."""

    name: str
    op: str
    out_channels: int = 0  # conv: filters; linear: units
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    bias: bool = True
    detail: str = ""  # e.g. "relu", "max", "batch norm": printed beside the op

    @property
    def spatial(self) -> bool:
        return self.op in ("conv", "pool")


def out_size(w: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    return (w + 2 * p - d * (k - 1) - 1) // s + 1


def size_arithmetic(side: str, w: int, k: int, s: int, p: int, d: int) -> str:
    """One line of the output-size formula with the numbers filled in."""
    top = w + 2 * p - d * (k - 1) - 1
    return (f"{side}: floor((W + 2P - D(K-1) - 1) / S) + 1 = floor(({w} + 2*{p} - {d}*({k}-1) - 1) / {s}) + 1 "
            f"= floor({top} / {s}) + 1 = {top // s} + 1 = {top // s + 1}")


@dataclass(frozen=True)
class Row:
    """A layer's output: shape (C, H, W) for maps, (N,) after flatten; its parameter count."""

    layer: Layer | None  # None for the input row
    shape: tuple[int, ...]
    params: int

    @property
    def name(self) -> str:
        return "input" if self.layer is None else self.layer.name


def layer_table(layers: Sequence[Layer], input_shape: tuple[int, int, int]) -> list[Row]:
    """Each layer's output shape and parameter count from the input (C, H, W); GeometryError where one does not fit."""
    c, h, w = input_shape
    rows = [Row(None, (c, h, w), 0)]
    flat: int | None = None  # set once the maps are flattened
    for layer in layers:
        if layer.op in ("conv", "pool"):
            if flat is not None:
                raise GeometryError(f"{layer.name}: a {layer.op} layer cannot follow flatten")
            oh, ow = (out_size(n, layer.kernel, layer.stride, layer.padding, layer.dilation) for n in (h, w))
            if oh < 1 or ow < 1:
                side, n = ("height", h) if oh < 1 else ("width", w)
                raise GeometryError(
                    f"{layer.name}: a {layer.kernel}x{layer.kernel} window with stride {layer.stride}, padding "
                    f"{layer.padding} and dilation {layer.dilation} does not fit its {h}x{w} input; "
                    + size_arithmetic(side, n, layer.kernel, layer.stride, layer.padding, layer.dilation))
            params = 0
            if layer.op == "conv":
                params = c * layer.out_channels * layer.kernel ** 2 + (layer.out_channels if layer.bias else 0)
                c = layer.out_channels
            h, w = oh, ow
            rows.append(Row(layer, (c, h, w), params))
        elif layer.op == "flatten":
            flat = c * h * w
            rows.append(Row(layer, (flat,), 0))
        elif layer.op == "linear":
            n_in = flat if flat is not None else c * h * w
            flat = layer.out_channels
            rows.append(Row(layer, (flat,), n_in * flat + (flat if layer.bias else 0)))
        elif layer.op == "norm":
            n = flat if flat is not None else c
            rows.append(Row(layer, rows[-1].shape, 2 * n))
        else:  # act and anything shape-preserving
            rows.append(Row(layer, rows[-1].shape, 0))
    return rows


@dataclass(frozen=True)
class Field:
    """The receptive field of one layer's output grid in input pixels.

    Output pixel (i, j) sees input rows ``i * jump - offset`` to ``i * jump - offset + size - 1`` (and the same for
    columns); indices below 0 or past the input's edge fall on padding.
    """

    size: int  # side of the square region an output pixel sees
    jump: int  # input pixels between neighbouring output pixels (the product of the strides)
    offset: int  # padding accumulated in input pixels: the first output pixel's region starts at -offset

    def region(self, i: int, j: int) -> tuple[int, int, int, int]:
        """(row0, row1, col0, col1), inclusive, possibly outside the input where it covers padding."""
        r0, c0 = i * self.jump - self.offset, j * self.jump - self.offset
        return r0, r0 + self.size - 1, c0, c0 + self.size - 1


def receptive_fields(layers: Sequence[Layer]) -> dict[str, Field]:
    """The receptive field after each spatial layer, by the closed form for a chain of convolutions and pools.

    With effective kernel k' = d(k - 1) + 1: size_out = size_in + (k' - 1) * jump_in, jump_out = jump_in * s,
    offset_out = offset_in + p * jump_in. Non-spatial layers (activations, norms) leave the field as it is.
    """
    size, jump, offset = 1, 1, 0
    out: dict[str, Field] = {}
    for layer in layers:
        if layer.op in ("flatten", "linear"):
            break
        if layer.spatial:
            k_eff = layer.dilation * (layer.kernel - 1) + 1
            size, offset, jump = size + (k_eff - 1) * jump, offset + layer.padding * jump, jump * layer.stride
        out[layer.name] = Field(size, jump, offset)
    return out
