"""PyTorch bridge: convert ``torch.nn`` networks and state dicts to :class:`lrpcore.Sequential`, and back.

``from_torch(module)`` walks an ``nn.Sequential`` (nested Sequentials are flattened in
order) or a torchvision-style VGG (``features`` → ``avgpool`` → flatten → ``classifier``,
the order of torchvision's ``VGG.forward``) and copies every parameter into the matching
lrpcore layer. Only modules whose inference-time function lrpcore reproduces exactly are
accepted; anything else raises :class:`~lrpcore.errors.ModelFormatError` naming the module's
path (``features.3``) and type, never a silently different network.

``AdaptiveAvgPool2d`` depends on the size of its input, so it needs ``input_shape``: where
its output size equals its input size it is the identity and is left out (torchvision's
VGG avgpool at 224×224: 7×7 → 7×7), where the input size is a multiple of the output size
it is exactly ``AvgPool2d(kernel = stride = input/output)``; other cases (e.g. 1×1 → 7×7,
which replicates values) are refused.

``load_state_dict(source)`` reads a ``torch.save``d state dict as NumPy arrays (rebuilding a
named architecture from one is :func:`lrpcore.models.state_dict_to_model`, in ``lrpcore.models``,
which imports this module and not the other way round). ``to_torch(model)`` builds the ``nn.Sequential`` twin of an lrpcore model; the
reference tests and benchmarks use it to run zennit and autograd on the same weights.

PyTorch is an optional dependency (``pip install lrpcore[torch]``); it is imported only
when one of these functions is called.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Iterator, Mapping

import numpy

from ..backend import to_numpy
from ..errors import ModelFormatError
from ..layers import (AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dense, Dropout, Flatten, Layer, MaxPool2d,
                      ReLU)
from ..model import ModelMetadata, Sequential

__all__ = ["from_torch", "to_torch", "load_state_dict"]

_SUPPORTED = ("Linear, Conv2d (groups=1, dilation=1, zero padding), ReLU, MaxPool2d, AvgPool2d, Flatten, "
              "BatchNorm1d/2d, Dropout, Identity, AdaptiveAvgPool2d (identity or exact average pool), "
              "nested Sequential, torchvision-style VGG")


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("the PyTorch bridge (lrpcore.io.torch) needs PyTorch, which is not installed: "
                          "pip install 'lrpcore[torch]' (CI pins torch==2.13.0)") from error
    return torch


def _array(tensor: Any, dtype: Any) -> Any:
    """A NumPy copy of ``tensor`` (never sharing memory with the torch module) in ``dtype``."""
    host = tensor.detach().cpu().numpy() if hasattr(tensor, "detach") else numpy.asarray(tensor)
    return numpy.array(host, dtype=dtype if dtype is not None else host.dtype, copy=True)


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))


def _unsupported(path: str, module: Any, why: str = "") -> ModelFormatError:
    detail = f": {why}" if why else ""
    return ModelFormatError(f"cannot convert module '{path or '<root>'}' ({type(module).__module__}."
                            f"{type(module).__name__}){detail}. Supported: {_SUPPORTED}")


# --- walking the module tree --------------------------------------------------------------------
_FLATTEN_MARKER = object()


def _leaves(module: Any, path: str, nn: Any) -> Iterator[tuple[str, Any]]:
    """(path, module) of every leaf in forward order; VGG-style models get a flatten marker."""
    if isinstance(module, nn.Sequential):
        for name, child in module.named_children():
            yield from _leaves(child, f"{path}.{name}" if path else name, nn)
        return
    children = dict(module.named_children())
    if children and "features" in children and "classifier" in children:
        unexpected = sorted(set(children) - {"features", "avgpool", "classifier"})
        if unexpected:
            raise _unsupported(path, module, f"a VGG-style model may only have features, avgpool and classifier "
                                             f"children; found also {unexpected}, whose place in forward() "
                                             "is unknown")
        prefix = f"{path}." if path else ""
        yield from _leaves(children["features"], f"{prefix}features", nn)
        if "avgpool" in children:
            yield from _leaves(children["avgpool"], f"{prefix}avgpool", nn)
        yield f"{prefix}flatten", _FLATTEN_MARKER
        yield from _leaves(children["classifier"], f"{prefix}classifier", nn)
        return
    if children:
        raise _unsupported(path, module, "containers other than nn.Sequential (and torchvision-style VGG) "
                                         "have a forward() lrpcore cannot read; rebuild it as nn.Sequential")
    yield path, module


# --- one module → one lrpcore layer -------------------------------------------------------------
def _convert_conv(path: str, module: Any, dtype: Any) -> Layer:
    if module.groups != 1:
        raise _unsupported(path, module, f"groups={module.groups} (only groups=1)")
    if _pair(module.dilation) != (1, 1):
        raise _unsupported(path, module, f"dilation={module.dilation} (only 1)")
    if module.padding_mode != "zeros":
        raise _unsupported(path, module, f"padding_mode={module.padding_mode!r} (only 'zeros')")
    padding = module.padding
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        else:   # "same": stride 1 only (PyTorch's rule); symmetric only for odd kernels
            kernel = _pair(module.kernel_size)
            if any(k % 2 == 0 for k in kernel):
                raise _unsupported(path, module, "padding='same' with an even kernel pads asymmetrically")
            padding = (kernel[0] // 2, kernel[1] // 2)
    bias = _array(module.bias, dtype) if module.bias is not None else None
    return Conv2d(_array(module.weight, dtype), bias, stride=_pair(module.stride), padding=_pair(padding))


def _convert_pool(path: str, module: Any, nn: Any) -> Layer:
    if getattr(module, "ceil_mode", False):
        raise _unsupported(path, module, "ceil_mode=True (only floor mode)")
    stride = module.stride if module.stride is not None else module.kernel_size
    if isinstance(module, nn.MaxPool2d):
        if _pair(module.dilation) != (1, 1):
            raise _unsupported(path, module, f"dilation={module.dilation} (only 1)")
        if module.return_indices:
            raise _unsupported(path, module, "return_indices=True")
        return MaxPool2d(_pair(module.kernel_size), _pair(stride), _pair(module.padding))
    if module.divisor_override is not None:
        raise _unsupported(path, module, "divisor_override is set")
    padding = _pair(module.padding)
    if padding != (0, 0) and not module.count_include_pad:
        raise _unsupported(path, module, "count_include_pad=False with padding (lrpcore counts zero padding)")
    return AvgPool2d(_pair(module.kernel_size), _pair(stride), padding)


def _convert_adaptive(path: str, module: Any, shape: tuple[int, ...] | None) -> Layer | None:
    if shape is None:
        raise _unsupported(path, module, "its window depends on the input size; pass input_shape=(C, H, W)")
    if len(shape) != 3:
        raise _unsupported(path, module, f"it needs a (C, H, W) input, but receives per-sample shape {shape}")
    _, height, width = shape
    wanted = module.output_size
    if isinstance(wanted, int):
        wanted = (wanted, wanted)
    # None in output_size keeps that input dimension
    out_h, out_w = (int(size) if size is not None else full for size, full in zip(wanted, (height, width)))
    if (out_h, out_w) == (height, width):
        return None     # the identity: left out, so layer indices follow the network as computed
    if height % out_h == 0 and width % out_w == 0:
        kernel = (height // out_h, width // out_w)
        return AvgPool2d(kernel, kernel, 0)
    raise _unsupported(path, module, f"it maps {height}×{width} to {out_h}×{out_w}, which is not one average "
                                     "pool with a fixed window (input size must equal or be a multiple of the "
                                     "output size)")


def _convert_batchnorm(path: str, module: Any, dtype: Any, nn: Any) -> Layer:
    if module.running_mean is None or module.running_var is None:
        raise _unsupported(path, module, "track_running_stats=False (inference needs running statistics)")
    weight = _array(module.weight, dtype) if module.weight is not None else None
    bias = _array(module.bias, dtype) if module.bias is not None else None
    kind = BatchNorm2d if isinstance(module, nn.BatchNorm2d) else BatchNorm1d
    return kind(_array(module.running_mean, dtype), _array(module.running_var, dtype), weight, bias, module.eps)


def _convert(path: str, module: Any, dtype: Any, shape: tuple[int, ...] | None, nn: Any) -> Layer | None:
    """The lrpcore layer computing what ``module`` computes at inference, or None for the identity."""
    if module is _FLATTEN_MARKER:
        return Flatten()
    if isinstance(module, nn.Linear):
        bias = _array(module.bias, dtype) if module.bias is not None else None
        return Dense(_array(module.weight, dtype), bias)
    if isinstance(module, nn.Conv2d):
        return _convert_conv(path, module, dtype)
    if isinstance(module, nn.ReLU):
        return ReLU()
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        return _convert_pool(path, module, nn)
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return _convert_adaptive(path, module, shape)
    if isinstance(module, nn.Flatten):
        if module.start_dim != 1 or module.end_dim != -1:
            raise _unsupported(path, module, f"start_dim={module.start_dim}, end_dim={module.end_dim} "
                                             "(only 1 and -1: keep the batch axis, flatten the rest)")
        return Flatten()
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return _convert_batchnorm(path, module, dtype, nn)
    if isinstance(module, (nn.Dropout, nn.Dropout1d, nn.Dropout2d)):
        return Dropout(module.p)
    if isinstance(module, nn.Identity):
        return None
    raise _unsupported(path, module)


def _next_shape(path: str, module: Any, layer: Layer, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The per-sample output shape of ``layer``, after checking that it accepts ``shape``."""
    expected = None
    if isinstance(layer, Dense) and shape != (layer.in_features,):
        expected = f"({layer.in_features},)"
    elif isinstance(layer, Conv2d) and (len(shape) != 3 or shape[0] != layer.in_channels):
        expected = f"({layer.in_channels}, H, W)"
    elif isinstance(layer, (BatchNorm1d, BatchNorm2d)) and shape[0] != layer.num_features:
        expected = f"{layer.num_features} channels"
    elif isinstance(layer, (MaxPool2d, AvgPool2d)) and len(shape) != 3:
        expected = "(C, H, W)"
    out = None if expected else tuple(int(size) for size in layer.output_shape(shape))
    if expected or min(out) < 1:
        raise ModelFormatError(f"module '{path}' ({type(module).__name__}) cannot take per-sample input of shape "
                               f"{shape}" + (f"; it expects {expected}" if expected else
                                             f": the output would be {out}"))
    return out


def _dtype(dtype: Any) -> Any:
    if dtype is None:
        return None
    resolved = numpy.dtype(dtype)
    if resolved not in (numpy.float32, numpy.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return resolved


def from_torch(module: Any, input_shape: tuple[int, ...] | None = None, metadata: ModelMetadata | None = None,
               dtype: str | None = None) -> Sequential:
    """Convert a PyTorch network to an :class:`lrpcore.Sequential` computing the same function at inference.

    ``module``: an ``nn.Sequential`` of Linear, Conv2d, ReLU, MaxPool2d, AvgPool2d, Flatten,
    BatchNorm1d/2d, Dropout, Identity and AdaptiveAvgPool2d modules (nested Sequentials are
    flattened in order; Identity and identity-sized adaptive pools are left out), or a
    torchvision-style VGG with ``features``, ``avgpool`` and ``classifier`` (a Flatten is
    inserted after ``avgpool``, as ``VGG.forward`` does). Parameters are copied (float32 stays
    float32 unless ``dtype`` says otherwise). Dropout and BatchNorm are converted in their
    inference form whatever ``module.training`` says (a warning is given if it is True).

    ``input_shape``: one sample's shape, (C, H, W) or (F,); needed for AdaptiveAvgPool2d and
    stored in the metadata. ``metadata`` defaults to ``ModelMetadata(input_shape, name=<class name>)``.
    Raises :class:`~lrpcore.errors.ModelFormatError` naming the module path and type of the
    first module that cannot be converted exactly.
    """
    torch = _import_torch()
    nn = torch.nn
    if not isinstance(module, nn.Module):
        raise TypeError(f"from_torch expects a torch.nn.Module, got {type(module).__name__}")
    target = _dtype(dtype)
    if module.training and any(isinstance(sub, (nn.Dropout, nn.BatchNorm1d, nn.BatchNorm2d))
                               for sub in module.modules()):
        warnings.warn("the torch module is in training mode; Dropout and BatchNorm are converted in their "
                      "inference form (call module.eval() to compare outputs)", stacklevel=2)
    shape = tuple(int(size) for size in input_shape) if input_shape is not None else None
    layers: list[Layer] = []
    for path, leaf in _leaves(module, "", nn):
        layer = _convert(path, leaf, target, shape, nn)
        if layer is None:
            continue
        if shape is not None:
            shape = _next_shape(path, leaf, layer, shape)
        layers.append(layer)
    if not layers:
        raise ModelFormatError(f"{type(module).__name__} contains no layers to convert")
    if metadata is None:
        metadata = ModelMetadata(input_shape=tuple(input_shape) if input_shape is not None else None,
                                 name=type(module).__name__)
    elif metadata.input_shape is None and input_shape is not None:
        import dataclasses

        metadata = dataclasses.replace(metadata, input_shape=tuple(input_shape))
    return Sequential(layers, metadata)


# --- lrpcore → torch ----------------------------------------------------------------------------
def _tensor(array: Any, torch: Any, copy: bool) -> Any:
    host = to_numpy(array)
    if copy or not host.flags.writeable:
        host = numpy.array(host, copy=True)
    return torch.from_numpy(host)


def to_torch(model: Sequential, copy: bool = True) -> Any:
    """The ``nn.Sequential`` twin of ``model`` (same layers, same weights, same dtype), in eval mode.

    With ``copy=False`` the torch parameters share memory with the model's NumPy arrays
    (a benchmark can then hold one copy of VGG-16's weights). Raises
    :class:`~lrpcore.errors.ModelFormatError` for layers without a torch counterpart here.
    """
    torch = _import_torch()
    nn = torch.nn
    modules = []
    for index, layer in enumerate(model.layers):
        if isinstance(layer, Dense):
            module = nn.Linear(layer.in_features, layer.out_features)
        elif isinstance(layer, Conv2d):
            module = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                               layer.padding)
        elif isinstance(layer, MaxPool2d):
            module = nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding)
        elif isinstance(layer, AvgPool2d):
            module = nn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding, count_include_pad=True)
        elif isinstance(layer, ReLU):
            module = nn.ReLU()
        elif isinstance(layer, Flatten):
            module = nn.Flatten()
        elif isinstance(layer, Dropout):
            module = nn.Dropout(layer.p)
        elif isinstance(layer, (BatchNorm1d, BatchNorm2d)):
            kind = nn.BatchNorm2d if isinstance(layer, BatchNorm2d) else nn.BatchNorm1d
            module = kind(layer.num_features, eps=layer.eps)
        else:
            raise ModelFormatError(f"layer {index} ({layer.describe()}) has no torch counterpart in to_torch")
        parameters = layer.parameters()
        if parameters:
            state = {name: _tensor(value, torch, copy) for name, value in parameters.items()}
            if isinstance(layer, (BatchNorm1d, BatchNorm2d)):
                state["num_batches_tracked"] = torch.tensor(0)
            module = module.to(state["weight"].dtype)
            for name, value in state.items():
                current = getattr(module, name)
                if isinstance(current, nn.Parameter):
                    setattr(module, name, nn.Parameter(value, requires_grad=True))
                else:
                    setattr(module, name, value)
        modules.append(module)
    return nn.Sequential(*modules).eval()


# --- state dicts --------------------------------------------------------------------------------
def load_state_dict(source: Any) -> dict[str, Any]:
    """A ``{name: numpy array}`` dict from a state dict, a checkpoint dict with a ``state_dict`` entry,
    or a path to a ``torch.save``d file (loaded with ``weights_only=True``: no code is executed).

    A leading ``module.`` (left by ``nn.DataParallel``) is removed from every key.
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise ModelFormatError(f"state dict file '{path}' does not exist")
        torch = _import_torch()
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises many types (pickle, zip, runtime) for bad files
            raise ModelFormatError(f"cannot read '{path}' as a torch.save'd state dict: "
                                   f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
                                   ) from None
        where = f"'{path}'"
    else:
        loaded, where = source, "the state dict"
    if isinstance(loaded, Mapping) and "state_dict" in loaded and isinstance(loaded["state_dict"], Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping):
        raise ModelFormatError(f"{where} holds a {type(loaded).__name__}, not a state dict (name → tensor); "
                               "save model.state_dict(), not the model")
    arrays = {}
    for key, value in loaded.items():
        name = key[len("module."):] if isinstance(key, str) and key.startswith("module.") else key
        if not hasattr(value, "shape"):
            raise ModelFormatError(f"{where}: entry {key!r} is a {type(value).__name__}, not a tensor")
        arrays[name] = _array(value, None)
    return arrays

