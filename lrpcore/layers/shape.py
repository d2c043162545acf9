"""Layers that move values without mixing them: ``Reshape`` (torch's ``Unflatten``, Keras' ``Reshape``),
``ZeroPad2d`` and ``ZeroPad1d``.

None of them is linear in the sense of the rules (no weights to modify), so relevance passes: a
reshape hands R back in the input's shape, a zero padding hands back R without the padded cells
(:meth:`ZeroPad2d.pass_relevance`, which is also its gradient, as zennit's gradient-based ``Pass``
would route it). The padded cells hold zeros, so any rule of the form a ⊙ c in the layer above gives
them no relevance; only rules that ignore the input (flat, w²) put relevance there, and cropping it
drops exactly that share.
"""
from __future__ import annotations

import math
from typing import Any

from ..backend import get_namespace
from ..errors import ShapeError
from .base import Layer

__all__ = ["Reshape", "ZeroPad2d", "ZeroPad1d"]


def _int_list(value: Any, name: str, owner: str, minimum: int) -> list[int]:
    items = [value] if isinstance(value, int) else list(value)
    if not items or any(isinstance(item, bool) or int(item) != item or item < minimum for item in items):
        raise ValueError(f"{owner} {name} must be integers ≥ {minimum}, got {value!r}")
    return [int(item) for item in items]


class Reshape(Layer):
    """Reshape each sample to ``shape`` (no batch axis), in C order: ``(N, *in) → (N, *shape)``.

    ``Reshape((C, H, W))`` after a Dense layer is torch's ``nn.Unflatten(1, (C, H, W))``. One entry may
    be −1 (inferred from the size). Relevance passes: it is reshaped back to the input's shape.
    """

    def __init__(self, shape: Any):
        items = [shape] if isinstance(shape, int) else list(shape)
        if (not items or any(isinstance(item, bool) or int(item) != item or (item < 1 and item != -1)
                             for item in items) or sum(1 for item in items if item == -1) > 1):
            raise ValueError(f"Reshape shape must be positive integers with at most one −1, got {shape!r}")
        self.shape = [int(item) for item in items]

    def hyperparameters(self) -> dict[str, Any]:
        return {"shape": list(self.shape)}

    def describe(self) -> str:
        return f"Reshape({tuple(self.shape)})"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        size = math.prod(input_shape)
        known = math.prod(item for item in self.shape if item != -1)
        if -1 in self.shape:
            if known == 0 or size % known:
                raise ShapeError(f"{self.describe()} cannot reshape per-sample shape {tuple(input_shape)} "
                                 f"({size} values)")
            return tuple(size // known if item == -1 else item for item in self.shape)
        if known != size:
            raise ShapeError(f"{self.describe()} needs {known} values per sample, got shape {tuple(input_shape)} "
                             f"({size} values)")
        return tuple(self.shape)

    def forward(self, x: Any) -> Any:
        xp = get_namespace(x)
        if x.ndim < 2:
            raise ShapeError(f"{self.describe()} expects a batch (N, ...), got shape {tuple(x.shape)}")
        return xp.reshape(x, (x.shape[0], *self.output_shape(tuple(x.shape[1:]))))

    def gradient(self, x: Any, grad_output: Any) -> Any:
        xp = get_namespace(grad_output)
        return xp.reshape(grad_output, tuple(x.shape))


class _ZeroPad(Layer):
    """Zero padding of the last ``len(padding) // 2`` axes; relevance is cropped back."""

    _axes = 2
    input_rank = 4

    def __init__(self, padding: Any):
        count = 2 * self._axes
        values = _int_list(padding, "padding", type(self).__name__, 0)
        if len(values) == 1:
            values = values * count
        if len(values) != count:
            raise ValueError(f"{type(self).__name__} padding must be one int or {count} ints "
                             f"{self._order}, got {padding!r}")
        self.padding = values

    def hyperparameters(self) -> dict[str, Any]:
        return {"padding": list(self.padding)}

    def describe(self) -> str:
        return f"{type(self).__name__}({tuple(self.padding)})"

    def _pairs(self) -> list[tuple[int, int]]:
        """(before, after) for each padded axis, first axis first (torch lists the last axis first)."""
        pairs = [(self.padding[2 * i], self.padding[2 * i + 1]) for i in range(self._axes)]
        return pairs[::-1]

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        lead = tuple(input_shape[:-self._axes])
        sizes = [size + before + after for size, (before, after) in zip(input_shape[-self._axes:], self._pairs())]
        return lead + tuple(sizes)

    def _check(self, x: Any) -> None:
        self._check_rank(x, (self.input_rank,), f"rank-{self.input_rank} input")

    def forward(self, x: Any) -> Any:
        self._check(x)
        xp = get_namespace(x)
        out_shape = (x.shape[0], *self.output_shape(tuple(x.shape[1:])))
        padded = xp.zeros(out_shape, dtype=x.dtype, device=x.device)
        padded[self._inner(x.shape)] = x
        return padded

    def _inner(self, input_shape: tuple[int, ...]) -> tuple[slice, ...]:
        """The index of the input's cells inside the padded output."""
        lead = (slice(None),) * (len(input_shape) - self._axes)
        return lead + tuple(slice(before, before + size)
                            for size, (before, _) in zip(input_shape[-self._axes:], self._pairs()))

    def gradient(self, x: Any, grad_output: Any) -> Any:
        return grad_output[self._inner(tuple(x.shape))]

    def pass_relevance(self, relevance: Any, input_shape: tuple[int, ...]) -> Any:
        """Relevance at the input: the output's relevance without the padded cells (the gradient's routing)."""
        return relevance[self._inner(tuple(input_shape))]


class ZeroPad2d(_ZeroPad):
    """Zero padding of (N, C, H, W) images by ``padding`` = (left, right, top, bottom) (torch's order), or one int."""

    _order = "(left, right, top, bottom)"


class ZeroPad1d(_ZeroPad):
    """Zero padding of (N, C, L) sequences by ``padding`` = (left, right), or one int."""

    _axes = 1
    input_rank = 3
    _order = "(left, right)"
