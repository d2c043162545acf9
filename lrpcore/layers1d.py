"""1-D layers for sequences (N, C, L): ``Conv1d``, ``MaxPool1d``, ``AvgPool1d``.

A 1-D sequence is a 2-D image of height 1: (N, C, L) is viewed as (N, C, 1, L), a
kernel of width k as a 1×k kernel, and the 2-D window machinery of :mod:`lrpcore._conv`
and :class:`lrpcore.layers.Conv2d` does the work. Nothing is copied by the view, and
the two code paths cannot drift apart.

The interface is the one of the 2-D layers (see :mod:`lrpcore.layers`):

- ``Conv1d``: weight (out, in, k), bias (out,), integer ``stride`` and ``padding``;
  cross-correlation, as ``torch.nn.Conv1d``;
- ``AvgPool1d``: window weights 1/k, shape (k, 1) (zero padding counted, as PyTorch's default);
- ``MaxPool1d``: linearised around the input like :class:`~lrpcore.layers.MaxPool2d`, with
  selection weights of shape (N, C, k, Lo) in the modes ``"winner"``, ``"winner_first"``, ``"sum"``.

So every LRP rule, :func:`lrpcore.relevance_matrix` and the trace work on sequence models
unchanged.
"""
from __future__ import annotations

import math
from typing import Any

from . import _conv
from .backend import get_namespace
from .errors import ShapeError
from .layers import Conv2d, LinearLayer, MaxPoolMode, _WeightedLayer

__all__ = ["Conv1d", "AvgPool1d", "MaxPool1d"]


def _positive_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{name} of a 1-D layer must be an int or a 1-tuple, got {value!r}")
        value = value[0]
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


def _as_plane(x: Any) -> Any:
    """(N, C, L) → (N, C, 1, L): a sequence seen as an image of height 1."""
    xp = get_namespace(x)
    return xp.reshape(x, (*x.shape[:-1], 1, x.shape[-1]))


def _as_sequence(x: Any) -> Any:
    """(N, C, 1, L) → (N, C, L)."""
    xp = get_namespace(x)
    return xp.reshape(x, (*x.shape[:-2], x.shape[-1]))


class Conv1d(_WeightedLayer):
    """1-D convolution (cross-correlation) with ``weight`` (out, in, k), ``bias`` (out,), ``stride``, ``padding``.

    y[n, o, t] = b[o] + Σ_c Σ_j w[o, c, j] · x[n, c, t·stride + j − padding]  (zero padding),
    computed as a :class:`~lrpcore.layers.Conv2d` with kernel 1×k on the (N, C, 1, L) view.
    """

    input_rank = 3
    weight_layout = "(out, in, k)"

    def __init__(self, weight: Any, bias: Any | None = None, stride: int = 1, padding: int = 0):
        self._set_weight_and_bias(weight, bias)
        self.stride = _positive_int(stride, "Conv1d stride", 1)
        self.padding = _positive_int(padding, "Conv1d padding", 0)

    @property
    def in_channels(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])

    @property
    def kernel_size(self) -> int:
        return int(self.weight.shape[2])

    def hyperparameters(self) -> dict[str, Any]:
        return {"stride": self.stride, "padding": self.padding}

    def describe(self) -> str:
        return (f"Conv1d({self.in_channels}→{self.out_channels}, k={self.kernel_size}, "
                f"s={self.stride}, p={self.padding})")

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        _, length = input_shape
        return (self.out_channels, _conv.output_size(length, self.kernel_size, self.stride, self.padding))

    def _check(self, x: Any) -> None:
        self._check_rank(x, (3,), f"(N, {self.in_channels}, L)")
        if x.shape[1] != self.in_channels:
            raise ShapeError(f"{self.describe()} expects {self.in_channels} input channels, "
                             f"got shape {tuple(x.shape)}")
        if self.output_shape(tuple(x.shape[1:]))[1] < 1:
            raise ShapeError(f"{self.describe()}: input of shape {tuple(x.shape)} is shorter than the kernel")

    def _plane(self, weight: Any) -> Conv2d:
        """The equivalent 2-D convolution (kernel 1×k) for a substituted ``weight`` (out, in, k)."""
        return Conv2d(_as_plane(weight), None, stride=(1, self.stride), padding=(0, self.padding))

    def linear_forward(self, x: Any, weight: Any, bias: Any | None = None) -> Any:
        self._check(x)
        return _as_sequence(self._plane(weight).linear_forward(_as_plane(x), _as_plane(weight), bias))

    def linear_transpose(self, s: Any, weight: Any, input_shape: tuple[int, ...]) -> Any:
        batch, channels, length = input_shape
        plane_shape = (batch, channels, 1, length)
        return _as_sequence(self._plane(weight).linear_transpose(_as_plane(s), _as_plane(weight), plane_shape))


class _Pool1d(LinearLayer):
    """Shared window handling of the 1-D pooling layers: kernel, stride (default: kernel), padding."""

    input_rank = 3

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0):
        self.kernel_size = _positive_int(kernel_size, f"{type(self).__name__} kernel_size", 1)
        self.stride = _positive_int(stride if stride is not None else self.kernel_size,
                                    f"{type(self).__name__} stride", 1)
        self.padding = _positive_int(padding, f"{type(self).__name__} padding", 0)

    def hyperparameters(self) -> dict[str, Any]:
        return {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding}

    def describe(self) -> str:
        return f"{type(self).__name__}(k={self.kernel_size}, s={self.stride})"

    @property
    def kernel_area(self) -> int:
        return self.kernel_size

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels, length = input_shape
        return (channels, _conv.output_size(length, self.kernel_size, self.stride, self.padding))

    def _check(self, x: Any) -> None:
        self._check_rank(x, (3,), "(N, C, L)")
        if self.output_shape(tuple(x.shape[1:]))[1] < 1:
            raise ShapeError(f"{self.describe()}: input of shape {tuple(x.shape)} is shorter than the window")

    def _windows(self, x: Any, pad_value: float = 0.0) -> Any:
        """All windows of ``x`` (N, C, L) as columns (N, C, k, Lo)."""
        columns = _conv.unfold(_as_plane(x), (1, self.kernel_size), (1, self.stride), (0, self.padding),
                               pad_value=pad_value)
        return _as_sequence(columns)

    def _constant_weight(self, x: Any, value: float) -> Any:
        xp = get_namespace(x)
        return xp.full((self.kernel_size, 1), value, dtype=x.dtype, device=x.device)

    def linear_forward(self, x: Any, weight: Any, bias: Any | None = None) -> Any:
        """Σ over each window of x·w, with ``weight`` (k, 1) or (N, C, k, Lo)."""
        self._check(x)
        xp = get_namespace(x, weight)
        return xp.sum(self._windows(x) * weight, axis=2)

    def linear_transpose(self, s: Any, weight: Any, input_shape: tuple[int, ...]) -> Any:
        xp = get_namespace(s, weight)
        columns = _as_plane(xp.expand_dims(s, axis=2) * weight)           # (N, C, k, 1, Lo)
        batch, channels, length = input_shape
        folded = _conv.fold(columns, (batch, channels, 1, length), (1, self.kernel_size), (1, self.stride),
                            (0, self.padding))
        return _as_sequence(folded)


class AvgPool1d(_Pool1d):
    """Average pooling over windows of k positions: a linear layer with window weights 1/k and no bias."""

    def relevance_weight(self, x: Any, maxpool: MaxPoolMode = "winner") -> Any:
        return self._constant_weight(x, 1.0 / self.kernel_size)


class MaxPool1d(_Pool1d):
    """Max pooling over windows of k positions, linearised around the input for relevance.

    ``relevance_weight(x, mode)`` is the local linear map that reproduces the output, as for
    :class:`~lrpcore.layers.MaxPool2d`: ``"winner"`` splits a window's relevance equally among
    its maxima, ``"winner_first"`` gives all of it to the first maximum (autograd's choice),
    ``"sum"`` treats the window as sum pooling (relevance in proportion to the activations).
    Padding is −inf, so padded positions never win.
    """

    def forward(self, x: Any) -> Any:
        self._check(x)
        xp = get_namespace(x)
        return xp.max(self._windows(x, pad_value=-math.inf), axis=2)

    def relevance_weight(self, x: Any, maxpool: MaxPoolMode = "winner") -> Any:
        xp = get_namespace(x)
        if maxpool == "sum":
            return self._constant_weight(x, 1.0)
        if maxpool not in ("winner", "winner_first"):
            raise ValueError(f"unknown max-pool mode {maxpool!r}; expected 'winner', 'winner_first' or 'sum'")
        columns = self._windows(x, pad_value=-math.inf)
        winners = xp.astype(columns == xp.max(columns, axis=2, keepdims=True), x.dtype)
        if maxpool == "winner":
            return winners / xp.sum(winners, axis=2, keepdims=True)
        earlier = xp.cumulative_sum(winners, axis=2) - winners
        return winners * xp.astype(earlier == 0, x.dtype)
