"""The explainer as functions that return numbers: :func:`convolve` (one convolution and one pixel worked out),
:func:`output_size` (the size formula) and :func:`shapes` (every layer's output shape, and receptive fields).

Each result holds its numbers as arrays and plain values, prints as the command line prints it (``str()``), draws a
matplotlib Figure on request (``.figure()``) and shows itself in a notebook (``_repr_html_``, ``_repr_png_``). Nothing
is written unless ``.save()`` is called.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.geometry import Field, Layer, Row, layer_table, out_size, receptive_fields, size_arithmetic
from ..notebook import inline
from .arithmetic import ExplainError, Worked, parse_at, worked_pixel
from .kernels import load_input, load_kernel
from .receptive import field_lines
from .shapes import RGB_INPUT, RGB_LAYERS, InputShape, describe, parse_input, shapes_lines
from .walkthrough import ConvCase, Pooling, _pooling, case_lines, finite_map

ANIMATION_LIMIT = 100.0  # million frame pixels (frames x pixels) an animation may have unless asked for more
DPI = 110
MAX_FIELD_PIXELS = 4096 * 4096  # the receptive-field figure draws every input pixel
MAX_SIDE = 512  # an input or kernel given as an array: the explainer prints and draws every number of it


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _img(png: bytes, alt: str) -> str:
    import base64  # noqa: PLC0415 - only for a notebook's HTML

    return (f'<img src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}" alt="{html.escape(alt)}" '
            'style="max-width:100%">')


def _pre(lines: list[str]) -> str:
    return f"<pre>{html.escape(chr(10).join(lines))}</pre>"


# ---------------------------------------------------------------------------------------------------------------------
# One convolution


@dataclass(frozen=True)
class Convolution:
    """One convolution: the input, the kernel, the feature map, one output pixel as a sum of products, and the
    pooled map when asked for. ``case`` is what the figures, the animation and the page draw."""

    case: ConvCase

    @property
    def input(self) -> np.ndarray:
        return self.case.x

    @property
    def kernel(self) -> np.ndarray:
        return self.case.k

    @property
    def feature_map(self) -> np.ndarray:
        return self.case.fmap

    @property
    def worked(self) -> Worked:
        """The worked pixel: ``.row``, ``.col``, ``.terms`` (input row, col, value, weight), ``.products``,
        ``.total``."""
        return self.case.worked

    @property
    def pooling(self) -> Pooling | None:
        return self.case.pooling

    @property
    def output_size(self) -> tuple[int, int]:
        return (int(self.case.fmap.shape[0]), int(self.case.fmap.shape[1]))

    def arithmetic(self) -> list[str]:
        """The output-size formula with this case's numbers, for height and width."""
        c, (h, w), (kh, kw) = self.case, self.case.x.shape, self.case.k.shape
        return [size_arithmetic("height", h, kh, c.stride, c.padding, c.dilation),
                size_arithmetic("width", w, kw, c.stride, c.padding, c.dilation)]

    def lines(self) -> list[str]:
        return case_lines(self.case)

    def __repr__(self) -> str:  # a notebook's plain text: the sizes and the worked pixel, not the arrays
        c, w = self.case, self.case.worked
        (h, wd), (kh, kw), (oh, ow) = c.x.shape, c.k.shape, c.fmap.shape
        return (f"<Convolution of {c.x_desc} ({h}x{wd}) with {c.k_desc} ({kh}x{kw}), stride {c.stride}, padding "
                f"{c.padding}, dilation {c.dilation}{', flipped' if c.flip else ''}: {oh}x{ow} feature map; output "
                f"({w.row}, {w.col}) = {w.total:.6g}>")

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def figure(self, cmap: str = "RdBu_r") -> Any:
        """The input with the window, the kernel, the feature map (and pooled map), and the products below."""
        from .figures import draw_convolve  # noqa: PLC0415 - matplotlib only when drawing

        return inline(draw_convolve(self.case, _cmap(cmap))[0])

    def caption(self, cmap: str = "RdBu_r") -> str:
        from .figures import convolve_caption, draw_convolve  # noqa: PLC0415 - matplotlib only when drawing

        _, vlim = draw_convolve(self.case, _cmap(cmap))
        return convolve_caption(self.case, cmap, vlim)[0]

    def save(self, out: str | Path, cmap: str = "RdBu_r", *, animate: bool = False, html: bool = False,
             animation_limit: float = ANIMATION_LIMIT) -> list[Path]:
        """Write convolve.png (with its caption), and the animation (GIF and contact sheet) and the interactive page
        when asked for, into folder ``out``; returns the files. An animation of more than ``animation_limit``
        million frame pixels (frames x pixels, estimated from the sizes before anything is drawn) is refused."""
        from .animation import animate as animation  # noqa: PLC0415 - Pillow and matplotlib only when saving
        from .animation import check_cost  # noqa: PLC0415

        if animate:
            check_cost(self.case, animation_limit)
        from .figures import convolve_figure  # noqa: PLC0415
        from .page import write_page  # noqa: PLC0415

        target = Path(out)
        target.mkdir(parents=True, exist_ok=True)
        infos = [convolve_figure(self.case, target, _cmap(cmap), DPI)]
        if animate:
            infos += animation(self.case, target, cmap)
        paths = [i.path for i in infos]
        if html:
            paths.append(write_page(self.case, target, cmap))
        return paths

    def _repr_png_(self) -> bytes:
        return _png(self.figure())

    def _repr_html_(self) -> str:
        return f"<div>{_pre(self.lines())}{_img(self._repr_png_(), 'the convolution, its window and products')}</div>"


def _cmap(name: str) -> str:
    from ..core.config import DIVERGING_CMAPS  # noqa: PLC0415 - the config module, only when drawing

    if name not in DIVERGING_CMAPS:
        raise ExplainError(f"cmap: {name!r} is not one of {', '.join(DIVERGING_CMAPS)}")
    return name


def _matrix(value: Any, what: str) -> tuple[np.ndarray, str]:
    a = np.asarray(value, dtype=np.float64)
    if a.ndim != 2 or min(a.shape) < 1 or max(a.shape) > MAX_SIDE:
        raise ExplainError(f"{what}: an array of shape {a.shape}; accepted: a 2-D array of 1 to {MAX_SIDE} rows and "
                           "columns")
    if not np.isfinite(a).all():
        raise ExplainError(f"{what}: the array holds NaN or infinite values; accepted: finite numbers")
    return a, f"a {a.shape[0]}x{a.shape[1]} array"


def _at(at: Any, shape: tuple[int, ...]) -> tuple[int, int] | None:
    grid = f"the {shape[0]}x{shape[1]} feature map"
    if at is None:
        return None
    if isinstance(at, str):
        return parse_at(at, shape, grid)
    try:
        row, col = (int(v) for v in at)
    except (TypeError, ValueError):
        raise ExplainError(f"at {at!r}: expected (ROW, COL) such as (3, 4)") from None
    return parse_at(f"{row},{col}", shape, grid)


def convolve(image: str | np.ndarray = "seven", kernel: str | np.ndarray = "sobel_x", *, stride: int = 1,
             padding: int = 0, dilation: int = 1, flip: bool = False, at: tuple[int, int] | str | None = None,
             pool: str | None = None, data_root: str | None = None) -> Convolution:
    """One convolution explained, as numbers.

    ``image``: a spec (``"seven"``, ``"four"``, ``"digit-3"``, ``"mnist:test:0"``, a PNG, ``"edge6x6"`` or a small
    matrix file) or a 2-D array. ``kernel``: a built-in name (``"sobel_x"``, ``"box_blur"``, ...), a file of numbers or
    a 2-D array. ``at``: the output pixel to work out, (row, col); by default the strongest response. ``pool``:
    ``"max:2"`` or ``"avg:2"``. ``flip``: the textbook convolution instead of PyTorch's cross-correlation.
    """
    for name, value, low in (("stride", stride, 1), ("padding", padding, 0), ("dilation", dilation, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ExplainError(f"{name}: {value!r}; accepted: an integer >= {low}")
    x, x_desc = _matrix(image, "image") if not isinstance(image, str) else load_input(image, data_root)
    k, k_desc = _matrix(kernel, "kernel") if not isinstance(kernel, str) else load_kernel(kernel)
    side = max(x.shape)
    if padding > side:  # before np.pad: a padding of a million would allocate terabytes
        raise ExplainError(f"padding {padding}: at most {side} (the input's larger side) is accepted; more only adds "
                           "rows and columns of zeros")
    fmap = finite_map(x, k, k_desc, stride, padding, dilation, flip)
    pixel = _at(at, fmap.shape)
    if pixel is None:  # the strongest response: a pixel where something happens
        pixel = tuple(int(v) for v in np.unravel_index(np.abs(fmap).argmax(), fmap.shape))  # type: ignore[assignment]
    assert pixel is not None
    row, col = pixel
    pooling = _pooling(fmap, pool, row, col) if pool is not None else None
    worked = worked_pixel(x, k, row, col, stride, padding, dilation, flip)
    return Convolution(ConvCase(x, k, x_desc, k_desc, stride, padding, dilation, flip, fmap, worked, pooling))


def output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """floor((W + 2P - D(K-1) - 1) / S) + 1: a conv or pool layer's output side for an input side ``size``."""
    for name, value, low in (("size", size, 1), ("kernel", kernel, 1), ("stride", stride, 1),
                             ("padding", padding, 0), ("dilation", dilation, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ExplainError(f"{name}: {value!r}; accepted: an integer >= {low}")
    n = out_size(size, kernel, stride, padding, dilation)
    if n < 1:
        raise ExplainError(f"kernel {kernel} (dilation {dilation}) does not fit an input of {size} with padding "
                           f"{padding}: {size_arithmetic('side', size, kernel, stride, padding, dilation)}")
    return n


@dataclass(frozen=True)
class Gallery:
    """Every built-in kernel cross-correlated with one image (stride 1, padding 1): ``rows`` holds (name, kernel,
    output) for each."""

    image: np.ndarray
    description: str
    rows: list[tuple[str, np.ndarray, np.ndarray]]

    def lines(self) -> list[str]:
        return [f"input: {self.description}, {self.image.shape[0]}x{self.image.shape[1]}"]

    def __repr__(self) -> str:
        return f"<Gallery: {len(self.rows)} kernels on {self.lines()[0].removeprefix('input: ')}>"

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def save(self, out: str | Path, cmap: str = "RdBu_r") -> list[Path]:
        """Write kernel_gallery.png (with its caption) into folder ``out``; returns the file."""
        from .gallery import gallery_figure  # noqa: PLC0415 - matplotlib only when drawing

        return [gallery_figure(self.image, self.description, Path(out), _cmap(cmap), DPI).path]


def kernel_gallery(image: str | np.ndarray = "seven", *, data_root: str | None = None) -> Gallery:
    """Every built-in kernel applied to ``image`` (a spec or a 2-D array, as :func:`convolve` takes)."""
    from .gallery import gallery_data  # noqa: PLC0415

    x, desc = _matrix(image, "image") if not isinstance(image, str) else load_input(image, data_root)
    return Gallery(x, desc, gallery_data(x))


@dataclass(frozen=True)
class RGBExample:
    """The tutorial's colour example: a 26x26x3 input (three real test digits as R, G, B), six 3x3x3 kernels, their
    feature maps (6, 24, 24) and the maps after ReLU and 2x2 max-pooling (6, 12, 12), as arrays; the whole chain's
    shapes in :meth:`lines`."""

    input: np.ndarray
    kernels: np.ndarray
    names: list[str]
    maps: np.ndarray
    pooled: np.ndarray

    def lines(self) -> list[str]:
        m, p = self.maps.shape, self.pooled.shape
        lines = ["input: 26x26x3 (R, G, B = the MNIST test split's first 7, 3 and 1, cropped to 26x26)",
                 "six 3x3x3 kernels, stride 1, no padding: each output channel sums its three per-channel "
                 "cross-correlations",
                 "  " + size_arithmetic("height", 26, 3, 1, 0, 1), "  " + size_arithmetic("width", 26, 3, 1, 0, 1),
                 f"feature maps: {m[1]}x{m[2]}x{m[0]}; ReLU and 2x2 max-pool: {p[1]}x{p[2]}x{p[0]}"]
        lines += [f"  kernel {i + 1}: {name}" for i, name in enumerate(self.names)]
        return lines + ["the whole chain (filterlab shapes --rgb):",
                        *("  " + line for line in shapes_lines(RGB_LAYERS, RGB_INPUT))]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def __repr__(self) -> str:
        m, p = self.maps.shape, self.pooled.shape
        return f"<RGBExample: 26x26x3 -> {m[1]}x{m[2]}x{m[0]} -> {p[1]}x{p[2]}x{p[0]}>"

    def save(self, out: str | Path, cmap: str = "RdBu_r") -> list[Path]:
        """Write rgb_chain.png (with its caption) into folder ``out``; returns the file."""
        from .rgb import rgb_figure  # noqa: PLC0415 - matplotlib only when drawing

        data = {"input": self.input, "kernels": self.kernels, "names": self.names, "maps": self.maps,
                "pooled": self.pooled}
        return [rgb_figure(data, Path(out), _cmap(cmap), DPI).path]


def rgb_example() -> RGBExample:
    """The colour example computed: 26x26x3 through six 3x3x3 kernels, ReLU and pooling to 12x12x6."""
    from .rgb import rgb_example as compute  # noqa: PLC0415

    ex = compute()
    return RGBExample(ex["input"], ex["kernels"], list(ex["names"]), ex["maps"], ex["pooled"])


# ---------------------------------------------------------------------------------------------------------------------
# Shapes through a network


@dataclass(frozen=True)
class ReceptiveField:
    """The input region one output pixel of a layer sees."""

    layer: str
    pixel: tuple[int, int]
    grid: tuple[int, int]  # the layer's output (H, W)
    field: Field  # size, jump, offset
    region: tuple[int, int, int, int]  # (row0, row1, col0, col1), inclusive; below 0 or past the edge: padding
    lines: list[str]

    @property
    def size(self) -> int:
        return self.field.size

    def __str__(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class Shapes:
    """Every layer's output shape and parameter count for one input."""

    layers: list[Layer]
    input: InputShape
    rows: list[Row]

    @property
    def flattened(self) -> int | None:
        """The size flattened into the first linear layer (None without a flatten)."""
        return next((r.shape[0] for r in self.rows if r.layer is not None and r.layer.op == "flatten"), None)

    @property
    def parameters(self) -> int:
        return sum(r.params for r in self.rows)

    def shape(self, layer: str) -> tuple[int, ...]:
        """A layer's output shape, (C, H, W) or (N,)."""
        found = {r.name: r.shape for r in self.rows}
        if layer not in found:
            raise ExplainError(f"layer {layer!r}: not one of {', '.join(found)}")
        return found[layer]

    def lines(self) -> list[str]:
        return shapes_lines(self.layers, self.input)

    def __repr__(self) -> str:
        return "\n".join(self.lines())

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def receptive_field(self, layer: str, at: tuple[int, int] | str | None = None) -> ReceptiveField:
        """The input region that pixel ``at`` (default: the centre) of ``layer``'s output sees, by the closed form."""
        fields = receptive_fields(self.layers)
        if layer not in fields:
            raise ExplainError(f"field {layer!r}: not a layer before flatten; accepted: {', '.join(fields)}")
        shape = self.shape(layer)
        grid = (shape[1], shape[2])
        if at is None:
            pixel = (grid[0] // 2, grid[1] // 2)
        else:
            text = at if isinstance(at, str) else ",".join(str(int(v)) for v in at)
            pixel = parse_at(text, grid, f"{layer}'s {grid[0]}x{grid[1]} output")
        f = fields[layer]
        return ReceptiveField(layer, pixel, grid, f, f.region(*pixel),
                              field_lines(self.layers, self.input.chw, layer, pixel))

    def field_figure(self, layer: str, at: tuple[int, int] | str | None = None, image: str = "seven") -> Any:
        """The receptive field of pixel ``at`` of ``layer`` drawn on ``image`` (the input fitted to this input's
        size), beside the layer's output grid: a new matplotlib Figure."""
        from .receptive_figure import draw_receptive  # noqa: PLC0415 - matplotlib only when drawing

        rf, x = self._field_input(layer, at, image)
        return inline(draw_receptive(x[0], self.layers, self.input.chw, layer, rf.pixel))

    def save_field(self, out: str | Path, layer: str, at: tuple[int, int] | str | None = None,
                   image: str = "seven") -> Path:
        """Write :meth:`field_figure` as receptive_field.png (with its caption) into folder ``out``; returns it."""
        from .receptive_figure import receptive_figure  # noqa: PLC0415 - matplotlib only when drawing

        rf, (x, desc) = self._field_input(layer, at, image)
        return receptive_figure(x, desc, self.layers, self.input.chw, layer, rf.pixel, Path(out), DPI).path

    def _field_input(self, layer: str, at: tuple[int, int] | str | None, image: str) -> Any:
        h, w = self.input.chw[1], self.input.chw[2]
        if h * w > MAX_FIELD_PIXELS:  # the figure draws every input pixel
            raise ExplainError(f"field: the receptive-field figure draws the {h}x{w} input, {h * w:,} pixels; "
                               f"accepted: at most {MAX_FIELD_PIXELS:,} pixels (4096x4096); give a smaller input")
        rf = self.receptive_field(layer, at)
        return rf, load_input(image)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in ("layer", "operation", f"output ({self.input.notation})",
                                                  "parameters"))
        body = "".join(f"<tr><td>{html.escape(r.name)}</td><td>{html.escape(describe(r.layer))}</td>"
                       f"<td>{self.input.show(r.shape)}</td><td>{r.params:,}</td></tr>" for r in self.rows)
        tail = (f"<p>flattened into the linear layer: {self.flattened}; total parameters: {self.parameters:,}</p>"
                if self.flattened is not None else f"<p>total parameters: {self.parameters:,}</p>")
        return f"<table><tr>{head}</tr>{body}</table>{tail}"


def _input_shape(value: str | tuple[int, ...]) -> InputShape:
    if isinstance(value, str):
        return parse_input(value)
    try:
        dims = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ExplainError(f"input {value!r}: expected (C, H, W) or a text such as '3x26x26'") from None
    if len(dims) != 3 or min(dims) < 1:
        raise ExplainError(f"input {value!r}: expected (C, H, W), each at least 1")
    return InputShape((dims[0], dims[1], dims[2]), hwc=False)


def shapes(config: Any = None, *, input: str | tuple[int, ...] | None = None, channels: int | None = None,
           rgb: bool = False) -> Shapes:
    """Each layer's output shape for a config's network (anything :func:`filterlab.load_config` takes), or with
    ``rgb=True`` for the tutorial's colour chain 26x26x3 -> ... -> 3x3x12 -> 108 -> 10. ``input``: another input,
    (C, H, W) or a text ('3x26x26', '26x26x3', '28x28'); ``channels``: only another channel count."""
    from .. import experiments  # noqa: PLC0415 - the registry, for a config's layers

    if (config is None) == (not rgb):
        raise ExplainError("give a config or rgb=True (one of them)")
    if input is not None and channels is not None:
        raise ExplainError("the input already gives the channels; leave out channels")
    if config is not None:
        cfg = experiments.load_config(config)
        layers, chw = experiments.card(cfg.kind).layers(cfg)
        shape = InputShape(chw, hwc=False)
    else:
        layers, shape = RGB_LAYERS, RGB_INPUT
    if input is not None:
        shape = _input_shape(input)
    elif channels is not None:
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ExplainError(f"channels: {channels!r}; accepted: an integer >= 1")
        shape = InputShape((channels, *shape.chw[1:]), shape.hwc)
    shapes_lines(list(layers), shape)  # raises GeometryError naming the layer that does not fit
    return Shapes(list(layers), shape, layer_table(layers, shape.chw))

