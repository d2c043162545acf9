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

``state_dict_to_model(state_dict, arch)`` rebuilds a known architecture (see
:data:`lrpcore.models.vgg.ARCHITECTURES`) from a ``torch.save``d state dict, without
torchvision. ``to_torch(model)`` builds the ``nn.Sequential`` twin of an lrpcore model; the
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
from ..errors import LRPError, ModelFormatError
from ..layers import (ELU, GELU, AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d, AdaptiveMaxPool2d,
                      AvgPool1d, AvgPool2d, BatchNorm1d, BatchNorm2d, BatchNormLinear, Conv1d, Conv2d, Dense, Dropout,
                      Flatten, Identity, Layer, LeakyReLU, LocalResponseNorm, MaxPool1d, MaxPool2d, ReLU, ReLU6,
                      Reshape, Sigmoid, SiLU, SumPool2d, Tanh, ZeroPad1d, ZeroPad2d)
from ..model import ModelMetadata, Sequential

__all__ = ["from_torch", "to_torch", "state_dict_to_model", "load_state_dict"]

_SUPPORTED = ("Linear, Conv1d/Conv2d (any groups, dilation=1, zero padding), ReLU, ReLU6, Tanh, Sigmoid, LeakyReLU, "
              "ELU, GELU, SiLU, MaxPool1d/2d, AvgPool1d/2d (ceil_mode, count_include_pad), "
              "AdaptiveAvgPool1d/2d, AdaptiveMaxPool1d/2d, Flatten, Unflatten, ZeroPad1d/2d, BatchNorm1d/2d, "
              "LocalResponseNorm, Dropout, Identity, a final Softmax (dropped), nested Sequential, "
              "torchvision-style VGG")


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
def _conv_padding(path: str, module: Any, kernel: tuple[int, ...]) -> tuple[int, ...]:
    """The symmetric padding of a torch convolution ('valid', 'same' with odd kernels, or numbers)."""
    padding = module.padding
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * len(kernel)
        # "same": stride 1 only (PyTorch's rule); symmetric only for odd kernels
        if any(k % 2 == 0 for k in kernel):
            raise _unsupported(path, module, "padding='same' with an even kernel pads asymmetrically")
        return tuple(k // 2 for k in kernel)
    return tuple(int(p) for p in padding)


def _convert_conv(path: str, module: Any, dtype: Any, nn: Any) -> Layer:
    one_d = isinstance(module, nn.Conv1d)
    kernel = tuple(int(k) for k in module.kernel_size)
    if any(int(d) != 1 for d in module.dilation):
        raise _unsupported(path, module, f"dilation={module.dilation} (only 1)")
    if module.padding_mode != "zeros":
        raise _unsupported(path, module, f"padding_mode={module.padding_mode!r} (only 'zeros')")
    padding = _conv_padding(path, module, kernel)
    bias = _array(module.bias, dtype) if module.bias is not None else None
    weight = _array(module.weight, dtype)
    if one_d:
        return Conv1d(weight, bias, stride=int(module.stride[0]), padding=padding[0], groups=int(module.groups))
    return Conv2d(weight, bias, stride=_pair(module.stride), padding=padding, groups=int(module.groups))


def _convert_pool(path: str, module: Any, nn: Any) -> Layer:
    one_d = isinstance(module, (nn.MaxPool1d, nn.AvgPool1d))
    single = (lambda value: int(value[0]) if isinstance(value, (tuple, list)) else int(value))
    shape = single if one_d else _pair
    kernel = shape(module.kernel_size)
    stride = shape(module.stride if module.stride is not None else module.kernel_size)
    padding = shape(module.padding)
    ceil_mode = bool(module.ceil_mode)
    if isinstance(module, (nn.MaxPool1d, nn.MaxPool2d)):
        if shape(module.dilation) != shape(1):
            raise _unsupported(path, module, f"dilation={module.dilation} (only 1)")
        if module.return_indices:
            raise _unsupported(path, module, "return_indices=True")
        return (MaxPool1d if one_d else MaxPool2d)(kernel, stride, padding, ceil_mode=ceil_mode)
    if getattr(module, "divisor_override", None) is not None:
        raise _unsupported(path, module, "divisor_override is set")
    kind = AvgPool1d if one_d else AvgPool2d
    return kind(kernel, stride, padding, ceil_mode=ceil_mode, count_include_pad=bool(module.count_include_pad))


def _adaptive_size(path: str, module: Any, shape: tuple[int, ...] | None, rank: int) -> tuple[int, ...]:
    """The output size of an adaptive pool, with None ('keep this axis') resolved from ``shape``."""
    wanted = module.output_size
    wanted = (wanted,) * rank if isinstance(wanted, int) or wanted is None else tuple(wanted)
    if any(size is None for size in wanted):
        if shape is None:
            raise _unsupported(path, module, f"output_size {module.output_size} keeps an input axis (None); "
                                             "pass input_shape so that its size is known")
        wanted = tuple(full if size is None else size for size, full in zip(wanted, shape[-rank:]))
    return tuple(int(size) for size in wanted)


def _convert_adaptive(path: str, module: Any, shape: tuple[int, ...] | None, nn: Any) -> Layer | None:
    """Adaptive pools. With a known input shape, one whose output equals its input is the identity (left
    out, so layer indices follow the network as computed) and an average pool whose input is a multiple
    of its output becomes the equal ``AvgPool2d``; every other one becomes the adaptive layer, which
    computes PyTorch's uneven windows for any input size."""
    one_d = isinstance(module, (nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d))
    rank = 1 if one_d else 2
    if getattr(module, "return_indices", False):
        raise _unsupported(path, module, "return_indices=True")
    if shape is not None and len(shape) != rank + 1:
        raise _unsupported(path, module, f"it needs a ({'C, L' if one_d else 'C, H, W'}) input, but receives "
                                         f"per-sample shape {shape}")
    size = _adaptive_size(path, module, shape, rank)
    is_max = isinstance(module, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d))
    if shape is not None:
        spatial = tuple(shape[1:])
        if size == spatial:
            return None
        if not one_d and not is_max and all(n % o == 0 for n, o in zip(spatial, size)):
            kernel = tuple(n // o for n, o in zip(spatial, size))
            return AvgPool2d(kernel, kernel, 0)
    if one_d:
        return (AdaptiveMaxPool1d if is_max else AdaptiveAvgPool1d)(size[0])
    return (AdaptiveMaxPool2d if is_max else AdaptiveAvgPool2d)(size)


def _convert_batchnorm(path: str, module: Any, dtype: Any, nn: Any) -> Layer:
    if module.running_mean is None or module.running_var is None:
        raise _unsupported(path, module, "track_running_stats=False (inference needs running statistics)")
    weight = _array(module.weight, dtype) if module.weight is not None else None
    bias = _array(module.bias, dtype) if module.bias is not None else None
    kind = BatchNorm2d if isinstance(module, nn.BatchNorm2d) else BatchNorm1d
    return kind(_array(module.running_mean, dtype), _array(module.running_var, dtype), weight, bias, module.eps)


def _convert_activation(path: str, module: Any, nn: Any) -> Layer | None:
    """Element-wise activations; None when ``module`` is not one."""
    if isinstance(module, nn.ReLU):
        return ReLU()
    if isinstance(module, nn.ReLU6):
        return ReLU6()
    if isinstance(module, nn.Hardtanh):
        if (float(module.min_val), float(module.max_val)) != (0.0, 6.0):
            raise _unsupported(path, module, f"Hardtanh({module.min_val}, {module.max_val}) (only (0, 6), ReLU6)")
        return ReLU6()
    if isinstance(module, nn.Tanh):
        return Tanh()
    if isinstance(module, nn.Sigmoid):
        return Sigmoid()
    if isinstance(module, nn.LeakyReLU):
        return LeakyReLU(float(module.negative_slope))
    if isinstance(module, nn.ELU):
        return ELU(float(module.alpha))
    if isinstance(module, nn.GELU):
        return GELU(module.approximate)
    if isinstance(module, nn.SiLU):
        return SiLU()
    return None


def _convert_shape(path: str, module: Any, shape: tuple[int, ...] | None, nn: Any) -> Layer | None:
    """Flatten, Unflatten and zero padding; None when ``module`` is none of them."""
    if isinstance(module, nn.Flatten):
        if module.start_dim != 1 or module.end_dim != -1:
            raise _unsupported(path, module, f"start_dim={module.start_dim}, end_dim={module.end_dim} "
                                             "(only 1 and -1: keep the batch axis, flatten the rest)")
        return Flatten()
    if isinstance(module, nn.Unflatten):
        dim, sizes = int(module.dim), tuple(int(size) for size in module.unflattened_size)
        if shape is not None:
            axis = dim - 1 if dim > 0 else len(shape) + dim
            if not 0 <= axis < len(shape):
                raise _unsupported(path, module, f"dim={dim} is not an axis of the per-sample shape {shape}")
            return Reshape(tuple(shape[:axis]) + sizes + tuple(shape[axis + 1:]))
        if dim != 1:
            raise _unsupported(path, module, f"dim={dim}: without input_shape only dim=1 (unflatten the "
                                             "features of a flat input) converts; pass input_shape")
        return Reshape(sizes)       # its forward refuses an input that is not (N, prod(sizes))
    if isinstance(module, (nn.ZeroPad2d, nn.ZeroPad1d, nn.ConstantPad2d, nn.ConstantPad1d)):
        if float(module.value) != 0.0:
            raise _unsupported(path, module, f"value={module.value} (only zero padding)")
        one_d = isinstance(module, (nn.ZeroPad1d, nn.ConstantPad1d))
        padding = tuple(int(p) for p in module.padding)
        if any(p < 0 for p in padding):
            raise _unsupported(path, module, f"negative padding {padding} (cropping)")
        return ZeroPad1d(padding) if one_d else ZeroPad2d(padding)
    return None


class _Softmax(Layer):
    """A softmax met while converting: dropped when it is the last module (LRP explains logits), refused elsewhere."""

    def __init__(self, path: str, module: Any):
        self.path, self.module = path, module

    def forward(self, x: Any) -> Any:     # pragma: no cover - never part of a returned model
        raise ModelFormatError("a softmax is only dropped as the last module")


def _convert(path: str, module: Any, dtype: Any, shape: tuple[int, ...] | None, nn: Any) -> Layer | None:
    """The lrpcore layer computing what ``module`` computes at inference, or None for the identity."""
    if module is _FLATTEN_MARKER:
        return Flatten()
    if isinstance(module, nn.Linear):
        bias = _array(module.bias, dtype) if module.bias is not None else None
        return Dense(_array(module.weight, dtype), bias)
    if isinstance(module, (nn.Conv2d, nn.Conv1d)):
        return _convert_conv(path, module, dtype, nn)
    activation = _convert_activation(path, module, nn)
    if activation is not None:
        return activation
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d, nn.MaxPool1d, nn.AvgPool1d)):
        return _convert_pool(path, module, nn)
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d)):
        return _convert_adaptive(path, module, shape, nn)
    reshaped = _convert_shape(path, module, shape, nn)
    if reshaped is not None:
        return reshaped
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return _convert_batchnorm(path, module, dtype, nn)
    if isinstance(module, nn.LocalResponseNorm):
        return LocalResponseNorm(int(module.size), float(module.alpha), float(module.beta), float(module.k))
    if isinstance(module, (nn.Dropout, nn.Dropout1d, nn.Dropout2d)):
        return Dropout(module.p)
    if isinstance(module, nn.Identity):
        return None
    if isinstance(module, (nn.Softmax, nn.LogSoftmax)):
        if module.dim not in (1, -1, None):
            raise _unsupported(path, module, f"dim={module.dim} (a final softmax over the classes, dim=1, is "
                                             "dropped; no other softmax converts)")
        return _Softmax(path, module)
    raise _unsupported(path, module)


def _drop_final_softmax(layers: list[Layer]) -> str:
    """Remove a softmax that is the last layer (LRP explains the logits); refuse one anywhere else.
    Returns the note to keep in the metadata ('' when there was none)."""
    for index, layer in enumerate(layers):
        if isinstance(layer, _Softmax) and index != len(layers) - 1:
            raise _unsupported(layer.path, layer.module, "a softmax that is not the last module changes what "
                                                         "the following layers see; only a final one is dropped")
    if layers and isinstance(layers[-1], _Softmax):
        last = layers.pop()
        return (f"dropped the final {type(last.module).__name__} of module '{last.path}': lrpcore explains the "
                "logits")
    return ""


_CHANNELS_FIRST = (Conv2d, Conv1d, LocalResponseNorm)


def _next_shape(path: str, module: Any, layer: Layer, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The per-sample output shape of ``layer``, after checking that it accepts ``shape``."""
    expected = None
    if isinstance(layer, Dense) and shape != (layer.in_features,):
        expected = f"({layer.in_features},)"
    elif isinstance(layer, Conv2d) and (len(shape) != 3 or shape[0] != layer.in_channels):
        expected = f"({layer.in_channels}, H, W)"
    elif isinstance(layer, Conv1d) and (len(shape) != 2 or shape[0] != layer.in_channels):
        expected = f"({layer.in_channels}, L)"
    elif isinstance(layer, (BatchNorm1d, BatchNorm2d)) and shape[0] != layer.num_features:
        expected = f"{layer.num_features} channels"
    elif (isinstance(layer, (MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d, ZeroPad2d))
          and len(shape) != 3):
        expected = "(C, H, W)"
    elif (isinstance(layer, (MaxPool1d, AvgPool1d, AdaptiveAvgPool1d, AdaptiveMaxPool1d, ZeroPad1d))
          and len(shape) != 2):
        expected = "(C, L)"
    elif isinstance(layer, LocalResponseNorm) and len(shape) < 2:
        expected = "(C, ...) with a channel axis"
    out = None
    if not expected:
        try:
            out = tuple(int(size) for size in layer.output_shape(shape))
        except (LRPError, ValueError) as error:
            expected = str(error)
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
    note = _drop_final_softmax(layers)
    if not layers:
        raise ModelFormatError(f"{type(module).__name__} contains no layers to convert")
    if metadata is None:
        metadata = ModelMetadata(input_shape=tuple(input_shape) if input_shape is not None else None,
                                 name=type(module).__name__)
    elif metadata.input_shape is None and input_shape is not None:
        import dataclasses

        metadata = dataclasses.replace(metadata, input_shape=tuple(input_shape))
    if note:
        import dataclasses

        warnings.warn(note, stacklevel=2)
        metadata = dataclasses.replace(metadata, description="; ".join(filter(None, [metadata.description, note])))
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
    shapes: list[tuple[int, ...] | None] = [None] * len(model)
    if model.metadata.input_shape is not None:
        shapes = [tuple(model.metadata.input_shape)] + [tuple(shape) for shape in model.output_shapes()][:-1]
    modules = []
    for index, layer in enumerate(model.layers):
        module = _torch_module(layer, nn, shapes[index])
        if module is None:
            raise ModelFormatError(f"layer {index} ({layer.describe()}) has no torch counterpart in to_torch")
        parameters = layer.parameters()
        if parameters:
            state = {name: _tensor(value, torch, copy) for name, value in parameters.items()}
            if isinstance(layer, (BatchNorm1d, BatchNorm2d, BatchNormLinear)):
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


def _torch_module(layer: Layer, nn: Any, input_shape: tuple[int, ...] | None) -> Any:
    """The torch module computing ``layer`` (parameters still to be copied), or None if there is none."""
    if isinstance(layer, Dense):
        return nn.Linear(layer.in_features, layer.out_features)
    if isinstance(layer, Conv2d):
        return nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
                         groups=layer.groups)
    if isinstance(layer, Conv1d):
        return nn.Conv1d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
                         groups=layer.groups)
    if isinstance(layer, (MaxPool2d, MaxPool1d)):
        kind = nn.MaxPool2d if isinstance(layer, MaxPool2d) else nn.MaxPool1d
        return kind(layer.kernel_size, layer.stride, layer.padding, ceil_mode=layer.ceil_mode)
    if isinstance(layer, (AvgPool2d, AvgPool1d)):
        kind = nn.AvgPool2d if isinstance(layer, AvgPool2d) else nn.AvgPool1d
        return kind(layer.kernel_size, layer.stride, layer.padding, ceil_mode=layer.ceil_mode,
                    count_include_pad=layer.count_include_pad)
    if isinstance(layer, SumPool2d) and layer.scale == 1.0:
        return nn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding, ceil_mode=layer.ceil_mode,
                            divisor_override=1)
    adaptive = {AdaptiveAvgPool2d: nn.AdaptiveAvgPool2d, AdaptiveMaxPool2d: nn.AdaptiveMaxPool2d,
                AdaptiveAvgPool1d: nn.AdaptiveAvgPool1d, AdaptiveMaxPool1d: nn.AdaptiveMaxPool1d}
    if type(layer) in adaptive:
        size = layer.output_size
        return adaptive[type(layer)](tuple(size) if isinstance(size, list) else size)
    simple = {ReLU: nn.ReLU, ReLU6: nn.ReLU6, Tanh: nn.Tanh, Sigmoid: nn.Sigmoid, SiLU: nn.SiLU, Flatten: nn.Flatten,
              Identity: nn.Identity}
    if type(layer) in simple:
        return simple[type(layer)]()
    if isinstance(layer, LeakyReLU):
        return nn.LeakyReLU(layer.negative_slope)
    if isinstance(layer, ELU):
        return nn.ELU(layer.alpha)
    if isinstance(layer, GELU):
        return nn.GELU(approximate=layer.approximate)
    if isinstance(layer, Dropout):
        return nn.Dropout(layer.p)
    if isinstance(layer, LocalResponseNorm):
        return nn.LocalResponseNorm(layer.size, layer.alpha, layer.beta, layer.k)
    if isinstance(layer, Reshape):
        return nn.Unflatten(1, tuple(layer.output_shape(input_shape)) if input_shape else tuple(layer.shape))
    if isinstance(layer, ZeroPad2d):
        return nn.ZeroPad2d(tuple(layer.padding))
    if isinstance(layer, ZeroPad1d):
        return nn.ZeroPad1d(tuple(layer.padding))
    if isinstance(layer, (BatchNorm1d, BatchNorm2d)):
        kind = nn.BatchNorm2d if isinstance(layer, BatchNorm2d) else nn.BatchNorm1d
        return kind(layer.num_features, eps=layer.eps)
    if isinstance(layer, BatchNormLinear) and input_shape is not None:
        kind = nn.BatchNorm2d if len(input_shape) == 3 else nn.BatchNorm1d
        return kind(layer.num_features, eps=layer.eps)
    return None


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


def state_dict_to_model(state_dict: Any, arch: str = "vgg16", input_size: int | None = None,
                        dtype: str | None = "float32") -> Sequential:
    """Build architecture ``arch`` (e.g. ``"vgg16"``, ``"vgg16_bn"``) from a torch state dict.

    ``state_dict``: a mapping name → tensor/array, or the path of a ``torch.save``d state dict.
    Keys follow torchvision (``features.0.weight`` ... ``classifier.6.bias``); the number of
    classes is read from the last layer, the input size from the first classifier layer
    (512·s·s inputs ↔ input_size 32·s; torchvision's 25 088 ↔ 224) unless ``input_size`` is
    given. Missing, unexpected or mis-shaped entries raise :class:`ModelFormatError` naming them.
    """
    from ..models.vgg import ARCHITECTURES, vgg_from_state_dict

    if arch not in ARCHITECTURES:
        raise ModelFormatError(f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}")
    arrays = load_state_dict(state_dict)
    return vgg_from_state_dict(arrays, arch, input_size=input_size, dtype=dtype)
