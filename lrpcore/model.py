"""``Sequential``: an ordered list of layers with the metadata an explanation needs, and ``canonize``."""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterator, Sequence

from .backend import get_namespace, is_floating, to_backend
from .errors import DTypeError, InputValueError, LRPError, ShapeError
from .layers import _BatchNorm, BatchNorm1d, BatchNorm2d, Conv2d, Dense, Layer

__all__ = ["ModelMetadata", "Sequential", "canonize"]


@dataclasses.dataclass
class ModelMetadata:
    """What a model knows about its inputs.

    ``input_shape``: one sample's shape (C, H, W) or (F,), without the batch axis.
    ``value_range``: (low, high) of *raw* input values before preprocessing (e.g. (0, 1) for images).
    ``mean``/``std``: per-channel preprocessing, model input = (raw − mean) / std.
    ``class_names``: one name per output.
    """

    input_shape: tuple[int, ...] | None = None
    value_range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    class_names: tuple[str, ...] | None = None
    name: str = "model"
    description: str = ""

    @staticmethod
    def _channel_vector(values: tuple[float, ...] | None, default: float, ndim: int) -> Any:
        """A NumPy array of per-channel ``values`` shaped to broadcast over (N, C, ...) inputs."""
        import numpy

        array = numpy.asarray(values if values is not None else (default,), dtype=numpy.float64)
        return array.reshape((1, -1) + (1,) * max(0, ndim - 2))

    def preprocess(self, raw: Any) -> Any:
        """Map raw inputs in ``value_range`` to model inputs: (raw − mean) / std, per channel."""
        if self.mean is None and self.std is None:
            return raw
        xp = get_namespace(raw)
        mean = xp.asarray(self._channel_vector(self.mean, 0.0, raw.ndim), dtype=raw.dtype)
        std = xp.asarray(self._channel_vector(self.std, 1.0, raw.ndim), dtype=raw.dtype)
        return (raw - mean) / std

    def deprocess(self, model_input: Any) -> Any:
        """Inverse of :meth:`preprocess`: model inputs back to raw values."""
        if self.mean is None and self.std is None:
            return model_input
        xp = get_namespace(model_input)
        mean = xp.asarray(self._channel_vector(self.mean, 0.0, model_input.ndim), dtype=model_input.dtype)
        std = xp.asarray(self._channel_vector(self.std, 1.0, model_input.ndim), dtype=model_input.dtype)
        return model_input * std + mean

    def input_bounds(self) -> tuple[Any, Any]:
        """(low, high) of the *model input* implied by ``value_range`` and preprocessing (for z^B)."""
        import numpy

        ndim = 1 + len(self.input_shape) if self.input_shape else 4
        low = numpy.full((1,) * ndim, self.value_range[0], dtype=numpy.float64)
        high = numpy.full((1,) * ndim, self.value_range[1], dtype=numpy.float64)
        return self.preprocess(low), self.preprocess(high)


class Sequential:
    """A feed-forward network: ``layers[0]`` sees the input, ``layers[-1]`` produces the scores.

    Layer indices (positions in ``layers``) are what composites refer to, so keep
    non-parametric layers (ReLU, Dropout, Flatten) in the list as the source network has them.
    """

    def __init__(self, layers: Sequence[Layer], metadata: ModelMetadata | None = None):
        layers = list(layers)
        for index, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {index} is {type(layer).__name__}, not an lrpcore.layers.Layer")
        if not layers:
            raise ValueError("a Sequential needs at least one layer")
        self.layers: list[Layer] = layers
        self.metadata = metadata if metadata is not None else ModelMetadata()

    # --- container protocol -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return Sequential(self.layers[index], dataclasses.replace(self.metadata))
        return self.layers[index]

    def __repr__(self) -> str:
        return f"Sequential({len(self)} layers, name={self.metadata.name!r})"

    # --- arrays ---------------------------------------------------------------------------------
    @property
    def dtype(self) -> Any:
        for layer in self.layers:
            if layer.dtype is not None:
                return layer.dtype
        return None

    def namespace(self) -> Any:
        """The array namespace the model's weights live in."""
        for layer in self.layers:
            params = layer.parameters()
            if params:
                return get_namespace(next(iter(params.values())))
        import array_api_compat.numpy as namespace
        return namespace

    def to(self, backend: Any) -> "Sequential":
        """A copy of the model with all arrays on ``backend`` ("numpy", "cupy", or a namespace)."""
        return Sequential([layer.to(backend) for layer in self.layers], dataclasses.replace(self.metadata))

    def astype(self, dtype: Any) -> "Sequential":
        """A copy of the model with all arrays cast to ``dtype`` ("float32", "float64", ...)."""
        return Sequential([layer.astype(dtype) for layer in self.layers], dataclasses.replace(self.metadata))

    def prepare_input(self, x: Any) -> Any:
        """Validate ``x`` and cast it to the model's dtype and backend; errors name what is wrong."""
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise DTypeError(f"input must be an array, got {type(x).__name__}")
        try:
            floating = is_floating(x)
        except TypeError:
            floating = False
        if not floating:
            raise DTypeError(f"input dtype {x.dtype} is not a real floating-point type; "
                             "convert images to float (e.g. divide uint8 by 255) first")
        expected = self.metadata.input_shape
        if expected is not None:
            if x.ndim != len(expected) + 1:
                raise ShapeError(f"input must have shape (N, {', '.join(map(str, expected))}), "
                                 f"got rank {x.ndim} array of shape {tuple(x.shape)}")
            if tuple(x.shape[1:]) != tuple(expected):
                raise ShapeError(f"input must have shape (N, {', '.join(map(str, expected))}), "
                                 f"got {tuple(x.shape)}")
        xp = self.namespace()
        if get_namespace(x) is not xp and getattr(get_namespace(x), "__name__", "") != getattr(xp, "__name__", ""):
            x = to_backend(x, xp)
        if self.dtype is not None and x.dtype != self.dtype:
            x = xp.astype(x, self.dtype)
        if not bool(xp.all(xp.isfinite(x))):
            raise InputValueError(f"input of shape {tuple(x.shape)} contains NaN or inf values")
        return x

    # --- computing -------------------------------------------------------------------------------
    def forward(self, x: Any, record: bool = False) -> Any:
        """Run the network. With ``record=True`` return the list [a_0 = x, a_1, ..., a_L] of activations."""
        activations = [x]
        current = x
        for index, layer in enumerate(self.layers):
            try:
                current = layer.forward(current)
            except LRPError as error:
                raise type(error)(f"layer {index} ({layer.describe()}): {error}") from None
            if record:
                activations.append(current)
        return activations if record else current

    __call__ = forward

    def output_shapes(self, input_shape: tuple[int, ...] | None = None) -> list[tuple[int, ...]]:
        """Per-sample output shape of every layer for ``input_shape`` (default: the metadata's)."""
        shape = tuple(input_shape or self.metadata.input_shape or ())
        if not shape:
            raise ValueError("output_shapes needs an input_shape (the model metadata has none)")
        shapes = []
        for layer in self.layers:
            shape = layer.output_shape(shape)
            shapes.append(shape)
        return shapes

    def summary(self, input_shape: tuple[int, ...] | None = None) -> str:
        """A readable table: index, layer, output shape, parameter count."""
        shape = input_shape or self.metadata.input_shape
        shapes = self.output_shapes(shape) if shape else [None] * len(self)
        rows = [("index", "layer", "output shape", "parameters")]
        total = 0
        for index, (layer, out_shape) in enumerate(zip(self.layers, shapes)):
            count = sum(math.prod(value.shape) for value in layer.parameters().values())
            total += count
            rows.append((str(index), layer.describe(), "?" if out_shape is None else str(tuple(out_shape)),
                         f"{count:,}"))
        widths = [max(len(row[column]) for row in rows) for column in range(4)]
        lines = [f"{self.metadata.name}: input {tuple(shape) if shape else '?'}, dtype {self.dtype}"]
        for row_index, row in enumerate(rows):
            lines.append("  ".join(cell.ljust(width) if column < 3 else cell.rjust(width)
                                   for column, (cell, width) in enumerate(zip(row, widths))))
            if row_index == 0:
                lines.append("  ".join("-" * width for width in widths))
        lines.append(f"total parameters: {total:,}")
        return "\n".join(lines)


def _fold_after(linear: Layer, norm: _BatchNorm) -> Layer:
    """Fold y = scale·(W x + b) + shift into one linear layer."""
    xp = get_namespace(linear.weight)
    scale, shift = norm.scale_shift()
    weight = linear.weight * xp.reshape(scale, (-1,) + (1,) * (linear.weight.ndim - 1))
    bias = linear.bias * scale + shift
    if isinstance(linear, Conv2d):
        return Conv2d(weight, bias, stride=linear.stride, padding=linear.padding)
    return Dense(weight, bias)


def _fold_before(norm: _BatchNorm, dense: Dense) -> Dense:
    """Fold W (scale·x + shift) + b into one dense layer (normalised features feed the dense layer)."""
    xp = get_namespace(dense.weight)
    scale, shift = norm.scale_shift()
    if dense.in_features != norm.num_features:
        raise ShapeError(f"cannot fold {norm.describe()} into {dense.describe()}: feature counts differ")
    weight = dense.weight * xp.reshape(scale, (1, -1))
    bias = dense.bias + xp.matmul(dense.weight, shift)
    return Dense(weight, bias)


def canonize(model: Sequential) -> Sequential:
    """Return a copy of ``model`` with every BatchNorm folded into the adjacent linear layer.

    BatchNorm right after a Dense/Conv2d is folded into it (W' = scale·W, b' = scale·b + shift);
    BatchNorm right before a Dense layer is folded into that layer. The folded network computes
    the same function (to rounding; 1e-10 relative in float64), and LRP rules then see one
    linear layer instead of two, as in Montavon et al. 2019 (section 10.3.3, "canonization").
    Layer indices after a folded BatchNorm shift down by one.
    """
    layers = list(model.layers)
    result: list[Layer] = []
    index = 0
    while index < len(layers):
        layer = layers[index]
        if isinstance(layer, (BatchNorm1d, BatchNorm2d)):
            if result and isinstance(result[-1], (Dense, Conv2d)):
                result[-1] = _fold_after(result[-1], layer)
            elif index + 1 < len(layers) and isinstance(layers[index + 1], Dense):
                result.append(_fold_before(layer, layers[index + 1]))
                index += 1
            else:
                raise LRPError(f"cannot fold layer {index} ({layer.describe()}): it neither follows a "
                               "Dense/Conv2d layer nor precedes a Dense layer")
        else:
            result.append(layer)
        index += 1
    return Sequential(result, dataclasses.replace(model.metadata))
