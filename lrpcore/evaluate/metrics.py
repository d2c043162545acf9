"""Heatmap metrics against ground truth (localisation) and on their own (sparsity, complexity).

All take heatmaps (N, C, *spatial) or (N, *spatial), any backend (copied to NumPy, float64),
and return one value per image, shape (N,). Localisation metrics pool channels first
(``channel_reduce="sum"``: relevance is additive) and take ground-truth masks (N, *spatial)
or (N, 1, *spatial), ``True`` on the object. Undefined cases (an empty mask, no positive
relevance, an all-zero heatmap) raise :class:`~lrpcore.errors.InputValueError` naming the
images instead of returning NaN.

Sources: Arras, Osman & Samek 2022, "CLEVR-XAI: a benchmark dataset for the ground truth
evaluation of neural network explanations", Information Fusion 81 (mass and rank accuracy);
Kohlbrenner et al. 2020, "Towards best practice in explaining neural network decisions with
LRP", IJCNN (μ and μ_w); Hurley & Rickard 2009, "Comparing measures of sparsity", IEEE Trans.
Inf. Theory 55(10), used for heatmaps by Chalasani et al. 2020 (Gini index); Bhatt, Weller &
Moura 2020, "Evaluating and aggregating feature-based model explanations", IJCAI (entropy).
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ..backend import to_numpy
from ..errors import InputValueError, ShapeError
from .patches import reduce_channels

__all__ = [
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "inside_total_ratio",
    "weighted_inside_total_ratio",
    "gini",
    "entropy",
    "boxes_to_masks",
]


def _pooled(relevance: Any, masks: Any, channel_reduce: str) -> tuple[np.ndarray, np.ndarray]:
    """(heatmaps, masks) flattened to (N, D) float64 / bool, channels pooled, shapes checked."""
    masks = np.asarray(to_numpy(masks))
    heat = np.asarray(to_numpy(relevance), dtype=np.float64)
    if masks.dtype != bool:
        if not np.all(np.isin(masks, (0, 1))):
            raise InputValueError(f"masks must be boolean (or 0/1), got dtype {masks.dtype} with other values")
        masks = masks.astype(bool)
    if masks.ndim == heat.ndim and masks.ndim >= 3 and masks.shape[1] == 1 and heat.shape[1] != 1:
        masks = masks[:, 0]
    elif masks.ndim == heat.ndim and masks.ndim >= 3 and masks.shape[1] == 1:
        masks, heat = masks[:, 0], heat[:, 0]
    spatial = masks.ndim - 1
    if spatial < 1:
        raise ShapeError(f"masks must be (N, ...) with at least one spatial axis, got shape {masks.shape}")
    heat = reduce_channels(heat, channel_reduce, spatial_ndim=spatial)  # type: ignore[arg-type]
    if heat.shape != masks.shape:
        raise ShapeError(f"relevance {np.shape(relevance)} does not match masks {masks.shape} "
                         f"(after pooling channels: {heat.shape})")
    if not np.all(np.isfinite(heat)):
        raise InputValueError(f"relevance of shape {np.shape(relevance)} contains NaN or inf values")
    count = heat.shape[0]
    return heat.reshape(count, -1), masks.reshape(count, -1)


def _nonzero(values: np.ndarray, what: str) -> None:
    bad = np.flatnonzero(values == 0)
    if bad.size:
        raise InputValueError(f"image(s) {bad[:10].tolist()} have {what}; the metric is undefined there")


def relevance_mass_accuracy(relevance: Any, masks: Any, positive: bool = True,
                            channel_reduce: Literal["sum", "luminance"] = "sum") -> np.ndarray:
    """Relevance mass accuracy (Arras et al. 2022): the share of relevance inside the ground truth.

    RMA = Σ_{p ∈ GT} R_p / Σ_p R_p, with R the channel-pooled heatmap; ``positive=True`` uses
    R_p⁺ = max(R_p, 0) in both sums (then RMA ∈ [0, 1] and equals μ of
    :func:`inside_total_ratio`); ``positive=False`` is the plain ratio (Quantus'
    RelevanceMassAccuracy without ``abs``). 1 means all (positive) relevance lies on the object.
    """
    heat, masks = _pooled(relevance, masks, channel_reduce)
    _nonzero(masks.sum(axis=1), "an empty ground-truth mask")
    if positive:
        heat = np.maximum(heat, 0.0)
    total = heat.sum(axis=1)
    _nonzero(total, "zero total (positive) relevance")
    return (heat * masks).sum(axis=1) / total


def relevance_rank_accuracy(relevance: Any, masks: Any,
                            channel_reduce: Literal["sum", "luminance"] = "sum") -> np.ndarray:
    """Relevance rank accuracy (Arras et al. 2022): of the K = |GT| highest-relevance positions,
    the fraction inside the ground truth, |top_K(R) ∩ GT| / K.

    Ties at the K-th value are broken by position (row-major, first wins), deterministically.
    """
    heat, masks = _pooled(relevance, masks, channel_reduce)
    sizes = masks.sum(axis=1)
    _nonzero(sizes, "an empty ground-truth mask")
    index = np.broadcast_to(np.arange(heat.shape[1]), heat.shape)
    ranking = np.lexsort((index, -heat), axis=1)                  # descending relevance, ties by position
    hits_in_order = np.take_along_axis(masks, ranking, axis=1)
    within_top = np.arange(heat.shape[1])[None, :] < sizes[:, None]
    return (hits_in_order & within_top).sum(axis=1) / sizes


def inside_total_ratio(relevance: Any, masks: Any,
                       channel_reduce: Literal["sum", "luminance"] = "sum") -> np.ndarray:
    """μ = R_in / R_tot (Kohlbrenner et al. 2020): positive relevance inside the object (box or
    mask) over all positive relevance, R_in = Σ_{p ∈ GT} R_p⁺, R_tot = Σ_p R_p⁺. In [0, 1]."""
    return relevance_mass_accuracy(relevance, masks, positive=True, channel_reduce=channel_reduce)


def weighted_inside_total_ratio(relevance: Any, masks: Any,
                                channel_reduce: Literal["sum", "luminance"] = "sum") -> np.ndarray:
    """μ_w = μ · S_tot / S_in (Kohlbrenner et al. 2020): μ corrected for the object's size,
    with S_in the object's and S_tot the image's pixel count. 1 = no better than relevance
    spread evenly; > 1 = concentrated on the object (at most S_tot / S_in)."""
    heat, flat_masks = _pooled(relevance, masks, channel_reduce)
    sizes = flat_masks.sum(axis=1)
    return inside_total_ratio(relevance, masks, channel_reduce) * flat_masks.shape[1] / sizes


def _flat(relevance: Any, channel_reduce: str | None) -> np.ndarray:
    heat = np.asarray(to_numpy(relevance), dtype=np.float64)
    if heat.ndim < 2:
        raise ShapeError(f"relevance must be (N, ...) with a batch axis, got shape {heat.shape}")
    if channel_reduce is not None:
        heat = reduce_channels(heat, channel_reduce, spatial_ndim=heat.ndim - 2)  # type: ignore[arg-type]
    if not np.all(np.isfinite(heat)):
        raise InputValueError(f"relevance of shape {heat.shape} contains NaN or inf values")
    return np.abs(heat.reshape(heat.shape[0], -1))


def gini(relevance: Any, channel_reduce: Literal["sum", "luminance"] | None = None) -> np.ndarray:
    """Gini index of |R| per image (sparseness; Hurley & Rickard 2009, Chalasani et al. 2020).

    With a_(1) ≤ … ≤ a_(n) the sorted absolute values: G = Σ_k (2k − n − 1) a_(k) / (n Σ_k a_k).
    0 for a uniform heatmap, (n − 1)/n for a single non-zero value; higher = sparser. Every
    element counts unless ``channel_reduce`` pools channels first. (Quantus' Sparseness adds
    1e-7 to every value, which lowers it slightly.)
    """
    values = np.sort(_flat(relevance, channel_reduce), axis=1)
    n = values.shape[1]
    total = values.sum(axis=1)
    _nonzero(total, "an all-zero heatmap")
    weights = 2 * np.arange(1, n + 1) - n - 1
    return (values * weights).sum(axis=1) / (n * total)


def entropy(relevance: Any, channel_reduce: Literal["sum", "luminance"] | None = None) -> np.ndarray:
    """Shannon entropy of the fractional contributions p_k = |R_k| / Σ_j |R_j| (complexity;
    Bhatt et al. 2020): H = −Σ_k p_k ln p_k (natural log, 0 ln 0 = 0). 0 for a single non-zero
    value, ln n for a uniform heatmap; lower = simpler."""
    values = _flat(relevance, channel_reduce)
    total = values.sum(axis=1, keepdims=True)
    _nonzero(total[:, 0], "an all-zero heatmap")
    shares = values / total
    logs = np.log(np.where(shares > 0, shares, 1.0))
    return -(shares * logs).sum(axis=1)


def boxes_to_masks(boxes: Any, shape: tuple[int, int]) -> np.ndarray:
    """Bounding boxes (N, 4) as (y0, x0, y1, x1), half-open, → boolean masks (N, H, W)."""
    boxes = np.asarray(to_numpy(boxes))
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ShapeError(f"boxes must be (N, 4) as (y0, x0, y1, x1), got shape {boxes.shape}")
    height, width = shape
    rows = np.arange(height)[None, :, None]
    cols = np.arange(width)[None, None, :]
    y0, x0, y1, x1 = (boxes[:, k, None, None] for k in range(4))
    return (rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1)
