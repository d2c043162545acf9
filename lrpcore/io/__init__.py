"""Reading and writing models.

- :func:`load` / :func:`save`: lrpcore's own HDF5 format (documented in ``models/FORMAT.md``);
- :func:`load_keras`: Keras HDF5 weight files (legacy ``.h5``, Keras 3 ``.weights.h5`` and ``.keras``);
- :func:`load_toolbox`: the LRP Toolbox's plain-text models (``.txt``), with :func:`toolbox_composite`
  for the rules that reproduce the Toolbox's LRP variants;
- :func:`from_torch`: PyTorch modules and state dicts (in :mod:`lrpcore.io.torch`, imported on first use
  so that lrpcore does not need PyTorch).

Every loader validates the whole model before returning it and raises
:class:`~lrpcore.errors.ModelFormatError` (``FileNotFoundError`` for a missing file) naming the
file, the layer and what was expected.
"""
from __future__ import annotations

import importlib
from typing import Any

from .hdf5 import load, save
from .keras import load_keras
from .toolbox import load_toolbox, toolbox_composite

__all__ = ["load", "save", "load_keras", "load_toolbox", "toolbox_composite", "from_torch"]


def __getattr__(name: str) -> Any:
    if name == "from_torch":
        return importlib.import_module(".torch", __name__).from_torch
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
