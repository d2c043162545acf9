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

__all__ = ["inpaint_telea", "to_uint8", "from_uint8"]


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


def inpaint_telea(raw: np.ndarray, mask: np.ndarray, value_range: tuple[float, float], radius: int = 3,
                  fill: float | np.ndarray | None = None, timer: list[float] | None = None) -> np.ndarray:
    """Inpaint the ``mask``ed pixels of one raw image (C, H, W) with Telea's method; returns (C, H, W) float64.

    ``radius``: OpenCV's inpaintRadius (3 in the thesis code). ``fill``: value for a full mask
    (default: the value-range midpoint). ``timer``: a one-element list to which the seconds
    spent inside OpenCV are added (the benchmark's split).
    """
    import time

    raw = np.asarray(raw, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if raw.ndim != 3 or mask.shape != raw.shape[1:]:
        raise ShapeError(f"inpainting needs an image (C, H, W) and a mask (H, W), got {raw.shape} and {mask.shape}")
    low, high = (float(bound) for bound in value_range)
    if not high > low:
        raise ValueError(f"value_range must have low < high, got {value_range!r}")
    if not mask.any():
        return raw.copy()
    if mask.all():
        value = np.asarray((low + high) / 2 if fill is None else fill, dtype=np.float64)
        if value.ndim == 1:  # one value per channel
            value = value.reshape(-1, 1, 1)
        return np.broadcast_to(value, raw.shape).copy()
    cv2 = _cv2()
    levels = to_uint8(raw, (low, high))
    mask_levels = mask.astype(np.uint8)
    start = time.perf_counter()
    if raw.shape[0] in (1, 3):
        hwc = np.ascontiguousarray(np.moveaxis(levels, 0, -1))
        filled = cv2.inpaint(hwc, mask_levels, radius, cv2.INPAINT_TELEA)
        filled = filled.reshape(hwc.shape)  # OpenCV drops the channel axis of 1-channel images
        filled = np.moveaxis(filled, -1, 0)
    else:
        filled = np.stack([cv2.inpaint(np.ascontiguousarray(channel), mask_levels, radius, cv2.INPAINT_TELEA)
                           for channel in levels])
    if timer is not None:
        timer[0] += time.perf_counter() - start
    result = raw.copy()
    result[:, mask] = from_uint8(filled[:, mask], (low, high))
    return result
