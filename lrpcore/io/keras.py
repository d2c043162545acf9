"""Keras models → lrpcore models, from the files alone (Keras is not imported).

Sequential models become a :class:`~lrpcore.Sequential`; functional models become a
:class:`~lrpcore.Graph` whose nodes are named after the Keras layers (an activation folded into a
layer gets its own node, ``conv1/relu``), or a Sequential where their layers form one chain.
Supported layers: InputLayer, Conv2D, DepthwiseConv2D, SeparableConv2D (→ a depthwise and a 1×1
convolution), Dense, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D and GlobalMaxPooling2D
(→ an adaptive pool to 1×1 and, unless ``keepdims``, a Flatten: Keras' output shape (N, C)),
Flatten, Reshape (after a Dense layer), ZeroPadding2D, BatchNormalization, ReLU (also
``max_value=6`` → ReLU6 and ``negative_slope`` → LeakyReLU), LeakyReLU, ELU, Dropout, the
activations relu, relu6, tanh, sigmoid, silu/swish, gelu, elu, leaky_relu (as layers,
``Activation(...)`` or ``activation=...``), Identity (left out), and the joins ``Add`` (residual
connections) and ``Concatenate``; a final softmax (activation, ``Activation`` or ``Softmax`` layer)
is dropped because LRP explains the logits. Anything else is refused with an error naming the layer.

Two layout differences are converted exactly:

- Keras is channels-last: a Conv2D kernel is (kh, kw, in, out), lrpcore's (out, in, kh, kw);
  a Dense kernel is (in, out), lrpcore's (out, in). The converted model takes NCHW inputs,
  so Keras NHWC arrays are passed as ``x.transpose(0, 3, 1, 2)``.
- Keras' Flatten reads (H, W, C) in that order, lrpcore's reads (C, H, W). Feature
  ``c·H·W + h·W + w`` of lrpcore is feature ``(h·W + w)·C + c`` of Keras, so the columns of
  the first Dense layer after a Flatten (and the entries of a BatchNormalization between
  them) are permuted by that map; the two networks then compute the same function.

``padding="same"`` pads ``total = max((ceil(n/s) − 1)·s + k − n, 0)`` per axis, the smaller
half before (TensorFlow's rule). lrpcore pads symmetrically, so "same" is accepted only
where ``total`` is even (always for odd kernels with stride 1); average pooling only where
``total`` is 0 (Keras leaves padded cells out of the average, lrpcore counts them).
"""
from __future__ import annotations

import dataclasses
import math
import os
import zipfile
from typing import Any, Mapping

import numpy

from ..errors import ModelFormatError
from ..graph import INPUT, Graph, GraphError, Node
from ..layers import (ELU, GELU, AdaptiveAvgPool2d, AdaptiveMaxPool2d, Add, AvgPool2d, BatchNorm1d, BatchNorm2d,
                      Concat, Conv2d, Dense, Dropout, Flatten, Layer, LeakyReLU, MaxPool2d, ReLU, ReLU6, Reshape,
                      Sigmoid, SiLU, Tanh, ZeroPad2d)
from ..metadata import ModelMetadata
from ..model import Sequential
from .keras_weights import KerasFile, parse_config, snake_case
from .layout import channels_first_order
from . import validate
from .validate import check_model

__all__ = ["load_keras", "SUPPORTED_LAYERS"]

# What h5py, json, zipfile and a malformed config can raise; turned into ModelFormatError.
_READ_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError, AttributeError,
                UnicodeError, OverflowError, EOFError, zipfile.BadZipFile)

#: Keras class names this converter understands (aliases of older Keras versions included).
SUPPORTED_LAYERS = ("InputLayer", "Conv2D", "Convolution2D", "DepthwiseConv2D", "SeparableConv2D",
                    "SeparableConvolution2D", "Dense", "MaxPooling2D", "MaxPool2D", "AveragePooling2D", "AvgPool2D",
                    "GlobalAveragePooling2D", "GlobalAvgPool2D", "GlobalMaxPooling2D", "GlobalMaxPool2D", "Flatten",
                    "Reshape", "ZeroPadding2D", "BatchNormalization", "ReLU", "LeakyReLU", "ELU", "Activation",
                    "Softmax", "Dropout", "Identity", "Add", "Concatenate")

#: Keras activation names → lrpcore layers (Keras' own defaults: leaky_relu slope 0.2, elu α 1, exact gelu).
ACTIVATIONS = {"relu": ReLU, "relu6": ReLU6, "tanh": Tanh, "sigmoid": Sigmoid, "silu": SiLU, "swish": SiLU,
               "gelu": GELU, "elu": ELU, "leaky_relu": lambda: LeakyReLU(0.2)}


@dataclasses.dataclass
class _LayerSpec:
    index: int            # position in the Keras layer list
    class_name: str
    config: dict
    path_name: str        # Keras 3 group name when the file does not record names
    inbound: list[str] = dataclasses.field(default_factory=list)   # names of the layers it reads

    @property
    def name(self) -> str:
        return str(self.config.get("name", f"layer_{self.index}"))

    @property
    def where(self) -> str:
        return f"Keras layer {self.index} {self.name!r} ({self.class_name})"


class _Converter:
    """Walks the Keras layers in order, tracking the per-sample shape in Keras' layout."""

    def __init__(self, source: KerasFile, specs: list[_LayerSpec], input_shape: tuple[int, ...] | None,
                 data_format: str, output_layer: str | None = None):
        self.source = source
        self.specs = specs
        self.output_layer = output_layer
        self.shape = input_shape          # Keras layout, no batch axis
        self.data_format = data_format
        self.permutation: numpy.ndarray | None = None   # lrpcore feature i = Keras feature permutation[i]
        self.layers: list[Layer] = []
        self.notes: list[str] = []

    # --- helpers ---------------------------------------------------------------------------------
    def fail(self, spec: _LayerSpec, message: str) -> ModelFormatError:
        return ModelFormatError(f"{self.source.path}: {spec.where}: {message}")

    def weights(self, spec: _LayerSpec, expected: list[tuple[str, tuple[int, ...]]]) -> list[numpy.ndarray]:
        """The layer's arrays, checked against ``expected`` (short name, shape) in creation order."""
        found = self.source.arrays(spec.name, spec.path_name, spec.where)
        if len(found) != len(expected):
            raise self.fail(spec, f"expected {len(expected)} weight arrays "
                                  f"({', '.join(name for name, _ in expected) or 'none'}), found {len(found)} "
                                  f"({', '.join(f'{n or i}{tuple(a.shape)}' for i, (n, a) in enumerate(found))})")
        arrays = []
        for (name, shape), (found_name, array) in zip(expected, found):
            if found_name is not None and found_name != name:
                raise self.fail(spec, f"expected weight {name!r}, found {found_name!r}")
            if tuple(array.shape) != shape:
                raise self.fail(spec, f"weight {name!r} has shape {tuple(array.shape)}, expected {shape}")
            arrays.append(array)
        return arrays

    def integers(self, spec: _LayerSpec, key: str, value: Any, pair: bool = False) -> tuple[int, ...]:
        """A config setting of whole numbers (an int, or a list of them; ``pair``: an int means (v, v)).

        Keras writes JSON integers; a float such as 2.7 (or a bool, or a string) is refused rather
        than truncated.
        """
        items = [value, value] if pair and isinstance(value, int) and not isinstance(value, bool) else value
        items = items if isinstance(items, (list, tuple)) else [items]
        if not items or not all(isinstance(item, int) and not isinstance(item, bool) for item in items):
            raise self.fail(spec, f"{key} must be {'an integer or a list of integers' if pair else 'an integer'}, "
                                  f"got {value!r}")
        return tuple(int(item) for item in items)

    def image_shape(self, spec: _LayerSpec) -> tuple[int, int, int]:
        """(H, W, C) of the current input, which must be an image."""
        if self.shape is None:
            raise self.fail(spec, "the input shape is unknown (no InputLayer or batch_input_shape in the config); "
                                  "pass input_shape=(H, W, C)")
        if len(self.shape) != 3:
            raise self.fail(spec, f"expects an image input (H, W, C), but receives shape {self.shape}")
        if self.data_format == "channels_first":
            channels, height, width = self.shape
        else:
            height, width, channels = self.shape
        return height, width, channels

    def set_image_shape(self, height: int, width: int, channels: int) -> None:
        self.shape = (channels, height, width) if self.data_format == "channels_first" else (height, width, channels)

    def check_format(self, spec: _LayerSpec) -> None:
        layer_format = spec.config.get("data_format") or "channels_last"
        if layer_format != self.data_format:
            raise self.fail(spec, f"data_format {layer_format!r} differs from the model's {self.data_format!r}")

    def window(self, spec: _LayerSpec, size: int, kernel: int, stride: int, axis: str,
               allow_padding: bool) -> int:
        """Symmetric padding equal to Keras' ``padding`` along one axis, or a clear error."""
        padding = spec.config.get("padding", "valid")
        if padding == "valid":
            return 0
        if padding != "same":
            raise self.fail(spec, f"padding {padding!r} is not supported (only 'valid' and 'same')")
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        if total == 0:
            pad = 0
        elif not allow_padding:
            raise self.fail(spec, f"padding 'same' pads {total} cells along the {axis} (input {size}, window "
                                  f"{kernel}, stride {stride}); Keras leaves padding out of averages, lrpcore "
                                  "does not, so this layer cannot be converted exactly")
        elif total % 2:
            raise self.fail(spec, f"padding 'same' pads {total} cells along the {axis} (input {size}, kernel "
                                  f"{kernel}, stride {stride}): {total // 2} before and {total - total // 2} after; "
                                  "lrpcore pads symmetrically, so only odd kernels with stride 1 (or an even total) "
                                  "convert exactly")
        else:
            pad = total // 2
        if (size + 2 * pad - kernel) // stride + 1 != out:
            raise self.fail(spec, f"padding 'same' along the {axis} gives {out} outputs in Keras but "
                                  f"{(size + 2 * pad - kernel) // stride + 1} with symmetric padding {pad}")
        return pad

    def activation(self, spec: _LayerSpec, name: Any, is_last: bool) -> None:
        """Append the layer for a Keras activation name: ReLU, nothing (linear), or drop a final softmax."""
        if isinstance(name, dict):  # serialized function: {"class_name": "function", "config": "relu"...}
            name = name.get("config") if isinstance(name.get("config"), str) else name.get("class_name")
        name = "linear" if name is None else str(name).lower()
        if name == "linear":
            return
        if name in ACTIVATIONS:
            self.layers.append(ACTIVATIONS[name]())
            return
        if name == "softmax" and is_last:
            self.notes.append(f"dropped the final softmax of {spec.where}: lrpcore explains the logits")
            return
        known = ", ".join(map(repr, ACTIVATIONS))
        raise self.fail(spec, f"activation {name!r} is not supported (only 'linear', {known}, and 'softmax' on "
                              "the last layer)")

    def apply_permutation(self, values: numpy.ndarray, axis: int) -> numpy.ndarray:
        """Reorder Keras' flattened features into lrpcore's order along ``axis``."""
        return values if self.permutation is None else numpy.take(values, self.permutation, axis=axis)

    # --- layers ----------------------------------------------------------------------------------
    def conv2d(self, spec: _LayerSpec, is_last: bool) -> None:
        config = spec.config
        self.check_format(spec)
        height, width, channels = self.image_shape(spec)
        kernel, strides = self._geometry(spec)
        (groups,) = self.integers(spec, "groups", config.get("groups", 1))
        (filters,) = self.integers(spec, "filters", config.get("filters"))
        if groups < 1 or channels % groups or filters % groups:
            raise self.fail(spec, f"groups {groups} must divide the {channels} input channels and {filters} filters")
        expected = [("kernel", (*kernel, channels // groups, filters))]
        if config.get("use_bias", True):
            expected.append(("bias", (filters,)))
        arrays = self.weights(spec, expected)
        padding = (self.window(spec, height, kernel[0], strides[0], "height", True),
                   self.window(spec, width, kernel[1], strides[1], "width", True))
        weight = numpy.ascontiguousarray(numpy.transpose(arrays[0], (3, 2, 0, 1)))
        bias = arrays[1] if len(arrays) > 1 else numpy.zeros((filters,), dtype=weight.dtype)
        layer = Conv2d(weight, bias, stride=strides, padding=padding, groups=groups)
        self.layers.append(layer)
        _, out_h, out_w = layer.output_shape((channels, height, width))
        self.set_image_shape(out_h, out_w, filters)
        self.activation(spec, config.get("activation"), is_last)

    def _geometry(self, spec: _LayerSpec) -> tuple[tuple[int, int], tuple[int, int]]:
        """(kernel, strides) of a convolution; dilation must be 1."""
        config = spec.config
        kernel = self.integers(spec, "kernel_size", config.get("kernel_size", ()), pair=True)
        strides = self.integers(spec, "strides", config.get("strides", (1, 1)), pair=True)
        dilation = self.integers(spec, "dilation_rate", config.get("dilation_rate", 1), pair=True)
        if len(kernel) != 2 or len(strides) != 2:
            raise self.fail(spec, f"kernel_size {kernel} and strides {strides} must be pairs")
        if dilation != (1, 1):
            raise self.fail(spec, f"dilation_rate {dilation} is not supported (only 1)")
        return kernel, strides  # type: ignore[return-value]

    def _kernel_name(self, spec: _LayerSpec, keras3: str, legacy: str) -> str:
        """The short name of a layer's first array: Keras 3 and Keras 2 name some differently."""
        found = self.source.arrays(spec.name, spec.path_name, spec.where)
        return legacy if found and found[0][0] == legacy else keras3

    def _depthwise_layer(self, spec: _LayerSpec, kernel_array: numpy.ndarray, bias: numpy.ndarray | None,
                         strides: tuple[int, int], padding: tuple[int, int]) -> Conv2d:
        """Keras' depthwise kernel (kh, kw, C, m) as a Conv2d with groups = C: output c·m + t is input c's
        t-th filter, TensorFlow's channel order (``depthwise_conv2d``)."""
        kernel_h, kernel_w, channels, multiplier = kernel_array.shape
        weight = numpy.transpose(kernel_array, (2, 3, 0, 1)).reshape(channels * multiplier, 1, kernel_h, kernel_w)
        return Conv2d(numpy.ascontiguousarray(weight), bias, stride=strides, padding=padding, groups=channels)

    def depthwise(self, spec: _LayerSpec, is_last: bool) -> None:
        config = spec.config
        self.check_format(spec)
        height, width, channels = self.image_shape(spec)
        kernel, strides = self._geometry(spec)
        (multiplier,) = self.integers(spec, "depth_multiplier", config.get("depth_multiplier", 1))
        expected = [(self._kernel_name(spec, "kernel", "depthwise_kernel"), (*kernel, channels, multiplier))]
        if config.get("use_bias", True):
            expected.append(("bias", (channels * multiplier,)))
        arrays = self.weights(spec, expected)
        padding = (self.window(spec, height, kernel[0], strides[0], "height", True),
                   self.window(spec, width, kernel[1], strides[1], "width", True))
        layer = self._depthwise_layer(spec, arrays[0], arrays[1] if len(arrays) > 1 else None, strides, padding)
        self.layers.append(layer)
        _, out_h, out_w = layer.output_shape((channels, height, width))
        self.set_image_shape(out_h, out_w, channels * multiplier)
        self.activation(spec, config.get("activation"), is_last)

    def separable(self, spec: _LayerSpec, is_last: bool) -> None:
        """SeparableConv2D: a depthwise convolution (no bias) then a 1×1 convolution with the bias."""
        config = spec.config
        self.check_format(spec)
        height, width, channels = self.image_shape(spec)
        kernel, strides = self._geometry(spec)
        (multiplier,) = self.integers(spec, "depth_multiplier", config.get("depth_multiplier", 1))
        (filters,) = self.integers(spec, "filters", config.get("filters"))
        expected = [("depthwise_kernel", (*kernel, channels, multiplier)),
                    ("pointwise_kernel", (1, 1, channels * multiplier, filters))]
        if config.get("use_bias", True):
            expected.append(("bias", (filters,)))
        arrays = self.weights(spec, expected)
        padding = (self.window(spec, height, kernel[0], strides[0], "height", True),
                   self.window(spec, width, kernel[1], strides[1], "width", True))
        depthwise = self._depthwise_layer(spec, arrays[0], None, strides, padding)
        pointwise = numpy.ascontiguousarray(numpy.transpose(arrays[1], (3, 2, 0, 1)))
        bias = arrays[2] if len(arrays) > 2 else None
        self.layers += [depthwise, Conv2d(pointwise, bias)]
        _, out_h, out_w = depthwise.output_shape((channels, height, width))
        self.set_image_shape(out_h, out_w, filters)
        self.activation(spec, config.get("activation"), is_last)

    def global_pooling(self, spec: _LayerSpec, layer_type: type) -> None:
        """Global pooling: an adaptive pool to 1×1, and a Flatten unless ``keepdims`` (Keras' (N, C) output)."""
        self.check_format(spec)
        _, _, channels = self.image_shape(spec)
        self.weights(spec, [])
        self.layers.append(layer_type(1))
        if spec.config.get("keepdims", False):
            self.set_image_shape(1, 1, channels)
        else:
            self.layers.append(Flatten())
            self.shape = (channels,)

    def zero_padding(self, spec: _LayerSpec) -> None:
        self.check_format(spec)
        height, width, channels = self.image_shape(spec)
        self.weights(spec, [])
        value = spec.config.get("padding", 1)
        if isinstance(value, int) and not isinstance(value, bool):
            pairs = ((value, value), (value, value))
        elif isinstance(value, (list, tuple)):
            pairs = tuple(self.integers(spec, "padding", item, pair=True) for item in value)
        else:
            raise self.fail(spec, f"padding {value!r} must be an int, a pair or ((top, bottom), (left, right))")
        if len(pairs) != 2 or any(len(pair) != 2 for pair in pairs):
            raise self.fail(spec, f"padding {value!r} must be an int, a pair or ((top, bottom), (left, right))")
        (top, bottom), (left, right) = pairs
        self.layers.append(ZeroPad2d((left, right, top, bottom)))
        self.set_image_shape(height + top + bottom, width + left + right, channels)

    def reshape(self, spec: _LayerSpec) -> None:
        """Reshape of flat features. To an image (H, W, C): Keras reads the features in (H, W, C) order,
        lrpcore in (C, H, W), so the Dense layer that produced them gets its outputs reordered (rows of its
        weight and entries of its bias; element-wise layers in between keep the order) and the model
        reshapes to (C, H, W). Refused after any other layer."""
        self.weights(spec, [])
        target = self.integers(spec, "target_shape", spec.config.get("target_shape", ()))
        if self.shape is None or len(self.shape) != 1:
            raise self.fail(spec, f"receives shape {self.shape}; only flat features (after Dense) are reshaped")
        if math.prod(target) != self.shape[0] or not target:
            raise self.fail(spec, f"target_shape {target} does not hold the {self.shape[0]} features")
        if len(target) == 1:
            return
        if len(target) != 3 or self.data_format != "channels_last":
            raise self.fail(spec, f"target_shape {target}: only images (H, W, C) channels-last are supported")
        height, width, channels = target
        order = channels_first_order(height, width, channels)     # lrpcore feature i = Keras feature order[i]
        position = self._producer(spec)
        layer = self.nodes[position].layer
        self.nodes[position] = Node(self.nodes[position].name,
                                    Dense(numpy.ascontiguousarray(layer.weight[order]), layer.bias[order]),
                                    self.nodes[position].inputs)
        self.layers.append(Reshape((channels, height, width)))
        self.set_image_shape(height, width, channels)

    def dense(self, spec: _LayerSpec, is_last: bool) -> None:
        config = spec.config
        if self.shape is None:
            raise self.fail(spec, "the input shape is unknown; pass input_shape=")
        if len(self.shape) != 1:
            raise self.fail(spec, f"receives shape {self.shape}; only Dense on flat inputs converts (add Flatten)")
        (units,), features = self.integers(spec, "units", config.get("units")), self.shape[0]
        expected = [("kernel", (features, units))]
        if config.get("use_bias", True):
            expected.append(("bias", (units,)))
        arrays = self.weights(spec, expected)
        weight = numpy.ascontiguousarray(self.apply_permutation(arrays[0].T, axis=1))
        self.permutation = None
        bias = arrays[1] if len(arrays) > 1 else numpy.zeros((units,), dtype=weight.dtype)
        self.layers.append(Dense(weight, bias))
        self.shape = (units,)
        self.activation(spec, config.get("activation"), is_last)

    def pooling(self, spec: _LayerSpec, layer_type: type) -> None:
        config = spec.config
        self.check_format(spec)
        height, width, channels = self.image_shape(spec)
        pool = self.integers(spec, "pool_size", config.get("pool_size", 2), pair=True)
        strides = self.integers(spec, "strides", config.get("strides") or pool, pair=True)
        self.weights(spec, [])
        padding = (self.window(spec, height, pool[0], strides[0], "height", True),
                   self.window(spec, width, pool[1], strides[1], "width", True))
        # Keras leaves padded cells out of an average
        extra = {} if layer_type is MaxPool2d else {"count_include_pad": False}
        layer = layer_type(pool, stride=strides, padding=padding, **extra)
        self.layers.append(layer)
        _, out_h, out_w = layer.output_shape((channels, height, width))
        if out_h < 1 or out_w < 1:
            raise self.fail(spec, f"window {pool} does not fit the input ({height}, {width})")
        self.set_image_shape(out_h, out_w, channels)

    def flatten(self, spec: _LayerSpec) -> None:
        self.weights(spec, [])
        if self.shape is None:
            raise self.fail(spec, "the input shape is unknown; pass input_shape=")
        if len(self.shape) == 3 and self.data_format == "channels_last":
            height, width, channels = self.shape
            if channels > 1 and height * width > 1:
                self.permutation = channels_first_order(height, width, channels)
        self.layers.append(Flatten())
        self.shape = (math.prod(self.shape),)

    def batch_norm(self, spec: _LayerSpec) -> None:
        config = spec.config
        if self.shape is None:
            raise self.fail(spec, "the input shape is unknown; pass input_shape=")
        axis = config.get("axis", -1)
        axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
        rank = len(self.shape) + 1
        channel_axis = 1 if (self.data_format == "channels_first" or rank == 2) else rank - 1
        if not isinstance(axis, int) or axis % rank != channel_axis:
            raise self.fail(spec, f"normalises axis {config.get('axis')!r}; only the channel axis "
                                  f"({channel_axis} of a rank-{rank} input) converts")
        if rank not in (2, 4):
            raise self.fail(spec, f"receives shape {self.shape}; only images and flat features convert")
        features = self.shape[0] if rank == 2 else self.image_shape(spec)[2]
        expected = []
        if config.get("scale", True):
            expected.append(("gamma", (features,)))
        if config.get("center", True):
            expected.append(("beta", (features,)))
        expected += [("moving_mean", (features,)), ("moving_variance", (features,))]
        arrays = dict(zip((name for name, _ in expected), self.weights(spec, expected)))
        dtype = arrays["moving_mean"].dtype
        values = {
            "running_mean": arrays["moving_mean"],
            "running_var": arrays["moving_variance"],
            "weight": arrays.get("gamma", numpy.ones((features,), dtype=dtype)),
            "bias": arrays.get("beta", numpy.zeros((features,), dtype=dtype)),
        }
        if rank == 2:
            values = {key: self.apply_permutation(value, axis=0) for key, value in values.items()}
        layer_type = BatchNorm1d if rank == 2 else BatchNorm2d
        self.layers.append(layer_type(eps=float(config.get("epsilon", 1e-3)), **values))

    def relu(self, spec: _LayerSpec) -> None:
        config = spec.config
        self.weights(spec, [])
        maximum = config.get("max_value")
        settings = {"max_value": None if maximum is None else float(maximum),
                    "negative_slope": float(config.get("negative_slope") or 0),
                    "threshold": float(config.get("threshold") or 0)}
        if settings == {"max_value": None, "negative_slope": 0.0, "threshold": 0.0}:
            self.layers.append(ReLU())
        elif settings == {"max_value": 6.0, "negative_slope": 0.0, "threshold": 0.0}:
            self.layers.append(ReLU6())
        elif settings["max_value"] is None and settings["threshold"] == 0.0:
            self.layers.append(LeakyReLU(settings["negative_slope"]))
        else:
            raise self.fail(spec, f"ReLU with {settings} is not supported (a plain ReLU, max_value=6 as ReLU6, "
                                  "or negative_slope alone as LeakyReLU)")

    def layer(self, spec: _LayerSpec, is_last: bool) -> None:
        """Append the lrpcore layers of one single-input Keras layer to ``self.layers``, updating the shape."""
        kind = spec.class_name
        if kind in ("Conv2D", "Convolution2D"):
            self.conv2d(spec, is_last)
        elif kind == "DepthwiseConv2D":
            self.depthwise(spec, is_last)
        elif kind in ("SeparableConv2D", "SeparableConvolution2D"):
            self.separable(spec, is_last)
        elif kind in ("GlobalAveragePooling2D", "GlobalAvgPool2D"):
            self.global_pooling(spec, AdaptiveAvgPool2d)
        elif kind in ("GlobalMaxPooling2D", "GlobalMaxPool2D"):
            self.global_pooling(spec, AdaptiveMaxPool2d)
        elif kind == "ZeroPadding2D":
            self.zero_padding(spec)
        elif kind == "Reshape":
            self.reshape(spec)
        elif kind == "LeakyReLU":
            self.weights(spec, [])
            self.layers.append(LeakyReLU(float(spec.config.get("negative_slope", spec.config.get("alpha", 0.3)))))
        elif kind == "ELU":
            self.weights(spec, [])
            self.layers.append(ELU(float(spec.config.get("alpha", 1.0))))
        elif kind == "Dense":
            self.dense(spec, is_last)
        elif kind in ("MaxPooling2D", "MaxPool2D"):
            self.pooling(spec, MaxPool2d)
        elif kind in ("AveragePooling2D", "AvgPool2D"):
            self.pooling(spec, AvgPool2d)
        elif kind == "Flatten":
            self.flatten(spec)
        elif kind == "BatchNormalization":
            self.batch_norm(spec)
        elif kind == "ReLU":
            self.relu(spec)
        elif kind == "Activation":
            self.weights(spec, [])
            self.activation(spec, spec.config.get("activation"), is_last)
        elif kind == "Softmax":
            self.weights(spec, [])
            self.activation(spec, "softmax", is_last)
        elif kind == "Identity":
            self.weights(spec, [])
        elif kind == "Dropout":
            self.weights(spec, [])
            self.layers.append(Dropout(float(spec.config.get("rate", 0.5))))
        else:
            raise self.fail(spec, f"layer type {kind!r} is not supported; supported: "
                                  f"{', '.join(SUPPORTED_LAYERS)}")

    def _producer(self, spec: _LayerSpec) -> int:
        """Position in ``self.nodes`` of the Dense layer whose outputs reach ``spec`` through element-wise layers
        only, each read by nothing else (so its outputs can be reordered); an error naming the obstacle."""
        elementwise = (ReLU, ReLU6, Tanh, Sigmoid, SiLU, GELU, ELU, LeakyReLU, Dropout)
        name = self.source_name
        while name != INPUT:
            position = next(index for index, node in enumerate(self.nodes) if node.name == name)
            node = self.nodes[position]
            readers = [other.name for other in self.nodes if name in other.inputs]
            if len(readers) > 1:
                raise self.fail(spec, f"the features of {name!r} are also read by {readers}; they cannot be "
                                      "reordered to lrpcore's (C, H, W) for this Reshape alone")
            if isinstance(node.layer, Dense):
                return position
            if not isinstance(node.layer, elementwise):
                raise self.fail(spec, f"the features come from {node.layer.describe()}, not from a Dense layer "
                                      "whose outputs could be reordered to lrpcore's (C, H, W)")
            name = node.inputs[0]
        raise self.fail(spec, "no Dense layer before it whose outputs could be reordered to (C, H, W)")

    # --- graphs ------------------------------------------------------------------------------------
    def merge(self, spec: _LayerSpec, sources: list["_Tensor"]) -> tuple[Layer, "_Tensor"]:
        """The Add or Concat node of a Keras ``Add``/``Concatenate`` layer, and the tensor it produces."""
        self.weights(spec, [])
        if len(sources) < 2:
            raise self.fail(spec, f"needs at least two inputs, got {len(sources)}")
        shapes = [source.shape for source in sources]
        if any(shape is None for shape in shapes):
            raise self.fail(spec, "the input shape is unknown; pass input_shape=")
        flattened = [source.permutation is not None for source in sources]
        if spec.class_name == "Add":
            if len(set(shapes)) != 1:
                raise self.fail(spec, f"adds tensors of different shapes {shapes}")
            if any(flattened) and not all(numpy.array_equal(sources[0].permutation, other.permutation)
                                          for other in sources[1:]):
                raise self.fail(spec, "adds flattened features in different orders")
            return Add(), _Tensor("", shapes[0], sources[0].permutation)
        rank = len(shapes[0])
        axis = spec.config.get("axis", -1)
        if not isinstance(axis, int) or any(len(shape) != rank for shape in shapes) or not -rank - 1 <= axis <= rank:
            raise self.fail(spec, f"axis {axis!r} does not fit inputs of shapes {shapes}")
        axis = axis % (rank + 1)
        if axis == 0:
            raise self.fail(spec, "concatenates along the batch axis")
        keras_axis = axis - 1
        if any(shape[:keras_axis] + shape[keras_axis + 1:] != shapes[0][:keras_axis] + shapes[0][keras_axis + 1:]
               for shape in shapes):
            raise self.fail(spec, f"inputs of shapes {shapes} differ outside axis {axis}")
        shape = shapes[0][:keras_axis] + (sum(s[keras_axis] for s in shapes),) + shapes[0][keras_axis + 1:]
        lrp_axis = axis
        if rank == 3 and self.data_format == "channels_last":
            lrp_axis = {3: 1, 1: 2, 2: 3}[axis]          # (H, W, C) in Keras is (C, H, W) in lrpcore
        permutation = None
        if rank == 1 and any(flattened):
            parts, offset = [], 0
            for source, size in zip(sources, (s[0] for s in shapes)):
                order = source.permutation if source.permutation is not None else numpy.arange(size)
                parts.append(order + offset)
                offset += size
            permutation = numpy.concatenate(parts)
        return Concat(lrp_axis), _Tensor("", shape, permutation)

    def convert(self) -> tuple[list[Node], str]:
        """The lrpcore nodes of the Keras layers (each layer's inputs followed as recorded) and the output."""
        tensors: dict[str, _Tensor] = {_INPUT: _Tensor(INPUT, self.shape, None)}
        nodes: list[Node] = []
        self.nodes = nodes                      # the nodes so far (a Reshape may reorder an earlier Dense)
        output = self.output_layer or (self.specs[-1].name if self.specs else None)
        for spec in self.specs:
            if spec.class_name == "InputLayer":
                tensors[spec.name] = tensors[_INPUT]
                continue
            missing = [name for name in spec.inbound if name not in tensors]
            if missing:
                raise self.fail(spec, f"reads {missing}, which no earlier layer produces")
            sources = [tensors[name] for name in spec.inbound]
            node_name = spec.name if spec.name != INPUT else f"{INPUT}_"
            if spec.class_name in _MERGE_LAYERS:
                layer, tensor = self.merge(spec, sources)
                nodes.append(Node(node_name, layer, tuple(source.name for source in sources)))
                tensors[spec.name] = dataclasses.replace(tensor, name=node_name)
                continue
            if len(sources) != 1:
                raise self.fail(spec, f"takes {len(sources)} inputs; only Add and Concatenate join tensors")
            self.shape, self.permutation, self.layers = sources[0].shape, sources[0].permutation, []
            self.source_name = sources[0].name
            self.layer(spec, spec.name == output)
            previous = sources[0].name
            for index, layer in enumerate(self.layers):
                name = node_name if index == 0 else f"{node_name}/{type(layer).__name__.lower()}"
                nodes.append(Node(name, layer, (previous,)))
                previous = name
            tensors[spec.name] = _Tensor(previous, self.shape, self.permutation)
        if not nodes:
            raise ModelFormatError(f"{self.source.path}: the Keras model has no layers to convert")
        if output not in tensors:
            raise ModelFormatError(f"{self.source.path}: the model's output layer {output!r} is not among its layers")
        return nodes, tensors[output].name


#: The name the converter gives the model input before any InputLayer is seen.
_INPUT = "\0input"
#: Keras layers that join tensors.
_MERGE_LAYERS = ("Add", "Concatenate")


@dataclasses.dataclass
class _Tensor:
    """A Keras layer's output: the lrpcore activation holding it, its Keras-layout shape, its feature order."""

    name: str
    shape: tuple[int, ...] | None
    permutation: numpy.ndarray | None


def _inbound_names(nodes: Any) -> list[str]:
    """Names of the layers feeding a functional-model layer (Keras 2 lists and Keras 3 dicts)."""
    names: list[str] = []

    def visit(item: Any) -> None:
        if isinstance(item, dict):
            history = item.get("keras_history")
            if isinstance(history, list) and history and isinstance(history[0], str):
                names.append(history[0])
                return
            for value in item.values():
                visit(value)
        elif isinstance(item, list):
            if len(item) >= 3 and isinstance(item[0], str) and isinstance(item[1], int):
                names.append(item[0])
                return
            for value in item:
                visit(value)

    visit(nodes)
    return names


def _layer_specs(config: dict, source: str) -> tuple[str, list[_LayerSpec], str | None]:
    """(model name, layer list with each layer's inputs, output layer name) of a Sequential or functional config.

    A Sequential model's layers read the layer before them; a functional model's read what their
    ``inbound_nodes`` name. A layer used more than once (shared weights), several model inputs or
    several outputs are refused.
    """
    class_name = config.get("class_name")
    body = config.get("config", {})
    if class_name not in ("Sequential", "Functional", "Model"):
        raise ModelFormatError(f"{source}: model class {class_name!r} is not supported; expected a Sequential "
                               "or functional model")
    layers = body if isinstance(body, list) else body.get("layers") if isinstance(body, dict) else None
    if not isinstance(layers, list) or not all(isinstance(layer, dict) for layer in layers):
        raise ModelFormatError(f"{source}: the model config has no list of layers")
    name = body.get("name", "keras_model") if isinstance(body, dict) else "keras_model"
    specs = []
    counters: dict[str, int] = {}
    for index, layer in enumerate(layers):
        layer_class = str(layer.get("class_name", "?"))
        layer_config = layer.get("config", {})
        if not isinstance(layer_config, dict):
            raise ModelFormatError(f"{source}: Keras layer {index} ({layer_class}) has no config object")
        if "name" not in layer_config and "name" in layer:
            layer_config = {**layer_config, "name": layer["name"]}
        base = snake_case(layer_class)
        count = counters.get(base, 0)
        counters[base] = count + 1
        path_name = base if count == 0 else f"{base}_{count}"
        if layer_class == "InputLayer":
            counters[base] -= 1
        spec = _LayerSpec(index, layer_class, layer_config, path_name)
        if class_name == "Sequential":
            previous = [other for other in specs if other.class_name != "InputLayer"]
            spec.inbound = [previous[-1].name] if previous else [_INPUT]
        elif layer_class != "InputLayer":
            nodes = layer.get("inbound_nodes", [])
            if isinstance(nodes, list) and len(nodes) > 1:
                raise ModelFormatError(f"{source}: {spec.where} is called {len(nodes)} times (shared weights); "
                                       "only layers used once convert")
            spec.inbound = _inbound_names(nodes)
        specs.append(spec)
    output = None
    if class_name != "Sequential" and isinstance(body, dict):
        inputs, outputs = _endpoints(body.get("input_layers")), _endpoints(body.get("output_layers"))
        if len(inputs) > 1 or len(outputs) > 1:
            raise ModelFormatError(f"{source}: the model has inputs {inputs} and outputs {outputs}; lrpcore models "
                                   "have one input and one output")
        output = outputs[0] if outputs else None
    return str(name), specs, output


def _endpoints(value: Any) -> list[str]:
    """Layer names of a functional config's ``input_layers``/``output_layers`` (["x", 0, 0] or a list of those)."""
    if isinstance(value, list) and len(value) >= 1 and isinstance(value[0], str):
        return [value[0]]
    if isinstance(value, list):
        return [name for item in value for name in _endpoints(item)]
    return []


def _input_shape(specs: list[_LayerSpec]) -> tuple[int, ...] | None:
    """One sample's input shape in Keras layout, from an InputLayer or the first layer's batch_input_shape."""
    for spec in specs:
        for key in ("batch_shape", "batch_input_shape"):
            shape = spec.config.get(key)
            if isinstance(shape, list) and len(shape) >= 2 and all(isinstance(v, int) for v in shape[1:]):
                return tuple(int(v) for v in shape[1:])
        if spec.class_name != "InputLayer":
            break
    return None


def load_keras(path: str | os.PathLike, config: Any = None, input_shape: tuple[int, ...] | None = None,
               metadata: Mapping[str, Any] | None = None, dtype: str | None = None,
               backend: Any = "numpy") -> Graph:
    """Read a Keras model (Sequential or functional) from its HDF5 weights into an lrpcore model taking NCHW inputs.

    ``path``: a legacy ``.h5`` (full model or weights only), a Keras 3 ``.weights.h5``, or a ``.keras``
    archive. ``config``: the architecture (``model.to_json()`` as a string, dict, or a ``.json``/``.keras``
    path) when the file holds weights only. ``input_shape``: one sample's shape in Keras layout
    (H, W, C), needed only when the config does not say. ``metadata``: ModelMetadata fields to set
    (value_range, mean, std, class_names, name, description); input_shape is taken from the model.
    ``dtype``: None keeps the file's precision (float16 weights become float32), or "float32"/"float64".
    Raises ``FileNotFoundError`` or :class:`~lrpcore.errors.ModelFormatError` naming the layer at fault.
    """
    if dtype not in (None, "float32", "float64"):
        raise ValueError(f"dtype must be None, 'float32' or 'float64', got {dtype!r}")
    path = os.fspath(path)
    try:
        nodes, name, shape, data_format, notes = _read(path, config, input_shape)
    except (ModelFormatError, FileNotFoundError):
        raise
    except _READ_ERRORS as error:  # h5py, json or zip failures on damaged files, malformed configs
        raise ModelFormatError(f"{path}: damaged Keras file or malformed model config ({type(error).__name__}: "
                               f"{error})") from None
    nodes = [Node(node.name, layer, node.inputs)
             for node, layer in zip(nodes, _common_dtype([node.layer for node in nodes], dtype))]
    metadata_fields = dict(metadata or {})
    metadata_fields.setdefault("name", name)
    metadata_fields.setdefault("description", "; ".join(notes))
    model_shape = None
    if shape is not None:
        model_shape = (shape[2], shape[0], shape[1]) if len(shape) == 3 and data_format == "channels_last" else shape
    try:
        model = Graph(nodes, ModelMetadata(input_shape=model_shape, **metadata_fields))
    except GraphError as error:
        raise ModelFormatError(f"{path}: the Keras layers do not form one network: {error}") from None
    if model.is_chain:
        model = Sequential(model.layers, model.metadata)
    check_model(model, path)
    if backend != "numpy":
        model = model.to(backend)
    return model


def _read(path: str, config: Any, input_shape: tuple[int, ...] | None
          ) -> tuple[list[Node], str, tuple[int, ...] | None, str, list[str]]:
    """(nodes, model name, Keras input shape, data format, notes) of the Keras file at ``path``."""
    if path.lower().endswith(".keras") and os.path.isfile(path) and not zipfile.is_zipfile(path):
        raise ModelFormatError(f"{path}: a .keras file must be a zip archive; this one is not (truncated?)")
    with KerasFile(path) as source:
        architecture = parse_config(config, path) if config is not None else source.config
        if architecture is None:
            raise ModelFormatError(f"{path}: this {source.kind} file holds weights only; pass the architecture "
                                   "as config= (model.to_json(), or a .keras file) or --config on the command line")
        name, specs, output = _layer_specs(architecture, path)
        formats = {spec.config.get("data_format") for spec in specs} - {None}
        data_format = formats.pop() if len(formats) == 1 else "channels_last"
        shape = tuple(int(v) for v in input_shape) if input_shape is not None else _input_shape(specs)
        if shape is None:
            shape = _build_input_shape(architecture)
        if shape is not None and math.prod(shape) > validate.MAX_ACTIVATION_ELEMENTS:
            raise ModelFormatError(f"{path}: the input shape {shape} has {math.prod(shape):,} elements per sample, "
                                   "more than lrpcore.io.validate.MAX_ACTIVATION_ELEMENTS = "
                                   f"{validate.MAX_ACTIVATION_ELEMENTS:,}")
        converter = _Converter(source, specs, shape, data_format, output)
        nodes, final = converter.convert()
        if nodes[-1].name != final:
            raise ModelFormatError(f"{path}: the model's output {final!r} is not the last layer it computes")
        notes = [f"converted from Keras file {os.path.basename(path)} ({source.kind}); inputs are NCHW "
                 "(transpose Keras NHWC arrays with x.transpose(0, 3, 1, 2))"] + converter.notes
    return nodes, name, shape, data_format, notes


def _build_input_shape(architecture: dict) -> tuple[int, ...] | None:
    """Input shape from the first layer's ``build_config`` (Keras 3 ``.keras`` configs)."""
    body = architecture.get("config")
    layers = body.get("layers") if isinstance(body, dict) else body
    for layer in layers or []:
        build = layer.get("build_config") if isinstance(layer, dict) else None
        shape = build.get("input_shape") if isinstance(build, dict) else None
        if isinstance(shape, list) and len(shape) >= 2 and all(isinstance(v, int) for v in shape[1:]):
            return tuple(int(v) for v in shape[1:])
        if isinstance(layer, dict) and layer.get("class_name") != "InputLayer":
            break
    return None


def _common_dtype(layers: list[Layer], dtype: str | None) -> list[Layer]:
    """Cast all layers to one dtype: ``dtype`` if given, float64 if every array is, else float32."""
    dtypes = {numpy.dtype(value.dtype) for layer in layers for value in layer.parameters().values()}
    target = dtype or ("float64" if dtypes == {numpy.dtype(numpy.float64)} else "float32")
    if dtypes == {numpy.dtype(target)}:
        return layers
    return [layer.astype(target) if layer.parameters() else layer for layer in layers]
