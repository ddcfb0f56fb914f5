"""The receptive field of one output pixel: the input region it sees, by the closed form (arithmetic only;
``receptive_figure`` draws it on a digit).

For a chain of convolutions and pools with effective kernels k' = d(k - 1) + 1 and strides s, the field grows by
(k' - 1) times the product of the earlier strides at every layer: r = 1 + sum_l (k'_l - 1) * prod_{m<l} s_m.
"""

from __future__ import annotations

from ..core.geometry import Field, Layer, layer_table, receptive_fields
from .arithmetic import ExplainError, parse_at


def field_of(layers: list[Layer], chw: tuple[int, int, int], name: str) -> tuple[Field, tuple[int, int]]:
    """The layer's field and its output grid (H, W); ExplainError naming the layers that have one."""
    fields = receptive_fields(layers)
    if name not in fields:
        raise ExplainError(f"field {name!r}: not a layer before flatten; accepted: {', '.join(fields)}")
    row = next(r for r in layer_table(layers, chw) if r.name == name)
    return fields[name], (row.shape[1], row.shape[2])


def parse_pixel(at: str | None, grid: tuple[int, int], name: str) -> tuple[int, int]:
    """ROW,COL inside the layer's output grid; by default its centre."""
    if at is None:
        return grid[0] // 2, grid[1] // 2
    return parse_at(at, grid, f"{name}'s {grid[0]}x{grid[1]} output")


def closed_form(layers: list[Layer], name: str) -> list[str]:
    """The size, jump and offset sums with the numbers filled in, up to layer ``name``."""
    size_terms, jump_terms, offset_terms = ["1"], ["1"], ["0"]
    jump = 1
    for layer in layers:
        if layer.spatial:
            k_eff = layer.dilation * (layer.kernel - 1) + 1
            size_terms.append(f"({k_eff}-1)*{jump} [{layer.name}]")
            offset_terms.append(f"{layer.padding}*{jump} [{layer.name}]")
            jump *= layer.stride
            jump_terms.append(f"{layer.stride} [{layer.name}]")
        if layer.name == name:
            break
    f = receptive_fields(layers)[name]
    return [f"  size = 1 + sum of (k'-1) * jump so far = {' + '.join(size_terms)} = {f.size}",
            f"  jump = product of the strides = {' * '.join(jump_terms)} = {f.jump}",
            f"  offset = sum of padding * jump so far = {' + '.join(offset_terms)} = {f.offset}"]


def field_lines(layers: list[Layer], chw: tuple[int, int, int], name: str, pixel: tuple[int, int]) -> list[str]:
    field, grid = field_of(layers, chw, name)
    r0, r1, c0, c1 = field.region(*pixel)
    h, w = chw[1], chw[2]
    pads = r0 < 0 or c0 < 0 or r1 >= h or c1 >= w
    return [f"receptive field of {name} pixel {pixel} (of its {grid[0]}x{grid[1]} output): input rows {r0} to {r1}, "
            f"cols {c0} to {c1}: {field.size}x{field.size} pixels"
            + (" (part of it in the zero padding)" if pads else ""),
            "closed form (k' = d(k-1)+1, the effective kernel):", *closed_form(layers, name)]


def field_text(layers: list[Layer], chw: tuple[int, int, int], name: str,
               at: str | None) -> tuple[list[str], tuple[int, int]]:
    """The receptive field of layer ``name``'s pixel ``at`` (by default its output's centre): lines and the pixel."""
    _, grid = field_of(layers, chw, name)
    pixel = parse_pixel(at, grid, name)
    return field_lines(layers, chw, name, pixel), pixel
