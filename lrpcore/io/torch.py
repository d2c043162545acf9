"""PyTorch bridge: convert ``torch.nn`` networks and state dicts to lrpcore models, and back.

``from_torch(module)`` traces the network's ``forward`` with ``torch.fx`` (symbolic tracing, part of
PyTorch: no tracer is written here) and turns every traced operation into an lrpcore node: module
calls through one converter per module type, residual sums into ``Add``, ``torch.cat`` into
``Concat``, flattening into ``Flatten``. Every parameter is copied into the matching lrpcore layer.
Only operations whose inference-time function lrpcore reproduces exactly are accepted; anything else
raises :class:`~lrpcore.errors.ModelFormatError` naming the operation and its place (the module path
``features.3``, or the traced node and what it reads), never a silently different network.

``AdaptiveAvgPool2d`` depends on the size of its input, so it needs ``input_shape``: where
its output size equals its input size it is the identity and is left out (torchvision's
VGG avgpool at 224×224: 7×7 → 7×7), where the input size is a multiple of the output size
it is exactly ``AvgPool2d(kernel = stride = input/output)``; other cases (e.g. 1×1 → 7×7,
which replicates values) are refused.

``load_state_dict(source)`` reads a ``torch.save``d state dict as NumPy arrays (rebuilding a
named architecture from one is :func:`lrpcore.models.state_dict_to_model`, in ``lrpcore.models``,
which imports this module and not the other way round). ``to_torch(model)`` builds the torch twin
of an lrpcore model (an ``nn.Sequential`` for a chain, a small module running the nodes in order for
a graph); the reference tests and benchmarks use it to run zennit and autograd on the same weights.

PyTorch is an optional dependency (``pip install lrpcore[torch]``); it is imported only
when one of these functions is called.
"""
from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any, Mapping

import numpy

from ..backend import to_numpy
from ..errors import LRPError, ModelFormatError
from ..graph import Graph, Node
from ..layers import (ELU, GELU, AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d, AdaptiveMaxPool2d, Add,
                      AvgPool1d, AvgPool2d, BatchNorm1d, BatchNorm2d, BatchNormLinear, Concat, Conv1d, Conv2d, Dense,
                      Dropout, Flatten, Identity, Layer, LeakyReLU, LocalResponseNorm, MaxPool1d, MaxPool2d, ReLU,
                      ReLU6, Reshape, Sigmoid, SiLU, SumPool2d, Tanh, ZeroPad1d, ZeroPad2d)
from ..metadata import ModelMetadata
from ..model import Sequential

__all__ = ["from_torch", "to_torch", "load_state_dict"]

_SUPPORTED = ("x + y / torch.add (Add), torch.cat (Concat), torch.flatten(x, 1) and x.view(x.size(0), -1) (Flatten), "
              "F.relu / torch.relu, and the modules Linear, Conv1d/Conv2d (any groups, dilation=1, zero padding), "
              "ReLU, ReLU6, Tanh, Sigmoid, LeakyReLU, ELU, GELU, SiLU, MaxPool1d/2d, AvgPool1d/2d (ceil_mode, "
              "count_include_pad), AdaptiveAvgPool1d/2d, AdaptiveMaxPool1d/2d, Flatten, Unflatten, ZeroPad1d/2d, "
              "BatchNorm1d/2d, LocalResponseNorm, Dropout, Identity, a final Softmax (dropped), nested in any module "
              "whose forward torch.fx can trace (nn.Sequential, VGG, ResNet blocks)")


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
               dtype: str | None = None) -> Graph:
    """Convert a PyTorch network to an lrpcore model computing the same function at inference.

    The network's ``forward`` is traced with ``torch.fx`` (symbolic tracing, part of PyTorch), so
    ``nn.Sequential`` stacks, torchvision-style VGGs and ResNets and any module whose forward is a
    fixed graph of supported operations convert: module calls (Linear, Conv2d, ReLU, pooling,
    BatchNorm, Dropout, Flatten, Identity, AdaptiveAvgPool2d, ...), ``x + y`` / ``torch.add`` (an
    ``Add`` node), ``torch.cat`` (``Concat``), ``torch.flatten(x, 1)`` / ``x.view(x.size(0), -1)``
    (``Flatten``) and ``F.relu`` / ``torch.relu``. A network that forms one chain becomes a
    :class:`~lrpcore.Sequential` (layer indices as in the chain; identities left out), any other a
    :class:`~lrpcore.Graph` whose nodes are named after the module paths (``layer1.0.conv1``; a module
    called twice gets ``_1``, ``_2``...) and the traced functions (``add``, ``cat``...). Parameters are
    copied (float32 stays float32 unless ``dtype`` says otherwise). Dropout and BatchNorm are converted
    in their inference form whatever ``module.training`` says (a warning is given if it is True).

    ``input_shape``: one sample's shape, (C, H, W) or (F,); needed for AdaptiveAvgPool2d and stored in
    the metadata. ``metadata`` defaults to ``ModelMetadata(input_shape, name=<class name>)``. Raises
    :class:`~lrpcore.errors.ModelFormatError` naming the operation and its place in the graph (the
    module path, or the traced node and what it reads) for the first thing that cannot be converted
    exactly, and when ``forward`` cannot be traced.
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
    converter = _FxConverter(module, target, shape, torch)
    nodes = converter.convert()
    note = converter.drop_final_softmax()
    if metadata is None:
        metadata = ModelMetadata(input_shape=tuple(input_shape) if input_shape is not None else None,
                                 name=type(module).__name__)
    elif metadata.input_shape is None and input_shape is not None:
        metadata = dataclasses.replace(metadata, input_shape=tuple(input_shape))
    if note:
        warnings.warn(note, stacklevel=2)
        metadata = dataclasses.replace(metadata, description="; ".join(filter(None, [metadata.description, note])))
    graph = Graph(nodes, metadata)
    return Sequential(graph.layers, metadata) if graph.is_chain else graph


class _FxConverter:
    """Walks the nodes of a ``torch.fx`` trace, turning each into an lrpcore node (or an alias of its input)."""

    def __init__(self, module: Any, dtype: Any, input_shape: tuple[int, ...] | None, torch: Any):
        self.module = module
        self.dtype = dtype
        self.torch = torch
        self.nn = torch.nn
        self.input_shape = input_shape
        self.nodes: list[Node] = []
        self.source: dict[str, str] = {}          # fx node name → lrpcore activation name
        self.shapes: dict[str, tuple[int, ...] | None] = {}
        self.sizes: dict[str, str] = {}           # fx nodes holding x.size() ("all") or x.size(0) ("batch")
        self.used: dict[str, int] = {}

    def trace(self) -> Any:
        import torch.fx

        try:
            return torch.fx.symbolic_trace(self.module)
        except Exception as error:      # fx raises TraceError, TypeError, NotImplementedError, ...
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise ModelFormatError(f"cannot trace {type(self.module).__name__}.forward with torch.fx "
                                   f"({type(error).__name__}: {first}); lrpcore converts networks whose forward "
                                   "is a fixed graph of supported operations, without data-dependent "
                                   f"control flow. Supported: {_SUPPORTED}") from None

    def fail(self, node: Any, why: str) -> ModelFormatError:
        reads = [argument.name for argument in node.all_input_nodes]
        return ModelFormatError(f"cannot convert {_describe_fx(node)} at traced node {node.name!r} (reading "
                                f"{reads}): {why}. Supported: {_SUPPORTED}")

    def unique(self, name: str) -> str:
        count = self.used.get(name, 0)
        self.used[name] = count + 1
        return name if count == 0 else f"{name}_{count}"

    def tensor_input(self, node: Any, argument: Any) -> str:
        """The lrpcore activation an fx argument refers to; an error for constants and non-tensors."""
        import torch.fx

        if not isinstance(argument, torch.fx.Node):
            raise self.fail(node, f"an argument is the constant {argument!r}, not a tensor of the network")
        if argument.name not in self.source:
            raise self.fail(node, f"it reads {argument.name!r}, which is not a tensor lrpcore computes")
        return self.source[argument.name]

    def add(self, node: Any, name: str, layer: Layer | None, inputs: list[str], module: Any = None) -> None:
        """Record ``layer`` reading ``inputs`` as the value of fx ``node`` (``layer=None``: an alias)."""
        if layer is None:
            self.source[node.name] = inputs[0]
            self.shapes[inputs[0]] = self.shapes.get(inputs[0])
            return
        shapes = [self.shapes.get(item) for item in inputs]
        shape = None
        if all(item is not None for item in shapes):
            if module is not None and len(shapes) == 1:
                shape = _next_shape(name, module, layer, shapes[0])
            else:
                try:
                    shape = tuple(layer.output_shape(layer.combined_shape(shapes)))
                except LRPError as error:
                    raise self.fail(node, str(error)) from None
        lrp_name = self.unique(name)
        self.nodes.append(Node(lrp_name, layer, tuple(inputs)))
        self.source[node.name] = lrp_name
        self.shapes[lrp_name] = shape

    def convert(self) -> list[Node]:
        traced = self.trace()
        output = None
        for node in traced.graph.nodes:
            if node.op == "placeholder":
                if "input" in self.source.values():
                    raise self.fail(node, "the network takes more than one input; lrpcore models take one")
                self.source[node.name] = "input"
                self.shapes["input"] = self.input_shape
            elif node.op == "call_module":
                self.call_module(traced, node)
            elif node.op == "call_function":
                self.call_function(node)
            elif node.op == "call_method":
                self.call_method(node)
            elif node.op == "output":
                output = node.args[0]
            else:       # get_attr: a parameter or buffer used directly in forward
                raise self.fail(node, f"forward reads the attribute {node.target!r} directly")
        import torch.fx

        if not isinstance(output, torch.fx.Node) or output.name not in self.source:
            raise ModelFormatError(f"{type(self.module).__name__}.forward must return one tensor, got {output!r}")
        if self.source[output.name] == "input" or not self.nodes:
            raise ModelFormatError(f"{type(self.module).__name__} contains no layers to convert")
        final = self.source[output.name]
        if self.nodes[-1].name != final:
            raise ModelFormatError(f"{type(self.module).__name__}.forward returns {final!r}, which is not the last "
                                   "operation it computes; lrpcore graphs end in their output")
        return self.nodes

    def drop_final_softmax(self) -> str:
        """Remove a softmax that computes the output (LRP explains the logits); refuse one anywhere else.
        Returns the note to keep in the metadata ('' when there was none)."""
        layers = [node.layer for node in self.nodes]
        note = _drop_final_softmax(layers)
        if note:
            softmax = self.nodes.pop()
            if not self.nodes:
                raise ModelFormatError(f"{type(self.module).__name__} contains no layers to convert")
            if softmax.inputs[0] != self.nodes[-1].name:
                raise ModelFormatError(f"{type(self.module).__name__}: the final softmax reads {softmax.inputs[0]!r}, "
                                       "not the last operation before it")
        return note

    def call_module(self, traced: Any, node: Any) -> None:
        if len(node.args) != 1 or node.kwargs:
            raise self.fail(node, "the module is called with more than one argument")
        source = self.tensor_input(node, node.args[0])
        module = traced.get_submodule(node.target)
        layer = _convert(node.target, module, self.dtype, self.shapes.get(source), self.nn)
        self.add(node, node.target, layer, [source], module)

    def call_function(self, node: Any) -> None:
        import operator

        torch, functional = self.torch, self.torch.nn.functional
        function, args, kwargs = node.target, node.args, dict(node.kwargs)
        if function in (operator.add, operator.iadd, torch.add):
            if kwargs.get("alpha", 1) != 1 or len(args) != 2:
                raise self.fail(node, "only the sum of two tensors converts (no alpha)")
            self.add(node, "add", Add(), [self.tensor_input(node, args[0]), self.tensor_input(node, args[1])])
        elif function in (torch.cat, torch.concat):
            tensors = args[0]
            dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
            if not isinstance(tensors, (list, tuple)) or len(tensors) < 2:
                raise self.fail(node, "torch.cat needs a list of at least two tensors")
            if not isinstance(dim, int) or dim == 0:
                raise self.fail(node, f"dim={dim!r}; only a non-batch axis (dim ≥ 1) converts")
            inputs = [self.tensor_input(node, item) for item in tensors]
            rank = self.shapes.get(inputs[0])
            axis = dim if dim > 0 else (len(rank) + 1 + dim if rank is not None else None)
            if axis is None or axis < 1:
                raise self.fail(node, f"dim={dim} cannot be resolved without input_shape; pass a positive dim")
            self.add(node, "cat", Concat(axis), inputs)
        elif function is torch.flatten:
            start = args[1] if len(args) > 1 else kwargs.get("start_dim", 0)
            end = args[2] if len(args) > 2 else kwargs.get("end_dim", -1)
            if start != 1 or end != -1:
                raise self.fail(node, f"start_dim={start}, end_dim={end}; only torch.flatten(x, 1) converts")
            self.add(node, "flatten", Flatten(), [self.tensor_input(node, args[0])])
        elif function in (torch.relu, functional.relu):
            self.add(node, "relu", ReLU(), [self.tensor_input(node, args[0])])
        elif function is operator.getitem and self.sizes.get(getattr(args[0], "name", None)) == "all" \
                and args[1] == 0:
            self.sizes[node.name] = "batch"
        else:
            raise self.fail(node, "this function has no lrpcore counterpart")

    def call_method(self, node: Any) -> None:
        method, args = node.target, node.args
        if method == "size" and args[1:] in ((0,), ()) and not node.kwargs:
            self.sizes[node.name] = "batch" if args[1:] == (0,) else "all"
            return
        if method in ("relu", "relu_"):
            self.add(node, "relu", ReLU(), [self.tensor_input(node, args[0])])
        elif method in ("add", "add_"):
            if len(args) != 2 or node.kwargs:
                raise self.fail(node, "only the sum of two tensors converts (no alpha)")
            self.add(node, "add", Add(), [self.tensor_input(node, args[0]), self.tensor_input(node, args[1])])
        elif method == "flatten":
            start = args[1] if len(args) > 1 else node.kwargs.get("start_dim", 0)
            end = args[2] if len(args) > 2 else node.kwargs.get("end_dim", -1)
            if start != 1 or end != -1:
                raise self.fail(node, f"start_dim={start}, end_dim={end}; only x.flatten(1) converts")
            self.add(node, "flatten", Flatten(), [self.tensor_input(node, args[0])])
        elif method in ("view", "reshape"):
            sizes = args[1:] if len(args) > 2 else (args[1] if len(args) == 2 else ())
            sizes = tuple(sizes) if isinstance(sizes, (list, tuple)) else (sizes,)
            batch = sizes[0] if sizes else None
            is_batch = batch == -1 or self.sizes.get(getattr(batch, "name", None)) == "batch"
            if len(sizes) != 2 or sizes[1] != -1 or not is_batch:
                raise self.fail(node, f"{method}{tuple(getattr(item, 'name', item) for item in sizes)}; only "
                                      f"x.{method}(x.size(0), -1) (a flatten) converts")
            self.add(node, "flatten", Flatten(), [self.tensor_input(node, args[0])])
        elif method == "contiguous":
            self.add(node, "contiguous", None, [self.tensor_input(node, args[0])])
        else:
            raise self.fail(node, "this tensor method has no lrpcore counterpart")


def _describe_fx(node: Any) -> str:
    if node.op == "call_module":
        return f"module '{node.target}'"
    if node.op == "call_method":
        return f"tensor method .{node.target}()"
    target = node.target
    module = getattr(target, "__module__", "") or ""
    return f"function {module + '.' if module else ''}{getattr(target, '__name__', repr(target))}"


# --- lrpcore → torch ----------------------------------------------------------------------------
def _tensor(array: Any, torch: Any, copy: bool) -> Any:
    host = to_numpy(array)
    if copy or not host.flags.writeable:
        host = numpy.array(host, copy=True)
    return torch.from_numpy(host)


def to_torch(model: Graph, copy: bool = True) -> Any:
    """The torch twin of ``model`` (same layers, same weights, same dtype), in eval mode: an
    ``nn.Sequential`` for a chain, for a graph a module that runs the nodes in order (``Add`` as a
    sum, ``Concat`` as ``torch.cat``), its layers in ``.layers`` under their node names.

    With ``copy=False`` the torch parameters share memory with the model's NumPy arrays
    (a benchmark can then hold one copy of VGG-16's weights). Raises
    :class:`~lrpcore.errors.ModelFormatError` for layers without a torch counterpart here.
    """
    torch = _import_torch()
    nn = torch.nn
    if not model.is_chain:
        return _graph_to_torch(model, copy, torch)
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


def _graph_to_torch(model: Graph, copy: bool, torch: Any) -> Any:
    """A torch module computing ``model``'s graph: each node's layer converted as a one-layer chain."""
    from ..layers import Identity

    class TorchGraph(torch.nn.Module):
        """The nodes of an lrpcore graph run in topological order."""

        def __init__(self, graph: Graph):
            super().__init__()
            self.plan = [(node.name, type(node.layer).__name__, node.inputs, getattr(node.layer, "axis", None))
                         for node in graph.nodes]
            self.layers = torch.nn.ModuleDict()
            shapes = graph.output_shapes() if graph.metadata.input_shape is not None else None
            for position, node in enumerate(graph.nodes):
                if not isinstance(node.layer, (Add, Concat, Identity)):
                    reads = graph.input_positions[position][0]
                    shape = None if shapes is None else (tuple(graph.metadata.input_shape) if reads == 0
                                                         else shapes[reads - 1])
                    single = Sequential([node.layer], ModelMetadata(input_shape=shape))
                    self.layers[_module_key(node.name)] = to_torch(single, copy)[0]

        def forward(self, x: Any) -> Any:
            values = {model.input_name: x}
            for name, kind, inputs, axis in self.plan:
                arguments = [values[item] for item in inputs]
                if kind == "Add":
                    result = arguments[0]
                    for other in arguments[1:]:
                        result = result + other
                elif kind == "Concat":
                    result = torch.cat(arguments, dim=axis)
                elif kind == "Identity":
                    result = arguments[0]
                else:
                    result = self.layers[_module_key(name)](arguments[0])
                values[name] = result
            return values[self.plan[-1][0]]

    return TorchGraph(model).eval()


def _module_key(name: str) -> str:
    """A ModuleDict key for a node name (dots are not allowed there)."""
    return name.replace(".", "__")
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

