"""Deep Taylor decomposition (lrpcore.dtd) against the chapter's equations written as loops, lrpcore's fast
path, the hinge and the input domain; the relevance model, simple Taylor and gradient shattering (lrpcore.taylor)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lrpcore
from lrpcore.dtd import check_roots, root_points, search_direction
from lrpcore.layers import AvgPool2d, Conv2d, Dense, MaxPool2d, ReLU
from lrpcore.rules import Epsilon, Gamma, WSquare, ZBox, Zero, ZPlus
from lrpcore.taylor import (gradient_x_input, neighbour_correlation, relevance_model_error, simple_taylor,
                            total_variation_ratio)

MODELS = Path(__file__).resolve().parents[1] / "models"
LOW, HIGH = -1.0, 3.0
RULES = {
    "LRP-0": Zero(),
    "LRP-0 no bias": Zero(use_bias=False),
    "LRP-ε": Epsilon(0.1),
    "LRP-γ": Gamma(0.25),
    "z+": ZPlus(),
    "zB": ZBox(LOW, HIGH),
    "w²": WSquare(),
    "w² with bias": WSquare(use_bias=True),
}


@pytest.fixture
def dense_case():
    rng = np.random.default_rng(3)
    layer = Dense(rng.normal(size=(6, 9)), -0.3 * np.abs(rng.normal(size=6)) + np.array([0.4, 0, 0, 0, 0, 0]))
    a = np.abs(rng.normal(size=(4, 9)))
    relevance = np.maximum(layer.forward(a), 0.0) * rng.uniform(0.5, 2.0, size=(4, 6))
    return layer, a, relevance


@pytest.fixture
def conv_case():
    rng = np.random.default_rng(4)
    layer = Conv2d(rng.normal(size=(3, 2, 3, 3)), -0.2 * np.abs(rng.normal(size=3)), padding=1)
    a = np.abs(rng.normal(size=(2, 2, 5, 5)))
    relevance = np.maximum(layer.forward(a), 0.0)
    return layer, a, relevance


def loop_roots(layer: Dense, a: np.ndarray, relevance: np.ndarray, rule_name: str):
    """The chapter's search directions (appendix 10.A) for a ≥ 0, one neuron at a time."""
    w, b = layer.weight, layer.bias          # w[k, j] = w_jk
    roots = np.zeros((a.shape[0], w.shape[0], w.shape[1]))
    terms = np.zeros_like(roots)
    gamma, eps = 0.25, 0.1
    for n in range(a.shape[0]):
        for k in range(w.shape[0]):
            z = sum(a[n, j] * w[k, j] for j in range(w.shape[1])) + b[k]
            if relevance[n, k] == 0:
                roots[n, k] = a[n]
                continue
            v = np.zeros(w.shape[1])
            for j in range(w.shape[1]):
                if rule_name in ("LRP-0", "LRP-0 no bias", "LRP-ε"):
                    v[j] = a[n, j]
                elif rule_name == "LRP-γ":
                    v[j] = a[n, j] * (1 + gamma * (w[k, j] > 0))
                elif rule_name == "z+":
                    v[j] = a[n, j] * (w[k, j] > 0)
                elif rule_name == "zB":
                    v[j] = a[n, j] - LOW if w[k, j] > 0 else a[n, j] - HIGH
                else:
                    v[j] = w[k, j]
            v0 = {"LRP-0": 1.0, "LRP-ε": 1.0, "LRP-γ": 1 + gamma * (b[k] > 0), "z+": float(b[k] > 0),
                  "w² with bias": b[k]}.get(rule_name, 0.0)
            d = sum(v[j] * w[k, j] for j in range(w.shape[1])) + v0 * b[k]
            stab = d + (eps if rule_name == "LRP-ε" else (0.0 if rule_name.startswith("LRP-0") else 1e-6)) * (
                1.0 if d >= 0 else -1.0)
            t = z / stab
            c = relevance[n, k] / z
            for j in range(w.shape[1]):
                roots[n, k, j] = a[n, j] - t * v[j]
                terms[n, k, j] = (a[n, j] - roots[n, k, j]) * w[k, j] * c
    return roots, terms


@pytest.mark.parametrize("name", list(RULES))
def test_roots_and_terms_match_the_chapter_written_as_loops(dense_case, name):
    layer, a, relevance = dense_case
    roots = root_points(layer, a, relevance, RULES[name])
    expected_roots, expected_terms = loop_roots(layer, a, relevance, name)
    np.testing.assert_allclose(roots.root, expected_roots, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(roots.terms, expected_terms, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", ["dense_case", "conv_case"])
@pytest.mark.parametrize("name", list(RULES))
def test_taylor_terms_reproduce_the_rule_fast_path_to_1e10(case, name, request):
    layer, a, relevance = request.getfixturevalue(case)
    check = check_roots(layer, a, relevance, RULES[name])
    assert check.active > 0
    assert check.reconstruction_error < 1e-10, check
    # Σ_j terms + absorbed (bias share + ε share) = R_k: the decomposition of every neuron is complete
    assert check.conservation_error < 1e-10, check
    # the root lies on the hinge up to exactly the bias and ε shares the rule absorbs
    assert check.hinge_error < 1e-10, check


@pytest.mark.parametrize("name", ["LRP-0 no bias", "zB", "w²"])
def test_rules_without_bias_in_the_denominator_put_the_root_on_the_plain_hinge(conv_case, name):
    layer, a, relevance = conv_case
    check = check_roots(layer, a, relevance, RULES[name])
    # the step absorbs the bias: z_k(ã) = 0 up to the stabilizer's share z·ε/(d+ε) (ε = 1e-6 here, 0 for LRP-0)
    assert check.hinge_residual < (1e-12 if name.startswith("LRP-0") else 1e-5), check


def test_lrp0_with_bias_expands_at_the_origin_and_the_bias_absorbs_its_term(dense_case):
    layer, a, relevance = dense_case
    roots = root_points(layer, a, relevance, Zero())
    active = roots.active
    assert np.abs(roots.root[active]).max() < 1e-12          # t = 1: ã = 0 (with the bias neuron switched off)
    # z_k(ã = 0) = b_k: the root misses the plain hinge by exactly the bias, whose term b_k c_k is absorbed
    np.testing.assert_allclose(roots.root_preactivation[active], np.broadcast_to(layer.bias, active.shape)[active])
    np.testing.assert_allclose(roots.absorbed[active], (layer.bias * roots.c)[active], rtol=1e-12)


def test_epsilon_root_stops_short_of_the_hinge_by_the_epsilon_share(dense_case):
    layer, a, relevance = dense_case
    rule = Epsilon(0.1)
    roots = root_points(layer, a, relevance, rule)
    active = roots.active
    # t = z/(z + ε) for v = a with the bias neuron: ã = a·ε/(z + ε), and z(ã) = b·t + z·ε/(z + ε)
    np.testing.assert_allclose(roots.step[active], (roots.z / (roots.z + 0.1))[active], rtol=1e-12)
    np.testing.assert_allclose(roots.epsilon_share[active], (roots.z * 0.1 / (roots.z + 0.1))[active], rtol=1e-12)


@pytest.mark.parametrize("rule", [ZPlus(), Gamma(0.25), Gamma(3.0)], ids=["z+", "γ=0.25", "γ=3"])
def test_zplus_and_gamma_roots_stay_in_the_positive_orthant(dense_case, conv_case, rule):
    for layer, a, relevance in (dense_case, conv_case):
        check = check_roots(layer, a, relevance, rule)
        assert check.domain_violation == 0.0
        roots = root_points(layer, a, relevance, rule)
        moved = roots.active[:, :, None] & (roots.direction > 0)
        assert (roots.root[moved] < a.reshape(len(a), 1, -1).repeat(roots.root.shape[1], 1)[moved]).all()


def test_wsquare_roots_may_leave_the_orthant_lrp0_without_bias_too(dense_case):
    """w² searches along w (inputs in ℝ^d); LRP-0 with the bias left out of z steps past the origin
    (t > 1) for a neuron with a positive bias."""
    layer, a, relevance = dense_case
    w2 = root_points(layer, a, relevance, WSquare())
    assert (w2.root[w2.active] < -1e-9).any()
    lrp0 = root_points(layer, a, relevance, Zero(use_bias=False))
    assert layer.bias[0] > 0 and (lrp0.step[:, 0][lrp0.active[:, 0]] > 1).all()
    assert (lrp0.root[:, 0][lrp0.active[:, 0]] < 0).all()
    assert check_roots(layer, a, relevance, WSquare()).domain_violation is None


def test_zbox_roots_stay_in_the_box(conv_case):
    layer, a, relevance = conv_case
    check = check_roots(layer, a, relevance, ZBox(LOW, HIGH))
    assert check.domain_violation <= 1e-12 and check.outside_box == 0       # biases ≤ 0: every neuron has a root
    roots = root_points(layer, a, relevance, ZBox(LOW, HIGH))
    inside = roots.root[roots.active]
    assert inside.min() >= LOW - 1e-12 and inside.max() <= HIGH + 1e-12
    # a neuron active on the whole box has no root in it: reported, not hidden
    positive = Conv2d(layer.weight, np.full(3, 50.0), padding=1)
    assert check_roots(positive, a, np.maximum(positive.forward(a), 0), ZBox(LOW, HIGH)).outside_box > 0


def test_wsquare_root_is_the_orthogonal_projection_on_the_hinge(dense_case):
    layer, a, relevance = dense_case
    layer = Dense(layer.weight, np.zeros(6))
    roots = root_points(layer, a, np.maximum(layer.forward(a), 0), WSquare(epsilon=0.0, stabilizer="vanilla"))
    for n, k in zip(*np.nonzero(roots.active)):
        step = a[n] - roots.root[n, k]
        w = layer.weight[k]
        assert abs(w @ roots.root[n, k]) < 1e-12
        np.testing.assert_allclose(step, (step @ w) / (w @ w) * w, atol=1e-12)   # moved along w only


def test_neon_midpoint_rule_is_a_deep_taylor_rule_rooted_at_the_midpoints():
    from lrpcore.neon import from_kmeans, kmeans_composite, kmeans_midpoints

    class Fitted:
        cluster_centers_ = np.array([[0.0, 0.0, 1.0], [3.0, 1.0, 0.0], [0.5, 4.0, 2.0]])

    model = from_kmeans(Fitted, beta=1.0)
    x = np.random.default_rng(2).normal(size=(3, 3)) * 2
    rules = kmeans_composite(Fitted).rules(model)
    explanation = lrpcore.explain(model, x, composite=kmeans_composite(Fitted))
    roots = root_points(model.layers[0], x, explanation.layer_relevances[1], rules[0])
    midpoints = kmeans_midpoints(Fitted.cluster_centers_)
    active = roots.active
    np.testing.assert_allclose(roots.root[active], np.broadcast_to(midpoints, roots.root.shape)[active], rtol=1e-7,
                               atol=1e-7)
    check = check_roots(model.layers[0], x, explanation.layer_relevances[1], rules[0], roots)
    assert check.reconstruction_error < 1e-10 and check.hinge_error < 1e-10


def test_pooling_layers_decompose_too():
    rng = np.random.default_rng(0)
    a = np.abs(rng.normal(size=(2, 3, 4, 4)))
    for layer in (AvgPool2d(2), MaxPool2d(2)):
        check = check_roots(layer, a, layer.forward(a), Zero())
        assert check.reconstruction_error < 1e-12 and check.hinge_error < 1e-12


def test_unsupported_rules_are_refused(dense_case):
    layer, a, relevance = dense_case
    with pytest.raises(TypeError, match="single root"):
        root_points(layer, a, relevance, lrpcore.rules.AlphaBeta(2, 1))
    with pytest.raises(TypeError, match="symmetric"):
        search_direction(Gamma(0.25, symmetric=True), a, layer.weight, layer.bias)


def test_breaking_the_direction_breaks_the_check(dense_case, monkeypatch):
    """The checks can fail: a wrong γ direction (no boost) no longer reproduces LRP-γ."""
    layer, a, relevance = dense_case
    import lrpcore.dtd as dtd

    original = dtd.search_direction

    def wrong(rule, layer_input, weight, bias):
        direction, bias_direction = original(Zero(), layer_input, weight, bias)
        return direction, bias_direction

    monkeypatch.setattr(dtd, "search_direction", wrong)
    assert check_roots(layer, a, relevance, Gamma(0.25)).reconstruction_error > 1e-3


# --- the relevance model, simple Taylor, shattering -------------------------------------------------
@pytest.fixture(scope="module")
def digits_mlp():
    return lrpcore.load(MODELS / "digits_mlp.h5")


def test_relevance_model_is_exact_at_the_top_and_for_lrp0_in_a_relu_mlp(digits_mlp):
    x = lrpcore.data.digits().x[:6]
    rows = relevance_model_error(digits_mlp, x, composite="zero", sigma=1e-3, count=2)
    assert [row.index for row in rows] == [1, 3, 5]
    assert rows[-1].median == 0.0                   # top layer: R_k = a_k (c_k = 1 for the target)
    # LRP-0 in a ReLU network: c_k = ∂f/∂a_k, constant while no ReLU switches (tiny perturbation)
    assert all(row.median < 1e-8 for row in rows)
    # with ε in the upper layers c_k depends on a: the model is only approximate
    eps = relevance_model_error(digits_mlp, x, composite=lrpcore.composites.uniform(Epsilon(1.0)), sigma=1e-3,
                                count=2)
    assert eps[0].median > 1e-6


def test_simple_taylor_finds_a_root_and_gradient_x_input_is_lrp0_without_biases():
    rng = np.random.default_rng(1)
    model = lrpcore.Sequential([Dense(rng.normal(size=(8, 5)), np.zeros(8)), ReLU(),
                                Dense(rng.normal(size=(3, 8)), np.zeros(3))])
    x = np.abs(rng.normal(size=(4, 5)))
    target = model.forward(x).argmax(axis=1)
    result = simple_taylor(model, x, target)
    assert np.all(np.abs(result.root_output) <= 1e-3 * np.abs(result.output))
    lrp0 = np.asarray(lrpcore.explain(model, x, target=target).relevance)
    np.testing.assert_allclose(gradient_x_input(model, x, target), lrp0, rtol=1e-10, atol=1e-12)


def test_gradients_are_shattered_and_lrp_is_not_on_the_shapes_cnn():
    model = lrpcore.load(MODELS / "shapes_cnn.h5").astype("float64")
    x = lrpcore.data.shapes(3, seed=11).x.astype(np.float64)
    target = model.forward(x).argmax(axis=1)

    def lrp(z):
        return np.asarray(lrpcore.explain(model, z, target=target, composite="epsilon_plus").relevance)

    def gxi(z):
        return gradient_x_input(model, z, target)

    lrp_corr = neighbour_correlation(lrp, x, 0.02, count=2)
    gxi_corr = neighbour_correlation(gxi, x, 0.02, count=2)
    assert (lrp_corr > gxi_corr).all(), (lrp_corr, gxi_corr)
    assert (total_variation_ratio(gxi(x)) > 1.5 * total_variation_ratio(lrp(x))).all()


def test_total_variation_ratio_separates_noise_from_blobs():
    rng = np.random.default_rng(0)
    blob = np.zeros((1, 1, 16, 16))
    blob[0, 0, 4:12, 4:12] = 1.0
    noise = rng.normal(size=(1, 1, 16, 16))
    assert total_variation_ratio(blob)[0] < 0.6 < 1.5 < total_variation_ratio(noise)[0]
