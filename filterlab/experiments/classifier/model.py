"""The classifier's network: conv blocks (two by default), then an optional hidden layer and the output layer.

Blocks are registered as ``conv1``, ``conv2``, ... so their parameters keep the names that checkpoints store and
figures show. The head's input size comes from a dummy forward pass, never from a hand-computed number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

from .config import ClassifierModel

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


class ConvBlock(nn.Module):
    """conv -> [batch norm] -> activation -> [pool]; ``feature_map`` stops before the pooling."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, padding: int, pool: int, pool_type: str,
                 activation: str, batch_norm: bool):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=not batch_norm)
        self.bn = nn.BatchNorm2d(cout) if batch_norm else nn.Identity()
        self.act = ACTIVATIONS[activation]()
        pool_cls = nn.MaxPool2d if pool_type == "max" else nn.AvgPool2d
        self.pool = pool_cls(pool) if pool > 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.bn(self.conv(x))))

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The activation map before pooling: what the layer's filters respond to, position by position."""
        return self.act(self.bn(self.conv(x)))


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
                                                  m["batch_norm"]))
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
            x = b.pool(a)
        return out
