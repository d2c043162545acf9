"""Convolutions: ``Conv2d`` through im2col and GEMMs, and ``Conv1d`` as a ``Conv2d`` of height 1.

A 1-D sequence is a 2-D image of height 1: (N, C, L) is viewed as (N, C, 1, L), a
kernel of width k as a 1×k kernel, and the 2-D window machinery of :mod:`lrpcore._conv`
does the work. Nothing is copied by the view, and the two code paths cannot drift apart.
"""
from __future__ import annotations

from typing import Any

from .. import _conv
from ..backend import get_namespace
from ..errors import ShapeError
from .base import _WeightedLayer, _pair

__all__ = ["Conv2d", "Conv1d"]

#: Upper bound, in bytes, on the im2col buffer built at once: batches are cut into blocks of samples, or of
#: output rows of one sample. The matrix products run per sample anyway; blocks this size keep them large
#: and were fastest on VGG-16 (tools/BENCHMARKS.md), and keep explain's peak memory low.
COLUMN_BUDGET_BYTES = 32 * 2**20


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
        """c = Wᵀ s, the adjoint of the convolution (:func:`lrpcore._conv.transpose` picks the algorithm)."""
        return _conv.transpose(s, weight, tuple(input_shape), self.stride, self.padding, COLUMN_BUDGET_BYTES)


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
