"""Every rule × layer kind against the loop reference (lrpcore.testing) and the explicit matrix."""
from __future__ import annotations

import numpy as np
import pytest

from lrpcore.backend import to_backend, to_numpy
from lrpcore.rules import AlphaBeta, Epsilon, Flat, Gamma, WSquare, Zero, ZBox, ZPlus
from lrpcore.testing import (LAYER_KINDS, assert_rule_matches_reference, naive_relevance, random_input,
                             random_layer)

RULES = {
    "zero": lambda: Zero(),
    "epsilon_zennit": lambda: Epsilon(0.3),
    "epsilon_vanilla": lambda: Epsilon(0.3, stabilizer="vanilla"),
    "epsilon_quadratic_mean": lambda: Epsilon(0.3, stabilizer="quadratic_mean"),
    "gamma": lambda: Gamma(0.25),
    "gamma_symmetric": lambda: Gamma(0.25, symmetric=True),
    "alpha2_beta1": lambda: AlphaBeta(2, 1),
    "alpha1_beta0": lambda: AlphaBeta(1, 0),
    "zplus": lambda: ZPlus(),
    "flat": lambda: Flat(),
    "wsquare": lambda: WSquare(),
    "wsquare_with_bias": lambda: WSquare(use_bias=True),
    "zbox_scalar": lambda: ZBox(-1.0, 1.5),
    "zbox_per_pixel": None,  # built per layer (needs the input shape)
    "zero_winner_first": lambda: Zero(maxpool="winner_first"),
    "zero_sum_pooling": lambda: Zero(maxpool="sum"),
}


def _rule(name: str, layer_kind: str):
    if name == "zbox_per_pixel":
        _, shape = random_layer(layer_kind, 0)
        rng = np.random.default_rng(5)
        low = -np.abs(rng.normal(size=(1, *shape))) - 0.5
        return ZBox(low, -low + 0.25)
    return RULES[name]()


@pytest.mark.parametrize("layer_kind", LAYER_KINDS)
@pytest.mark.parametrize("rule_name", list(RULES))
def test_rule_matches_loop_reference_and_explicit_matrix(rule_name, layer_kind):
    worst = assert_rule_matches_reference(_rule(rule_name, layer_kind), layer_kind, seeds=(0, 1, 2), rtol=1e-10)
    assert worst <= 1e-10


@pytest.mark.parametrize("layer_kind", LAYER_KINDS)
@pytest.mark.parametrize("rule_name", ["zero", "epsilon_quadratic_mean", "gamma", "gamma_symmetric",
                                       "alpha2_beta1", "flat", "wsquare", "zbox_per_pixel"])
def test_rule_runs_on_every_backend(rule_name, layer_kind, backend):
    """The fast path on array-api-strict / CuPy equals the loop reference (no NumPy-only call)."""
    rule = _rule(rule_name, layer_kind)
    layer, shape = random_layer(layer_kind, 3)
    a = random_input(shape, 3, nonnegative=False, ties="maxpool" in layer_kind)
    upper = np.random.default_rng(11).normal(size=(1, *layer.output_shape(shape)))
    reference = naive_relevance(layer, a, upper, rule)
    if rule_name == "zbox_per_pixel":
        rule.low, rule.high = to_backend(rule.low, backend), to_backend(rule.high, backend)
    fast = rule.relevance(layer.to(backend), to_backend(a, backend), to_backend(upper, backend))
    assert type(fast).__module__.split(".")[0] in {"numpy": ("numpy",), "array_api_strict": ("array_api_strict",),
                                                    "cupy": ("cupy",)}[backend]
    np.testing.assert_allclose(to_numpy(fast), reference, rtol=1e-10, atol=1e-12 * np.abs(reference).max())


def test_loop_reference_detects_a_wrong_rule():
    """The reference check can fail: a rule whose fast path drops the γ boost is caught."""
    class BrokenGamma(Gamma):
        def relevance(self, layer, a, relevance, record=None):
            return Epsilon(self.epsilon).relevance(layer, a, relevance)

    with pytest.raises(AssertionError, match="deviates from the loop reference"):
        assert_rule_matches_reference(BrokenGamma(0.5), "conv2d", seeds=(0,))


def test_user_rule_is_checked_through_its_terms():
    """A rule lrpcore does not know (clipped ε) is verified by the generic loop over its branches."""
    from lrpcore.rules import Branch, Rule, Term

    class ClippedEpsilon(Rule):
        """ε rule whose negative weights are clipped at -0.5 (a made-up rule for the test)."""

        def branches(self, layer, a, weight, bias):
            from lrpcore.backend import get_namespace
            xp = get_namespace(weight)
            clipped = xp.where(weight < -0.5, xp.zeros_like(weight) - 0.5, weight)
            return [Branch([Term(a, clipped, bias)])]

    for kind in LAYER_KINDS:
        assert assert_rule_matches_reference(ClippedEpsilon(epsilon=0.1), kind, seeds=(0, 1)) <= 1e-10
