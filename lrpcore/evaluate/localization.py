"""Kohlbrenner et al. 2020's localisation protocol: μ against the object's bounding box, by box size.

Kohlbrenner, Bauer, Nakajima, Binder, Samek & Lapuschkin, "Towards best practice in explaining
neural network decisions with LRP" (IJCNN 2020), score a heatmap R by the share of its positive
relevance inside the ground-truth bounding box,

    μ = R_in / R_tot,   R_in = Σ_{p ∈ box} R⁺_p,   R_tot = Σ_p R⁺_p,

(:func:`~lrpcore.evaluate.metrics.inside_total_ratio`), and by the size-corrected
μ_w = μ · S_tot / S_in (:func:`~lrpcore.evaluate.metrics.weighted_inside_total_ratio`). Because
a large box catches relevance by its size alone, they report μ as a function of the relative
box size S_in / S_tot in 100 equal intervals of [0, 1] (their Fig. 3) and the means over small
boxes, μ_{≤0.25} and μ_{≤0.5} (boxes covering at most a quarter or half of the image; their Table 1).
The baseline every method must beat is the uniform attribution (``lrpcore.baselines.uniform``), whose
μ is the box's share of the image and whose μ_w is 1.

This module provides

- :func:`box_sizes`, :func:`mu_by_box_size` (:class:`BoxSizeCurve`) and :func:`localization_scores`
  (μ_w, μ, μ_{≤0.25}, μ_{≤0.5} of one method);
- the composites of the comparison, built with the public :class:`~lrpcore.Composite` API:
  :func:`lrp_z`, :func:`alpha_beta`, :func:`cmp` (LRP-CMP with LRP_♭ on the first ``flat_layers``
  layers: the paper's "+♭" variants; ``flat_layers=0`` is plain CMP) and :func:`lrp_cam`; the paper's
  LRP_♭ ("LRP_b" where the ♭ is lost in print) is the flat rule, which spreads an output's relevance
  evenly over its receptive field (:class:`~lrpcore.rules.Flat`); applied through the whole
  convolutional stack under LRP_z on the dense layers it upsamples the relevance of the last
  convolutional feature map like a class activation map, hence LRP_CAM;
- :func:`object_context_occlusion`: the check of the paper's Fig. 2 whether the model uses the object
  or its context, by filling the box, or everything outside it, with the training mean.

Boxes are (y0, x0, y1, x1), half-open, as ``lrpcore.data.shapes`` gives them (``Dataset.boxes``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np

from ..backend import to_numpy
from .. import composites as presets
from ..composites import Composite
from ..errors import InputValueError, ShapeError
from ..layers import AvgPool2d, Conv2d, Dense, MaxPool2d
from ..layers1d import AvgPool1d, Conv1d, MaxPool1d
from ..rules import AlphaBeta, Epsilon, Flat, Rule, Zero
from .metrics import boxes_to_masks, inside_total_ratio, weighted_inside_total_ratio

__all__ = ["BoxSizeCurve", "box_sizes", "mu_by_box_size", "localization_scores", "lrp_z", "alpha_beta", "cmp",
           "lrp_cam", "comparison_methods", "object_context_occlusion", "OcclusionCheck", "SMALL_BOXES"]

#: The box-size limits of Kohlbrenner et al.'s Table 1 columns μ_{≤0.25} and μ_{≤0.5}.
SMALL_BOXES = (0.25, 0.5)


# --- μ by box size -------------------------------------------------------------------------------
def box_sizes(boxes: Any, shape: tuple[int, int]) -> np.ndarray:
    """Relative box sizes S_in / S_tot (N,) of boxes (N, 4) = (y0, x0, y1, x1) in an image of ``shape`` (H, W)."""
    boxes = np.asarray(to_numpy(boxes))
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ShapeError(f"boxes must be (N, 4) as (y0, x0, y1, x1), got shape {boxes.shape}")
    height, width = shape
    y0, x0 = np.clip(boxes[:, 0], 0, height), np.clip(boxes[:, 1], 0, width)
    y1, x1 = np.clip(boxes[:, 2], 0, height), np.clip(boxes[:, 3], 0, width)
    area = np.maximum(y1 - y0, 0) * np.maximum(x1 - x0, 0)
    if np.any(area == 0):
        raise InputValueError(f"box(es) {np.flatnonzero(area == 0)[:10].tolist()} are empty inside a "
                              f"{height}×{width} image")
    return area / float(height * width)


@dataclasses.dataclass
class BoxSizeCurve:
    """μ per box-size interval: ``edges`` (B + 1,) of [0, 1]; ``mean`` (B,) the mean μ of the images whose
    relative box size lies in [edges[b], edges[b + 1]) (the last interval includes 1), NaN where ``count``
    (B,) is 0."""

    edges: np.ndarray
    mean: np.ndarray
    count: np.ndarray

    @property
    def centres(self) -> np.ndarray:
        return (self.edges[:-1] + self.edges[1:]) / 2

    def filled(self) -> tuple[np.ndarray, np.ndarray]:
        """(centres, means) of the intervals that hold at least one image."""
        keep = self.count > 0
        return self.centres[keep], self.mean[keep]


def mu_by_box_size(mu: Any, sizes: Any, bins: int = 100) -> BoxSizeCurve:
    """μ averaged per relative box size in ``bins`` equal intervals of [0, 1] (Kohlbrenner et al., Fig. 3)."""
    mu = np.asarray(mu, dtype=np.float64).reshape(-1)
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1)
    if mu.shape != sizes.shape:
        raise ShapeError(f"mu {mu.shape} and sizes {sizes.shape} must hold one value per image")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive int, got {bins!r}")
    if np.any((sizes <= 0) | (sizes > 1)):
        raise InputValueError("relative box sizes must lie in (0, 1]")
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.minimum((sizes * bins).astype(np.int64), bins - 1)
    count = np.bincount(index, minlength=bins)
    total = np.bincount(index, weights=mu, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return BoxSizeCurve(edges=edges, mean=mean, count=count)


def localization_scores(relevance: Any, boxes: Any, bins: int = 100,
                        channel_reduce: Literal["sum", "luminance"] = "sum") -> dict[str, Any]:
    """One method's row of Kohlbrenner et al.'s Table 1 on heatmaps (N, C, H, W) or (N, H, W) and boxes (N, 4).

    Returns ``mu_w``, ``mu`` (means over all images), ``mu_le_0.25`` and ``mu_le_0.5`` (mean μ over the
    images whose box covers at most that share of the image; NaN if there is none), ``n_le_0.25``,
    ``n_le_0.5``, the per-image arrays ``per_image_mu``/``per_image_mu_w``/``sizes``, and the
    :class:`BoxSizeCurve` ``by_size``. Channels are pooled first (``channel_reduce``).
    """
    heat = np.asarray(to_numpy(relevance), dtype=np.float64)
    shape = heat.shape[-2:]
    masks = boxes_to_masks(boxes, shape)
    sizes = box_sizes(boxes, shape)
    mu = inside_total_ratio(heat, masks, channel_reduce)
    mu_w = weighted_inside_total_ratio(heat, masks, channel_reduce)
    scores: dict[str, Any] = {"mu_w": float(mu_w.mean()), "mu": float(mu.mean())}
    for limit in SMALL_BOXES:
        small = sizes <= limit
        scores[f"mu_le_{limit}"] = float(mu[small].mean()) if small.any() else float("nan")
        scores[f"n_le_{limit}"] = int(small.sum())
    scores.update(per_image_mu=mu, per_image_mu_w=mu_w, sizes=sizes, by_size=mu_by_box_size(mu, sizes, bins))
    return scores


# --- the composites of the comparison --------------------------------------------------------------
_POOLS = (MaxPool2d, MaxPool1d, AvgPool2d, AvgPool1d)


def _pooling(model: Any, skip: range | None = None) -> dict[int, Rule]:
    """The pooling layers' rules as lrpcore's zennit-style presets give them (``epsilon_plus``: max pooling
    routed to the window's winner, average pooling LRP-ε with ε = 1e-6), by index, outside ``skip``. Taken
    from the preset so that these composites follow whatever the presets decide for pools."""
    reference = presets.epsilon_plus().rules(model)
    return {index: reference[index] for index, layer in enumerate(model.layers)
            if isinstance(layer, _POOLS) and (skip is None or index not in skip)}


def _weighted(model: Any) -> list[int]:
    return [index for index, layer in enumerate(model.layers) if isinstance(layer, (Conv2d, Conv1d, Dense))]


def lrp_z(model: Any) -> Composite:
    """LRP_z: the basic rule R_j = Σ_k z_jk / z_k · R_k (LRP-0, bias included) on every weighted layer."""
    return Composite(by_index=_pooling(model), by_type={Conv2d: Zero(), Conv1d: Zero(), Dense: Zero()}, name="LRP_z")


def alpha_beta(model: Any, alpha: int = 1) -> Composite:
    """LRP_αβ with (α, β) = (1, 0) or (2, 1) on every weighted layer (the paper's uniform αβ rows)."""
    if alpha not in (1, 2):
        raise ValueError(f"alpha must be 1 (α1β0) or 2 (α2β1), got {alpha!r}")
    rule = AlphaBeta(alpha, alpha - 1)
    return Composite(by_index=_pooling(model), by_type={Conv2d: rule, Conv1d: rule, Dense: rule},
                     name=f"LRP_α{alpha}β{alpha - 1}")


def cmp(model: Any, alpha: int = 2, flat_layers: int = 0, epsilon: float = 1e-6) -> Composite:
    """LRP-CMP: LRP-ε on dense layers, LRP_αβ (α = 1 or 2) on convolutions, and LRP_♭ (flat) on the first
    ``flat_layers`` weighted layers and every layer below the last of them (pooling included, so no
    window whose maximum is 0 absorbs the evenly spread relevance). ``flat_layers=1`` equals
    ``lrpcore.composites.cmp(alpha, flat_input=True)``; 0 is plain CMP."""
    if alpha not in (1, 2):
        raise ValueError(f"alpha must be 1 (α1β0) or 2 (α2β1), got {alpha!r}")
    weighted = _weighted(model)
    if isinstance(flat_layers, bool) or not isinstance(flat_layers, (int, np.integer)) or \
            not 0 <= flat_layers <= len(weighted):
        raise ValueError(f"flat_layers must be an int in 0..{len(weighted)} (the model's weighted layers), "
                         f"got {flat_layers!r}")
    conv = AlphaBeta(alpha, alpha - 1)
    span = range(0, weighted[flat_layers - 1] + 1) if flat_layers else None
    by_index: dict[Any, Rule] = dict(_pooling(model, skip=span))
    if span is not None:
        by_index[span] = Flat()
    suffix = f" + ♭{flat_layers}" if flat_layers else ""
    return Composite(by_index=by_index, by_type={Conv2d: conv, Conv1d: conv, Dense: Epsilon(epsilon)},
                     name=f"CMP α{alpha}β{alpha - 1}{suffix}")


def lrp_cam(model: Any) -> Composite:
    """LRP_CAM: LRP_z on the dense layers and LRP_♭ (flat) on every linear layer below the first dense one
    (the convolutional stack with its pooling), so the relevance of the last feature map is spread
    evenly over the receptive fields, as a class activation map is upsampled."""
    first_dense = next((index for index, layer in enumerate(model.layers) if isinstance(layer, Dense)), None)
    if first_dense is None or first_dense == 0:
        raise ValueError("LRP_CAM needs a convolutional stack below the first Dense layer")
    span = range(0, first_dense)
    return Composite(by_index={**_pooling(model, skip=span), span: Flat()}, by_type={Dense: Zero()}, name="LRP_CAM")


def comparison_methods(model: Any, flat_layers: int = 1) -> dict[str, Any]:
    """The methods of Kohlbrenner et al.'s Table 1 for ``model``: name → Composite or baseline name
    (``lrpcore.baselines.attribute`` takes either)."""
    return {
        "CMP α1": cmp(model, 1), "CMP α2": cmp(model, 2),
        f"CMP α1 + ♭{flat_layers}": cmp(model, 1, flat_layers), f"CMP α2 + ♭{flat_layers}": cmp(model, 2, flat_layers),
        "LRP_α1β0": alpha_beta(model, 1), "LRP_α2β1": alpha_beta(model, 2), "LRP_z": lrp_z(model),
        "LRP_CAM": lrp_cam(model), "guided backprop": "guided_backprop", "uniform": "uniform",
    }


# --- object versus context (Fig. 2) ----------------------------------------------------------------
@dataclasses.dataclass
class OcclusionCheck:
    """Target scores (N,) of the original images, of the images with the box filled (``object_removed``)
    and with everything outside the box filled (``context_removed``); ``score`` says which score
    (logit or softmax probability), ``fill`` the raw fill value per channel."""

    original: np.ndarray
    object_removed: np.ndarray
    context_removed: np.ndarray
    targets: np.ndarray
    score: str
    fill: np.ndarray

    def summary(self) -> dict[str, float]:
        """Means over the images, and how often removing the object hurts more than removing the context."""
        return {"original": float(self.original.mean()), "object_removed": float(self.object_removed.mean()),
                "context_removed": float(self.context_removed.mean()),
                "object_matters_more": float(np.mean(self.object_removed < self.context_removed))}


def object_context_occlusion(model: Any, raw: Any, boxes: Any, target: Any = None, fill: Any = None,
                             score: Literal["logit", "probability"] = "probability") -> OcclusionCheck:
    """Kohlbrenner et al.'s Fig. 2 check: does the model decide from the object or from its context?

    ``raw``: images (N, C, H, W) in the model's raw value range (before ``metadata.preprocess``);
    ``boxes`` (N, 4). Each image is scored as it is, with its box filled with ``fill``, and with
    everything outside the box filled. ``fill``: raw values, one number or one per channel; default
    the training mean, ``model.metadata.mean`` (the preprocessing mean, which is the mean of the
    training images for the shipped models). ``target``: None (the predicted class of the original)
    or class ids.
    """
    images = np.asarray(to_numpy(raw), dtype=np.float64)
    if images.ndim != 4:
        raise ShapeError(f"object_context_occlusion needs raw images (N, C, H, W), got shape {images.shape}")
    metadata = model.metadata
    if fill is None:
        if metadata.mean is None:
            raise InputValueError("the model's metadata has no training mean (metadata.mean); pass fill= "
                                  "(the raw value the box or its context is filled with)")
        fill = metadata.mean
    values = np.asarray(fill, dtype=np.float64).reshape(-1)
    channels = images.shape[1]
    if values.size not in (1, channels):
        raise ShapeError(f"fill must be one number or one per channel ({channels}), got {fill!r}")
    values = np.broadcast_to(values, (channels,)).reshape(1, channels, 1, 1)
    masks = boxes_to_masks(boxes, images.shape[-2:])[:, None]
    box_sizes(boxes, images.shape[-2:])              # checks the boxes are not empty
    if len(masks) != len(images):
        raise ShapeError(f"{len(masks)} boxes for {len(images)} images")
    variants = [images, np.where(masks, values, images), np.where(masks, images, values)]
    dtype = np.float64 if "float64" in str(model.dtype) else np.float32
    outputs = [np.asarray(to_numpy(model.forward(np.asarray(metadata.preprocess(variant), dtype=dtype))),
                          dtype=np.float64) for variant in variants]
    if score == "probability":
        outputs = [np.exp(out - out.max(axis=1, keepdims=True)) for out in outputs]
        outputs = [out / out.sum(axis=1, keepdims=True) for out in outputs]
    elif score != "logit":
        raise ValueError(f"score must be 'logit' or 'probability', got {score!r}")
    if target is None:
        targets = outputs[0].argmax(axis=1)
    else:
        targets = np.broadcast_to(np.asarray(target, dtype=np.int64), (len(images),))
        if targets.min() < 0 or targets.max() >= outputs[0].shape[1]:
            raise InputValueError(f"target {np.unique(targets).tolist()} out of range for {outputs[0].shape[1]} "
                                  "classes")
    rows = np.arange(len(images))
    picked = [out[rows, targets] for out in outputs]
    return OcclusionCheck(original=picked[0], object_removed=picked[1], context_removed=picked[2],
                          targets=np.asarray(targets), score=score, fill=values.reshape(-1))
