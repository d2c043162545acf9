"""``lrpcore inspect`` and ``lrpcore convert``: what they print, what they write, and their exit codes."""
from __future__ import annotations

import numpy as np
import pytest

import lrpcore
from lrpcore.cli import main
from lrpcore.io import load_keras

from io_helpers import every_layer_model, keras2_example, write_keras2


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "every.h5"
    lrpcore.save(every_layer_model(), path)
    return path


@pytest.fixture
def keras_file(tmp_path):
    config, weights, x, expected = keras2_example()
    path = tmp_path / "keras2.h5"
    write_keras2(path, config, weights, full=True)
    return path, x, expected


def _row(output: str, start: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(start))


# --- inspect --------------------------------------------------------------------------------------
def test_inspect_prints_layers_shapes_parameters_metadata_and_rules(model_file, capsys):
    assert main(["inspect", str(model_file)]) == 0
    output = capsys.readouterr().out
    assert "(lrpcore model file)" in output
    assert "Conv2d(3→4, k=3x3, s=1, p=1)" in _row(output, "0  ") and "(4, 8, 8)" in _row(output, "0  ")
    assert _row(output, "0  ").rstrip().endswith("112")               # 4·3·3·3 + 4 parameters
    assert "total parameters: 661" in output
    assert "input shape:  (3, 8, 8)" in output
    assert "value range:  [0, 255]" in output
    assert "mean=(120.5, 110.25, 100.125), std=(60, 58.5, 57.75)" in output
    assert "z^B bounds:   low=(-2.00833, -1.88462, -1.73377), high=(2.24167, 2.47436, 2.68182)" in output
    assert "classes:      3: circle, square, triangle" in output
    rules = output[output.index("composite 'epsilon_gamma_box'"):]
    assert "ZBox" in _row(rules, "0 ") and "Gamma" in _row(rules, "4 ") and "Epsilon" in _row(rules, "12")
    assert "Pass" in _row(rules, "2 ")


def test_inspect_uses_the_requested_composite(model_file, capsys):
    assert main(["inspect", str(model_file), "--composite", "epsilon_plus"]) == 0
    rules = capsys.readouterr().out.split("composite 'epsilon_plus'")[1]
    assert "ZPlus" in _row(rules, "0 ") and "ZPlus" in _row(rules, "4 ")


def test_inspect_reads_keras_files_in_memory(keras_file, capsys):
    path, _, _ = keras_file
    assert main(["inspect", str(path)]) == 0
    output = capsys.readouterr().out
    assert "(keras file, converted in memory)" in output and "Dense(80→3)" in output


def test_inspect_unknown_composite_is_a_usage_error(model_file, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["inspect", str(model_file), "--composite", "nonsense"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'nonsense'" in capsys.readouterr().err


def test_inspect_missing_or_broken_file_exits_1_with_one_clear_line(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "absent.h5")]) == 1
    error = capsys.readouterr().err
    assert error.startswith("lrpcore: error:") and "absent.h5" in error and error.count("\n") == 1
    (tmp_path / "text.h5").write_text("hello")
    assert main(["inspect", str(tmp_path / "text.h5")]) == 1
    assert "text.h5: not a model file lrpcore reads" in capsys.readouterr().err


@pytest.mark.parametrize("command, phrases", [
    ("inspect", ["--composite", "epsilon_gamma_box", "value range"]),
    ("convert", ["--overwrite", "--config", "--arch", "softmax", "--value-range"]),
])
def test_help_texts_describe_the_options(command, phrases, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert all(phrase in text for phrase in phrases)


# --- convert --------------------------------------------------------------------------------------
def test_convert_keras_file_writes_the_model_load_keras_gives_with_the_given_metadata(keras_file, tmp_path, capsys):
    path, x, expected = keras_file
    destination = tmp_path / "converted.h5"
    code = main(["convert", str(path), str(destination), "--value-range", "0", "255", "--mean", "127.5",
                 "--std", "64", "--class-names", "cat,dog,bird", "--name", "handmade_cnn"])
    assert code == 0
    assert f"wrote {destination}" in capsys.readouterr().out
    converted = lrpcore.load(destination)
    assert np.array_equal(converted.forward(x.transpose(0, 3, 1, 2)), load_keras(path).forward(x.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(converted.forward(x.transpose(0, 3, 1, 2)), expected, rtol=1e-12, atol=1e-12)
    metadata = converted.metadata
    assert (metadata.value_range, metadata.mean, metadata.std) == ((0.0, 255.0), (127.5,), (64.0,))
    assert metadata.class_names == ("cat", "dog", "bird") and metadata.name == "handmade_cnn"


def test_convert_refuses_to_replace_a_file_unless_overwrite(keras_file, tmp_path, capsys):
    path, _, _ = keras_file
    destination = tmp_path / "precious.h5"
    destination.write_bytes(b"keep me")
    assert main(["convert", str(path), str(destination)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert destination.read_bytes() == b"keep me"
    assert main(["convert", str(path), str(destination), "--overwrite"]) == 0
    assert lrpcore.load(destination).metadata.input_shape == (3, 7, 5)


def test_convert_rejects_metadata_that_contradicts_the_model(keras_file, tmp_path, capsys):
    path, _, _ = keras_file
    assert main(["convert", str(path), str(tmp_path / "out.h5"), "--class-names", "a,b"]) == 1
    assert "2 class names, but the last layer" in capsys.readouterr().err
    assert not (tmp_path / "out.h5").exists()


def test_convert_weights_only_keras_file_needs_config(tmp_path, capsys):
    config, weights, _, _ = keras2_example()
    write_keras2(tmp_path / "weights.h5", config, weights, full=False)
    assert main(["convert", str(tmp_path / "weights.h5"), str(tmp_path / "out.h5")]) == 1
    assert "--config" in capsys.readouterr().err
    (tmp_path / "arch.json").write_text(__import__("json").dumps(config))
    assert main(["convert", str(tmp_path / "weights.h5"), str(tmp_path / "out.h5"), "--config",
                 str(tmp_path / "arch.json")]) == 0


def test_convert_changes_the_dtype_of_an_lrpcore_file(model_file, tmp_path):
    assert main(["convert", str(model_file), str(tmp_path / "f64.h5"), "--dtype", "float64"]) == 0
    converted = lrpcore.load(tmp_path / "f64.h5")
    assert str(converted.dtype) == "float64"
    assert np.array_equal(converted[0].weight, every_layer_model()[0].weight.astype(np.float64))


@pytest.mark.slow  # VGG's 4096-wide classifier: about 100 MB written three times
def test_convert_torch_state_dict_with_arch(tmp_path, capsys):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    from lrpcore.models import vgg

    reference = vgg("vgg11", input_size=32, num_classes=10, seed=3)
    state = {}
    features = [index for index, layer in enumerate(reference) if index < 21 and layer.parameters()]
    for index in features:                                     # torchvision names: features.<index>.*
        state[f"features.{index}.weight"] = torch.from_numpy(reference[index].weight)
        state[f"features.{index}.bias"] = torch.from_numpy(reference[index].bias)
    for lrpcore_index, torch_index in ((22, 0), (25, 3), (28, 6)):
        state[f"classifier.{torch_index}.weight"] = torch.from_numpy(reference[lrpcore_index].weight)
        state[f"classifier.{torch_index}.bias"] = torch.from_numpy(reference[lrpcore_index].bias)
    torch.save(state, tmp_path / "vgg11.pth")

    assert main(["convert", str(tmp_path / "vgg11.pth"), str(tmp_path / "vgg11.h5")]) == 1
    assert "--arch" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "vgg11.pth"), str(tmp_path / "vgg11.h5"), "--arch", "vgg11"]) == 0
    converted = lrpcore.load(tmp_path / "vgg11.h5")
    assert len(converted) == len(reference) and converted.metadata.input_shape == (3, 32, 32)
    for ours, theirs in zip(converted, reference):
        assert type(ours) is type(theirs)
        assert all(np.array_equal(ours.parameters()[k], v) for k, v in theirs.parameters().items())
