"""Pairwise matching with product neurons, explained by the second-order LRP rule (Montavon et al. 2019, 10.4).

A similarity model of two inputs x ∈ ℝ^I and y ∈ ℝ^J:

    a_k = max(0, Σ_i x_i w_ik) · max(0, Σ_j y_j v_jk),        f(x, y) = Σ_k u_k a_k

(``u`` defaults to ones: f is the sum of the product neurons). Relevance of the top layer R_k = u_k a_k
(LRP-0 on a bias-free linear map, exact). The product neuron is explained in terms of *pairs* of input
features by the chapter's second-order rule

    R_ij = Σ_k  x_i y_j w_ik v_jk / Σ_{i'j'} x_i' y_j' w_i'k v_j'k · R_k,

whose denominator is (Σ_i x_i w_ik)(Σ_j y_j v_jk) = a_k on active neurons, so Σ_ij R_ij = Σ_k R_k: the
explanation is an I × J matrix that sums to f(x, y).

Why a module of its own: an lrpcore :class:`~lrpcore.Sequential` has one input and explains it with a
relevance of the input's shape; here there are two inputs and the explanation lives on their product
space (second order). :func:`explain_pair` returns a :class:`PairExplanation` with the pair matrix, a
trace of both steps and a conservation table in the form :meth:`lrpcore.Explanation.conservation` prints.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from .backend import get_namespace, to_numpy
from .errors import ShapeError
from .explain import ConservationTable
from .rules import safe_divide

__all__ = ["ProductNeurons", "PairExplanation", "PairStep", "explain_pair", "pair_matrix"]


class ProductNeurons:
    """f(x, y) = Σ_k u_k · max(0, xᵀw_k) · max(0, yᵀv_k) with ``w`` (I, K), ``v`` (J, K), ``u`` (K,)."""

    def __init__(self, w: Any, v: Any, u: Any | None = None):
        if w.ndim != 2 or v.ndim != 2 or w.shape[1] != v.shape[1]:
            raise ShapeError(f"ProductNeurons needs w (I, K) and v (J, K) with the same K, got shapes "
                             f"{tuple(w.shape)} and {tuple(v.shape)}")
        xp = get_namespace(w)
        u = xp.ones((w.shape[1],), dtype=w.dtype) if u is None else u
        if tuple(u.shape) != (w.shape[1],):
            raise ShapeError(f"ProductNeurons top weights u must be ({w.shape[1]},), got {tuple(u.shape)}")
        self.w, self.v, self.u = w, v, u

    def describe(self) -> str:
        return f"ProductNeurons({self.w.shape[0]}×{self.v.shape[0]}→{self.w.shape[1]})"

    def _check(self, x: Any, y: Any) -> None:
        if x.ndim != 2 or x.shape[1] != self.w.shape[0]:
            raise ShapeError(f"{self.describe()} expects x of shape (N, {self.w.shape[0]}), got {tuple(x.shape)}")
        if y.ndim != 2 or y.shape[1] != self.v.shape[0] or y.shape[0] != x.shape[0]:
            raise ShapeError(f"{self.describe()} expects y of shape ({x.shape[0]}, {self.v.shape[0]}), "
                             f"got {tuple(y.shape)}")

    def neurons(self, x: Any, y: Any) -> tuple[Any, Any, Any]:
        """(z_x, z_y, a): the two projections (N, K) and the product neurons a_k = z_x⁺ z_y⁺ (N, K)."""
        self._check(x, y)
        xp = get_namespace(x)
        z_x = xp.matmul(x, self.w)
        z_y = xp.matmul(y, self.v)
        zero = xp.zeros_like(z_x)
        return z_x, z_y, xp.maximum(z_x, zero) * xp.maximum(z_y, zero)

    def forward(self, x: Any, y: Any) -> Any:
        """f(x, y) per sample, shape (N,)."""
        xp = get_namespace(x)
        return xp.sum(self.neurons(x, y)[2] * self.u, axis=1)

    __call__ = forward


@dataclasses.dataclass
class PairStep:
    """One step of the pair explanation: ``relevance_out`` (above), ``relevance_in`` (below), ``z`` the
    denominator, ``s`` = R ⊘ z; sums are per sample."""

    index: int
    name: str
    rule: str
    relevance_out: Any
    relevance_in: Any
    z: Any
    s: Any
    sum_out: Any
    sum_in: Any


@dataclasses.dataclass
class PairExplanation:
    """``relevance``: (N, I, J) pair matrices R_ij; ``output`` f(x, y) (N,); ``neurons`` R_k (N, K);
    ``trace``: [product step, top step] (input side first)."""

    relevance: Any
    output: Any
    neurons: Any
    trace: list[PairStep]

    def conservation(self) -> ConservationTable:
        """Per-step ΣR (batch sums), as :meth:`lrpcore.Explanation.conservation` reports it."""
        rows = []
        for step in self.trace:
            sum_out, sum_in = float(to_numpy(step.sum_out).sum()), float(to_numpy(step.sum_in).sum())
            rows.append({"index": step.index, "layer": step.name, "rule": step.rule, "sum_out": sum_out,
                         "sum_in": sum_in, "absorbed": sum_out - sum_in,
                         "relative_error": abs(sum_in - sum_out) / max(abs(sum_out), 1e-30)})
        xp = get_namespace(self.relevance)
        return ConservationTable(rows=rows, explained=float(to_numpy(self.output).sum()),
                                 input_sum=float(to_numpy(xp.sum(self.relevance))))


def _stabilize(z: Any, epsilon: float) -> Any:
    xp = get_namespace(z)
    if epsilon == 0:
        return z
    return z + epsilon * xp.where(z >= 0, xp.ones_like(z), -xp.ones_like(z))


def explain_pair(model: ProductNeurons, x: Any, y: Any, epsilon: float = 0.0) -> PairExplanation:
    """Explain f(x, y) by the second-order rule: R_ij = Σ_k x_i w_ik y_j v_jk / stab(z_k) · R_k.

    z_k = (xᵀw_k)(yᵀv_k) is the product of the projections (= a_k where both are positive; outputs with a
    non-positive projection carry no relevance). ``epsilon`` > 0 adds ε·sign(z_k) (absorbs ε/(z_k+ε)).
    """
    xp = get_namespace(x)
    z_x, z_y, neurons = model.neurons(x, y)
    output = xp.sum(neurons * model.u, axis=1)
    relevance_k = neurons * model.u                                     # LRP-0 on f = Σ u_k a_k (no bias)
    z = z_x * z_y
    s = safe_divide(relevance_k, _stabilize(z, epsilon))
    s = xp.where(neurons > 0, s, xp.zeros_like(s))                      # inactive product neurons pass nothing
    # R_ij = Σ_k (x_i w_ik) (y_j v_jk) s_k: one product per sample
    left = x[:, :, None] * model.w[None, :, :]                          # (N, I, K)
    right = y[:, :, None] * model.v[None, :, :]                         # (N, J, K)
    relevance = xp.matmul(left * s[:, None, :], xp.matrix_transpose(right))
    top = PairStep(1, f"Σ_k u_k a_k ({model.u.shape[0]}→1)", "LRP-0", output[:, None], relevance_k, output[:, None],
                   xp.ones_like(output)[:, None], output, xp.sum(relevance_k, axis=1))
    product = PairStep(0, model.describe(), "second-order" + (f" (ε={epsilon:g})" if epsilon else ""), relevance_k,
                       relevance, z, s, xp.sum(relevance_k, axis=1), xp.sum(relevance, axis=(1, 2)))
    return PairExplanation(relevance=relevance, output=output, neurons=relevance_k, trace=[product, top])


def pair_matrix(model: ProductNeurons, x: Any, y: Any, epsilon: float = 0.0) -> Any:
    """The explicit (I·J × K) matrix M of the second-order rule for one sample: vec(R) = M · R_k.

    Built entry by entry from its definition M_(ij),k = x_i w_ik y_j v_jk / stab(z_k) on active neurons.
    """
    xp = get_namespace(x)
    if x.ndim == 1:
        x, y = x[None, :], y[None, :]
    if x.shape[0] != 1:
        raise ShapeError(f"pair_matrix explains one sample, got a batch of {x.shape[0]}")
    z_x, z_y, neurons = model.neurons(x, y)
    scale = safe_divide(xp.ones_like(z_x), _stabilize(z_x * z_y, epsilon))
    scale = xp.where(neurons > 0, scale, xp.zeros_like(scale))[0]       # (K,)
    left = x[0][:, None] * model.w                                      # (I, K)
    right = y[0][:, None] * model.v                                     # (J, K)
    matrix = left[:, None, :] * right[None, :, :] * scale               # (I, J, K)
    return xp.reshape(matrix, (x.shape[1] * y.shape[1], -1))
