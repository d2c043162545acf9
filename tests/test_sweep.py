"""lrpcore.sweep: batched pixel flipping, shared forward passes, the tidy result, resuming, executors."""
from __future__ import annotations

import importlib
import math
import os

import numpy as np
import pytest

pytest.importorskip("cv2")

from lrpcore import ModelMetadata, Sequential, composites
from lrpcore.errors import InputValueError, ShapeError
from lrpcore.evaluate import pixel_flipping
from lrpcore.layers import AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d, ReLU
from lrpcore.sweep import (THESIS_VALUES, FlipSettings, SweepResult, decreasing_gamma, flip_many, grid,
                           tutorial)
from lrpcore.sweep.presets import TutorialFactory

VALUES = (0.0, 0.01, 0.25, 1.0)
SETTINGS = {"patch_size": 4, "batch_size": 16}


def five_conv_network(seed: int = 0) -> Sequential:
    """Five convolutions (so every γ/ε group of the presets holds one), 3×16×16 inputs, 4 classes."""
    rng = np.random.default_rng(seed)

    def conv(out_channels, in_channels):
        weight = rng.normal(size=(out_channels, in_channels, 3, 3)) * math.sqrt(2 / (9 * in_channels))
        return Conv2d(weight.astype(np.float32), (rng.normal(size=out_channels) * 0.05).astype(np.float32), padding=1)

    layers = [conv(6, 3), ReLU(), conv(6, 6), ReLU(), MaxPool2d(2), conv(8, 6), ReLU(), conv(8, 8), ReLU(),
              conv(8, 8), ReLU(), AvgPool2d(2), Flatten(),
              Dense((rng.normal(size=(4, 128)) * 0.15).astype(np.float32), np.zeros(4, np.float32))]
    return Sequential(layers, ModelMetadata(input_shape=(3, 16, 16), value_range=(0.0, 1.0), name="five_conv"))


class CountingModel(Sequential):
    """A Sequential that counts its forward passes: recorded ones (explain) and plain ones (scoring)."""

    def __init__(self, model: Sequential):
        super().__init__(list(model.layers), model.metadata)
        self.recorded_calls = 0
        self.plain_calls = 0
        self.plain_images = 0

    def forward(self, x, record=False):
        if record:
            self.recorded_calls += 1
        else:
            self.plain_calls += 1
            self.plain_images += int(x.shape[0])
        return super().forward(x, record=record)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(3).uniform(0, 1, size=(6, 3, 16, 16)).astype(np.float32)


@pytest.fixture(scope="module")
def reference(images):
    """The serial, in-memory sweep every other run must reproduce."""
    return grid(five_conv_network(), images, composite=tutorial(VALUES), evaluation=SETTINGS, config_block=5,
                image_block=4, progress=False)


def assert_same_table(first: SweepResult, second: SweepResult) -> None:
    assert set(first.table) == set(second.table)
    for name in first.table:
        left, right = first.table[name], second.table[name]
        if left.dtype == object or right.dtype == object:
            assert left.tolist() == right.tolist(), name
        else:
            np.testing.assert_array_equal(left, right, err_msg=name)


# --- batched pixel flipping ---------------------------------------------------------------------------
@pytest.mark.parametrize("mode,reperturb", [("inpaint", True), ("random", True), ("inpaint", False),
                                            ("constant", True)])
@pytest.mark.parametrize("sort", ["morf", "lrf", "random"])
def test_flip_many_equals_pixel_flipping_on_each_heatmap_alone(images, mode, reperturb, sort):
    model = five_conv_network()
    relevances = np.random.default_rng(5).normal(size=(3,) + images.shape)
    relevances[2] = relevances[0]  # a repeated heatmap must still get its own, equal, row
    targets = np.array([0, 1, 2, 3, 0, 1])
    settings = FlipSettings(patch_size=4, mode=mode, reperturb=reperturb, batch_size=7)
    result = flip_many(model, images, relevances, targets, np.arange(6), settings, sort)
    for config in range(3):
        curve = pixel_flipping(model, images, relevances[config], targets, sort=sort, mode=mode, patch_size=4,
                               reperturb=reperturb)
        np.testing.assert_array_equal(result.auc[config], curve.auc())
        valid = curve.valid
        np.testing.assert_array_equal(result.auc_normalised[config][valid], curve.subset(valid).auc(normalised=True))
        assert np.all(np.isnan(result.auc_normalised[config][~valid]))


def test_flip_many_scores_each_distinct_perturbed_input_once(images):
    model = CountingModel(five_conv_network())
    heatmap = np.random.default_rng(6).normal(size=images.shape)
    relevances = np.stack([heatmap] * 5)  # five configurations that agree everywhere
    result = flip_many(model, images, relevances, np.zeros(6, int), np.arange(6), FlipSettings(**SETTINGS), "morf")
    steps = 4  # 16 patches, quadratic schedule 1, 4, 9, 16
    # per image: the original, its distinct steps (one set of 4, shared by the five configurations) and the gray
    # image, in one batch of its own (so an image's numbers never depend on the other images of the call)
    assert result.model_inputs == 6 * (1 + steps + 1)
    assert result.model_calls == 6 == model.plain_calls
    assert model.plain_images == result.model_inputs
    assert np.all(result.auc == result.auc[:1])


def test_random_sort_auc_does_not_depend_on_the_configuration(reference):
    per_image = reference.per_image("random")
    assert np.all(per_image == per_image[:1])
    assert np.ptp(reference.mean_auc("morf")) > 0  # while MoRF does


def test_flip_many_rejects_heatmaps_of_the_wrong_shape(images):
    with pytest.raises(ShapeError, match="relevances must be"):
        flip_many(five_conv_network(), images, np.zeros((2, 6, 3, 8, 8)), np.zeros(6, int), np.arange(6),
                  FlipSettings(**SETTINGS), "morf")


# --- the grid ---------------------------------------------------------------------------------------------
def test_sweep_runs_one_forward_pass_per_image_block_and_batches_explanations(images, monkeypatch):
    tasks_module = importlib.import_module("lrpcore.sweep.tasks")

    explained_batches = []
    original_explain = tasks_module.explain

    def counting_explain(model, x, **kwargs):
        assert kwargs.get("activations") is not None  # every configuration reuses the recorded pass
        explained_batches.append(int(x.shape[0]))
        return original_explain(model, x, **kwargs)

    monkeypatch.setattr(tasks_module, "explain", counting_explain)
    model = CountingModel(five_conv_network())
    result = grid(model, images, composite=tutorial(VALUES), evaluation=SETTINGS, image_block=3, progress=False)
    assert model.recorded_calls == 2  # serial: two image blocks of 3, all 16 configurations in one task each
    assert explained_batches == [3] * 32  # one batched explanation per configuration and image block
    # scoring: per image one run of batches of 16 over the original, its distinct perturbed inputs (at most
    # 3 sorts · 16 configs · 4 steps of them) and the gray image
    assert model.plain_calls <= 6 * math.ceil((2 + 3 * 16 * 4) / 16)
    assert model.plain_images < 3 * 16 * 6 * (1 + 4 + 1)  # fewer inputs than flipping every heatmap alone
    assert len(result) == 16 * 6 * 3


def test_sweep_result_holds_one_row_per_config_image_and_sort(reference, images):
    assert len(reference) == 16 * 6 * 3
    assert reference.shape == (4, 4)
    assert reference.sorts == ["morf", "lrf", "random"]
    row = (reference.table["config"] == 6) & (reference.table["image"] == 2) & (reference.table["sort"] == "lrf")
    assert row.sum() == 1
    assert reference.table["gamma"][row][0] == VALUES[1] and reference.table["epsilon"][row][0] == VALUES[2]
    logits = five_conv_network().forward(images[2:3])[0]
    assert reference.table["target"][row][0] == int(np.argmax(logits))
    assert reference.table["score"][row][0] == pytest.approx(float(logits.max()), rel=1e-6)


def test_sweep_auc_equals_explain_then_pixel_flipping(reference, images):
    """The naive loop the sweep replaces gives the same numbers."""
    model = five_conv_network()
    config = reference.configs[9]
    explanation = composites.tutorial(**config)
    targets = reference.select("morf")["target"][reference.select("morf")["config"] == 9]
    first = model.forward(images[:4], record=True)
    heatmaps = __import__("lrpcore").explain(model, images[:4], target=targets[:4], composite=explanation,
                                              activations=first).relevance
    curve = pixel_flipping(model, images[:4], heatmaps, targets[:4], sort="morf", patch_size=4)
    np.testing.assert_allclose(reference.per_image("morf")[9, :4], curve.auc(), rtol=1e-12)


def test_best_is_lowest_mean_auc_for_morf_and_highest_for_lrf():
    table = {"config": np.array([0, 0, 1, 1, 2, 2] * 2), "gamma": np.array([0.0, 0.0, 0.1, 0.1, 1.0, 1.0] * 2),
             "image": np.array([0, 1] * 6), "target": np.zeros(12, int),
             "sort": np.array(["morf"] * 6 + ["lrf"] * 6, dtype=object),
             "auc": np.array([3.0, 5.0, 1.0, 2.0, 4.0, 4.0, 3.0, 5.0, 1.0, 2.0, 4.0, 4.0]),
             "auc_normalised": np.full(12, np.nan), "score": np.ones(12)}
    result = SweepResult(table=table, params={"gamma": (0.0, 0.1, 1.0)})
    np.testing.assert_array_equal(result.mean_auc("morf"), [4.0, 1.5, 4.0])
    assert result.best("morf") == {"gamma": 0.1, "config": 1, "auc": 1.5}
    assert result.best("lrf")["gamma"] in (0.0, 1.0) and result.best("lrf")["auc"] == 4.0
    with pytest.raises(ValueError, match="no best configuration"):
        result.best("random")
    with pytest.raises(ValueError, match="no morf AUCs"):
        result.best("morf", normalised=True)


# --- storing and resuming ------------------------------------------------------------------------------
class _InterruptAfter:
    """Tutorial factory that raises KeyboardInterrupt on call number ``limit`` (and counts calls)."""

    def __init__(self, limit: int | None):
        self.limit, self.calls, self.name = limit, 0, "tutorial"

    def __call__(self, gamma, epsilon):
        self.calls += 1
        if self.limit is not None and self.calls >= self.limit:
            raise KeyboardInterrupt
        return composites.tutorial(gamma=gamma, epsilon=epsilon)


def test_interrupted_sweep_resumes_and_recomputes_nothing_stored(tmp_path, images, reference):
    params = {"gamma": VALUES, "epsilon": VALUES}
    options = dict(params=params, evaluation=SETTINGS, config_block=5, image_block=4, progress=False,
                   out=tmp_path / "run")
    # serial tasks: image block [0, 4): explain 5, 5, 5, 1 configurations (16 factory calls), flip its 4 images;
    # then the same for block [4, 6). Stop inside block 1's third explain task.
    with pytest.raises(KeyboardInterrupt):
        grid(five_conv_network(), images, composite=_InterruptAfter(limit=16 + 12), **options)
    lines = (tmp_path / "run" / "results.csv").read_text().splitlines()
    assert len(lines) == 1 + 16 * 4 * 3  # header + block 0's rows: every configuration × 4 images × 3 sorts
    resumed = _InterruptAfter(limit=None)
    result = grid(five_conv_network(), images, composite=resumed, **options)
    assert resumed.calls == 16  # block 1 only
    assert_same_table(result, reference)
    again = _InterruptAfter(limit=None)
    grid(five_conv_network(), images, composite=again, **options)
    assert again.calls == 0


def test_torn_last_line_is_dropped_and_its_image_recomputed(tmp_path, images, reference):
    options = dict(params={"gamma": VALUES, "epsilon": VALUES}, evaluation=SETTINGS, config_block=5, image_block=4,
                   progress=False, out=tmp_path / "run")
    factory = _InterruptAfter(limit=None)
    grid(five_conv_network(), images, composite=factory, **options)
    path = tmp_path / "run" / "results.csv"
    data = path.read_bytes()
    path.write_bytes(data[:-25])  # killed in the middle of writing the last row (config 15, image 5, random)
    resumed = _InterruptAfter(limit=None)
    result = grid(five_conv_network(), images, composite=resumed, **options)
    assert resumed.calls == 16  # image 5 is flipped again under every configuration of its block
    assert_same_table(result, reference)  # and gives the same numbers: an image's result depends on it alone


def test_output_directory_of_a_different_sweep_is_refused(tmp_path, images):
    options = dict(composite=tutorial(VALUES[:2]), evaluation=SETTINGS, progress=False, out=tmp_path / "run")
    grid(five_conv_network(), images[:2], **options)
    before = (tmp_path / "run" / "results.csv").read_text()
    with pytest.raises(InputValueError, match=r"manifest.json describes a different sweep \(differs in \['images'\]"):
        grid(five_conv_network(), images[2:4], **options)
    assert (tmp_path / "run" / "results.csv").read_text() == before
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "results.csv").write_text("mine\n")
    with pytest.raises(InputValueError, match="exists without manifest.json"):
        grid(five_conv_network(), images[:2], **{**options, "out": tmp_path / "foreign"})
    assert (tmp_path / "foreign" / "results.csv").read_text() == "mine\n"


# --- executors ------------------------------------------------------------------------------------------------
def test_process_pool_gives_the_serial_table(images, reference):
    result = grid(five_conv_network(), images, composite=tutorial(VALUES), evaluation=SETTINGS, config_block=5,
                  image_block=4, executor="processes", workers=2, progress=False)
    assert_same_table(result, reference)


@pytest.mark.slow
def test_dask_local_cluster_of_two_worker_processes_gives_the_serial_table(images, reference):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        # the path users take for an existing cluster: the scheduler's address (lrpcore sweep --scheduler tcp://...)
        with distributed.get_task_stream(client) as stream:
            result = grid(five_conv_network(), images, composite=tutorial(VALUES), evaluation=SETTINGS,
                          config_block=5, image_block=4, executor="dask", scheduler=cluster.scheduler_address,
                          progress=False)
        computed = [record for record in stream.data if str(record["key"]).startswith("lrpcore-sweep-")]
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        worker_pids = set(client.run(os.getpid).values())
    assert len(worker_pids) == 2 and os.getpid() not in worker_pids  # real worker processes
    # every task (2 image blocks × 4 explain tasks of ≤ 5 configurations, and the flip tasks) ran on its workers
    assert sum(timing.kind == "explain" for timing in result.timings) == 2 * 4
    assert len(computed) == len(result.timings) > 2 * 4
    assert {int(timing.worker.rsplit(":", 1)[1]) for timing in result.timings} <= worker_pids
    assert_same_table(result, reference)


# --- presets and bad input ------------------------------------------------------------------------------------------
def test_thesis_axis_is_zero_and_fifteen_log_spaced_values_from_1e_4_to_1():
    assert len(THESIS_VALUES) == 16 and THESIS_VALUES[0] == 0.0
    np.testing.assert_allclose(np.log10(THESIS_VALUES[1:]), np.linspace(-4, 0, 15))
    preset = decreasing_gamma()
    assert list(preset.params) == ["gamma_1", "gamma_2"] and preset.params["gamma_1"] == THESIS_VALUES
    rules = preset.composite(gamma_1=0.01, gamma_2=0.3).rules(five_conv_network())
    assert [getattr(rules[index], "gamma", None) for index in (2, 5, 7, 9)] == [0.5, 0.01, 0.3, 0.0]
    assert list(tutorial().params) == ["gamma", "epsilon"]


@pytest.mark.parametrize("kwargs,error,message", [
    ({"params": {}}, ValueError, "at least one parameter"),
    ({"params": {"not a name": [1]}}, ValueError, "identifiers"),
    ({"params": {"gamma": [0.1, 0.1], "epsilon": [0]}}, ValueError, "repeats a value"),
    ({"params": {"gamma": [0.1, float("nan")], "epsilon": [0]}}, ValueError, "finite"),
    ({"targets": np.array([0.5] * 6)}, InputValueError, "targets must be integers"),
    ({"targets": np.array([0, 1])}, ShapeError, "one int per image"),
    ({"executor": "threads"}, ValueError, "executor must be"),
    ({"evaluation": {"sorts": ["best"]}}, ValueError, "sorts must be"),
    ({"image_block": 0}, ValueError, "image_block must be a positive int"),
])
def test_bad_sweep_arguments_are_named(images, kwargs, error, message):
    arguments = {"composite": TutorialFactory(), "params": {"gamma": [0.1], "epsilon": [0.1]},
                 "evaluation": SETTINGS, "progress": False, **kwargs}
    with pytest.raises(error, match=message):
        grid(five_conv_network(), images, **arguments)


# --- pictures ---------------------------------------------------------------------------------------------------------
@pytest.fixture()
def pyplot():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    yield plt
    plt.close("all")


def test_sweep_contour_marks_the_optimum_on_symlog_axes_with_zero_labelled(reference, pyplot):
    from lrpcore.plot import sweep_contour
    ax = sweep_contour(reference, "morf", default={"gamma": 0.25, "epsilon": 0.25})
    best = reference.best("morf")
    star = [line for line in ax.lines if line.get_marker() == "*"][0]
    assert (star.get_xdata()[0], star.get_ydata()[0]) == (best["gamma"], best["epsilon"])
    assert ax.get_xscale() == "symlog" and ax.get_yscale() == "symlog"
    assert ax.get_xticklabels()[0].get_text() == "0" and ax.get_xlim()[0] == 0.0
    assert ax.get_xlabel() == "gamma" and ax.get_ylabel() == "epsilon"


def test_random_sort_contour_is_drawn_flat_and_has_no_optimum(reference, pyplot):
    from lrpcore.plot import sweep_contour
    ax = sweep_contour(reference, "random")
    assert not [line for line in ax.lines if line.get_marker() == "*"]
    assert any(text.get_text().startswith("flat:") for text in ax.texts)


def test_auc_distribution_shows_each_images_auc_of_each_config(reference, pyplot):
    from lrpcore.plot import auc_distribution
    configs = [reference.best("lrf"), 0, {"gamma": 0.25, "epsilon": 0.25}]
    ax = auc_distribution(reference, configs, "lrf")
    dots = [line for line in ax.lines if line.get_marker() == "."]
    expected = reference.per_image("lrf")[[reference.best("lrf")["config"], 0, 10]]
    assert len(dots) == 3
    for line, values in zip(dots, expected):
        np.testing.assert_array_equal(line.get_ydata(), values)
    with pytest.raises(ValueError, match="not in the sweep's grid"):
        auc_distribution(reference, [{"gamma": 0.5, "epsilon": 0.25}], "lrf")


def test_best_heatmaps_show_the_best_configurations_relevance(reference, images, pyplot):
    from lrpcore import explain
    from lrpcore.plot import best_heatmaps
    model = five_conv_network()
    figure = best_heatmaps(model, images, reference, TutorialFactory(), count=3)
    axes = np.asarray(figure.axes).reshape(3, 3)
    best = reference.best("lrf")
    relevance = explain(model, images[:3], composite=composites.tutorial(gamma=best["gamma"],
                                                                         epsilon=best["epsilon"])).relevance
    np.testing.assert_allclose(axes[2, 1].images[0].get_array(), relevance[1].sum(axis=0))
    assert "best lrf" in axes[2, 0].get_ylabel()
