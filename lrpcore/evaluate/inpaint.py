"""Telea inpainting of masked image regions through OpenCV, in the model's raw value range.

``cv2.inpaint(image, mask, radius, cv2.INPAINT_TELEA)`` (Telea 2004, "An image inpainting
technique based on the fast marching method", J. Graphics Tools 9(1)) fills masked pixels
from their known neighbours. It works on 8-bit images, so an image is taken from *raw*
values in ``value_range`` (the model's input before ``metadata.preprocess``) to uint8:
u = round(255 · (v − low) / (high − low)), clipped to [0, 255]; inpainted, and mapped back.
Only the masked pixels take the inpainted (8-bit) values; all other pixels keep their exact
float values (the thesis code rounded the whole image, a difference of at most half a grey level).

Telea's method treats channels independently (checked in the tests), so RGB vs. BGR order
does not matter; images with 1 or 3 channels go to OpenCV in one call, others one channel at a time.

A mask covering the whole image leaves no known pixel to propagate from, and OpenCV returns
the input unchanged. Here such a mask instead yields the constant ``fill`` (by default the
value-range midpoint, the "gray" image), so flipping every patch really removes the image.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError

__all__ = ["inpaint_telea", "TeleaSource", "to_uint8", "from_uint8"]


def _cv2():
    try:
        import cv2
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise ImportError("mode='inpaint' needs OpenCV: pip install opencv-python-headless "
                          "(or pip install lrpcore[eval])") from error
    return cv2


def to_uint8(raw: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Raw values in ``value_range`` → uint8 grey levels 0…255 (clipped, rounded to nearest)."""
    low, high = value_range
    scaled = (np.asarray(raw, dtype=np.float64) - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def from_uint8(levels: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """uint8 grey levels → raw values in ``value_range`` (float64)."""
    low, high = value_range
    return low + np.asarray(levels, dtype=np.float64) * ((high - low) / 255.0)


def _telea_levels(levels: np.ndarray, mask: np.ndarray, radius: int, timer: list[float] | None,
                  hwc: np.ndarray | None = None) -> np.ndarray:
    """OpenCV Telea on uint8 levels (C, H, W) with a (H, W) bool mask → inpainted uint8 levels (C, H, W).

    ``hwc``: the same levels as a contiguous (H, W, C) array, when the caller has it already.
    """
    import time

    cv2 = _cv2()
    mask_levels = np.ascontiguousarray(mask).view(np.uint8)
    start = time.perf_counter()
    if levels.shape[0] in (1, 3):
        hwc = np.ascontiguousarray(np.moveaxis(levels, 0, -1)) if hwc is None else hwc
        filled = cv2.inpaint(hwc, mask_levels, radius, cv2.INPAINT_TELEA)
        filled = np.moveaxis(filled.reshape(hwc.shape), -1, 0)  # OpenCV drops the axis of 1-channel images
    else:
        filled = np.stack([cv2.inpaint(np.ascontiguousarray(channel), mask_levels, radius, cv2.INPAINT_TELEA)
                           for channel in levels])
    if timer is not None:
        timer[0] += time.perf_counter() - start
    return filled


def _full_fill(shape: tuple[int, ...], value_range: tuple[float, float], fill: float | np.ndarray | None) -> np.ndarray:
    low, high = value_range
    value = np.asarray((low + high) / 2 if fill is None else fill, dtype=np.float64)
    if value.ndim == 1:  # one value per channel
        value = value.reshape(-1, 1, 1)
    return np.broadcast_to(value, shape)


def _check(raw: np.ndarray, mask: np.ndarray, value_range: tuple[float, float]) -> tuple[float, float]:
    if raw.ndim != 3 or mask.shape != raw.shape[1:]:
        raise ShapeError(f"inpainting needs an image (C, H, W) and a mask (H, W), got {raw.shape} and {mask.shape}")
    low, high = (float(bound) for bound in value_range)
    if not high > low:
        raise ValueError(f"value_range must have low < high, got {value_range!r}")
    return low, high


def inpaint_telea(raw: np.ndarray, mask: np.ndarray, value_range: tuple[float, float], radius: int = 3,
                  fill: float | np.ndarray | None = None, timer: list[float] | None = None) -> np.ndarray:
    """Inpaint the pixels under ``mask`` in one raw image (C, H, W) with Telea's method; returns (C, H, W) float64.

    ``radius``: OpenCV's inpaintRadius (3 in the thesis code). ``fill``: value for a full mask
    (default: the value-range midpoint). ``timer``: a one-element list to which the seconds
    spent inside OpenCV are added (the benchmark's split).
    """
    raw = np.asarray(raw, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    value_range = _check(raw, mask, value_range)
    return TeleaSource(raw, value_range).inpaint(mask, radius, fill, timer)


class TeleaSource:
    """One raw image (C, H, W) prepared for inpainting many masks: the uint8 conversion is done once.

    ``inpaint(mask, ...)`` equals :func:`inpaint_telea` (raw, mask, ...); ``out`` lets the caller
    provide the (C, H, W) float array to write into.
    """

    def __init__(self, raw: np.ndarray, value_range: tuple[float, float]):
        self.raw = np.asarray(raw)
        if self.raw.dtype.kind != "f":
            self.raw = self.raw.astype(np.float64)
        self.value_range = _check(self.raw, np.zeros(self.raw.shape[1:], dtype=bool), value_range)
        self.levels = to_uint8(self.raw, self.value_range)
        self.levels_hwc = np.ascontiguousarray(np.moveaxis(self.levels, 0, -1)) if len(self.levels) in (1, 3) else None
        self.lookup = from_uint8(np.arange(256), self.value_range).astype(self.raw.dtype)  # level → raw value

    def inpaint(self, mask: np.ndarray, radius: int = 3, fill: float | np.ndarray | None = None,
                timer: list[float] | None = None, out: np.ndarray | None = None) -> np.ndarray:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.raw.shape[1:]:
            raise ShapeError(f"mask must be {self.raw.shape[1:]}, got {mask.shape}")
        result = np.empty(self.raw.shape, dtype=self.raw.dtype) if out is None else out
        if mask.all():
            result[...] = _full_fill(self.raw.shape, self.value_range, fill)
            return result
        np.copyto(result, self.raw)
        if mask.any():
            filled = _telea_levels(self.levels, mask, radius, timer, self.levels_hwc)
            np.copyto(result, self.lookup[filled], where=mask[None])
        return result
