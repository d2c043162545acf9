"""Deep Taylor decomposition made explicit: the root point and the Taylor terms behind each LRP rule.

Montavon et al. 2019, section 10.2.3 and appendix 10.A. For a layer z_k = Σ_j a_j w_jk + b_k
followed by a ReLU, the relevance of neuron k is modelled as R_k(a) = max(0, z_k(a)) · c_k with c_k
held constant (section 10.3.1; :mod:`lrpcore.taylor` measures how good that model is). R_k is
expanded to first order at a root point ã^(k) on the neuron's hinge (z_k(ã) = 0):

    R_k(a) = R_k(ã^(k)) + Σ_j (a_j − ã_j^(k)) · [∂R_k/∂a_j](ã^(k)) = Σ_j (a_j − ã_j^(k)) w_jk c_k,

and the relevance of a lower neuron is the sum of its terms over k: R_j = Σ_k (a_j − ã_j^(k)) w_jk c_k.
The root is searched on the line ã^(k) = a − t·v^(k); the hinge condition Σ_j (a_j − t v_j) w_jk + b_k = 0
gives t = z_k / Σ_j v_j w_jk, and the Taylor terms become v_j w_jk / Σ_j v_j w_jk · R_k: each LRP rule
is this formula for its own *search direction* v^(k):

============  =========================================  ===========================  ==============================
rule          v_j^(k)                                    bias neuron v_0^(k)          domain of ã
============  =========================================  ===========================  ==============================
LRP-0 / ε     a_j                                        1                            ℝ (ã = 0 for LRP-0 with bias)
LRP-γ         a_j (1 + γ·1[a_j w_jk > 0])                1 + γ·1[b_k > 0]             ã ≥ 0 (for a ≥ 0)
z⁺            a_j · 1[a_j w_jk > 0]                      1[b_k > 0]                   ã ≥ 0 (for a ≥ 0)
z^B           a_j − l_j if w_jk > 0, else a_j − h_j      0                            l ≤ ã ≤ h
w²            w_jk                                       b_k (if the bias is used)    ℝ (nearest point on hinge)
Midpoint      a_j − m_kj (a fixed reference m_k)         0                            ã = m_k when m_k is on the hinge
============  =========================================  ===========================  ==============================

(Midpoint is NEON's rule for k-means, :class:`lrpcore.neon.Midpoint`: the root is given, t = 1.)

For a ≥ 0 and z_k > 0 the γ and z⁺ roots stay in the positive orthant: z_k ≤ Σ_j z⁺_jk + b⁺_k gives
t ≤ 1/(1 + γ) on the boosted coordinates and t ≤ 1 on the others; LRP-γ's root lies between LRP-0's
(γ = 0, the origin) and z⁺'s (γ → ∞). w²'s root, the nearest point on the hinge, may leave the orthant:
it is the rule for inputs in ℝ^d. For a ≥ 0, 1[a_j w_jk > 0] is the chapter's 1[w_jk > 0]; written on the contributions it matches
lrpcore's γ and z⁺ for inputs of both signs.

What the rules absorb, made exact. A rule whose denominator contains the bias treats it as an extra
input neuron a_0 = 1 with weight w_0k = b_k, searched along v_0 (column "bias neuron"): in that extended
space the root is exactly on the hinge, and the bias neuron's Taylor term t·v_0·b_k·c_k is the relevance
the bias absorbs. A stabilized denominator stab(d) = d + ε·sign(d) shortens the step to
t = z_k / stab(d_k). In the original space (the bias held fixed) the pre-activation at the root is then

    z_k(ã^(k)) = t_k·v_0·b_k  +  z_k·(stab(d_k) − d_k)/stab(d_k)        (bias share + ε share),

and Σ_j (Taylor terms) + bias share·c_k + ε share·c_k = R_k. :class:`RootPoints` returns both shares and
:func:`check_roots` checks this identity, the Taylor-reconstruction of the rule's own fast path
(``rule.relevance``) and the input domain.

Only neurons that carry relevance (R_k ≠ 0) get a root; for the others t = 0 (ã = a, no terms).
The relevance model R_k = z_k c_k with c_k = R_k / z_k is used where z_k ≠ 0 (ReLU-active neurons, or
the logits of the top layer, where R_k = z_k itself).

Any :class:`~lrpcore.layers.LinearLayer` works (Dense, Conv1d/2d, pooling): the layer's matrix W
(out × in) is built from its forward map (:func:`lrpcore.matrix.forward_matrix`), so the arrays here are
(N, out, in): explicit, and meant for single layers of modest size (a 28×28 convolution layer is a few
million entries per sample).
"""
from __future__ import annotations

import dataclasses
from typing import Any

from .backend import get_namespace
from .layers import LinearLayer
from .matrix import forward_matrix
from .neon import Midpoint
from .rules import AlphaBeta, Epsilon, Gamma, Rule, WSquare, ZBox, ZPlus

__all__ = ["RootPoints", "root_points", "search_direction", "check_roots", "RootCheck", "SUPPORTED_RULES"]

#: Rules with a deep-Taylor interpretation here (LRP-0 is an Epsilon with ε = 0; z⁺ is AlphaBeta(1, 0)).
SUPPORTED_RULES = (Epsilon, Gamma, ZPlus, ZBox, WSquare, Midpoint)


@dataclasses.dataclass
class RootPoints:
    """The deep Taylor decomposition of one layer under one rule, for a batch (arrays (N, out, in) or (N, out)).

    ``direction`` v^(k) (N, K, J); ``bias_direction`` v_0^(k) (N, K); ``step`` t_k (N, K);
    ``root`` ã^(k) = a − t_k v^(k) (N, K, J); ``gradient`` ∂R_k/∂a_j = w_jk c_k (N, K, J);
    ``terms`` (a_j − ã_j^(k)) ∂R_k/∂a_j (N, K, J), whose sum over k is the rule's R_j;
    ``z`` the pre-activation z_k(a); ``denominator`` d_k = Σ_j v_j w_jk + v_0 b_k before stabilization;
    ``c`` = R_k / z_k; ``root_preactivation`` z_k(ã^(k)) with the layer's own bias;
    ``bias_share``/``epsilon_share`` the two parts of it (module docstring); ``active`` the neurons with a
    root (R_k ≠ 0 and z_k ≠ 0). ``weight`` W (K, J) or (N, K, J); ``input_shape`` one sample's shape.
    """

    rule: Rule
    a: Any
    relevance_upper: Any
    weight: Any
    bias: Any
    direction: Any
    bias_direction: Any
    step: Any
    root: Any
    gradient: Any
    terms: Any
    z: Any
    denominator: Any
    c: Any
    root_preactivation: Any
    bias_share: Any
    epsilon_share: Any
    active: Any
    input_shape: tuple[int, ...]

    @property
    def relevance(self) -> Any:
        """R_j = Σ_k terms_kj, in the layer input's shape."""
        xp = get_namespace(self.terms)
        return xp.reshape(xp.sum(self.terms, axis=1), (self.terms.shape[0], *self.input_shape))

    @property
    def absorbed(self) -> Any:
        """Relevance the rule does not pass down, per neuron (N, K): (bias share + ε share)·c_k."""
        return (self.bias_share + self.epsilon_share) * self.c


def _flat(array: Any) -> Any:
    xp = get_namespace(array)
    return xp.reshape(array, (array.shape[0], -1))


def _layer_bias(layer: LinearLayer, input_shape: tuple[int, ...], xp: Any, dtype: Any) -> Any:
    """The layer's bias as one value per output neuron (K,) (a convolution's bias repeated over positions);
    zeros for bias-free layers (pooling)."""
    zeros = xp.zeros((1, *input_shape), dtype=dtype)
    return xp.reshape(layer.linear_forward(zeros, layer.relevance_weight(zeros), layer.relevance_bias()), (-1,))


def _uses_bias(rule: Rule) -> bool:
    if isinstance(rule, ZBox):
        return False
    return bool(getattr(rule, "use_bias", False))


def search_direction(rule: Rule, layer_input: Any, weight: Any, bias: Any) -> tuple[Any, Any]:
    """(v, v_0): the search direction of ``rule`` for every output neuron, and of the bias neuron.

    ``layer_input`` (N, ...) the layer input, ``weight`` W (K, J) or (N, K, J), ``bias`` (K,). Returns v (N, K, J) and
    v_0 (N, K) as in the table of the module docstring. Unsupported rules raise ``TypeError``.
    """
    xp = get_namespace(layer_input)
    a = _flat(layer_input)
    inputs = a[:, None, :]
    weights = weight if weight.ndim == 3 else weight[None, :, :]
    use_bias = _uses_bias(rule)
    ones = xp.ones((a.shape[0], weights.shape[1]), dtype=a.dtype)
    bias_b = xp.broadcast_to(bias[None, :], ones.shape)
    if isinstance(rule, AlphaBeta):          # z⁺ = AlphaBeta(1, 0)
        if rule.alpha != 1.0 or rule.beta != 0.0:
            raise TypeError(f"{rule.describe()}: only α = 1, β = 0 (z⁺) has a single root point")
        direction = inputs * xp.astype(inputs * weights > 0, a.dtype)
        bias_direction = xp.astype(bias_b > 0, a.dtype) if use_bias else ones * 0.0
    elif isinstance(rule, Gamma):
        if rule.symmetric:
            raise TypeError("Gamma(symmetric=True) switches its form by the sign of z_k; use symmetric=False "
                            "(both agree wherever z_k > 0)")
        direction = inputs * (1.0 + rule.gamma * xp.astype(inputs * weights > 0, a.dtype))
        bias_direction = (1.0 + rule.gamma * xp.astype(bias_b > 0, a.dtype)) if use_bias else ones * 0.0
    elif isinstance(rule, Epsilon):          # LRP-0 is Epsilon(ε=0)
        direction = xp.broadcast_to(inputs, (a.shape[0], *weights.shape[1:]))
        bias_direction = ones if use_bias else ones * 0.0
    elif isinstance(rule, ZBox):
        low = _flat(rule._bound(rule.low, layer_input))[:, None, :]
        high = _flat(rule._bound(rule.high, layer_input))[:, None, :]
        direction = xp.where(weights > 0, inputs - low, inputs - high)
        bias_direction = ones * 0.0
    elif isinstance(rule, Midpoint):
        points = xp.astype(xp.asarray(rule.points), a.dtype)
        direction = inputs - points[None, :, :]
        bias_direction = ones * 0.0
    elif isinstance(rule, WSquare):
        direction = xp.broadcast_to(weights, (a.shape[0], *weights.shape[1:]))
        bias_direction = bias_b if use_bias else ones * 0.0
    else:
        raise TypeError(f"no deep Taylor search direction for {rule.describe()}; supported: LRP-0, Epsilon, "
                        "Gamma (non-symmetric), ZPlus, ZBox, WSquare, Midpoint")
    return direction, bias_direction


def root_points(layer: LinearLayer, a: Any, relevance: Any, rule: Rule) -> RootPoints:
    """The deep Taylor decomposition of ``rule`` on ``layer`` at input ``a`` for upper relevance ``relevance``.

    ``a``: (N, ...) the layer input; ``relevance``: (N, ...) in the layer output's shape (R_k).
    Returns a :class:`RootPoints` with every quantity per sample and neuron (module docstring).
    """
    if not isinstance(layer, LinearLayer):
        raise TypeError(f"deep Taylor roots need a layer linear in its input, got {layer.describe()}")
    xp = get_namespace(a)
    n = a.shape[0]
    input_shape = tuple(a.shape[1:])
    flat_a = _flat(a)
    flat_r = _flat(relevance)
    weights = []
    for sample in range(n):          # max pooling's weight depends on the input: one matrix per sample
        weight = layer.relevance_weight(a[sample:sample + 1, ...], rule.maxpool)
        weights.append(forward_matrix(layer, weight, input_shape))
    weight = xp.stack(weights, axis=0)                                   # (N, K, J)
    if weight.shape[1] != flat_r.shape[1]:
        raise ValueError(f"relevance has {flat_r.shape[1]} entries per sample, {layer.describe()} has "
                         f"{weight.shape[1]} outputs")
    bias = _layer_bias(layer, input_shape, xp, a.dtype)                  # (K,)
    direction, bias_direction = search_direction(rule, a, weight, bias)
    z = xp.sum(weight * flat_a[:, None, :], axis=2) + bias[None, :]       # z_k(a), the layer's output
    denominator = xp.sum(direction * weight, axis=2) + bias_direction * bias[None, :]
    stabilized = rule.stabilize(denominator)
    active = xp.logical_and(flat_r != 0, z != 0)
    safe_z = xp.where(active, z, xp.ones_like(z))
    safe_d = xp.where(xp.logical_and(active, stabilized != 0), stabilized, xp.ones_like(stabilized))
    active = xp.logical_and(active, stabilized != 0)
    step = xp.where(active, z / safe_d, xp.zeros_like(z))                # t_k = z_k / stab(d_k)
    c = xp.where(active, flat_r / safe_z, xp.zeros_like(z))              # R_k = z_k c_k
    root = flat_a[:, None, :] - step[:, :, None] * direction             # ã^(k) = a − t v^(k)
    gradient = weight * c[:, :, None]                                    # ∂R_k/∂a_j = w_jk c_k on the active side
    terms = (flat_a[:, None, :] - root) * gradient
    root_preactivation = xp.sum(weight * root, axis=2) + bias[None, :]
    bias_share = step * bias_direction * bias[None, :]
    epsilon_share = xp.where(active, z * (stabilized - denominator) / safe_d, xp.zeros_like(z))
    return RootPoints(rule=rule, a=a, relevance_upper=relevance, weight=weight, bias=bias, direction=direction,
                      bias_direction=bias_direction, step=step, root=root, gradient=gradient, terms=terms, z=z,
                      denominator=denominator, c=c, root_preactivation=root_preactivation, bias_share=bias_share,
                      epsilon_share=epsilon_share, active=active, input_shape=input_shape)


@dataclasses.dataclass
class RootCheck:
    """What :func:`check_roots` measured (largest values over the batch and the active neurons).

    ``reconstruction_error``: max |Σ_k terms − rule.relevance(layer, a, R)| / max |R_j|;
    ``hinge_error``: max |z_k(ã) − (bias share + ε share)| / max |z_k| (the root lies on the hinge up to
    exactly what the rule absorbs); ``hinge_residual``: max |z_k(ã)| / max |z_k| (how far off the plain
    hinge the absorbed terms put the root); ``conservation_error``: max |Σ_j terms_jk + absorbed_k − R_k| /
    max |R_k|; ``domain_violation``: the largest step outside the domain (0 when ã ≥ 0 for z⁺ and γ (a ≥ 0) or
    l ≤ ã ≤ h for z^B on neurons with z_k > 0 and t_k ≤ 1; None for rules without a domain);
    ``outside_box``: z^B neurons with z_k > 0 whose root needs t_k > 1 (the neuron has no root in the box).
    """

    reconstruction_error: float
    hinge_error: float
    hinge_residual: float
    conservation_error: float
    domain_violation: float | None
    outside_box: int
    active: int


def check_roots(layer: LinearLayer, a: Any, relevance: Any, rule: Rule, roots: RootPoints | None = None) -> RootCheck:
    """Check a deep Taylor decomposition against the rule's fast path, the hinge and the input domain."""
    xp = get_namespace(a)
    roots = root_points(layer, a, relevance, rule) if roots is None else roots
    fast = _flat(rule.relevance(layer, a, relevance))
    taylor = xp.sum(roots.terms, axis=1)
    scale_in = max(float(xp.max(xp.abs(fast))), 1e-300)
    reconstruction = float(xp.max(xp.abs(taylor - fast))) / scale_in
    active = roots.active
    scale_z = max(float(xp.max(xp.abs(roots.z))), 1e-300)
    expected = roots.bias_share + roots.epsilon_share
    hinge = float(xp.max(xp.where(active, xp.abs(roots.root_preactivation - expected), 0.0))) / scale_z
    residual = float(xp.max(xp.where(active, xp.abs(roots.root_preactivation), 0.0))) / scale_z
    flat_r = _flat(relevance)
    scale_r = max(float(xp.max(xp.abs(flat_r))), 1e-300)
    conserved = xp.sum(roots.terms, axis=2) + roots.absorbed
    conservation = float(xp.max(xp.where(active, xp.abs(conserved - flat_r), 0.0))) / scale_r
    violation: float | None = None
    outside = 0
    positive = xp.logical_and(active, roots.z > 0)
    if isinstance(rule, (ZPlus, Gamma)) and bool(xp.all(a >= 0)):
        below = xp.where(positive[:, :, None], clip_negative(roots.root, xp), 0.0)
        violation = float(xp.max(below))
    elif isinstance(rule, ZBox):
        low = _flat(rule._bound(rule.low, a))[:, None, :]
        high = _flat(rule._bound(rule.high, a))[:, None, :]
        reachable = xp.logical_and(positive, roots.step <= 1.0)
        outside = int(xp.sum(xp.astype(xp.logical_and(positive, roots.step > 1.0), xp.int64)))
        beyond = xp.maximum(clip_negative(roots.root - low, xp), clip_negative(high - roots.root, xp))
        violation = float(xp.max(xp.where(reachable[:, :, None], beyond, 0.0)))
    return RootCheck(reconstruction_error=reconstruction, hinge_error=hinge, hinge_residual=residual,
                     conservation_error=conservation, domain_violation=violation, outside_box=outside,
                     active=int(xp.sum(xp.astype(active, xp.int64))))


def clip_negative(x: Any, xp: Any) -> Any:
    """max(0, −x): how far below zero each entry lies."""
    return xp.maximum(-x, xp.zeros_like(x))
