"""How a sweep is cut into tasks, and why the cut never changes the table; the worker environment; progress."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("cv2")

from lrpcore.sweep import FlipSettings, tutorial
from lrpcore.sweep.flipping import _batch_bounds, flip_scores, patch_scores
from lrpcore.sweep.progress import Progress, format_seconds
from lrpcore.sweep.tasks import MIN_CONFIGS, ExplainTask, FlipTask, TaskTiming, explain_task, flip_task, plan

from test_sweep import SETTINGS, VALUES, five_conv_network

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def covered(blocks):
    """(configs explained per block, images flipped per block) as sorted lists, checking no overlap."""
    explained, flipped = [], []
    for block in blocks:
        configs = [config for task in block.explains for config in task.configs]
        assert len(configs) == len(set(configs))
        explained.append(sorted(configs))
        images = [image for task in block.flips for image in range(*task.images)]
        assert len(images) == len(set(images)) and all(block.start <= image < block.stop for image in images)
        flipped.append(sorted(images))
    return explained, flipped


# --- sizing ------------------------------------------------------------------------------------------------
def test_one_worker_gets_one_explain_and_one_flip_task_per_block():
    blocks = plan(256, 40, 16, 1, [True] * 40)
    assert [(block.start, block.stop) for block in blocks] == [(0, 16), (16, 32), (32, 40)]
    assert all(len(block.explains) == 1 and len(block.explains[0].configs) == 256 for block in blocks)
    assert [[task.images for task in block.flips] for block in blocks] == [[(0, 16)], [(16, 32)], [(32, 40)]]


def test_guided_sizes_shrink_toward_the_end_and_cover_the_grid_once():
    blocks = plan(256, 16, 16, 2, [True] * 16)
    sizes = [len(task.configs) for task in blocks[0].explains]
    assert sizes[0] == 256 // 4  # a quarter of the work left: 1/(2·2)
    assert sizes[:-1] == sorted(sizes[:-1], reverse=True) and sizes[-1] < 2 * MIN_CONFIGS  # the last takes a runt
    assert min(sizes) >= MIN_CONFIGS and len(sizes) >= 8  # enough tasks that two workers finish together
    assert [task.configs[0] for task in blocks[0].explains] == list(np.cumsum([0] + sizes[:-1]))
    images = [task.images[1] - task.images[0] for task in blocks[0].flips]
    assert images == sorted(images, reverse=True) and images[-1] == 1 and sum(images) == 16
    explained, flipped = covered(blocks)
    assert explained == [list(range(256))] and flipped == [list(range(16))]


def test_many_blocks_stay_whole_until_the_last_ones():
    blocks = plan(64, 160, 16, 2, [True] * 160)
    assert all(len(block.explains) == 1 and len(block.flips) == 1 for block in blocks[:7])
    assert len(blocks[-1].explains) > 1 and len(blocks[-1].flips) > 1  # the tail is cut finer
    explained, flipped = covered(blocks)
    assert explained == [list(range(64))] * 10
    assert flipped == [list(range(start, start + 16)) for start in range(0, 160, 16)]


def test_fixed_config_block_and_resume_plan_only_what_is_missing():
    missing = [False] * 8 + [False, True, True, False, True, False, False, False]
    blocks = plan(10, 16, 8, 1, missing, config_block=4)
    assert len(blocks) == 1 and (blocks[0].start, blocks[0].stop) == (8, 16)
    assert [task.configs for task in blocks[0].explains] == [(0, 1, 2, 3), (4, 5, 6, 7), (8, 9)]
    # flips: runs of missing images, under every configuration
    assert [(task.images, task.configs) for task in blocks[0].flips] == [((9, 11), 10), ((12, 13), 10)]
    assert plan(10, 16, 8, 3, [False] * 16) == []


# --- the cut never changes a number ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def payload():
    rng = np.random.default_rng(3)
    images = rng.uniform(0, 1, size=(6, 3, 16, 16)).astype(np.float32)
    preset = tutorial(VALUES)
    configs = [dict(gamma=gamma, epsilon=epsilon) for gamma in VALUES for epsilon in VALUES]
    return {"model": five_conv_network(), "images": images, "image_ids": np.arange(10, 16), "targets": None,
            "factory": preset.composite, "configs": configs, "settings": FlipSettings(**SETTINGS)}


def run_in_process(payload, blocks):
    rows = []
    for block in blocks:
        parts = [explain_task(payload, task) for task in block.explains]
        for task in block.flips:
            rows.extend(flip_task(payload, task, parts[::-1]).rows)  # parts in any order
    return sorted(rows, key=lambda row: (row[0], row[3], row[5]))


def test_table_is_the_same_for_every_cut_of_the_work(payload):
    cuts = [plan(16, 6, 4, 1, [True] * 6), plan(16, 6, 4, 3, [True] * 6), plan(16, 6, 4, 1, [True] * 6, config_block=3)]
    assert [sum(len(block.explains) + len(block.flips) for block in cut) for cut in cuts] == [4, 13, 14]
    one, three, fixed = (run_in_process(payload, cut) for cut in cuts)
    assert len(one) == 16 * 6 * 3
    assert one == three == fixed  # bit for bit: every AUC, target and score


def test_explain_task_keeps_patch_sums_of_each_configuration_alone(payload):
    whole = explain_task(payload, ExplainTask(tuple(range(16)), (0, 4)))
    single = explain_task(payload, ExplainTask((7,), (0, 4)))
    assert whole.scores.shape == (16, 4, 16)  # 16 configurations × 4 images × 16 patches of 4×4
    np.testing.assert_array_equal(whole.scores[7], single.scores[0])
    from lrpcore import explain
    model, x = payload["model"], payload["images"][:4]
    relevance = explain(model, x, target=whole.targets, composite=payload["factory"](**payload["configs"][7])).relevance
    expected = np.asarray(relevance, dtype=np.float64).sum(axis=1).reshape(4, 4, 4, 4, 4).sum(axis=(2, 4))
    np.testing.assert_allclose(single.scores[0], expected.reshape(4, 16), rtol=1e-12, atol=1e-12)


def test_flip_task_refuses_explanations_of_part_of_the_grid(payload):
    part = explain_task(payload, ExplainTask((0, 1, 2), (0, 4)))
    with pytest.raises(RuntimeError, match="not all 16"):
        flip_task(payload, FlipTask((0, 4), (0, 2), 16), [part])


def test_an_images_aucs_do_not_depend_on_the_other_images_flipped_with_it(payload):
    model, images = payload["model"], payload["images"]
    settings = FlipSettings(**{**SETTINGS, "batch_size": 5})
    relevances = np.random.default_rng(8).normal(size=(4,) + images.shape)
    scores = patch_scores(relevances, settings)
    targets, ids = np.array([0, 1, 2, 3, 0, 1]), np.arange(6)
    together = flip_scores(model, images, scores, targets, ids, settings, ("morf", "lrf", "random"))
    for image in (0, 3, 5):
        alone = flip_scores(model, images[image:image + 1], scores[:, image:image + 1], targets[image:image + 1],
                            ids[image:image + 1], settings, ("lrf", "morf", "random"))
        for sort in ("morf", "lrf", "random"):
            np.testing.assert_array_equal(alone[sort].auc[:, 0], together[sort].auc[:, image])


@pytest.mark.parametrize("total,batch", [(1, 4), (5, 4), (9, 4), (8, 4), (2, 1), (33, 32), (3, 2)])
def test_batches_cover_the_inputs_in_order_and_never_hold_one_input_alone(total, batch):
    bounds = _batch_bounds(total, batch)
    assert bounds[0][0] == 0 and bounds[-1][1] == total
    assert all(first[1] == second[0] for first, second in zip(bounds, bounds[1:]))
    sizes = [stop - start for start, stop in bounds]
    assert all(size <= batch + 1 for size in sizes)
    assert total == 1 or batch == 1 or 1 not in sizes


# --- progress -------------------------------------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_counts_tasks_and_estimates_the_time_left_from_measured_costs():
    blocks = plan(40, 8, 8, 2, [True] * 8)
    clock = Clock()
    progress = Progress(enabled=False, clock=clock)
    progress.start(blocks)
    explains, flips = blocks[0].explains, blocks[0].flips
    assert progress.line() == f"0/{len(explains) + len(flips)} tasks done, 0 running, time left unknown"
    clock.now += 10
    first = explains[0]
    progress.finished(first)  # finished, but its cost is not known here (Dask keeps explanations on the workers)
    progress.show(running=2, workers=2)
    left_units = sum(task.units for task in explains[1:]) + sum(task.units for task in flips)
    assert progress.seconds_left() == pytest.approx(10 * left_units / first.units)  # elapsed per finished unit
    # measured: explain 0.05 s per heatmap, flip 0.02 s per heatmap, two workers
    timing = TaskTiming("explain", first, first.units, 0.05 * first.units, 0.05 * first.units, "host:1")
    progress._record(timing)
    expected = (0.05 * sum(task.units for task in explains[1:]) + 0.05 * sum(task.units for task in flips)) / 2
    assert progress.seconds_left() == pytest.approx(expected)  # flips not measured yet: costed like explains
    flip = flips[0]
    outcome = type("Outcome", (), {"timing": TaskTiming("flip", flip, flip.units, 0.02 * flip.units, 0.0, "h:2"),
                                   "explain_timings": (timing,)})()
    progress.finished(flip, outcome)
    expected = (0.05 * sum(task.units for task in explains[1:]) + 0.02 * sum(task.units for task in flips[1:])) / 2
    assert progress.seconds_left() == pytest.approx(expected)
    assert progress.line() == f"2/{len(explains) + len(flips)} tasks done, 2 running, ~{format_seconds(expected)} left"
    assert len(progress.timings) == 2  # the explain timing arrived twice, counted once


def test_progress_is_drawn_on_a_terminal_and_silent_in_a_pipe():
    for stream, shown in ((Terminal(), True), (io.StringIO(), False)):
        progress = Progress(stream=stream)
        progress.start(plan(8, 4, 4, 1, [True] * 4))
        progress.show(running=1, workers=1)
        progress.close()
        assert ("tasks" in stream.getvalue()) is shown
    assert format_seconds(42.4) == "42 s" and format_seconds(185) == "3 min 05 s"
    assert format_seconds(7625) == "2 h 07 min"


# --- the worker environment --------------------------------------------------------------------------------
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_task_environment_undoes_the_page_faults_of_dasks_malloc_trim_threshold():
    """Under MALLOC_TRIM_THRESHOLD_ (as Dask's nanny sets it) every freed large array faults in afresh."""
    script = textwrap.dedent("""
        import json, resource
        import numpy as np
        from lrpcore.sweep.worker import task_environment

        def faults():
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(200):
                np.ones(300_000)  # 2.4 MB, allocated and freed
            return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

        plain = faults()
        with task_environment():
            inside = faults()
        after = faults()
        print(json.dumps([plain, inside, after]))
    """)
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536", "PYTHONPATH": ROOT}
    plain, inside, after = json.loads(subprocess.run([sys.executable, "-c", script], env=env, check=True,
                                                     capture_output=True, text=True).stdout)
    assert plain > 200 * 500  # ~586 pages per array, every time
    assert inside < plain / 20  # memory is kept for reuse while the task runs
    assert after > 200 * 500  # and the worker's own setting is back afterwards


def test_task_environment_holds_blas_at_one_thread_unless_the_user_chose():
    script = textwrap.dedent("""
        import json
        import numpy as np, threadpoolctl
        from lrpcore.sweep.worker import task_environment

        def blas():
            return max(info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas")

        outside = blas()
        with task_environment():
            inside = blas()
        print(json.dumps([outside, inside, blas()]))
    """)
    env = {name: value for name, value in os.environ.items()
           if name not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["PYTHONPATH"] = ROOT
    for extra, expected_inside in (({}, 1), ({"OPENBLAS_NUM_THREADS": "2"}, 2)):
        outside, inside, restored = json.loads(subprocess.run(
            [sys.executable, "-c", script], env={**env, **extra}, check=True, capture_output=True, text=True).stdout)
        if os.cpu_count() >= 2:
            assert outside >= 2
        assert inside == expected_inside and restored == outside


# --- errors in tasks ---------------------------------------------------------------------------------------
class FailOn:
    """A tutorial factory that cannot make the composite for one γ (picklable, so it travels to workers)."""

    name = "tutorial"

    def __init__(self, gamma: float):
        self.gamma = gamma

    def __call__(self, gamma: float, epsilon: float):
        if gamma == self.gamma:
            raise ValueError(f"no composite for gamma={gamma}")
        return tutorial().composite(gamma=gamma, epsilon=epsilon)


@pytest.mark.parametrize("executor", [None, "processes"])
def test_an_error_in_a_task_reaches_the_caller_and_stops_the_workers(executor):
    import multiprocessing
    from lrpcore.sweep import grid
    images = np.random.default_rng(3).uniform(0, 1, size=(4, 3, 16, 16)).astype(np.float32)
    with pytest.raises(ValueError, match="no composite for gamma=0.25"):
        grid(five_conv_network(), images, composite=FailOn(0.25), params={"gamma": VALUES, "epsilon": VALUES},
             evaluation=SETTINGS, executor=executor, workers=2, progress=False)
    assert _wait(lambda: not multiprocessing.active_children())  # the pool's workers are gone


def _wait(condition, timeout=10.0):
    import time
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    return condition()
