"""The classifier's network: conv blocks (two by default), then an optional hidden layer and the output layer.

Blocks are registered as ``conv1``, ``conv2``, ... so their parameters keep the names that checkpoints store and
figures show. The head's input size comes from a dummy forward pass, never from a hand-computed number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ClassifierModel

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


class ConvBlock(nn.Module):
    """conv -> [batch norm] -> activation -> [pool]; with ``pool_first``, conv -> [pool] -> [batch norm] ->
    activation. ``feature_map`` is the activation map at the convolution's resolution, before any pooling: what the
    layer's filters respond to, position by position.

    Pooling first runs the batch norm and the activation on a quarter of the values (2x2 pools): on a CPU they cost
    more than a small convolution. Max pooling commutes with every increasing function, so in evaluation, where batch
    norm is a fixed affine map per channel, the pooled output equals the pool of ``feature_map`` for every channel
    whose batch-norm scale is positive (and for all of them without batch norm); training normalises with the pooled
    values' statistics, which makes it a different net, not an approximation of the other order.
    """

    def __init__(self, cin: int, cout: int, k: int, stride: int, padding: int, pool: int, pool_type: str,
                 activation: str, batch_norm: bool, pool_first: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=not batch_norm)
        self.pool_first = pool_first
        pool_cls = nn.MaxPool2d if pool_type == "max" else nn.AvgPool2d
        pooling = pool_cls(pool) if pool > 1 else nn.Identity()
        if pool_first:  # registered in the order they run, so a trace of the leaf modules sees that order
            self.pool = pooling
        self.bn = nn.BatchNorm2d(cout) if batch_norm else nn.Identity()
        self.act = ACTIVATIONS[activation]()
        if not pool_first:
            self.pool = pooling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_first:
            return self.act(self.bn(self.pool(self.conv(x))))
        return self.pool(self.act(self.bn(self.conv(x))))

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The activation map before pooling. With ``pool_first``, batch norm is its fixed map of the running
        statistics in either mode (statistics of the unpooled map would be another net's, and must not update)."""
        z = self.conv(x)
        if self.pool_first and isinstance(self.bn, nn.BatchNorm2d):
            bn = self.bn
            return self.act(F.batch_norm(z, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps))
        return self.act(self.bn(z))


class ConvNet(nn.Module):
    """Conv blocks, then [dropout, hidden linear, activation], dropout, output linear."""

    def __init__(self, m: ClassifierModel | dict[str, Any], in_channels: int = 1, image_size: int = 28,
                 num_classes: int = 10):
        super().__init__()
        m = m if isinstance(m, dict) else {k: getattr(m, k) for k in m.__dataclass_fields__}
        self.in_channels, self.image_size = in_channels, image_size
        self.block_names: list[str] = []
        cin = in_channels
        for i, (c, k, s, p, q) in enumerate(zip(m["channels"], m["kernel_size"], m["stride"], m["padding"],
                                                m["pool"]), start=1):
            self.add_module(f"conv{i}", ConvBlock(cin, c, k, s, p, q, m["pool_type"], m["activation"],
                                                  m["batch_norm"], m.get("pool_first", False)))
            self.block_names.append(f"conv{i}")
            cin = c
        with torch.no_grad():
            flat = self.features(torch.zeros(1, in_channels, image_size, image_size)).shape[1]
        self.flat_features = flat
        hidden, dropout = m["hidden"], m["dropout"]
        layers: list[nn.Module] = []
        if hidden:
            layers += [nn.Dropout(dropout), nn.Linear(flat, hidden), ACTIVATIONS[m["activation"]]()]
        layers += [nn.Dropout(dropout), nn.Linear(hidden or flat, num_classes)]
        self.head = nn.Sequential(*layers)

    @property
    def blocks(self) -> list[ConvBlock]:
        return [getattr(self, n) for n in self.block_names]

    def positive_scales(self) -> dict[str, tuple[int, int]]:
        """Per conv layer with batch norm: (channels whose batch-norm scale is positive, channels)."""
        out = {}
        for n, b in zip(self.block_names, self.blocks):
            if isinstance(b.bn, nn.BatchNorm2d):
                w = b.bn.weight.detach()
                out[n] = (int((w > 0).sum()), int(w.numel()))
        return out

    def conv_weights(self) -> dict[str, torch.Tensor]:
        """Each conv layer's filters, detached copies on the CPU: {"conv1": (C1, C_in, k, k), ...}."""
        return {n: b.conv.weight.detach().cpu().clone() for n, b in zip(self.block_names, self.blocks)}

    def features(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, F)
        for b in self.blocks:
            x = b(x)
        return x.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, classes) logits
        return self.head(self.features(x))

    def feature_maps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Activation maps of each conv layer for a batch x: {"conv1": (B, C1, H1, W1), "conv2": ...}."""
        out = {}
        for n, b in zip(self.block_names, self.blocks):
            a = b.feature_map(x)
            out[n] = a
            x = b(x) if b.pool_first else b.pool(a)  # what the next block gets in either order
        return out
