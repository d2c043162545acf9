"""``lrpcore evaluate``: files written, numbers equal to the library's, no silent overwrite."""
import csv
import json

import numpy as np
import pytest

import lrpcore
from lrpcore.cli import main
from lrpcore.cli.evaluate import parse_generator
from lrpcore.data import shapes
from lrpcore.evaluate import pixel_flipping

from evaluate_helpers import tiny_cnn


@pytest.fixture()
def model_file(tmp_path):
    path = tmp_path / "tiny.h5"
    model = tiny_cnn(size=32, classes=6)
    model.metadata.name = "tiny"
    lrpcore.save(model, str(path))
    return path


def test_generator_specs_are_parsed():
    assert parse_generator("shapes:32:seed=1") == ("shapes", 32, {"seed": 1})
    assert parse_generator("shapes:4:watermark=true:noise=0.1") == ("shapes", 4, {"watermark": True, "noise": 0.1})
    assert parse_generator("images.npy") is None
    with pytest.raises(lrpcore.InputValueError, match="unknown data generator"):
        parse_generator("faces:3")
    with pytest.raises(lrpcore.InputValueError, match="NAME:N"):
        parse_generator("shapes:many")


def test_evaluate_writes_curves_tables_and_a_summary_equal_to_the_library(model_file, tmp_path, capsys):
    out = tmp_path / "result"
    code = main(["evaluate", str(model_file), "shapes:3:seed=2", "--composite", "epsilon_plus", "--sort", "morf",
                 "lrf", "--mode", "constant", "--patch-size", "8", "--out", str(out)])
    assert code == 0
    assert sorted(path.name for path in out.iterdir()) == [".lrpcore-outputs.json", "curve.png", "per_image.csv",
                                                           "results.json", "steps.png"]
    line = capsys.readouterr().out.strip()
    assert line.startswith("tiny: 3 images, epsilon_plus, constant, float32: morf AUC") and "lrf AUC" in line

    model = lrpcore.load(str(model_file))
    data = shapes(3, size=32, seed=2)
    x = model.metadata.preprocess(data.x).astype(np.float32)
    relevance = lrpcore.explain(model, x, target=data.y, composite="epsilon_plus").relevance
    expected = pixel_flipping(model, x, relevance, data.y, sort="lrf", mode="constant", patch_size=8)

    results = json.loads((out / "results.json").read_text())
    np.testing.assert_allclose(results["curves"]["lrf"]["auc"], expected.auc(), rtol=1e-6)
    assert results["curves"]["lrf"]["targets"] == data.y.tolist()
    rows = list(csv.DictReader((out / "per_image.csv").open()))
    assert len(rows) == 6 and {row["sort"] for row in rows} == {"morf", "lrf"}
    lrf_rows = [row for row in rows if row["sort"] == "lrf"]
    np.testing.assert_allclose([float(row["auc"]) for row in lrf_rows], expected.auc(), rtol=1e-6)


@pytest.mark.parametrize("method", ["guided_backprop", "random"])
def test_evaluate_takes_baseline_methods_and_their_seeded_draws_ignore_the_batch_size(model_file, tmp_path, method):
    from lrpcore import baselines

    runs = []
    for batch in (1, 4):
        out = tmp_path / f"{method}_{batch}"
        assert main(["evaluate", str(model_file), "shapes:3:seed=2", "--method", method, "--sort", "morf",
                     "--mode", "constant", "--batch-size", str(batch), "--seed", "4", "--out", str(out)]) == 0
        runs.append(json.loads((out / "results.json").read_text()))
    assert runs[0]["method"] == method
    np.testing.assert_allclose(runs[0]["curves"]["morf"]["auc"], runs[1]["curves"]["morf"]["auc"], rtol=1e-6)
    model = lrpcore.load(str(model_file))
    data = shapes(3, size=32, seed=2)
    x = model.metadata.preprocess(data.x).astype(np.float32)
    relevance = baselines.attribute(model, x, data.y, method, **({"seed": 4} if method == "random" else {})).relevance
    expected = pixel_flipping(model, x, relevance, data.y, sort="morf", mode="constant", patch_size=8)
    np.testing.assert_allclose(runs[0]["curves"]["morf"]["auc"], expected.auc(), rtol=1e-6)


def test_npy_data_with_targets_file(model_file, tmp_path, capsys):
    data = shapes(2, size=32, seed=5)
    np.save(tmp_path / "x.npy", data.x)
    np.save(tmp_path / "y.npy", data.y)
    code = main(["evaluate", str(model_file), str(tmp_path / "x.npy"), "--targets", str(tmp_path / "y.npy"),
                 "--composite", "random", "--mode", "random", "--sort", "random", "--out", str(tmp_path / "o")])
    assert code == 0
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    assert results["curves"]["random"]["targets"] == data.y.tolist()
    assert results["target"] == "label"


def test_existing_results_are_not_overwritten_without_the_flag(model_file, tmp_path, capsys):
    out = tmp_path / "o"
    arguments = ["evaluate", str(model_file), "shapes:1", "--mode", "constant", "--out", str(out)]
    assert main(arguments) == 0
    first = (out / "results.json").read_text()
    assert main(arguments + ["--composite", "random"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "results.json").read_text() == first
    assert main(arguments + ["--composite", "random", "--overwrite"]) == 0
    assert json.loads((out / "results.json").read_text())["composite"] == "random"


def test_a_results_file_evaluate_did_not_write_is_never_replaced(model_file, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "results.json").write_text("mine")
    arguments = ["evaluate", str(model_file), "shapes:1", "--mode", "constant", "--out", str(out)]
    assert main(arguments) == 1
    assert main(arguments + ["--overwrite"]) == 1  # not even with --overwrite: lrpcore did not write it
    assert "not written by lrpcore evaluate" in capsys.readouterr().err
    assert (out / "results.json").read_text() == "mine"


@pytest.mark.parametrize("make, message", [
    (lambda tmp: ["shapes:2", "--targets", "y.npy"], "apply to .npy DATA only"),
    (lambda tmp: ["nothing.npy"], "neither a file nor a generator"),
    (lambda tmp: [str(tmp / "ints.npy")], "floating point"),
    (lambda tmp: [str(tmp / "floats.npy"), "--target", "label"], "needs labels"),
    (lambda tmp: [str(tmp / "floats.npy"), "--targets", str(tmp / "bad_targets.npy")], "targets must be 2"),
])
def test_bad_data_gives_one_clear_error_line(model_file, tmp_path, capsys, make, message):
    np.save(tmp_path / "ints.npy", np.zeros((2, 3, 32, 32), dtype=np.int64))
    np.save(tmp_path / "floats.npy", np.zeros((2, 3, 32, 32), dtype=np.float32))
    np.save(tmp_path / "bad_targets.npy", np.zeros(3, dtype=np.int64))
    code = main(["evaluate", str(model_file)] + make(tmp_path) + ["--out", str(tmp_path / "o")])
    assert code == 1
    error = capsys.readouterr().err
    assert error.startswith("lrpcore: error:") and message in error
