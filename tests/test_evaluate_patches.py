"""Patch grid, channel reduction and flipping order of ``lrpcore.evaluate.patches``."""
import numpy as np
import pytest

from lrpcore.errors import ShapeError
from lrpcore.evaluate import PatchGrid, patch_order, reduce_channels
from lrpcore.evaluate.patches import image_seed


def test_patch_grid_cuts_edge_patches_short_when_the_size_does_not_divide():
    grid = PatchGrid.build(5, 7, (2, 3))
    assert (grid.rows, grid.cols, grid.count) == (3, 3, 9)
    # rows of heights 2, 2, 1; columns of widths 3, 3, 1
    np.testing.assert_array_equal(grid.patch_areas(), [6, 6, 2, 6, 6, 2, 3, 3, 1])
    index = grid.patch_index()
    assert index[4, 6] == 8 and index[0, 0] == 0 and index[1, 3] == 1 and index[2, 2] == 3


def test_patch_grid_covers_every_pixel_exactly_once():
    grid = PatchGrid.build(13, 10, 4)
    assert grid.patch_areas().sum() == 13 * 10
    full = grid.expand(np.ones(grid.count, dtype=bool))
    assert full.shape == (13, 10) and full.all()


def test_patch_sums_equal_hand_computed_sums():
    heat = np.arange(20, dtype=float).reshape(1, 4, 5)
    grid = PatchGrid.build(4, 5, 2)
    # patch 0 = rows 0-1, cols 0-1: 0+1+5+6; patch 2 = cols 4 only: 4+9; patch 5: 14+19
    expected = [12, 20, 13, 52, 60, 33]
    np.testing.assert_allclose(grid.sums(heat)[0], expected)


def test_expand_maps_patch_booleans_to_their_pixels():
    grid = PatchGrid.build(4, 4, 2)
    mask = grid.expand(np.array([[False, True, False, False]]))
    expected = np.zeros((1, 4, 4), dtype=bool)
    expected[0, 0:2, 2:4] = True
    np.testing.assert_array_equal(mask, expected)


def test_patch_larger_than_the_image_is_refused():
    with pytest.raises(ShapeError, match="larger than the image"):
        PatchGrid.build(4, 4, 8)


def test_sum_reduction_adds_channels_and_luminance_uses_bt601_weights():
    relevance = np.zeros((1, 3, 1, 2))
    relevance[0, :, 0, 0] = [1.0, 1.0, 1.0]
    relevance[0, :, 0, 1] = [2.0, 0.0, -1.0]
    np.testing.assert_allclose(reduce_channels(relevance, "sum"), [[[3.0, 1.0]]])
    np.testing.assert_allclose(reduce_channels(relevance, "luminance"), [[[1.0, 2 * 0.299 - 0.114]]])


def test_luminance_needs_three_channels():
    with pytest.raises(ShapeError, match="3 \\(RGB\\) channels"):
        reduce_channels(np.zeros((1, 4, 2, 2)), "luminance")


def test_one_channel_heatmap_is_taken_as_is():
    heat = np.random.default_rng(0).normal(size=(2, 3, 3))
    np.testing.assert_array_equal(reduce_channels(heat), heat)


def test_morf_and_lrf_break_ties_by_patch_index():
    scores = np.array([[1.0, 3.0, 3.0, 0.0, 1.0]])
    np.testing.assert_array_equal(patch_order(scores, "morf"), [[1, 2, 0, 4, 3]])
    np.testing.assert_array_equal(patch_order(scores, "lrf"), [[3, 0, 4, 1, 2]])


def test_random_order_is_seeded_per_image_and_independent_of_the_batch():
    scores = np.zeros((4, 10))
    first = patch_order(scores, "random", seed=3)
    np.testing.assert_array_equal(first, patch_order(scores, "random", seed=3))
    np.testing.assert_array_equal(first[:2], patch_order(scores[:2], "random", seed=3))
    assert not np.array_equal(first, patch_order(scores, "random", seed=4))
    assert all(sorted(row) == list(range(10)) for row in first)
    assert not np.array_equal(first[0], first[1])


def test_image_seed_rejects_negative_seeds():
    with pytest.raises(ValueError, match="seed"):
        image_seed(-1, 0)
