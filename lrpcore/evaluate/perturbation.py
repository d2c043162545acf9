"""Pixel flipping / region perturbation: perturb the most (or least) relevant patches step by step.

Samek et al. 2017 ("Evaluating the visualization of what a deep neural network has learned")
remove the regions a heatmap marks as relevant, in order, and record the model's score:
a faithful heatmap makes the score fall fast under most-relevant-first (MoRF) removal and
stay high under least-relevant-first (LRF) removal. :func:`pixel_flipping` implements it with

1. the heatmap reduced to one channel and summed per patch (:mod:`.patches`);
2. patches ranked (MoRF, LRF or random) and flipped by a schedule (:mod:`.schedules`);
3. each step's image perturbed by inpainting (:mod:`.inpaint`), a random gray per patch (the
   thesis' RGB(i, j, k) → RGB(a, a, a)), a random colour per patch or a constant, computed in
   *raw* input space (``metadata.deprocess``) and preprocessed back;
4. all images × steps streamed through the model in batches of ``batch_size``
   (⌈N·S / batch_size⌉ forward calls in all);
5. the scores gathered into a :class:`~lrpcore.evaluate.curve.PerturbationCurve`.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterator, Literal

import numpy as np

from ..backend import to_backend, to_numpy
from ..composites import Composite
from ..errors import DTypeError, InputValueError, ShapeError
from ..graph import Graph
from ..metadata import ModelMetadata
from .curve import PerturbationCurve
from .inpaint import TeleaSource, inpaint_telea
from .patches import PatchGrid, image_seed, patch_order, reduce_channels
from .schedules import Schedule, schedule_counts

__all__ = ["pixel_flipping", "MODES", "SORTS"]

#: ``"random"``: one uniform gray a per patch, the same in every channel (the thesis replaces a
#: pixel RGB(i, j, k) by RGB(a, a, a)); ``"random_channels"``: one uniform value per patch *and*
#: channel (lrpcore's behaviour before issue 14, a random colour).
MODES = ("inpaint", "random", "random_channels", "constant")
SORTS = ("morf", "lrf", "random")


class _ModelRunner:
    """Calls the model on NumPy batches, returns NumPy scores (B, classes), counts calls and time.

    ``model``: an lrpcore :class:`Sequential` (inputs moved to its backend and dtype) or any
    callable mapping a NumPy batch to scores (e.g. a wrapped torch model).
    """

    def __init__(self, model: Any):
        self.model = model
        self.calls = 0
        self.seconds = 0.0
        if isinstance(model, Graph):
            self.metadata = model.metadata
            self.namespace = model.namespace()
            name = str(getattr(model.dtype, "name", model.dtype))
            self.dtype = np.float64 if "float64" in name else np.float32
        elif callable(model):
            metadata = getattr(model, "metadata", None)
            self.metadata = metadata if isinstance(metadata, ModelMetadata) else ModelMetadata()
            self.namespace = None
            self.dtype = np.float64 if str(getattr(model, "dtype", "")).endswith("float64") else np.float32
        else:
            raise TypeError(f"model must be an lrpcore.Graph/Sequential or a callable, got {type(model).__name__}")

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        start = time.perf_counter()
        if self.namespace is not None:
            inputs = batch if getattr(self.namespace, "__name__", "").endswith("numpy") \
                else to_backend(batch, self.namespace)
            outputs = self.model.forward(inputs)
        else:
            outputs = self.model(batch)
        outputs = np.asarray(to_numpy(outputs))
        self.seconds += time.perf_counter() - start
        self.calls += 1
        if outputs.ndim != 2 or outputs.shape[0] != batch.shape[0]:
            raise ShapeError(f"the model must return scores (N, classes) for a batch of {batch.shape[0]}, "
                             f"got shape {outputs.shape}")
        return outputs


class _BatchedScorer:
    """Collects model inputs one by one and runs them in full batches, keeping the outputs in order."""

    def __init__(self, runner: _ModelRunner, sample_shape: tuple[int, ...], total: int, batch_size: int):
        self.runner = runner
        self.buffer = np.empty((min(batch_size, total),) + sample_shape, dtype=runner.dtype)
        self.filled = 0
        self.outputs: list[np.ndarray] = []

    def add(self, inputs: np.ndarray) -> None:
        position = 0
        while position < len(inputs):
            take = min(len(self.buffer) - self.filled, len(inputs) - position)
            self.buffer[self.filled:self.filled + take] = inputs[position:position + take]
            self.filled += take
            position += take
            if self.filled == len(self.buffer):
                self.flush()

    def flush(self) -> None:
        if self.filled:
            self.outputs.append(self.runner(self.buffer[:self.filled]))
            self.filled = 0

    def result(self) -> np.ndarray:
        self.flush()
        return np.concatenate(self.outputs)


def _check_value_range(value_range: Any) -> tuple[float, float]:
    try:
        low, high = (float(bound) for bound in value_range)
    except (TypeError, ValueError):
        raise ValueError(f"value_range must be a pair (low, high), got {value_range!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and high > low):
        raise ValueError(f"value_range must be finite with low < high, got {value_range!r}")
    return low, high


def _check_inputs(model: Any, x: Any) -> np.ndarray:
    if isinstance(model, Graph):
        model.prepare_input(x)  # shape, dtype and NaN checks with the model's own messages
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise DTypeError(f"x must be an array, got {type(x).__name__}")
    host = np.asarray(to_numpy(x))
    if host.dtype.kind != "f":
        raise DTypeError(f"x dtype {host.dtype} is not floating point; convert images to float first")
    if host.ndim not in (3, 4):
        raise ShapeError(f"pixel flipping needs images (N, C, H, W) or sequences (N, C, L), got shape {host.shape}")
    if host.shape[0] == 0:
        raise ShapeError(f"x holds no images (shape {host.shape})")
    if not np.all(np.isfinite(host)):
        raise InputValueError(f"x of shape {host.shape} contains NaN or inf values")
    return host


def _resolve_targets(target: Any, first_outputs: np.ndarray) -> np.ndarray:
    count, classes = first_outputs.shape
    if target is None or (isinstance(target, str) and target == "pred"):
        return first_outputs.argmax(axis=1).astype(np.int64)
    if isinstance(target, str):
        raise InputValueError(f"target must be None, 'pred', an int or one int per image, got {target!r}")
    values = np.asarray(to_numpy(target))
    if values.dtype.kind not in "iu":
        raise InputValueError(f"target must hold integers, got dtype {values.dtype}")
    values = np.broadcast_to(values, (count,)) if values.ndim == 0 else values
    if values.shape != (count,):
        raise ShapeError(f"target must be one int or {count} ints (one per image), got shape {values.shape}")
    if values.min() < 0 or values.max() >= classes:
        raise InputValueError(f"target values {np.unique(values).tolist()} out of range for {classes} classes")
    return values.astype(np.int64)


def _select_scores(outputs: np.ndarray, targets: np.ndarray, score: str) -> np.ndarray:
    """outputs (N, S, classes) → (N, S) target scores: the logit or the softmax probability."""
    outputs = outputs.astype(np.float64)
    if score == "probability":
        shifted = outputs - outputs.max(axis=-1, keepdims=True)
        exponentials = np.exp(shifted)
        outputs = exponentials / exponentials.sum(axis=-1, keepdims=True)
    elif score != "logit":
        raise ValueError(f"score must be 'logit' or 'probability', got {score!r}")
    return np.take_along_axis(outputs, targets[:, None, None], axis=2)[:, :, 0]


def _channel_values(value: Any, channels: int, what: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64).reshape(-1)
    if array.size not in (1, channels):
        raise ShapeError(f"{what} must be one number or one per channel ({channels}), got {value!r}")
    return np.broadcast_to(array, (channels,)).copy()


def _perturbed_steps(raw: np.ndarray, pixel_masks: np.ndarray, mode: str, reperturb: bool, grid: PatchGrid,
                     value_range: tuple[float, float], constant: np.ndarray, rng: Callable[[], np.random.Generator],
                     inpaint_radius: int, inpaint_timer: list[float]) -> np.ndarray:
    """Raw images (K, C, H, W) for the K schedule steps of one image (C, H, W)."""
    steps, channels = pixel_masks.shape[0], raw.shape[0]
    if mode == "constant":
        return np.where(pixel_masks[:, None], constant.astype(raw.dtype)[None, :, None, None], raw[None])
    if mode == "random":
        low, high = value_range
        # one gray a per patch, all channels equal (thesis: RGB(i, j, k) → RGB(a, a, a)):
        # (K', P) → (K', H, W) → (K', 1, H, W), broadcast over the channels
        tables = rng().uniform(low, high, size=(steps if reperturb else 1, grid.count))
        values = tables[:, grid.patch_index()][:, None].astype(raw.dtype)
        return np.where(pixel_masks[:, None], values, raw[None])
    if mode == "random_channels":
        low, high = value_range
        tables = rng().uniform(low, high, size=(steps if reperturb else 1, grid.count, channels))
        # one value per patch and channel: (K', P, C) → (K', H, W, C) → (K', C, H, W)
        values = np.moveaxis(tables[:, grid.patch_index(), :], -1, 1).astype(raw.dtype)
        return np.where(pixel_masks[:, None], values, raw[None])
    if mode == "inpaint":
        gray = (value_range[0] + value_range[1]) / 2
        result = np.empty((steps,) + raw.shape, dtype=raw.dtype)
        current, previous = raw, np.zeros(pixel_masks.shape[1:], dtype=bool)
        source = TeleaSource(raw, value_range) if reperturb else None
        for step in range(steps):
            if source is not None:  # the thesis' re-inpainting: the whole accumulated mask, from the original
                source.inpaint(pixel_masks[step], inpaint_radius, gray, inpaint_timer, out=result[step])
            else:  # only the new patches, on the previous step's image
                current = inpaint_telea(current, pixel_masks[step] & ~previous, value_range, inpaint_radius, gray,
                                        inpaint_timer)
                previous = pixel_masks[step]
                result[step] = current
        return result
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def pixel_flipping(
    model: Any,
    x: Any,
    relevance: Any,
    target: Any = None,
    *,
    sort: Literal["morf", "lrf", "random"] = "morf",
    mode: Literal["inpaint", "random", "random_channels", "constant"] = "inpaint",
    patch_size: int | tuple[int, int] = 8,
    schedule: Schedule = "quadratic",
    steps: int | None = None,
    final_gray: bool = True,
    reperturb: bool = True,
    value_range: tuple[float, float] | None = None,
    constant: float | tuple[float, ...] | None = None,
    channel_reduce: Literal["sum", "luminance"] = "sum",
    score: Literal["logit", "probability"] = "logit",
    seed: int = 0,
    batch_size: int = 32,
    keep_images: bool = False,
    inpaint_radius: int = 3,
    progress: Callable[[int], Any] | None = None,
    method_options: dict[str, Any] | None = None,
) -> PerturbationCurve:
    """Region perturbation of ``x`` guided by ``relevance``; returns the :class:`PerturbationCurve`.

    ``model``: an lrpcore :class:`Sequential` or a callable NumPy batch → scores (N, classes);
    its ``metadata`` (``preprocess``/``deprocess``, ``value_range``) says what raw values are.
    ``x``: model inputs (N, C, H, W), or sequences (N, C, L) perturbed in 1×``patch_size`` windows.
    ``relevance``: heatmaps (N, C, H, W) reduced by ``channel_reduce`` (``"sum"`` or the thesis'
    ``"luminance"``), or already one-channel (N, H, W); or the name of an attribution method
    (a baseline of :mod:`lrpcore.baselines` such as ``"gradient"`` or ``"random"``, an LRP preset
    name) or a :class:`~lrpcore.Composite`, computed here by :func:`lrpcore.baselines.attribute`
    with ``method_options`` (an lrpcore model only). ``target``: None/``"pred"`` (the
    predicted class of the unperturbed input), an int, or one int per image.

    ``sort``: ``"morf"`` most relevant patch first, ``"lrf"`` least relevant first, ``"random"``
    a seeded permutation per image (``"lerf"``, Quantus' spelling, means ``"lrf"``). ``schedule``/``steps``: cumulative patch counts per step, see
    :mod:`lrpcore.evaluate.schedules` (``"quadratic"`` flips 1, 3, 5, … patches, as the thesis).
    ``mode``: ``"inpaint"`` (OpenCV Telea, radius ``inpaint_radius``), ``"random"`` (one uniform
    gray a in ``value_range`` per patch, equal in all channels: the thesis' RGB(a, a, a); from
    ``seed``), ``"random_channels"`` (one uniform value per patch *and* channel, a random colour;
    lrpcore's ``"random"`` before issue 14), ``"constant"`` (``constant``,
    a raw value or one per channel; default the value-range midpoint). ``reperturb=True`` perturbs
    the whole accumulated mask anew at every step (re-inpainting from the original, fresh random
    values); ``False`` perturbs only the newly added patches of the previous step's image.
    ``final_gray``: append a step where the whole image is the value-range midpoint.
    ``value_range``: raw (pre-``preprocess``) bounds, default ``model.metadata.value_range``.
    ``score``: ``"logit"`` or ``"probability"`` (softmax) of the target. ``batch_size``: images
    per model call; all N·S perturbed inputs take ⌈N·S / batch_size⌉ calls. ``keep_images``: also
    return every perturbed model input (N·S images of memory). ``progress``: called with 1 after
    each image's steps are perturbed and queued for the model (e.g. a progress bar's ``update``).
    """
    start = time.perf_counter()
    if sort not in SORTS and sort != "lerf":
        raise ValueError(f"sort must be one of {SORTS}, got {sort!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    runner = _ModelRunner(model)
    inputs = _check_inputs(model, x)
    if isinstance(relevance, (str, Composite)):
        if runner.namespace is None:      # a plain callable, not an lrpcore model
            raise TypeError(f"relevance={relevance!r} names a method, which needs an lrpcore model to attribute; "
                            f"got {type(model).__name__}: pass the relevance array instead")
        from ..baselines import attribute

        attribution = attribute(model, inputs, target, relevance, **dict(method_options or {}))
        relevance, target = attribution.relevance, attribution.target
    sample_shape = inputs.shape[1:]
    sequences = inputs.ndim == 3
    images = inputs[:, :, None, :] if sequences else inputs
    count, channels, height, width = images.shape
    if sequences and isinstance(patch_size, (int, np.integer)):
        patch_size = (1, int(patch_size))
    value_range = _check_value_range(runner.metadata.value_range if value_range is None else value_range)
    midpoint = (value_range[0] + value_range[1]) / 2
    fill = _channel_values(midpoint if constant is None else constant, channels, "constant")

    heat = reduce_channels(relevance, channel_reduce, spatial_ndim=1 if sequences else 2)
    if heat.shape != (count,) + images.shape[2 + sequences:]:
        raise ShapeError(f"relevance must match x {inputs.shape} (after reducing channels: "
                         f"{(count,) + inputs.shape[2:]}), got relevance of shape {np.shape(relevance)}")
    heat = heat[:, None, :] if sequences else heat
    grid = PatchGrid.build(height, width, patch_size)
    patch_scores = grid.sums(heat)
    order = patch_order(patch_scores, "lrf" if sort == "lerf" else sort, seed)
    counts = schedule_counts(schedule, grid.count, steps)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(grid.count)[None, :], axis=1)

    step_counts = np.concatenate([[0], counts] + ([[grid.count]] if final_gray else [])).astype(np.int64)
    n_steps = len(step_counts)
    metadata = runner.metadata
    # raw values in the model's precision (float32 by default): 8-bit inpainting needs no more
    raw_all = np.asarray(to_numpy(metadata.deprocess(images.reshape((count,) + sample_shape).astype(runner.dtype))))
    raw_all = raw_all.reshape(images.shape)
    gray_input = metadata.preprocess(np.full((1,) + images.shape[1:], midpoint).reshape((1,) + sample_shape))

    scorer = _BatchedScorer(runner, sample_shape, count * n_steps, batch_size)
    masks = np.zeros((count, n_steps, height, width), dtype=bool)
    kept = np.empty((count, n_steps) + sample_shape, dtype=runner.dtype) if keep_images else None
    inpaint_timer = [0.0]
    for image in range(count):
        patch_masks = ranks[image][None, :] < counts[:, None]               # (K, P)
        pixel_masks = grid.expand(patch_masks)                              # (K, H, W)
        masks[image, 1:1 + len(counts)] = pixel_masks
        perturbed = _perturbed_steps(raw_all[image], pixel_masks, mode, reperturb, grid, value_range, fill,
                                     lambda: image_seed(seed, image, 1), inpaint_radius, inpaint_timer)
        model_inputs = metadata.preprocess(perturbed.reshape((len(counts),) + sample_shape).astype(runner.dtype))
        stack = [images[image].reshape((1,) + sample_shape), model_inputs]
        if final_gray:
            masks[image, -1] = True
            stack.append(gray_input)
        stack = np.concatenate(stack).astype(runner.dtype, copy=False)
        scorer.add(stack)
        if kept is not None:
            kept[image] = stack
        if progress is not None:
            progress(1)
    outputs = scorer.result().reshape(count, n_steps, -1)
    targets = _resolve_targets(target, outputs[:, 0])
    scores = _select_scores(outputs, targets, score)
    if not np.all(np.isfinite(scores)):
        bad = np.flatnonzero(~np.all(np.isfinite(scores), axis=1))
        raise InputValueError(f"the model returned NaN or inf scores for image(s) {bad[:10].tolist()}")
    timings = {"model": runner.seconds, "inpaint": inpaint_timer[0], "total": time.perf_counter() - start}
    return PerturbationCurve(
        scores=scores, counts=step_counts, patch_count=grid.count, masks=masks, targets=targets, order=order,
        patch_scores=patch_scores, sort="lrf" if sort == "lerf" else sort, mode=mode, patch_size=grid.patch_size,
        schedule=schedule if isinstance(schedule, str) else "explicit", score=score, gray_step=bool(final_gray),
        reperturb=bool(reperturb), images=kept, model_calls=runner.calls, timings=timings)
