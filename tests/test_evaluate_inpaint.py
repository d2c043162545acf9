"""Telea inpainting through OpenCV (``lrpcore.evaluate.inpaint``)."""
import numpy as np
import pytest

from lrpcore.errors import ShapeError
from lrpcore.evaluate import inpaint_telea
from lrpcore.evaluate.inpaint import from_uint8, to_uint8

cv2 = pytest.importorskip("cv2")


def _image_and_mask(channels=3, size=16, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), dtype=bool)
    mask[4:8, 4:12] = True
    return rng.random((channels, size, size)), mask


def test_uint8_round_trip_maps_the_value_range_to_0_255():
    levels = to_uint8(np.array([-2.0, -1.0, 0.5, 2.0, 3.0]), (-1.0, 2.0))
    np.testing.assert_array_equal(levels, [0, 0, 128, 255, 255])
    np.testing.assert_allclose(from_uint8(np.array([0, 255]), (-1.0, 2.0)), [-1.0, 2.0])


def test_masked_pixels_take_opencv_telea_values_and_the_rest_stays_exact():
    raw, mask = _image_and_mask()
    result = inpaint_telea(raw, mask, (0.0, 1.0), radius=3)
    np.testing.assert_array_equal(result[:, ~mask], raw[:, ~mask])
    hwc = np.ascontiguousarray(np.moveaxis(to_uint8(raw, (0, 1)), 0, -1))
    reference = cv2.inpaint(hwc, mask.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    np.testing.assert_allclose(result[:, mask], np.moveaxis(reference, -1, 0)[:, mask] / 255.0)


def test_telea_treats_channels_independently_so_channel_order_does_not_matter():
    raw, mask = _image_and_mask()
    forward = inpaint_telea(raw, mask, (0.0, 1.0))
    reversed_order = inpaint_telea(raw[::-1].copy(), mask, (0.0, 1.0))[::-1]
    np.testing.assert_array_equal(forward, reversed_order)
    single = np.concatenate([inpaint_telea(raw[c:c + 1], mask, (0.0, 1.0)) for c in range(3)])
    np.testing.assert_array_equal(forward, single)


def test_images_with_other_channel_counts_are_inpainted_channel_by_channel():
    raw, mask = _image_and_mask(channels=4)
    result = inpaint_telea(raw, mask, (0.0, 1.0))
    np.testing.assert_array_equal(result[:3], inpaint_telea(raw[:3], mask, (0.0, 1.0)))


def test_a_full_mask_gives_the_fill_value_instead_of_the_unchanged_input():
    raw, _ = _image_and_mask()
    full = np.ones((16, 16), dtype=bool)
    levels = np.moveaxis(to_uint8(raw, (0, 1)), 0, -1).copy()
    assert np.array_equal(cv2.inpaint(levels, full.astype(np.uint8), 3, cv2.INPAINT_TELEA), levels)  # OpenCV's choice
    np.testing.assert_array_equal(inpaint_telea(raw, full, (0.0, 1.0)), np.full_like(raw, 0.5))
    per_channel = inpaint_telea(raw, full, (0.0, 1.0), fill=np.array([0.1, 0.2, 0.3]))
    np.testing.assert_allclose(per_channel[:, 3, 3], [0.1, 0.2, 0.3])


def test_an_empty_mask_returns_a_copy():
    raw, _ = _image_and_mask()
    result = inpaint_telea(raw, np.zeros((16, 16), dtype=bool), (0.0, 1.0))
    np.testing.assert_array_equal(result, raw)
    assert result is not raw


def test_shapes_are_checked():
    with pytest.raises(ShapeError, match="mask"):
        inpaint_telea(np.zeros((3, 8, 8)), np.zeros((4, 4), dtype=bool), (0.0, 1.0))
