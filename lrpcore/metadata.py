"""``ModelMetadata``: what a model knows about its inputs (shape, value range, preprocessing, class names)."""
from __future__ import annotations

import dataclasses
from typing import Any

from .backend import get_namespace

__all__ = ["ModelMetadata"]


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
