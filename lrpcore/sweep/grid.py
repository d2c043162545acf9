"""``grid``: score every configuration of a composite factory by pixel-flipping AUC on a set of images.

For each configuration θ of the Cartesian product of ``params`` and each image i the sweep
computes the heatmap R_θ(x_i) = ``explain(model, x_i, composite=factory(**θ))`` and its
pixel-flipping AUC for each sort (MoRF, LRF, random), as in the thesis' systematic search
of LRP-γ/ε hyperparameters. The images are cut into blocks of ``image_block``; per block
(:mod:`lrpcore.sweep.tasks`)

- the forward pass of the block runs once per explain task (``model.forward(x, record=True)``)
  and every configuration's ``explain`` reuses those activations;
- each configuration is explained on the whole block in one batched backward pass, and only
  the heatmaps' patch sums are kept;
- each image is then flipped under every configuration at once by
  :func:`lrpcore.sweep.flipping.flip_scores`, which makes and scores each distinct perturbed
  input once for all configurations and sorts, in batches of ``batch_size``.

How many configurations or images one task takes is chosen from the grid and the number of
workers (:func:`lrpcore.sweep.tasks.plan`); it never changes a number in the table.

Results are appended to ``out/results.csv`` task by task, each task durable all or nothing
(:mod:`lrpcore.sweep.store`); running the same call again resumes and computes only the missing
images, never storing a task twice. Note that the image block is
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
from ..graph import Graph
from . import baselines as compared
from .executors import run_plan
from .flipping import FlipSettings
from .presets import SweepPreset, get_preset
from .progress import Progress
from .result import SweepResult
from .store import SweepStore, fingerprint, images_key
from .tasks import FlipOutcome, plan

__all__ = ["grid"]


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


def grid(model: Graph, images: Any, targets: Any = None, *,
         composite: Callable[..., Any] | SweepPreset | str,
         params: Mapping[str, Sequence[float]] | None = None,
         evaluation: FlipSettings | Mapping[str, Any] | None = None,
         executor: Any = None, out: str | None = None, image_ids: Sequence[int] | None = None,
         config_block: int | None = None, image_block: int = 16, workers: int | None = None,
         scheduler: str | None = None,
         overwrite: bool = False, progress: bool = True, restart: bool = False,
         baselines: Sequence[str] = ()) -> SweepResult:
    """Sweep ``composite(**θ)`` over the grid ``params`` and score each θ by pixel-flipping AUC.

    ``composite``: a factory ``f(**params) -> Composite`` (picklable for ``"processes"``/Dask),
    a :class:`SweepPreset`, or a preset name (``"decreasing_gamma"``, ``"tutorial"``; then
    ``params`` defaults to the thesis' 16×16 grid). ``images`` (N, C, H, W): model inputs;
    ``targets``: None (the predicted class) or one int per image; ``image_ids``: ids stored in
    the table and seeding the random sort (default 0 … N−1). ``evaluation``: :class:`FlipSettings`
    or a dict of its fields (sorts, mode, patch_size, schedule, …). ``executor``: None (this
    process), ``"processes"``, ``"dask"`` or a ``dask.distributed.Client`` (``scheduler``: the
    address of an existing Dask scheduler; ``workers``: pool or LocalCluster size).
    ``out``: a directory to store and resume from (None: keep in memory only). ``overwrite``: replace a
    *different* sweep stored in ``out`` (the same sweep resumes); ``restart``: discard what ``out`` holds
    and start from zero. While it runs, the sweep holds a lock on ``out``; a second sweep there is refused.
    ``image_block``: images explained together (one batch; part of the result for composites
    with batch statistics). ``config_block``: configurations per explain task (None: chosen from
    the grid and the workers; it never changes a result). ``progress``: show tasks done, tasks
    running and the time left on a terminal or in a notebook (never in a pipe or a file).
    The result's ``timings`` hold each computed task's wall and CPU time and the worker it ran on.

    ``baselines``: methods to score beside the grid on the same images, targets and pixel flipping —
    attribution baselines (``"gradient"``, ``"integrated_gradients"``, ``"occlusion"``, … of
    :mod:`lrpcore.baselines`) or composite presets (``"epsilon_plus"``); their rows are the result's
    ``baselines`` table (:meth:`SweepResult.baseline_auc`) and ``out/baselines.csv``
    (:mod:`lrpcore.sweep.baselines`).
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
    methods = compared.check_methods(baselines)
    settings = evaluation if isinstance(evaluation, FlipSettings) else FlipSettings(**dict(evaluation or {}))
    for name, value in (("config_block", config_block), ("image_block", image_block)):
        if name == "config_block" and value is None:
            continue
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
        if methods:
            compared.check_writable(out)
        store = SweepStore(out, list(params))
        manifest = {
            "params": {name: list(values) for name, values in params.items()},
            "composite": _factory_name(factory), "evaluation": settings.to_dict(),
            "image_ids": ids.tolist(), "targets": None if target_array is None else target_array.tolist(),
            "image_block": image_block,
            "model": fingerprint(array for layer in model.layers for array in vars(layer).values()
                                 if hasattr(array, "shape") and hasattr(array, "dtype")),
            "images": fingerprint([host]),
        }
        store.open(manifest, overwrite=overwrite, restart=restart)  # locks ``out`` until store.close()
        if store.started_afresh and not methods:
            compared.remove_stale(out)
        done = store.done(settings.sorts)
    # an image is computed again (under every configuration) when any of its rows is missing
    missing = [not all((config, int(image_id)) in done for config in range(len(configs))) for image_id in ids]
    image_column = 1 + len(params)

    def make_plan(workers_at_once: int) -> list:
        return plan(len(configs), count, image_block, workers_at_once, missing, config_block)

    collected: list[list[Any]] = []
    tracker = Progress(enabled=None if progress else False)

    def on_result(outcome: FlipOutcome) -> None:
        rows = [row for row in outcome.rows if (row[0], row[image_column]) not in done] if done else outcome.rows
        if store is not None:    # durable all or nothing; a stored task is never stored twice
            first, last = outcome.task.images
            store.commit(images_key(ids[first:last].tolist()), rows)
        else:
            collected.extend(rows)

    baseline_table = None
    try:
        run_plan(make_plan, payload, on_result, executor=executor, workers=workers, scheduler=scheduler,
                 progress=tracker)
        if methods:
            baseline_table = compared.score_methods(model, host, target_array, ids, methods, settings, image_block)
            if store is not None:
                compared.write_table(out, baseline_table)
    finally:
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
    return SweepResult(table=table, params=params, directory=None if out is None else str(out),
                       timings=tuple(tracker.timings), baselines=baseline_table)
