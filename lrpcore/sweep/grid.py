"""``grid``: score every configuration of a composite factory by pixel-flipping AUC on a set of images.

For each configuration θ of the Cartesian product of ``params`` and each image i the sweep
computes the heatmap R_θ(x_i) = ``explain(model, x_i, composite=factory(**θ))`` and its
pixel-flipping AUC for each sort (MoRF, LRF, random), as in the thesis' systematic search
of LRP-γ/ε hyperparameters. The work is cut into tasks of ``config_block`` configurations ×
``image_block`` images; per task

- the forward pass of the image block runs once (``model.forward(x, record=True)``) and every
  configuration's ``explain`` reuses those activations;
- each configuration is explained on the whole image block in one batched backward pass;
- all heatmaps of the task are flipped together by :func:`lrpcore.sweep.flipping.flip_many`,
  which scores each distinct perturbed input once, in batches of ``batch_size``.

Results are appended to ``out/results.csv`` task by task, each task durable all or nothing
(:mod:`lrpcore.sweep.store`); running the same call again resumes and computes only the missing
tasks, never storing one twice. Note that the image block is
part of the result's definition for composites with batch statistics (the tutorial's ε·RMS(z) is
taken over the batch), so it is recorded in the manifest and must match on resume.
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..backend import to_numpy
from ..errors import InputValueError, ShapeError
from ..explain import explain
from ..graph import Graph
from .executors import run_tasks
from .flipping import FlipSettings, flip_many
from .presets import SweepPreset, get_preset
from .result import SweepResult
from .store import SweepStore, fingerprint, task_key

__all__ = ["grid", "run_task"]

#: Heatmap counts advance in fractions within a task; show them as whole numbers.
_BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total_fmt} {unit} [{elapsed}<{remaining}]"


def _check_params(params: Mapping[str, Sequence[float]]) -> dict[str, tuple[float, ...]]:
    if not params:
        raise ValueError("params must name at least one parameter with its values, e.g. {'gamma': [0, 0.25]}")
    checked = {}
    for name, values in params.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"parameter names must be identifiers (keyword arguments of the factory), got {name!r}")
        try:
            floats = tuple(float(value) for value in values)
        except (TypeError, ValueError):
            raise ValueError(f"values of parameter {name!r} must be numbers, got {values!r}") from None
        if not floats or not all(math.isfinite(value) for value in floats):
            raise ValueError(f"parameter {name!r} needs at least one finite value, got {values!r}")
        if len(set(floats)) != len(floats):
            raise ValueError(f"parameter {name!r} repeats a value: {floats}")
        checked[name] = floats
    return checked


def _check_images(model: Graph, images: Any) -> np.ndarray:
    if not isinstance(model, Graph):
        raise TypeError(f"model must be an lrpcore.Graph or Sequential, got {type(model).__name__}")
    model.prepare_input(images)  # the model's own shape/dtype/NaN messages
    host = np.asarray(to_numpy(images))
    if host.ndim != 4:
        raise ShapeError(f"a sweep needs a batch of images (N, C, H, W), got shape {host.shape}")
    return host


def _factory_name(factory: Callable[..., Any]) -> str:
    """How the manifest names the factory: its module and ``name`` (presets) or qualified name."""
    name = getattr(factory, "name", None)
    if not isinstance(name, str):
        name = getattr(factory, "__qualname__", None) or type(factory).__qualname__
    return f"{getattr(factory, '__module__', None) or type(factory).__module__}.{name}"


def run_task(payload: dict[str, Any], task: tuple[tuple[int, ...], tuple[int, int]]) -> list[list[Any]]:
    """Rows of one task: configurations ``task[0]`` × image positions ``range(*task[1])``."""
    config_indices, (start, stop) = task
    model: Graph = payload["model"]
    settings: FlipSettings = payload["settings"]
    images = payload["images"][start:stop]
    image_ids = payload["image_ids"][start:stop]
    x = model.prepare_input(images)
    activations = model.forward(x, record=True)
    logits = np.asarray(to_numpy(activations[-1]), dtype=np.float64)
    targets = payload["targets"]
    targets = logits.argmax(axis=1) if targets is None else targets[start:stop]
    explained = logits[np.arange(len(targets)), targets]
    # in this process only (serial runs): report progress within the task, in heatmaps (configs × images);
    # explaining is one share of each heatmap, flipping under each sort another
    progress = payload.get("progress")
    shares = 1 + len(settings.sorts)
    relevances = []
    for config in config_indices:
        composite = payload["factory"](**payload["configs"][config])
        explanation = explain(model, x, target=targets, composite=composite, activations=activations)
        relevances.append(np.asarray(to_numpy(explanation.relevance), dtype=np.float64))
        if progress is not None:
            progress(task, (stop - start) / shares)
    relevances = np.stack(relevances)
    if not np.all(np.isfinite(relevances)):
        bad = sorted({config_indices[c] for c in np.nonzero(~np.isfinite(relevances))[0].tolist()})
        raise InputValueError(f"configurations {bad[:5]} ({[payload['configs'][c] for c in bad[:3]]}) gave NaN or "
                              "inf relevance")
    rows = []
    names = list(payload["configs"][0])
    for sort in settings.sorts:
        result = flip_many(model, images, relevances, targets, image_ids, settings, sort)
        if progress is not None:
            progress(task, len(config_indices) * (stop - start) / shares)
        for row, config in enumerate(config_indices):
            values = [payload["configs"][config][name] for name in names]
            for column in range(len(image_ids)):
                rows.append([config] + values + [int(image_ids[column]), int(targets[column]), sort,
                                                 float(result.auc[row, column]),
                                                 float(result.auc_normalised[row, column]),
                                                 float(explained[column])])
    return rows


def _tasks(configs: int, images: int, config_block: int, image_block: int,
           done: set[tuple[int, int]], image_ids: np.ndarray) -> list[tuple[tuple[int, ...], tuple[int, int]]]:
    tasks = []
    for start in range(0, images, image_block):
        stop = min(start + image_block, images)
        for first in range(0, configs, config_block):
            block = tuple(range(first, min(first + config_block, configs)))
            if not all((config, int(image_id)) in done for config in block for image_id in image_ids[start:stop]):
                tasks.append((block, (start, stop)))
    return tasks


def grid(model: Graph, images: Any, targets: Any = None, *,
         composite: Callable[..., Any] | SweepPreset | str,
         params: Mapping[str, Sequence[float]] | None = None,
         evaluation: FlipSettings | Mapping[str, Any] | None = None,
         executor: Any = None, out: str | None = None, image_ids: Sequence[int] | None = None,
         config_block: int = 16, image_block: int = 16, workers: int | None = None, scheduler: str | None = None,
         overwrite: bool = False, progress: bool = True, restart: bool = False) -> SweepResult:
    """Sweep ``composite(**θ)`` over the grid ``params`` and score each θ by pixel-flipping AUC.

    ``composite``: a factory ``f(**params) -> Composite`` (picklable for ``"processes"``/Dask),
    a :class:`SweepPreset`, or a preset name (``"decreasing_gamma"``, ``"tutorial"``; then
    ``params`` defaults to the thesis' 16×16 grid). ``images`` (N, C, H, W): model inputs;
    ``targets``: None (the predicted class) or one int per image; ``image_ids``: ids stored in
    the table and seeding the random sort (default 0 … N−1). ``evaluation``: :class:`FlipSettings`
    or a dict of its fields (sorts, mode, patch_size, schedule, …). ``executor``: None (this
    process), ``"processes"``, ``"dask"`` or a ``dask.distributed.Client`` (``scheduler``: the
    address of an existing Dask scheduler; ``workers``: pool or LocalCluster size).
    ``out``: a directory to store and resume from (None: keep in memory only).
    ``config_block`` × ``image_block``: the size of one task. ``overwrite``: replace a *different*
    sweep stored in ``out`` (the same sweep resumes); ``restart``: discard what ``out`` holds and
    start from zero. While it runs, the sweep holds a lock on ``out``; a second sweep there is refused.
    """
    if isinstance(composite, str):
        composite = get_preset(composite)
    if isinstance(composite, SweepPreset):
        params = composite.params if params is None else params
        factory = composite.composite
    else:
        factory = composite
    if not callable(factory):
        raise TypeError(f"composite must be a factory f(**params) -> Composite, a SweepPreset or a preset name, "
                        f"got {type(composite).__name__}")
    params = _check_params(params or {})
    settings = evaluation if isinstance(evaluation, FlipSettings) else FlipSettings(**dict(evaluation or {}))
    for name, value in (("config_block", config_block), ("image_block", image_block)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    host = _check_images(model, images)
    count = host.shape[0]
    ids = np.arange(count, dtype=np.int64) if image_ids is None else np.asarray(image_ids, dtype=np.int64)
    if ids.shape != (count,) or len(np.unique(ids)) != count:
        raise ShapeError(f"image_ids must be {count} distinct ints, got {np.asarray(image_ids).tolist()[:10]}")
    target_array = None
    if targets is not None and not (isinstance(targets, str) and targets == "pred"):
        target_array = np.asarray(to_numpy(targets))
        if target_array.dtype.kind not in "iu":
            raise InputValueError(f"targets must be integers (one per image), got dtype {target_array.dtype}")
        target_array = np.broadcast_to(target_array, (count,)).astype(np.int64) if target_array.ndim == 0 \
            else target_array.astype(np.int64)
        if target_array.shape != (count,):
            raise ShapeError(f"targets must be one int per image ({count}), got shape {target_array.shape}")
    configs = [dict(zip(params, values)) for values in itertools.product(*params.values())]
    payload = {"model": model, "images": host, "image_ids": ids, "targets": target_array, "factory": factory,
               "configs": configs, "settings": settings}

    store = None
    done: set[tuple[int, int]] = set()
    if out is not None:
        store = SweepStore(out, list(params))
        manifest = {
            "params": {name: list(values) for name, values in params.items()},
            "composite": _factory_name(factory), "evaluation": settings.to_dict(),
            "image_ids": ids.tolist(), "targets": None if target_array is None else target_array.tolist(),
            "config_block": config_block, "image_block": image_block,
            "model": fingerprint(array for layer in model.layers for array in vars(layer).values()
                                 if hasattr(array, "shape") and hasattr(array, "dtype")),
            "images": fingerprint([host]),
        }
        store.open(manifest, overwrite=overwrite, restart=restart)  # locks ``out`` until store.close()
        done = store.done(settings.sorts)
    tasks = _tasks(len(configs), count, config_block, image_block, done, ids)

    collected: list[list[Any]] = []
    bar = None
    credited: dict[Any, float] = {}      # heatmaps already counted for a running task (serial runs)
    if progress:
        from .._progress import progress_bar
        total = len(configs) * count
        bar = progress_bar(total, "sweep", unit="heatmap",
                           initial=total - sum(len(t[0]) * (t[1][1] - t[1][0]) for t in tasks),
                           enabled=None if progress is True else bool(progress), bar_format=_BAR_FORMAT)

    def within_task(task: Any, amount: float) -> None:
        credited[task] = credited.get(task, 0.0) + amount
        bar.update(amount)

    def on_result(task: Any, rows: list[list[Any]]) -> None:
        if store is not None:
            store.commit(task_key(task), rows)  # durable all or nothing; a stored task is never stored twice
        else:
            collected.extend(rows)
        if bar is not None:
            bar.update(len(task[0]) * (task[1][1] - task[1][0]) - credited.pop(task, 0.0))

    if bar is not None and executor in (None, "serial"):
        payload = dict(payload, progress=within_task)    # never sent to other processes
    try:
        run_tasks(tasks, payload, on_result, executor=executor, workers=workers, scheduler=scheduler)
    finally:
        if bar is not None:
            bar.close()
        if store is not None:
            store.close()  # release the lock on ``out``
    if store is not None:
        table = store.load()
    else:
        columns = ["config"] + list(params) + ["image", "target", "sort", "auc", "auc_normalised", "score"]
        table = {name: np.asarray([row[position] for row in collected],
                                  dtype=object if name == "sort" else None) for position, name in enumerate(columns)}
        if not collected:
            table = {name: np.zeros(0) for name in columns}
    order = np.lexsort((table["image"], np.asarray([settings.sorts.index(s) for s in table["sort"]]),
                        table["config"])) if len(table["config"]) else np.zeros(0, dtype=np.int64)
    table = {name: column[order] for name, column in table.items()}
    return SweepResult(table=table, params=params, directory=None if out is None else str(out))
