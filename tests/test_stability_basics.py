"""Stabilizers' formulas and detect_instability's verdicts on constructed and natural heatmaps."""
from __future__ import annotations

import numpy as np
import pytest

import lrpcore
from lrpcore import explain
from lrpcore.stabilizers import quadratic_mean, quadratic_mean_batch, vanilla, zennit

from _networks import relu_network


def test_stabilizer_formulas():
    z = np.array([[-2.0, 0.0, 3.0, -1e-3]])
    np.testing.assert_allclose(vanilla(z, 0.5), z + 0.5)
    np.testing.assert_allclose(zennit(z, 0.5), [[-2.5, 0.5, 3.5, -0.501]])
    rms = np.sqrt((z ** 2).mean())
    np.testing.assert_allclose(quadratic_mean(z, 0.25), z + 0.25 * rms + 1e-9)
    two = np.array([[1.0, 1.0], [3.0, 3.0]])
    np.testing.assert_allclose(quadratic_mean(two, 1.0), two + np.array([[1.0], [3.0]]) + 1e-9)
    np.testing.assert_allclose(quadratic_mean_batch(two, 1.0), two + np.sqrt(5.0) + 1e-9)


def test_detect_instability_flags_a_constructed_patch_and_passes_smooth_heatmaps():
    rng = np.random.default_rng(0)
    smooth = np.abs(rng.normal(size=(3, 3, 32, 32)))
    patched = smooth.copy()
    patched[1, :, 4:8, 4:8] *= 1e4            # relevance concentrated by four orders in 16 pixels
    report = lrpcore.detect_instability(patched)
    assert report.unstable.tolist() == [False, True, False]
    assert report.statistic[1] > 3 and report.statistic[0] < 1
    assert "orders above the 95th percentile" in report.reasons[1]


def test_detect_instability_flags_nan():
    values = np.ones((2, 1, 4, 4))
    values[0, 0, 0, 0] = np.nan
    report = lrpcore.detect_instability(values)
    assert report.unstable.tolist() == [True, False] and "NaN" in report.reasons[0]


def test_natural_heatmaps_of_a_relu_net_are_stable():
    model = relu_network(seed=4)
    x = np.abs(np.random.default_rng(1).normal(size=(4, 3, 8, 8)))
    result = explain(model, x, composite="epsilon_gamma_box")
    assert not lrpcore.detect_instability(result)
