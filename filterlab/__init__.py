"""filterlab: watch a CNN's random filters turn into meaningful shapes while it trains.

``import filterlab as fl`` is cheap: the public names (see ``__all__``) load when first used (PEP 562), so the
command line starts without torch, matplotlib or NumPy.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from .core.version import __version__

if os.environ.get("FILTERLAB_TEST_LAYOUT"):  # a test hook, inert without the variable (filterlab.viz.testwatch)
    from .viz.testwatch import install

    install()

if TYPE_CHECKING:
    from .api import (
        Comparison,
        ConfigError,
        FigureFile,
        InputError,
        Insight,
        Run,
        RunTable,
        Sweep,
        compare,
        dump_config,
        load_config,
        open_run,
        resume,
        runs,
        sweep,
        tensorboard,
        train,
    )
    from .explain.results import Convolution, Shapes, convolve, kernel_gallery, output_size, rgb_example, shapes
    from .lessons import write_lessons

_API = ("load_config", "dump_config", "train", "resume", "open_run", "runs", "compare", "sweep", "tensorboard", "Run",
        "Insight", "FigureFile", "RunTable", "Comparison", "Sweep", "ConfigError", "InputError")
_EXPLAIN = ("convolve", "kernel_gallery", "rgb_example", "output_size", "shapes", "Convolution", "Shapes")
# public name -> the module that defines it (the explainer's own module: the API module stays free of NumPy)
_NAMES = {**dict.fromkeys(_API, "filterlab.api"), **dict.fromkeys(_EXPLAIN, "filterlab.explain.results"),
          "write_lessons": "filterlab.lessons"}

__all__ = ["Comparison", "ConfigError", "Convolution", "FigureFile", "InputError", "Insight", "Run", "RunTable",
           "Shapes", "Sweep", "__version__", "compare", "convolve", "dump_config", "kernel_gallery", "load_config",
           "open_run", "output_size", "resume", "rgb_example", "runs", "shapes", "sweep", "tensorboard", "train",
           "write_lessons"]


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'filterlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))
