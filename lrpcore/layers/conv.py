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
from . import _grouped
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


def _groups(value: Any, weight: Any, owner: str) -> int:
    """Check ``groups`` against the weight: the output channels must split into ``groups`` blocks."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner} groups must be an integer ≥ 1, got {value!r}")
    if weight.shape[0] % value:
        raise ShapeError(f"{owner} groups={value} does not divide the {weight.shape[0]} output channels of the "
                         f"weight {tuple(weight.shape)}")
    return int(value)


class _Convolution(_WeightedLayer):
    """What the convolutions share: channels read from the weight (out, in/groups, ...) and the groups."""

    groups: int = 1

    @property
    def in_channels(self) -> int:
        return int(self.weight.shape[1]) * self.groups

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])


class Conv2d(_Convolution):
    """2-D convolution (cross-correlation, as PyTorch) through im2col and one GEMM per sample.

    ``weight`` (out, in/groups, kh, kw), ``bias`` (out,), integer or pair ``stride`` and ``padding``.
    Batches are processed in chunks so the column buffer stays below ``COLUMN_BUDGET_BYTES``.

    ``groups`` = g splits the channels into g blocks, output block b seeing only input block b
    (torch's ``groups``); g = in_channels is a depthwise convolution. See :mod:`lrpcore.layers._grouped`.
    ``groups`` is stored (and listed in ``hyperparameters``) only when it is not 1, so files written
    before grouped convolutions existed read as before.
    """

    input_rank = 4
    weight_layout = "(out, in, kh, kw)"

    def __init__(self, weight: Any, bias: Any | None = None, stride: int | tuple[int, int] = 1,
                 padding: int | tuple[int, int] = 0, groups: int = 1):
        self._set_weight_and_bias(weight, bias)
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        if min(self.stride) < 1:
            raise ValueError(f"Conv2d stride must be ≥ 1, got {stride!r}")
        self.groups = _groups(groups, weight, "Conv2d")

    @property
    def kernel_size(self) -> tuple[int, int]:
        return (int(self.weight.shape[2]), int(self.weight.shape[3]))

    def hyperparameters(self) -> dict[str, Any]:
        settings: dict[str, Any] = {"stride": list(self.stride), "padding": list(self.padding)}
        if self.groups != 1:
            settings["groups"] = self.groups
        return settings

    def describe(self) -> str:
        kh, kw = self.kernel_size
        groups = f", g={self.groups}" if self.groups != 1 else ""
        return (f"Conv2d({self.in_channels}→{self.out_channels}, k={kh}x{kw}, "
                f"s={self.stride[0]}, p={self.padding[0]}{groups})")

    def _block_layer(self, weight: Any) -> "Conv2d":
        """The ungrouped convolution of one group's ``weight`` block (same stride and padding)."""
        return Conv2d(weight, None, stride=self.stride, padding=self.padding)

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
        if self.groups != 1:
            out = (_grouped.depthwise_forward(x, weight, self.stride, self.padding)
                   if _grouped.is_depthwise(weight, self.groups)
                   else _grouped.grouped_forward(self._block_layer, x, weight, self.groups))
            return out if bias is None else out + xp.reshape(bias, (1, weight.shape[0], 1, 1))
        out = _conv.correlate(x, weight, self.stride, self.padding, COLUMN_BUDGET_BYTES)
        if bias is not None:
            out += xp.reshape(bias, (1, weight.shape[0], 1, 1))      # out is a fresh array: add in place
        return out

    def linear_transpose(self, s: Any, weight: Any, input_shape: tuple[int, ...]) -> Any:
        """c = Wᵀ s, the adjoint of the convolution (:func:`lrpcore._conv.transpose` picks the algorithm;
        grouped and depthwise convolutions go through :mod:`lrpcore.layers._grouped`)."""
        if self.groups != 1:
            if _grouped.is_depthwise(weight, self.groups):
                return _grouped.depthwise_transpose(s, weight, tuple(input_shape), self.stride, self.padding)
            return _grouped.grouped_transpose(self._block_layer, s, weight, tuple(input_shape), self.groups)
        return _conv.transpose(s, weight, tuple(input_shape), self.stride, self.padding, COLUMN_BUDGET_BYTES)


class Conv1d(_Convolution):
    """1-D convolution (cross-correlation) with ``weight`` (out, in/groups, k), ``bias`` (out,), ``stride``,
    ``padding`` and ``groups``.

    y[n, o, t] = b[o] + Σ_c Σ_j w[o, c, j] · x[n, c, t·stride + j − padding]  (zero padding),
    computed as a :class:`~lrpcore.layers.Conv2d` with kernel 1×k on the (N, C, 1, L) view
    (with ``groups``, c runs over the input block of o's group, as in :class:`Conv2d`).
    """

    input_rank = 3
    weight_layout = "(out, in, k)"

    def __init__(self, weight: Any, bias: Any | None = None, stride: int = 1, padding: int = 0, groups: int = 1):
        self._set_weight_and_bias(weight, bias)
        self.stride = _positive_int(stride, "Conv1d stride", 1)
        self.padding = _positive_int(padding, "Conv1d padding", 0)
        self.groups = _groups(groups, weight, "Conv1d")

    @property
    def kernel_size(self) -> int:
        return int(self.weight.shape[2])

    def hyperparameters(self) -> dict[str, Any]:
        settings: dict[str, Any] = {"stride": self.stride, "padding": self.padding}
        if self.groups != 1:
            settings["groups"] = self.groups
        return settings

    def describe(self) -> str:
        groups = f", g={self.groups}" if self.groups != 1 else ""
        return (f"Conv1d({self.in_channels}→{self.out_channels}, k={self.kernel_size}, "
                f"s={self.stride}, p={self.padding}{groups})")

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
        return Conv2d(_as_plane(weight), None, stride=(1, self.stride), padding=(0, self.padding),
                      groups=self.groups)

    def linear_forward(self, x: Any, weight: Any, bias: Any | None = None) -> Any:
        self._check(x)
        return _as_sequence(self._plane(weight).linear_forward(_as_plane(x), _as_plane(weight), bias))

    def linear_transpose(self, s: Any, weight: Any, input_shape: tuple[int, ...]) -> Any:
        batch, channels, length = input_shape
        plane_shape = (batch, channels, 1, length)
        return _as_sequence(self._plane(weight).linear_transpose(_as_plane(s), _as_plane(weight), plane_shape))
