"""Inference-time batch normalisation, and what LRP does with it.

A BatchNorm at inference is the per-channel affine map y = s·x + t with s = γ/√(σ² + eps) and
t = β − μ·s. Three ways to treat it, in order of preference:

1. **Fold it** into the neighbouring linear layer (``lrpcore.canonize``, or :meth:`_BatchNorm.fold_into`
   for one pair): W' = s·W, b' = s·b + t after a Dense/Conv layer, or W' = W·diag(s),
   b' = b + W t before a Dense layer. The folded network computes the same function and the
   rules see one linear layer (Montavon et al. 2019, section 10.3.3, "canonization"). This is
   what zennit's canonizers do and what every preset assumes.
2. **Pass relevance through it** (the :class:`BatchNorm1d`/:class:`BatchNorm2d` layers as they are:
   not linear for the composites, so they get ``Pass``). This is zennit's behaviour for a BatchNorm
   it does not merge, and the default where a BatchNorm cannot be folded (e.g. after an Add or a
   pooling layer): ``canonize`` keeps it with a warning. It conserves relevance, but ignores that
   the shift t moves the activations: relevance of a unit is not scaled by how much of its value
   the BatchNorm itself added.
3. **Treat it as a per-channel linear layer** with its own rule: :class:`BatchNormLinear` (or
   ``norm.as_linear()``) is the same map as a :class:`~lrpcore.layers.LinearLayer` with weight s (C,)
   and bias t (C,), each output connected to its one input, so every rule applies to it: LRP-0/ε give
   R_j = s_j x_j / (s_j x_j + t_j + ε) · R_j, the share of the output not contributed by the shift
   (the shift absorbs the rest, as a bias does); αβ and γ separate the signs of s_j x_j and t_j.
   Use it where the shift should count as evidence absorbed, as for any bias.

The default stays 2 (zennit's), because it never changes the total relevance and a BatchNorm
that cannot be folded is usually where relevance already left the linear chain (a residual sum);
3 is the explicit option for those who want the bias-absorbing view.
"""
from __future__ import annotations

from typing import Any

from ..backend import get_namespace
from ..errors import ShapeError
from .base import Layer, LinearLayer, MaxPoolMode

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNormLinear"]


class _Statistics:
    """The arrays and settings of an inference-time BatchNorm, shared by the pass-through and linear forms."""

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

    def _check_input(self, x: Any) -> None:
        expected = f"rank {self._ranks} input with {self.num_features} channels"
        self._check_rank(x, self._ranks, expected)  # type: ignore[attr-defined]
        if x.shape[1] != self.num_features:
            raise ShapeError(f"{self.describe()} expects {self.num_features} channels, "  # type: ignore[attr-defined]
                             f"got shape {tuple(x.shape)}")


class _BatchNorm(_Statistics, Layer):
    """Inference-time batch normalisation y = (x − μ)/sqrt(σ² + eps)·γ + β, per channel (axis 1).

    Not linear for the composites: relevance passes through it (see the module docstring).
    """

    def forward(self, x: Any) -> Any:
        self._check_input(x)
        scale, shift = self.scale_shift()
        return x * self._broadcast(scale, x.ndim) + self._broadcast(shift, x.ndim)

    def gradient(self, x: Any, grad_output: Any) -> Any:
        scale, _ = self.scale_shift()
        return grad_output * self._broadcast(scale, x.ndim)

    def as_linear(self) -> "BatchNormLinear":
        """The same map as a per-channel linear layer with its own LRP rule (choice 3 of the module docstring)."""
        return BatchNormLinear(self.running_mean, self.running_var, self.weight, self.bias, self.eps)

    def fold_into(self, linear: Layer) -> Layer:
        """The layer computing this BatchNorm applied after ``linear`` (a Dense, Conv2d or Conv1d, any groups):
        W' = scale·W (per output channel), b' = scale·b + shift. Raises ``ShapeError`` when the channels differ."""
        from .conv import Conv1d, Conv2d
        from .dense import Dense

        if not isinstance(linear, (Dense, Conv2d, Conv1d)):
            raise TypeError(f"cannot fold {self.describe()} into {linear.describe()}: only Dense, Conv2d and "
                            "Conv1d layers take a BatchNorm that follows them")
        if linear.weight.shape[0] != self.num_features:
            raise ShapeError(f"cannot fold {self.describe()} into {linear.describe()}: it has "
                             f"{linear.weight.shape[0]} output channels")
        xp = get_namespace(linear.weight)
        scale, shift = self.scale_shift()
        weight = linear.weight * xp.reshape(scale, (-1,) + (1,) * (linear.weight.ndim - 1))
        bias = linear.bias * scale + shift
        if isinstance(linear, Dense):
            return Dense(weight, bias)
        return type(linear)(weight, bias, stride=linear.stride, padding=linear.padding, groups=linear.groups)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, F) or (N, C, L) inputs, inference form."""

    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs, inference form."""

    _ranks = (4,)


class BatchNormLinear(_Statistics, LinearLayer):
    """A BatchNorm as a per-channel linear layer y = s·x + t (weight s, bias t; module docstring, choice 3).

    Stores the BatchNorm's own arrays (``weight`` γ, ``bias`` β, ``running_mean``, ``running_var``,
    ``eps``); the rules see ``relevance_weight`` = s and ``relevance_bias`` = t. Accepts (N, F),
    (N, C, L) and (N, C, H, W) inputs, channels on axis 1.
    """

    has_weights = True
    _ranks = (2, 3, 4)

    def describe(self) -> str:
        return f"BatchNormLinear({self.num_features}, eps={self.eps:g})"

    def relevance_weight(self, x: Any, maxpool: MaxPoolMode = "winner") -> Any:
        return self.scale_shift()[0]

    def relevance_bias(self) -> Any | None:
        return self.scale_shift()[1]

    def linear_forward(self, x: Any, weight: Any, bias: Any | None = None) -> Any:
        self._check_input(x)
        out = x * self._broadcast(weight, x.ndim)
        return out if bias is None else out + self._broadcast(bias, x.ndim)

    def linear_transpose(self, s: Any, weight: Any, input_shape: tuple[int, ...]) -> Any:
        return s * self._broadcast(weight, s.ndim)
