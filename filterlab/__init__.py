"""filterlab: watch a CNN's random filters turn into meaningful shapes while it trains.

``import filterlab as fl`` is cheap: the public names (see ``__all__``) load when first used (PEP 562), so the
command line starts without torch, matplotlib or NumPy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .core.version import __version__

if TYPE_CHECKING:
    from .api import ConfigError, FigureFile, InputError, Insight, Run, load_config, open_run, resume, train

# public name -> the module that defines it
_NAMES = {
    "load_config": "filterlab.api", "train": "filterlab.api", "resume": "filterlab.api", "open_run": "filterlab.api",
    "Run": "filterlab.api", "Insight": "filterlab.api", "FigureFile": "filterlab.api",
    "ConfigError": "filterlab.api", "InputError": "filterlab.api",
}

__all__ = ["ConfigError", "FigureFile", "InputError", "Insight", "Run", "__version__", "load_config", "open_run",
           "resume", "train"]


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'filterlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))
