"""lrpcore.models.resnet18/34/50: torchvision's architecture and names as a Graph, torchvision-style init,
weights from state dicts and files, BatchNorm folding. (The comparison with torch's own forward pass on
torchvision's modules is in tests/reference/test_resnet_torchvision.py.)"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import lrpcore
from lrpcore.errors import ModelFormatError, ShapeError
from lrpcore.layers import Add, AvgPool2d, BatchNorm2d, Conv2d, Dense, MaxPool2d
from lrpcore.models import resnet, resnet18, resnet34, resnet50, state_dict_to_model
from lrpcore.models.resnet import ResNetSpec, final_map_size, parameter_shapes

#: torchvision's documented parameter counts (``weights.meta["num_params"]`` of the ImageNet weights).
TORCHVISION_PARAMETERS = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032}


def state_dict_of(model: lrpcore.Graph) -> dict[str, np.ndarray]:
    """torchvision-named arrays of an unfolded lrpcore ResNet (its node names are the module paths)."""
    state = {}
    for node in model.nodes:
        for name, value in node.layer.parameters().items():
            if isinstance(node.layer, Conv2d) and name == "bias":
                assert not value.any()          # torchvision's convolutions have no bias
                continue
            state[f"{node.name}.{name}"] = value
    return state


@pytest.fixture(scope="module")
def small18():
    return resnet18(input_size=64, num_classes=10, seed=0)


@pytest.mark.parametrize("arch", sorted(TORCHVISION_PARAMETERS))
def test_parameter_count_is_torchvisions(arch):
    shapes = parameter_shapes(arch, 1000)
    learned = sum(math.prod(shape) for name, shape in shapes.items() if not name.endswith(("running_mean",
                                                                                         "running_var")))
    assert learned == TORCHVISION_PARAMETERS[arch]


def test_resnet18_nodes_follow_torchvisions_module_paths(small18):
    names = small18.names
    assert len(names) == 69
    assert names[:12] == ["conv1", "bn1", "relu", "maxpool", "layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu1",
                          "layer1.0.conv2", "layer1.0.bn2", "layer1.0.add", "layer1.0.relu2", "layer1.1.conv1"]
    assert names[-3:] == ["avgpool", "flatten", "fc"]
    assert small18.node("layer1.0.add").inputs == ("layer1.0.bn2", "maxpool")
    assert small18.node("layer2.0.add").inputs == ("layer2.0.bn2", "layer2.0.downsample.1")
    assert small18.node("layer2.0.downsample.0").inputs == ("layer1.1.relu2",)
    assert [name for name in names if name.endswith("downsample.0")] == [
        "layer2.0.downsample.0", "layer3.0.downsample.0", "layer4.0.downsample.0"]
    assert sum(isinstance(layer, Add) for layer in small18.layers) == 8
    assert sum(isinstance(layer, BatchNorm2d) for layer in small18.layers) == 20
    stem = small18["conv1"]
    assert stem.kernel_size == (7, 7) and stem.stride == (2, 2) and stem.padding == (3, 3)
    pool = small18["maxpool"]
    assert isinstance(pool, MaxPool2d) and pool.kernel_size == (3, 3) and pool.stride == (2, 2) \
        and pool.padding == (1, 1)
    assert small18["layer2.0.conv1"].stride == (2, 2) and small18["layer2.0.downsample.0"].stride == (2, 2)
    assert small18["layer2.0.conv2"].stride == (1, 1)
    assert small18["fc"].in_features == 512 and small18["fc"].out_features == 10


def test_resnet50_is_v1_5_with_the_stride_on_the_3x3_convolution():
    model = resnet50(input_size=32, num_classes=3)
    assert len(model) == 175
    block = [name for name in model.names if name.startswith("layer3.0.")]
    assert block == ["layer3.0.conv1", "layer3.0.bn1", "layer3.0.relu1", "layer3.0.conv2", "layer3.0.bn2",
                     "layer3.0.relu2", "layer3.0.conv3", "layer3.0.bn3", "layer3.0.downsample.0",
                     "layer3.0.downsample.1", "layer3.0.add", "layer3.0.relu3"]
    assert model["layer3.0.conv1"].stride == (1, 1) and model["layer3.0.conv1"].kernel_size == (1, 1)
    assert model["layer3.0.conv2"].stride == (2, 2) and model["layer3.0.conv2"].kernel_size == (3, 3)
    assert model["layer3.0.conv3"].out_channels == 1024
    assert model["layer1.0.downsample.0"].stride == (1, 1)          # 64 → 256 channels, no stride
    assert model["fc"].in_features == 2048


@pytest.mark.parametrize("size, side", [(224, 7), (64, 2), (100, 4), (32, 1)])
def test_final_average_pool_covers_the_whole_map(size, side):
    assert final_map_size("resnet18", size) == side
    model = resnet18(input_size=size, num_classes=2)
    pool = model["avgpool"]
    assert isinstance(pool, AvgPool2d) and pool.kernel_size == (side, side)
    assert model.output_shapes()[model.position("layer4.1.relu2")] == (512, side, side)
    x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    activations = model.forward(x, record=True)
    features = activations[model.position("layer4.1.relu2") + 1]
    pooled = activations[model.position("avgpool") + 1]
    np.testing.assert_allclose(pooled[:, :, 0, 0], features.mean(axis=(2, 3)), rtol=1e-5)


def test_init_follows_torchvision(small18):
    for node in small18.nodes:
        layer = node.layer
        if isinstance(layer, Conv2d):
            expected = math.sqrt(2.0 / (layer.out_channels * layer.kernel_size[0] * layer.kernel_size[1]))
            assert abs(float(layer.weight.std()) / expected - 1) < 0.1, node.name     # ≥ 4096 draws
            assert not layer.bias.any()
        elif isinstance(layer, BatchNorm2d):
            assert np.all(layer.weight == 1) and not layer.bias.any()
            assert not layer.running_mean.any() and np.all(layer.running_var == 1)
    fc = small18["fc"]
    bound = 1 / math.sqrt(512)
    assert np.abs(fc.weight).max() <= bound and np.abs(fc.bias).max() <= bound
    assert abs(float(fc.weight.std()) - bound / math.sqrt(3)) < 0.05 * bound        # uniform's std


def test_init_is_deterministic_by_seed_and_the_same_in_float64(small18):
    again = resnet18(input_size=64, num_classes=10, seed=0)
    other = resnet18(input_size=64, num_classes=10, seed=5)
    wide = resnet18(input_size=64, num_classes=10, seed=0, dtype="float64")
    for a, b, c, d in zip(small18.layers, again.layers, other.layers, wide.layers):
        for name, value in a.parameters().items():
            np.testing.assert_array_equal(b.parameters()[name], value)
            np.testing.assert_array_equal(d.parameters()[name], value.astype(np.float64))
            if isinstance(a, (Conv2d, Dense)) and name == "weight":
                assert not np.array_equal(c.parameters()[name], value)
    assert wide.dtype == np.float64 and small18.dtype == np.float32


def test_metadata_and_default_classes():
    model = resnet34(input_size=32)
    assert model.metadata.input_shape == (3, 32, 32) and model.metadata.name == "resnet34"
    assert model.metadata.mean == (0.485, 0.456, 0.406) and model["fc"].out_features == 1000


def test_state_dict_round_trip_and_named_problems(small18):
    state = state_dict_of(small18)
    assert list(state) == list(parameter_shapes("resnet18", 10))       # torchvision's order, too
    rebuilt = state_dict_to_model(state, "resnet18", input_size=64)
    x = np.random.default_rng(4).random((2, 3, 64, 64), dtype=np.float32)
    np.testing.assert_array_equal(rebuilt.forward(x), small18.forward(x))
    assert rebuilt.names == small18.names
    with_counter = dict(state, **{"bn1.num_batches_tracked": np.array(7)})
    np.testing.assert_array_equal(resnet18(weights=with_counter, input_size=64).forward(x), small18.forward(x))

    missing = {key: value for key, value in state.items() if key != "layer3.1.bn2.running_var"}
    with pytest.raises(ModelFormatError, match=r"missing \['layer3.1.bn2.running_var'\]"):
        resnet18(weights=missing)
    extra = dict(state, **{"layer5.0.conv1.weight": np.zeros((1, 1, 1, 1), np.float32)})
    with pytest.raises(ModelFormatError, match=r"unexpected \['layer5.0.conv1.weight'\]"):
        resnet18(weights=extra)
    wrong = dict(state, **{"layer2.0.downsample.0.weight": np.zeros((128, 64, 3, 3), np.float32)})
    with pytest.raises(ModelFormatError, match=r"'layer2.0.downsample.0.weight' has shape \(128, 64, 3, 3\).*"
                                               r"\(128, 64, 1, 1\)"):
        resnet18(weights=wrong)
    with pytest.raises(ModelFormatError, match=r"missing \['layer1.2.conv1.weight'.*\(80 in all\)"):
        resnet34(weights=state)
    integer = dict(state, **{"fc.bias": np.zeros(10, np.int64)})
    with pytest.raises(ModelFormatError, match="'fc.bias' has dtype int64"):
        resnet18(weights=integer)
    with pytest.raises(ModelFormatError, match="fc layer has 10 outputs, but num_classes=1000"):
        resnet18(weights=state, num_classes=1000)
    with pytest.raises(ModelFormatError, match="unknown architecture 'resnet101'"):
        state_dict_to_model(state, "resnet101")


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ShapeError, match="input_size must be a positive int"):
        resnet18(input_size=0)
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        resnet18(num_classes=0)
    with pytest.raises(ValueError, match="unknown ResNet architecture 'resnet19'"):
        resnet("resnet19")
    with pytest.raises(ModelFormatError, match="does not exist"):
        resnet18(weights=tmp_path / "absent.pth")
    with pytest.raises(TypeError, match="weights must be"):
        resnet18(weights=3)
    with pytest.raises(ValueError, match="one positive width per stage"):
        ResNetSpec("basic", (1, 1), widths=(8,))


def test_weights_from_an_lrpcore_file(tmp_path, small18):
    path = tmp_path / "resnet18.h5"
    lrpcore.save(small18, path)
    loaded = resnet18(weights=path, input_size=64)
    x = np.random.default_rng(5).random((1, 3, 64, 64), dtype=np.float32)
    np.testing.assert_array_equal(loaded.forward(x), small18.forward(x))
    with pytest.raises(ModelFormatError, match="not resnet18 at input size 96: node 66 is .*avgpool"):
        resnet18(weights=path, input_size=96)
    lrpcore.save(lrpcore.canonize(small18), tmp_path / "folded.h5")
    with pytest.raises(ModelFormatError, match="a canonized model loads with lrpcore.load"):
        resnet18(weights=tmp_path / "folded.h5", input_size=64)


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_canonize_folds_every_batchnorm_and_keeps_the_function(arch):
    # non-trivial BatchNorm statistics (torchvision's init makes them near identities)
    model = resnet(arch, input_size=32, num_classes=4, seed=2, dtype="float64")
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, BatchNorm2d):
            size = layer.num_features
            layer.weight, layer.bias = rng.uniform(0.5, 1.5, size), rng.normal(0, 0.1, size)
            layer.running_mean, layer.running_var = rng.normal(0, 0.1, size), rng.uniform(0.5, 1.5, size)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # every BatchNorm of a ResNet is foldable: no warning
        folded = lrpcore.canonize(model)
    assert not any(isinstance(layer, BatchNorm2d) for layer in folded.layers)
    assert len(folded) == len(model) - sum(isinstance(layer, BatchNorm2d) for layer in model.layers)
    assert folded.node("layer2.0.add").inputs == (("layer2.0.conv2", "layer2.0.downsample.0") if arch == "resnet18"
                                                   else ("layer2.0.conv3", "layer2.0.downsample.0"))
    x = rng.random((2, 3, 32, 32))
    reference = model.forward(x)
    assert np.abs(folded.forward(x) - reference).max() <= 1e-10 * np.abs(reference).max()


def test_explanation_conserves_relevance_at_every_add_node(small18):
    # the structural rule at Add (ε = 1e-6) conserves up to ε: per node, Σ R over the inputs = Σ R out
    model = lrpcore.canonize(small18.astype("float64"))
    x = model.metadata.preprocess(np.random.default_rng(6).random((2, 3, 64, 64)))
    explanation = lrpcore.explain(model, x, composite="epsilon_plus")
    for position, node in enumerate(model.nodes):
        if isinstance(node.layer, Add):
            out, into = explanation.node_sums_out[position], explanation.node_sums_in[position]
            np.testing.assert_allclose(into, out, rtol=1e-4, err_msg=node.name)
            assert len(explanation.input_sums[position]) == 2


def test_io_does_not_import_models():
    # the io ↔ models import circle is gone: models reads state dicts through io, never the other way
    import subprocess
    import sys

    code = ("import sys, lrpcore.io, lrpcore.io.hdf5, lrpcore.io.validate, lrpcore.io.keras, lrpcore.io.torch; "
            "print(sorted(name for name in sys.modules if name.startswith('lrpcore.models')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    assert not hasattr(__import__("lrpcore.io.torch", fromlist=["x"]), "state_dict_to_model")
