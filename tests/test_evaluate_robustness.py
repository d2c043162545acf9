"""Local Lipschitz estimate (``lrpcore.evaluate.local_lipschitz``)."""
import numpy as np
import pytest

from lrpcore.errors import InputValueError
from lrpcore.evaluate import local_lipschitz


def test_a_scaled_identity_explanation_has_its_scale_as_constant():
    x = np.random.default_rng(0).random((3, 2, 4, 4))
    estimates = local_lipschitz(lambda batch: 2.5 * batch, x, radius=0.1, n_samples=5, seed=0)
    np.testing.assert_allclose(estimates, 2.5)


def test_a_linear_explanation_is_bounded_by_its_largest_singular_value():
    rng = np.random.default_rng(1)
    matrix = np.diag([3.0, 1.0, 0.5, 0.1])
    x = rng.random((2, 4))
    estimates = local_lipschitz(lambda batch: batch @ matrix.T, x, radius=0.5, n_samples=200, seed=0)
    assert np.all(estimates <= 3.0 + 1e-12)
    assert np.all(estimates > 2.0)          # sampling finds directions close to the top one


def test_a_constant_explanation_is_perfectly_robust():
    x = np.random.default_rng(2).random((2, 6))
    np.testing.assert_array_equal(local_lipschitz(lambda batch: np.ones_like(batch), x, 0.1, 8), 0.0)


def test_the_estimate_is_seeded_and_batches_do_not_matter():
    x = np.random.default_rng(3).random((2, 5))

    def squared(batch):
        return batch ** 2

    first = local_lipschitz(squared, x, 0.2, 10, seed=4)
    np.testing.assert_array_equal(first, local_lipschitz(squared, x, 0.2, 10, seed=4))
    np.testing.assert_allclose(first, local_lipschitz(squared, x, 0.2, 10, seed=4, batch_size=3))
    assert not np.array_equal(first, local_lipschitz(squared, x, 0.2, 10, seed=5))


def test_targets_are_passed_per_image():
    x = np.zeros((2, 3))
    seen = []

    def explain_fn(batch, targets):
        seen.append(targets.tolist())
        return batch * (1 + targets[:, None])

    estimates = local_lipschitz(explain_fn, x, 0.1, 2, target=np.array([0, 4]))
    assert seen == [[0, 0, 0], [4, 4, 4]]
    np.testing.assert_allclose(estimates, [1.0, 5.0])


def test_bad_arguments_are_refused():
    x = np.zeros((1, 3))
    with pytest.raises(ValueError, match="radius"):
        local_lipschitz(lambda b: b, x, 0.0, 2)
    with pytest.raises(ValueError, match="n_samples"):
        local_lipschitz(lambda b: b, x, 0.1, 0)
    with pytest.raises(InputValueError, match="NaN"):
        local_lipschitz(lambda b: b * np.nan, x, 0.1, 2)
