"""Layer type names of the model file format → layer classes.

A layer is written as its class name (``type`` attribute) plus the arrays of
``layer.parameters()`` and the settings of ``layer.hyperparameters()``; reading it
back looks the class up here and calls its constructor with those names as keyword
arguments (see :func:`lrpcore.io.hdf5.load`). So any layer class whose constructor
takes its parameters and (constructor-level) hyperparameters by the names these two
methods return can be stored, with no format-specific code.

How a class is found, in order:

1. ``LAYER_TYPES``, the explicit registry: ``register_layer(MyLayer)`` adds a class
   under its ``__name__`` (or a given name);
2. the public ``Layer`` subclasses of the modules in ``LAYER_MODULES``
   (``lrpcore.layers``, which re-exports every layer module), found by class name
   the first time a name is missing from the registry. A new layer module is added by
   appending its import path to ``LAYER_MODULES``.
"""
from __future__ import annotations

import importlib
import inspect

from ..errors import ModelFormatError
from ..layers import Layer

__all__ = ["LAYER_TYPES", "LAYER_MODULES", "register_layer", "layer_class", "layer_type_name"]

#: Type name in the file → layer class. Filled from ``LAYER_MODULES`` on first use; extend with ``register_layer``.
LAYER_TYPES: dict[str, type[Layer]] = {}

#: Modules whose public Layer subclasses are storable by class name.
LAYER_MODULES: list[str] = ["lrpcore.layers", "lrpcore.lstm", "lrpcore.neon"]

_scanned: set[str] = set()


def register_layer(layer_class: type[Layer], name: str | None = None) -> type[Layer]:
    """Make ``layer_class`` storable under ``name`` (default: its class name); usable as a decorator."""
    if not (isinstance(layer_class, type) and issubclass(layer_class, Layer)):
        raise TypeError(f"register_layer needs a subclass of lrpcore.layers.Layer, got {layer_class!r}")
    key = name or layer_class.__name__
    existing = LAYER_TYPES.get(key)
    if existing is not None and existing is not layer_class:
        raise ValueError(f"layer type name {key!r} is already registered for {existing.__module__}.{existing.__name__}")
    LAYER_TYPES[key] = layer_class
    return layer_class


def _scan_modules() -> None:
    """Register the public concrete Layer subclasses of every module in ``LAYER_MODULES`` not scanned yet."""
    for module_name in LAYER_MODULES:
        if module_name in _scanned:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        _scanned.add(module_name)
        for attribute in getattr(module, "__all__", []):
            candidate = getattr(module, attribute, None)
            if (isinstance(candidate, type) and issubclass(candidate, Layer) and not inspect.isabstract(candidate)
                    and not attribute.startswith("_") and candidate.__name__ == attribute
                    and attribute not in ("Layer", "LinearLayer")):
                LAYER_TYPES.setdefault(attribute, candidate)


def layer_class(type_name: str) -> type[Layer]:
    """The class stored as ``type_name``; ``ModelFormatError`` listing the known names if there is none."""
    if type_name not in LAYER_TYPES:
        _scan_modules()
    try:
        return LAYER_TYPES[type_name]
    except KeyError:
        raise ModelFormatError(f"unknown layer type {type_name!r}; known types are {sorted(LAYER_TYPES)}") from None


def layer_type_name(layer: Layer) -> str:
    """The name ``layer`` is stored under; ``ModelFormatError`` if its class is not registered."""
    _scan_modules()
    for name, registered in LAYER_TYPES.items():
        if registered is type(layer):
            return name
    raise ModelFormatError(
        f"layer class {type(layer).__module__}.{type(layer).__name__} cannot be stored: it is not registered; "
        "call lrpcore.io.registry.register_layer(YourLayer) first")
