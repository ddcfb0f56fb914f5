"""Find a conv net's conv layers, the activation that follows each, and their receptive fields, from the model alone.

One dummy forward pass records the leaf modules in the order they run; that order becomes a list of
:class:`filterlab.core.geometry.Layer` records, so receptive fields come from ``receptive_fields`` and are never
hard-coded. For each ``nn.Conv2d`` the *channel activation* is the output of the last normalisation or activation
module that directly follows it (before any pooling): what the next layer sees, position by position. Networks that
apply their activation as a function (``F.relu``) rather than a module are probed at the conv's own output.

:func:`capture` runs a batch and returns those activations, stopping the forward pass after the last one needed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from filterlab.core.geometry import Field, Layer, receptive_fields

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Softplus)
NORMS = (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.LocalResponseNorm)
POOLS = (nn.MaxPool2d, nn.AvgPool2d)
PASS_THROUGH = (nn.Identity, nn.Dropout, nn.Dropout2d)  # shape- and value-preserving at evaluation time
ENDS = (nn.Linear, nn.Flatten, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)  # the spatial part is over


class ProbeError(ValueError):
    """A model whose conv layers cannot be probed (no Conv2d, or a non-square kernel); the message names the layer."""


@dataclass(frozen=True)
class InputScale:
    """How pixels in [0, 1] become the model's input: (pixel - mean) / std, per input channel.

    ToTensor alone is mean 0, std 1; raw 0-255 input is mean 0, std 1/255; MNIST standardisation 0.1307, 0.3081.
    """

    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def to_model(self, pixels: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) in [0, 1] -> model input
        m = torch.tensor(self.mean, dtype=pixels.dtype, device=pixels.device).view(1, -1, 1, 1)
        s = torch.tensor(self.std, dtype=pixels.dtype, device=pixels.device).view(1, -1, 1, 1)
        return (pixels - m) / s

    def from_uint8(self, images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
        """uint8 (N, H, W) or (N, H, W, C) -> model input (N, C, H, W), float32."""
        t = torch.from_numpy(np.array(images, copy=True)).to(device)  # IDX arrays are read-only views
        t = t.unsqueeze(1) if t.dim() == 3 else t.permute(0, 3, 1, 2)
        return self.to_model(t.float().div_(255.0))


@dataclass(frozen=True)
class Probe:
    """One conv layer: its filters, where its channel activation is read, and its receptive field."""

    name: str  # "conv1": the module's qualified name without a trailing ".conv"
    conv: nn.Conv2d
    pre: nn.Module  # the conv or its normalisation: the channel's value before the activation
    post: nn.Module  # the activation module after it (``pre`` itself when there is none)
    field: Field
    map_size: tuple[int, int]  # (H, W) of the activation map for the traced input

    @property
    def channels(self) -> int:
        return self.conv.out_channels


def trace(model: nn.Module, input_shape: tuple[int, int, int]) -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    """(name, leaf module, output shape) in the order one forward pass of a zero input runs them."""
    calls: list[tuple[str, nn.Module, tuple[int, ...]]] = []
    handles = []
    for name, mod in model.named_modules():
        if not list(mod.children()):
            def hook(m: nn.Module, _in: object, out: object, name: str = name) -> None:
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else ()
                calls.append((name, m, shape))

            handles.append(mod.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return calls


def _square(name: str, what: str, value: object) -> int:
    v = value if isinstance(value, (tuple, list)) else (value, value)
    if isinstance(v[0], str) or v[0] != v[1]:
        raise ProbeError(f"{name}: {what} {value!r} is not square; receptive fields need square kernels")
    return int(v[0])


def _layer(name: str, m: nn.Module) -> Layer | None:
    """The geometry record of one module (None for modules that change nothing at evaluation time)."""
    if isinstance(m, nn.Conv2d):
        return Layer(name, "conv", m.out_channels, _square(name, "kernel", m.kernel_size),
                     _square(name, "stride", m.stride), _square(name, "padding", m.padding),
                     _square(name, "dilation", m.dilation), m.bias is not None)
    if isinstance(m, POOLS):
        stride = m.stride if m.stride is not None else m.kernel_size
        dilation = getattr(m, "dilation", 1)
        return Layer(name, "pool", 0, _square(name, "kernel", m.kernel_size), _square(name, "stride", stride),
                     _square(name, "padding", m.padding), _square(name, "dilation", dilation),
                     detail="max" if isinstance(m, nn.MaxPool2d) else "avg")
    if isinstance(m, NORMS):
        return Layer(name, "norm")
    if isinstance(m, ACTIVATIONS):
        return Layer(name, "act", detail=type(m).__name__.lower())
    return None


def _display_name(qualified: str) -> str:
    return qualified.removesuffix(".conv")


def conv_probes(model: nn.Module, input_shape: tuple[int, int, int]) -> list[Probe]:
    """Every conv layer of ``model`` in forward order, with its activation modules and receptive field."""
    calls = trace(model, input_shape)
    layers: list[Layer] = []
    spatial: list[tuple[str, nn.Module, tuple[int, ...]]] = []
    for name, m, shape in calls:
        if isinstance(m, ENDS):
            break
        layer = _layer(name, m)
        if layer is not None:
            layers.append(layer)
            spatial.append((name, m, shape))
    fields = receptive_fields(layers)
    probes, seen = [], set()
    for i, (name, m, shape) in enumerate(spatial):
        if not isinstance(m, nn.Conv2d) or id(m) in seen:
            continue
        seen.add(id(m))
        pre: nn.Module = m
        post: nn.Module = m
        for _, nxt, _ in spatial[i + 1:]:  # the norm / activation run right after the conv
            if isinstance(nxt, NORMS) and post is pre:
                pre = post = nxt
            elif isinstance(nxt, ACTIVATIONS):
                post = nxt
            else:
                break
        probes.append(Probe(_display_name(name), m, pre, post, fields[name], (shape[-2], shape[-1])))
    if not probes:
        raise ProbeError("the model has no nn.Conv2d layer before its first linear layer")
    return probes


class _Stop(Exception):
    """Raised by a hook once every wanted activation is in hand: the rest of the forward pass is not needed."""


@contextmanager
def _hooks(targets: Sequence[tuple[str, nn.Module]], store: dict[str, torch.Tensor], stop: bool) -> Iterator[None]:
    remaining = {name for name, _ in targets}
    handles = []
    for name, mod in targets:
        def hook(_m: nn.Module, _in: object, out: torch.Tensor, name: str = name) -> None:
            if name in remaining:
                store[name] = out
                remaining.discard(name)
                if stop and not remaining:
                    raise _Stop

        handles.append(mod.register_forward_hook(hook))
    try:
        yield
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()


def capture(model: nn.Module, x: torch.Tensor, probes: Sequence[Probe], where: str = "post",
            stop: bool = True) -> dict[str, torch.Tensor]:
    """Channel activations {probe name: (B, C, H, W)} of a batch; ``where`` is "post" (after the activation) or
    "pre" (before it). With ``stop`` the forward pass ends once the last of them is computed. Gradients flow when
    the caller has them enabled."""
    store: dict[str, torch.Tensor] = {}
    targets = [(p.name, p.post if where == "post" else p.pre) for p in probes]
    with _hooks(targets, store, stop):
        model(x)
    return store


def forward_with(model: nn.Module, x: torch.Tensor, probe: Probe, where: str = "post"
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's output and one probe's activation from a single forward pass (for saliency)."""
    store: dict[str, torch.Tensor] = {}
    with _hooks([(probe.name, probe.post if where == "post" else probe.pre)], store, stop=False):
        out = model(x)
    return out, store[probe.name]
