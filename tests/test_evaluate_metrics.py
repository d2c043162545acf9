"""Localisation, sparsity and complexity metrics on hand-computed heatmaps."""
import math

import numpy as np
import pytest

from lrpcore.errors import InputValueError, ShapeError
from lrpcore.evaluate import (boxes_to_masks, entropy, gini, inside_total_ratio, relevance_mass_accuracy,
                              relevance_rank_accuracy, weighted_inside_total_ratio)

HEAT = np.array([[[4.0, -2.0, 0.0],
                  [1.0, 3.0, 0.0]]])
MASK = np.array([[[True, True, False],
                  [False, False, False]]])


def test_relevance_mass_accuracy_by_hand():
    # positive relevance 4 + 1 + 3 = 8, of which 4 inside the mask
    assert relevance_mass_accuracy(HEAT, MASK)[0] == pytest.approx(4 / 8)
    # plain ratio: (4 - 2) / (4 - 2 + 1 + 3)
    assert relevance_mass_accuracy(HEAT, MASK, positive=False)[0] == pytest.approx(2 / 6)


def test_a_heatmap_equal_to_the_mask_has_mass_accuracy_one():
    masks = np.random.default_rng(0).random((4, 8, 8)) > 0.7
    np.testing.assert_allclose(relevance_mass_accuracy(masks.astype(float), masks), 1.0)
    np.testing.assert_allclose(relevance_rank_accuracy(masks.astype(float), masks), 1.0)


def test_channels_are_summed_and_masks_may_have_a_channel_axis():
    relevance = np.stack([HEAT, HEAT], axis=1)      # (1, 2, 2, 3): pooled = 2·HEAT
    assert relevance_mass_accuracy(relevance, MASK)[0] == pytest.approx(0.5)
    assert relevance_mass_accuracy(relevance, MASK[:, None])[0] == pytest.approx(0.5)


def test_relevance_rank_accuracy_by_hand():
    # |GT| = 2; the two largest values are 4 (inside) and 3 (outside)
    assert relevance_rank_accuracy(HEAT, MASK)[0] == pytest.approx(0.5)
    mask = np.array([[[True, False, False], [False, True, False]]])
    assert relevance_rank_accuracy(HEAT, mask)[0] == pytest.approx(1.0)


def test_rank_accuracy_breaks_ties_by_position():
    heat = np.ones((1, 1, 4))
    assert relevance_rank_accuracy(heat, np.array([[[True, True, False, False]]]))[0] == 1.0
    assert relevance_rank_accuracy(heat, np.array([[[False, False, True, True]]]))[0] == 0.0


def test_inside_total_ratio_and_its_size_weighted_form():
    assert inside_total_ratio(HEAT, MASK)[0] == pytest.approx(0.5)
    # mu_w = mu · S_tot / S_in = 0.5 · 6 / 2
    assert weighted_inside_total_ratio(HEAT, MASK)[0] == pytest.approx(1.5)
    uniform = np.ones((1, 4, 4))
    box = boxes_to_masks(np.array([[0, 0, 2, 2]]), (4, 4))
    assert weighted_inside_total_ratio(uniform, box)[0] == pytest.approx(1.0)


def test_boxes_to_masks_uses_half_open_boxes():
    masks = boxes_to_masks(np.array([[1, 2, 3, 4], [0, 0, 1, 1]]), (4, 5))
    assert masks.shape == (2, 4, 5)
    assert masks[0].sum() == 4 and masks[0, 1:3, 2:4].all()
    assert masks[1].sum() == 1 and masks[1, 0, 0]


def test_gini_by_hand_and_at_its_extremes():
    # |values| sorted: 0, 1, 2, 3 (n = 4): Σ (2k − n − 1) a_k = −3·0 − 1·1 + 1·2 + 3·3 = 10; / (4 · 6)
    assert gini(np.array([[3.0, -1.0, 0.0, 2.0]]))[0] == pytest.approx(10 / 24)
    assert gini(np.ones((1, 10)))[0] == pytest.approx(0.0)
    assert gini(np.eye(1, 10))[0] == pytest.approx(9 / 10)


def test_entropy_by_hand_and_at_its_extremes():
    # shares 3/6, 1/6, 0, 2/6
    expected = -(0.5 * math.log(0.5) + (1 / 6) * math.log(1 / 6) + (1 / 3) * math.log(1 / 3))
    assert entropy(np.array([[3.0, -1.0, 0.0, 2.0]]))[0] == pytest.approx(expected)
    assert entropy(np.ones((1, 10)))[0] == pytest.approx(math.log(10))
    assert entropy(np.eye(1, 10))[0] == pytest.approx(0.0)


def test_sparsity_metrics_pool_channels_only_when_asked():
    relevance = np.array([[[1.0, 0.0]], [[-1.0, 2.0]]]).reshape(1, 2, 1, 2)   # channels (1, 0) and (-1, 2)
    assert gini(relevance)[0] == pytest.approx(gini(np.array([[1.0, 0.0, 1.0, 2.0]]))[0])
    assert gini(relevance, channel_reduce="sum")[0] == pytest.approx(gini(np.array([[0.0, 2.0]]))[0])


@pytest.mark.parametrize("function", [relevance_mass_accuracy, relevance_rank_accuracy, weighted_inside_total_ratio])
def test_empty_masks_are_refused_naming_the_image(function):
    masks = np.concatenate([MASK, np.zeros_like(MASK)])
    with pytest.raises(InputValueError, match=r"image\(s\) \[1\].*empty"):
        function(np.concatenate([HEAT, HEAT]), masks)


def test_undefined_cases_raise_instead_of_nan():
    with pytest.raises(InputValueError, match="zero total"):
        relevance_mass_accuracy(-np.ones((1, 2, 3)), MASK)
    with pytest.raises(InputValueError, match="all-zero"):
        gini(np.zeros((2, 5)))
    with pytest.raises(InputValueError, match="all-zero"):
        entropy(np.zeros((1, 5)))
    with pytest.raises(InputValueError, match="NaN"):
        gini(np.array([[1.0, np.nan]]))


def test_mismatched_shapes_are_refused():
    with pytest.raises(ShapeError, match="does not match"):
        relevance_mass_accuracy(np.ones((1, 3, 4, 4)), np.ones((1, 5, 5), dtype=bool))
    with pytest.raises(InputValueError, match="boolean"):
        relevance_mass_accuracy(HEAT, MASK * 2.5)
