"""Pooling layers, 2-D and 1-D: average and sum pooling (linear) and max pooling (linearised around its input).

Pooling layers expose their window weights like a depthwise convolution with weight
of shape (K, 1, 1) (AvgPool: 1/K, sum pooling: its scale) or (K, Ho, Wo) when the divisor of an
average depends on the window (``ceil_mode`` windows that run past the input,
``count_include_pad=False``), or, for max pooling, a data-dependent selection weight of shape
(N, C, K, Ho, Wo); rules modify these like any other weight. 1-D layers (N, C, L) hold the same
with one spatial axis.

Windows follow PyTorch. Output length along an axis of size n (kernel k, stride s, padding p):
floor((n + 2p − k)/s) + 1, or with ``ceil_mode`` ceil((n + 2p − k)/s) + 1, less one if the last
window would start at or after n + p (so every window starts inside the input or its left padding).
Windows that run past the padded input in ``ceil_mode`` see extra cells at the end (zeros; −∞ for
max pooling), which are not inputs: they never win a max and carry no relevance. The divisor of
an average is, per axis, the window's cells inside [−p, n + p) (``count_include_pad=True``, the
default) or inside [0, n) (``count_include_pad=False``), and the product over the axes (PyTorch's
``avg_pool2d``).
"""
from __future__ import annotations

import math
from typing import Any

from .. import _conv
from ..backend import get_namespace
from ..errors import ShapeError
from .base import LinearLayer, MaxPoolMode, _pair
from .conv import _as_plane, _as_sequence, _positive_int

__all__ = ["AvgPool2d", "MaxPool2d", "SumPool2d", "AvgPool1d", "MaxPool1d", "pool_output_size", "window_counts"]


def _flag(value: Any, name: str, owner: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{owner} {name} must be True or False, got {value!r}")
    return value


def pool_output_size(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool = False) -> int:
    """Number of windows along one axis, as PyTorch counts them (see the module docstring)."""
    span = size + 2 * padding - kernel
    if span < 0:
        return 0
    if not ceil_mode:
        return span // stride + 1
    count = -(-span // stride) + 1
    if (count - 1) * stride >= size + padding:
        count -= 1
    return count


def window_counts(size: int, kernel: int, stride: int, padding: int, count: int, count_include_pad: bool) -> list[int]:
    """Per window along one axis, the cells an average divides by (PyTorch's ``avg_pool2d`` divisor)."""
    counts = []
    for index in range(count):
        start = index * stride - padding
        if count_include_pad:
            counts.append(min(start + kernel, size + padding) - start)
        else:
            counts.append(min(start + kernel, size) - max(start, 0))
    return counts


def _extra(size: int, kernel: int, stride: int, padding: int, count: int) -> int:
    """Cells needed after the right padding so that the last of ``count`` windows fits (ceil mode)."""
    return max(0, (count - 1) * stride + kernel - (size + 2 * padding))


def _pad_end(x: Any, extra: tuple[int, int], value: float) -> Any:
    """``x`` with ``extra`` = (rows, columns) cells of ``value`` appended to its last two axes."""
    if extra == (0, 0):
        return x
    xp = get_namespace(x)
    *lead, height, width = x.shape
    padded = xp.full((*lead, height + extra[0], width + extra[1]), value, dtype=x.dtype, device=x.device)
    padded[..., :height, :width] = x
    return padded


class _Pool2d(LinearLayer):
    """Shared window handling of the 2-D pooling layers (kernel, stride, padding, ceil mode, windows).

    ``ceil_mode`` is stored (and listed in ``hyperparameters``) only when True, so files written before
    it existed read as before.
    """

    input_rank = 4

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0, ceil_mode: bool = False):
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride if stride is not None else kernel_size, "stride")
        self.padding = _pair(padding, "padding")
        if min(self.kernel_size) < 1 or min(self.stride) < 1:
            raise ValueError(f"{type(self).__name__}: kernel_size and stride must be ≥ 1")
        self.ceil_mode = _flag(ceil_mode, "ceil_mode", type(self).__name__)
        if self.ceil_mode and any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"{type(self).__name__}: padding {self.padding} must be at most half the kernel "
                             f"{self.kernel_size} with ceil_mode (PyTorch's rule)")

    def hyperparameters(self) -> dict[str, Any]:
        settings: dict[str, Any] = {"kernel_size": list(self.kernel_size), "stride": list(self.stride),
                                    "padding": list(self.padding)}
        if self.ceil_mode:
            settings["ceil_mode"] = True
        return settings

    def describe(self) -> str:
        ceil = ", ceil" if self.ceil_mode else ""
        return f"{type(self).__name__}(k={self.kernel_size[0]}x{self.kernel_size[1]}, s={self.stride[0]}{ceil})"

    @property
    def kernel_area(self) -> int:
        return self.kernel_size[0] * self.kernel_size[1]

    def _counts(self, height: int, width: int) -> tuple[int, int]:
        return tuple(pool_output_size(size, k, s, p, self.ceil_mode)   # type: ignore[return-value]
                     for size, k, s, p in zip((height, width), self.kernel_size, self.stride, self.padding))

    def _extra(self, height: int, width: int) -> tuple[int, int]:
        out = self._counts(height, width)
        return tuple(_extra(size, k, s, p, count)  # type: ignore[return-value]
                     for size, k, s, p, count in zip((height, width), self.kernel_size, self.stride, self.padding,
                                                     out))

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels, height, width = input_shape
        return (channels, *self._counts(height, width))

    def _check(self, x: Any) -> None:
        self._check_rank(x, (4,), "(N, C, H, W)")
        out = self.output_shape(tuple(x.shape[1:]))
        if out[1] < 1 or out[2] < 1:
            raise ShapeError(f"{self.describe()}: input of shape {tuple(x.shape)} is smaller than the window")

    def _views(self, x: Any, value: float = 0.0) -> list[Any]:
        """The kh·kw window views (N, C, Ho, Wo) of ``x`` padded with ``value`` (and the ceil-mode cells)."""
        padded = _pad_end(_conv.pad2d(x, self.padding, value), self._extra(x.shape[2], x.shape[3]), value)
        return _conv.windows(padded, self.kernel_size, self.stride)

    def _constant_weight(self, x: Any, value: float) -> Any:
        xp = get_namespace(x)
        return xp.full((self.kernel_area, 1, 1), value, dtype=x.dtype, device=x.device)

    @staticmethod
    def _window_weight(weight: Any, index: int) -> Any:
        """The weight of window position ``index``: from a (K, 1, 1) or (K, Ho, Wo) weight or a per-window
        (N, C, K, Ho, Wo) one."""
        return weight[index, ...] if weight.ndim == 3 else weight[:, :, index, ...]

    def linear_forward(self, x: Any, weight: Any, bias: Any | None = None) -> Any:
        """Σ over each window of x·w, with ``weight`` (K, 1, 1), (K, Ho, Wo) or (N, C, K, Ho, Wo), summed window
        position by window position (no column array). Zero padding: a padded position carries weight 0
        (for max pooling, −∞ padding would give −∞·0 = NaN)."""
        self._check(x)
        total = None
        for index, view in enumerate(self._views(x)):
            term = view * self._window_weight(weight, index)
            total = term if total is None else total + term
        return total

    def linear_transpose(self, s: Any, weight: Any, input_shape: tuple[int, ...]) -> Any:
        extra = self._extra(input_shape[2], input_shape[3])
        if extra == (0, 0):
            return _conv.fold_windows(lambda index: s * self._window_weight(weight, index), tuple(input_shape),
                                      self.kernel_size, self.stride, self.padding, s.dtype, s.device)
        (pad_h, pad_w), (batch, channels, height, width) = self.padding, input_shape
        padded_shape = (batch, channels, height + 2 * pad_h + extra[0], width + 2 * pad_w + extra[1])
        folded = _conv.fold_windows(lambda index: s * self._window_weight(weight, index), padded_shape,
                                    self.kernel_size, self.stride, (0, 0), s.dtype, s.device)
        return folded[:, :, pad_h:pad_h + height, pad_w:pad_w + width]


class _Average:
    """What the average pools share: ``count_include_pad`` (stored only when False) in settings and labels."""

    count_include_pad: bool = True

    def hyperparameters(self) -> dict[str, Any]:
        settings = super().hyperparameters()
        if not self.count_include_pad:
            settings["count_include_pad"] = False
        return settings

    def describe(self) -> str:
        text = super().describe()
        return text if self.count_include_pad else text[:-1] + ", pad not counted)"


class AvgPool2d(_Average, _Pool2d):
    """Average pooling, a linear layer with window weights 1/divisor and no bias.

    With the defaults every window divides by K = kh·kw (zero padding counted). ``ceil_mode`` windows
    that run past the padded input divide by the cells they cover inside it; ``count_include_pad=False``
    divides by the cells inside the input only (PyTorch's definitions; see the module docstring).
    ``count_include_pad`` is stored only when False.
    """

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0, ceil_mode: bool = False, count_include_pad: bool = True):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = _flag(count_include_pad, "count_include_pad", "AvgPool2d")


    def _uniform(self, height: int, width: int) -> bool:
        """True when every window divides by K (no ceil-mode overhang, padding counted or absent)."""
        return (self._extra(height, width) == (0, 0)
                and (self.count_include_pad or self.padding == (0, 0)))

    def relevance_weight(self, x: Any, maxpool: MaxPoolMode = "winner") -> Any:
        self._check(x)
        height, width = int(x.shape[2]), int(x.shape[3])
        if self._uniform(height, width):
            return self._constant_weight(x, 1.0 / self.kernel_area)
        xp = get_namespace(x)
        out_h, out_w = self._counts(height, width)
        rows = window_counts(height, self.kernel_size[0], self.stride[0], self.padding[0], out_h,
                             self.count_include_pad)
        cols = window_counts(width, self.kernel_size[1], self.stride[1], self.padding[1], out_w,
                             self.count_include_pad)
        divisor = (xp.reshape(xp.asarray(rows, dtype=x.dtype, device=x.device), (-1, 1))
                   * xp.reshape(xp.asarray(cols, dtype=x.dtype, device=x.device), (1, -1)))
        return xp.broadcast_to(xp.expand_dims(1.0 / divisor, axis=0), (self.kernel_area, out_h, out_w))


class SumPool2d(_Pool2d):
    """Sum pooling times a constant: y = ``scale`` · Σ_window x, a linear layer with window weights ``scale``.

    The LRP Toolbox's ``SumPool`` is this layer with scale = 1/√(kh·kw) (its forward multiplies the
    window sum by that "normalizer to keep the output well conditioned"; python/modules/sumpool.py).
    Its LRP rules divide by the window sum itself, not the scaled output: an ε added to the Toolbox's
    window sum is ε·scale added to this layer's z (see :mod:`lrpcore.io.toolbox`).
    """

    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0, ceil_mode: bool = False, scale: float = 1.0):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"SumPool2d scale must be a positive finite number, got {scale!r}")
        self.scale = float(scale)

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "scale": self.scale}

    def describe(self) -> str:
        return super().describe()[:-1] + f", scale={self.scale:.6g})"

    def relevance_weight(self, x: Any, maxpool: MaxPoolMode = "winner") -> Any:
        return self._constant_weight(x, self.scale)


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

    selects = True

    def forward(self, x: Any) -> Any:
        self._check(x)
        xp = get_namespace(x)
        # element-wise maximum over the window views: no (N, C, K, Ho, Wo) column array is built
        views = self._views(x, -math.inf)
        result = views[0]
        for view in views[1:]:
            result = xp.maximum(result, view)
        return result if len(views) > 1 else xp.asarray(result, copy=True)

    def relevance_weight(self, x: Any, maxpool: MaxPoolMode = "winner") -> Any:
        if maxpool == "sum":
            return self._constant_weight(x, 1.0)
        if maxpool not in ("winner", "winner_first"):
            raise ValueError(f"unknown max-pool mode {maxpool!r}; expected 'winner', 'winner_first' or 'sum'")
        self._check(x)
        return winner_weight(self._views(x, -math.inf), maxpool, x.dtype)


def winner_weight(views: list[Any], maxpool: MaxPoolMode, dtype: Any) -> Any:
    """The (N, C, K, Ho, Wo) selection weight of a max pool from its K window views (−∞ where no input).

    ``"winner"``: 1/(number of maxima) on each maximum; ``"winner_first"``: 1 on the first maximum in
    window order (autograd's choice). Shared by the max-pooling layers (fixed and adaptive windows).
    """
    xp = get_namespace(views[0])
    # contiguous copies of the window views: NumPy's element-wise passes on strided views are several
    # times slower than a copy, and each view is read twice
    views = [xp.asarray(view, copy=True) for view in views]
    maximum = views[0]
    for view in views[1:]:
        maximum = xp.maximum(maximum, view)
    # weight[:, :, k] = 1 where window position k holds the maximum ("winner": then divided by the number
    # of maxima; "winner_first": only the first of them), written position by position (no stacked copies)
    weight = xp.empty((maximum.shape[0], maximum.shape[1], len(views), *maximum.shape[2:]), dtype=dtype,
                      device=maximum.device)
    taken = None
    for index, view in enumerate(views):
        hit = view == maximum
        if maxpool == "winner_first" and taken is not None:
            hit, taken = xp.logical_and(hit, xp.logical_not(taken)), xp.logical_or(taken, hit)
        elif maxpool == "winner_first":
            taken = hit
        weight[:, :, index, ...] = xp.astype(hit, dtype)
    if maxpool == "winner":
        weight /= xp.sum(weight, axis=2, keepdims=True)
    return weight


class _Pool1d(LinearLayer):
    """Shared window handling of the 1-D pooling layers: kernel, stride (default: kernel), padding, ceil mode."""

    input_rank = 3

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0, ceil_mode: bool = False):
        self.kernel_size = _positive_int(kernel_size, f"{type(self).__name__} kernel_size", 1)
        self.stride = _positive_int(stride if stride is not None else self.kernel_size,
                                    f"{type(self).__name__} stride", 1)
        self.padding = _positive_int(padding, f"{type(self).__name__} padding", 0)
        self.ceil_mode = _flag(ceil_mode, "ceil_mode", type(self).__name__)
        if self.ceil_mode and 2 * self.padding > self.kernel_size:
            raise ValueError(f"{type(self).__name__}: padding {self.padding} must be at most half the kernel "
                             f"{self.kernel_size} with ceil_mode (PyTorch's rule)")

    def hyperparameters(self) -> dict[str, Any]:
        settings: dict[str, Any] = {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding}
        if self.ceil_mode:
            settings["ceil_mode"] = True
        return settings

    def describe(self) -> str:
        ceil = ", ceil" if self.ceil_mode else ""
        return f"{type(self).__name__}(k={self.kernel_size}, s={self.stride}{ceil})"

    @property
    def kernel_area(self) -> int:
        return self.kernel_size

    def _count(self, length: int) -> int:
        return pool_output_size(length, self.kernel_size, self.stride, self.padding, self.ceil_mode)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels, length = input_shape
        return (channels, self._count(length))

    def _check(self, x: Any) -> None:
        self._check_rank(x, (3,), "(N, C, L)")
        if self.output_shape(tuple(x.shape[1:]))[1] < 1:
            raise ShapeError(f"{self.describe()}: input of shape {tuple(x.shape)} is shorter than the window")

    def _extra(self, length: int) -> int:
        return _extra(length, self.kernel_size, self.stride, self.padding, self._count(length))

    def _windows(self, x: Any, pad_value: float = 0.0) -> Any:
        """All windows of ``x`` (N, C, L) as columns (N, C, k, Lo)."""
        plane = _pad_end(_as_plane(x), (0, self._extra(x.shape[-1])), pad_value)
        columns = _conv.unfold(plane, (1, self.kernel_size), (1, self.stride), (0, self.padding),
                               pad_value=pad_value)
        return _as_sequence(columns)

    def _constant_weight(self, x: Any, value: float) -> Any:
        xp = get_namespace(x)
        return xp.full((self.kernel_size, 1), value, dtype=x.dtype, device=x.device)

    def linear_forward(self, x: Any, weight: Any, bias: Any | None = None) -> Any:
        """Σ over each window of x·w, with ``weight`` (k, 1), (k, Lo) or (N, C, k, Lo)."""
        self._check(x)
        xp = get_namespace(x, weight)
        return xp.sum(self._windows(x) * weight, axis=2)

    def linear_transpose(self, s: Any, weight: Any, input_shape: tuple[int, ...]) -> Any:
        xp = get_namespace(s, weight)
        columns = _as_plane(xp.expand_dims(s, axis=2) * weight)           # (N, C, k, 1, Lo)
        batch, channels, length = input_shape
        extra = self._extra(length)
        if extra == 0:
            folded = _conv.fold(columns, (batch, channels, 1, length), (1, self.kernel_size), (1, self.stride),
                                (0, self.padding))
            return _as_sequence(folded)
        padded = length + 2 * self.padding + extra
        folded = _conv.fold(columns, (batch, channels, 1, padded), (1, self.kernel_size), (1, self.stride), (0, 0))
        return _as_sequence(folded)[:, :, self.padding:self.padding + length]


class AvgPool1d(_Average, _Pool1d):
    """Average pooling over windows of k positions: a linear layer with window weights 1/divisor and no bias
    (divisor k by default; see :class:`AvgPool2d` for ``ceil_mode`` and ``count_include_pad=False``)."""

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = _flag(count_include_pad, "count_include_pad", "AvgPool1d")


    def relevance_weight(self, x: Any, maxpool: MaxPoolMode = "winner") -> Any:
        self._check(x)
        length = int(x.shape[-1])
        if self._extra(length) == 0 and (self.count_include_pad or self.padding == 0):
            return self._constant_weight(x, 1.0 / self.kernel_size)
        xp = get_namespace(x)
        counts = window_counts(length, self.kernel_size, self.stride, self.padding, self._count(length),
                               self.count_include_pad)
        inverse = 1.0 / xp.asarray(counts, dtype=x.dtype, device=x.device)
        return xp.broadcast_to(xp.reshape(inverse, (1, -1)), (self.kernel_size, len(counts)))


class MaxPool1d(_Pool1d):
    """Max pooling over windows of k positions, linearised around the input for relevance.

    ``relevance_weight(x, mode)`` is the local linear map that reproduces the output, as for
    :class:`~lrpcore.layers.MaxPool2d`: ``"winner"`` splits a window's relevance equally among
    its maxima, ``"winner_first"`` gives all of it to the first maximum (autograd's choice),
    ``"sum"`` treats the window as sum pooling (relevance in proportion to the activations).
    Padding is −inf, so padded positions never win.
    """

    selects = True

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
