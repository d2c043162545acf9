"""Pooling layers, 2-D and 1-D: average pooling (linear) and max pooling (linearised around its input).

Pooling layers expose their window weights like a depthwise convolution with weight
of shape (K, 1, 1) (AvgPool: 1/K, sum pooling: 1) or, for max pooling, a
data-dependent selection weight of shape (N, C, K, Ho, Wo); rules modify these like
any other weight. 1-D layers (N, C, L) are 2-D layers of height 1.
"""
from __future__ import annotations

import math
from typing import Any

from .. import _conv
from ..backend import get_namespace
from ..errors import ShapeError
from .base import LinearLayer, MaxPoolMode, _pair
from .conv import _as_plane, _as_sequence, _positive_int

__all__ = ["AvgPool2d", "MaxPool2d", "AvgPool1d", "MaxPool1d"]


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
        # contiguous copies of the window views: NumPy's element-wise passes on strided views are several
        # times slower than a copy, and each view is read twice
        views = [xp.asarray(view, copy=True)
                 for view in _conv.windows(_conv.pad2d(x, self.padding, -math.inf), self.kernel_size, self.stride)]
        maximum = views[0]
        for view in views[1:]:
            maximum = xp.maximum(maximum, view)
        # weight[:, :, k] = 1 where window position k holds the maximum ("winner": then divided by the number
        # of maxima; "winner_first": only the first of them), written position by position (no stacked copies)
        weight = xp.empty((maximum.shape[0], maximum.shape[1], len(views), *maximum.shape[2:]), dtype=x.dtype,
                          device=x.device)
        taken = None
        for index, view in enumerate(views):
            hit = view == maximum
            if maxpool == "winner_first" and taken is not None:
                hit, taken = xp.logical_and(hit, xp.logical_not(taken)), xp.logical_or(taken, hit)
            elif maxpool == "winner_first":
                taken = hit
            weight[:, :, index, ...] = xp.astype(hit, x.dtype)
        if maxpool == "winner":
            weight /= xp.sum(weight, axis=2, keepdims=True)
        return weight


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
