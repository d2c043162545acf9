"""NEON: k-means and one-class SVM as lrpcore networks, checked against the fitted scikit-learn models, the
rules written as loops, the explicit matrices, conservation and the trace."""
from __future__ import annotations

import math

import numpy as np
import pytest

import lrpcore
from lrpcore.layers import Dense
from lrpcore.neon import (DistanceShares, Midpoint, MinTakesMost, SoftMinPool, SquaredDistance, from_kmeans,
                          from_one_class_svm, kmeans_composite, kmeans_midpoints, one_class_svm_composite)
from lrpcore.composites import Composite

sklearn_cluster = pytest.importorskip("sklearn.cluster")
sklearn_svm = pytest.importorskip("sklearn.svm")

CENTERS = np.array([[0.0, 0.0, 0.0], [4.0, 0.0, 1.0], [0.0, 4.0, -1.0], [3.0, 3.0, 3.0]])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(size=(40, 3)) + center for center in CENTERS])


@pytest.fixture(scope="module")
def kmeans(data):
    return sklearn_cluster.KMeans(4, n_init=4, random_state=0).fit(data)


@pytest.fixture(scope="module")
def fresh():
    rng = np.random.default_rng(7)
    return rng.normal(size=(12, 3)) * 2.0 + 1.5


def squared_distances(kmeans, x):
    return kmeans.transform(x) ** 2         # scikit-learn's own distances to the centres


def test_hard_min_network_gives_the_distance_margin_and_the_assignment(kmeans, fresh):
    model = from_kmeans(kmeans)             # β = ∞
    scores = model.forward(fresh)
    d2 = squared_distances(kmeans, fresh)
    k = d2.shape[1]
    margin = np.array([[min(d2[n, other] - d2[n, c] for other in range(k) if other != c) for c in range(k)]
                       for n in range(len(fresh))])
    np.testing.assert_allclose(scores, margin, rtol=1e-10, atol=1e-10)
    assert (scores.argmax(axis=1) == kmeans.predict(fresh)).all()
    assert ((scores > 0).sum(axis=1) == 1).all()         # exactly the assigned cluster has a positive margin


@pytest.mark.parametrize("beta", [0.05, 0.3, 2.0])
def test_soft_min_score_is_the_log_odds_of_the_soft_assignment(kmeans, fresh, beta):
    """β f_c = log(P_c / (1 − P_c)) with P ∝ exp(−β‖x − μ‖²), NEON's reading of the membership score."""
    scores = from_kmeans(kmeans, beta).forward(fresh)
    d2 = squared_distances(kmeans, fresh)
    k = d2.shape[1]
    # log P_c − log(1 − P_c) = −β d²_c − log Σ_{k≠c} exp(−β d²_k), from scikit-learn's distances
    log_odds = np.array([[-beta * d2[n, c] - np.logaddexp.reduce([-beta * d2[n, o] for o in range(k) if o != c])
                          for c in range(k)] for n in range(len(fresh))])
    np.testing.assert_allclose(beta * scores, log_odds, rtol=1e-9, atol=1e-9)
    if beta == 0.05:         # where P is not saturated, the plain formula too
        p = np.exp(-beta * d2) / np.exp(-beta * d2).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(beta * scores, np.log(p / (1 - p)), rtol=1e-9)


def test_soft_min_approaches_the_hard_min(kmeans, fresh):
    hard = from_kmeans(kmeans).forward(fresh)
    gaps = [np.abs(from_kmeans(kmeans, beta).forward(fresh) - hard).max() for beta in (0.1, 1.0, 100.0)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.05
    assert (from_kmeans(kmeans, 1.0).forward(fresh) <= hard + 1e-12).all()   # the soft min lies below


def loop_neon(kmeans, x, beta):
    """NEON for k-means written from the equations, one sample, cluster and competitor at a time."""
    centers = kmeans.cluster_centers_
    k = len(centers)
    out = np.zeros_like(x)
    for n in range(len(x)):
        h = {}
        for c in range(k):
            for other in range(k):
                if other != c:
                    w = 2 * (centers[c] - centers[other])
                    b = centers[other] @ centers[other] - centers[c] @ centers[c]
                    h[c, other] = w @ x[n] + b
        if math.isinf(beta):       # hard min: min-take-all
            scores = [min(h[c, o] for o in range(k) if o != c) for c in range(k)]
        else:
            scores = [-math.log(sum(math.exp(-beta * h[c, o]) for o in range(k) if o != c)) / beta for c in range(k)]
        c = int(np.argmax(scores))
        if math.isinf(beta):
            weights = {o: float(h[c, o] == scores[c]) for o in range(k) if o != c}
        else:
            weights = {o: math.exp(-beta * h[c, o]) for o in range(k) if o != c}
        total = sum(weights.values())
        for o in weights:
            r_k = weights[o] / total * scores[c]                         # min-take-most
            m = (centers[c] + centers[o]) / 2                            # midpoint root
            w = 2 * (centers[c] - centers[o])
            for i in range(x.shape[1]):
                out[n, i] += (x[n, i] - m[i]) * w[i] / (w @ (x[n] - m)) * r_k
    return out


@pytest.mark.parametrize("beta", [math.inf, 0.5])
def test_explain_runs_neon_and_matches_the_loops(kmeans, fresh, beta):
    model = from_kmeans(kmeans, beta)
    explanation = lrpcore.explain(model, fresh, composite=kmeans_composite(kmeans), record=True)
    expected = loop_neon(kmeans, fresh, beta)
    np.testing.assert_allclose(explanation.relevance, expected, rtol=1e-7, atol=1e-7)
    # the trace holds both layers with their rules; conservation is reported like any layer
    assert [type(step.rule) for step in explanation.trace] == [Midpoint, MinTakesMost]
    table = explanation.conservation()
    assert table.total_relative_error < 1e-8
    assert all(row["relative_error"] < 1e-8 for row in table.rows)
    np.testing.assert_allclose(explanation.relevance.sum(axis=1), explanation.output, rtol=1e-8)


def test_midpoints_lie_on_the_hinges(kmeans):
    model = from_kmeans(kmeans)
    midpoints = kmeans_midpoints(kmeans.cluster_centers_)
    dense = model.layers[0]
    np.testing.assert_allclose(np.einsum("kd,kd->k", dense.weight, midpoints) + dense.bias, 0, atol=1e-10)


def test_explicit_matrices_reproduce_the_fast_path(kmeans, fresh):
    model = from_kmeans(kmeans, 0.5)
    composite = kmeans_composite(kmeans)
    rules = composite.rules(model)
    activations = model.forward(fresh[:1], record=True)
    explanation = lrpcore.explain(model, fresh[:1], composite=composite)
    for index in (1, 0):
        matrix = lrpcore.relevance_matrix(model.layers[index], activations[index], rules[index])
        upper = explanation.layer_relevances[index + 1][0]
        np.testing.assert_allclose(matrix @ upper, explanation.layer_relevances[index][0], rtol=1e-10, atol=1e-12)
    # min-take-most: every active column of the pooling matrix is a probability vector
    pool = lrpcore.relevance_matrix(model.layers[1], activations[1], rules[1])
    np.testing.assert_allclose(pool.sum(axis=0), 1.0)


def test_soft_min_pool_gradient_is_the_softmin_weights():
    rng = np.random.default_rng(0)
    layer = SoftMinPool(3, beta=1.5)
    x = rng.normal(size=(2, 6))
    grad = rng.normal(size=(2, 2))
    step = 1e-6
    numeric = np.zeros_like(x)
    for n in range(2):
        for i in range(6):
            moved = x.copy()
            moved[n, i] += step
            numeric[n, i] = ((layer.forward(moved) - layer.forward(x)) * grad).sum() / step
    np.testing.assert_allclose(layer.gradient(x, grad), numeric, rtol=1e-4, atol=1e-5)


# --- one-class SVM ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def svm(data):
    return sklearn_svm.OneClassSVM(kernel="rbf", gamma=0.2, nu=0.1).fit(data)


def test_one_class_network_reproduces_the_decision_function(svm, fresh):
    model = from_one_class_svm(svm)
    outlierness = model.forward(fresh)[:, 0]
    rho = -svm.intercept_[0]
    np.testing.assert_allclose(np.exp(-0.2 * outlierness) - rho, svm.decision_function(fresh), rtol=1e-10,
                               atol=1e-12)
    # o(x) is the soft min of the offset distances with stiffness γ, loop form
    vectors, alpha = svm.support_vectors_, svm.dual_coef_[0]
    for n in range(3):
        h = [((fresh[n] - u) ** 2).sum() - math.log(a) / 0.2 for u, a in zip(vectors, alpha)]
        assert outlierness[n] == pytest.approx(-math.log(sum(math.exp(-0.2 * value) for value in h)) / 0.2,
                                               rel=1e-10)
    # outliers (decision < 0) are exactly the points with o(x) above −γ⁻¹ log ρ
    assert ((outlierness > -math.log(rho) / 0.2) == (svm.predict(fresh) == -1)).all()


def test_one_class_explanation_conserves_and_matches_the_loops(svm, fresh):
    model = from_one_class_svm(svm)
    explanation = lrpcore.explain(model, fresh, target=0, composite=one_class_svm_composite(), record=True)
    assert [type(step.rule) for step in explanation.trace] == [DistanceShares, MinTakesMost]
    assert explanation.conservation().total_relative_error < 1e-10
    vectors, alpha = svm.support_vectors_, svm.dual_coef_[0]
    for n in range(3):
        x = fresh[n]
        h = np.array([((x - u) ** 2).sum() - math.log(a) / 0.2 for u, a in zip(vectors, alpha)])
        p = np.exp(-0.2 * (h - h.min()))
        p /= p.sum()
        o = explanation.output[n]
        expected = sum(p[j] * o * (x - u) ** 2 / ((x - u) ** 2).sum() for j, u in enumerate(vectors))
        np.testing.assert_allclose(explanation.relevance[n], expected, rtol=1e-9)


def test_distance_shares_matrix_from_its_definition(svm, fresh):
    from lrpcore.matrix import rule_matrix as own_rule_matrix

    model = from_one_class_svm(svm)
    layer = model.layers[0]
    x = fresh[:1]
    squares = (x[0][None, :] - svm.support_vectors_) ** 2                       # (S, D)
    definition = (squares / squares.sum(axis=1, keepdims=True)).T                # (D, S): M_ij
    np.testing.assert_allclose(own_rule_matrix(layer, x, DistanceShares()), definition, rtol=1e-12)
    np.testing.assert_allclose(definition.sum(axis=0), 1.0)                      # every column conserves


def test_an_outlier_is_explained_by_the_feature_that_makes_it_one(svm, data):
    model = from_one_class_svm(svm)
    point = data.mean(axis=0, keepdims=True).copy()
    point[0, 2] += 25.0                                       # far out along feature 2 only
    explanation = lrpcore.explain(model, point, target=0, composite=one_class_svm_composite())
    assert svm.predict(point)[0] == -1
    assert np.argmax(explanation.relevance[0]) == 2
    assert explanation.relevance[0, 2] > 0.9 * explanation.relevance[0].sum()


def test_a_composite_gives_the_non_linear_distance_layer_its_own_rule(svm, fresh):
    model = from_one_class_svm(svm)
    composite = Composite(by_type={SquaredDistance: DistanceShares(), SoftMinPool: MinTakesMost()})
    assert isinstance(composite.rules(model)[0], DistanceShares)
    explanation = lrpcore.explain(model, fresh, target=0, composite=composite)
    assert np.isfinite(explanation.relevance).all()
    # not named, the layers' own rules (default_rule) are taken: every preset explains a NEON model
    assert [type(rule) for rule in Composite().rules(model)] == [DistanceShares, MinTakesMost]
    np.testing.assert_allclose(lrpcore.explain(model, fresh, target=0, composite="epsilon_plus").relevance,
                               explanation.relevance, rtol=1e-12)
    composite.by_type[SquaredDistance] = lrpcore.rules.Pass()
    with pytest.raises(lrpcore.ShapeError):                  # Pass cannot carry (N, k) relevance to (N, d) inputs
        lrpcore.explain(model, fresh, target=0, composite=composite)


def test_neon_models_round_trip_through_the_model_file(kmeans, svm, fresh, tmp_path):
    for model in (from_kmeans(kmeans, 0.7), from_one_class_svm(svm)):
        path = tmp_path / f"{model.metadata.name}.h5"
        lrpcore.save(model, path)
        loaded = lrpcore.load(path)
        assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
        np.testing.assert_array_equal(loaded.forward(fresh), model.forward(fresh))


def test_bad_input_is_named(kmeans):
    with pytest.raises(lrpcore.InputValueError, match="not fitted"):
        from_kmeans(sklearn_cluster.KMeans(3))
    with pytest.raises(lrpcore.InputValueError, match="RBF"):
        from_one_class_svm(sklearn_svm.OneClassSVM(kernel="linear").fit(np.eye(4)))
    with pytest.raises(ValueError, match="β > 0"):
        SoftMinPool(3, beta=0.0)
    with pytest.raises(lrpcore.ShapeError, match="SoftMinPool"):
        SoftMinPool(3).forward(np.zeros((2, 4)))
    with pytest.raises(TypeError, match="Dense"):
        Midpoint(np.zeros((2, 3))).branches(SoftMinPool(2), np.zeros((1, 4)), None, None)
    assert isinstance(from_kmeans(kmeans).layers[0], Dense)
