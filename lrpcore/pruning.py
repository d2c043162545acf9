"""Pruned LRP (PLRP): keep only the most relevant neurons of every layer, per input.

Yanez Sarmiento, Witzke, Klein and Renard, "Sparse Explanations of Neural Networks Using
Pruned Layer-Wise Relevance Propagation" (2024). Relevance is propagated as usual, but after
it reaches layer l−1 (the unpruned vector r̃ at the *input* of layer l) the least relevant
neurons of that vector are pruned before the propagation continues downwards.

Threshold (per sample, separately for positive and negative relevance)
    sort the scores ascending; θ_l is the largest score whose cumulative sum stays
    ≤ p_l · (total mass of that sign), θ_l = 0 if there is none; keep only scores > θ_l.
    Negative relevance is treated through its magnitudes |r̃⁻| with p_neg. Scores equal to
    the largest one of their sign are always kept, so ties cannot prune a whole sign.

PLRP-λ (``method="lambda"``)
    r = λ ⊙ 1{kept} ⊙ r̃ with λ = ‖r̃‖₁ / ‖1{kept} ⊙ r̃‖₁, taken per sign
    (λ⁺ for positive scores, λ⁻ for negative ones): both ‖r‖₁ and Σ r equal those of r̃,
    so the layer conserves relevance. For single-signed r̃ this is the paper's λ_l.

PLRP-M (``method="m"``; paper, eq. 3.5)
    zero the activations of the pruned neurons, â = 1{kept} ⊙ a, and recompute the
    layer's relevance from them in the LRP-0 form of eq. 3.5,
    R_j = Σ_k â_j w_jk / Σ_j â_j w_jk · R_k (no bias, no stabilizer; an exactly zero
    denominator drops its R_k, counted as everywhere in lrpcore): the pruned mass is
    redistributed over the kept neurons and, without zero denominators, conserved. At the
    pruned layers this replaces the composite's rule, so PLRP-M with p = 0 is LRP-0 there.
    ``m_rule="composite"`` (lrpcore's definition before issue 14) re-runs the layer's own
    composite rule on â instead (``rule.relevance(layer, â, R_upper)``), with which p = 0 is
    plain LRP; for rules whose terms do not scale with a (flat, w², z^B) pruned neurons may
    then still receive relevance.

Sparsity gain (``sparsity_gain=min_gain``; paper, eq. 3.3)
    Instead of a fixed p_l, each sign's vector of magnitudes v₀ (r̃⁺, or |r̃⁻|) is pruned
    entry by entry, smallest first: v′ → v″ zeroes one more entry, and the gain of that step is

        Δ_SG = ‖v₀‖₁ · |s(v″) − s(v′)| / |‖v″‖₁ − ‖v′‖₁|,

    the rise of the sparsity s (the Gini index over *all* entries of the vector) per share of
    the original mass that the entry removes. (Eq. 3.3 divides the two differences as they
    come, and zeroing an entry raises s while it lowers ‖·‖₁, so its value is the negative
    of this; lrpcore reports the magnitude so that "gain ≥ minimum" reads as written.)
    Entries are zeroed while the gain stays ≥ ``min_gain``; the largest entry of a sign is
    always kept. This gives one p per sign, layer and sample (p⁺ and p⁻, recorded in the
    trace). For a vector of m equal non-zero entries among F the first gains are m/F, and a
    dense vector starts at about 1 + s: minimum gains near or below 1 prune, larger ones
    keep more. ``gain_search="grid"`` is lrpcore's definition before issue 14: candidate
    proportions p_k = k·``step``, the Gini index over the neurons carrying relevance only,
    one p for both signs (see :func:`sparsity_gain_proportion`).

Where pruning happens
    ``explain`` calls the hook after layer l's rule with the relevance at layer l's input.
    That vector is pruned when layer l is a linear layer (Dense, Conv, pooling) and l > 0,
    so each vector of neurons is pruned exactly once: relevance crossing ReLU, Flatten or
    Dropout (Pass) below a pruned linear layer is already pruned, and pruning it again
    would compound p. Index 0's input is the model input; it is never pruned. ``layers``
    restricts pruning to some linear layer indices.

With ``record=True`` every pruned step's ``trace[l].info`` holds, per sample (NumPy):
``p_pos``/``p_neg`` (proportions used), ``theta_pos``/``theta_neg``, ``lambda_pos``/
``lambda_neg`` (PLRP-λ; 1 for PLRP-M), ``mass`` (‖r̃‖₁), ``pruned_mass`` (|relevance| of the
pruned neurons in r̃), ``pruned_fraction``, ``pruned_count``/``neurons``, and ``unpruned``
(the vector r̃ itself); ``trace[l].relevance_in`` is the pruned relevance passed down. The
step's ``branches`` (z, s, c) are those of the unpruned computation; for PLRP-M the relevance
passed down was recomputed from â.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Literal

from .backend import clip_min, get_namespace, to_numpy
from .layers import Layer, LinearLayer
from .rules import Rule, WinnerTakesAll, Zero

__all__ = ["Pruning", "explain_pruned", "prune", "threshold", "gini", "sparsity_gain", "sparsity_gain_masks",
           "sparsity_gain_proportion", "pruning_summary", "PruneResult"]

Method = Literal["lambda", "m"]
MRule = Literal["lrp0", "composite"]
GainSearch = Literal["paper", "grid"]


def _check_proportion(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}") from None
    if not 0.0 <= number < 1.0:
        raise ValueError(f"{name} must be in [0, 1) (the share of relevance mass to prune), got {value!r}")
    return number


def _flat(array: Any) -> Any:
    xp = get_namespace(array)
    return xp.reshape(array, (array.shape[0], -1))


def _per_sample(proportion: Any, batch: int, reference: Any) -> Any:
    """A (N, 1) column of proportions from a float or a per-sample array."""
    xp = get_namespace(reference)
    if isinstance(proportion, (int, float)):
        return xp.full((batch, 1), float(proportion), dtype=reference.dtype, device=reference.device)
    return xp.reshape(xp.astype(proportion, reference.dtype), (batch, 1))


def threshold(scores: Any, proportion: Any) -> Any:
    """θ per sample for non-negative ``scores`` (N, F): the largest score whose ascending cumulative sum
    stays ≤ ``proportion`` · Σ scores; 0 where no score qualifies (paper, section 3).

    ``proportion`` is a float or one value per sample. Returns shape (N,).
    """
    xp = get_namespace(scores)
    ordered = xp.sort(scores, axis=1)
    cumulative = xp.cumulative_sum(ordered, axis=1)
    total = cumulative[:, -1:]
    within = cumulative <= _per_sample(proportion, scores.shape[0], scores) * total
    return xp.max(xp.where(within, ordered, xp.zeros_like(ordered)), axis=1)


def _keep_sign(scores: Any, proportion: Any) -> tuple[Any, Any]:
    """(kept mask, θ) for one sign's non-negative magnitudes (N, F); the largest scores always stay."""
    xp = get_namespace(scores)
    theta = threshold(scores, proportion)
    largest = xp.max(scores, axis=1, keepdims=True)
    kept = xp.logical_or(scores > theta[:, None], xp.logical_and(scores >= largest, scores > 0))
    return kept, theta


def gini(scores: Any) -> Any:
    """Gini index of |scores| per sample (rows of a (N, F) array), in [0, 1 − 1/F]; 0 for an all-zero row.

    G = 1 − 2 Σ_k (c_(k) / ‖c‖₁) · (F − k + ½) / F with c_(1) ≤ ... ≤ c_(F) the sorted
    magnitudes (Hurley & Rickard 2009, "Comparing measures of sparsity"). It is 0 for a
    uniform vector and rises as the mass concentrates on fewer entries.
    """
    xp = get_namespace(scores)
    magnitude = xp.sort(xp.abs(_flat(scores)), axis=1)
    count = magnitude.shape[1]
    total = xp.sum(magnitude, axis=1)
    ranks = xp.arange(1, count + 1, dtype=magnitude.dtype, device=magnitude.device)
    weights = (count - ranks + 0.5) / count
    safe_total = xp.where(total > 0, total, xp.ones_like(total))
    value = 1.0 - 2.0 * xp.sum(magnitude * weights, axis=1) / safe_total
    return xp.where(total > 0, value, xp.zeros_like(value))


@dataclasses.dataclass
class PruneResult:
    """Outcome of :func:`prune` on one relevance vector (arrays on the relevance's backend, per sample).

    ``relevance``: pruned (and, for ``rescale=True``, λ-rescaled) relevance, shape of the input;
    ``kept``: boolean mask of the kept neurons; ``theta_pos``/``theta_neg``, ``lambda_pos``/``lambda_neg``,
    ``p_pos``/``p_neg``: shape (N,); ``mass``: ‖r̃‖₁; ``pruned_mass``: Σ |r̃| over pruned neurons;
    ``pruned_count``: neurons with non-zero relevance that were pruned.
    """

    relevance: Any
    kept: Any
    theta_pos: Any
    theta_neg: Any
    lambda_pos: Any
    lambda_neg: Any
    p_pos: Any
    p_neg: Any
    mass: Any
    pruned_mass: Any
    pruned_count: Any

    def info(self) -> dict[str, Any]:
        """The per-sample numbers as NumPy arrays, as stored in ``trace[l].info``."""
        mass = to_numpy(self.mass)
        pruned = to_numpy(self.pruned_mass)
        return {"p_pos": to_numpy(self.p_pos), "p_neg": to_numpy(self.p_neg),
                "theta_pos": to_numpy(self.theta_pos), "theta_neg": to_numpy(self.theta_neg),
                "lambda_pos": to_numpy(self.lambda_pos), "lambda_neg": to_numpy(self.lambda_neg),
                "mass": mass, "pruned_mass": pruned,
                "pruned_fraction": pruned / (mass + (mass == 0)),
                "pruned_count": to_numpy(self.pruned_count),
                "neurons": math.prod(tuple(self.kept.shape[1:]))}


def prune(relevance: Any, p_pos: Any = 0.0, p_neg: Any = 0.0, rescale: bool = True) -> PruneResult:
    """Prune one relevance vector per sample: keep scores above θ⁺ (positive part, proportion ``p_pos``)
    and magnitudes above θ⁻ (negative part, ``p_neg``); rescale the kept scores by λ± when ``rescale``.

    ``relevance`` has a leading batch axis; any trailing shape. ``p_pos``/``p_neg`` are floats in
    [0, 1) or one value per sample. λ⁺ = ‖r̃⁺‖₁ / ‖kept r̃⁺‖₁ (1 when the sign has no mass), likewise λ⁻.
    """
    xp = get_namespace(relevance)
    for name, value in (("p_pos", p_pos), ("p_neg", p_neg)):
        if isinstance(value, (int, float)):
            _check_proportion(value, name)
        elif not bool(xp.all(xp.logical_and(value >= 0, value < 1))):
            raise ValueError(f"{name} must hold proportions in [0, 1), one per sample")
    flat = _flat(relevance)
    kept_pos, theta_pos = _keep_sign(clip_min(flat), p_pos)
    kept_neg, theta_neg = _keep_sign(clip_min(-flat), p_neg)
    batch = flat.shape[0]
    return _pruned(relevance, kept_pos, kept_neg, theta_pos, theta_neg, _per_sample(p_pos, batch, flat)[:, 0],
                   _per_sample(p_neg, batch, flat)[:, 0], rescale)


def _pruned(relevance: Any, kept_pos: Any, kept_neg: Any, theta_pos: Any, theta_neg: Any, p_pos: Any, p_neg: Any,
            rescale: bool) -> PruneResult:
    """The :class:`PruneResult` of keeping ``kept_pos``/``kept_neg`` (N, F) of each sign of ``relevance``."""
    xp = get_namespace(relevance)
    flat = _flat(relevance)
    positive, negative = clip_min(flat), clip_min(-flat)
    kept_pos = xp.logical_and(kept_pos, positive > 0)
    kept_neg = xp.logical_and(kept_neg, negative > 0)
    kept = xp.logical_or(kept_pos, kept_neg)
    zeros = xp.zeros_like(flat)
    mass_pos, mass_neg = xp.sum(positive, axis=1), xp.sum(negative, axis=1)
    kept_mass_pos = xp.sum(xp.where(kept_pos, positive, zeros), axis=1)
    kept_mass_neg = xp.sum(xp.where(kept_neg, negative, zeros), axis=1)
    pruned_mass = xp.sum(xp.where(kept, zeros, xp.abs(flat)), axis=1)
    ones = xp.ones_like(mass_pos)
    lambda_pos = xp.where(kept_mass_pos > 0, mass_pos / xp.where(kept_mass_pos > 0, kept_mass_pos, ones), ones)
    lambda_neg = xp.where(kept_mass_neg > 0, mass_neg / xp.where(kept_mass_neg > 0, kept_mass_neg, ones), ones)
    if not rescale:
        lambda_pos, lambda_neg = ones, ones
    scale = xp.where(flat > 0, lambda_pos[:, None], lambda_neg[:, None])
    pruned = xp.where(kept, flat * scale, zeros)
    return PruneResult(relevance=xp.reshape(pruned, tuple(relevance.shape)),
                       kept=xp.reshape(kept, tuple(relevance.shape)),
                       theta_pos=theta_pos, theta_neg=theta_neg, lambda_pos=lambda_pos, lambda_neg=lambda_neg,
                       p_pos=p_pos, p_neg=p_neg, mass=mass_pos + mass_neg, pruned_mass=pruned_mass,
                       pruned_count=xp.sum(xp.astype(xp.logical_and(flat != 0, xp.logical_not(kept)), xp.int64),
                                           axis=1))


def sparsity_gain(v0: Any, before: Any, after: Any) -> Any:
    """Δ_SG of one pruning step (paper, eq. 3.3) per sample: ‖v₀‖₁ · |s(after) − s(before)| / |‖after‖₁ − ‖before‖₁|.

    ``v0``: the unpruned vectors (N, ...); ``before``/``after``: the vectors before and after the step
    (``after`` with more entries zeroed); s is the Gini index over all entries (:func:`gini`). The
    magnitude is taken because the two differences have opposite signs (see the module docstring).
    A step that removes no mass has no gain (0).
    """
    xp = get_namespace(v0)
    removed = xp.abs(xp.sum(xp.abs(_flat(before)), axis=1) - xp.sum(xp.abs(_flat(after)), axis=1))
    rise = xp.abs(gini(after) - gini(before))
    mass = xp.sum(xp.abs(_flat(v0)), axis=1)
    return xp.where(removed > 0, mass * rise / xp.where(removed > 0, removed, xp.ones_like(removed)),
                    xp.zeros_like(removed))


def _gain_cut(magnitudes: Any, min_gain: float) -> tuple[Any, Any, Any]:
    """For non-negative magnitudes (N, F): (kept mask, θ, pruned share p) of the entry-by-entry search.

    Sorted ascending with z zeros first, zeroing the smallest non-zero entries keeps the sorted order,
    so the Gini index after zeroing the entries at sorted positions < i is
    G_i = Σ_{k≥i} (2k − F + 1) v_(k) / (F Σ_{k≥i} v_(k)) (0-based k), from suffix sums; the step that
    zeroes position i has gain ‖v₀‖₁ (G_{i+1} − G_i) / v_(i). Positions z, z+1, ... are zeroed while
    the gain stays ≥ ``min_gain``; the last position (the largest entry) is never zeroed.
    """
    xp = get_namespace(magnitudes)
    count, features = magnitudes.shape
    order = xp.argsort(magnitudes, axis=1, stable=True)
    ranks = xp.argsort(order, axis=1, stable=True)            # sorted position of every entry
    ordered = xp.sort(magnitudes, axis=1)
    positions = xp.arange(features, dtype=magnitudes.dtype, device=magnitudes.device)
    weighted = ordered * (2 * positions - features + 1)
    # suffix sums over positions ≥ i, i = 0..F (the last one empty)
    zero_column = xp.zeros((count, 1), dtype=magnitudes.dtype, device=magnitudes.device)
    suffix_weighted = xp.concat([xp.flip(xp.cumulative_sum(xp.flip(weighted, axis=1), axis=1), axis=1), zero_column],
                                axis=1)
    suffix_mass = xp.concat([xp.flip(xp.cumulative_sum(xp.flip(ordered, axis=1), axis=1), axis=1), zero_column],
                            axis=1)
    safe_mass = xp.where(suffix_mass > 0, suffix_mass, xp.ones_like(suffix_mass))
    ginis = xp.where(suffix_mass > 0, suffix_weighted / (features * safe_mass), xp.zeros_like(suffix_mass))
    total = suffix_mass[:, :1]
    nonzero = ordered > 0
    safe_value = xp.where(nonzero, ordered, xp.ones_like(ordered))
    gains = total * (ginis[:, 1:] - ginis[:, :-1]) / safe_value        # the step zeroing position i
    # a zero entry is no step (nothing removed); the largest entry is never zeroed
    passes = xp.logical_or(xp.logical_not(nonzero), gains >= min_gain)
    passes = xp.concat([passes[:, :-1], xp.zeros((count, 1), dtype=xp.bool, device=magnitudes.device)], axis=1)
    # positions zeroed: the leading run of passing steps
    failed = xp.cumulative_sum(xp.astype(xp.logical_not(passes), xp.int64), axis=1)
    zeroed = failed == 0
    cut = xp.sum(xp.astype(zeroed, xp.int64), axis=1)             # number of sorted positions zeroed
    kept = ranks >= cut[:, None]
    removed = xp.sum(xp.where(zeroed, ordered, xp.zeros_like(ordered)), axis=1)
    theta = xp.max(xp.where(zeroed, ordered, xp.zeros_like(ordered)), axis=1)
    safe_total = xp.where(total[:, 0] > 0, total[:, 0], xp.ones_like(removed))
    return kept, theta, removed / safe_total


def sparsity_gain_masks(relevance: Any, min_gain: float = 1.0) -> tuple[Any, Any, Any, Any, Any, Any]:
    """The paper's sparsity-gain pruning (eq. 3.3) of ``relevance`` (N, ...), each sign on its own.

    Returns (kept⁺, kept⁻, θ⁺, θ⁻, p⁺, p⁻): masks (N, F) of the entries kept in r̃⁺ and |r̃⁻|, the
    largest pruned magnitude and the pruned share of each sign's mass, per sample. See
    :func:`_gain_cut` for the search, :func:`sparsity_gain` for the gain of one step.
    """
    flat = _flat(relevance)
    kept_pos, theta_pos, p_pos = _gain_cut(clip_min(flat), min_gain)
    kept_neg, theta_neg, p_neg = _gain_cut(clip_min(-flat), min_gain)
    return kept_pos, kept_neg, theta_pos, theta_neg, p_pos, p_neg


def sparsity_gain_proportion(relevance: Any, min_gain: float = 1.0, step: float = 0.05,
                             max_p: float = 0.95) -> Any:
    """Per-sample p of ``gain_search="grid"``, lrpcore's sparsity-gain search before issue 14 (the paper's
    search, entry by entry and per sign with the Gini index over all entries, is :func:`sparsity_gain_masks`).

    The Gini index is taken over the neurons that carry relevance in r̃ (r̃ ≠ 0; pruned ones
    count as zeros among them): neurons that a ReLU switched off hold no relevance whatever p
    is, and counting them would push every layer's index towards 1 and every gain towards 0.
    Over F neurons of which m carry relevance, G_m = 1 − (F/m)(1 − G_F), from the sorted-rank
    form of the index.

    Candidates p_k = k·step ≤ ``max_p`` are tried in turn. The gain of a candidate is
    ΔG / Δp with Δp the *actually* pruned share of ‖r̃‖₁ that it adds (neurons are discrete,
    so a small step may prune nothing new; such a step is neither a gain nor a loss and the
    search goes on). Pruning stops at the first candidate whose gain is below ``min_gain``;
    the result is the last p_k that pruned something new before that (0 if none did). Candidates are looped over (a handful),
    samples and neurons are vectorised. Returns shape (N,).
    """
    xp = get_namespace(relevance)
    flat = _flat(relevance)
    candidates = int(max_p / step + 1e-9)
    # neurons that carry relevance before pruning; the Gini index is taken over them (see the docstring)
    support = xp.sum(xp.astype(flat != 0, flat.dtype), axis=1)
    stretch = flat.shape[1] / xp.where(support > 0, support, xp.ones_like(support))
    previous_gini = 1.0 - stretch * (1.0 - gini(flat))
    previous_share = xp.zeros((flat.shape[0],), dtype=flat.dtype, device=flat.device)
    still_gaining = xp.ones((flat.shape[0],), dtype=xp.bool, device=flat.device)
    chosen = xp.zeros((flat.shape[0],), dtype=flat.dtype, device=flat.device)
    for k in range(1, candidates + 1):
        proportion = k * step
        pruned = prune(flat, proportion, proportion, rescale=False)
        share = pruned.pruned_mass / xp.where(pruned.mass > 0, pruned.mass, xp.ones_like(pruned.mass))
        current_gini = 1.0 - stretch * (1.0 - gini(pruned.relevance))
        added = share - previous_share
        changed = added > 0
        gain = (current_gini - previous_gini) / xp.where(changed, added, xp.ones_like(added))
        still_gaining = xp.logical_and(still_gaining, xp.logical_or(xp.logical_not(changed), gain >= min_gain))
        chosen = xp.where(xp.logical_and(still_gaining, changed), xp.full_like(chosen, proportion), chosen)
        previous_gini = xp.where(still_gaining, current_gini, previous_gini)
        previous_share = xp.where(still_gaining, share, previous_share)
    return chosen


class Pruning:
    """The ``modify`` hook of :func:`lrpcore.explain` that turns LRP into PLRP-λ or PLRP-M.

    ``method``: ``"lambda"`` (rescale the kept relevance) or ``"m"`` (zero pruned activations,
    recompute the layer's relevance: by eq. 3.5's LRP-0 form, or with ``m_rule="composite"`` by the
    layer's own rule). ``p``: proportion of relevance mass to prune, for both signs unless
    ``p_pos``/``p_neg`` are given. ``sparsity_gain``: a minimum gain Δ_SG; if set, p is found per
    sign, layer and sample (``gain_search="paper"``: entry by entry, eq. 3.3; ``"grid"``: the old
    search over multiples of ``step`` up to ``max_p``) and ``p``/``p_pos``/``p_neg`` must be left
    out. ``layers``: the indices of linear layers whose *input* relevance is pruned (default:
    every linear layer but the first one in the model, index 0).
    """

    def __init__(self, method: Method = "lambda", p: float | None = None, p_pos: float | None = None,
                 p_neg: float | None = None, sparsity_gain: float | None = None, step: float = 0.05,
                 max_p: float = 0.95, layers: Iterable[int] | None = None, m_rule: MRule = "lrp0",
                 gain_search: GainSearch = "paper"):
        if method not in ("lambda", "m"):
            raise ValueError(f"method must be 'lambda' (PLRP-λ) or 'm' (PLRP-M), got {method!r}")
        if m_rule not in ("lrp0", "composite"):
            raise ValueError(f"m_rule must be 'lrp0' (eq. 3.5) or 'composite' (the layer's own rule), got {m_rule!r}")
        if gain_search not in ("paper", "grid"):
            raise ValueError(f"gain_search must be 'paper' (entry by entry, per sign) or 'grid', got {gain_search!r}")
        self.method = method
        self.m_rule = m_rule
        self.gain_search = gain_search
        if sparsity_gain is not None:
            if any(value is not None for value in (p, p_pos, p_neg)):
                raise ValueError("give either sparsity_gain (p found per layer and sample) or p/p_pos/p_neg, "
                                 "not both")
            if not float(sparsity_gain) > 0:
                raise ValueError(f"sparsity_gain is a minimum gain Δs/Δp and must be > 0, got {sparsity_gain!r}")
            if not 0 < step < 1 or not step <= max_p < 1:
                raise ValueError(f"need 0 < step ≤ max_p < 1, got step={step!r}, max_p={max_p!r}")
            self.sparsity_gain: float | None = float(sparsity_gain)
        else:
            self.sparsity_gain = None
        base = 0.0 if p is None else _check_proportion(p, "p")
        self.p_pos = base if p_pos is None else _check_proportion(p_pos, "p_pos")
        self.p_neg = base if p_neg is None else _check_proportion(p_neg, "p_neg")
        self.step = float(step)
        self.max_p = float(max_p)
        self.layers = None if layers is None else frozenset(int(index) for index in layers)
        if self.layers is not None and any(index == 0 for index in self.layers):
            raise ValueError("layer 0's input is the model input, which pruned LRP never prunes; "
                             "remove 0 from layers")

    def describe(self) -> str:
        name = "PLRP-λ" if self.method == "lambda" else ("PLRP-M" if self.m_rule == "lrp0" else "PLRP-M(rule)")
        if self.sparsity_gain is not None:
            search = "per entry and sign" if self.gain_search == "paper" else f"step {self.step:g}"
            return f"{name}(sparsity gain ≥ {self.sparsity_gain:g}, {search})"
        return f"{name}(p_pos={self.p_pos:g}, p_neg={self.p_neg:g})"

    __repr__ = describe

    def applies_to(self, index: int, layer: Layer) -> bool:
        """Whether the relevance at the input of layer ``index`` is pruned."""
        if index <= 0:
            return False
        if self.layers is not None:
            if index not in self.layers:
                return False
            if not isinstance(layer, LinearLayer):
                raise ValueError(f"pruning is applied at the input of linear layers; layer {index} "
                                 f"({layer.describe()}) is not one")
            return True
        return isinstance(layer, LinearLayer)

    def check(self, model: Any) -> None:
        """Raise if ``layers`` names an index outside ``model`` or a non-linear layer."""
        if self.layers is None:
            return
        for index in sorted(self.layers):
            if not 0 < index < len(model):
                raise ValueError(f"pruning layer index {index} is outside the model's layers 1..{len(model) - 1}")
            self.applies_to(index, model.layers[index])

    def _prune(self, relevance: Any) -> PruneResult:
        rescale = self.method == "lambda"
        if self.sparsity_gain is None:
            return prune(relevance, self.p_pos, self.p_neg, rescale=rescale)
        if self.gain_search == "grid":
            chosen = sparsity_gain_proportion(relevance, self.sparsity_gain, self.step, self.max_p)
            return prune(relevance, chosen, chosen, rescale=rescale)
        kept_pos, kept_neg, theta_pos, theta_neg, p_pos, p_neg = sparsity_gain_masks(relevance, self.sparsity_gain)
        return _pruned(relevance, kept_pos, kept_neg, theta_pos, theta_neg, p_pos, p_neg, rescale)

    def __call__(self, index: int, layer: Layer, rule: Rule, a: Any, relevance_upper: Any,
                 relevance_lower: Any) -> Any:
        if not self.applies_to(index, layer):
            return relevance_lower
        result = self._prune(relevance_lower)
        info = result.info()
        info["method"] = self.method
        if self.method == "m":
            info["m_rule"] = self.m_rule
        info["unpruned"] = relevance_lower
        if self.method == "lambda":
            return result.relevance, info
        xp = get_namespace(a)
        a_hat = xp.where(result.kept, a, xp.zeros_like(a))
        if self.m_rule == "composite":
            if isinstance(rule, WinnerTakesAll):    # routes by position, blind to â: use its LRP-0 form
                rule = Zero(stabilizer="vanilla", maxpool=rule.maxpool)
            return rule.relevance(layer, a_hat, relevance_upper), info
        # eq. 3.5: R_j = Σ_k â_j w_jk / Σ_j â_j w_jk · R_k, no bias and no stabilizer (z = 0 drops R_k);
        # max pooling is linearised at â the way the layer's own rule does it
        lrp0 = Zero(stabilizer="vanilla", use_bias=False, maxpool=getattr(rule, "maxpool", "winner"))
        return lrp0.relevance(layer, a_hat, relevance_upper), info


def explain_pruned(model: Any, x: Any, target: Any = None, composite: Any = None, method: Method = "lambda",
                   p: float | None = None, p_pos: float | None = None, p_neg: float | None = None,
                   sparsity_gain: float | None = None, step: float = 0.05, max_p: float = 0.95,
                   layers: Iterable[int] | None = None, record: bool = False, m_rule: MRule = "lrp0",
                   gain_search: GainSearch = "paper", **explain_options: Any) -> Any:
    """PLRP-λ or PLRP-M explanation of ``model`` on ``x``: :func:`lrpcore.explain` with a :class:`Pruning` hook.

    Every argument of :func:`lrpcore.explain` passes through (``stabilizer``, ``top``,
    ``activations``); see :class:`Pruning` for the pruning ones. With ``p=0`` (and no
    sparsity gain) PLRP-λ and PLRP-M with ``m_rule="composite"`` equal plain LRP; PLRP-M by
    eq. 3.5 is LRP-0 (without bias) at the pruned layers.
    """
    from .explain import explain

    pruning = Pruning(method=method, p=p, p_pos=p_pos, p_neg=p_neg, sparsity_gain=sparsity_gain, step=step,
                      max_p=max_p, layers=layers, m_rule=m_rule, gain_search=gain_search)
    pruning.check(model)
    return explain(model, x, target=target, composite=composite, record=record, modify=pruning,
                   **explain_options)


def pruning_summary(explanation: Any) -> list[dict[str, Any]]:
    """One row per pruned layer of a recorded PLRP explanation: index, layer, mean p_pos/p_neg, mean
    pruned fraction of ‖r̃‖₁, neurons pruned of all (batch means), method. Needs ``record=True``."""
    if explanation.trace is None:
        raise ValueError("pruning_summary needs an explanation computed with record=True")
    rows = []
    for step in explanation.trace:
        if step is None or "pruned_mass" not in step.info:
            continue
        info = step.info
        rows.append({"index": step.index, "layer": step.layer.describe(), "method": info["method"],
                     "p_pos": float(info["p_pos"].mean()), "p_neg": float(info["p_neg"].mean()),
                     "pruned_fraction": float(info["pruned_fraction"].mean()),
                     "pruned_count": float(info["pruned_count"].mean()), "neurons": int(info["neurons"])})
    return rows
