"""``lrpcore sweep CONFIG``: the table, the plots, the best configuration per sort, resuming, bad configs."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("cv2")
pytest.importorskip("matplotlib")

from lrpcore.cli import main
from lrpcore.io import save

from test_sweep import five_conv_network


@pytest.fixture()
def config_file(tmp_path):
    save(five_conv_network(), tmp_path / "model.h5")
    np.save(tmp_path / "raw.npy", np.random.default_rng(3).uniform(0, 1, size=(5, 3, 16, 16)))
    config = {"model": "model.h5", "data": {"npy": "raw.npy"}, "target": "pred", "composite": "tutorial",
              "grid": {"values": [0, 0.01, 0.25]}, "evaluation": {"patch_size": 4}, "out": str(tmp_path / "out")}
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(config))
    return path


def test_sweep_command_writes_table_and_plots_and_prints_best_per_sort(config_file, tmp_path, capsys):
    import matplotlib
    matplotlib.use("Agg")
    from lrpcore.sweep import SweepStore
    assert main(["sweep", str(config_file), "--no-progress"]) == 0
    printed = capsys.readouterr().out.splitlines()
    out = tmp_path / "out"
    table = SweepStore(out, ["gamma", "epsilon"]).load()
    assert len(table["config"]) == 9 * 5 * 3
    means = {sort: np.array([table["auc"][(table["sort"] == sort) & (table["config"] == config)].mean()
                             for config in range(9)]) for sort in ("morf", "lrf")}
    best_morf, best_lrf = int(np.argmin(means["morf"])), int(np.argmax(means["lrf"]))
    assert printed[1].startswith("best morf:") and f"(config {best_morf}," in printed[1]
    assert printed[2].startswith("best lrf:") and f"(config {best_lrf}," in printed[2]
    for name in ("contour_morf.png", "contour_lrf.png", "contour_random.png", "auc_distribution_morf.png",
                 "best_heatmaps.png"):
        assert (out / name).stat().st_size > 1000, name
    stored = (out / "results.csv").read_bytes()
    modified = (out / "results.csv").stat().st_mtime_ns
    assert main(["sweep", str(config_file), "--no-progress", "--no-plots"]) == 0  # resumes: nothing to do
    assert (out / "results.csv").read_bytes() == stored
    assert (out / "results.csv").stat().st_mtime_ns == modified  # not rewritten, not appended to
    assert capsys.readouterr().out.splitlines()[:3] == printed[:3]


@pytest.mark.parametrize("change,message", [
    ({"colour": "red"}, "unknown setting(s) ['colour']"),
    ({"composite": "zplus"}, "unknown sweep preset 'zplus'"),
    ({"grid": {"gamma": [0.1]}}, "'grid' must be"),
    ({"target": "label"}, "needs labels"),
])
def test_bad_sweep_config_is_one_clear_error_line(config_file, capsys, change, message):
    config = json.loads(config_file.read_text())
    config.update(change)
    config_file.write_text(json.dumps(config))
    assert main(["sweep", str(config_file), "--no-progress"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("lrpcore: error:") and message in error


def test_config_paths_are_relative_to_the_config_file_wherever_the_command_runs(config_file, tmp_path, monkeypatch,
                                                                                 capsys):
    """One rule for 'model', 'data.npy' and 'out': relative to the config's folder, not the working folder."""
    config = json.loads(config_file.read_text())
    config.update({"out": "results_here", "grid": {"values": [0, 0.25]}, "target": 1})
    config_file.write_text(json.dumps(config))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "model.h5").write_bytes(b"not the model: must not be read")   # a decoy in the working folder
    monkeypatch.chdir(elsewhere)
    assert main(["sweep", str(config_file), "--no-progress", "--no-plots", "--dtype", "float64"]) == 0
    assert (tmp_path / "results_here" / "results.csv").is_file()
    assert not (elsewhere / "results_here").exists()
    assert "(float64)" in capsys.readouterr().out
    from lrpcore.sweep import SweepStore
    table = SweepStore(tmp_path / "results_here", ["gamma", "epsilon"]).load()
    assert set(table["target"].tolist()) == {1}                            # "target": 1 for every image
    # --out on the command line is relative to the working folder
    assert main(["sweep", str(config_file), "--no-progress", "--no-plots", "--out", "mine"]) == 0
    assert (elsewhere / "mine" / "results.csv").is_file()


def test_config_model_may_be_a_shipped_model_name_and_target_a_class_name(tmp_path, capsys):
    config = {"model": "shapes_cnn", "data": {"dataset": "shapes", "count": 2, "seed": 4}, "target": "ring",
              "composite": "tutorial", "grid": {"values": [0.25]}, "evaluation": {"sorts": ["morf"]},
              "out": "out"}
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(config))
    assert main(["sweep", str(path), "--no-progress", "--no-plots"]) == 0
    from lrpcore.sweep import SweepStore
    table = SweepStore(tmp_path / "out", ["gamma", "epsilon"]).load()
    assert set(table["target"].tolist()) == {4}                            # 'ring' is class 4 of shapes_cnn
    config["target"] = "rings"
    path.write_text(json.dumps(config))
    assert main(["sweep", str(path), "--no-progress", "--no-plots", "--overwrite"]) == 1
    assert "'rings' is not a class of model 'shapes_cnn'" in capsys.readouterr().err
