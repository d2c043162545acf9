"""Product neurons and the chapter's second-order rule: loops, the explicit matrix, conservation."""
from __future__ import annotations

import numpy as np
import pytest

import lrpcore
from lrpcore.pairwise import ProductNeurons, explain_pair, pair_matrix


@pytest.fixture
def case():
    rng = np.random.default_rng(5)
    model = ProductNeurons(rng.normal(size=(5, 7)), rng.normal(size=(4, 7)), rng.uniform(0.5, 1.5, size=7))
    x = np.abs(rng.normal(size=(3, 5)))
    y = np.abs(rng.normal(size=(3, 4)))
    return model, x, y


def test_forward_is_the_sum_of_product_neurons_written_as_loops(case):
    model, x, y = case
    for n in range(3):
        total = 0.0
        for k in range(7):
            left = max(0.0, sum(x[n, i] * model.w[i, k] for i in range(5)))
            right = max(0.0, sum(y[n, j] * model.v[j, k] for j in range(4)))
            total += model.u[k] * left * right
        assert model.forward(x, y)[n] == pytest.approx(total, rel=1e-12)


def test_second_order_rule_matches_the_loops_and_conserves(case):
    model, x, y = case
    explanation = explain_pair(model, x, y)
    assert explanation.relevance.shape == (3, 5, 4)
    for n in range(3):
        _, _, a = model.neurons(x[n:n + 1], y[n:n + 1])
        expected = np.zeros((5, 4))
        for k in range(7):
            if a[0, k] <= 0:
                continue
            r_k = model.u[k] * a[0, k]
            denominator = sum(x[n, i] * y[n, j] * model.w[i, k] * model.v[j, k] for i in range(5) for j in range(4))
            for i in range(5):
                for j in range(4):
                    expected[i, j] += x[n, i] * y[n, j] * model.w[i, k] * model.v[j, k] / denominator * r_k
        np.testing.assert_allclose(explanation.relevance[n], expected, rtol=1e-10, atol=1e-12)
    table = explanation.conservation()
    assert table.total_relative_error < 1e-12
    assert [row["rule"] for row in table.rows] == ["second-order", "LRP-0"]
    np.testing.assert_allclose(explanation.relevance.sum(axis=(1, 2)), model.forward(x, y), rtol=1e-12)


def test_explicit_matrix_reproduces_the_fast_path(case):
    model, x, y = case
    explanation = explain_pair(model, x, y, epsilon=0.01)
    for n in range(3):
        matrix = pair_matrix(model, x[n], y[n], epsilon=0.01)
        assert matrix.shape == (20, 7)
        np.testing.assert_allclose(matrix @ explanation.neurons[n], explanation.relevance[n].ravel(), rtol=1e-12)
    # ε absorbs: the pair matrix sums to less than f
    active = explanation.output > 0
    assert active.sum() >= 2
    assert (explanation.relevance.sum(axis=(1, 2))[active] < explanation.output[active]).all()


def test_a_matching_pair_is_found(case):
    """One neuron sees x_2 and y_3 only: the pair (2, 3) carries its relevance."""
    w = np.zeros((5, 1))
    v = np.zeros((4, 1))
    w[2, 0] = v[3, 0] = 1.0
    model = ProductNeurons(w, v)
    _, x, y = case
    relevance = explain_pair(model, x, y).relevance
    assert np.all(np.argmax(relevance.reshape(3, -1), axis=1) == 2 * 4 + 3)
    np.testing.assert_allclose(relevance[:, 2, 3], x[:, 2] * y[:, 3])


def test_bad_shapes_are_named(case):
    model, x, y = case
    with pytest.raises(lrpcore.ShapeError, match="same K"):
        ProductNeurons(np.zeros((5, 3)), np.zeros((4, 2)))
    with pytest.raises(lrpcore.ShapeError, match="y of shape"):
        model.forward(x, y[:, :3])
    with pytest.raises(lrpcore.ShapeError, match="one sample"):
        pair_matrix(model, x, y)
