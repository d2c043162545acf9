"""``Dense``: the fully connected layer y = x Wᵀ + b."""
from __future__ import annotations

from typing import Any

from ..backend import get_namespace
from ..errors import ShapeError
from .base import _WeightedLayer

__all__ = ["Dense"]


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
