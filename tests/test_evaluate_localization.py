"""Kohlbrenner et al. 2020's protocol (``lrpcore.evaluate.localization``) against the paper's definitions."""
from __future__ import annotations

import numpy as np
import pytest
from _networks import relu_network
from evaluate_helpers import linear_model

import lrpcore
from lrpcore import baselines
from lrpcore.errors import InputValueError, ShapeError
from lrpcore.evaluate import localization
from lrpcore.layers import Dense, MaxPool2d
from lrpcore.rules import AlphaBeta, Epsilon, Flat, Pass, Zero


def test_box_sizes_are_box_area_over_image_area():
    boxes = np.array([[0, 0, 4, 4], [2, 1, 10, 9], [0, 0, 10, 20]])
    np.testing.assert_allclose(localization.box_sizes(boxes, (10, 20)), [16 / 200, 64 / 200, 1.0])
    with pytest.raises(InputValueError, match="empty"):
        localization.box_sizes(np.array([[3, 3, 3, 5]]), (10, 10))
    with pytest.raises(ShapeError, match=r"\(N, 4\)"):
        localization.box_sizes(np.zeros((2, 3)), (10, 10))


def test_mu_by_box_size_averages_mu_in_100_equal_intervals_of_zero_one():
    sizes = np.array([0.004, 0.009, 0.015, 0.25, 0.2599, 1.0])
    mu = np.array([0.2, 0.4, 0.9, 0.5, 0.7, 1.0])
    curve = localization.mu_by_box_size(mu, sizes)
    assert len(curve.edges) == 101 and curve.edges[1] == pytest.approx(0.01)
    assert curve.count.sum() == 6 and curve.count[0] == 2 and curve.count[1] == 1
    assert curve.mean[0] == pytest.approx(0.3) and curve.mean[1] == pytest.approx(0.9)
    assert curve.count[25] == 2 and curve.mean[25] == pytest.approx(0.6)      # [0.25, 0.26)
    assert curve.count[99] == 1 and curve.mean[99] == 1.0                      # the last interval holds 1
    assert np.isnan(curve.mean[50])
    centres, means = curve.filled()
    np.testing.assert_allclose(centres, [0.005, 0.015, 0.255, 0.995])
    np.testing.assert_allclose(means, [0.3, 0.9, 0.6, 1.0])


def test_table_columns_follow_the_papers_definitions_on_hand_made_heatmaps():
    boxes = np.array([[0, 0, 2, 2], [0, 0, 4, 4], [0, 0, 6, 6]])          # sizes 4/64, 16/64, 36/64
    heat = np.zeros((3, 1, 8, 8))
    heat[0, 0, :2, :2] = 1.0                                                # all inside: μ = 1
    heat[0, 0, 7, 7] = -5.0                                                 # negative relevance is ignored
    heat[1, 0, 0, 0], heat[1, 0, 7, 7] = 3.0, 1.0                           # μ = 3/4
    heat[2] = 1.0                                                           # uniform: μ = 36/64
    scores = localization.localization_scores(heat, boxes)
    mu = np.array([1.0, 0.75, 36 / 64])
    np.testing.assert_allclose(scores["per_image_mu"], mu)
    np.testing.assert_allclose(scores["per_image_mu_w"], mu * 64 / np.array([4, 16, 36]))
    assert scores["mu"] == pytest.approx(mu.mean()) and scores["mu_w"] == pytest.approx((mu * 64 / [4, 16, 36]).mean())
    assert scores["mu_le_0.25"] == pytest.approx(mu[:2].mean()) and scores["n_le_0.25"] == 2   # 16/64 = 0.25 counts
    assert scores["mu_le_0.5"] == pytest.approx(mu[:2].mean()) and scores["n_le_0.5"] == 2
    assert scores["per_image_mu_w"][2] == pytest.approx(1.0)                # uniform: μ_w = 1


def test_the_uniform_baseline_has_mu_equal_to_the_box_share_and_mu_w_one():
    model = relu_network()
    x = np.random.default_rng(0).normal(size=(3, 3, 8, 8))
    boxes = np.array([[0, 0, 2, 3], [1, 1, 8, 8], [2, 4, 6, 8]])
    scores = localization.localization_scores(baselines.uniform(model, x).relevance, boxes)
    np.testing.assert_allclose(scores["per_image_mu"], localization.box_sizes(boxes, (8, 8)))
    np.testing.assert_allclose(scores["per_image_mu_w"], 1.0)


def _rules(model, composite):
    return [rule.describe() for rule in composite.rules(model)]


def test_cmp_puts_flat_on_the_first_n_weighted_layers_and_equals_the_preset_for_n_1():
    model = relu_network()        # 0 Conv, 1 ReLU, 2 MaxPool, 3 Conv, 4 ReLU, 5 AvgPool, 6 Flatten, 7 Dense, 9 Dense
    for alpha in (1, 2):
        ours = localization.cmp(model, alpha, flat_layers=1)
        preset = lrpcore.composites.cmp(alpha, flat_input=True)
        assert _rules(model, ours) == _rules(model, preset)
        x = np.random.default_rng(1).normal(size=(2, 3, 8, 8))
        np.testing.assert_array_equal(lrpcore.explain(model, x, composite=ours).relevance,
                                      lrpcore.explain(model, x, composite=preset).relevance)
    two = localization.cmp(model, 2, flat_layers=2).rules(model)
    assert [type(rule) for rule in two[:4]] == [Flat, Pass, Flat, Flat]     # the pool between the convs too
    assert isinstance(two[5], Epsilon) and isinstance(two[7], Epsilon)     # pooling ε, dense ε
    plain = localization.cmp(model, 2).rules(model)
    assert isinstance(plain[0], AlphaBeta) and plain[0].alpha == 2 and plain[0].beta == 1
    with pytest.raises(ValueError, match="flat_layers"):
        localization.cmp(model, 2, flat_layers=5)


def test_lrp_cam_is_lrp_z_on_the_dense_part_and_flat_through_the_convolutional_stack():
    model = relu_network()
    rules = localization.lrp_cam(model).rules(model)
    first_dense = next(i for i, layer in enumerate(model.layers) if isinstance(layer, Dense))
    for index, (layer, rule) in enumerate(zip(model.layers, rules)):
        if isinstance(rule, Pass):
            continue
        assert isinstance(rule, Flat if index < first_dense else Zero), (index, layer)
    # flat below the dense part spreads relevance without looking at the activations (a CAM-like upsampling):
    # swapping in another image's activations below the dense layers leaves the heatmap unchanged
    x1, x2 = (np.random.default_rng(seed).normal(size=(1, 3, 8, 8)) for seed in (2, 3))
    first, second = model.forward(x1, record=True), model.forward(x2, record=True)
    mixed = second[:first_dense] + first[first_dense:]
    for composite, same in ((localization.lrp_cam(model), True), (localization.cmp(model, 2), False)):
        reference = lrpcore.explain(model, x1, target=0, composite=composite).relevance
        swapped = lrpcore.explain(model, x2, target=0, composite=composite, activations=mixed).relevance
        assert np.allclose(swapped, reference, rtol=1e-12, atol=1e-15) == same, composite.name


def test_comparison_methods_names_the_table_rows():
    model = relu_network()
    methods = localization.comparison_methods(model, flat_layers=1)
    assert list(methods) == ["CMP α1", "CMP α2", "CMP α1 + ♭1", "CMP α2 + ♭1", "LRP_α1β0", "LRP_α2β1", "LRP_z",
                             "LRP_CAM", "guided backprop", "uniform"]
    uniform_ab = methods["LRP_α2β1"].rules(model)
    assert isinstance(uniform_ab[0], AlphaBeta) and isinstance(uniform_ab[9], AlphaBeta)
    # pools as the presets treat them (αβ at a max pool after a ReLU would multiply relevance by α)
    preset = lrpcore.composites.epsilon_plus().rules(model)
    assert isinstance(model.layers[2], MaxPool2d) and not isinstance(uniform_ab[2], AlphaBeta)
    for name, method in methods.items():
        if not isinstance(method, str) and "♭" not in name and name != "LRP_CAM":
            rules = method.rules(model)
            assert [rules[i].describe() for i in (2, 5)] == [preset[i].describe() for i in (2, 5)], name


def test_object_context_occlusion_fills_the_box_or_its_outside_with_the_training_mean():
    weight = np.random.default_rng(4).normal(size=(2, 3, 6, 6))
    model = linear_model(weight, mean=(0.2, 0.5, 0.8), std=(0.5, 0.5, 0.5))
    raw = np.random.default_rng(5).random((2, 3, 6, 6))
    boxes = np.array([[1, 1, 4, 4], [0, 2, 6, 6]])
    check = localization.object_context_occlusion(model, raw, boxes, target=[0, 1], score="logit")
    mean = np.array([0.2, 0.5, 0.8]).reshape(3, 1, 1)
    for n, (y0, x0, y1, x1) in enumerate(boxes):
        inside = np.zeros((6, 6), dtype=bool)
        inside[y0:y1, x0:x1] = True
        target = [0, 1][n]

        def logit(image):
            return float((weight[target] * (image - mean) / 0.5).sum())

        assert check.original[n] == pytest.approx(logit(raw[n]))
        assert check.object_removed[n] == pytest.approx(logit(np.where(inside, mean, raw[n])))
        assert check.context_removed[n] == pytest.approx(logit(np.where(inside, raw[n], mean)))
    np.testing.assert_allclose(check.fill, [0.2, 0.5, 0.8])
    probability = localization.object_context_occlusion(model, raw, boxes, target=[0, 1])
    assert np.all((probability.original > 0) & (probability.original < 1))
    with pytest.raises(InputValueError, match="training mean"):
        localization.object_context_occlusion(linear_model(weight), raw, boxes)
    with pytest.raises(ShapeError, match="fill"):
        localization.object_context_occlusion(model, raw, boxes, fill=[0.1, 0.2])
