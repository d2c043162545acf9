"""Element-wise activations besides ReLU: ``Tanh``, ``Sigmoid``, ``LeakyReLU``, ``ELU``, ``GELU``, ``SiLU``, ``ReLU6``.

Each layer has the forward PyTorch defines and its exact derivative in ``gradient`` (gradient×input,
integrated gradients and other baselines use it). None of them is linear in its input, so the
composites give them :class:`~lrpcore.rules.Pass`: relevance goes through unchanged, R_j = R_k for the
one input j of each output k. This is how the LRP Toolbox treats its ``Tanh`` layers and how zennit
treats every activation (``zennit.types.Activation`` → ``Pass``).

When passing relevance unchanged is justified, and when not
-----------------------------------------------------------
LRP explains the pre-activations of a layer: the rule of the linear layer above splits R_k in
proportion to the contributions a_j w_jk, and the activation only decides the values a_j. Passing
R through an activation g is exact bookkeeping (conservation holds), and the explanation is
faithful where g preserves what the rules below read from its output:

- **ReLU, ReLU6, LeakyReLU, ELU, Tanh, Sigmoid are monotone.** A larger pre-activation gives a larger
  activation, so "this neuron mattered" keeps its meaning. For ReLU a neuron with a_k = 0 receives
  no relevance from a rule of the form a ⊙ c above it, so passing is consistent.
- **Signs.** Tanh, LeakyReLU and ELU have negative outputs for negative inputs (Sigmoid and SiLU
  have positive outputs for negative inputs). A neuron with a negative activation can receive
  relevance of either sign from the layer above, and passing it down hands that sign to the
  pre-activation unchanged. Rules that assume non-negative inputs (z⁺, α1β0's positivity, γ's
  "positive contributions") were derived for ReLU networks; lrpcore's αβ and γ split inputs by
  sign and stay correct, but their interpretation ("evidence for") weakens.
- **Sigmoid saturates, and its zero is not 0.** σ(0) = 1/2, so an inactive unit still passes
  relevance; LRP-0 through a sigmoid network does not equal gradient×input, and the bias-free
  root point of deep Taylor decomposition does not exist. The Toolbox's tanh nets are explained
  this way all the same; say so when you report them.
- **GELU and SiLU are not monotone**: below about x ≈ −0.75 (GELU) or x ≈ −1.28 (SiLU) a larger
  input gives a *smaller* output, and their outputs are negative there. Passing relevance treats
  them like a ReLU with a smooth corner, which is a reasonable approximation where inputs are
  mostly positive or near zero, and wrong in sign where the non-monotone branch carries weight.
  No LRP rule with conservation and a justification exists for them in the literature we follow.
"""
from __future__ import annotations

import math
from typing import Any

from ..backend import get_namespace, to_backend, to_numpy
from .base import Layer

__all__ = ["Tanh", "Sigmoid", "LeakyReLU", "ELU", "GELU", "SiLU", "ReLU6"]


def _finite_number(value: Any, name: str, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ValueError(f"{owner} {name} must be a finite number, got {value!r}")
    return float(value)


def _sigmoid(x: Any) -> Any:
    """1 / (1 + exp(−x)) without overflow: exp is only ever taken of −|x|."""
    xp = get_namespace(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _erf(x: Any) -> Any:
    """The error function, element-wise: SciPy's for NumPy, CuPy's for CuPy, through NumPy otherwise.

    The array API has no erf; GELU needs it exactly (torch's GELU uses erf, not an approximation).
    """
    xp = get_namespace(x)
    name = getattr(xp, "__name__", "")
    if "cupy" in name:
        import cupyx.scipy.special

        return cupyx.scipy.special.erf(x)
    import scipy.special

    if name.endswith("numpy") and "strict" not in name:
        return scipy.special.erf(x)
    result = scipy.special.erf(to_numpy(x))
    return xp.astype(to_backend(result, xp), x.dtype)


class _Elementwise(Layer):
    """An activation applied to every entry; relevance passes (Pass), the shape is kept."""

    def describe(self) -> str:
        settings = ", ".join(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"
                             for key, value in self.hyperparameters().items())
        return f"{type(self).__name__}({settings})"


class Tanh(_Elementwise):
    """tanh(x); its derivative 1 − tanh²(x)."""

    def forward(self, x: Any) -> Any:
        xp = get_namespace(x)
        return xp.tanh(x)

    def gradient(self, x: Any, grad_output: Any) -> Any:
        xp = get_namespace(x)
        y = xp.tanh(x)
        return grad_output * (1.0 - y * y)


class Sigmoid(_Elementwise):
    """σ(x) = 1 / (1 + exp(−x)); its derivative σ(x)(1 − σ(x))."""

    def forward(self, x: Any) -> Any:
        return _sigmoid(x)

    def gradient(self, x: Any, grad_output: Any) -> Any:
        y = _sigmoid(x)
        return grad_output * y * (1.0 - y)


class LeakyReLU(_Elementwise):
    """x for x > 0, ``negative_slope``·x otherwise (torch: derivative ``negative_slope`` at 0 too)."""

    def __init__(self, negative_slope: float = 0.01):
        self.negative_slope = _finite_number(negative_slope, "negative_slope", "LeakyReLU")

    def hyperparameters(self) -> dict[str, Any]:
        return {"negative_slope": self.negative_slope}

    def forward(self, x: Any) -> Any:
        xp = get_namespace(x)
        return xp.where(x > 0, x, x * self.negative_slope)

    def gradient(self, x: Any, grad_output: Any) -> Any:
        xp = get_namespace(x)
        return xp.where(x > 0, grad_output, grad_output * self.negative_slope)


class ELU(_Elementwise):
    """x for x > 0, α(exp(x) − 1) otherwise; derivative 1 or α·exp(x) (torch's value α at 0)."""

    def __init__(self, alpha: float = 1.0):
        self.alpha = _finite_number(alpha, "alpha", "ELU")

    def hyperparameters(self) -> dict[str, Any]:
        return {"alpha": self.alpha}

    def forward(self, x: Any) -> Any:
        xp = get_namespace(x)
        negative = xp.clip(x, max=0.0)           # expm1 only of non-positive values: no overflow
        return xp.where(x > 0, x, self.alpha * xp.expm1(negative))

    def gradient(self, x: Any, grad_output: Any) -> Any:
        xp = get_namespace(x)
        negative = xp.clip(x, max=0.0)
        return xp.where(x > 0, grad_output, grad_output * self.alpha * xp.exp(negative))


class GELU(_Elementwise):
    """x·Φ(x) with Φ the standard normal CDF (``approximate="none"``, torch's default), or torch's
    tanh form 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))) (``approximate="tanh"``). Not monotone."""

    _COEFFICIENT = 0.044715

    def __init__(self, approximate: str = "none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def hyperparameters(self) -> dict[str, Any]:
        return {"approximate": self.approximate}

    def _inner(self, x: Any) -> Any:
        return math.sqrt(2.0 / math.pi) * (x + self._COEFFICIENT * x * x * x)

    def forward(self, x: Any) -> Any:
        xp = get_namespace(x)
        if self.approximate == "tanh":
            return 0.5 * x * (1.0 + xp.tanh(self._inner(x)))
        return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))

    def gradient(self, x: Any, grad_output: Any) -> Any:
        xp = get_namespace(x)
        if self.approximate == "tanh":
            t = xp.tanh(self._inner(x))
            inner_derivative = math.sqrt(2.0 / math.pi) * (1.0 + 3.0 * self._COEFFICIENT * x * x)
            return grad_output * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * inner_derivative)
        cdf = 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))
        density = xp.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        return grad_output * (cdf + x * density)


class SiLU(_Elementwise):
    """x·σ(x) (also called swish); derivative σ(x)(1 + x(1 − σ(x))). Not monotone."""

    def forward(self, x: Any) -> Any:
        return x * _sigmoid(x)

    def gradient(self, x: Any, grad_output: Any) -> Any:
        y = _sigmoid(x)
        return grad_output * y * (1.0 + x * (1.0 - y))


class ReLU6(_Elementwise):
    """min(max(x, 0), 6) (MobileNet's activation); derivative 1 strictly between 0 and 6, else 0 (torch)."""

    def forward(self, x: Any) -> Any:
        xp = get_namespace(x)
        return xp.clip(x, min=0.0, max=6.0)

    def gradient(self, x: Any, grad_output: Any) -> Any:
        xp = get_namespace(x)
        return xp.where(xp.logical_and(x > 0, x < 6), grad_output, xp.zeros_like(grad_output))
