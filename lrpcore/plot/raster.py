"""Small raster pictures without a figure: relevance maps and inputs as PNG bytes or data URIs.

The HTML views (:mod:`lrpcore.report`, the notebooks' ``_repr_html_`` of
:mod:`lrpcore._display`) embed many small maps; drawing each through a matplotlib figure
would be slow and large. Here a map is coloured pixel by pixel with the same diverging
colormap and colour limit b as :func:`lrpcore.plot.heatmap` (red positive, blue negative,
white zero, values beyond ±b saturate), enlarged by an integer factor with nearest-neighbour
sampling (pixels stay sharp) and encoded as PNG with Pillow.
"""
from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

from ..backend import to_numpy

__all__ = ["spatial_map", "relevance_rgb", "image_rgb", "png_bytes", "data_uri"]


def spatial_map(values: Any) -> np.ndarray | None:
    """One sample's array as a 2-D map: (C, H, W) summed over C, (C, L) summed over C into a
    1 × L strip, (H, W) kept, a vector (F,) as a 1 × F strip; None for anything else."""
    array = np.asarray(to_numpy(values), dtype=np.float64)
    if array.ndim == 3:
        return array.sum(axis=0)
    if array.ndim == 2:
        return array if min(array.shape) > 4 else array.sum(axis=0)[None, :]
    if array.ndim == 1:
        return array[None, :]
    return None


def relevance_rgb(pixels: np.ndarray, limit: float, cmap: str = "seismic",
                  missing: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """(H, W, 3) uint8 colours of ``pixels`` on [−limit, limit]; NaN and inf are drawn in ``missing`` (black)."""
    from matplotlib import colormaps

    pixels = np.asarray(pixels, dtype=np.float64)
    limit = float(limit) if np.isfinite(limit) and limit > 0 else 1.0
    finite = np.isfinite(pixels)
    scaled = np.clip(np.where(finite, pixels, 0.0) / limit, -1.0, 1.0) * 0.5 + 0.5
    colours = (colormaps[cmap](scaled)[..., :3] * 255.0 + 0.5).astype(np.uint8)
    colours[~finite] = missing
    return colours


def image_rgb(image: Any, value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """An input image ((C, H, W) with C = 1 or 3, or (H, W)) as (H, W, 3) uint8 from raw values in ``value_range``."""
    array = np.asarray(to_numpy(image), dtype=np.float64)
    if array.ndim == 3 and array.shape[0] in (1, 3):
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"an image must be (H, W) or (C, H, W) with 1 or 3 channels, got shape {np.shape(image)}")
    low, high = (float(bound) for bound in value_range)
    return (np.clip((array - low) / (high - low), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def png_bytes(rgb: np.ndarray, target: int = 160, largest: int = 640) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 picture enlarged by an integer factor towards ``target`` pixels
    on its longer side (never beyond ``largest``, never shrunk below 1×)."""
    from PIL import Image

    height, width = rgb.shape[:2]
    factor = max(1, min(target // max(height, width, 1), largest // max(height, width, 1)))
    picture = Image.fromarray(np.ascontiguousarray(rgb))
    if factor > 1:
        picture = picture.resize((width * factor, height * factor), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for embedding PNG bytes in HTML."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
