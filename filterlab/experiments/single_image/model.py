"""The single-image network: N filters over one image, flattened into a linear layer, log-softmax."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...core.geometry import out_size


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
        side = out_size(image_size, kernel_size)
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
