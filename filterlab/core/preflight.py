"""The checks of a config that need no torch: the model's geometry and the run's resource budget.

`filterlab train` runs them before it imports torch, so a config that cannot work is refused in a fraction of a
second with nothing created; ``train_config`` runs them again for library callers.
"""

from __future__ import annotations

from typing import Any

from .. import experiments
from .budget import check as check_budget
from .errors import InputError
from .geometry import GeometryError, layer_table


def check_config(cfg: Any) -> None:
    """The model's geometry (the same arithmetic as `filterlab shapes`) and the run's resource budget."""
    card = experiments.card(cfg.kind)
    layers, input_shape = card.layers(cfg)
    try:
        table = layer_table(layers, input_shape)
    except GeometryError as e:
        raise InputError(f"model: {e} (see: filterlab shapes CONFIG)") from None
    check_budget(card.estimate(cfg, table))
