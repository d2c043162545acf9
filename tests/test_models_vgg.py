"""lrpcore.models.vgg16: torchvision's layer indices, torchvision-style init from a seed, weight loading."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lrpcore.errors import ModelFormatError, ShapeError
from lrpcore.layers import BatchNorm2d, Conv2d, Dense, Dropout, Flatten, MaxPool2d, ReLU
from lrpcore.models import IMAGENET_MEAN, IMAGENET_STD, vgg, vgg16
from lrpcore.models.vgg import _parameter_shapes

CONVOLUTIONS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
MAX_POOLS = [4, 9, 16, 23, 30]
DENSE = [32, 35, 38]


@pytest.fixture(scope="module")
def small_vgg():
    return vgg16(input_size=32, num_classes=10)


def test_vgg16_has_torchvision_layer_indices(small_vgg):
    layers = small_vgg.layers
    assert len(layers) == 39
    assert [i for i, layer in enumerate(layers) if isinstance(layer, Conv2d)] == CONVOLUTIONS
    assert [i for i, layer in enumerate(layers) if isinstance(layer, MaxPool2d)] == MAX_POOLS
    assert [i for i, layer in enumerate(layers) if isinstance(layer, Dense)] == DENSE
    assert [i for i, layer in enumerate(layers) if isinstance(layer, Flatten)] == [31]
    assert [i for i, layer in enumerate(layers) if isinstance(layer, Dropout)] == [34, 37]
    relus = [i for i, layer in enumerate(layers) if isinstance(layer, ReLU)]
    assert relus == [index + 1 for index in CONVOLUTIONS] + [33, 36]
    widths = [layers[i].out_channels for i in CONVOLUTIONS]
    assert widths == [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    assert all(layers[i].padding == (1, 1) and layers[i].kernel_size == (3, 3) for i in CONVOLUTIONS)


def test_first_dense_layer_takes_512_s_s_inputs():
    # 224: torchvision's 512·7·7 = 25088 (its adaptive pool is the identity there); 64: 512·2·2
    assert _parameter_shapes("vgg16", 224, 1000)["classifier.0.weight"] == (4096, 25088)
    model = vgg16(input_size=64, num_classes=3)
    assert model.layers[32].in_features == 512 * 2 * 2
    assert model.output_shapes()[30] == (512, 2, 2)
    assert model.forward(np.zeros((1, 3, 64, 64), np.float32)).shape == (1, 3)


def test_init_follows_torchvision_statistics():
    model = vgg16(input_size=32, num_classes=10, seed=1)
    for index in CONVOLUTIONS:
        layer = model.layers[index]
        expected = math.sqrt(2.0 / (layer.out_channels * 9))          # Kaiming normal, fan_out, ReLU
        assert abs(float(layer.weight.std()) / expected - 1) < 0.06       # ≥ 1728 draws per layer
        assert abs(float(layer.weight.mean())) < 4 * expected / math.sqrt(layer.weight.size)
        assert not layer.bias.any()
    for index in DENSE[:2]:
        layer = model.layers[index]
        assert abs(float(layer.weight.std()) - 0.01) < 2e-4
        assert not layer.bias.any()


def test_init_is_deterministic_by_seed_and_the_same_in_float64(small_vgg):
    first = small_vgg                                           # seed 0
    again = vgg16(input_size=32, num_classes=10, seed=0)
    other = vgg16(input_size=32, num_classes=10, seed=8)
    wide = vgg16(input_size=32, num_classes=10, seed=0, dtype="float64")
    for a, b, c, d in zip(first.layers, again.layers, other.layers, wide.layers):
        for name, value in a.parameters().items():
            np.testing.assert_array_equal(b.parameters()[name], value)
            np.testing.assert_array_equal(d.parameters()[name], value.astype(np.float64))
            if value.any():
                assert not np.array_equal(c.parameters()[name], value)
    assert first.dtype == np.float32 and wide.dtype == np.float64


def test_metadata_describes_imagenet_preprocessing(small_vgg):
    meta = small_vgg.metadata
    assert meta.input_shape == (3, 32, 32)
    assert meta.value_range == (0.0, 1.0)
    assert meta.mean == IMAGENET_MEAN == (0.485, 0.456, 0.406)
    assert meta.std == IMAGENET_STD == (0.229, 0.224, 0.225)
    low, high = meta.input_bounds()
    np.testing.assert_allclose(low.ravel(), [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225])
    np.testing.assert_allclose(high.ravel(), [0.515 / 0.229, 0.544 / 0.224, 0.594 / 0.225])


def test_random_vgg_logits_are_not_dominated_by_biases(small_vgg):
    # with zero biases LRP-0 on a ReLU net conserves the logit exactly; the point of torchvision's init
    from lrpcore import explain

    x = small_vgg.metadata.preprocess(np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32))
    explanation = explain(small_vgg.astype("float64"), x.astype(np.float64), composite="zero")
    np.testing.assert_allclose(explanation.relevance.reshape(2, -1).sum(1), explanation.output, rtol=1e-8)
    assert np.all(np.abs(explanation.output) > 0)


@pytest.mark.parametrize("size", [0, 31, 48, 100])
def test_input_size_must_be_a_multiple_of_32(size):
    with pytest.raises(ShapeError, match="multiple of 32"):
        vgg16(input_size=size)


def test_batchnorm_variant_keeps_torchvision_indices():
    model = vgg("vgg16_bn", input_size=32, num_classes=4)
    assert [i for i, layer in enumerate(model.layers) if isinstance(layer, BatchNorm2d)][:3] == [1, 4, 8]
    assert isinstance(model.layers[43], MaxPool2d) and isinstance(model.layers[44], Flatten)
    assert len(model.layers) == 52


def test_unknown_weights_are_refused(tmp_path):
    with pytest.raises(ModelFormatError, match="does not exist"):
        vgg16(weights=tmp_path / "absent.pth", input_size=32)
    with pytest.raises(TypeError, match="weights must be"):
        vgg16(weights=3, input_size=32)
    with pytest.raises(ValueError, match="unknown VGG architecture"):
        vgg("vgg17")


def test_weights_from_a_state_dict_file(tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
    source = vgg16(input_size=32, num_classes=10, seed=11)
    state = {}
    for index in CONVOLUTIONS:
        state[f"features.{index}.weight"] = torch.from_numpy(source.layers[index].weight)
        state[f"features.{index}.bias"] = torch.from_numpy(source.layers[index].bias)
    for position, index in enumerate(DENSE):
        state[f"classifier.{3 * position}.weight"] = torch.from_numpy(source.layers[index].weight)
        state[f"classifier.{3 * position}.bias"] = torch.from_numpy(source.layers[index].bias)
    path = tmp_path / "weights.pth"
    torch.save(state, path)
    loaded = vgg16(weights=path, input_size=32, num_classes=10)
    x = np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(x), source.forward(x))
    from_mapping = vgg16(weights=state, input_size=32, num_classes=10, dtype="float64")
    assert from_mapping.dtype == np.float64
    with pytest.raises(ModelFormatError, match="input size 64"):
        vgg16(weights=state, input_size=64, num_classes=10)


def test_weights_from_an_lrpcore_file(tmp_path):
    io = pytest.importorskip("lrpcore.io", reason="lrpcore.io (HDF5 format) not available")
    source = vgg16(input_size=32, num_classes=10, seed=12)
    path = tmp_path / "vgg.h5"
    io.save(source, path)
    loaded = vgg16(weights=path, input_size=32, num_classes=10)
    x = np.random.default_rng(2).standard_normal((1, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(x), source.forward(x))
    with pytest.raises(ModelFormatError, match="layer 38"):
        vgg16(weights=path, input_size=32, num_classes=5)


@pytest.mark.parametrize("composite", ["epsilon_gamma_box", "tutorial", "epsilon_alpha2_beta1_flat"])
def test_explaining_a_float32_vgg_never_promotes_to_float64(small_vgg, composite):
    from lrpcore import explain

    x = small_vgg.metadata.preprocess(np.random.default_rng(3).random((2, 3, 32, 32), dtype=np.float32))
    for record in (False, True):
        explanation = explain(small_vgg, x.astype(np.float32), composite=composite, record=record)
        assert {relevance.dtype for relevance in explanation.layer_relevances} == {np.dtype(np.float32)}
        if record:
            arrays = [array for step in explanation.trace for branch in step.branches
                      for array in (branch.z, branch.s, branch.c)]
            assert arrays and {array.dtype for array in arrays} == {np.dtype(np.float32)}
