"""lrpcore.testing's property checks on the built-in rules, and each check failing on a rule that violates it."""
from __future__ import annotations

import pytest

from lrpcore.backend import clip_max, clip_min
from lrpcore.rules import AlphaBeta, Epsilon, Flat, Gamma, WSquare, Zero, ZPlus
from lrpcore.testing import (SimpleRule, assert_rule_matches_reference, check_conservation, check_equivalence,
                             check_limit, check_positivity, check_rescaling_invariance)

KINDS = ("dense", "conv2d")


class _Leaky(Epsilon):
    """A deliberately broken rule: LRP-ε whose output is scaled by 1.1 (creates relevance)."""

    def relevance(self, layer, a, relevance, record=None):
        return 1.1 * super().relevance(layer, a, relevance, record)


def _clipped_epsilon(clip: float = 0.5) -> SimpleRule:
    return SimpleRule(rho=lambda w: clip_max(clip_min(w, -clip), clip), epsilon=0.25, name="ClippedEpsilon")


@pytest.mark.parametrize("kind", KINDS)
def test_bias_free_rules_conserve_relevance_exactly(kind):
    for rule in (Zero(use_bias=False), Gamma(0.25, use_bias=False), Flat()):
        assert check_conservation(rule, kind) < 1e-4


@pytest.mark.parametrize("kind", KINDS)
def test_every_term_rule_conserves_up_to_what_bias_and_epsilon_absorb(kind):
    for rule in (Epsilon(0.3), Epsilon(0.3, stabilizer="vanilla"), AlphaBeta(2, 1), ZPlus(),
                 Gamma(0.5, symmetric=True), _clipped_epsilon()):
        assert check_conservation(rule, kind, absorbed=True, nonnegative=False) < 1e-9


def test_conservation_check_fails_on_bias_absorption_and_on_a_rule_that_creates_relevance():
    with pytest.raises(AssertionError, match="does not conserve relevance"):
        check_conservation(Epsilon(0.3))                     # bias and ε absorb: not strictly conserving
    with pytest.raises(AssertionError, match="not absorbed by bias and stabilizer"):
        check_conservation(_Leaky(0.3), absorbed=True)


@pytest.mark.parametrize("kind", KINDS + ("avgpool2d", "maxpool2d"))
def test_zplus_flat_and_wsquare_preserve_positivity(kind):
    for rule in (ZPlus(), Flat(), WSquare(), AlphaBeta(1, 0)):
        assert check_positivity(rule, kind) == 0.0


def test_positivity_check_fails_on_epsilon_rule_with_negative_weights():
    with pytest.raises(AssertionError, match="does not preserve positivity"):
        check_positivity(Epsilon(0.3), "dense")


@pytest.mark.parametrize("kind", KINDS)
def test_epsilon_and_gamma_approach_lrp0_in_their_limits(kind):
    epsilon = check_limit(lambda value: Epsilon(value, stabilizer="vanilla"), Zero(), (1e-2, 1e-4, 1e-6), kind)
    gamma = check_limit(lambda value: Gamma(value, stabilizer="vanilla", epsilon=0.0), Zero(), (1e-1, 1e-3, 1e-5),
                        kind, nonnegative=False)
    assert epsilon[-1] < 1e-3 and gamma[-1] < 1e-3


def test_limit_check_fails_when_the_rules_do_not_meet():
    with pytest.raises(AssertionError, match="does not approach"):
        check_limit(lambda value: Gamma(value), Epsilon(0.3), (1.0, 10.0, 100.0))


@pytest.mark.parametrize("kind", KINDS)
def test_simple_rule_with_gamma_map_equals_gamma_rule_on_nonnegative_inputs(kind):
    rule = SimpleRule(rho=lambda w: w + 0.25 * clip_min(w), name="γ by hand")
    assert check_equivalence(rule, Gamma(0.25), kind, nonnegative=True) < 1e-12


def test_equivalence_check_fails_between_different_rules():
    with pytest.raises(AssertionError, match="differs from"):
        check_equivalence(Gamma(0.25), Gamma(0.5), "dense")


@pytest.mark.parametrize("kind", KINDS)
def test_homogeneous_rules_are_invariant_to_positive_weight_rescaling(kind):
    for rule in (Zero(), Gamma(0.25, stabilizer="vanilla", epsilon=0.0), ZPlus(stabilizer="vanilla", epsilon=0.0),
                 AlphaBeta(2, 1, stabilizer="vanilla", epsilon=0.0), WSquare(use_bias=True, stabilizer="vanilla",
                                                                            epsilon=0.0)):
        assert check_rescaling_invariance(rule, kind, rtol=1e-9) < 1e-9


def test_rescaling_check_fails_on_epsilon_rule():
    with pytest.raises(AssertionError, match="not invariant to positive rescaling"):
        check_rescaling_invariance(Epsilon(0.3), "dense")


@pytest.mark.parametrize("kind", ("dense", "conv2d", "avgpool2d", "maxpool2d"))
def test_simple_rule_matches_loop_reference_and_explicit_matrix(kind):
    assert assert_rule_matches_reference(_clipped_epsilon(), kind) < 1e-10


def test_reference_check_catches_a_rule_whose_fast_path_is_wrong():
    with pytest.raises(AssertionError, match="deviates from the loop reference"):
        assert_rule_matches_reference(_Leaky(0.3), "dense")
