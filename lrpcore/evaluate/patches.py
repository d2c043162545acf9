"""Patches for region perturbation: the grid, per-patch relevance scores and the flipping order.

A heatmap is first reduced to one value per pixel (:func:`reduce_channels`), then cut into
non-overlapping ``patch_size`` patches (:class:`PatchGrid`). Each patch is scored by the
*sum* of the relevance it covers and the patches are ranked by that score
(:func:`patch_order`), as in the region perturbation of Samek et al. 2017
("Evaluating the visualization of what a deep neural network has learned", IEEE TNNLS 28(11)).

Sizes that do not divide the image: the grid is anchored at the top-left pixel and the
last row/column of patches is cut short (``ceil(H / ph) × ceil(W / pw)`` patches, the edge
ones smaller). Every pixel belongs to exactly one patch, so flipping all patches flips the
whole image. Because patches are scored by their *sum*, a small edge patch ranks by the
relevance it actually holds. (Quantus pads the image symmetrically instead, which shifts
the grid by half the remainder; on sizes that divide the image both grids coincide.)

Ties are broken deterministically by the patch index (row-major, top-left first): among
patches of equal score the one with the smaller index is flipped first, for MoRF and LRF alike.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np

from ..backend import to_numpy
from ..errors import InputValueError, ShapeError

__all__ = ["LUMINANCE_WEIGHTS", "PatchGrid", "reduce_channels", "patch_order", "image_seed"]

#: ITU-R BT.601 luma weights for (R, G, B), the channel reduction of the thesis code.
LUMINANCE_WEIGHTS = (0.299, 0.587, 0.114)

ChannelReduce = Literal["sum", "luminance"]
Sort = Literal["morf", "lrf", "random"]


def reduce_channels(relevance, channel_reduce: ChannelReduce = "sum", spatial_ndim: int = 2) -> np.ndarray:
    """Reduce a heatmap (N, C, spatial...) to one value per position (N, spatial...), float64 NumPy.

    ``"sum"``: R_p = Σ_c R_{c,p} (relevance is additive, so this keeps the total).
    ``"luminance"``: R_p = 0.299 R_{R,p} + 0.587 R_{G,p} + 0.114 R_{B,p} (needs 3 channels; the
    thesis code's choice). A heatmap that already has no channel axis (N, spatial...) is returned as is.
    """
    heat = np.asarray(to_numpy(relevance), dtype=np.float64)
    if heat.ndim == spatial_ndim + 1:
        return heat
    if heat.ndim != spatial_ndim + 2:
        raise ShapeError(f"relevance must have shape (N, C, {', '.join('HW'[:spatial_ndim])}) or "
                         f"(N, {', '.join('HW'[:spatial_ndim])}), got {heat.shape}")
    if not np.all(np.isfinite(heat)):
        raise InputValueError(f"relevance of shape {heat.shape} contains NaN or inf values")
    if channel_reduce == "sum":
        return heat.sum(axis=1)
    if channel_reduce == "luminance":
        if heat.shape[1] != 3:
            raise ShapeError(f"channel_reduce='luminance' needs 3 (RGB) channels, relevance has shape {heat.shape}")
        weights = np.asarray(LUMINANCE_WEIGHTS).reshape((1, 3) + (1,) * spatial_ndim)
        return (heat * weights).sum(axis=1)
    raise ValueError(f"channel_reduce must be 'sum' or 'luminance', got {channel_reduce!r}")


def _patch_pair(patch_size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(patch_size, (int, np.integer)) and not isinstance(patch_size, bool):
        pair = (int(patch_size), int(patch_size))
    else:
        try:
            pair = tuple(int(value) for value in patch_size)  # type: ignore[union-attr]
        except TypeError:
            raise ValueError(f"patch_size must be an int or a pair (height, width), got {patch_size!r}") from None
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"patch_size must be a positive int or a pair of them, got {patch_size!r}")
    return pair  # type: ignore[return-value]


@dataclasses.dataclass(frozen=True)
class PatchGrid:
    """Non-overlapping patches of ``patch_size`` = (ph, pw) over an ``height × width`` image.

    Patch p = r·cols + c covers rows [r·ph, min((r+1)·ph, H)) and columns
    [c·pw, min((c+1)·pw, W)); edge patches are smaller when the size does not divide.
    """

    height: int
    width: int
    patch_size: tuple[int, int]

    @classmethod
    def build(cls, height: int, width: int, patch_size: int | tuple[int, int]) -> "PatchGrid":
        pair = _patch_pair(patch_size)
        if height < 1 or width < 1:
            raise ShapeError(f"image must be at least 1×1, got {height}×{width}")
        if pair[0] > height or pair[1] > width:
            raise ShapeError(f"patch_size {pair} is larger than the image ({height}×{width})")
        return cls(int(height), int(width), pair)

    @property
    def rows(self) -> int:
        return math.ceil(self.height / self.patch_size[0])

    @property
    def cols(self) -> int:
        return math.ceil(self.width / self.patch_size[1])

    @property
    def count(self) -> int:
        """Number of patches P."""
        return self.rows * self.cols

    def patch_index(self) -> np.ndarray:
        """(H, W) int array: the patch each pixel belongs to (computed once per grid; read-only)."""
        cached = self.__dict__.get("_patch_index")
        if cached is None:
            row_of = np.arange(self.height) // self.patch_size[0]
            col_of = np.arange(self.width) // self.patch_size[1]
            cached = row_of[:, None] * self.cols + col_of[None, :]
            cached.flags.writeable = False
            self.__dict__["_patch_index"] = cached
        return cached

    def patch_areas(self) -> np.ndarray:
        """(P,) number of pixels in each patch (smaller at the cut edges)."""
        return np.bincount(self.patch_index().ravel(), minlength=self.count)

    def sums(self, heat: np.ndarray) -> np.ndarray:
        """Per-patch sums of a one-channel heatmap (N, H, W) → (N, P), float64."""
        heat = np.asarray(heat, dtype=np.float64)
        if heat.shape[1:] != (self.height, self.width):
            raise ShapeError(f"heatmap must be (N, {self.height}, {self.width}), got {heat.shape}")
        count = heat.shape[0]
        pad_h = self.rows * self.patch_size[0] - self.height
        pad_w = self.cols * self.patch_size[1] - self.width
        if pad_h or pad_w:  # zeros add nothing to a sum, so padding implements the cut edge patches
            heat = np.pad(heat, ((0, 0), (0, pad_h), (0, pad_w)))
        blocks = heat.reshape(count, self.rows, self.patch_size[0], self.cols, self.patch_size[1])
        return blocks.sum(axis=(2, 4)).reshape(count, self.count)

    def expand(self, patch_mask: np.ndarray) -> np.ndarray:
        """Patch-level booleans (..., P) → pixel masks (..., H, W)."""
        patch_mask = np.asarray(patch_mask, dtype=bool)
        if patch_mask.shape[-1] != self.count:
            raise ShapeError(f"patch mask must end in {self.count} patches, got shape {patch_mask.shape}")
        return patch_mask[..., self.patch_index()]


def image_seed(seed: int, image: int, *stream: int) -> np.random.Generator:
    """The generator of image ``image`` (and sub-stream ``stream``) for ``seed``.

    ``SeedSequence(seed, spawn_key=(image, *stream))``: image i's random draws do not
    depend on how many images are evaluated together or in which batch.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(image),) + tuple(stream)))


def patch_order(scores: np.ndarray, sort: Sort = "morf", seed: int = 0) -> np.ndarray:
    """Flipping order of the patches: (N, P) patch indices, first flipped first.

    ``"morf"`` (most relevant first): descending score; ``"lrf"`` (least relevant first):
    ascending score; ties by ascending patch index in both. ``"random"``: an independent
    permutation per image from :func:`image_seed` (stream 0), ignoring the scores.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ShapeError(f"patch scores must be (N, P), got shape {scores.shape}")
    count, patches = scores.shape
    index = np.broadcast_to(np.arange(patches), scores.shape)
    if sort == "morf":
        # lexsort sorts by the last key first: primary −score, secondary the patch index
        return np.lexsort((index, -scores), axis=1)
    if sort in ("lrf", "lerf"):
        return np.lexsort((index, scores), axis=1)
    if sort == "random":
        return np.stack([image_seed(seed, image, 0).permutation(patches) for image in range(count)]) \
            if count else np.zeros((0, patches), dtype=np.int64)
    raise ValueError(f"sort must be 'morf', 'lrf' or 'random', got {sort!r}")
