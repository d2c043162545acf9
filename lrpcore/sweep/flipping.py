"""Pixel flipping of many heatmaps of the same images at once, sharing perturbed inputs and model calls.

A sweep scores C configurations on N images: C·N heatmaps, each flipped along the same
schedule. :func:`lrpcore.evaluate.pixel_flipping` handles one heatmap per image; calling it
C times perturbs and re-scores inputs that are often identical, because the perturbed image
at step k depends only on *which* patches are flipped by then (with ``reperturb=True`` and a
deterministic perturbation, inpainting or a constant), not on the heatmap that chose them.
Two configurations whose k most relevant patches coincide share the step-k input; on a
small patch grid early steps coincide for almost all configurations.

:func:`flip_many` therefore

1. ranks the patches of every heatmap with the evaluate package's :class:`PatchGrid` and
   :func:`patch_order` (the same ranking, ties and schedule as ``pixel_flipping``);
2. keys every (configuration, image, step) by its flipped-patch set (or, when the steps depend
   on each other or on random draws, by the whole sequence of sets) and perturbs each distinct
   key once, with the evaluate package's own perturbation code;
3. runs the distinct model inputs of all images and configurations in batches of
   ``batch_size`` (the unperturbed image once per image, the gray image once in all);
4. returns AUCs identical to ``pixel_flipping(...).auc()`` on each heatmap alone
   (trapezoid over the fraction of patches flipped; normalised by the unperturbed score).

Randomness is keyed by the image *id*, not by its position in the batch: the random sort
uses ``image_seed(seed, image_id, 0)`` and random perturbation ``image_seed(seed, image_id, 1)``,
exactly as ``pixel_flipping`` does for image ``i`` of its batch when ``image_ids = range(N)``.
So a random-sort curve is the same for every configuration (it ignores the heatmap) and a
result does not depend on how the sweep is cut into blocks.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from ..backend import to_backend, to_numpy
from ..errors import InputValueError, ShapeError
from ..evaluate.curve import trapezoid_area
from ..evaluate.patches import PatchGrid, image_seed, patch_order, reduce_channels
from ..evaluate.perturbation import MODES, SORTS, _check_value_range, _perturbed_steps
from ..evaluate.schedules import schedule_counts
from ..graph import Graph

__all__ = ["FlipSettings", "FlipResult", "flip_many", "flip_scores", "patch_scores"]


@dataclasses.dataclass(frozen=True)
class FlipSettings:
    """Pixel-flipping settings of a sweep; the fields mean what ``pixel_flipping``'s arguments mean."""

    sorts: tuple[str, ...] = SORTS
    mode: str = "inpaint"
    patch_size: int | tuple[int, int] = 8
    schedule: str | tuple[int, ...] = "quadratic"
    steps: int | None = None
    final_gray: bool = True
    reperturb: bool = True
    value_range: tuple[float, float] | None = None
    constant: float | None = None
    channel_reduce: str = "sum"
    score: str = "logit"
    seed: int = 0
    batch_size: int = 32
    inpaint_radius: int = 3

    def __post_init__(self) -> None:
        sorts = (self.sorts,) if isinstance(self.sorts, str) else tuple(self.sorts)
        object.__setattr__(self, "sorts", sorts)
        if not sorts or any(sort not in SORTS for sort in sorts) or len(set(sorts)) != len(sorts):
            raise ValueError(f"sorts must be distinct values from {SORTS}, got {self.sorts!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.score not in ("logit", "probability"):
            raise ValueError(f"score must be 'logit' or 'probability', got {self.score!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {self.batch_size!r}")
        if not isinstance(self.schedule, str):
            object.__setattr__(self, "schedule", tuple(int(count) for count in self.schedule))
        if not isinstance(self.patch_size, int):
            object.__setattr__(self, "patch_size", tuple(int(size) for size in self.patch_size))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able settings (for the sweep manifest)."""
        return {key: (list(value) if isinstance(value, tuple) else value)
                for key, value in dataclasses.asdict(self).items()}


@dataclasses.dataclass
class FlipResult:
    """AUCs of C configurations × N images for one sort.

    ``auc`` (C, N): raw area ∫ s(f) df; ``auc_normalised`` (C, N): ∫ s(f)/s_0 df, NaN where the
    unperturbed score s_0 ≤ 0 (undefined; the sweep table keeps it empty, means skip it);
    ``unperturbed`` (N,): s_0; ``model_calls``: forward calls; ``model_inputs``: distinct
    inputs scored (vs. C·N·S without sharing).
    """

    auc: np.ndarray
    auc_normalised: np.ndarray
    unperturbed: np.ndarray
    model_calls: int
    model_inputs: int


def _batch_bounds(total: int, batch_size: int) -> list[tuple[int, int]]:
    """Consecutive (start, stop) batches of ``batch_size`` over ``total`` inputs, never a batch of one.

    A lone last input joins the batch before it (batch_size + 1): BLAS takes another code path
    for a single row, whose last bits differ from the same row inside a batch.
    """
    bounds = [(start, min(start + batch_size, total)) for start in range(0, total, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], total)]
    return bounds


def _call_model(model: Any, batch: np.ndarray) -> np.ndarray:
    """Scores (M, classes) of the model inputs ``batch`` (M, ...), as a float64 host array."""
    if isinstance(model, Graph):
        xp = model.namespace()
        inputs = batch if getattr(xp, "__name__", "").endswith("numpy") else to_backend(batch, xp)
        outputs = np.asarray(to_numpy(model.forward(inputs)))
    else:
        outputs = np.asarray(to_numpy(model(batch)))
    if outputs.ndim != 2 or outputs.shape[0] != len(batch):
        raise ShapeError(f"the model must return scores (N, classes) for a batch of {len(batch)}, "
                         f"got shape {outputs.shape}")
    return outputs


def _model_dtype(model: Any) -> Any:
    name = str(getattr(getattr(model, "dtype", None), "name", getattr(model, "dtype", "")))
    return np.float64 if "float64" in name else np.float32


def _target_scores(outputs: np.ndarray, targets: np.ndarray, score: str) -> np.ndarray:
    """outputs (..., classes) with targets broadcast over the leading axes → the target's logit or probability."""
    outputs = outputs.astype(np.float64)
    if score == "probability":
        shifted = outputs - outputs.max(axis=-1, keepdims=True)
        outputs = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
    return np.take_along_axis(outputs, targets[..., None], axis=-1)[..., 0]


def _orders(sort: str, patch_scores: np.ndarray, image_ids: np.ndarray, seed: int) -> np.ndarray:
    """(C, N, P) flipping orders; the random sort depends on the image id only."""
    configs, count, patches = patch_scores.shape
    if sort == "random":
        per_image = np.stack([image_seed(seed, int(image_id), 0).permutation(patches) for image_id in image_ids])
        return np.broadcast_to(per_image[None], (configs, count, patches))
    return patch_order(patch_scores.reshape(configs * count, patches), sort).reshape(configs, count, patches)


def patch_scores(relevances: Any, settings: FlipSettings) -> np.ndarray:
    """Summed relevance per patch (C, N, P), float64, of heatmaps ``relevances`` (C, N, C_in, H, W).

    All that flipping needs of a heatmap: its patches' ranks follow from these sums. A sweep
    keeps only these (P numbers per heatmap instead of C_in·H·W), one configuration at a time.
    """
    heat = np.asarray(to_numpy(relevances))
    if heat.ndim != 5:
        raise ShapeError(f"relevances must be (configs, N, C, H, W), got shape {heat.shape}")
    configs, count = heat.shape[:2]
    grid = PatchGrid.build(heat.shape[3], heat.shape[4], settings.patch_size)
    reduced = reduce_channels(heat.reshape((configs * count,) + heat.shape[2:]), settings.channel_reduce)
    return grid.sums(reduced).reshape(configs, count, grid.count)


@dataclasses.dataclass(frozen=True)
class _Setup:
    """What every image of one flipping run shares: the patch grid, the schedule, the fill and gray values."""

    grid: PatchGrid
    counts: np.ndarray
    value_range: tuple[float, float]
    fill: np.ndarray
    gray: np.ndarray | None  # the all-gray model input (C_in, H, W), or None without a final gray step
    dtype: Any

    @classmethod
    def build(cls, model: Any, image_shape: tuple[int, ...], settings: FlipSettings) -> "_Setup":
        metadata = getattr(model, "metadata", None)
        value_range = _check_value_range(metadata.value_range if settings.value_range is None
                                         else settings.value_range)
        midpoint = (value_range[0] + value_range[1]) / 2
        channels, height, width = image_shape
        fill = np.broadcast_to(np.asarray(midpoint if settings.constant is None else settings.constant,
                                          dtype=np.float64).reshape(-1), (channels,)).copy()
        grid = PatchGrid.build(height, width, settings.patch_size)
        schedule = settings.schedule if isinstance(settings.schedule, str) else list(settings.schedule)
        counts = schedule_counts(schedule, grid.count, settings.steps)
        gray = None
        if settings.final_gray:
            gray = np.asarray(to_numpy(metadata.preprocess(np.full((1,) + tuple(image_shape), midpoint))))[0]
            gray = gray.astype(_model_dtype(model))
        return cls(grid, counts, value_range, fill, gray, _model_dtype(model))


def _flip_image(model: Any, image: np.ndarray, raw: np.ndarray, scores: np.ndarray, target: int, image_id: int,
                settings: FlipSettings, sorts: Sequence[str], setup: _Setup) -> tuple[dict[str, np.ndarray], int, int]:
    """Score curves (C, 1 + K [+ 1]) per sort for C heatmaps of one image, given their patch sums ``scores`` (C, P).

    The model inputs of the image are, in this order: the image itself, each distinct perturbed
    input of all sorts and configurations (sorted by its flipped-patch set), and the gray image;
    they run in batches of ``batch_size``. Nothing about other images enters, so an image's
    numbers do not depend on which images are flipped in the same call.
    Returns (curves by sort, model calls, model inputs).
    """
    metadata = getattr(model, "metadata", None)
    grid, counts, steps = setup.grid, setup.counts, len(setup.counts)
    configs = scores.shape[0]
    masks = []
    for sort in sorts:
        order = _orders(sort, scores[:, None, :], np.asarray([image_id]), settings.seed)[:, 0]
        ranks = np.empty(order.shape, dtype=np.int64)
        np.put_along_axis(ranks, order, np.broadcast_to(np.arange(grid.count), order.shape), axis=1)
        masks.append(ranks[:, None, :] < counts[None, :, None])          # (C, K, P) flipped patches per step
    flipped = np.concatenate(masks)                                       # (S·C, K, P)
    stepwise = settings.reperturb and not settings.mode.startswith("random")  # a pure function of its patch set
    timer = [0.0]
    if stepwise:
        keys, inverse = np.unique(flipped.reshape(-1, grid.count), axis=0, return_inverse=True)
        per_key = 1

        def perturb(first: int, stop: int) -> np.ndarray:
            return _perturbed_steps(raw, grid.expand(keys[first:stop]), settings.mode, True, grid, setup.value_range,
                                    setup.fill, lambda: None, settings.inpaint_radius, timer)
    else:  # steps depend on earlier steps or on random draws: share whole sequences only
        keys, inverse = np.unique(flipped.reshape(len(flipped), steps * grid.count), axis=0, return_inverse=True)
        per_key = steps

        def perturb(first: int, stop: int) -> np.ndarray:
            return np.concatenate([
                _perturbed_steps(raw, grid.expand(sequence.reshape(steps, grid.count)), settings.mode,
                                 settings.reperturb, grid, setup.value_range, setup.fill,
                                 lambda: image_seed(settings.seed, int(image_id), 1), settings.inpaint_radius, timer)
                for sequence in keys[first:stop]])
    inverse = inverse.reshape(-1)
    perturbed_count = len(keys) * per_key
    total = 1 + perturbed_count + (setup.gray is not None)
    outputs = []
    made: np.ndarray = np.zeros((0,) + image.shape, dtype=setup.dtype)
    made_from = 1  # position of made[0] in the sequence of inputs
    for start, stop in _batch_bounds(total, settings.batch_size):
        parts = []
        if start == 0:
            parts.append(image[None])
        first, last = max(start, 1), min(stop, 1 + perturbed_count)
        while first < last:  # perturbed inputs [first, last): perturb whole keys as they are needed
            if first >= made_from + len(made):
                key = (first - 1) // per_key
                key_stop = min(len(keys), key + max(1, -(-(last - first) // per_key)))
                made = np.asarray(to_numpy(metadata.preprocess(perturb(key, key_stop))), dtype=setup.dtype)
                made_from = 1 + key * per_key
            take = min(last, made_from + len(made))
            parts.append(made[first - made_from:take - made_from])
            first = take
        if setup.gray is not None and stop == total:
            parts.append(setup.gray[None])
        outputs.append(_call_model(model, np.concatenate(parts).astype(setup.dtype, copy=False)))
    calls = len(outputs)
    outputs = np.concatenate(outputs)
    values = _target_scores(outputs, np.full(len(outputs), target, dtype=np.int64), settings.score)
    curves = {}
    for position, sort in enumerate(sorts):
        rows = inverse[position * configs * (steps // per_key):(position + 1) * configs * (steps // per_key)]
        step_index = (1 + rows.reshape(configs, steps) if per_key == 1 else
                      1 + rows[:, None] * steps + np.arange(steps)[None, :])
        columns = [np.full((configs, 1), values[0]), values[step_index]]
        if setup.gray is not None:
            columns.append(np.full((configs, 1), values[-1]))
        curves[sort] = np.concatenate(columns, axis=1)
    return curves, calls, total


def flip_scores(model: Any, x: Any, scores: np.ndarray, targets: Sequence[int] | np.ndarray,
                image_ids: Sequence[int], settings: FlipSettings, sorts: Sequence[str]) -> dict[str, FlipResult]:
    """Pixel flipping of C heatmaps per image given as patch sums ``scores`` (C, N, P) (see :func:`patch_scores`).

    ``x`` (N, C_in, H, W): the images; ``sorts``: the orders to flip in. Every image is flipped
    on its own (its distinct perturbed inputs shared across configurations *and* sorts), so its
    AUCs do not depend on the other images of the call. Returns a :class:`FlipResult` per sort.
    """
    images = np.asarray(to_numpy(x), dtype=np.float64)
    if images.ndim != 4:
        raise ShapeError(f"sweeps flip patches of images (N, C, H, W), got x of shape {images.shape}")
    count = images.shape[0]
    setup = _Setup.build(model, images.shape[1:], settings)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 3 or scores.shape[1:] != (count, setup.grid.count):
        raise ShapeError(f"patch scores must be (configs, N, P) = (C, {count}, {setup.grid.count}), "
                         f"got shape {scores.shape}")
    targets = np.asarray(targets, dtype=np.int64).reshape(-1)
    image_ids = np.asarray(image_ids, dtype=np.int64).reshape(-1)
    if targets.shape != (count,) or image_ids.shape != (count,):
        raise ShapeError(f"targets and image_ids must hold {count} ints, got shapes {targets.shape}, {image_ids.shape}")
    for sort in sorts:
        if sort not in SORTS:
            raise ValueError(f"sort must be one of {SORTS}, got {sort!r}")
    configs = scores.shape[0]
    metadata = getattr(model, "metadata", None)
    raw = np.asarray(to_numpy(metadata.deprocess(images)))
    inputs = images.astype(setup.dtype)
    length = 1 + len(setup.counts) + bool(settings.final_gray)
    curves = {sort: np.empty((configs, count, length)) for sort in sorts}
    calls = total = 0
    for image in range(count):
        per_sort, image_calls, image_inputs = _flip_image(model, inputs[image], raw[image], scores[:, image],
                                                          int(targets[image]), int(image_ids[image]), settings,
                                                          sorts, setup)
        calls, total = calls + image_calls, total + image_inputs
        for sort in sorts:
            curves[sort][:, image] = per_sort[sort]
    step_counts = np.concatenate([[0], setup.counts] + ([[setup.grid.count]] if settings.final_gray else []))
    fractions = step_counts / float(setup.grid.count)
    results = {}
    for sort in sorts:
        values = curves[sort]
        if not np.all(np.isfinite(values)):
            bad = np.unique(np.nonzero(~np.isfinite(values))[1])
            raise InputValueError(f"the model returned NaN or inf scores for image id(s) "
                                  f"{image_ids[bad][:10].tolist()}")
        unperturbed = values[0, :, 0] if configs else np.zeros(count)
        auc = trapezoid_area(values, fractions)
        with np.errstate(divide="ignore", invalid="ignore"):
            normalised = trapezoid_area(values / values[:, :, :1], fractions)
        normalised[:, unperturbed <= 0] = np.nan
        results[sort] = FlipResult(auc=auc, auc_normalised=normalised, unperturbed=unperturbed, model_calls=calls,
                                   model_inputs=total)
    return results


def flip_many(model: Any, x: Any, relevances: Any, targets: Sequence[int] | np.ndarray, image_ids: Sequence[int],
              settings: FlipSettings, sort: str) -> FlipResult:
    """Pixel flipping of ``relevances`` (C, N, C_in, H, W) — C heatmaps of each of the N images ``x`` (N, C_in, H, W).

    ``targets`` (N,): the class whose score is tracked; ``image_ids`` (N,): global ids that seed
    the random sort and random perturbation (so blocks of a sweep agree with one big run).
    Returns AUCs (C, N) equal to ``pixel_flipping`` on each heatmap separately.
    """
    if sort not in settings.sorts and sort not in SORTS:
        raise ValueError(f"sort must be one of {SORTS}, got {sort!r}")
    images = np.asarray(to_numpy(x), dtype=np.float64)
    if images.ndim != 4:
        raise ShapeError(f"sweeps flip patches of images (N, C, H, W), got x of shape {images.shape}")
    heat = np.asarray(to_numpy(relevances))
    if heat.ndim != 5 or heat.shape[1:] != images.shape:
        raise ShapeError(f"relevances must be (configs, N, C, H, W) = (C, {', '.join(map(str, images.shape))}), "
                         f"got shape {heat.shape}")
    return flip_scores(model, images, patch_scores(heat, settings), targets, image_ids, settings, (sort,))[sort]
