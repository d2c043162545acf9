"""LRP rules, each written once as the generic four steps of Montavon et al. 2019 (appendix 10.A).

For a layer that is linear in its input, z_k = Σ_j a_j w_jk + b_k, every rule here is

    1. z = stabilizer(Σ_i f(a_i; ρ_i(w), ρ_i(b)))   forward with modified inputs and parameters
    2. s = R ⊘ z                                      element-wise division
    3. c_i = f_ᵀ(s; ρ_i(w))                            transposed (backward) map of the layer
    4. R_lower = Σ_i a_i ⊙ c_i                        element-wise product

where the list of *terms* (a_i, ρ_i) is what distinguishes the rules. Rules that treat
positive and negative contributions separately (αβ, γ, z⁺) have several terms; the
αβ rule and zennit's form of γ have several *branches* (each with its own
denominator, scale and output mask), whose relevances are added.

The same term list builds the explicit redistribution matrix in
:mod:`lrpcore.matrix` (M = Σ_b scale_b Σ_i diag(a_i) W_iᵀ diag(mask_b ⊘ z_b)), so the fast
path and the explicit matrix are one rule written once.

Notation (Montavon et al. 2019): a lower-layer activations (index j), w weights,
z denominators and R relevances of the upper layer (index k), s = R ⊘ z, c = Wᵀ s.
x⁺ = max(0, x), x⁻ = min(0, x).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from .backend import clip_max, clip_min, get_namespace, to_backend, to_numpy
from .errors import ShapeError
from .layers import Layer, LinearLayer, MaxPoolMode
from .stabilizers import Stabilizer, get_stabilizer

__all__ = [
    "Term",
    "Branch",
    "Rule",
    "Zero",
    "Epsilon",
    "Gamma",
    "AlphaBeta",
    "ZPlus",
    "Flat",
    "WSquare",
    "ZBox",
    "WinnerTakesAll",
    "Pass",
]

#: |stabilized z| below this fraction of the sample's RMS(z) is counted as a near-zero denominator.
NEAR_ZERO_RELATIVE = 1e-6


@dataclasses.dataclass
class Term:
    """One summand of a rule's denominator: z_i = f(a_i; weight, bias), and its share R_i = a_i ⊙ f_ᵀ(s; weight)."""

    input: Any
    weight: Any
    bias: Any | None = None


@dataclasses.dataclass
class Branch:
    """A group of terms sharing one denominator z_b = Σ_i z_i; its relevance is ``scale`` · Σ_i a_i ⊙ c_i.

    ``mask`` (same shape as the layer output, or None) restricts the branch to some outputs,
    as zennit's γ rule does with the sign of z: a boolean array (True: the output belongs to the
    branch) or 0/1 numbers.
    """

    terms: list[Term]
    scale: float = 1.0
    mask: Any | None = None


@dataclasses.dataclass
class BranchRecord:
    """What one branch computed: stabilized denominator z, quotient s, and c of its first term
    (None when only the counts were asked for, as ``explain`` does without ``record``).

    ``zero_denominators``/``near_zero_denominators``: per-sample counts (NumPy int arrays) of
    outputs that carry relevance (R_k ≠ 0) but whose stabilized z is exactly 0 (their relevance is
    dropped, s = 0) or below ``NEAR_ZERO_RELATIVE``·RMS(z) of the sample.
    """

    z: Any
    s: Any
    c: Any
    zero_denominators: Any
    near_zero_denominators: Any
    smallest_denominator: float


def safe_divide(numerator: Any, denominator: Any) -> Any:
    """numerator ⊘ denominator with 0 where the denominator is exactly 0 (never inf or NaN)."""
    xp = get_namespace(numerator, denominator)
    zero = denominator == 0
    if not bool(xp.any(zero)):
        return numerator / denominator
    ones = xp.ones_like(denominator)
    return xp.where(zero, xp.zeros_like(numerator), numerator / xp.where(zero, ones, denominator))


class Rule:
    """Base class of the LRP rules for layers linear in their input (Dense, Conv2d, pooling).

    Parameters shared by every rule:

    ``stabilizer``: name in :data:`lrpcore.stabilizers.STABILIZERS` or a callable
    ``(z, epsilon) -> z'``; default ``"zennit"`` (never produces a zero denominator
    unless z = −ε exactly... which zennit's form cannot: it moves z away from zero).
    ``epsilon``: the ε the stabilizer adds; 1e-6 by default (zennit's), the rule's
    hyperparameter for :class:`Epsilon`.
    ``maxpool``: how a MaxPool2d layer is linearised: ``"winner"`` (ties split
    equally), ``"winner_first"`` (autograd/zennit), or ``"sum"`` (sum pooling).

    Subclasses implement :meth:`branches`. To write a new rule, return the terms
    (modified input, ρ(w), ρ(b)) whose sum is the denominator; the fast path, the
    explicit matrix and the trace come for free.
    """

    #: Used in tables and the trace.
    name: str = "rule"

    def __init__(self, stabilizer: str | Stabilizer = "zennit", epsilon: float = 1e-6,
                 maxpool: MaxPoolMode = "winner"):
        if maxpool not in ("winner", "winner_first", "sum"):
            raise ValueError(f"unknown maxpool mode {maxpool!r}; expected 'winner', 'winner_first' or 'sum'")
        if epsilon < 0:
            raise ValueError(f"epsilon must be ≥ 0, got {epsilon}")
        self.stabilizer_name = stabilizer if isinstance(stabilizer, str) else getattr(stabilizer, "__name__",
                                                                                       "custom")
        self.stabilizer = get_stabilizer(stabilizer)
        self.epsilon = float(epsilon)
        self.maxpool = maxpool

    # --- what a rule is ---------------------------------------------------------------------------
    def branches(self, layer: LinearLayer, a: Any, weight: Any, bias: Any | None) -> list[Branch]:
        """The terms of this rule for ``layer`` at input ``a`` with the layer's weight and bias."""
        raise NotImplementedError

    def describe(self) -> str:
        """Short label such as ``Gamma(γ=0.25)`` for tables."""
        return self.name

    def applies_to(self, layer: Layer) -> bool:
        """Whether this rule can redistribute relevance through ``layer``: rules written as terms need a layer
        linear in its input; a rule that computes ``relevance`` itself (the LSTM's signal-take-all, NEON's
        distance rule) is written for its layer and is taken at its word."""
        return isinstance(layer, LinearLayer) or type(self).relevance is not Rule.relevance

    @property
    def per_sample(self) -> bool:
        """True when the rule treats every sample on its own, so that cutting a batch into parts cannot
        change its result (the engine then may run the parts on several threads).

        The rules of this module are, except with a batch-wide stabilizer (``quadratic_mean_batch``)
        or a custom one; a rule defined elsewhere is not known to be unless it says so.
        """
        from . import stabilizers

        return (type(self).__module__ == __name__
                and self.stabilizer in (stabilizers.vanilla, stabilizers.zennit, stabilizers.quadratic_mean))

    def __repr__(self) -> str:
        return f"{self.describe()} [stabilizer={self.stabilizer_name}, ε={self.epsilon:g}]"

    def stabilize(self, z: Any) -> Any:
        """Apply the rule's stabilizer to a denominator."""
        return self.stabilizer(z, self.epsilon)

    def layer_branches(self, layer: Layer, a: Any, output: Any | None = None) -> list[Branch]:
        """Resolve the layer's weight (linearising max pooling) and return :meth:`branches`.

        ``output`` is the layer's plain output f(a) when the caller already has it; rules whose
        terms depend on it (γ's sign masks) override this method to use it instead of recomputing.
        """
        if not isinstance(layer, LinearLayer):
            raise TypeError(f"{self.describe()} applies to linear layers (Dense, Conv2d, pooling), "
                            f"not {layer.describe()}; use Pass")
        return self.branches(layer, a, layer.relevance_weight(a, self.maxpool), layer.relevance_bias())

    # --- the four steps ---------------------------------------------------------------------------
    def relevance(self, layer: Layer, a: Any, relevance: Any, record: list[BranchRecord] | None = None,
                  output: Any | None = None, counts_only: bool = False) -> Any:
        """Redistribute ``relevance`` (shape of the layer output) onto the layer input ``a``.

        If ``record`` is a list, one :class:`BranchRecord` per computed branch is appended to it.
        ``output``: the layer's plain output f(a) if known (``explain`` passes the recorded
        activation). A branch whose only term is the layer's own forward pass (LRP-0/ε with the
        layer's weight and bias) then takes it as its denominator instead of recomputing it.
        ``counts_only``: the records are wanted for their denominator counts only (no trace): they
        keep no arrays, and a masked branch whose mask leaves no relevance (γ's z_k < 0 branch
        behind a ReLU) is skipped; its contribution and its counts are exactly zero.
        """
        xp = get_namespace(a)
        result = None
        branches = self.layer_branches(layer, a, output)
        carries = relevance != 0 if any(branch.mask is not None for branch in branches) else None
        if counts_only:     # drop idle branches (and their masks) before the work starts
            branches = [branch for branch in branches if branch.mask is None
                        or bool(xp.any(xp.logical_and(_as_bool(branch.mask), carries)))]
        while branches:
            branch = branches.pop(0)        # drop each branch's masks and weights once it is done
            carried = relevance if branch.mask is None else _masked(relevance, branch.mask, carries)
            z = self.stabilize(_denominator(layer, a, branch, output))
            s = safe_divide(carried, z)
            if branch.scale != 1.0:
                s = s * branch.scale
            if record is not None and counts_only:
                record.append(_branch_record(z, s, None, carried, keep_arrays=False,
                                             carries=carries if carried is relevance else None))
                del z, carried      # counted: free them before the transposed maps
            first_c = None
            for term in branch.terms:
                c = layer.linear_transpose(s, term.weight, tuple(a.shape))
                first_c = c if first_c is None else first_c
                share = term.input * c
                result = share if result is None else result + share
            if record is not None and not counts_only:
                record.append(_branch_record(z, s, first_c, carried))
        return xp.zeros_like(a) if result is None else result


def _as_bool(mask: Any) -> Any:
    xp = get_namespace(mask)
    return mask if mask.dtype == xp.bool else mask != 0


def _masked(relevance: Any, mask: Any, carries: Any) -> Any:
    """relevance ⊙ mask for a boolean or 0/1 mask; ``relevance`` itself where the mask keeps all of it
    (``carries``: relevance ≠ 0), as γ's z_k > 0 branch does behind a ReLU."""
    xp = get_namespace(relevance)
    if mask.dtype != xp.bool:
        return relevance * mask
    if not bool(xp.any(xp.logical_and(xp.logical_not(mask), carries))):
        return relevance
    return xp.where(mask, relevance, 0.0)


def branch_denominator(layer: LinearLayer, branch: Branch) -> Any:
    """Σ_i f(a_i; ρ_i(w), ρ_i(b)): the branch's denominator before stabilization."""
    total = None
    for term in branch.terms:
        z = layer.linear_forward(term.input, term.weight, term.bias)
        total = z if total is None else total + z
    return total


def _denominator(layer: LinearLayer, a: Any, branch: Branch, output: Any | None) -> Any:
    """:func:`branch_denominator`, or the known layer output where the branch is the layer's own forward."""
    if output is not None and len(branch.terms) == 1:
        term = branch.terms[0]
        if term.input is a and layer.is_own_forward(term.weight, term.bias):
            return output
    return branch_denominator(layer, branch)


def _branch_record(z: Any, s: Any, c: Any, relevance: Any, keep_arrays: bool = True,
                   carries: Any | None = None) -> BranchRecord:
    """Summarise a branch; denominators count only where the branch carries relevance (R_k·mask_k ≠ 0).

    ``carries``: ``relevance != 0`` if the caller has it. Without ``keep_arrays`` (counts only) the
    smallest denominator is not looked for (NaN).
    """
    xp = get_namespace(z)
    magnitude = xp.abs(z)
    axes = tuple(range(1, z.ndim))
    if axes:
        size = math.prod(z.shape[1:])
        # RMS in at least float32: a float16 sum of squares overflows (65504) and every z would look near zero
        wide = z if xp.finfo(z.dtype).bits >= 32 else xp.astype(z, xp.float32)
        scale = xp.linalg.vector_norm(wide, axis=axes, keepdims=True) / math.sqrt(size)
    else:
        scale = magnitude
    carries = relevance != 0 if carries is None else carries
    near_zero = xp.logical_and(magnitude <= NEAR_ZERO_RELATIVE * scale, carries)

    def per_sample(mask: Any) -> Any:
        return to_numpy(xp.count_nonzero(xp.reshape(mask, (mask.shape[0], -1)), axis=1))

    near_counts = per_sample(near_zero)
    # a zero denominator is also a near-zero one: look for zeros only where near-zero ones exist
    zero_counts = per_sample(xp.logical_and(z == 0, near_zero)) if near_counts.any() else near_counts * 0
    smallest = float(xp.min(magnitude)) if (keep_arrays and z.size) else float("nan")
    if not keep_arrays:
        z, s, c = None, None, None
    return BranchRecord(z=z, s=s, c=c, zero_denominators=zero_counts, near_zero_denominators=near_counts,
                        smallest_denominator=smallest)


def _nonnegative(a: Any) -> bool:
    xp = get_namespace(a)
    return bool(xp.all(a >= 0))


def _optional(bias: Any | None, use_bias: bool, transform) -> Any | None:
    return transform(bias) if (use_bias and bias is not None) else None


class Epsilon(Rule):
    """LRP-ε (Bach et al. 2015; Montavon et al. 2019, section 10.2.1):

        R_j = Σ_k a_j w_jk / (z_k + ε) · R_k,   z_k = Σ_j a_j w_jk + b_k

    The chapter writes the denominator as ε + z_k. lrpcore applies ε through the rule's stabilizer,
    by default zennit's z_k + sign(z_k)·ε (ε = +ε where z_k = 0), which moves every denominator away
    from zero; ``stabilizer="vanilla"`` gives the chapter's z_k + ε exactly (see
    :mod:`lrpcore.stabilizers`). The two agree wherever z_k > 0. The bias and ε absorb relevance; a
    larger ε absorbs more and keeps only the salient explanation factors. With ε = 0 it is LRP-0.
    """

    name = "Epsilon"

    def __init__(self, epsilon: float = 0.25, stabilizer: str | Stabilizer = "zennit", use_bias: bool = True,
                 maxpool: MaxPoolMode = "winner"):
        super().__init__(stabilizer=stabilizer, epsilon=epsilon, maxpool=maxpool)
        self.use_bias = use_bias

    def describe(self) -> str:
        return f"Epsilon(ε={self.epsilon:g})"

    def branches(self, layer, a, weight, bias):
        return [Branch([Term(a, weight, bias if self.use_bias else None)])]


class Zero(Epsilon):
    """LRP-0 (Bach et al. 2015): R_j = Σ_k a_j w_jk / (Σ_j a_j w_jk + b_k) · R_k. Equals gradient×input
    on ReLU networks. A zero denominator gives s = 0 (counted in the trace), never NaN."""

    name = "Zero"

    def __init__(self, stabilizer: str | Stabilizer = "vanilla", use_bias: bool = True,
                 maxpool: MaxPoolMode = "winner"):
        super().__init__(epsilon=0.0, stabilizer=stabilizer, use_bias=use_bias, maxpool=maxpool)

    def describe(self) -> str:
        return "Zero"


class Gamma(Rule):
    """LRP-γ (Montavon et al. 2019, section 10.2.1): favour positive contributions.

        R_j = Σ_k (z_jk + γ z⁺_jk) / Σ_j (z_jk + γ z⁺_jk) · R_k,   z_jk = a_j w_jk

    For a ≥ 0 this is a_j(w_jk + γ w⁺_jk) / Σ_j a_j(w_jk + γ w⁺_jk), the chapter's form.
    Written on contributions, it stays correct for inputs of both signs: the positive
    contributions are z⁺_jk = a⁺_j w⁺_jk + a⁻_j w⁻_jk, so the terms are
    (a⁺, w + γw⁺, b + γb⁺) and (a⁻, w + γw⁻). γ → ∞ approaches z⁺.

    ``symmetric=True`` reproduces zennit's Gamma: outputs with z_k > 0 use the form
    above; outputs with z_k < 0 favour the *negative* contributions instead
    (terms (a⁺, w + γw⁻, b + γb⁻), (a⁻, w + γw⁺)); outputs with z_k = 0 receive no
    relevance share. The two agree wherever z_k > 0, which is everywhere a ReLU
    network passes relevance in hidden layers.
    """

    name = "Gamma"

    def __init__(self, gamma: float = 0.25, stabilizer: str | Stabilizer = "zennit", epsilon: float = 1e-6,
                 symmetric: bool = False, use_bias: bool = True, maxpool: MaxPoolMode = "winner"):
        super().__init__(stabilizer=stabilizer, epsilon=epsilon, maxpool=maxpool)
        if gamma < 0:
            raise ValueError(f"Gamma needs γ ≥ 0, got {gamma}")
        self.gamma = float(gamma)
        self.symmetric = symmetric
        self.use_bias = use_bias

    def describe(self) -> str:
        return f"Gamma(γ={self.gamma:g}{', symmetric' if self.symmetric else ''})"

    def _favour(self, a, weight, bias, favour_positive: bool, nonnegative: bool) -> list[Term]:
        gamma = self.gamma
        boost_same = clip_min if favour_positive else clip_max    # weights that keep a⁺'s contribution's sign
        boost_flip = clip_max if favour_positive else clip_min
        positive_input_weight = weight + gamma * boost_same(weight)
        term_bias = _optional(bias, self.use_bias, lambda b: b + gamma * boost_same(b))
        if nonnegative:
            return [Term(a, positive_input_weight, term_bias)]
        return [Term(clip_min(a), positive_input_weight, term_bias),
                Term(clip_max(a), weight + gamma * boost_flip(weight))]

    def layer_branches(self, layer, a, output=None):
        if not self.symmetric or not isinstance(layer, LinearLayer):
            return super().layer_branches(layer, a)
        return self.branches(layer, a, layer.relevance_weight(a, self.maxpool), layer.relevance_bias(),
                             output=output)

    def branches(self, layer, a, weight, bias, output=None):
        """The terms; ``output`` (the layer's plain output, if known) gives the symmetric form's sign of z_k
        for weighted layers (Dense, Conv), whose forward is exactly f(a; w, b)."""
        nonnegative = _nonnegative(a)
        positive = self._favour(a, weight, bias, favour_positive=True, nonnegative=nonnegative)
        if not self.symmetric:
            return [Branch(positive)]
        if output is not None and self.use_bias and layer.has_weights:
            original = output
        else:
            original = layer.linear_forward(a, weight, bias if self.use_bias else None)
        negative = self._favour(a, weight, bias, favour_positive=False, nonnegative=nonnegative)
        return [Branch(positive, mask=original > 0), Branch(negative, mask=original < 0)]


class AlphaBeta(Rule):
    """LRP-αβ (Bach et al. 2015; Montavon et al. 2019, appendix 10.A): positive and negative contributions apart.

        R_j = Σ_k ( α z⁺_jk / Σ_j z⁺_jk − β z⁻_jk / Σ_j z⁻_jk ) · R_k,   α − β = 1

    with z⁺_jk = a⁺_j w⁺_jk + a⁻_j w⁻_jk and z⁻_jk = a⁺_j w⁻_jk + a⁻_j w⁺_jk, so inputs of
    both signs are handled. The bias enters its sign's denominator (b⁺ and b⁻), as in
    zennit; ``use_bias=False`` drops it.
    """

    name = "AlphaBeta"

    def __init__(self, alpha: float = 2.0, beta: float = 1.0, stabilizer: str | Stabilizer = "zennit",
                 epsilon: float = 1e-6, use_bias: bool = True, maxpool: MaxPoolMode = "winner"):
        super().__init__(stabilizer=stabilizer, epsilon=epsilon, maxpool=maxpool)
        if alpha < 0 or beta < 0:
            raise ValueError(f"AlphaBeta needs α ≥ 0 and β ≥ 0, got α={alpha}, β={beta}")
        if abs((alpha - beta) - 1.0) > 1e-12:
            raise ValueError(f"AlphaBeta must conserve relevance: α − β must equal 1, got α={alpha}, β={beta}")
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.use_bias = use_bias

    def describe(self) -> str:
        return f"AlphaBeta(α={self.alpha:g}, β={self.beta:g})"

    def _contributions(self, a, weight, bias, positive: bool) -> list[Term]:
        same, flip = (clip_min, clip_max) if positive else (clip_max, clip_min)
        term_bias = _optional(bias, self.use_bias, same)
        if _nonnegative(a):
            return [Term(a, same(weight), term_bias)]
        return [Term(clip_min(a), same(weight), term_bias), Term(clip_max(a), flip(weight))]

    def branches(self, layer, a, weight, bias):
        branches = [Branch(self._contributions(a, weight, bias, positive=True), scale=self.alpha)]
        if self.beta != 0:
            branches.append(Branch(self._contributions(a, weight, bias, positive=False), scale=-self.beta))
        return branches


class ZPlus(AlphaBeta):
    """z⁺ rule (Montavon et al. 2017): R_j = Σ_k z⁺_jk / Σ_j z⁺_jk · R_k; equals αβ with α=1, β=0."""

    name = "ZPlus"

    def __init__(self, stabilizer: str | Stabilizer = "zennit", epsilon: float = 1e-6, use_bias: bool = True,
                 maxpool: MaxPoolMode = "winner"):
        super().__init__(alpha=1.0, beta=0.0, stabilizer=stabilizer, epsilon=epsilon, use_bias=use_bias,
                         maxpool=maxpool)

    def describe(self) -> str:
        return "ZPlus"


class Flat(Rule):
    """Flat rule (Lapuschkin et al. 2019): R_j = Σ_k 1 / Σ_j 1 · R_k over each output's receptive field.

    Inputs and weights are replaced by ones, so relevance spreads uniformly over the
    inputs an output is connected to (zero padding counts as not connected).
    """

    name = "Flat"

    def branches(self, layer, a, weight, bias):
        xp = get_namespace(a)
        return [Branch([Term(xp.ones_like(a), xp.ones_like(weight))])]

    def describe(self) -> str:
        return "Flat"


class WSquare(Rule):
    """w² rule (Montavon et al. 2017): R_j = Σ_k w²_jk / Σ_j w²_jk · R_k, independent of the input.

    ``use_bias=True`` adds b² to the denominator, as zennit's WSquare does.
    """

    name = "WSquare"

    def __init__(self, stabilizer: str | Stabilizer = "zennit", epsilon: float = 1e-6, use_bias: bool = False,
                 maxpool: MaxPoolMode = "winner"):
        super().__init__(stabilizer=stabilizer, epsilon=epsilon, maxpool=maxpool)
        self.use_bias = use_bias

    def branches(self, layer, a, weight, bias):
        xp = get_namespace(a)
        return [Branch([Term(xp.ones_like(a), weight * weight, _optional(bias, self.use_bias, lambda b: b * b))])]

    def describe(self) -> str:
        return "WSquare"


class ZBox(Rule):
    """z^B rule for bounded inputs l ≤ x ≤ h (Montavon et al. 2017; 2019, section 10.3.2 and appendix 10.A):

        R_i = Σ_j (x_i w_ij − l_i w⁺_ij − h_i w⁻_ij) / Σ_i (x_i w_ij − l_i w⁺_ij − h_i w⁻_ij) · R_j

    ``low`` and ``high`` are scalars or arrays broadcastable to the input (per channel
    (1, C, 1, 1) or per pixel). No bias enters (zennit's ZBox also cancels it).
    With low = high = 0 it reduces to LRP-0 without bias. Bounds with more axes than the layer
    input (bounds in the model's input shape for a first Dense layer behind a Flatten) are
    flattened in C order, as the Flatten layer flattens the input.
    """

    name = "ZBox"

    def __init__(self, low: Any, high: Any, stabilizer: str | Stabilizer = "zennit", epsilon: float = 1e-6,
                 maxpool: MaxPoolMode = "winner"):
        super().__init__(stabilizer=stabilizer, epsilon=epsilon, maxpool=maxpool)
        self.low = low
        self.high = high

    def describe(self) -> str:
        return "ZBox"

    def _bound(self, bound: Any, a: Any) -> Any:
        xp = get_namespace(a)
        if isinstance(bound, (int, float)):
            return xp.full(a.shape, float(bound), dtype=a.dtype, device=a.device)
        array = bound
        if getattr(get_namespace(bound), "__name__", "") != getattr(xp, "__name__", ""):
            array = to_backend(bound, xp)
        array = xp.astype(xp.asarray(array), a.dtype)
        if array.ndim > a.ndim:
            array = self._flatten_like(array, a)
        try:
            return xp.broadcast_to(array, a.shape)
        except ValueError:
            raise ShapeError(f"ZBox bound of shape {tuple(array.shape)} does not broadcast to the input "
                             f"shape {tuple(a.shape)}") from None

    @staticmethod
    def _flatten_like(array: Any, a: Any) -> Any:
        """Bounds given in the model's input shape for a first layer behind a Flatten (e.g. (1, C, H, W)
        bounds for a Dense layer on (N, C·H·W)): flattened in C order, as Flatten flattens the input."""
        xp = get_namespace(a)
        per_sample = math.prod(a.shape[1:])
        if math.prod(array.shape[1:]) == per_sample:
            return xp.reshape(array, (array.shape[0], *a.shape[1:]))
        if math.prod(array.shape) == 1:
            return xp.reshape(array, (1,) * a.ndim)
        raise ShapeError(f"ZBox bound of shape {tuple(array.shape)} has more axes than the layer input "
                         f"{tuple(a.shape)} and cannot be flattened to it; give the bound in the full input "
                         "shape (e.g. numpy.broadcast_to(low, (1, C, H, W))) or as a scalar")

    def branches(self, layer, a, weight, bias):
        low, high = self._bound(self.low, a), self._bound(self.high, a)
        return [Branch([Term(a, weight), Term(low, -clip_min(weight)), Term(high, -clip_max(weight))])]

    @property
    def per_sample(self) -> bool:
        """Per sample only where the bounds are the same for every sample (scalars or a batch axis of 1)."""
        return super().per_sample and all(
            isinstance(bound, (int, float)) or getattr(bound, "ndim", 0) == 0 or bound.shape[0] == 1
            for bound in (self.low, self.high))


class WinnerTakesAll(Rule):
    """Max pooling's rule: each window's relevance goes to the window's maximum.

        R_j = Σ_k δ_jk R_k,   δ_jk = 1 where a_j is the maximum of window k (0 elsewhere)

    Montavon et al. 2019 (section 10.3.2) treat a max-pooling neuron as its winning input; the LRP
    Toolbox (ties split equally) and zennit (the gradient: everything to the first maximum) do the
    same. Written in the four steps, the input becomes 1 and the weights the selection weights δ of
    :meth:`~lrpcore.layers.MaxPool2d.relevance_weight`: z_k = Σ_j δ_jk = 1, s = R, c = δᵀ s, R_j = c_j.
    Unlike LRP-0 on the same weights (R_j = a_j δ_jk / Σ_j a_j δ_jk · R_k), relevance reaching a window
    whose maximum is 0 still goes to that maximum, so the rule conserves relevance exactly, always.

    ``ties``: ``"split"`` (equal shares among the maxima of a window, the Toolbox) or ``"first"`` (all to
    the first maximum in row-major window order, zennit and autograd).
    """

    name = "WinnerTakesAll"

    def __init__(self, ties: str = "split"):
        if ties not in ("split", "first"):
            raise ValueError(f"WinnerTakesAll ties must be 'split' or 'first', got {ties!r}")
        super().__init__(stabilizer="vanilla", epsilon=0.0, maxpool="winner" if ties == "split" else "winner_first")
        self.ties = ties

    def describe(self) -> str:
        return f"WinnerTakesAll({self.ties})"

    def applies_to(self, layer: Layer) -> bool:
        return isinstance(layer, LinearLayer) and getattr(layer, "selects", False)

    def branches(self, layer, a, weight, bias):
        xp = get_namespace(a)
        return [Branch([Term(xp.ones_like(a), weight)])]


class Pass(Rule):
    """Relevance passes unchanged: R_lower = R_upper (reshaped to the input's shape).

    The rule of element-wise layers (ReLU and the other activations, Dropout, BatchNorm left unfolded)
    and of the shape layers Flatten and Reshape; zero padding passes the relevance of the cells it copied
    and drops that of the padded cells (their activation is the constant 0: a relevance there could only
    be absorbed), through the layer's ``pass_relevance``.
    """

    name = "Pass"

    def relevance(self, layer: Layer, a: Any, relevance: Any, record: list[BranchRecord] | None = None,
                  output: Any | None = None, counts_only: bool = False) -> Any:
        xp = get_namespace(relevance)
        crop = getattr(layer, "pass_relevance", None)      # shape layers that add cells (zero padding) drop them
        if crop is not None:
            return crop(relevance, tuple(a.shape))
        if relevance.size != a.size:
            raise ShapeError(f"Pass cannot carry relevance of shape {tuple(relevance.shape)} through "
                             f"{layer.describe()} with input {tuple(a.shape)}; it changes the size")
        return xp.reshape(relevance, tuple(a.shape))

    def branches(self, layer, a, weight, bias):  # pragma: no cover - Pass overrides relevance()
        raise TypeError("Pass has no terms; it forwards relevance unchanged")

    def applies_to(self, layer: Layer) -> bool:
        return True

    @property
    def per_sample(self) -> bool:
        return True

    def describe(self) -> str:
        return "Pass"
