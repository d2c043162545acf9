"""Tests of lrpcore.plot.heatmap: the tutorial colour scale, figures, and PNG files."""
from __future__ import annotations

import numpy as np
import pytest

from lrpcore.plot import heatmap, heatmap_grid, heatmap_scale, overlay, relevance_map, save_figure


def test_tutorial_scale_is_ten_times_cubic_mean_of_channel_summed_relevance():
    # Channel sums: [[1, -2], [0, 3]] → |R|³ = [1, 8, 0, 27], mean 9, cube root 9^(1/3).
    relevance = np.array([[[0.5, -1.0], [0.0, 1.0]],
                          [[0.5, -1.0], [0.0, 2.0]]])
    expected = 10.0 * 9.0 ** (1.0 / 3.0)  # 20.80083823...
    assert heatmap_scale(relevance) == pytest.approx(expected, rel=1e-12)
    assert heatmap_scale(relevance) == pytest.approx(20.800838230519, rel=1e-12)


def test_max_scale_is_largest_absolute_pixel_relevance():
    relevance = np.array([[1.0, -4.0], [2.0, 0.5]])
    assert heatmap_scale(relevance, "max") == 4.0
    assert heatmap_scale(relevance, 2.5) == 2.5


def test_auto_scale_caps_the_tutorial_limit_at_the_largest_pixel():
    small = np.array([[1.0, -4.0], [2.0, 0.5]])  # 4 pixels: the tutorial b exceeds max |R|
    assert heatmap_scale(small, "tutorial") > 4.0
    assert heatmap_scale(small, "auto") == 4.0
    sparse = np.zeros((100, 100))  # one hot pixel among 10^4: the tutorial b is below max |R|
    sparse[0, 0], sparse[5, 5] = 10.0, 1.0
    assert heatmap_scale(sparse, "auto") == heatmap_scale(sparse, "tutorial") < 10.0


def test_all_zero_relevance_gets_unit_scale_instead_of_division_by_zero():
    assert heatmap_scale(np.zeros((3, 4, 4))) == 1.0


def test_bad_scale_and_bad_shapes_are_rejected_with_the_shape_named():
    with pytest.raises(ValueError, match="scale"):
        heatmap_scale(np.ones((2, 2)), "median")
    with pytest.raises(ValueError, match="scale"):
        heatmap_scale(np.ones((2, 2)), -1.0)
    with pytest.raises(ValueError, match=r"\(2, 3, 4, 4\)"):
        relevance_map(np.ones((2, 3, 4, 4)))
    with pytest.raises(ValueError, match="NaN"):
        relevance_map(np.full((4, 4), np.nan))


def test_relevance_map_sums_channels_and_drops_a_batch_of_one():
    relevance = np.arange(2 * 3 * 3, dtype=np.float32).reshape(1, 2, 3, 3)
    np.testing.assert_array_equal(relevance_map(relevance), relevance[0].sum(axis=0))


def test_heatmap_draws_channel_sum_on_symmetric_tutorial_limits(tmp_path):
    rng = np.random.default_rng(0)
    relevance = rng.normal(size=(3, 16, 16))
    axes = heatmap(relevance, title="map", colorbar=True)
    image = axes.get_images()[0]
    limit = heatmap_scale(relevance)
    assert image.get_clim() == pytest.approx((-limit, limit))
    np.testing.assert_allclose(image.get_array(), relevance.sum(axis=0))
    assert image.get_cmap().name == "seismic"


def test_heatmap_writes_png_and_refuses_to_overwrite(tmp_path):
    path = tmp_path / "map.png"
    heatmap(np.eye(8), out=path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileExistsError, match="map.png"):
        heatmap(np.eye(8), out=path)
    first = path.read_bytes()
    heatmap(-np.eye(8), out=path, overwrite=True)
    second = path.read_bytes()
    assert second[:8] == b"\x89PNG\r\n\x1a\n" and second != first


def test_overlay_is_transparent_where_relevance_is_zero_and_opaque_where_it_saturates():
    image = np.full((3, 8, 8), 0.5)
    relevance = np.zeros((8, 8))
    relevance[2, 3] = 1.0  # one hot pixel; b = 10·(1/64)^(1/3) = 2.5, so |R|/b = 0.4
    axes = overlay(image, relevance, opacity=1.0)
    colours = np.asarray(axes.get_images()[1].get_array())
    assert colours[0, 0, 3] == 0.0
    assert colours[2, 3, 3] == pytest.approx(np.sqrt(0.4))
    assert colours[2, 3, 0] > colours[2, 3, 2]  # positive relevance is red


def test_overlay_rejects_mismatched_image_and_relevance_sizes():
    with pytest.raises(ValueError, match=r"do not have the same height and width"):
        overlay(np.zeros((3, 8, 8)), np.zeros((3, 6, 6)))


def test_heatmap_grid_places_images_above_heatmaps_and_writes_png(tmp_path):
    rng = np.random.default_rng(1)
    relevances = rng.normal(size=(5, 3, 10, 10))
    images = rng.uniform(size=(5, 3, 10, 10))
    path = tmp_path / "grid.png"
    figure = heatmap_grid(relevances, titles=[f"s{i}" for i in range(5)], images=images, columns=3, out=path)
    assert path.read_bytes()[:4] == b"\x89PNG"
    visible = [axes for axes in figure.axes if axes.axison and axes.get_label() != "<colorbar>"]
    assert len(visible) == 10  # 5 images + 5 heatmaps, on a 4 x 3 grid
    titles = sorted(axes.get_title() for axes in visible if axes.get_title())
    assert titles == ["s0", "s1", "s2", "s3", "s4"]


def test_heatmap_grid_shared_scale_uses_one_limit_for_all_maps():
    relevances = np.stack([np.ones((4, 4)), 100 * np.ones((4, 4))])
    shared = heatmap_grid(relevances, shared_scale=True)
    limits = {axes.get_images()[0].get_clim() for axes in shared.axes if axes.get_images()}
    assert len(limits) == 1
    separate = heatmap_grid(relevances)
    limits = {axes.get_images()[0].get_clim() for axes in separate.axes if axes.get_images()}
    assert len(limits) == 2


def test_heatmap_grid_has_an_overall_title_and_one_colour_bar():
    relevances = np.stack([np.eye(6), -3 * np.eye(6), np.ones((6, 6))])
    shared = heatmap_grid(relevances, shared_scale=True, scale="max", title="three maps")
    assert shared.get_suptitle() == "three maps"
    bars = [axes for axes in shared.axes if axes.get_label() == "<colorbar>"]
    assert len(bars) == 1
    assert bars[0].get_ylim() == pytest.approx((-3.0, 3.0))        # the shared b = max|R| in relevance units
    separate = heatmap_grid(relevances, scale="max")
    bars = [axes for axes in separate.axes if axes.get_label() == "<colorbar>"]
    assert len(bars) == 1 and [t.get_text() for t in bars[0].get_yticklabels()] == ["−b", "0", "+b"]
    # each map states its own b under it
    assert sorted(axes.get_xlabel() for axes in separate.axes if axes.get_xlabel()) == ["b = 1", "b = 1", "b = 3"]
    assert not heatmap_grid(relevances, colorbar=False).get_suptitle()
    assert not [axes for axes in heatmap_grid(relevances, colorbar=False).axes if axes.get_label() == "<colorbar>"]


def test_heatmap_grid_checks_counts():
    with pytest.raises(ValueError, match="2 titles for 3"):
        heatmap_grid(np.zeros((3, 4, 4)), titles=["a", "b"])
    with pytest.raises(ValueError, match="2 images for 3"):
        heatmap_grid(np.zeros((3, 4, 4)), images=np.zeros((2, 1, 4, 4)))


def test_save_figure_names_a_missing_folder(tmp_path):
    figure = heatmap(np.eye(4)).figure
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_figure(figure, tmp_path / "missing" / "x.png")
