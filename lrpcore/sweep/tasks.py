"""A sweep's tasks, and how the grid is cut into them.

The images are cut into blocks of ``image_block``; a block is the batch every configuration
is explained on (part of the result's definition: the tutorial composite's ε·RMS(z) is taken
over the batch). Each block has two kinds of task:

- :class:`ExplainTask` (configurations × the block): one forward pass of the block
  (``model.forward(x, record=True)``), then each configuration θ's heatmaps
  R_θ(x) = ``explain(model, x, composite=factory(**θ), activations=...)``, kept only as patch
  sums (C, n, P) (:func:`~lrpcore.sweep.flipping.patch_scores`): all that flipping needs.
- :class:`FlipTask` (images of the block × *every* configuration): runs once all explain tasks
  of its block are done and flips its images with :func:`~lrpcore.sweep.flipping.flip_scores`,
  which makes and scores each distinct perturbed input of an image once for all configurations
  and sorts. That sharing is what makes a sweep cheaper than the naive loop (on the 16 × 16
  benchmark grid, flipping configurations in blocks of 16 instead of all at once cost 1.6×
  the CPU time), so configurations are never split for flipping.

Every configuration is explained on its own and every image flipped on its own, so the table
does not depend on how the work is cut: task sizes are chosen for speed alone (:func:`plan`).
"""
from __future__ import annotations

import dataclasses
import math
import os
import socket
import time
from typing import Any, Sequence

import numpy as np

from ..backend import to_numpy
from ..errors import InputValueError
from ..explain import explain
from .flipping import FlipSettings, flip_scores, patch_scores

__all__ = ["ExplainTask", "FlipTask", "Block", "ExplainPart", "FlipOutcome", "TaskTiming", "plan", "explain_task",
           "flip_task", "MIN_CONFIGS"]

#: Fewest configurations in an explain task: each task repeats the block's forward pass, which costs
#: about a third of one explanation (shapes model), so 4 configurations keep that under ~10 %.
MIN_CONFIGS = 4


@dataclasses.dataclass(frozen=True)
class ExplainTask:
    """Explain ``configs`` (indices into the grid) on images ``block`` = [start, stop)."""

    configs: tuple[int, ...]
    block: tuple[int, int]

    @property
    def units(self) -> int:
        """Heatmaps computed: configurations × images."""
        return len(self.configs) * (self.block[1] - self.block[0])


@dataclasses.dataclass(frozen=True)
class FlipTask:
    """Flip images ``images`` = [first, last) of ``block`` under every one of ``configs`` configurations."""

    block: tuple[int, int]
    images: tuple[int, int]
    configs: int

    @property
    def units(self) -> int:
        """Heatmaps flipped: configurations × images."""
        return self.configs * (self.images[1] - self.images[0])


@dataclasses.dataclass(frozen=True)
class Block:
    """One image block's tasks: the flips start when all explains are done."""

    start: int
    stop: int
    explains: tuple[ExplainTask, ...]
    flips: tuple[FlipTask, ...]


@dataclasses.dataclass(frozen=True)
class TaskTiming:
    """Where a task ran and what it cost there: wall and CPU seconds of the task's own thread."""

    kind: str
    task: Any
    units: int
    wall: float
    cpu: float
    worker: str


@dataclasses.dataclass(frozen=True)
class ExplainPart:
    """An explain task's result: patch sums (configs, n, P), the block's targets and explained scores.

    ``first``: the image position of ``scores[:, 0]`` (the block's start, or later for a slice).
    """

    task: ExplainTask
    scores: np.ndarray
    targets: np.ndarray
    explained: np.ndarray
    timing: TaskTiming
    first: int = 0

    def images(self, first: int, last: int) -> "ExplainPart":
        """The part restricted to image positions [first, last) (what one flip task needs of it)."""
        lo, hi = first - self.first, last - self.first
        if lo < 0 or hi > self.scores.shape[1]:
            raise ValueError(f"images {first}–{last - 1} are not in this part (it holds {self.first}–"
                             f"{self.first + self.scores.shape[1] - 1})")
        return dataclasses.replace(self, scores=self.scores[:, lo:hi], targets=self.targets[lo:hi],
                                   explained=self.explained[lo:hi], first=first)


@dataclasses.dataclass(frozen=True)
class FlipOutcome:
    """A flip task's result: its table rows, its timing and the timings of the explain parts it used."""

    task: FlipTask
    rows: list
    timing: TaskTiming
    explain_timings: tuple[TaskTiming, ...]


def _guided(total: int, left_after: int, workers: int, minimum: int) -> list[int]:
    """Sizes of consecutive chunks of ``total`` items, each 1/(2·workers) of the work still left (≥ ``minimum``).

    Guided self-scheduling (Polychronopoulos & Kuck 1987): big tasks while much is left, small
    ones at the end, so that the workers finish together. ``left_after``: items of the same
    kind in later blocks (while they are many, a block stays one task).
    """
    sizes = []
    remaining = total
    while remaining > 0:
        size = min(remaining, max(minimum, math.ceil((remaining + left_after) / (2 * workers))))
        if 0 < remaining - size < minimum:  # no runt at the end: the last task takes it
            size = remaining
        sizes.append(size)
        remaining -= size
    return sizes


def plan(configs: int, images: int, image_block: int, workers: int, missing: Sequence[Sequence[bool]],
         config_block: int | None = None) -> list[Block]:
    """The tasks of a sweep of ``configs`` configurations on ``images`` images, in blocks of ``image_block``.

    ``missing[i]`` is True for image position i when some of its rows are not stored yet; only
    blocks with such an image get tasks, and their flip tasks cover only such images (always
    under every configuration, which is what keeps an image's numbers the same on resume).
    ``workers``: how many tasks can run at once. With one, each block is one explain task and
    one flip task (no repeated forward pass); with more, both kinds are cut by guided
    self-scheduling so that no worker waits long for the last task of a block. ``config_block``:
    a fixed number of configurations per explain task instead.
    """
    workers = max(1, int(workers))
    starts = list(range(0, images, image_block))
    needed = [[position for position in range(start, min(start + image_block, images)) if missing[position]]
              for start in starts]
    blocks = []
    images_after = sum(len(positions) for positions in needed)
    active = [index for index, positions in enumerate(needed) if positions]
    for order, index in enumerate(active):
        start, stop = starts[index], min(starts[index] + image_block, images)
        positions = needed[index]
        images_after -= len(positions)
        if config_block is not None:
            sizes = [config_block] * (configs // config_block) + ([configs % config_block] if configs % config_block
                                                                  else [])
        elif workers == 1:
            sizes = [configs]
        else:
            sizes = _guided(configs, configs * (len(active) - order - 1), workers, MIN_CONFIGS)
        explains, first = [], 0
        for size in sizes:
            explains.append(ExplainTask(tuple(range(first, first + size)), (start, stop)))
            first += size
        # flip tasks: runs of consecutive needed images, cut like the configurations (at least one image each)
        runs: list[list[int]] = []
        for position in positions:
            if runs and runs[-1][-1] == position - 1:
                runs[-1].append(position)
            else:
                runs.append([position])
        flips = []
        for run in runs:
            counts = [len(run)] if workers == 1 else _guided(len(run), images_after, workers, 1)
            first = run[0]
            for count in counts:
                flips.append(FlipTask((start, stop), (first, first + count), configs))
                first += count
        blocks.append(Block(start, stop, tuple(explains), tuple(flips)))
    return blocks


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def explain_task(payload: dict[str, Any], task: ExplainTask) -> ExplainPart:
    """Heatmaps of ``task.configs`` on the task's image block, as patch sums (configs, n, P)."""
    wall, cpu = time.perf_counter(), time.thread_time()
    model = payload["model"]
    settings: FlipSettings = payload["settings"]
    start, stop = task.block
    x = model.prepare_input(payload["images"][start:stop])
    activations = model.forward(x, record=True)
    logits = np.asarray(to_numpy(activations[-1]), dtype=np.float64)
    targets = payload["targets"]
    targets = logits.argmax(axis=1) if targets is None else np.asarray(targets[start:stop])
    explained = logits[np.arange(len(targets)), targets]
    scores = []
    for config in task.configs:
        composite = payload["factory"](**payload["configs"][config])
        explanation = explain(model, x, target=targets, composite=composite, activations=activations)
        relevance = np.asarray(to_numpy(explanation.relevance), dtype=np.float64)
        if not np.all(np.isfinite(relevance)):
            raise InputValueError(f"configuration {config} ({payload['configs'][config]}) gave NaN or inf relevance "
                                  f"on images {start}–{stop - 1}")
        scores.append(patch_scores(relevance[None], settings)[0])
    timing = TaskTiming("explain", task, task.units, time.perf_counter() - wall, time.thread_time() - cpu,
                        _worker_name())
    return ExplainPart(task, np.stack(scores), targets, explained, timing, first=start)


def flip_task(payload: dict[str, Any], task: FlipTask, parts: Sequence[ExplainPart]) -> FlipOutcome:
    """Rows of the task's images under every configuration, from the explain ``parts`` of its block."""
    wall, cpu = time.perf_counter(), time.thread_time()
    settings: FlipSettings = payload["settings"]
    configs = payload["configs"]
    parts = sorted((part.images(*task.images) for part in parts), key=lambda part: part.task.configs[0])
    order = [config for part in parts for config in part.task.configs]
    if order != list(range(task.configs)):
        raise RuntimeError(f"flip task {task} got explanations of configurations {order[:8]}…, "
                           f"not all {task.configs} of the grid")
    scores = np.concatenate([part.scores for part in parts])
    targets, explained = parts[0].targets, parts[0].explained
    image_ids = payload["image_ids"][task.images[0]:task.images[1]]
    results = flip_scores(payload["model"], payload["images"][task.images[0]:task.images[1]], scores, targets,
                          image_ids, settings, settings.sorts)
    names = list(configs[0])
    rows = []
    for sort in settings.sorts:
        result = results[sort]
        for config in range(task.configs):
            values = [configs[config][name] for name in names]
            for column in range(len(image_ids)):
                rows.append([config] + values + [int(image_ids[column]), int(targets[column]), sort,
                                                 float(result.auc[config, column]),
                                                 float(result.auc_normalised[config, column]),
                                                 float(explained[column])])
    timing = TaskTiming("flip", task, task.units, time.perf_counter() - wall, time.thread_time() - cpu, _worker_name())
    return FlipOutcome(task, rows, timing, tuple(part.timing for part in parts))
