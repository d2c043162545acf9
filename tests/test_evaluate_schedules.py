"""Flipping schedules of ``lrpcore.evaluate.schedules``."""
import numpy as np
import pytest

from lrpcore.evaluate import schedule_counts


def test_quadratic_schedule_flips_odd_numbers_of_patches_like_the_thesis():
    counts = schedule_counts("quadratic", 28 * 28)
    increments = np.diff(np.concatenate([[0], counts]))
    assert len(counts) == 28
    np.testing.assert_array_equal(increments, np.arange(1, 56, 2))   # 1, 3, 5, ..., 55
    assert counts[-1] == 784


def test_quadratic_schedule_caps_the_last_step_at_the_patch_count():
    np.testing.assert_array_equal(schedule_counts("quadratic", 10), [1, 4, 9, 10])


def test_linear_schedule_flips_equal_shares_and_ends_with_all_patches():
    np.testing.assert_array_equal(schedule_counts("linear", 12, steps=4), [3, 6, 9, 12])
    np.testing.assert_array_equal(schedule_counts("linear", 10, steps=3), [4, 7, 10])
    assert len(schedule_counts("linear", 64)) == len(schedule_counts("quadratic", 64))


def test_log_schedule_is_geometric_from_one_to_all_patches():
    counts = schedule_counts("log", 64, steps=4)
    np.testing.assert_array_equal(counts, [1, 4, 16, 64])
    assert np.all(np.diff(schedule_counts("log", 784)) > 0)


def test_explicit_counts_are_validated():
    np.testing.assert_array_equal(schedule_counts([1, 2, 5], 8), [1, 2, 5])
    for bad in ([2, 2], [0, 3], [1, 9], [3, 1], [1.5]):
        with pytest.raises(ValueError, match="explicit schedule"):
            schedule_counts(bad, 8)


def test_steps_are_refused_where_they_mean_nothing():
    with pytest.raises(ValueError, match="quadratic"):
        schedule_counts("quadratic", 16, steps=3)
    with pytest.raises(ValueError, match="more than"):
        schedule_counts("linear", 4, steps=5)
    with pytest.raises(ValueError, match="schedule must be"):
        schedule_counts("cubic", 4)
