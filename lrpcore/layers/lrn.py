"""``LocalResponseNorm``: PyTorch's local response normalisation, linearised for LRP as Binder et al. 2016 did.

Forward (``torch.nn.LocalResponseNorm(size, alpha, beta, k)``), across channels of (N, C, ...) inputs:

    y_c = x_c · S_c^(−β),   S_c = k + (α/n) Σ_{j ∈ N(c)} x_j²,   N(c) = {c − ⌊n/2⌋, …, c + ⌊(n−1)/2⌋} ∩ [0, C)

with n = ``size`` (channels outside [0, C) count as zeros, and the sum is divided by n even there,
as PyTorch's zero-padded average does).

Relevance: Binder, Montavon, Bach, Müller, Samek 2016, "Layer-wise relevance propagation for
neural networks with local renormalization layers" (ICANN; arXiv:1604.00825). LRN is a product-type
non-linearity, not of the form Σ_j x_j w_jk, so they decompose each output by a first-order Taylor
expansion into one term per input and then use those terms as the z_jk of the ordinary rules
(their ε- and β-rules), so that the shares of an output sum to one. The terms, for output k:

- the input's own term: the output it would have with all its neighbours at zero,
      z_kk = x_k · (k + (α/n) x_k²)^(−β);
- each neighbour j ≠ k in N(k): the first-order change of y_k when x_j goes from 0 to its value
  (the derivative taken at the actual input),
      z_jk = x_j · ∂y_k/∂x_j = −2 β (α/n) x_k x_j² S_k^(−β−1).

Their sum Σ_j z_jk is the Taylor approximation of y_k (equal to it up to second-order terms in
α/n, small for the usual α = 1e-4). The formula above is read from the authors' own implementation
in the LRP Toolbox (``caffe-master-lrp/src/caffe/layers/lrn_layer.cpp``, relevance type 1, which
the Toolbox's demonstrators use by default); the paper states that the resulting weights
v_jk = z_jk / Σ_j z_jk sum to one and are combined with the ε- and β-rules. (That C++ code
multiplies the terms by R_k without dividing by Σ_j z_jk; lrpcore divides, as the paper says.)

lrpcore represents this as what it is: a linear map linearised around the input, like max
pooling. ``relevance_weight(x)`` returns the (N, n, C, ...) weights w_jk = z_jk / x_j, so
``linear_forward(x, w)`` is the Taylor sum Σ_j z_jk and every rule applies to the terms:
LRP-0/ε give Binder's ε-rule R_j = Σ_k z_jk / (Σ_j z_jk + ε) · R_k, αβ gives the β-rule. That
is the default whenever a composite gives the layer a linear-layer rule. The other choice, the
identity pass used before that paper (R_in = R_out; the Toolbox's relevance type 0), is
``Pass()`` for this layer, e.g. ``Composite(by_type={LocalResponseNorm: Pass()}, ...)``.

``forward`` is the exact normalisation, not the Taylor sum, and ``gradient`` its exact derivative.
"""
from __future__ import annotations

import math
from typing import Any

from ..backend import get_namespace
from ..errors import InputValueError, ShapeError
from .base import LinearLayer, MaxPoolMode

__all__ = ["LocalResponseNorm"]


def _shift(array: Any, offset: int) -> Any:
    """result[:, c] = array[:, c + offset] where 0 ≤ c + offset < C, 0 elsewhere (channel axis 1)."""
    if offset == 0:
        return array
    xp = get_namespace(array)
    channels = array.shape[1]
    result = xp.zeros_like(array)
    if abs(offset) >= channels:
        return result
    if offset > 0:
        result[:, :channels - offset, ...] = array[:, offset:, ...]
    else:
        result[:, -offset:, ...] = array[:, :channels + offset, ...]
    return result


def _number(value: Any, name: str, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ValueError(f"LocalResponseNorm {name} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"LocalResponseNorm {name} must be positive, got {value!r}")
    return float(value)


class LocalResponseNorm(LinearLayer):
    """Local response normalisation across channels (PyTorch's), linearised for LRP by Binder et al. 2016.

    ``size`` n (channels in the window), ``alpha``, ``beta``, ``k`` as ``torch.nn.LocalResponseNorm``.
    See the module docstring for the forward, the Taylor terms and the two relevance choices.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"LocalResponseNorm size must be an integer ≥ 1, got {size!r}")
        self.size = int(size)
        self.alpha = _number(alpha, "alpha", positive=False)
        self.beta = _number(beta, "beta", positive=False)
        self.k = _number(k, "k", positive=False)

    def hyperparameters(self) -> dict[str, Any]:
        return {"size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}

    def describe(self) -> str:
        return f"LocalResponseNorm(size={self.size}, α={self.alpha:g}, β={self.beta:g}, k={self.k:g})"

    @property
    def offsets(self) -> list[int]:
        """j − k for the inputs j in the window of output k: −⌊n/2⌋ … ⌊(n−1)/2⌋ (PyTorch's window)."""
        return list(range(-(self.size // 2), (self.size - 1) // 2 + 1))

    def _check(self, x: Any) -> None:
        if x.ndim < 3:
            raise ShapeError(f"{self.describe()} expects (N, C, ...) inputs with a channel axis, got shape "
                             f"{tuple(x.shape)}")

    def _scale(self, x: Any) -> Any:
        """S_c = k + (α/n) Σ_{j ∈ N(c)} x_j²."""
        squares = x * x
        total = None
        for offset in self.offsets:
            shifted = _shift(squares, offset)
            total = shifted if total is None else total + shifted
        return self.k + (self.alpha / self.size) * total

    def forward(self, x: Any) -> Any:
        self._check(x)
        xp = get_namespace(x)
        scale = self._scale(x)
        self._check_scale(scale)
        return x * xp.pow(scale, -self.beta)

    def _check_scale(self, scale: Any) -> None:
        xp = get_namespace(scale)
        if not bool(xp.all(scale > 0)):
            raise InputValueError(f"{self.describe()}: k + (α/n)·Σx² must be positive, found a value ≤ 0 "
                             "(k ≤ 0 with an all-zero window?)")

    def gradient(self, x: Any, grad_output: Any) -> Any:
        """∂y_k/∂x_j = δ_jk S_k^(−β) − 2β(α/n) x_k x_j S_k^(−β−1) for j ∈ N(k), applied to ``grad_output``."""
        xp = get_namespace(x)
        scale = self._scale(x)
        direct = grad_output * xp.pow(scale, -self.beta)
        through_scale = grad_output * x * xp.pow(scale, -self.beta - 1.0)
        gathered = None
        for offset in self.offsets:            # output k = j − offset has j in its window
            shifted = _shift(through_scale, -offset)
            gathered = shifted if gathered is None else gathered + shifted
        return direct - 2.0 * self.beta * (self.alpha / self.size) * x * gathered

    def relevance_weight(self, x: Any, maxpool: MaxPoolMode = "winner") -> Any:
        """The (N, n, C, ...) weights w_jk with x_j · w_jk = the Taylor term z_jk (module docstring);
        entry [:, i, k] belongs to input j = k + offsets[i]."""
        self._check(x)
        xp = get_namespace(x)
        scale = self._scale(x)
        self._check_scale(scale)
        cross = -2.0 * self.beta * (self.alpha / self.size) * x * xp.pow(scale, -self.beta - 1.0)
        weights = []
        for offset in self.offsets:
            if offset == 0:
                weights.append(xp.pow(self.k + (self.alpha / self.size) * x * x, -self.beta))
            else:
                weights.append(cross * _shift(x, offset))       # −2β(α/n) x_k x_j S_k^(−β−1), j = k + offset
        return xp.stack(weights, axis=1)

    def relevance_bias(self) -> Any | None:
        return None

    def linear_forward(self, x: Any, weight: Any, bias: Any | None = None) -> Any:
        """Σ_j x_j w_jk: with the layer's own weights, the Taylor sum that approximates y_k."""
        self._check(x)
        total = None
        for index, offset in enumerate(self.offsets):
            term = _shift(x, offset) * weight[:, index, ...]
            total = term if total is None else total + term
        return total

    def linear_transpose(self, s: Any, weight: Any, input_shape: tuple[int, ...]) -> Any:
        """c_j = Σ_k w_jk s_k: each output's s times its weight, moved back to the input channel j = k + offset."""
        total = None
        for index, offset in enumerate(self.offsets):
            term = _shift(s * weight[:, index, ...], -offset)
            total = term if total is None else total + term
        xp = get_namespace(s)
        return xp.broadcast_to(total, tuple(input_shape)) if tuple(total.shape) != tuple(input_shape) else total
