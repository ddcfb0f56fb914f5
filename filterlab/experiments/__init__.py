"""The registry of experiment kinds: the one place that maps a kind's name to its implementation.

Adding a kind is adding a package beside ``single_image`` and ``classifier`` (its ``__init__`` defines ``CARD``, its
``experiment.py`` defines ``EXPERIMENT``) and one line in ``KINDS``. Every command asks this module; no module outside
an experiment's own package compares the kind's name.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core import config as C
from ..core.errors import ConfigError, short_repr
from .base import Card, Experiment

KINDS: dict[str, str] = {
    "single_image": "filterlab.experiments.single_image",
    "classifier": "filterlab.experiments.classifier",
}


def kinds() -> list[str]:
    return list(KINDS)


def card(kind: str) -> Card:
    """The torch-free description of a kind (config class, metrics, headline, layers)."""
    if kind not in KINDS:
        raise ConfigError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    card: Card = importlib.import_module(KINDS[kind]).CARD
    return card


def get(kind: str) -> Experiment:
    """A kind's runtime (imports torch)."""
    card(kind)
    exp: Experiment = importlib.import_module(KINDS[kind] + ".experiment").EXPERIMENT
    return exp


def config_classes() -> dict[str, type]:
    return {k: card(k).config_class for k in KINDS}


def config_from_data(data: Any, source: str | None) -> Any:
    return C.from_data(data, source, config_classes())


def load_config(config: str | os.PathLike[str] | Mapping[str, Any] | Any, overrides: C.Overrides = ()) -> Any:
    """The one way a config enters filterlab: code defaults, then ``config``, then ``overrides``, all validated.

    A relative path written in a YAML file is read from the file's folder (data.root always, other path keys when
    such a file is there); one given in a dict or an override from the working folder. ``config`` is a YAML file, a
    dict of plain data (``{"kind": "classifier", "train": {"epochs": 1}}``) or a config
    object (validated again: one built in Python may hold anything). ``overrides`` is a mapping of dotted keys to
    values, taken as given (``{"train.steps": 200}``), or ``KEY=VALUE`` texts whose values are read as YAML. Raises
    :class:`~filterlab.core.errors.ConfigError`, whose message names the key, the value and what is accepted.
    """
    source: str | None
    if isinstance(config, (str, os.PathLike)):
        data, source = C.read_data(Path(config))
        data = _beside(data, Path(config).parent)
    elif isinstance(config, Mapping):
        data, source = copy.deepcopy(dict(config)), None
    elif dataclasses.is_dataclass(config) and not isinstance(config, type):
        data, source = C.to_dict(config), None
    else:
        raise ConfigError(f"expected a YAML file's path, a dict or a config object, got {type(config).__name__}")
    items = C.override_items(overrides)
    for key, value in items:
        C.set_dotted(data, key, value)
    if items and source:
        source = f"{source} with overrides {' '.join(f'{k}={short_repr(v)}' for k, v in items)}"
    return config_from_data(data, source)


def _beside(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """A config file's relative paths read from the file's folder, not the working folder: data.root always, another
    path key (an image, a sample) when a file of that name is there (``four`` or ``test:first-7`` are not paths)."""
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        return data  # refused by the validation that follows
    for key in card(kind).paths:
        section, name = key.split(".")
        part = data.get(section)
        value = part.get(name) if isinstance(part, dict) else None
        if not isinstance(value, str) or not value or os.path.isabs(value) or value.startswith("~"):
            continue
        there = folder / value
        if name == "root" or there.exists():
            part[name] = os.path.normpath(os.path.abspath(there))  # type: ignore[index]
    return data


def read_summary(run_dir: str | Path, kind: Any) -> dict[str, Any]:
    """RUN_DIR/summary.json through its reader: the fields every kind writes and, for a known kind, its own."""
    from ..core.runfiles import read_summary as read  # noqa: PLC0415 - the card modules import runfiles too

    return read(run_dir, card(kind).summary_fields if isinstance(kind, str) and kind in KINDS else None)


def defaults(kind: str) -> dict[str, Any]:
    """The code defaults of a kind, as plain data."""
    return C.to_dict(card(kind).config_class())


def path_values(cfg: Any) -> dict[str, Any]:
    """The config's path keys (the card's ``paths``) and their values."""
    out = {}
    for key in card(cfg.kind).paths:
        section, name = key.split(".")
        out[key] = getattr(getattr(cfg, section), name)
    return out


def absolute_paths(cfg: Any) -> Any:
    """The config with data.root, and every other path key that names an existing file, made absolute: a run folder
    that stands alone, resumable from any working folder or cluster node."""
    for key, value in path_values(cfg).items():
        section, name = key.split(".")
        if value is None or (name != "root" and not Path(value).exists()):
            continue
        part = dataclasses.replace(getattr(cfg, section), **{name: os.path.abspath(value)})  # as given, links kept
        cfg = dataclasses.replace(cfg, **{section: part})
    return cfg
