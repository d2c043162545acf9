"""The PyTorch bridge: converted networks compute what the torch module computes; bad modules are named."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
nn = torch.nn

from lrpcore.errors import ModelFormatError  # noqa: E402
from lrpcore.io.torch import from_torch, load_state_dict, to_torch  # noqa: E402
from lrpcore.models import state_dict_to_model  # noqa: E402
from lrpcore.layers import (AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dense, Dropout, Flatten,  # noqa: E402
                            MaxPool2d, ReLU)


def _randomise_batchnorm(module: nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for sub in module.modules():
        if isinstance(sub, (nn.BatchNorm1d, nn.BatchNorm2d)):
            count = sub.num_features
            sub.running_mean.copy_(torch.randn(count, generator=generator, dtype=sub.running_mean.dtype))
            sub.running_var.copy_(torch.rand(count, generator=generator, dtype=sub.running_var.dtype) + 0.5)
            sub.weight.data.copy_(torch.randn(count, generator=generator, dtype=sub.weight.dtype))
            sub.bias.data.copy_(torch.randn(count, generator=generator, dtype=sub.bias.dtype))


def _every_layer_kind() -> nn.Sequential:
    torch.manual_seed(0)
    network = nn.Sequential(
        nn.Conv2d(3, 5, 3, padding="same"),
        nn.BatchNorm2d(5),
        nn.ReLU(inplace=True),
        nn.Sequential(nn.MaxPool2d(3, stride=2, padding=1), nn.Conv2d(5, 6, 3, stride=2, padding=1, bias=False)),
        nn.ReLU(),
        nn.AvgPool2d(2, padding=1),
        nn.Dropout2d(0.3),
        nn.Identity(),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
        nn.Linear(6, 7),
        nn.BatchNorm1d(7),
        nn.Dropout(0.5),
        nn.Linear(7, 4),
    ).double()
    _randomise_batchnorm(network, 1)
    return network.eval()


def _forward(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def test_from_torch_computes_the_same_function_for_every_supported_layer():
    network = _every_layer_kind()
    model = from_torch(network, input_shape=(3, 10, 10))
    kinds = [type(layer) for layer in model.layers]
    assert kinds == [Conv2d, BatchNorm2d, ReLU, MaxPool2d, Conv2d, ReLU, AvgPool2d, Dropout, AvgPool2d,
                     Flatten, Dense, BatchNorm1d, Dropout, Dense]
    x = np.random.default_rng(0).standard_normal((3, 3, 10, 10))
    np.testing.assert_allclose(model.forward(x), _forward(network, x), rtol=1e-12, atol=1e-12)
    assert model.metadata.input_shape == (3, 10, 10)
    assert model.dtype == np.float64


def test_from_torch_keeps_float32_and_casts_on_request():
    network = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).eval()
    assert from_torch(network).dtype == np.float32
    model = from_torch(network, dtype="float64")
    assert model.dtype == np.float64
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(model.forward(x.astype(np.float64)), _forward(network, x), rtol=1e-5, atol=1e-6)


def test_from_torch_copies_parameters_instead_of_sharing_them():
    network = nn.Sequential(nn.Linear(4, 3)).eval()
    model = from_torch(network)
    before = np.array(model.layers[0].weight)
    with torch.no_grad():
        network[0].weight.add_(1.0)
    np.testing.assert_array_equal(model.layers[0].weight, before)


class _VGGLike(nn.Module):
    """torchvision's VGG container shape: features, avgpool, classifier; forward flattens in between."""

    def __init__(self, pool_size: int):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((pool_size, pool_size))
        self.classifier = nn.Sequential(nn.Linear(4 * pool_size * pool_size, 6), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(6, 3))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def test_vgg_style_model_gets_a_flatten_and_loses_its_identity_avgpool():
    network = _VGGLike(pool_size=4).double().eval()
    model = from_torch(network, input_shape=(3, 8, 8))
    assert [type(layer) for layer in model.layers] == [Conv2d, ReLU, MaxPool2d, Flatten, Dense, ReLU, Dropout,
                                                       Dense]
    x = np.random.default_rng(2).standard_normal((2, 3, 8, 8))
    np.testing.assert_allclose(model.forward(x), _forward(network, x), rtol=1e-12, atol=1e-12)


def test_adaptive_avgpool_on_a_multiple_of_its_size_becomes_an_exact_average_pool():
    network = _VGGLike(pool_size=2).double().eval()
    model = from_torch(network, input_shape=(3, 8, 8))
    pool = model.layers[3]
    assert isinstance(pool, AvgPool2d) and pool.kernel_size == (2, 2) and pool.stride == (2, 2)
    x = np.random.default_rng(3).standard_normal((2, 3, 8, 8))
    np.testing.assert_allclose(model.forward(x), _forward(network, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("module, input_shape, path, words", [
    (nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.ReLU(), nn.Mish())), None, "1.1", "Mish"),
    (nn.Sequential(nn.Conv2d(4, 4, 3, dilation=2)), None, "0", "dilation"),
    (nn.Sequential(nn.Conv1d(4, 4, 3, dilation=2)), None, "0", "dilation"),
    (nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, padding_mode="circular")), None, "0", "circular"),
    (nn.Sequential(nn.MaxPool2d(2, dilation=2)), None, "0", "dilation"),
    (nn.Sequential(nn.AvgPool2d(2, divisor_override=3)), None, "0", "divisor_override"),
    (nn.Sequential(nn.Flatten(0)), None, "0", "start_dim"),
    (nn.Sequential(nn.AdaptiveAvgPool2d((None, 3))), None, "0", "input_shape"),
    (nn.Sequential(nn.AdaptiveMaxPool2d(3, return_indices=True)), (2, 4, 4), "0", "return_indices"),
    (nn.Sequential(nn.Softmax(dim=1), nn.Linear(3, 3)), None, "0", "not the last"),
    (nn.Sequential(nn.Linear(4, 4), nn.Softmax(dim=0)), None, "1", "dim=0"),
    (nn.Sequential(nn.Hardtanh(-1.0, 1.0)), None, "0", "Hardtanh"),
    (nn.Sequential(nn.ConstantPad2d(1, 0.5)), None, "0", "value=0.5"),
    (nn.Sequential(nn.Linear(4, 6), nn.Unflatten(2, (2, 3))), None, "1", "dim=2"),
    (nn.Sequential(nn.BatchNorm2d(3, track_running_stats=False)), None, "0", "running statistics"),
    (nn.Sequential(nn.Linear(3, 3), nn.ModuleList([nn.ReLU()])), None, "1", "cannot convert module"),
])
def test_unsupported_modules_are_refused_naming_path_and_type(module, input_shape, path, words):
    with pytest.raises(ModelFormatError) as caught:
        from_torch(module.eval(), input_shape=input_shape)
    message = str(caught.value)
    assert f"'{path}'" in message and words in message
    leaf = module
    for part in path.split("."):
        leaf = leaf[int(part)]
    assert type(leaf).__name__ in message


def test_shape_mismatch_with_input_shape_is_reported_at_the_module():
    network = nn.Sequential(nn.Conv2d(3, 4, 5), nn.ReLU()).eval()
    with pytest.raises(ModelFormatError, match="module '0'.*Conv2d"):
        from_torch(network, input_shape=(3, 3, 3))


def test_training_mode_is_converted_in_inference_form_with_a_warning():
    network = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    with pytest.warns(UserWarning, match="training mode"):
        model = from_torch(network)
    assert isinstance(model.layers[1], Dropout)


def test_to_torch_round_trip_reproduces_model_and_torch_forward():
    network = _every_layer_kind()
    model = from_torch(network, input_shape=(3, 10, 10))
    twin = to_torch(model)
    assert not twin.training
    again = from_torch(twin, input_shape=(3, 10, 10))
    for original, converted in zip(model.layers, again.layers):
        assert original.describe() == converted.describe()
        for name, value in original.parameters().items():
            np.testing.assert_array_equal(converted.parameters()[name], value)
    x = np.random.default_rng(4).standard_normal((2, 3, 10, 10))
    np.testing.assert_allclose(_forward(twin, x), model.forward(x), rtol=1e-12, atol=1e-12)


def test_to_torch_without_copy_shares_memory_with_the_model():
    network = nn.Sequential(nn.Linear(4, 3)).eval()
    model = from_torch(network)
    shared = to_torch(model, copy=False)
    copied = to_torch(model)
    model.layers[0].weight[0, 0] = 42.0
    assert shared[0].weight[0, 0].item() == 42.0
    assert copied[0].weight[0, 0].item() != 42.0


def _vgg_state_dict(input_size: int = 32, num_classes: int = 5) -> tuple[dict, object]:
    from lrpcore.models import vgg16

    model = vgg16(input_size=input_size, num_classes=num_classes, seed=3)
    twin = to_torch(model)
    state = {}
    for key, value in twin.state_dict().items():
        index, name = key.split(".")
        index = int(index)
        prefix = f"features.{index}" if index < 31 else f"classifier.{index - 32}"
        state[f"{prefix}.{name}"] = value
    return state, model


def test_state_dict_file_rebuilds_vgg16_with_the_same_outputs(tmp_path):
    state, model = _vgg_state_dict()
    path = tmp_path / "vgg16.pth"
    torch.save({f"module.{key}": value for key, value in state.items()}, path)    # DataParallel prefix
    rebuilt = state_dict_to_model(path, "vgg16")
    assert rebuilt.metadata.input_shape == (3, 32, 32)
    assert rebuilt.layers[-1].out_features == 5
    x = np.random.default_rng(5).standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(rebuilt.forward(x), model.forward(x))


def test_state_dict_problems_are_named(tmp_path):
    state, _ = _vgg_state_dict()
    missing = {key: value for key, value in state.items() if key != "features.7.bias"}
    with pytest.raises(ModelFormatError, match="missing.*features.7.bias"):
        state_dict_to_model(missing, "vgg16")
    wrong = dict(state, **{"features.2.weight": torch.zeros(64, 64, 5, 5)})
    with pytest.raises(ModelFormatError, match=r"features.2.weight.*\(64, 64, 5, 5\)"):
        state_dict_to_model(wrong, "vgg16")
    with pytest.raises(ModelFormatError, match="unknown architecture 'resnet51'"):
        state_dict_to_model(state, "resnet51")
    not_a_dict = tmp_path / "list.pt"
    torch.save([1, 2, 3], not_a_dict)
    with pytest.raises(ModelFormatError, match="list.pt.*not a state dict"):
        state_dict_to_model(not_a_dict, "vgg16")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ModelFormatError, match="garbage.pt"):
        load_state_dict(garbage)
    with pytest.raises(ModelFormatError, match="does not exist"):
        load_state_dict(tmp_path / "absent.pt")


def _run_export(*arguments: str) -> None:
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "tools" / "export_torch.py"
    spec = importlib.util.spec_from_file_location("export_torch", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(list(arguments))


def test_export_script_writes_a_loadable_file_and_refuses_to_overwrite(tmp_path):
    import lrpcore

    state, model = _vgg_state_dict()
    source, destination = tmp_path / "vgg.pth", tmp_path / "vgg.h5"
    torch.save(state, source)
    _run_export(str(source), str(destination), "--arch", "vgg16", "--class-names", *"abcde")
    loaded = lrpcore.load(destination)
    assert loaded.metadata.class_names == tuple("abcde") and loaded.metadata.input_shape == (3, 32, 32)
    x = np.random.default_rng(6).standard_normal((1, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))
    before = destination.read_bytes()
    with pytest.raises(SystemExit, match="--overwrite"):
        _run_export(str(source), str(destination), "--arch", "vgg16")
    assert destination.read_bytes() == before
    _run_export(str(source), str(destination), "--arch", "vgg16", "--overwrite", "--name", "again")
    assert lrpcore.load(destination).metadata.name == "again"


def build_small_network():
    """Factory for the export test (``tests.test_io_torch:build_small_network`` style)."""
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))


def test_export_script_with_a_factory_loads_the_state_dict_strictly(tmp_path, monkeypatch):
    import sys

    import lrpcore

    torch.manual_seed(0)
    network = build_small_network().eval()
    source, destination = tmp_path / "net.pt", tmp_path / "net.h5"
    torch.save(network.state_dict(), source)
    monkeypatch.setitem(sys.modules, "export_factory_module", sys.modules[__name__])
    _run_export(str(source), str(destination), "--factory", "export_factory_module:build_small_network",
                "--input-shape", "1", "6", "6", "--mean", "0.5", "--std", "0.2")
    loaded = lrpcore.load(destination)
    assert loaded.metadata.mean == (0.5,) and loaded.metadata.input_shape == (1, 6, 6)
    x = np.random.default_rng(7).standard_normal((2, 1, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(loaded.forward(x), _forward(network, x), rtol=1e-5, atol=1e-6)
    torch.save({"0.weight": torch.zeros(2, 1, 3, 3)}, source)          # incomplete: strict loading refuses
    with pytest.raises(SystemExit, match="does not fit"):
        _run_export(str(source), str(tmp_path / "other.h5"), "--factory",
                    "export_factory_module:build_small_network")
