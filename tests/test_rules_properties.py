"""Properties LRP rules must have (Montavon et al. 2019, section 10.2): conservation, limits, equivalences."""
from __future__ import annotations

import numpy as np
import pytest

import lrpcore
from lrpcore import explain, gradient, relevance_matrix
from lrpcore.composites import uniform
from lrpcore.layers import Conv2d, Dense
from lrpcore.rules import AlphaBeta, Epsilon, Flat, Gamma, WSquare, Zero, ZBox, ZPlus
from lrpcore.testing import random_input, random_layer

from _networks import relu_network


def test_lrp0_conserves_relevance_layer_by_layer_without_bias():
    model = relu_network(seed=1, bias=False)
    x = np.abs(np.random.default_rng(0).normal(size=(3, 3, 8, 8)))
    result = explain(model, x, composite=uniform(Zero()))
    lrpcore.check_conservation(result, rtol=1e-10)
    np.testing.assert_allclose(result.relevance.sum(axis=(1, 2, 3)), result.output, rtol=1e-10)


def test_conservation_check_names_the_layer_that_absorbs():
    model = relu_network(seed=1, bias=True)
    x = np.abs(np.random.default_rng(0).normal(size=(2, 3, 8, 8)))
    result = explain(model, x, composite=uniform(Epsilon(0.5)))
    with pytest.raises(lrpcore.ConservationError, match=r"layer 9 \(Dense\(8→5\)"):
        lrpcore.check_conservation(result, rtol=1e-6)


@pytest.mark.parametrize("kind", ["dense", "conv2d", "avgpool2d", "maxpool2d"])
def test_explicit_matrix_columns_sum_to_one_for_conservative_rules(kind):
    layer, shape = random_layer(kind, 4)
    if hasattr(layer, "bias"):
        layer.bias = np.zeros_like(layer.bias)
    a = random_input(shape, 4, nonnegative=True)
    exact = {"stabilizer": "vanilla", "epsilon": 0.0}
    for rule in (Zero(), ZPlus(**exact), Gamma(0.5, **exact), Flat(**exact), WSquare(**exact)):
        matrix = relevance_matrix(layer, a, rule)
        z = layer.forward(a).reshape(-1)
        active = np.abs(z) > 1e-9 if isinstance(rule, Zero) else np.ones_like(z, dtype=bool)
        columns = matrix.sum(axis=0)
        if isinstance(rule, (ZPlus, Gamma, AlphaBeta)):
            # outputs with no positive contribution have an all-zero column (nothing to redistribute)
            active &= np.abs(columns) > 1e-12
        np.testing.assert_allclose(columns[active], 1.0, rtol=1e-9, err_msg=f"{rule!r} on {kind}")


def test_alpha_beta_columns_sum_to_one_where_both_signs_contribute():
    """α·1 − β·1 = 1 when an output has positive and negative contributions; α or −β when only one side."""
    layer, shape = random_layer("conv2d", 4)
    layer.bias = np.zeros_like(layer.bias)
    a = random_input(shape, 4, nonnegative=True)
    matrix = relevance_matrix(layer, a, AlphaBeta(2, 1, stabilizer="vanilla", epsilon=0.0))
    positive = relevance_matrix(layer, a, ZPlus(stabilizer="vanilla", epsilon=0.0)).sum(axis=0)
    negative = (2 * relevance_matrix(layer, a, ZPlus(stabilizer="vanilla", epsilon=0.0)) - matrix).sum(axis=0)
    both = (np.abs(positive) > 0.5) & (np.abs(negative) > 0.5)
    assert both.any() and (~both).any()
    np.testing.assert_allclose(matrix.sum(axis=0)[both], 1.0, rtol=1e-9)


def test_epsilon_rule_absorbs_relevance_in_bias():
    """Column deficit of M equals the share of bias and ε in the denominator: (b + ε)/(z + ε)."""
    rng = np.random.default_rng(2)
    layer = Dense(rng.normal(size=(3, 5)), rng.normal(size=3))
    a = np.abs(rng.normal(size=(1, 5)))
    rule = Epsilon(0.2, stabilizer="vanilla")
    z = layer.forward(a)[0]
    matrix = relevance_matrix(layer, a, rule)
    np.testing.assert_allclose(1.0 - matrix.sum(axis=0), (layer.bias + 0.2) / (z + 0.2), rtol=1e-10)


def test_epsilon_absorbs_more_as_epsilon_grows():
    model = relu_network(seed=3, bias=False)
    x = np.abs(np.random.default_rng(1).normal(size=(2, 3, 8, 8)))
    totals = [explain(model, x, composite=uniform(Epsilon(eps, stabilizer="vanilla"))).relevance.sum()
              for eps in (0.0, 0.01, 0.1, 1.0, 10.0)]
    assert all(later < earlier for earlier, later in zip(totals, totals[1:])), totals


def test_lrp0_equals_gradient_times_input_on_bias_free_relu_net():
    model = relu_network(seed=5, bias=False)
    x = np.random.default_rng(2).normal(size=(2, 3, 8, 8))
    lrp = explain(model, x, target=[1, 3], composite=uniform(Zero(maxpool="winner_first")))
    grad, _ = gradient(model, x, target=[1, 3])
    np.testing.assert_allclose(lrp.relevance, grad * x, rtol=1e-9, atol=1e-12)


def test_gradient_from_transpose_maps_matches_finite_differences():
    model = relu_network(seed=6, bias=True)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1, 3, 8, 8))
    grad, _ = gradient(model, x, target=2)
    step = 1e-6
    for _ in range(12):
        position = tuple(int(rng.integers(0, n)) for n in x.shape)
        plus, minus = x.copy(), x.copy()
        plus[position] += step
        minus[position] -= step
        numeric = (model.forward(plus)[0, 2] - model.forward(minus)[0, 2]) / (2 * step)
        assert abs(numeric - grad[position]) <= 1e-5 * max(1.0, abs(numeric)), (position, numeric, grad[position])


def test_gamma_approaches_zplus_for_large_gamma():
    layer, shape = random_layer("conv2d", 7)
    a = random_input(shape, 7, nonnegative=False)
    upper = np.abs(np.random.default_rng(1).normal(size=(1, *layer.output_shape(shape))))
    zplus = ZPlus(stabilizer="vanilla", epsilon=0.0).relevance(layer, a, upper)
    gaps = [np.abs(Gamma(g, stabilizer="vanilla", epsilon=0.0, use_bias=False).relevance(layer, a, upper)
                   - ZPlus(stabilizer="vanilla", epsilon=0.0, use_bias=False).relevance(layer, a, upper)).max()
            for g in (1.0, 100.0, 1e6)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-5 * np.abs(zplus).max()


def test_alpha1_beta0_equals_zplus_on_nonnegative_inputs():
    for kind in ("dense", "conv2d"):
        layer, shape = random_layer(kind, 8)
        a = random_input(shape, 8, nonnegative=True)
        upper = np.random.default_rng(2).normal(size=(1, *layer.output_shape(shape)))
        np.testing.assert_allclose(AlphaBeta(1, 0).relevance(layer, a, upper), ZPlus().relevance(layer, a, upper),
                                   rtol=1e-12, atol=1e-14)


def test_alpha_beta_refuses_non_conservative_parameters():
    with pytest.raises(ValueError, match="α − β must equal 1"):
        AlphaBeta(2, 2)
    with pytest.raises(ValueError, match="α ≥ 0 and β ≥ 0"):
        AlphaBeta(0.5, -0.5)


def test_zbox_with_zero_bounds_equals_lrp0_on_first_layer():
    layer, shape = random_layer("conv2d", 9)
    a = random_input(shape, 9, nonnegative=False)
    upper = np.random.default_rng(3).normal(size=(1, *layer.output_shape(shape)))
    box = ZBox(0.0, 0.0, stabilizer="vanilla", epsilon=0.0).relevance(layer, a, upper)
    zero = Zero(use_bias=False).relevance(layer, a, upper)
    np.testing.assert_allclose(box, zero, rtol=1e-12, atol=1e-14)


def test_flat_spreads_relevance_uniformly_over_the_receptive_field():
    rng = np.random.default_rng(4)
    layer = Dense(rng.normal(size=(1, 6)), rng.normal(size=1))
    a = rng.normal(size=(1, 6))
    lower = Flat(stabilizer="vanilla", epsilon=0.0).relevance(layer, a, np.array([[3.0]]))
    np.testing.assert_allclose(lower, np.full((1, 6), 0.5), rtol=1e-12)


def test_wsquare_ignores_the_input():
    layer, shape = random_layer("conv2d", 10)
    upper = np.random.default_rng(5).normal(size=(1, *layer.output_shape(shape)))
    first = WSquare().relevance(layer, random_input(shape, 1, False), upper)
    second = WSquare().relevance(layer, random_input(shape, 2, True), upper)
    np.testing.assert_allclose(first, second, rtol=1e-12)


def test_maxpool_winner_splits_ties_equally_and_winner_first_takes_all():
    from lrpcore.layers import MaxPool2d

    layer = MaxPool2d(2)
    a = np.array([[[[1.0, 3.0], [3.0, 0.5]]]])
    upper = np.array([[[[6.0]]]])
    np.testing.assert_allclose(Zero().relevance(layer, a, upper)[0, 0], [[0, 3], [3, 0]])
    np.testing.assert_allclose(Zero(maxpool="winner_first").relevance(layer, a, upper)[0, 0], [[0, 6], [0, 0]])
    np.testing.assert_allclose(Zero(maxpool="sum").relevance(layer, a, upper)[0, 0],
                               6 * a[0, 0] / a.sum(), rtol=1e-12)


def test_gamma_and_alpha_beta_treat_negative_inputs_by_contribution_sign():
    """A negative input with a negative weight makes a positive contribution and gets positive relevance."""
    layer = Dense(np.array([[-1.0, 1.0]]), np.zeros(1))
    a = np.array([[-2.0, 1.0]])        # contributions +2 and +1: both positive
    upper = np.array([[3.0]])
    for rule in (ZPlus(), Gamma(0.5)):
        np.testing.assert_allclose(rule.relevance(layer, a, upper), [[2.0, 1.0]], rtol=1e-6, err_msg=repr(rule))
    # α2β1 with no negative contribution: the β branch is empty, the α branch gives α·R (not conservative)
    np.testing.assert_allclose(AlphaBeta(2, 1).relevance(layer, a, upper), [[4.0, 2.0]], rtol=1e-6)


def test_float32_is_kept_and_float64_is_available():
    model32 = relu_network(seed=0, dtype=np.float32)
    x = np.random.default_rng(0).normal(size=(2, 3, 8, 8))
    result32 = explain(model32, x, composite="epsilon_gamma_box")
    assert result32.relevance.dtype == np.float32 and result32.output.dtype == np.float32
    result64 = explain(model32.astype("float64"), x, composite="epsilon_gamma_box")
    assert result64.relevance.dtype == np.float64
    np.testing.assert_allclose(result32.relevance, result64.relevance, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("kind", ["dense", "conv2d", "avgpool2d", "maxpool2d"])
def test_sparse_relevance_matrix_equals_the_dense_one(kind):
    scipy_sparse = pytest.importorskip("scipy.sparse")
    layer, shape = random_layer(kind, 12)
    a = random_input(shape, 12, nonnegative=False, ties=kind == "maxpool2d")
    for rule in (Epsilon(0.2), Gamma(0.25, symmetric=True), AlphaBeta(2, 1), ZBox(-2.0, 2.0)):
        dense = relevance_matrix(layer, a, rule)
        sparse = relevance_matrix(layer, a, rule, sparse=True)
        assert scipy_sparse.issparse(sparse)
        np.testing.assert_allclose(sparse.toarray(), dense, rtol=1e-12, atol=1e-15)
