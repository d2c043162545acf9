"""Inference-time batch normalisation (fold it into a neighbouring linear layer with ``lrpcore.canonize``)."""
from __future__ import annotations

from typing import Any

from ..backend import get_namespace
from ..errors import ShapeError
from .base import Layer

__all__ = ["BatchNorm1d", "BatchNorm2d"]


class _BatchNorm(Layer):
    """Inference-time batch normalisation y = (x − μ)/sqrt(σ² + eps)·γ + β, per channel (axis 1)."""

    _ranks: tuple[int, ...] = ()

    def __init__(self, running_mean: Any, running_var: Any, weight: Any | None = None, bias: Any | None = None,
                 eps: float = 1e-5):
        xp = get_namespace(running_mean)
        features = running_mean.shape[0]
        for name, array in (("running_var", running_var), ("weight", weight), ("bias", bias)):
            if array is not None and tuple(array.shape) != (features,):
                raise ShapeError(f"{type(self).__name__} {name} must be ({features},), got {tuple(array.shape)}")
        self.running_mean = running_mean
        self.running_var = running_var
        self.weight = weight if weight is not None else xp.ones_like(running_mean)
        self.bias = bias if bias is not None else xp.zeros_like(running_mean)
        self.eps = float(eps)

    @property
    def num_features(self) -> int:
        return int(self.running_mean.shape[0])

    def parameters(self) -> dict[str, Any]:
        return {"weight": self.weight, "bias": self.bias,
                "running_mean": self.running_mean, "running_var": self.running_var}

    def hyperparameters(self) -> dict[str, Any]:
        return {"num_features": self.num_features, "eps": self.eps}

    def scale_shift(self) -> tuple[Any, Any]:
        """(scale, shift) with y = scale·x + shift per channel; used to fold the layer away."""
        xp = get_namespace(self.running_var)
        scale = self.weight / xp.sqrt(self.running_var + self.eps)
        return scale, self.bias - self.running_mean * scale

    def _broadcast(self, vector: Any, ndim: int) -> Any:
        xp = get_namespace(vector)
        return xp.reshape(vector, (1, -1) + (1,) * (ndim - 2))

    def forward(self, x: Any) -> Any:
        self._check_rank(x, self._ranks, f"rank {self._ranks} input with {self.num_features} channels")
        if x.shape[1] != self.num_features:
            raise ShapeError(f"{self.describe()} expects {self.num_features} channels, got shape {tuple(x.shape)}")
        scale, shift = self.scale_shift()
        return x * self._broadcast(scale, x.ndim) + self._broadcast(shift, x.ndim)

    def gradient(self, x: Any, grad_output: Any) -> Any:
        scale, _ = self.scale_shift()
        return grad_output * self._broadcast(scale, x.ndim)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, F) or (N, C, L) inputs, inference form."""

    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs, inference form."""

    _ranks = (4,)
