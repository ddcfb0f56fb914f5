"""The per-user data folder: one place the shipped configs read their datasets from, whatever the working folder.

``$FILTERLAB_DATA`` when set, else ``$XDG_CACHE_HOME/filterlab/data`` (``~/.cache/filterlab/data``), with one
subfolder per dataset as ``../shared/datasets`` is laid out: ``mnist``, ``fashion-mnist``, ``kmnist``. A classifier
config whose ``data.root`` is null reads (and, where allowed, downloads once into) its dataset's subfolder.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "FILTERLAB_DATA"
FOLDERS = {"mnist": "mnist", "fashion_mnist": "fashion-mnist", "kmnist": "kmnist"}  # dataset name -> subfolder


def data_home() -> Path:
    """The folder that holds one subfolder per dataset."""
    explicit = os.environ.get(DATA_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(cache).expanduser() if cache else Path.home() / ".cache") / "filterlab" / "data"


def dataset_home(name: str) -> Path:
    """A named dataset's folder inside :func:`data_home`."""
    return data_home() / FOLDERS.get(name, name)
