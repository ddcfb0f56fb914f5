"""The checks of a config that need no torch: the model's geometry and the run's resource budget.

`filterlab train` runs them before it imports torch, so a config that cannot work is refused in a fraction of a
second with nothing created; ``train_config`` runs them again for library callers.
"""

from __future__ import annotations

from typing import Any

from . import experiments
from .board import require
from .core.budget import check as check_budget
from .core.errors import InputError
from .core.geometry import GeometryError, Row, layer_table


def check_geometry(cfg: Any) -> list[Row]:
    """The model's geometry, by the same arithmetic as `filterlab shapes`: InputError naming the layer that does not
    fit."""
    layers, input_shape = experiments.card(cfg.kind).layers(cfg)
    try:
        return layer_table(layers, input_shape)
    except GeometryError as e:
        raise InputError(f"model: {e} (see: filterlab shapes CONFIG)") from None


def check_config(cfg: Any, inputs: Any = None) -> None:
    """Geometry, then the run's resource budget: exact once the inputs are loaded, what the config alone says
    before."""
    table = check_geometry(cfg)
    check_budget(experiments.card(cfg.kind).estimate(cfg, table, inputs))
    if cfg.output.tensorboard:
        require("output.tensorboard")
