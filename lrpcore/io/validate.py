"""Checks that a model and its metadata agree, run before a model is saved and before a loaded one is returned.

A model file can be well formed and still wrong: a dense layer expecting 800 features
after a flatten that yields 980, class names for 10 outputs on a 5-way classifier,
per-channel preprocessing for 3 channels on a 1-channel input. ``check_model`` finds
these by running one zero sample of the metadata's input shape through the layers
(each layer checks its own input shape) and comparing what comes out with the
metadata. It raises :class:`~lrpcore.errors.ModelFormatError` naming the source
(file), the layer (index and description; for a graph the node's name) and the expected
versus found value. Graphs are checked like chains: the zero sample runs through every node
in topological order (each node checks the shapes of the inputs it joins).
"""
from __future__ import annotations

import math
import numpy

from ..backend import to_numpy
from ..errors import LRPError, ModelFormatError
from ..graph import Graph
from ..model import ModelMetadata

__all__ = ["check_model", "check_metadata", "check_parameters"]

FLOAT_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))


def check_parameters(model: Graph, source: str) -> numpy.dtype | None:
    """All parameter arrays are float32 or float64, one dtype for the whole model, and finite.

    Returns that dtype (None for a model without parameters).
    """
    model_dtype = None
    for index, layer in enumerate(model.layers):
        for name, value in layer.parameters().items():
            host = to_numpy(value)
            where = f"{source}: {model.where(index)} {name}"
            if host.dtype not in FLOAT_DTYPES:
                raise ModelFormatError(f"{where} has dtype {host.dtype}; expected float32 or float64")
            if model_dtype is None:
                model_dtype = host.dtype
            elif host.dtype != model_dtype:
                raise ModelFormatError(f"{where} has dtype {host.dtype}, but earlier layers are {model_dtype}; "
                                       "a model uses one dtype")
            if not bool(numpy.all(numpy.isfinite(host))):
                raise ModelFormatError(f"{where} of shape {host.shape} contains NaN or inf values")
    return model_dtype


def check_metadata(metadata: ModelMetadata, source: str) -> None:
    """The metadata fields have the documented types and values (positive shape, low < high, std > 0...)."""
    if metadata.input_shape is not None:
        shape = tuple(metadata.input_shape)
        if not shape or not all(isinstance(size, (int, numpy.integer)) and size > 0 for size in shape):
            raise ModelFormatError(f"{source}: input_shape must be positive integers, found {shape}")
    low, high = (float(value) for value in metadata.value_range)
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ModelFormatError(f"{source}: value_range must be finite with low < high, found {metadata.value_range}")
    channels = metadata.input_shape[0] if metadata.input_shape else None
    for field in ("mean", "std"):
        values = getattr(metadata, field)
        if values is None:
            continue
        values = tuple(float(value) for value in values)
        if not values or not all(math.isfinite(value) for value in values):
            raise ModelFormatError(f"{source}: {field} must be finite numbers, found {values}")
        if channels is not None and len(values) not in (1, channels):
            raise ModelFormatError(f"{source}: {field} has {len(values)} values, expected 1 or {channels} "
                                   f"(one per channel of input shape {tuple(metadata.input_shape)})")
        if field == "std" and not all(value > 0 for value in values):
            raise ModelFormatError(f"{source}: std must be positive, found {values}")
    if metadata.class_names is not None and not all(isinstance(name, str) for name in metadata.class_names):
        raise ModelFormatError(f"{source}: class_names must be strings, found {metadata.class_names!r}")
    if not isinstance(metadata.name, str) or not isinstance(metadata.description, str):
        raise ModelFormatError(f"{source}: name and description must be strings")


def check_model(model: Graph, source: str) -> numpy.dtype | None:
    """Parameters, metadata and layer shapes agree; raises ``ModelFormatError`` naming what does not.

    Returns the model's dtype (None for a model without parameters).
    """
    if not isinstance(model, Graph):
        raise TypeError(f"expected an lrpcore.Sequential or Graph, got {type(model).__name__}")
    model_dtype = check_parameters(model, source)
    metadata = model.metadata
    check_metadata(metadata, source)
    if metadata.input_shape is None:
        return model_dtype
    shape = tuple(int(size) for size in metadata.input_shape)
    sample = numpy.zeros((1, *shape), dtype=model_dtype or numpy.float32)
    host_model = model if model.namespace().__name__.endswith("numpy") else model.to("numpy")
    try:
        activations = host_model.forward(sample, record=True)
    except (LRPError, ValueError, TypeError, IndexError) as error:
        raise ModelFormatError(f"{source}: the layers do not accept the metadata's input shape {shape}: "
                               f"{error}") from None
    for index, (layer, activation) in enumerate(zip(model.layers, activations[1:])):
        if not bool(numpy.all(numpy.isfinite(to_numpy(activation)))):
            raise ModelFormatError(f"{source}: {model.where(index)} gives NaN or inf for a zero "
                                   "input (a BatchNorm with running_var + eps ≤ 0?)")
    output = activations[-1]
    out_shape = tuple(int(size) for size in output.shape[1:])
    if metadata.class_names is not None:
        outputs = math.prod(out_shape)
        if len(out_shape) != 1 or outputs != len(metadata.class_names):
            raise ModelFormatError(f"{source}: {len(metadata.class_names)} class names, but the last layer "
                                   f"({model.layers[-1].describe()}) gives outputs of shape {out_shape}")
    return model_dtype

