"""Tests of ``lrpcore explain``, run in-process through ``lrpcore.cli.main``."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

import lrpcore
from lrpcore.cli import main
from lrpcore.cli.explain import find_shipped_model, read_input
from lrpcore.data import digits, shapes

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.fixture(scope="module")
def digits_model_path() -> Path:
    return MODELS / "digits_cnn.h5"


@pytest.fixture(scope="module")
def digits_model(digits_model_path):
    return lrpcore.load(digits_model_path)


def _digit(index: int = 0) -> tuple[np.ndarray, int]:
    test = digits("test")
    return test.x[index], int(test.y[index])


def _predicted_name(model, raw: np.ndarray) -> str:
    logits = np.asarray(model.forward(model.metadata.preprocess(raw[None].astype(np.float32))))
    return model.metadata.class_names[int(logits.argmax())]


def test_explain_without_arguments_explains_shipped_shapes_model(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["explain"]) == 0
    written = tmp_path / "lrpcore_out" / "heatmap.png"
    assert written.read_bytes()[:8] == PNG_SIGNATURE
    output = capsys.readouterr().out
    model = lrpcore.load(find_shipped_model("shapes_cnn"))
    sample = shapes(1, seed=0)
    assert f"prediction: {_predicted_name(model, sample.x[0])} (score" in output
    assert f"true class {sample.class_names[sample.y[0]]}" in output
    assert "ΣR out" in output and "rel. error" in output  # the conservation table
    assert len([line for line in output.splitlines() if line.startswith(("0 ", "10 "))]) == 2


def test_rerunning_the_first_command_writes_a_new_file_and_keeps_the_old_one(tmp_path, monkeypatch, capsys):
    """README's first command, twice: the second run succeeds, writes a fresh name, replaces nothing."""
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "lrpcore_out" / "heatmap-2.png"
    mine.parent.mkdir()
    mine.write_bytes(b"the user's own file")
    assert main(["explain"]) == 0
    first = (tmp_path / "lrpcore_out" / "heatmap.png").read_bytes()
    assert main(["explain", "--seed", "3"]) == 0      # heatmap.png and heatmap-2.png are taken
    assert "wrote lrpcore_out/heatmap-3.png" in capsys.readouterr().out
    assert (tmp_path / "lrpcore_out" / "heatmap.png").read_bytes() == first
    assert mine.read_bytes() == b"the user's own file"
    assert (tmp_path / "lrpcore_out" / "heatmap-3.png").read_bytes()[:8] == PNG_SIGNATURE
    assert sorted(path.name for path in tmp_path.iterdir()) == ["lrpcore_out"]   # nothing else in the folder


def test_explain_refuses_to_overwrite_an_existing_file(tmp_path, capsys, digits_model_path):
    out = tmp_path / "mine.png"
    out.write_bytes(b"user data")
    assert main(["explain", str(digits_model_path), "--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert "mine.png" in error and "--overwrite" in error and "Traceback" not in error
    assert out.read_bytes() == b"user data"
    assert main(["explain", str(digits_model_path), "--out", str(out), "--overwrite"]) == 0
    assert out.read_bytes()[:8] == PNG_SIGNATURE


def test_explain_reads_a_single_sample_npy_and_reports_its_prediction(tmp_path, capsys, digits_model_path,
                                                                      digits_model):
    raw, label = _digit(5)
    np.save(tmp_path / "digit.npy", raw)
    out = tmp_path / "digit.png"
    assert main(["explain", str(digits_model_path), str(tmp_path / "digit.npy"), "--out", str(out)]) == 0
    output = capsys.readouterr().out
    assert f"prediction: {_predicted_name(digits_model, raw)} (score" in output
    assert out.read_bytes()[:8] == PNG_SIGNATURE


def test_explain_target_by_class_name_explains_that_class(tmp_path, capsys, digits_model_path):
    raw, label = _digit(0)
    other = str((label + 1) % 10)
    np.save(tmp_path / "digit.npy", raw)
    assert main(["explain", str(digits_model_path), str(tmp_path / "digit.npy"), "--target", other,
                 "--out", str(tmp_path / "t.png")]) == 0
    assert f"explained class {other} (score" in capsys.readouterr().out


def test_explain_png_input_matches_the_same_pixels_given_as_npy(tmp_path, capsys, digits_model_path):
    from PIL import Image

    raw, _ = _digit(3)
    pixels = np.round(raw[0] * 255).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(tmp_path / "digit.png")
    np.save(tmp_path / "digit.npy", pixels.astype(np.float32)[None] / 255)
    assert main(["explain", str(digits_model_path), str(tmp_path / "digit.png"), "--out", str(tmp_path / "a.png")]) == 0
    from_png = capsys.readouterr().out
    assert main(["explain", str(digits_model_path), str(tmp_path / "digit.npy"), "--out", str(tmp_path / "b.png")]) == 0
    from_npy = capsys.readouterr().out
    prediction = [line for line in from_png.splitlines() if line.startswith("prediction")]
    assert prediction and prediction == [line for line in from_npy.splitlines() if line.startswith("prediction")]


def test_explain_single_input_argument_uses_default_model_with_rgb_png(tmp_path, capsys):
    from PIL import Image

    sample = shapes(1, seed=7)
    pixels = np.round(sample.x[0].transpose(1, 2, 0) * 255).astype(np.uint8)
    Image.fromarray(pixels, mode="RGB").save(tmp_path / "shape.png")
    assert main(["explain", str(tmp_path / "shape.png"), "--out", str(tmp_path / "out.png")]) == 0
    output = capsys.readouterr().out
    assert "model: shapes_cnn" in output and "input: " + str(tmp_path / "shape.png") in output


def test_explain_batch_writes_one_png_per_sample_or_one_grid(tmp_path, capsys, digits_model_path):
    np.save(tmp_path / "batch.npy", digits("test").x[:3])
    out = tmp_path / "batch.png"
    assert main(["explain", str(digits_model_path), str(tmp_path / "batch.npy"), "--out", str(out)]) == 0
    assert sorted(path.name for path in tmp_path.glob("batch_*.png")) == ["batch_000.png", "batch_001.png",
                                                                          "batch_002.png"]
    assert not out.exists()
    output = capsys.readouterr().out
    assert "sample 2: prediction" in output
    assert main(["explain", str(digits_model_path), str(tmp_path / "batch.npy"), "--out", str(out), "--grid"]) == 0
    assert out.read_bytes()[:8] == PNG_SIGNATURE


def test_explain_reads_an_hdf5_dataset(tmp_path, capsys, digits_model_path):
    with h5py.File(tmp_path / "inputs.h5", "w") as handle:
        handle.create_dataset("group/images", data=digits("test").x[:2])
    assert main(["explain", str(digits_model_path), f"{tmp_path / 'inputs.h5'}:group/images",
                 "--out", str(tmp_path / "h.png"), "--grid"]) == 0
    assert "sample 1: prediction" in capsys.readouterr().out
    assert main(["explain", str(digits_model_path), f"{tmp_path / 'inputs.h5'}:missing",
                 "--out", str(tmp_path / "h2.png")]) == 1
    error = capsys.readouterr().err
    assert "no dataset 'missing'" in error and "group/images" in error


@pytest.mark.parametrize("case, message", [
    ("wrong_size_png", "image is 10x12 (width x height) but the model takes 8x8"),
    ("wrong_shape_npy", "input of shape (1, 9, 9) does not match the model's input shape (1, 8, 8)"),
    ("nan_npy", "contains 1 NaN or inf"),
    ("out_of_range_npy", "outside the model's raw value range [0, 1]"),
    ("integer_npy", "got dtype int64"),
    ("missing_file", "does not exist"),
    ("bad_target", "--target 'seven' is neither"),
])
def test_explain_bad_input_exits_1_with_one_clear_line(tmp_path, capsys, digits_model_path, case, message):
    from PIL import Image

    inputs = {"wrong_size_png": tmp_path / "big.png", "wrong_shape_npy": tmp_path / "shape.npy",
              "nan_npy": tmp_path / "nan.npy", "out_of_range_npy": tmp_path / "range.npy",
              "integer_npy": tmp_path / "int.npy", "missing_file": tmp_path / "absent.npy",
              "bad_target": tmp_path / "ok.npy"}
    Image.fromarray(np.zeros((12, 10), dtype=np.uint8)).save(inputs["wrong_size_png"])
    np.save(inputs["wrong_shape_npy"], np.zeros((1, 9, 9), dtype=np.float32))
    nan = np.zeros((1, 8, 8), dtype=np.float32)
    nan[0, 2, 2] = np.nan
    np.save(inputs["nan_npy"], nan)
    np.save(inputs["out_of_range_npy"], np.full((1, 8, 8), 16.0, dtype=np.float32))
    np.save(inputs["integer_npy"], np.zeros((1, 8, 8), dtype=np.int64))
    np.save(inputs["bad_target"], np.zeros((1, 8, 8), dtype=np.float32))
    extra = ["--target", "seven"] if case == "bad_target" else []
    out = tmp_path / "never.png"
    assert main(["explain", str(digits_model_path), str(inputs[case]), "--out", str(out), *extra]) == 1
    error = capsys.readouterr().err
    assert message in error
    assert error.startswith("lrpcore: error: ") and error.count("\n") == 1 and "Traceback" not in error
    assert not out.exists()


def test_explain_debug_flag_shows_the_traceback(tmp_path, digits_model_path):
    with pytest.raises(FileNotFoundError, match="absent.npy"):
        main(["--debug", "explain", str(digits_model_path), str(tmp_path / "absent.npy")])


@pytest.mark.parametrize("arguments", [
    ["explain", "--composite", "no_such_preset"],
    ["explain", "--stabilizer", "no_such_stabilizer"],
    ["explain", "--no-such-option"],
    ["explain", "--seed", "one"],
    ["explain", "a.h5", "b.npy", "c.npy"],
])
def test_explain_usage_errors_exit_2(arguments, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as raised:
        main(arguments)
    assert raised.value.code == 2
    error = capsys.readouterr().err
    assert "usage: lrpcore" in error and "error:" in error
    assert not list(tmp_path.rglob("*.png"))


def test_explain_help_names_every_composite_and_the_defaults(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["explain", "--help"])
    assert raised.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for name in lrpcore.composites.PRESETS:
        assert name in text
    assert "lrpcore_out/heatmap.png" in text and "LRPCORE_MODELS" in text and "epsilon_gamma_box" in text


def test_shipped_models_are_found_through_the_environment_variable(tmp_path, monkeypatch):
    (tmp_path / "shapes_cnn.h5").write_bytes((MODELS / "digits_mlp.h5").read_bytes())
    monkeypatch.setenv("LRPCORE_MODELS", str(tmp_path))
    assert find_shipped_model("shapes_cnn") == tmp_path / "shapes_cnn.h5"
    monkeypatch.setenv("LRPCORE_MODELS", str(tmp_path / "empty"))
    assert find_shipped_model("shapes_cnn") == MODELS / "shapes_cnn.h5"
    with pytest.raises(FileNotFoundError, match="LRPCORE_MODELS"):
        find_shipped_model("no_such_model")


def test_read_input_maps_uint8_to_the_value_range(tmp_path, digits_model):
    pixels = np.array([[0, 255] * 4] * 8, dtype=np.uint8)[None]
    np.save(tmp_path / "u8.npy", pixels)
    batch = read_input(str(tmp_path / "u8.npy"), digits_model)
    assert batch.shape == (1, 1, 8, 8) and batch.dtype == np.float32
    np.testing.assert_array_equal(np.unique(batch), [0.0, 1.0])
