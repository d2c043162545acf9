"""Layers: forward maps against loops, transposes as adjoints, canonization, summary, backends."""
from __future__ import annotations

import numpy as np
import pytest

import lrpcore
from lrpcore import ModelMetadata, Sequential, canonize
from lrpcore.layers import AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dense, Flatten, MaxPool2d, ReLU
from lrpcore.testing import connections

from _networks import relu_network


def _loop_forward(layer, sample):
    """Output of a linear layer from its (j, k, w_jk) connections (bias added by hand)."""
    out = np.zeros(int(np.prod(layer.output_shape(sample.shape))))
    for link in connections(layer, sample):
        out[link.k] += sample.reshape(-1)[link.j] * link.weight
    return out


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1), (1, 2), ((2, 1), (0, 1))])
def test_conv2d_forward_matches_loops(stride, padding):
    rng = np.random.default_rng(0)
    layer = Conv2d(rng.normal(size=(3, 2, 3, 2)), np.zeros(3), stride=stride, padding=padding)
    sample = rng.normal(size=(2, 6, 5))
    np.testing.assert_allclose(layer.forward(sample[None]).reshape(-1), _loop_forward(layer, sample), rtol=1e-12)


@pytest.mark.parametrize("layer", [Conv2d(np.random.default_rng(1).normal(size=(3, 2, 3, 3)), stride=2, padding=1),
                                   AvgPool2d(3, stride=2, padding=1), Dense(np.random.default_rng(2).normal(
                                       size=(4, 7)))])
def test_transpose_is_the_adjoint_of_the_forward_map(layer):
    """⟨f(x), s⟩ = ⟨x, fᵀ(s)⟩ for the bias-free linear map."""
    rng = np.random.default_rng(3)
    shape = (2, 7) if isinstance(layer, Dense) else (2, 2, 7, 6)
    x = rng.normal(size=shape)
    weight = layer.relevance_weight(x)
    y = layer.linear_forward(x, weight, None)
    s = rng.normal(size=y.shape)
    np.testing.assert_allclose((y * s).sum(), (x * layer.linear_transpose(s, weight, x.shape)).sum(), rtol=1e-12)


def test_conv2d_chunks_large_batches_without_changing_the_result(monkeypatch):
    import lrpcore.layers.conv as layers

    rng = np.random.default_rng(4)
    layer = Conv2d(rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4), padding=1)
    x = rng.normal(size=(5, 3, 6, 6))
    whole = layer.forward(x)
    back = layer.linear_transpose(whole, layer.weight, x.shape)
    monkeypatch.setattr(layers, "COLUMN_BUDGET_BYTES", 1)    # one output row of one sample per block
    # row blocks change the GEMM shapes, hence the summation order: equal up to rounding
    np.testing.assert_allclose(layer.forward(x), whole, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(layer.linear_transpose(whole, layer.weight, x.shape), back, rtol=1e-12, atol=1e-13)


def test_maxpool_pads_with_minus_infinity_like_pytorch():
    layer = MaxPool2d(3, stride=2, padding=1)
    x = -np.ones((1, 1, 4, 4))
    assert (layer.forward(x) == -1).all()


def test_canonize_folds_batchnorm_exactly_in_float64():
    rng = np.random.default_rng(5)

    def norm(cls, features):
        return cls(rng.normal(size=features), np.abs(rng.normal(size=features)) + 0.1, rng.normal(size=features),
                   rng.normal(size=features), eps=1e-5)

    model = Sequential([Conv2d(rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4), padding=1), norm(BatchNorm2d, 4),
                        ReLU(), Flatten(), norm(BatchNorm1d, 4 * 5 * 5), Dense(rng.normal(size=(6, 100)),
                                                                              rng.normal(size=6)),
                        norm(BatchNorm1d, 6), ReLU(), Dense(rng.normal(size=(3, 6)))],
                       ModelMetadata(input_shape=(3, 5, 5)))
    folded = canonize(model)
    assert not any(isinstance(layer, (BatchNorm1d, BatchNorm2d)) for layer in folded.layers)
    assert len(folded) == len(model) - 3
    x = rng.normal(size=(4, 3, 5, 5))
    expected = model.forward(x)
    np.testing.assert_allclose(folded.forward(x), expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max())


def test_canonize_keeps_a_batchnorm_it_cannot_fold_and_says_so():
    from lrpcore.canonize import UnfoldedBatchNormWarning

    norm = BatchNorm2d(np.zeros(3), np.full(3, 4.0))
    model = Sequential([norm, Conv2d(np.ones((2, 3, 1, 1)))], ModelMetadata(input_shape=(3, 2, 2)))
    with pytest.warns(UnfoldedBatchNormWarning, match=r"cannot fold layer 0 \(BatchNorm2d"):
        folded = canonize(model)
    assert isinstance(folded, Sequential) and folded.layers[0] is norm and len(folded) == 2
    x = np.random.default_rng(0).normal(size=(2, 3, 2, 2))
    np.testing.assert_allclose(folded.forward(x), model.forward(x), rtol=1e-12)


def test_explain_warns_about_unfolded_batchnorm():
    model = Sequential([Dense(np.ones((3, 4))), BatchNorm1d(np.zeros(3), np.ones(3)), ReLU(), Dense(np.ones((2, 3)))],
                       ModelMetadata(input_shape=(4,)))
    with pytest.warns(UserWarning, match="canonize"):
        lrpcore.explain(model, np.ones((1, 4)))


def test_summary_lists_layers_shapes_and_parameters():
    text = relu_network().summary()       # 112 + 222 + 56 + 45 parameters
    assert "Conv2d(3→4, k=3x3, s=1, p=1)" in text and "(4, 8, 8)" in text and "total parameters: 435" in text
    assert len(relu_network()) == 10 and isinstance(relu_network()[3], Conv2d)
    assert len(relu_network()[2:5]) == 3


def test_model_moves_between_backends_and_dtypes(backend):
    model = relu_network()
    moved = model.to(backend)
    from lrpcore.backend import to_backend, to_numpy

    x = np.random.default_rng(0).normal(size=(2, 3, 8, 8))
    np.testing.assert_allclose(to_numpy(moved.forward(to_backend(x, backend))), model.forward(x), rtol=1e-12)
    assert model.astype("float32").dtype == np.float32


@pytest.mark.parametrize("stride", [(2.7, 2.7), 2.5, True, (1, -1), (1, 2, 3), "2"])
def test_window_settings_are_whole_numbers_never_truncated(stride):
    with pytest.raises(ValueError, match="stride must be a non-negative int or a pair"):
        Conv2d(np.ones((1, 1, 2, 2)), stride=stride)
