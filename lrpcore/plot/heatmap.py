"""Relevance heatmaps: one map, an overlay on the input, and a grid of them.

An LRP explanation of an image assigns relevance R_{c,h,w} to every colour channel of
every pixel; a heatmap shows the pixel relevance R_{h,w} = Σ_c R_{c,h,w} with a
diverging colormap (``seismic``: red positive, blue negative, white zero) on the
symmetric range [−b, b].

Colour scale. The LRP tutorial of Montavon et al. (2019, "Layer-wise Relevance
Propagation: An Overview", and its companion code) fixes

    b = 10 · ( mean_{h,w} |R_{h,w}|³ )^{1/3},

a cubic mean that follows the bulk of the relevance rather than the single largest
pixel, so one hot pixel does not wash out the rest of the map (values beyond ±b
saturate). ``scale="max"`` instead uses b = max |R_{h,w}| (symmetric normalisation to
[−1, 1]: nothing saturates, weak evidence looks faint); a number gives b directly.
Since max |R| ≤ P^{1/3} · mean(|R|³)^{1/3} for P pixels, the tutorial's b exceeds every
pixel of a map with fewer than 1000 pixels (an 8 × 8 digit never gets past 40 % colour);
``scale="auto"`` therefore takes b = min(tutorial b, max |R|), which is the tutorial's b on
large maps with sparse relevance and the symmetric normalisation on small ones.

Plotting is host-side: arrays from any backend are copied to NumPy. Figures are built
with :class:`matplotlib.figure.Figure` and the Agg canvas, never through ``pyplot``, so
these functions work without a display and do not change the caller's pyplot state;
pass ``ax=`` to draw into an existing (pyplot or other) figure instead. In Jupyter the
returned figure (or the Axes of a figure made here) shows as a picture when it is a cell's
value (see :mod:`lrpcore.plot._figure`).
"""
from __future__ import annotations

import math
import os
from typing import Any, Literal, Sequence

import numpy as np

from ..backend import to_numpy

__all__ = ["heatmap", "overlay", "heatmap_grid", "heatmap_scale", "relevance_map", "save_figure",
           "TUTORIAL_SCALE_FACTOR"]

#: The factor 10 in the tutorial's b = 10 · mean(|R|³)^(1/3).
TUTORIAL_SCALE_FACTOR = 10.0

Scale = Literal["tutorial", "max", "auto"] | float

#: Names ``scale`` accepts (besides a positive number).
SCALES = ("tutorial", "max", "auto")


def relevance_map(relevance: Any) -> np.ndarray:
    """One sample's relevance as a 2-D float64 map (H, W), summed over channels.

    Accepts (H, W), (C, H, W) or a batch of one (1, C, H, W), from any backend.
    Raises ``ValueError`` naming the shape for anything else, and for NaN or inf values
    (a heatmap of them would silently show white).
    """
    array = np.asarray(to_numpy(relevance), dtype=np.float64)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3:
        array = array.sum(axis=0)
    if array.ndim != 2:
        raise ValueError(f"a heatmap needs relevance of shape (H, W), (C, H, W) or (1, C, H, W), "
                         f"got shape {tuple(np.shape(relevance))}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"relevance of shape {tuple(np.shape(relevance))} contains NaN or inf values")
    return array


def heatmap_scale(relevance: Any, scale: Scale = "tutorial") -> float:
    """The colour limit b of a heatmap of ``relevance`` (shown on [−b, b]).

    ``"tutorial"``: b = 10 · mean(|R|³)^(1/3) over the pixels of the channel-summed map;
    ``"max"``: b = max |R|; ``"auto"``: the smaller of the two; a positive number: b itself.
    An all-zero map gives b = 1 so that it plots as white instead of failing.
    """
    if isinstance(scale, str):
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES} or a positive number, got {scale!r}")
        magnitudes = np.abs(relevance_map(relevance))
        tutorial = TUTORIAL_SCALE_FACTOR * float(np.mean(magnitudes ** 3)) ** (1.0 / 3.0)
        largest = float(np.max(magnitudes))
        limit = {"tutorial": tutorial, "max": largest, "auto": min(tutorial, largest)}[scale]
        return limit if limit > 0.0 else 1.0
    limit = float(scale)
    if not limit > 0.0 or not math.isfinite(limit):
        raise ValueError(f"scale must be one of {SCALES} or a positive number, got {scale!r}")
    return limit


def _new_axes(size: tuple[float, float] = (4.0, 4.0)) -> Any:
    from ._figure import new_figure

    return new_figure(size).add_subplot()


def _image_for_display(image: Any, value_range: tuple[float, float]) -> np.ndarray:
    """An image as (H, W, 3) or (H, W) floats in [0, 1] from (C, H, W), (1, C, H, W), (H, W) or (H, W, C)."""
    array = np.asarray(to_numpy(image), dtype=np.float64)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3 and array.shape[0] in (1, 3):  # lrpcore's (C, H, W) first, then (H, W, C)
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] != 3):
        raise ValueError(f"an image must be (H, W), (C, H, W) or (H, W, C) with 1 or 3 channels, "
                         f"got shape {tuple(np.shape(image))}")
    low, high = (float(bound) for bound in value_range)
    if not high > low:
        raise ValueError(f"value_range must be (low, high) with low < high, got {value_range!r}")
    return np.clip((array - low) / (high - low), 0.0, 1.0)


def _decorate(axes: Any, title: str | None) -> None:
    axes.set_xticks([])
    axes.set_yticks([])
    if title:
        axes.set_title(title, fontsize=9)


def heatmap(relevance: Any, *, scale: Scale = "tutorial", cmap: str = "seismic", ax: Any = None,
            title: str | None = None, colorbar: bool = False, out: str | os.PathLike | None = None,
            overwrite: bool = False) -> Any:
    """Draw the channel-summed relevance of one sample on [−b, b] with a diverging colormap.

    ``relevance``: (H, W), (C, H, W) or (1, C, H, W). ``scale``: how b is chosen (see
    :func:`heatmap_scale`; default the tutorial's b = 10·mean(|R|³)^(1/3)). ``ax``: draw into
    these matplotlib Axes (default: a new Figure). ``colorbar``: add a colour bar in
    relevance units. ``out``: also save the figure as PNG there (an existing file only with
    ``overwrite=True``). Returns the Axes (``ax.figure`` is the figure).
    """
    pixels = relevance_map(relevance)
    limit = heatmap_scale(pixels, scale)
    axes = ax if ax is not None else _new_axes()
    shown = axes.imshow(pixels, cmap=cmap, vmin=-limit, vmax=limit, interpolation="nearest")
    if colorbar:
        axes.figure.colorbar(shown, ax=axes, shrink=0.8, label="relevance")
    _decorate(axes, title)
    if out is not None:
        save_figure(axes.figure, out, overwrite=overwrite)
    return axes


def overlay(image: Any, relevance: Any, *, scale: Scale = "tutorial", cmap: str = "seismic",
            value_range: tuple[float, float] = (0.0, 1.0), opacity: float = 0.85, ax: Any = None,
            title: str | None = None, out: str | os.PathLike | None = None, overwrite: bool = False) -> Any:
    """Draw the relevance of one sample over a grey version of its input image.

    The image (raw values in ``value_range``, (C, H, W), (H, W, C) or (H, W)) is shown in
    grey levels, dimmed to half contrast; on top, each pixel gets the heatmap colour with
    opacity ``opacity · min(|R| / b, 1)^(1/2)``, so irrelevant pixels show the image and
    relevant ones the colour (the square root lifts weak but real evidence). Returns the Axes.
    """
    pixels = relevance_map(relevance)
    picture = _image_for_display(image, value_range)
    if picture.shape[:2] != pixels.shape:
        raise ValueError(f"image of shape {tuple(np.shape(image))} and relevance of shape "
                         f"{tuple(np.shape(relevance))} do not have the same height and width")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must lie in [0, 1], got {opacity!r}")
    limit = heatmap_scale(pixels, scale)
    grey = picture if picture.ndim == 2 else picture @ np.array([0.299, 0.587, 0.114])
    axes = ax if ax is not None else _new_axes()
    axes.imshow(0.25 + 0.5 * grey, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    from matplotlib import colormaps

    colours = colormaps[cmap](np.clip(pixels / limit, -1.0, 1.0) * 0.5 + 0.5)
    colours[..., 3] = opacity * np.sqrt(np.clip(np.abs(pixels) / limit, 0.0, 1.0))
    axes.imshow(colours, interpolation="nearest")
    _decorate(axes, title)
    if out is not None:
        save_figure(axes.figure, out, overwrite=overwrite)
    return axes


def heatmap_grid(relevances: Any, *, titles: Sequence[str] | None = None, images: Any = None,
                 columns: int | None = None, scale: Scale = "tutorial", shared_scale: bool = False,
                 cmap: str = "seismic", value_range: tuple[float, float] = (0.0, 1.0), panel_size: float = 2.0,
                 title: str | None = None, colorbar: bool = True,
                 out: str | os.PathLike | None = None, overwrite: bool = False) -> Any:
    """A grid of heatmaps, one per sample of ``relevances`` ((N, C, H, W), (N, H, W) or a list).

    ``titles``: one per sample. ``images``: the inputs (same count, raw values in
    ``value_range``); each is shown above its heatmap. ``columns``: samples per row
    (default min(N, 6)). ``shared_scale``: one b for all maps (computed from all of them
    together) instead of one per map, to compare magnitudes across samples. ``title``: an
    overall title above the grid. ``colorbar``: one colour bar beside the grid, in relevance
    units with ``shared_scale``; otherwise from −b to +b, each map's own b written under it.
    Returns the Figure; ``out`` also saves it as PNG.
    """
    maps = [relevance_map(item) for item in (list(relevances) if not hasattr(relevances, "ndim")
                                             else [relevances[index] for index in range(relevances.shape[0])])]
    count = len(maps)
    if count == 0:
        raise ValueError("heatmap_grid needs at least one relevance map")
    if titles is not None and len(titles) != count:
        raise ValueError(f"got {len(titles)} titles for {count} relevance maps")
    pictures = None
    if images is not None:
        pictures = [images[index] for index in range(count)] if len(images) == count else None
        if pictures is None:
            raise ValueError(f"got {len(images)} images for {count} relevance maps")
    columns = min(count, 6) if columns is None else int(columns)
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    rows = math.ceil(count / columns)
    rows_per_sample = 2 if pictures is not None else 1
    # one b for all maps: the scale of all their pixels taken together, as one (1, P) map
    limit = heatmap_scale(np.concatenate([pixels.ravel() for pixels in maps])[None, :], scale) \
        if shared_scale else None
    from ._figure import new_figure

    figure = new_figure((panel_size * columns + (0.8 if colorbar else 0.0),
                         panel_size * rows * rows_per_sample + 0.3 * rows + (0.4 if title else 0.0)))
    grid = figure.subplots(rows * rows_per_sample, columns, squeeze=False)
    for axes in grid.flat:
        axes.axis("off")
    for index, pixels in enumerate(maps):
        row, column = divmod(index, columns)
        caption = titles[index] if titles is not None else None
        map_axes = grid[row * rows_per_sample + rows_per_sample - 1, column]
        map_axes.axis("on")
        if pictures is not None:
            image_axes = grid[row * rows_per_sample, column]
            image_axes.axis("on")
            shown = _image_for_display(pictures[index], value_range)
            image_axes.imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0.0, vmax=1.0,
                              interpolation="nearest")
            _decorate(image_axes, caption)
            caption = None
        heatmap(pixels, scale=limit if limit is not None else scale, cmap=cmap, ax=map_axes, title=caption)
        if colorbar and limit is None:
            map_axes.set_xlabel(f"b = {heatmap_scale(pixels, scale):.3g}", fontsize=7, labelpad=1)
    if colorbar:
        _grid_colorbar(figure, grid, cmap, limit)
    if title:
        figure.suptitle(title, fontsize=11)
    if out is not None:
        save_figure(figure, out, overwrite=overwrite)
    return figure


def _grid_colorbar(figure: Any, grid: Any, cmap: str, limit: float | None) -> None:
    """One colour bar for a grid: relevance units for a shared b, else the −b … +b of each map."""
    from matplotlib import cm, colors

    bound = limit if limit is not None else 1.0
    mappable = cm.ScalarMappable(norm=colors.Normalize(-bound, bound), cmap=cmap)
    bar = figure.colorbar(mappable, ax=list(grid.flat), shrink=min(0.9, 0.25 + 0.25 * grid.shape[0]),
                          pad=0.02, aspect=25)
    if limit is not None:
        bar.set_label("relevance (one scale for all maps)", fontsize=8)
    else:
        bar.set_ticks([-1.0, 0.0, 1.0], labels=["−b", "0", "+b"])
        bar.set_label("relevance, each map on its own [−b, b]", fontsize=8)
    bar.ax.tick_params(labelsize=7)


def save_figure(figure: Any, path: str | os.PathLike, *, overwrite: bool = False, dpi: int = 150) -> None:
    """Save ``figure`` as PNG at ``path``; an existing file is replaced only with ``overwrite=True``.

    Raises ``FileExistsError`` naming the file otherwise, and ``FileNotFoundError`` if the
    folder does not exist. The PNG is rendered in memory and written atomically
    (:mod:`lrpcore._atomic`): a failed write (a full disk) raises an ``OSError`` naming the file
    and leaves the previous file untouched.
    """
    from .._atomic import save_figure as write_figure

    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite on the command line) to replace it")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {path}: folder {folder} does not exist")
    write_figure(figure, path, overwrite=overwrite, dpi=dpi, format="png")
