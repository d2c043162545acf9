"""Areas of ``PerturbationCurve``: AUC, normalised AUC, AOPC, thesis AUC, ABPC."""
import numpy as np
import pytest

from lrpcore.evaluate import PerturbationCurve, area_between_curves, trapezoid_area


def _curve(scores, counts, patch_count, sort="morf", gray=True):
    scores = np.asarray(scores, dtype=float)
    count = scores.shape[0]
    return PerturbationCurve(scores=scores, counts=np.asarray(counts), patch_count=patch_count,
                             masks=np.zeros((count, scores.shape[1], 1, 1), dtype=bool),
                             targets=np.zeros(count, dtype=int), order=np.zeros((count, patch_count), dtype=int),
                             patch_scores=np.zeros((count, patch_count)), sort=sort, mode="constant",
                             patch_size=(1, 1), schedule="explicit", gray_step=gray)


def test_trapezoid_area_matches_hand_computation():
    assert trapezoid_area(np.array([1.0, 3.0, 2.0])) == pytest.approx(2.0 + 2.5)
    assert trapezoid_area(np.array([1.0, 3.0, 2.0]), np.array([0.0, 0.5, 2.0])) == pytest.approx(1.0 + 3.75)
    np.testing.assert_allclose(trapezoid_area(np.array([[1.0, 1.0], [0.0, 2.0]])), [1.0, 1.0])


def test_auc_over_fractions_with_uneven_steps():
    # steps 0, 1, 4 of 4 patches, then gray (counted as 4 patches: zero width)
    curve = _curve([[4.0, 2.0, 1.0, 0.0]], [0, 1, 4, 4], 4)
    np.testing.assert_allclose(curve.fractions, [0, 0.25, 1, 1])
    assert curve.auc()[0] == pytest.approx(0.25 * 3 + 0.75 * 1.5)
    assert curve.auc(normalised=True)[0] == pytest.approx((0.25 * 3 + 0.75 * 1.5) / 4)
    # AOPC over step 0 and the 2 schedule steps, gray left out: (0 + 2 + 3) / 3
    assert curve.aopc()[0] == pytest.approx(5 / 3)
    assert curve.thesis_auc() == pytest.approx(3 + 1.5 + 0.5)


def test_aopc_includes_the_last_step_when_there_is_no_gray_step():
    curve = _curve([[4.0, 2.0, 1.0]], [0, 1, 4], 4, gray=False)
    assert curve.aopc()[0] == pytest.approx(5 / 3)
    curve = _curve([[4.0, 2.0, 1.0, 0.0]], [0, 1, 2, 4], 4, gray=False)
    assert curve.aopc()[0] == pytest.approx((0 + 2 + 3 + 4) / 4)


def test_thesis_auc_uses_the_batch_mean_over_step_index():
    curve = _curve([[2.0, 0.0, 0.0], [4.0, 2.0, 0.0]], [0, 2, 4], 4)
    assert curve.thesis_auc() == pytest.approx((3 + 1) / 2 + (1 + 0) / 2)


def test_area_between_lrf_and_morf_curves():
    morf = _curve([[4.0, 1.0, 0.0]], [0, 2, 4], 4, sort="morf")
    lrf = _curve([[4.0, 3.0, 0.0]], [0, 2, 4], 4, sort="lrf")
    np.testing.assert_allclose(area_between_curves(lrf, morf), lrf.auc() - morf.auc())
    assert area_between_curves(lrf, morf)[0] == pytest.approx(0.5 * (3.5 + 1.5) - 0.5 * (2.5 + 0.5))
    with pytest.raises(ValueError, match="'lrf' and a 'morf'"):
        area_between_curves(morf, lrf)


def test_subset_and_summary():
    curve = _curve([[2.0, 1.0, 0.0], [-1.0, 0.0, 0.0]], [0, 2, 4], 4)
    assert curve.valid.tolist() == [True, False]
    summary = curve.summary()
    assert summary["normalised_images"] == 1
    assert summary["auc_normalised"] == pytest.approx(curve.subset(curve.valid).auc(True)[0])
    assert summary["auc"] == pytest.approx(curve.auc().mean())
