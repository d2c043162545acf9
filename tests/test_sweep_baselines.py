"""Baselines beside a sweep (issue 14): scored on the same images, targets and pixel flipping as every configuration."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

pytest.importorskip("cv2")

from lrpcore import baselines as attribution
from lrpcore.cli import main
from lrpcore.errors import InputValueError
from lrpcore.evaluate import pixel_flipping
from lrpcore.io import save
from lrpcore.sweep import grid, tutorial

from test_sweep import five_conv_network

SETTINGS = {"patch_size": 4, "batch_size": 16, "sorts": ("morf", "lrf")}


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(7).uniform(0, 1, size=(5, 3, 16, 16)).astype(np.float32)


@pytest.fixture(scope="module")
def compared(images):
    # γ = ε = 0.25 is the tutorial preset's default: its grid row and its row as a compared method must agree
    return grid(five_conv_network(), images, composite=tutorial((0.0, 0.25)), evaluation=SETTINGS,
                image_block=3, progress=False, baselines=["gradient", "smoothgrad", "tutorial"])


def test_a_composite_compared_as_a_baseline_scores_exactly_as_its_grid_configuration(compared):
    config = compared.configs.index({"gamma": 0.25, "epsilon": 0.25})
    for sort in ("morf", "lrf"):
        rows = compared.select(sort)
        in_grid = rows["auc"][rows["config"] == config]
        table = compared.baselines
        as_baseline = np.asarray(table["auc"][(table["method"] == "tutorial") & (table["sort"] == sort)], float)
        np.testing.assert_array_equal(as_baseline, in_grid)
        assert compared.baseline_auc(sort)["tutorial"] == pytest.approx(compared.mean_auc(sort)[1, 1], rel=1e-12)


def test_baseline_rows_equal_pixel_flipping_of_the_baselines_own_heatmaps(compared, images):
    model = five_conv_network()
    heatmap = attribution.gradient(model, images)          # targets: the predicted classes, as in the sweep
    targets = heatmap.target
    table = compared.baselines
    for sort in ("morf", "lrf"):
        curve = pixel_flipping(model, images, heatmap.relevance, targets, sort=sort, patch_size=4)
        keep = (table["method"] == "gradient") & (table["sort"] == sort)
        np.testing.assert_array_equal(np.asarray(table["auc"][keep], float), curve.auc())
        assert table["target"][keep].tolist() == list(np.asarray(targets))


def test_random_draws_follow_the_image_ids_so_blocks_do_not_change_them(images):
    seeded = ["smoothgrad", "random", "random_normal"]
    one_block = grid(five_conv_network(), images, composite=tutorial((0.25,)), evaluation=SETTINGS, image_block=5,
                     progress=False, baselines=seeded)
    three_blocks = grid(five_conv_network(), images, composite=tutorial((0.25,)), evaluation=SETTINGS,
                        image_block=2, progress=False, baselines=seeded)
    np.testing.assert_array_equal(np.asarray(one_block.baselines["auc"], float),
                                  np.asarray(three_blocks.baselines["auc"], float))


def test_baselines_are_stored_atomically_and_a_foreign_file_is_never_replaced(images, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "baselines.csv").write_text("my own notes\n")
    with pytest.raises(InputValueError, match="baselines.csv exists and was not written by a sweep"):
        grid(five_conv_network(), images, composite=tutorial((0.25,)), evaluation=SETTINGS, out=str(out),
             progress=False, baselines=["gradient"])
    assert (out / "baselines.csv").read_text() == "my own notes\n"
    assert not (out / "results.csv").exists()                  # refused before the sweep ran
    (out / "baselines.csv").unlink()
    result = grid(five_conv_network(), images, composite=tutorial((0.25,)), evaluation=SETTINGS, out=str(out),
                  progress=False, baselines=["gradient", "occlusion"])
    with open(out / "baselines.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 2 * 5 * 2
    assert [float(row["auc"]) for row in rows] == [float(value) for value in result.baselines["auc"]]
    assert not [path.name for path in out.iterdir() if path.name.startswith(".") and "tmp" in path.name]
    # the same sweep started afresh without baselines drops the stale file it wrote
    grid(five_conv_network(), images, composite=tutorial((0.25,)), evaluation=SETTINGS, out=str(out),
         progress=False, restart=True)
    assert not (out / "baselines.csv").exists()


def test_unknown_or_repeated_baselines_are_refused_before_any_work(images):
    with pytest.raises(InputValueError, match="unknown baseline 'gradcam'"):
        grid(five_conv_network(), images, composite=tutorial((0.25,)), progress=False, baselines=["gradcam"])
    with pytest.raises(InputValueError, match="repeat"):
        grid(five_conv_network(), images, composite=tutorial((0.25,)), progress=False,
             baselines=["gradient", "gradient"])


def test_a_sweep_without_baselines_has_none(images):
    result = grid(five_conv_network(), images[:2], composite=tutorial((0.25,)), evaluation=SETTINGS, progress=False)
    assert result.baselines is None
    with pytest.raises(ValueError, match="compared no baselines"):
        result.baseline_auc("morf")


def test_sweep_command_compares_the_baselines_of_its_config(tmp_path, capsys):
    save(five_conv_network(), tmp_path / "model.h5")
    np.save(tmp_path / "raw.npy", np.random.default_rng(3).uniform(0, 1, size=(3, 3, 16, 16)))
    config = {"model": "model.h5", "data": {"npy": "raw.npy"}, "target": "pred", "composite": "tutorial",
              "grid": {"values": [0, 0.25]}, "evaluation": {"patch_size": 4, "sorts": ["morf"]},
              "out": "out", "baselines": ["gradient", "integrated_gradients"]}
    (tmp_path / "sweep.json").write_text(json.dumps(config))
    assert main(["sweep", str(tmp_path / "sweep.json"), "--no-progress", "--no-plots"]) == 0
    printed = capsys.readouterr().out
    line = next(line for line in printed.splitlines() if line.startswith("baselines morf:"))
    assert "gradient " in line and "integrated_gradients " in line
    assert (tmp_path / "out" / "baselines.csv").exists()
    config["baselines"] = "gradient"                      # a string, not a list
    (tmp_path / "sweep.json").write_text(json.dumps(config))
    assert main(["sweep", str(tmp_path / "sweep.json"), "--no-progress", "--no-plots"]) == 1
    assert "'baselines' must be a list of method names" in capsys.readouterr().err
