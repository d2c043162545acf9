"""lrpcore.evaluate against Quantus 0.6 on the shapes model, where the definitions coincide.

Quantus runs on the torch twin of the lrpcore model (``lrpcore.io.torch.to_torch``). It is
an optional test dependency; the module is skipped without it. Setting it up on NumPy ≥ 2.4
and a CPU-only torch (see /work/shared/README.md)::

    pip install --no-deps quantus==0.6.0 pandas scikit-image cachetools imageio tifffile lazy-loader

(``--no-deps`` keeps pip from pulling ``opencv-python`` next to ``opencv-python-headless``,
and from touching torch or NumPy.) Quantus 0.6 calls ``np.trapz``, which NumPy 2.4 removed:
the fixture below puts ``numpy.trapezoid`` under that name for the duration of this module
only. ``import quantus`` imports zennit, which needs ``torchvision.models.resnet``; the
test-only stand-in of ``tests/reference`` provides it when the real torchvision cannot load.

Where the definitions differ (documented in the lrpcore docstrings):

- Quantus' RegionPerturbation records the *drop* s_0 − s_k one patch per step and its AUC is a
  trapezoid over the step index; lrpcore records the scores and integrates over the fraction
  flipped. The curves are compared value by value.
- Quantus' Sparseness adds 1e-7 to every |R|: equal to lrpcore's Gini of |R| + 1e-7 exactly,
  and within 1e-3 of the plain Gini.
- Quantus' RelevanceMassAccuracy sums R (``abs=False``) or |R| (``abs=True``); lrpcore's default
  keeps R⁺ (Kohlbrenner's μ). ``positive=False`` equals Quantus with ``abs=False``; on R⁺ both agree.
"""
from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest

import lrpcore
from lrpcore.data import shapes
from lrpcore.evaluate import entropy, gini, pixel_flipping, relevance_mass_accuracy, relevance_rank_accuracy

torch = pytest.importorskip("torch")
SHIPPED = pathlib.Path(__file__).resolve().parent.parent / "models" / "shapes_cnn.h5"


@pytest.fixture(scope="module")
def quantus():
    added_trapz = not hasattr(np, "trapz")
    if added_trapz:
        np.trapz = np.trapezoid
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "reference"))
    try:
        import _torchvision_stand_in
        _torchvision_stand_in.install()
        try:
            import quantus as module
        except ImportError as error:
            pytest.skip(f"quantus is not installed ({error}); see the module docstring")
        yield module
    finally:
        sys.path.remove(str(pathlib.Path(__file__).resolve().parent / "reference"))
        if added_trapz:
            del np.trapz


def _shapes_architecture(seed: int = 0) -> lrpcore.Sequential:
    """The shipped shapes CNN's layer list with torchvision-style random weights (when the file is absent)."""
    from lrpcore.layers import Conv2d, Dense, Dropout, Flatten, MaxPool2d, ReLU

    rng = np.random.default_rng(seed)

    def conv(out, inp):
        weight = rng.normal(size=(out, inp, 3, 3)) * np.sqrt(2.0 / (out * 9))
        return Conv2d(weight.astype(np.float32), np.zeros(out, np.float32), padding=1)

    def dense(out, inp):
        return Dense((rng.normal(size=(out, inp)) * np.sqrt(2.0 / inp)).astype(np.float32),
                     (rng.normal(size=out) * 0.01).astype(np.float32))

    layers = [conv(16, 3), ReLU(), MaxPool2d(2), conv(32, 16), ReLU(), MaxPool2d(2), conv(64, 32), ReLU(),
              conv(64, 64), ReLU(), MaxPool2d(2), Flatten(), dense(64, 4096), ReLU(), Dropout(0.5), dense(6, 64)]
    metadata = lrpcore.ModelMetadata(input_shape=(3, 64, 64), value_range=(0.0, 1.0), mean=(0.5, 0.45, 0.4),
                                     std=(0.25, 0.25, 0.3), name="shapes_architecture")
    return lrpcore.Sequential(layers, metadata)


@pytest.fixture(scope="module")
def setting():
    """(lrpcore model, torch twin, model inputs, labels, LRP heatmaps, object masks)."""
    from lrpcore.io.torch import to_torch

    model = lrpcore.load(str(SHIPPED)) if SHIPPED.exists() else _shapes_architecture()
    data = shapes(4, size=64, seed=3)
    x = model.metadata.preprocess(data.x).astype(np.float32)
    relevance = np.asarray(lrpcore.explain(model, x, target=data.y, composite="epsilon_plus").relevance)
    twin = to_torch(model)
    with torch.no_grad():
        np.testing.assert_allclose(twin(torch.from_numpy(x)).numpy(), model.forward(x), rtol=1e-4, atol=1e-4)
    return model, twin, x, data.y, relevance, data.masks


def test_region_perturbation_with_a_constant_baseline_matches_quantus(quantus, setting):
    model, twin, x, labels, relevance, _ = setting
    regions = 8
    # Quantus' baseline is a model-input value; lrpcore's constant is raw, so raw = mean maps to 0.
    metric = quantus.RegionPerturbation(patch_size=8, order="morf", regions_evaluation=regions,
                                        perturb_baseline=0.0, abs=False, normalise=False, disable_warnings=True)
    theirs = np.asarray(metric(model=twin, x_batch=x, y_batch=labels, a_batch=relevance, channel_first=True,
                               softmax=False, device="cpu"))
    ours = pixel_flipping(model, x, relevance, target=labels, sort="morf", mode="constant",
                          constant=model.metadata.mean or 0.0, patch_size=8, schedule=range(1, regions + 1),
                          final_gray=False)
    top = np.sort(ours.patch_scores, axis=1)[:, ::-1][:, :regions + 1]
    assert np.all(np.diff(top, axis=1) < 0), "tied patch scores would make Quantus' unstable argsort differ"
    drops = ours.scores[:, :1] - ours.scores[:, 1:]
    scale = np.abs(ours.scores[:, :1])
    np.testing.assert_allclose(drops, theirs, atol=1e-4 * scale.max(), rtol=1e-4)
    # Quantus' AUC (trapezoid of the drop over the step index) from lrpcore's curve
    quantus_auc = np.trapezoid(theirs, axis=1).mean()
    assert np.trapezoid(drops, axis=1).mean() == pytest.approx(quantus_auc, rel=1e-4)


def test_relevance_mass_accuracy_matches_quantus(quantus, setting):
    model, twin, x, labels, relevance, masks = setting
    pooled = relevance.sum(axis=1, keepdims=True)
    segmentation = masks[:, None].astype(float)
    metric = quantus.RelevanceMassAccuracy(abs=False, normalise=False, disable_warnings=True)
    theirs = np.asarray(metric(model=twin, x_batch=x, y_batch=labels, a_batch=pooled, s_batch=segmentation,
                               channel_first=True))
    np.testing.assert_allclose(relevance_mass_accuracy(relevance, masks, positive=False), theirs, rtol=1e-5)  # Quantus computes in float32
    positive = np.maximum(pooled, 0.0)
    theirs_positive = np.asarray(metric(model=twin, x_batch=x, y_batch=labels, a_batch=positive,
                                        s_batch=segmentation, channel_first=True))
    np.testing.assert_allclose(relevance_mass_accuracy(relevance, masks), theirs_positive, rtol=1e-5)  # Quantus computes in float32


def test_relevance_rank_accuracy_matches_quantus(quantus, setting):
    model, twin, x, labels, relevance, masks = setting
    pooled = relevance.sum(axis=1, keepdims=True)
    metric = quantus.RelevanceRankAccuracy(abs=False, normalise=False, disable_warnings=True)
    theirs = np.asarray(metric(model=twin, x_batch=x, y_batch=labels, a_batch=pooled,
                               s_batch=masks[:, None].astype(float), channel_first=True))
    np.testing.assert_allclose(relevance_rank_accuracy(relevance, masks), theirs, rtol=1e-5)  # Quantus computes in float32


def test_sparseness_is_the_gini_index_up_to_quantus_offset(quantus, setting):
    model, twin, x, labels, relevance, _ = setting
    pooled = relevance.sum(axis=1, keepdims=True)
    metric = quantus.Sparseness(abs=True, normalise=False, disable_warnings=True)
    theirs = np.asarray(metric(model=twin, x_batch=x, y_batch=labels, a_batch=pooled.copy(), channel_first=True))
    np.testing.assert_allclose(gini(np.abs(pooled) + 1e-7), theirs, rtol=1e-6)
    np.testing.assert_allclose(gini(pooled), theirs, atol=1e-3)


def test_complexity_is_the_entropy_of_the_shares(quantus, setting):
    model, twin, x, labels, relevance, _ = setting
    pooled = relevance.sum(axis=1, keepdims=True)
    metric = quantus.Complexity(abs=True, normalise=False, disable_warnings=True)
    theirs = np.asarray(metric(model=twin, x_batch=x, y_batch=labels, a_batch=pooled.copy(), channel_first=True))
    np.testing.assert_allclose(entropy(pooled), theirs, rtol=1e-6)
