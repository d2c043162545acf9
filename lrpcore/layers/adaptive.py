"""Adaptive pooling: ``AdaptiveAvgPool2d``/``AdaptiveMaxPool2d`` (and 1-D) for any output size.

PyTorch's adaptive pooling cuts an axis of n cells into O windows, window i covering

    start_i = floor(i·n/O),   end_i = ceil((i + 1)·n/O)

(``aten/src/ATen/native/AdaptivePooling.h``), so windows differ in size by up to one cell when
O does not divide n, neighbouring windows may share a cell, and with O > n cells are repeated.
The average divides by the window's own size, (end_h − start_h)·(end_w − start_w).

Where O divides n (global pooling is O = 1) the windows are those of an ordinary pool with
kernel = stride = n/O, and that layer does the work. Otherwise each window position a (a-th cell
of the window, up to the largest window size) is gathered by a 0/1 selection matrix E_a (O × n)
with E_a[i, start_i + a] = 1 where that cell is inside window i, and a zero row where it is not:

    view_ab = E_a · x · E_bᵀ,   y = Σ_ab w_ab ⊙ view_ab,   c = Σ_ab E_aᵀ · (w_ab ⊙ s) · E_b.

A cell outside its window is gathered as 0 whatever the input, so rules that replace the input
(flat, w², z^B bounds) still see only the window's own cells; for max pooling it is −∞.
Weights are (K, Oh, Ow) for the average and (N, C, K, Oh, Ow) selections for max pooling, with
K = (largest window height)·(largest window width), like the other pooling layers.
"""
from __future__ import annotations

import math
from typing import Any

import numpy

from ..backend import get_namespace, to_backend
from .base import LinearLayer, MaxPoolMode
from .conv import _as_plane, _as_sequence
from .pooling import AvgPool2d, MaxPool2d, _Pool2d, winner_weight

__all__ = ["AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AdaptiveAvgPool1d", "AdaptiveMaxPool1d", "adaptive_windows"]


def adaptive_windows(size: int, count: int) -> list[tuple[int, int]]:
    """[(start_i, end_i)] of the ``count`` windows PyTorch's adaptive pooling cuts an axis of ``size`` into."""
    return [((index * size) // count, -((-(index + 1) * size) // count)) for index in range(count)]


def _output_size(value: Any, owner: str, rank: int) -> list[int]:
    items = [value] * rank if isinstance(value, int) else list(value) if isinstance(value, (tuple, list)) else [value]
    if len(items) != rank or any(isinstance(item, bool) or not isinstance(item, int) or item < 1 for item in items):
        raise ValueError(f"{owner} output_size must be {'an int' if rank == 1 else 'an int or a pair of ints'} "
                         f"≥ 1, got {value!r} (None, 'keep this axis', is resolved when converting from torch)")
    return [int(item) for item in items]


class _Adaptive2d(LinearLayer):
    """Shared window handling of the adaptive 2-D pools (see the module docstring)."""

    input_rank = 4
    #: The ordinary pool used where the windows are regular.
    _regular: type[_Pool2d] = AvgPool2d

    def __init__(self, output_size: int | tuple[int, int]):
        self.output_size = _output_size(output_size, type(self).__name__, 2)

    def hyperparameters(self) -> dict[str, Any]:
        return {"output_size": list(self.output_size)}

    def describe(self) -> str:
        return f"{type(self).__name__}({self.output_size[0]}x{self.output_size[1]})"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (input_shape[0], *self.output_size)

    def _check(self, x: Any) -> None:
        self._check_rank(x, (4,), "(N, C, H, W)")

    def _fixed(self, height: int, width: int) -> _Pool2d | None:
        """The ordinary pool with the same windows, when the output size divides the input size."""
        out_h, out_w = self.output_size
        if height % out_h or width % out_w:
            return None
        kernel = (height // out_h, width // out_w)
        return self._regular(kernel, kernel)

    def _selections(self, size: int, count: int, like: Any) -> list[Any]:
        """E_a (count × size) for every window cell a (see the module docstring), in ``like``'s namespace."""
        windows = adaptive_windows(size, count)
        longest = max(end - start for start, end in windows)
        host = numpy.zeros((longest, count, size))
        for index, (start, end) in enumerate(windows):
            for offset in range(end - start):
                host[offset, index, start + offset] = 1.0
        xp = get_namespace(like)
        matrices = xp.astype(to_backend(host, xp), like.dtype)
        return [matrices[offset, ...] for offset in range(longest)]

    def _valid(self, size: int, count: int) -> numpy.ndarray:
        """(longest window, count) booleans: is cell a inside window i."""
        windows = adaptive_windows(size, count)
        longest = max(end - start for start, end in windows)
        return numpy.array([[offset < end - start for start, end in windows] for offset in range(longest)])

    def _gathered(self, x: Any) -> list[Any]:
        """The K views E_a · x · E_bᵀ (N, C, Oh, Ow), a major, b minor (0 where a cell is outside its window)."""
        xp = get_namespace(x)
        rows = self._selections(int(x.shape[2]), self.output_size[0], x)
        cols = self._selections(int(x.shape[3]), self.output_size[1], x)
        views = []
        for row in rows:
            picked = xp.matmul(row, x)                                  # (N, C, Oh, W)
            views.extend(xp.matmul(picked, xp.matrix_transpose(col)) for col in cols)
        return views

    def _valid_masks(self, height: int, width: int) -> list[numpy.ndarray]:
        """For each of the K window cells, the (Oh, Ow) booleans: is the cell inside the window."""
        rows = self._valid(height, self.output_size[0])
        cols = self._valid(width, self.output_size[1])
        return [numpy.logical_and(row[:, None], col[None, :]) for row in rows for col in cols]

    @staticmethod
    def _window_weight(weight: Any, index: int) -> Any:
        return weight[index, ...] if weight.ndim == 3 else weight[:, :, index, ...]

    def linear_forward(self, x: Any, weight: Any, bias: Any | None = None) -> Any:
        self._check(x)
        fixed = self._fixed(int(x.shape[2]), int(x.shape[3]))
        if fixed is not None:
            return fixed.linear_forward(x, weight)
        total = None
        for index, view in enumerate(self._gathered(x)):
            term = view * self._window_weight(weight, index)
            total = term if total is None else total + term
        return total

    def linear_transpose(self, s: Any, weight: Any, input_shape: tuple[int, ...]) -> Any:
        fixed = self._fixed(int(input_shape[2]), int(input_shape[3]))
        if fixed is not None:
            return fixed.linear_transpose(s, weight, input_shape)
        xp = get_namespace(s, weight)
        rows = self._selections(int(input_shape[2]), self.output_size[0], s)
        cols = self._selections(int(input_shape[3]), self.output_size[1], s)
        total = None
        for a, row in enumerate(rows):
            for b, col in enumerate(cols):
                weighted = s * self._window_weight(weight, a * len(cols) + b)       # (N, C, Oh, Ow)
                part = xp.matmul(xp.matmul(xp.matrix_transpose(row), weighted), col)  # (N, C, H, W)
                total = part if total is None else total + part
        return total


class AdaptiveAvgPool2d(_Adaptive2d):
    """Average over PyTorch's adaptive windows (module docstring): a linear layer with window weights
    1/(window size) and no bias. ``output_size``: an int or (Oh, Ow)."""

    def relevance_weight(self, x: Any, maxpool: MaxPoolMode = "winner") -> Any:
        self._check(x)
        height, width = int(x.shape[2]), int(x.shape[3])
        fixed = self._fixed(height, width)
        if fixed is not None:
            return fixed.relevance_weight(x, maxpool)
        xp = get_namespace(x)
        sizes_h = [end - start for start, end in adaptive_windows(height, self.output_size[0])]
        sizes_w = [end - start for start, end in adaptive_windows(width, self.output_size[1])]
        inverse = 1.0 / numpy.outer(sizes_h, sizes_w)
        host = numpy.stack([mask * inverse for mask in self._valid_masks(height, width)])
        return xp.astype(to_backend(host, xp), x.dtype)


class AdaptiveMaxPool2d(_Adaptive2d):
    """Maximum over PyTorch's adaptive windows (module docstring), linearised around the input for
    relevance with the modes of :class:`~lrpcore.layers.MaxPool2d` (``"winner"``, ``"winner_first"``,
    ``"sum"``); window cells are ordered row by row, as PyTorch scans them for its first maximum."""

    _regular = MaxPool2d
    selects = True

    def _masked(self, x: Any) -> list[Any]:
        xp = get_namespace(x)
        views = self._gathered(x)
        masks = self._valid_masks(int(x.shape[2]), int(x.shape[3]))
        outside = [to_backend(~mask, xp) for mask in masks]
        return [xp.where(out, -math.inf, view) if bool(numpy.any(~mask)) else view
                for view, out, mask in zip(views, outside, masks)]

    def forward(self, x: Any) -> Any:
        self._check(x)
        fixed = self._fixed(int(x.shape[2]), int(x.shape[3]))
        if fixed is not None:
            return fixed.forward(x)
        xp = get_namespace(x)
        views = self._masked(x)
        result = views[0]
        for view in views[1:]:
            result = xp.maximum(result, view)
        return result

    def relevance_weight(self, x: Any, maxpool: MaxPoolMode = "winner") -> Any:
        self._check(x)
        fixed = self._fixed(int(x.shape[2]), int(x.shape[3]))
        if fixed is not None:
            return fixed.relevance_weight(x, maxpool)
        if maxpool == "sum":
            height, width = int(x.shape[2]), int(x.shape[3])
            xp = get_namespace(x)
            host = numpy.stack([mask.astype(numpy.float64) for mask in self._valid_masks(height, width)])
            return xp.astype(to_backend(host, xp), x.dtype)
        if maxpool not in ("winner", "winner_first"):
            raise ValueError(f"unknown max-pool mode {maxpool!r}; expected 'winner', 'winner_first' or 'sum'")
        return winner_weight(self._masked(x), maxpool, x.dtype)


class _Adaptive1d(LinearLayer):
    """A 1-D adaptive pool: the 2-D layer with output (1, O) on the (N, C, 1, L) view."""

    input_rank = 3
    _plane_type: type[_Adaptive2d] = AdaptiveAvgPool2d

    def __init__(self, output_size: int):
        self.output_size = _output_size(output_size, type(self).__name__, 1)[0]
        self._plane = self._plane_type((1, self.output_size))

    def hyperparameters(self) -> dict[str, Any]:
        return {"output_size": self.output_size}

    def describe(self) -> str:
        return f"{type(self).__name__}({self.output_size})"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (input_shape[0], self.output_size)

    def _check(self, x: Any) -> None:
        self._check_rank(x, (3,), "(N, C, L)")

    def relevance_weight(self, x: Any, maxpool: MaxPoolMode = "winner") -> Any:
        self._check(x)
        return self._plane.relevance_weight(_as_plane(x), maxpool)

    def linear_forward(self, x: Any, weight: Any, bias: Any | None = None) -> Any:
        self._check(x)
        return _as_sequence(self._plane.linear_forward(_as_plane(x), weight))

    def linear_transpose(self, s: Any, weight: Any, input_shape: tuple[int, ...]) -> Any:
        batch, channels, length = input_shape
        return _as_sequence(self._plane.linear_transpose(_as_plane(s), weight, (batch, channels, 1, length)))


class AdaptiveAvgPool1d(_Adaptive1d):
    """Average over PyTorch's adaptive windows of a sequence (N, C, L) → (N, C, O)."""


class AdaptiveMaxPool1d(_Adaptive1d):
    """Maximum over PyTorch's adaptive windows of a sequence (N, C, L) → (N, C, O), with the max-pool modes."""

    _plane_type = AdaptiveMaxPool2d
    selects = True

    def forward(self, x: Any) -> Any:
        self._check(x)
        return _as_sequence(self._plane.forward(_as_plane(x)))
