"""Plain layer objects with explicit forward, substituted-parameter forward and transposed maps.

Conventions follow PyTorch: batches first, images NCHW, a dense weight is (out, in),
a convolution weight is (out, in, kh, kw). No autograd is used anywhere; every map
an LRP rule needs is written as array operations here:

- ``forward(x)``: the layer as the network computes it.
- ``linear_forward(x, weight, bias)``: for layers that are linear in their input
  (``Dense``, ``Conv2d``, ``AvgPool2d`` and the locally linear ``MaxPool2d``), the
  same map with substituted parameters. LRP rules call it with ρ(w), ρ(b)
  (the "ρ-modified forward" of Montavon et al. 2019, eq. 10.2).
- ``linear_transpose(s, weight, input_shape)``: the adjoint of that map without bias,
  c = f_ρᵀ(s), the third of the four LRP steps.
- ``gradient(x, grad_output)``: the vector-Jacobian product used for gradient×input.

Pooling layers expose their window weights like a depthwise convolution with weight
of shape (K, 1, 1) (AvgPool: 1/K, sum pooling: 1) or, for max pooling, a
data-dependent selection weight of shape (N, C, K, Ho, Wo); rules modify these like
any other weight.
"""
from __future__ import annotations

import math
from typing import Any, Literal

from . import _conv
from .backend import get_namespace, to_backend
from .errors import ShapeError

__all__ = [
    "Layer",
    "LinearLayer",
    "Dense",
    "Conv2d",
    "AvgPool2d",
    "MaxPool2d",
    "ReLU",
    "Flatten",
    "BatchNorm1d",
    "BatchNorm2d",
    "Dropout",
]

#: Upper bound, in bytes, on the im2col buffer built at once: batches are cut into blocks of samples, or of
#: output rows of one sample. The matrix products run per sample anyway; blocks this size keep them large
#: and were fastest on VGG-16 (tools/BENCHMARKS.md), and keep explain's peak memory low.
COLUMN_BUDGET_BYTES = 32 * 2**20

MaxPoolMode = Literal["winner", "winner_first", "sum"]


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    if isinstance(value, int):
        pair = (value, value)
    else:
        pair = tuple(int(v) for v in value)
    if len(pair) != 2 or any(v < 0 for v in pair):
        raise ValueError(f"{name} must be a non-negative int or a pair of them, got {value!r}")
    return pair  # type: ignore[return-value]


def _itemsize(array: Any) -> int:
    return get_namespace(array).finfo(array.dtype).bits // 8


class Layer:
    """Base class: a layer maps a batch of inputs to a batch of outputs."""

    #: True for layers that implement ``linear_forward`` / ``linear_transpose``.
    is_linear: bool = False
    #: True for layers with learned parameters (weights); composites use it for "first layer".
    has_weights: bool = False

    def forward(self, x: Any) -> Any:
        raise NotImplementedError

    def __call__(self, x: Any) -> Any:
        return self.forward(x)

    def gradient(self, x: Any, grad_output: Any) -> Any:
        """Vector-Jacobian product: d(⟨grad_output, f(x)⟩)/dx."""
        raise NotImplementedError

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of one sample's output for one sample's ``input_shape`` (no batch axis)."""
        return tuple(input_shape)

    def parameters(self) -> dict[str, Any]:
        """Named arrays this layer holds (weights, biases, running statistics)."""
        return {}

    def hyperparameters(self) -> dict[str, Any]:
        """Named non-array settings (kernel size, stride...) that reconstruct the layer with ``parameters``."""
        return {}

    def _replace_parameters(self, converted: dict[str, Any]) -> "Layer":
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.__dict__.update(converted)
        return clone

    def to(self, backend: Any) -> "Layer":
        """A copy of the layer with its arrays on ``backend`` ("numpy", "cupy" or a namespace)."""
        return self._replace_parameters({name: to_backend(value, backend)
                                         for name, value in self.parameters().items()})

    def astype(self, dtype: Any) -> "Layer":
        """A copy of the layer with its arrays cast to ``dtype`` (e.g. "float64")."""
        converted = {}
        for name, value in self.parameters().items():
            xp = get_namespace(value)
            target = getattr(xp, dtype) if isinstance(dtype, str) else dtype
            converted[name] = xp.astype(value, target)
        return self._replace_parameters(converted)

    @property
    def dtype(self) -> Any:
        params = self.parameters()
        return next(iter(params.values())).dtype if params else None

    def describe(self) -> str:
        """One line with the layer type and its hyperparameters, e.g. ``Conv2d(3→64, k=3, s=1, p=1)``."""
        settings = ", ".join(f"{key}={value}" for key, value in self.hyperparameters().items())
        return f"{type(self).__name__}({settings})"

    def __repr__(self) -> str:
        return self.describe()

    def _check_rank(self, x: Any, ranks: tuple[int, ...], what: str) -> None:
        if x.ndim not in ranks:
            raise ShapeError(f"{self.describe()} expects {what}, got an array of shape {tuple(x.shape)}")


class LinearLayer(Layer):
    """A layer that is linear in its input up to a bias: f(x) = W x + b.

    Subclasses implement the substituted forward and the transposed map; LRP rules
    are written once against these two methods.
    """

    is_linear = True

    def forward(self, x: Any) -> Any:
        return self.linear_forward(x, self.relevance_weight(x), self.relevance_bias())

    def relevance_weight(self, x: Any, maxpool: MaxPoolMode = "winner") -> Any:
        """The weight array W the LRP rules modify (ρ(W)); for max pooling it depends on ``x``."""
        return self.weight  # type: ignore[attr-defined]

    def relevance_bias(self) -> Any | None:
        """The bias b the rules modify, or None for bias-free layers (pooling)."""
        return getattr(self, "bias", None)

    def linear_forward(self, x: Any, weight: Any, bias: Any | None = None) -> Any:
        raise NotImplementedError

    def linear_transpose(self, s: Any, weight: Any, input_shape: tuple[int, ...]) -> Any:
        raise NotImplementedError

    def gradient(self, x: Any, grad_output: Any) -> Any:
        return self.linear_transpose(grad_output, self.relevance_weight(x, "winner_first"), tuple(x.shape))


class _WeightedLayer(LinearLayer):
    """A linear layer with a learned ``weight`` (out, in, ...) and ``bias`` (out,): Dense and the convolutions."""

    has_weights = True
    #: The weight's axes, as error messages name them, e.g. "(out, in)".
    weight_layout = ""

    def _set_weight_and_bias(self, weight: Any, bias: Any | None) -> None:
        """Check the shapes (a missing bias becomes zeros) and keep both arrays."""
        name = type(self).__name__
        if weight.ndim != self.weight_layout.count(",") + 1:
            raise ShapeError(f"{name} weight must be {self.weight_layout}, got shape {tuple(weight.shape)}")
        xp = get_namespace(weight)
        if bias is None:
            bias = xp.zeros((weight.shape[0],), dtype=weight.dtype, device=weight.device)
        if tuple(bias.shape) != (weight.shape[0],):
            raise ShapeError(f"{name} bias must be ({weight.shape[0]},), got shape {tuple(bias.shape)}")
        self.weight = weight
        self.bias = bias

    def parameters(self) -> dict[str, Any]:
        return {"weight": self.weight, "bias": self.bias}


class Dense(_WeightedLayer):
    """Fully connected layer y = x Wᵀ + b with ``weight`` (out, in) and ``bias`` (out,)."""

    input_rank = 2
    weight_layout = "(out, in)"

    def __init__(self, weight: Any, bias: Any | None = None):
        self._set_weight_and_bias(weight, bias)

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])

    def hyperparameters(self) -> dict[str, Any]:
        return {"in_features": self.in_features, "out_features": self.out_features}

    def describe(self) -> str:
        return f"Dense({self.in_features}→{self.out_features})"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (self.out_features,)

    def _check(self, x: Any) -> None:
        self._check_rank(x, (2,), f"(N, {self.in_features})")
        if x.shape[1] != self.in_features:
            raise ShapeError(f"{self.describe()} expects (N, {self.in_features}), got shape {tuple(x.shape)}")

    def linear_forward(self, x: Any, weight: Any, bias: Any | None = None) -> Any:
        self._check(x)
        xp = get_namespace(x, weight)
        out = xp.matmul(x, xp.matrix_transpose(weight))
        return out if bias is None else out + bias

    def linear_transpose(self, s: Any, weight: Any, input_shape: tuple[int, ...]) -> Any:
        xp = get_namespace(s, weight)
        return xp.matmul(s, weight)


class Conv2d(_WeightedLayer):
    """2-D convolution (cross-correlation, as PyTorch) through im2col and one GEMM per sample.

    ``weight`` (out, in, kh, kw), ``bias`` (out,), integer or pair ``stride`` and ``padding``.
    Batches are processed in chunks so the column buffer stays below ``COLUMN_BUDGET_BYTES``.
    """

    input_rank = 4
    weight_layout = "(out, in, kh, kw)"

    def __init__(self, weight: Any, bias: Any | None = None, stride: int | tuple[int, int] = 1,
                 padding: int | tuple[int, int] = 0):
        self._set_weight_and_bias(weight, bias)
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        if min(self.stride) < 1:
            raise ValueError(f"Conv2d stride must be ≥ 1, got {stride!r}")

    @property
    def in_channels(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])

    @property
    def kernel_size(self) -> tuple[int, int]:
        return (int(self.weight.shape[2]), int(self.weight.shape[3]))

    def hyperparameters(self) -> dict[str, Any]:
        return {"stride": list(self.stride), "padding": list(self.padding)}

    def describe(self) -> str:
        kh, kw = self.kernel_size
        return (f"Conv2d({self.in_channels}→{self.out_channels}, k={kh}x{kw}, "
                f"s={self.stride[0]}, p={self.padding[0]})")

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        _, height, width = input_shape
        return (self.out_channels,
                _conv.output_size(height, self.kernel_size[0], self.stride[0], self.padding[0]),
                _conv.output_size(width, self.kernel_size[1], self.stride[1], self.padding[1]))

    def _check(self, x: Any) -> None:
        self._check_rank(x, (4,), f"(N, {self.in_channels}, H, W)")
        if x.shape[1] != self.in_channels:
            raise ShapeError(f"{self.describe()} expects {self.in_channels} input channels, "
                             f"got shape {tuple(x.shape)}")
        out = self.output_shape(tuple(x.shape[1:]))
        if out[1] < 1 or out[2] < 1:
            raise ShapeError(f"{self.describe()}: input of shape {tuple(x.shape)} is smaller than the kernel")

    def _chunk(self, per_sample_bytes: int) -> int:
        return max(1, COLUMN_BUDGET_BYTES // max(1, per_sample_bytes))

    def linear_forward(self, x: Any, weight: Any, bias: Any | None = None) -> Any:
        self._check(x)
        xp = get_namespace(x, weight)
        out = _conv.correlate(x, weight, self.stride, self.padding, COLUMN_BUDGET_BYTES)
        if bias is not None:
            out += xp.reshape(bias, (1, weight.shape[0], 1, 1))      # out is a fresh array: add in place
        return out

    def linear_transpose(self, s: Any, weight: Any, input_shape: tuple[int, ...]) -> Any:
        """c = Wᵀ s, the adjoint of the convolution.

        Two exact ways, chosen by shape because their costs differ (measured on VGG-16, see
        tools/BENCHMARKS.md): GEMMs (C·kh·kw × O) @ (O × Ho·Wo) whose columns col2im adds back into
        their windows, or, with stride 1, a correlation of s padded by k − 1 − p with the kernel
        flipped in both spatial axes and its channels swapped (the transposed-convolution identity).
        The first writes a C·kh·kw-row column matrix from only O inputs, which is slow where the
        layer does not widen (C ≥ O); there the correlation is used.
        """
        xp = get_namespace(s, weight)
        (kernel_h, kernel_w), (pad_h, pad_w) = self.kernel_size, self.padding
        if self.stride == (1, 1) and pad_h < kernel_h and pad_w < kernel_w and weight.shape[1] >= weight.shape[0]:
            flipped = xp.flip(xp.permute_dims(weight, (1, 0, 2, 3)), axis=(2, 3))
            return _conv.correlate(s, flipped, (1, 1), (kernel_h - 1 - pad_h, kernel_w - 1 - pad_w),
                                   COLUMN_BUDGET_BYTES)
        return _conv.correlate_transpose(s, weight, tuple(input_shape), self.stride, self.padding,
                                         COLUMN_BUDGET_BYTES)


class _Pool2d(LinearLayer):
    """Shared window handling of the 2-D pooling layers (kernel, stride, padding, windows)."""

    input_rank = 4

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0):
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride if stride is not None else kernel_size, "stride")
        self.padding = _pair(padding, "padding")
        if min(self.kernel_size) < 1 or min(self.stride) < 1:
            raise ValueError(f"{type(self).__name__}: kernel_size and stride must be ≥ 1")

    def hyperparameters(self) -> dict[str, Any]:
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": list(self.padding)}

    def describe(self) -> str:
        return f"{type(self).__name__}(k={self.kernel_size[0]}x{self.kernel_size[1]}, s={self.stride[0]})"

    @property
    def kernel_area(self) -> int:
        return self.kernel_size[0] * self.kernel_size[1]

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels, height, width = input_shape
        return (channels,
                _conv.output_size(height, self.kernel_size[0], self.stride[0], self.padding[0]),
                _conv.output_size(width, self.kernel_size[1], self.stride[1], self.padding[1]))

    def _check(self, x: Any) -> None:
        self._check_rank(x, (4,), "(N, C, H, W)")
        out = self.output_shape(tuple(x.shape[1:]))
        if out[1] < 1 or out[2] < 1:
            raise ShapeError(f"{self.describe()}: input of shape {tuple(x.shape)} is smaller than the window")

    def _constant_weight(self, x: Any, value: float) -> Any:
        xp = get_namespace(x)
        return xp.full((self.kernel_area, 1, 1), value, dtype=x.dtype, device=x.device)

    @staticmethod
    def _window_weight(weight: Any, index: int) -> Any:
        """The weight of window position ``index``: from a (K, 1, 1) weight or a per-window (N, C, K, Ho, Wo) one."""
        return weight[index, ...] if weight.ndim == 3 else weight[:, :, index, ...]

    def linear_forward(self, x: Any, weight: Any, bias: Any | None = None) -> Any:
        """Σ over each window of x·w, with ``weight`` (K, 1, 1) or (N, C, K, Ho, Wo), summed window position
        by window position (no column array). Zero padding: a padded position carries weight 0 (for max
        pooling, −∞ padding would give −∞·0 = NaN)."""
        self._check(x)
        views = _conv.windows(_conv.pad2d(x, self.padding), self.kernel_size, self.stride)
        total = None
        for index, view in enumerate(views):
            term = view * self._window_weight(weight, index)
            total = term if total is None else total + term
        return total

    def linear_transpose(self, s: Any, weight: Any, input_shape: tuple[int, ...]) -> Any:
        return _conv.fold_windows(lambda index: s * self._window_weight(weight, index), tuple(input_shape),
                                  self.kernel_size, self.stride, self.padding, s.dtype, s.device)


class AvgPool2d(_Pool2d):
    """Average pooling, a linear layer with window weights 1/K and no bias (zero padding counted)."""

    def relevance_weight(self, x: Any, maxpool: MaxPoolMode = "winner") -> Any:
        return self._constant_weight(x, 1.0 / self.kernel_area)


class MaxPool2d(_Pool2d):
    """Max pooling. For relevance it is linearised around the input (section 10.3.2 of Montavon et al. 2019).

    ``relevance_weight(x, mode)`` gives the local linear map that reproduces the output:
    - ``"winner"`` (default): weight 1/(number of maxima) on each maximum of the window,
      so relevance goes to the winner and ties are split equally;
    - ``"winner_first"``: weight 1 on the first maximum only (what autograd's max-pool
      gradient does, and so zennit);
    - ``"sum"``: weight 1 on every window entry: max pooling treated as sum pooling,
      so relevance is spread in proportion to the activations.
    Padding uses -inf, as PyTorch does, so padded positions never win.
    """

    def forward(self, x: Any) -> Any:
        self._check(x)
        xp = get_namespace(x)
        # element-wise maximum over the window views: no (N, C, K, Ho, Wo) column array is built
        views = _conv.windows(_conv.pad2d(x, self.padding, -math.inf), self.kernel_size, self.stride)
        result = views[0]
        for view in views[1:]:
            result = xp.maximum(result, view)
        return result if len(views) > 1 else xp.asarray(result, copy=True)

    def relevance_weight(self, x: Any, maxpool: MaxPoolMode = "winner") -> Any:
        xp = get_namespace(x)
        if maxpool == "sum":
            return self._constant_weight(x, 1.0)
        if maxpool not in ("winner", "winner_first"):
            raise ValueError(f"unknown max-pool mode {maxpool!r}; expected 'winner', 'winner_first' or 'sum'")
        views = _conv.windows(_conv.pad2d(x, self.padding, -math.inf), self.kernel_size, self.stride)
        maximum = views[0]
        for view in views[1:]:
            maximum = xp.maximum(maximum, view)
        hits = [view == maximum for view in views]          # the window positions holding the maximum
        if maxpool == "winner":
            winners = xp.astype(xp.stack(hits, axis=2), x.dtype)
            return winners / xp.sum(winners, axis=2, keepdims=True)
        taken = hits[0]                                     # keep only the first maximum of each window
        first = [hits[0]]
        for hit in hits[1:]:
            first.append(xp.logical_and(hit, xp.logical_not(taken)))
            taken = xp.logical_or(taken, hit)
        return xp.astype(xp.stack(first, axis=2), x.dtype)



class ReLU(Layer):
    """Rectified linear unit max(0, x); relevance passes through it unchanged."""

    def forward(self, x: Any) -> Any:
        xp = get_namespace(x)
        return xp.clip(x, min=0.0)

    def gradient(self, x: Any, grad_output: Any) -> Any:
        xp = get_namespace(x)
        return xp.where(x > 0, grad_output, xp.zeros_like(grad_output))

    def describe(self) -> str:
        return "ReLU()"


class Dropout(Layer):
    """Dropout at inference time: the identity. Kept so layer indices match the source network."""

    def __init__(self, p: float = 0.5):
        self.p = float(p)

    def hyperparameters(self) -> dict[str, Any]:
        return {"p": self.p}

    def forward(self, x: Any) -> Any:
        return x

    def gradient(self, x: Any, grad_output: Any) -> Any:
        return grad_output


class Flatten(Layer):
    """Reshape (N, C, H, W) → (N, C·H·W) in C order, as ``torch.flatten(x, 1)``."""

    def forward(self, x: Any) -> Any:
        xp = get_namespace(x)
        return xp.reshape(x, (x.shape[0], -1))

    def gradient(self, x: Any, grad_output: Any) -> Any:
        xp = get_namespace(grad_output)
        return xp.reshape(grad_output, tuple(x.shape))

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (math.prod(input_shape),)

    def describe(self) -> str:
        return "Flatten()"


class _BatchNorm(Layer):
    """Inference-time batch normalisation y = (x − μ)/sqrt(σ² + eps)·γ + β, per channel (axis 1)."""

    _ranks: tuple[int, ...] = ()

    def __init__(self, running_mean: Any, running_var: Any, weight: Any | None = None, bias: Any | None = None,
                 eps: float = 1e-5):
        xp = get_namespace(running_mean)
        features = running_mean.shape[0]
        for name, array in (("running_var", running_var), ("weight", weight), ("bias", bias)):
            if array is not None and tuple(array.shape) != (features,):
                raise ShapeError(f"{type(self).__name__} {name} must be ({features},), got {tuple(array.shape)}")
        self.running_mean = running_mean
        self.running_var = running_var
        self.weight = weight if weight is not None else xp.ones_like(running_mean)
        self.bias = bias if bias is not None else xp.zeros_like(running_mean)
        self.eps = float(eps)

    @property
    def num_features(self) -> int:
        return int(self.running_mean.shape[0])

    def parameters(self) -> dict[str, Any]:
        return {"weight": self.weight, "bias": self.bias,
                "running_mean": self.running_mean, "running_var": self.running_var}

    def hyperparameters(self) -> dict[str, Any]:
        return {"num_features": self.num_features, "eps": self.eps}

    def scale_shift(self) -> tuple[Any, Any]:
        """(scale, shift) with y = scale·x + shift per channel; used to fold the layer away."""
        xp = get_namespace(self.running_var)
        scale = self.weight / xp.sqrt(self.running_var + self.eps)
        return scale, self.bias - self.running_mean * scale

    def _broadcast(self, vector: Any, ndim: int) -> Any:
        xp = get_namespace(vector)
        return xp.reshape(vector, (1, -1) + (1,) * (ndim - 2))

    def forward(self, x: Any) -> Any:
        self._check_rank(x, self._ranks, f"rank {self._ranks} input with {self.num_features} channels")
        if x.shape[1] != self.num_features:
            raise ShapeError(f"{self.describe()} expects {self.num_features} channels, got shape {tuple(x.shape)}")
        scale, shift = self.scale_shift()
        return x * self._broadcast(scale, x.ndim) + self._broadcast(shift, x.ndim)

    def gradient(self, x: Any, grad_output: Any) -> Any:
        scale, _ = self.scale_shift()
        return grad_output * self._broadcast(scale, x.ndim)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, F) or (N, C, L) inputs, inference form."""

    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs, inference form."""

    _ranks = (4,)


# The 1-D sequence layers live in their own module; re-exported here so all layers import from one place.
from .layers1d import AvgPool1d, Conv1d, MaxPool1d  # noqa: E402  (after the classes layers1d builds on)
