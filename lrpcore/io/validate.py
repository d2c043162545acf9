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

That validation pass is bounded before it runs (:func:`check_forward_bounds`): a file of a few
bytes can declare a padding of 15000 or an input of 10⁵ × 10⁵ pixels, and one forward pass would
then take gigabytes. Paddings are checked against the kernels (a padding of at least the kernel
size only adds outputs that see nothing but padding; pools follow PyTorch's rule padding ≤ kernel/2)
and every activation of one sample against :data:`MAX_ACTIVATION_ELEMENTS`, from the layers'
``output_shape`` alone, before any array is allocated.
"""
from __future__ import annotations

import math
from typing import Any

import numpy

from ..backend import to_numpy
from ..errors import LRPError, ModelFormatError
from ..graph import Graph
from ..metadata import ModelMetadata

__all__ = ["check_model", "check_metadata", "check_parameters", "check_forward_bounds", "MAX_ACTIVATION_ELEMENTS"]

FLOAT_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))
#: Most elements the input or any activation of *one sample* may have (2**28: 1 GiB in float32). VGG-16 at
#: 224×224 peaks at 3.2·10⁶. Raise it (``lrpcore.io.validate.MAX_ACTIVATION_ELEMENTS = ...``) for a larger
#: trusted model.
MAX_ACTIVATION_ELEMENTS = 2**28
_FLOAT32_MAX = float(numpy.finfo(numpy.float32).max)


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
    _check_preprocessed_range(metadata, low, high, source)
    if metadata.class_names is not None and not all(isinstance(name, str) for name in metadata.class_names):
        raise ModelFormatError(f"{source}: class_names must be strings, found {metadata.class_names!r}")
    if not isinstance(metadata.name, str) or not isinstance(metadata.description, str):
        raise ModelFormatError(f"{source}: name and description must be strings")


def _check_preprocessed_range(metadata: ModelMetadata, low: float, high: float, source: str) -> None:
    """The preprocessed value range (raw − mean) / std stays within float32: a tiny std in the *metadata*
    would otherwise turn every input into inf, and the error would blame the input."""
    if metadata.std is None and metadata.mean is None:
        return
    means = tuple(float(value) for value in (metadata.mean or (0.0,)))
    stds = tuple(float(value) for value in (metadata.std or (1.0,)))
    with numpy.errstate(over="ignore", divide="ignore", invalid="ignore"):
        bounds = [(bound - mean) / std for mean in means for std in stds for bound in (low, high)]
    worst = max(abs(value) if math.isfinite(value) else math.inf for value in bounds)
    if worst > _FLOAT32_MAX:
        raise ModelFormatError(f"{source}: metadata mean {metadata.mean} and std {metadata.std} map the raw value "
                               f"range [{low:g}, {high:g}] to values up to {worst:.3g}, beyond float32 "
                               f"(±{_FLOAT32_MAX:.3g}): the metadata's std is too small")


def _as_tuple(value: Any) -> tuple[int, ...]:
    return tuple(int(item) for item in value) if isinstance(value, (tuple, list)) else (int(value),)


def _padding_problem(layer: Any) -> str | None:
    """Why a layer's padding does not fit its kernel (None when it does, or the layer has neither)."""
    padding, kernel = getattr(layer, "padding", None), getattr(layer, "kernel_size", None)
    if padding is None or kernel is None:
        return None
    try:
        pads, kernels = _as_tuple(padding), _as_tuple(kernel)
    except (TypeError, ValueError):
        return None
    if len(pads) != len(kernels):
        return None
    if layer.parameters():  # a convolution: padding p ≥ k adds outputs that see padding only
        if any(pad >= size for pad, size in zip(pads, kernels)):
            return f"padding {list(pads)} is not smaller than the kernel {list(kernels)}"
    elif any(2 * pad > size for pad, size in zip(pads, kernels)):  # pooling: PyTorch's rule p ≤ k/2
        return f"padding {list(pads)} is more than half the window {list(kernels)}"
    return None


def check_forward_bounds(model: Graph, shape: tuple[int, ...], source: str) -> None:
    """Before the validation pass allocates anything: paddings fit the kernels, and the input and every
    activation of one sample (from the layers' ``output_shape``, node by node) have at most
    :data:`MAX_ACTIVATION_ELEMENTS` elements. Shapes a layer cannot take are left to the forward pass,
    which names them."""
    if math.prod(shape) > MAX_ACTIVATION_ELEMENTS:
        raise ModelFormatError(f"{source}: input_shape {shape} has {math.prod(shape):,} elements per sample, more "
                               f"than lrpcore.io.validate.MAX_ACTIVATION_ELEMENTS = {MAX_ACTIVATION_ELEMENTS:,}")
    shapes: list[tuple[int, ...]] = [shape]
    for index, layer in enumerate(model.layers):
        problem = _padding_problem(layer)
        if problem:
            raise ModelFormatError(f"{source}: {model.where(index)}: {problem}")
        try:
            inputs = [shapes[position] for position in model.input_positions[index]]
            current = tuple(int(size) for size in layer.output_shape(layer.combined_shape(inputs)))
        except (LRPError, ValueError, TypeError, IndexError, AttributeError):
            return  # the forward pass below reports the mismatch with the layer's own message
        if math.prod(current) > MAX_ACTIVATION_ELEMENTS:
            raise ModelFormatError(f"{source}: {model.where(index)} would give outputs of shape "
                                   f"{current} ({math.prod(current):,} elements per sample), more than "
                                   f"lrpcore.io.validate.MAX_ACTIVATION_ELEMENTS = {MAX_ACTIVATION_ELEMENTS:,}")
        shapes.append(current)


def check_model(model: Graph, source: str) -> numpy.dtype | None:
    """Parameters, metadata and layer shapes agree; raises ``ModelFormatError`` naming what does not.

    Returns the model's dtype (None for a model without parameters).
    """
    if not isinstance(model, Graph):
        raise TypeError(f"expected an lrpcore.Graph or Sequential, got {type(model).__name__}")
    model_dtype = check_parameters(model, source)
    metadata = model.metadata
    check_metadata(metadata, source)
    if metadata.input_shape is None:
        return model_dtype
    shape = tuple(int(size) for size in metadata.input_shape)
    check_forward_bounds(model, shape, source)
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

