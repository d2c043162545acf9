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

__all__ = ["FlipSettings", "FlipResult", "flip_many"]


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


class _Scorer:
    """Queues model inputs and runs them in batches of ``batch_size``; returns scores (M, classes) in order."""

    def __init__(self, model: Any, batch_size: int, dtype: Any):
        self.model, self.batch_size, self.dtype = model, batch_size, dtype
        self.pending: list[np.ndarray] = []
        self.pending_count = 0
        self.outputs: list[np.ndarray] = []
        self.calls = 0
        self.total = 0

    def add(self, inputs: np.ndarray) -> int:
        """Queue (M, ...) inputs; returns the index of the first one in the final output."""
        first = self.total
        self.pending.append(np.asarray(inputs, dtype=self.dtype))
        self.pending_count += len(inputs)
        self.total += len(inputs)
        while self.pending_count >= self.batch_size:
            self._run(self.batch_size)
        return first

    def _run(self, size: int) -> None:
        stacked = np.concatenate(self.pending)
        batch, rest = stacked[:size], stacked[size:]
        self.pending = [rest] if len(rest) else []
        self.pending_count = len(rest)
        if isinstance(self.model, Graph):
            xp = self.model.namespace()
            inputs = batch if getattr(xp, "__name__", "").endswith("numpy") else to_backend(batch, xp)
            outputs = np.asarray(to_numpy(self.model.forward(inputs)))
        else:
            outputs = np.asarray(to_numpy(self.model(batch)))
        if outputs.ndim != 2 or outputs.shape[0] != len(batch):
            raise ShapeError(f"the model must return scores (N, classes) for a batch of {len(batch)}, "
                             f"got shape {outputs.shape}")
        self.calls += 1
        self.outputs.append(outputs)

    def result(self) -> np.ndarray:
        if self.pending_count:
            self._run(self.pending_count)
        return np.concatenate(self.outputs) if self.outputs else np.zeros((0, 0))


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
    targets = np.asarray(targets, dtype=np.int64).reshape(-1)
    image_ids = np.asarray(image_ids, dtype=np.int64).reshape(-1)
    count, channels, height, width = images.shape
    if targets.shape != (count,) or image_ids.shape != (count,):
        raise ShapeError(f"targets and image_ids must hold {count} ints, got shapes {targets.shape}, {image_ids.shape}")
    configs = heat.shape[0]

    metadata = getattr(model, "metadata", None)
    value_range = _check_value_range(metadata.value_range if settings.value_range is None else settings.value_range)
    midpoint = (value_range[0] + value_range[1]) / 2
    fill = np.broadcast_to(np.asarray(midpoint if settings.constant is None else settings.constant,
                                      dtype=np.float64).reshape(-1), (channels,)).copy()
    grid = PatchGrid.build(height, width, settings.patch_size)
    schedule = settings.schedule if isinstance(settings.schedule, str) else list(settings.schedule)
    counts = schedule_counts(schedule, grid.count, settings.steps)
    reduced = reduce_channels(heat.reshape((configs * count,) + images.shape[1:]), settings.channel_reduce)
    patch_scores = grid.sums(reduced).reshape(configs, count, grid.count)
    orders = _orders(sort, patch_scores, image_ids, settings.seed)
    ranks = np.empty(orders.shape, dtype=np.int64)
    np.put_along_axis(ranks, orders, np.broadcast_to(np.arange(grid.count), orders.shape), axis=2)

    raw = np.asarray(to_numpy(metadata.deprocess(images)))
    scorer = _Scorer(model, settings.batch_size, _model_dtype(model))
    first_original = scorer.add(images)
    gray_index = None
    if settings.final_gray:
        gray = np.full((1,) + images.shape[1:], midpoint)
        gray_index = scorer.add(np.asarray(to_numpy(metadata.preprocess(gray))))
    steps = len(counts)
    # index[c, n, s]: the row of the model output holding step s of configuration c on image n
    index = np.empty((configs, count, 1 + steps + bool(settings.final_gray)), dtype=np.int64)
    index[:, :, 0] = first_original + np.arange(count)[None, :]
    if settings.final_gray:
        index[:, :, -1] = gray_index
    stepwise = settings.reperturb and not settings.mode.startswith("random")  # a pure function of its patch set
    inpaint_timer = [0.0]
    for image in range(count):
        flipped = ranks[:, image, None, :] < counts[None, :, None]          # (C, K, P) patch masks
        if stepwise:
            keys, inverse = np.unique(flipped.reshape(configs * steps, grid.count), axis=0, return_inverse=True)
            perturbed = _perturbed_steps(raw[image], grid.expand(keys), settings.mode, True, grid, value_range,
                                         fill, lambda: None, settings.inpaint_radius, inpaint_timer)
            first = scorer.add(np.asarray(to_numpy(metadata.preprocess(perturbed))))
            index[:, image, 1:1 + steps] = first + inverse.reshape(configs, steps)
        else:  # steps depend on earlier steps or on random draws: share whole sequences only
            sequences, inverse = np.unique(flipped.reshape(configs, steps * grid.count), axis=0, return_inverse=True)
            for row, sequence in enumerate(sequences):
                pixel_masks = grid.expand(sequence.reshape(steps, grid.count))
                perturbed = _perturbed_steps(raw[image], pixel_masks, settings.mode, settings.reperturb, grid,
                                             value_range, fill,
                                             lambda: image_seed(settings.seed, int(image_ids[image]), 1),
                                             settings.inpaint_radius, inpaint_timer)
                first = scorer.add(np.asarray(to_numpy(metadata.preprocess(perturbed))))
                members = np.flatnonzero(inverse.reshape(-1) == row)
                index[members, image, 1:1 + steps] = first + np.arange(steps)[None, :]
    outputs = scorer.result()
    scores = _target_scores(outputs[index], np.broadcast_to(targets[None, :, None], index.shape), settings.score)
    if not np.all(np.isfinite(scores)):
        bad = np.unique(np.nonzero(~np.isfinite(scores))[1])
        raise InputValueError(f"the model returned NaN or inf scores for image id(s) {image_ids[bad][:10].tolist()}")
    step_counts = np.concatenate([[0], counts] + ([[grid.count]] if settings.final_gray else []))
    fractions = step_counts / float(grid.count)
    unperturbed = scores[0, :, 0]
    auc = trapezoid_area(scores, fractions)
    with np.errstate(divide="ignore", invalid="ignore"):
        normalised = trapezoid_area(scores / scores[:, :, :1], fractions)
    normalised[:, unperturbed <= 0] = np.nan
    return FlipResult(auc=auc, auc_normalised=normalised, unperturbed=unperturbed, model_calls=scorer.calls,
                      model_inputs=scorer.total)
