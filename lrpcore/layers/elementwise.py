"""Element-wise and shape layers: ``ReLU``, ``Dropout`` (inference: identity) and ``Flatten``."""
from __future__ import annotations

import math
from typing import Any

from ..backend import get_namespace
from .base import Layer

__all__ = ["ReLU", "Dropout", "Flatten"]


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
        p = float(p)
        if not 0.0 <= p <= 1.0:  # also refuses NaN
            raise ValueError(f"Dropout probability p must be in [0, 1], got {p!r}")
        self.p = p

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
