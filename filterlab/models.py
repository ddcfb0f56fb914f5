"""The networks of both experiment kinds, and checkpoints that rebuild them from themselves alone.

A checkpoint is a plain dict of tensors, numbers and strings (so ``torch.load(path, weights_only=True)`` reads it)
holding the resolved config next to the weights: :func:`load_checkpoint` needs nothing else to rebuild the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

CHECKPOINT_FORMAT = "filterlab-checkpoint/1"


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output side of a convolution or pooling: floor((W + 2P - D(K-1) - 1) / S) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


class SingleImageNet(nn.Module):
    """The article's network: N filters over one image, flattened into a linear layer, log-softmax.

    With ``kernel_size`` equal to the image side each filter yields a single number, so the linear layer is
    Linear(N, classes); a smaller kernel yields an (N, h, w) feature map that is flattened instead.
    """

    def __init__(self, filters: int = 5, kernel_size: int = 28, conv_bias: bool = True, activation: str = "none",
                 num_classes: int = 10, image_size: int = 28):
        super().__init__()
        self.activation = activation
        self.conv = nn.Conv2d(1, filters, kernel_size, bias=conv_bias)
        side = conv_out(image_size, kernel_size)
        self.fc = nn.Linear(filters * side * side, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 28, 28)
        z = self.conv(x)  # (B, N, h, w)
        if self.activation == "relu":
            z = F.relu(z)
        return F.log_softmax(self.fc(z.flatten(1)), dim=1)  # (B, classes)


def single_image_net(model_cfg: dict[str, Any]) -> SingleImageNet:
    return SingleImageNet(filters=model_cfg["filters"], kernel_size=model_cfg["kernel_size"],
                          conv_bias=model_cfg["conv_bias"], activation=model_cfg["activation"],
                          num_classes=model_cfg["num_classes"])


def build_model(config: dict[str, Any], in_channels: int = 1, image_size: int = 28, num_classes: int = 10
                ) -> nn.Module:
    """The model of a resolved config (plain dict, as stored in run directories and checkpoints)."""
    kind = config["kind"]
    if kind == "single_image":
        return single_image_net(config["model"])
    if kind == "classifier":
        from .classifier import TwoConvNet

        return TwoConvNet.from_config(config["model"], in_channels, image_size, num_classes)
    raise ValueError(f"unknown experiment kind {kind!r}")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model stored in a checkpoint; returns (model in eval mode, the checkpoint dict)."""
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a filterlab checkpoint")
    model = build_model(ckpt["config"], ckpt.get("in_channels", 1), ckpt.get("image_size", 28),
                        ckpt.get("num_classes", 10))
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt
