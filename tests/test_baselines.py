"""``lrpcore.baselines``: each method against its paper's definition written out by hand (no torch here;
captum and zennit on the same weights are in ``tests/reference/test_baselines_reference.py``)."""
from __future__ import annotations

import numpy as np
import pytest
from _networks import relu_network, sequence_network
from evaluate_helpers import linear_model

import lrpcore
from lrpcore import baselines
from lrpcore.backend import to_backend, to_numpy
from lrpcore.errors import InputValueError, ShapeError
from lrpcore.layers import Dense, ReLU


def _inputs(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


def _score(model, x, target):
    return np.asarray(model.forward(x))[np.arange(len(x)), target]


def test_gradient_equals_central_finite_differences_in_float64():
    model, x = relu_network(), _inputs((2, 3, 8, 8))
    result = baselines.gradient(model, x, target=[1, 3])
    step = 1e-6
    numeric = np.zeros_like(x)
    for index in np.ndindex(x.shape[1:]):
        plus, minus = x.copy(), x.copy()
        plus[(slice(None),) + index] += step
        minus[(slice(None),) + index] -= step
        numeric[(slice(None),) + index] = (_score(model, plus, [1, 3]) - _score(model, minus, [1, 3])) / (2 * step)
    np.testing.assert_allclose(result.relevance, numeric, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(baselines.gradient_x_input(model, x, [1, 3]).relevance, x * numeric, rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_allclose(result.output, _score(model, x, [1, 3]), rtol=1e-12)


def _two_layer():
    """f(x) = w2 · relu(W1 x) with hidden pre-activations of both signs and output weights of both signs."""
    w1 = np.array([[1.0, 2.0], [-1.0, 1.0], [2.0, -1.0]])
    w2 = np.array([[1.0, 2.0, -1.0]])
    model = lrpcore.Sequential([Dense(w1, np.zeros(3)), ReLU(), Dense(w2, np.zeros(1))],
                               lrpcore.ModelMetadata(input_shape=(2,)))
    return model, w1, w2, np.array([[1.0, 0.5]])     # hidden z = (2, −0.5, 1.5)


def test_guided_backprop_and_deconvnet_change_only_the_relu_step_as_the_papers_write_it():
    model, w1, w2, x = _two_layer()
    g = w2[0]                                   # gradient at the ReLU output: (1, 2, −1)
    active = (w1 @ x[0]) > 0                    # (True, False, True)
    plain = w1.T @ (g * active)                 # ∂f/∂x
    guided = w1.T @ (np.maximum(g, 0) * active)  # Springenberg et al.: positive gradient and positive input
    deconv = w1.T @ np.maximum(g, 0)            # Zeiler & Fergus: positive gradient, forward mask ignored
    np.testing.assert_allclose(baselines.gradient(model, x, 0).relevance[0], plain)
    np.testing.assert_allclose(baselines.guided_backprop(model, x, 0).relevance[0], guided)
    np.testing.assert_allclose(baselines.deconvnet(model, x, 0).relevance[0], deconv)
    assert not np.allclose(guided, deconv) and not np.allclose(guided, plain)


def test_integrated_gradients_is_exact_on_a_linear_model_and_complete_on_a_relu_network():
    weight = np.random.default_rng(1).normal(size=(2, 3, 4, 4))
    model, x = linear_model(weight), _inputs((2, 3, 4, 4), 2)
    result = baselines.integrated_gradients(model, x, target=[0, 1], steps=3, baseline=0.5)
    np.testing.assert_allclose(result.relevance, (x - 0.5) * weight[[0, 1]], rtol=1e-12)
    # completeness (Sundararajan et al. 2017, §3): Σ_i IG_i = f_c(x) − f_c(x̄)
    model, x = relu_network(), _inputs((2, 3, 8, 8), 3)
    # (piecewise linear along the path: the Riemann sum's error comes from the ReLU/max-pool kinks only)
    expected = _score(model, x, [2, 4]) - _score(model, np.zeros_like(x), [2, 4])
    errors = [np.abs(baselines.integrated_gradients(model, x, target=[2, 4], steps=steps, rule="riemann_middle")
                     .relevance.reshape(2, -1).sum(axis=1) / expected - 1).max() for steps in (8, 1024)]
    assert errors[1] < 3e-3 and errors[1] < errors[0] / 5


@pytest.mark.parametrize("rule,alphas", [("riemann_right", [1 / 4, 2 / 4, 3 / 4, 1]),
                                         ("riemann_left", [0, 1 / 4, 2 / 4, 3 / 4]),
                                         ("riemann_middle", [1 / 8, 3 / 8, 5 / 8, 7 / 8]),
                                         ("riemann_trapezoid", [0, 1 / 3, 2 / 3, 1])])
def test_integral_points_are_the_written_riemann_sums(rule, alphas):
    points, weights = baselines.integral_points(4, rule)
    np.testing.assert_allclose(points, alphas)
    expected = [1 / 6, 1 / 3, 1 / 3, 1 / 6] if rule == "riemann_trapezoid" else [1 / 4] * 4
    np.testing.assert_allclose(weights, expected)
    nodes, gauss = baselines.integral_points(5, "gausslegendre")
    assert np.dot(gauss, nodes ** 9) == pytest.approx(1 / 10, rel=1e-12)   # degree 2n − 1 exactly


def test_smoothgrad_is_the_mean_gradient_over_the_noisy_copies():
    model, x = relu_network(), _inputs((2, 3, 8, 8), 4)
    noise = _inputs((3, 2, 3, 8, 8), 5)
    sigma = 0.15 * (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3)))[:, None, None, None]
    expected = np.mean([baselines.gradient(model, x + sigma * noise[i], target=[0, 1]).relevance for i in range(3)],
                       axis=0)
    result = baselines.smoothgrad(model, x, target=[0, 1], samples=3, noise_level=0.15, noise=noise)
    np.testing.assert_allclose(result.relevance, expected, rtol=1e-12)
    still = baselines.smoothgrad(model, x, target=[0, 1], samples=2, stdev=0.0)
    np.testing.assert_allclose(still.relevance, baselines.gradient(model, x, [0, 1]).relevance, rtol=1e-12)


def test_seeded_draws_belong_to_the_image_not_to_its_batch():
    model, x = relu_network(), _inputs((3, 3, 8, 8), 6)
    for method, options in (("smoothgrad", {"samples": 3}), ("random", {})):
        batch = baselines.attribute(model, x, 0, method, seed=7, **options).relevance
        alone = baselines.attribute(model, x[2:], 0, method, seed=7, image_ids=[2], **options).relevance
        np.testing.assert_allclose(batch[2], alone[0], rtol=1e-12, atol=1e-15)
        other = baselines.attribute(model, x, 0, method, seed=8, **options).relevance
        assert not np.array_equal(batch, other)


def test_random_relevance_is_uniform_on_zero_one_as_the_thesis_and_uniform_is_constant():
    model, x = relu_network(), _inputs((4, 3, 8, 8), 7)
    values = np.asarray(baselines.random_relevance(model, x).relevance)
    assert values.min() >= 0.0 and values.max() < 1.0
    assert abs(values.mean() - 0.5) < 0.05 and abs(values.var() - 1 / 12) < 0.02    # U[0, 1): mean ½, var 1/12
    normal = np.asarray(baselines.attribute(model, x, None, "random_normal").relevance)
    assert normal.min() < 0 and abs(normal.std() - 1) < 0.1
    ones = baselines.uniform(model, x).relevance
    assert np.all(np.asarray(ones) == 1.0)


def test_occlusion_averages_the_drop_of_every_window_covering_an_element():
    weight = np.random.default_rng(8).normal(size=(1, 2, 5, 8))
    model, x = linear_model(weight), _inputs((1, 2, 5, 8), 9)
    result = baselines.occlusion(model, x, target=0, window=(3, 3), stride=(2, 3), fill=0.25)
    total, count = np.zeros((5, 8)), np.zeros((5, 8))
    # starts 0, s, ..., ⌈(D − w)/s⌉·s: rows ⌈2/2⌉ + 1 = 2 windows, columns ⌈5/3⌉ + 1 = 3 (the last cut at 8)
    for top in (0, 2):
        for left in (0, 3, 6):
            occluded = x.copy()
            occluded[:, :, top:top + 3, left:left + 3] = 0.25
            drop = float((weight * x).sum() - (weight * occluded).sum())
            total[top:top + 3, left:left + 3] += drop
            count[top:top + 3, left:left + 3] += 1
    assert np.all(count > 0) and count.max() == 2
    np.testing.assert_allclose(result.relevance[0], np.broadcast_to(total / count, (2, 5, 8)), rtol=1e-12)


def test_occlusion_of_sequences_slides_along_the_length():
    model, x = sequence_network(), np.eye(4)[np.random.default_rng(1).integers(0, 4, 20)].T[None]
    result = baselines.occlusion(model, x, target=1, window=5)
    for start in range(0, 20, 5):
        occluded = x.copy()
        occluded[..., start:start + 5] = 0.0
        drop = _score(model, x, [1]) - _score(model, occluded, [1])
        np.testing.assert_allclose(result.relevance[0, :, start:start + 5], drop[0], rtol=1e-10)


def test_attribute_dispatches_baselines_and_composites_to_one_result():
    model, x = relu_network(), _inputs((2, 3, 8, 8), 10)
    lrp = baselines.attribute(model, x, [0, 1], "epsilon_plus")
    np.testing.assert_array_equal(lrp.relevance, lrpcore.explain(model, x, [0, 1], composite="epsilon_plus").relevance)
    assert lrp.method == "epsilon_plus" and lrp.explanation is not None
    custom = lrpcore.composites.cmp(alpha=2)
    assert baselines.attribute(model, x, [0, 1], custom).method == custom.name
    grad = baselines.attribute(model, x, [0, 1], "gradient")
    assert grad.method == "gradient" and grad.explanation is None
    np.testing.assert_array_equal(grad.target, [0, 1])
    steps = baselines.attribute(model, x, [0, 1], "integrated_gradients", steps=2, rule="riemann_left")
    halves = [baselines.gradient(model, alpha * x, [0, 1]).relevance for alpha in (0.0, 0.5)]
    np.testing.assert_allclose(steps.relevance, x * (halves[0] + halves[1]) / 2, rtol=1e-12)   # α = 0, ½
    with pytest.raises(ValueError, match="unknown method 'gradients'"):
        baselines.attribute(model, x, None, "gradients")
    with pytest.raises(TypeError, match="method must be"):
        baselines.attribute(model, x, None, 3)


def test_pixel_flipping_takes_a_method_name_as_its_relevance():
    from lrpcore.evaluate import pixel_flipping

    model = relu_network()
    x = np.random.default_rng(11).random((2, 3, 8, 8))
    options = dict(mode="constant", patch_size=2, schedule=[1, 4, 8], final_gray=False)
    by_name = pixel_flipping(model, x, "guided_backprop", **options)
    by_array = pixel_flipping(model, x, baselines.guided_backprop(model, x).relevance, **options)
    np.testing.assert_array_equal(by_name.scores, by_array.scores)
    np.testing.assert_array_equal(by_name.order, by_array.order)
    smoothed = pixel_flipping(model, x, "smoothgrad", method_options={"samples": 2, "seed": 3}, **options)
    expected = baselines.smoothgrad(model, x, samples=2, seed=3).relevance
    np.testing.assert_array_equal(smoothed.order, pixel_flipping(model, x, expected, **options).order)


def test_baselines_run_on_array_api_strict_as_on_numpy():
    pytest.importorskip("array_api_strict")
    model, x = relu_network(), _inputs((2, 3, 8, 8), 12)
    strict_model, strict_x = model.to("array_api_strict"), to_backend(x, "array_api_strict")
    for method, options in (("gradient", {}), ("guided_backprop", {}), ("deconvnet", {}),
                            ("integrated_gradients", {"steps": 3}), ("smoothgrad", {"samples": 2}),
                            ("occlusion", {"window": 4}), ("random", {})):
        expected = baselines.attribute(model, x, [0, 1], method, **options).relevance
        strict = baselines.attribute(strict_model, strict_x, [0, 1], method, **options).relevance
        np.testing.assert_allclose(to_numpy(strict), expected, rtol=1e-12, atol=1e-14, err_msg=method)


def test_float32_models_give_float32_attributions():
    model, x = relu_network(dtype=np.float32), _inputs((1, 3, 8, 8), 13).astype(np.float32)
    for method in ("gradient", "smoothgrad", "integrated_gradients", "occlusion", "random", "uniform"):
        assert baselines.attribute(model, x, 0, method).relevance.dtype == np.float32, method


def test_bad_settings_are_named():
    model, x = relu_network(), _inputs((1, 3, 8, 8), 14)
    with pytest.raises(ShapeError, match="window"):
        baselines.occlusion(model, x, window=9)
    with pytest.raises(ValueError, match="stride"):
        baselines.occlusion(model, x, window=2, stride=3)
    with pytest.raises(ShapeError, match="noise must have shape"):
        baselines.smoothgrad(model, x, samples=2, noise=np.zeros((3, 1, 3, 8, 8)))
    with pytest.raises(ValueError, match="samples"):
        baselines.smoothgrad(model, x, samples=0)
    with pytest.raises(InputValueError, match="out of range"):
        baselines.gradient(model, x, target=9)
    with pytest.raises(ValueError, match="unknown integral rule"):
        baselines.integrated_gradients(model, x, rule="simpson")
    with pytest.raises(ShapeError, match="baseline"):
        baselines.integrated_gradients(model, x, baseline=np.zeros((2, 3, 8)))
    with pytest.raises(InputValueError, match="NaN"):
        baselines.gradient(model, np.full((1, 3, 8, 8), np.nan))
    from lrpcore.evaluate import pixel_flipping

    with pytest.raises(TypeError, match="needs an lrpcore model"):
        pixel_flipping(lambda batch: model.forward(batch), x, "gradient")
