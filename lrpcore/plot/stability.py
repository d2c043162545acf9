"""Stability pictures: per-layer conservation-error and denominator profiles, heatmap grids with instability marks.

Companions of :mod:`lrpcore.stability`. ``plot_layer_profiles`` draws, for every setting of a
:class:`~lrpcore.stability.StabilityComparison`, the relative conservation error and the smallest
relevance-carrying |z_k| of each layer on log axes, so the layer where a denominator approached
zero stands out. ``plot_stability_grid`` draws the thesis' Figure 2.5: one heatmap per (γ, ε)
cell, each with its own symmetric colour scale, unstable cells framed in red. Heatmaps are reduced
to one channel by summing over channels and shown with the seismic colormap, scaled to the
cell's own max |R| (b = max|R|, so a patch shows as the only coloured spot). Figures are built
with :class:`matplotlib.figure.Figure` (no pyplot state, no display needed); ``path`` saves a PNG and
never replaces an existing file unless ``overwrite=True``. Host-side code: NumPy and matplotlib
(imported when called); :func:`lrpcore.plot.heatmap.heatmap` draws the cells when it is available.
"""
from __future__ import annotations

from typing import Any

import numpy

__all__ = ["plot_layer_profiles", "plot_stability_grid", "plot_heatmap_row"]


def _pixels(relevance: numpy.ndarray) -> numpy.ndarray:
    values = numpy.asarray(relevance, dtype=numpy.float64)
    if values.ndim == 3:
        return values.sum(axis=0)
    if values.ndim == 2:
        return values
    return values.reshape(1, -1)


def _show(axis: Any, relevance: numpy.ndarray) -> None:
    """Channel-summed map on [−max|R|, max|R|]; NaN/inf (an instability) drawn as 0 rather than failing."""
    pixels = _pixels(relevance)
    finite = numpy.where(numpy.isfinite(pixels), pixels, 0.0)
    try:
        from .heatmap import heatmap
    except ImportError:
        heatmap = None
    if heatmap is not None and finite.ndim == 2:
        heatmap(finite, scale="max", ax=axis)
        return
    bound = float(numpy.abs(finite).max()) or 1.0
    axis.imshow(finite, cmap="seismic", vmin=-bound, vmax=bound, interpolation="nearest")
    axis.set_xticks([])
    axis.set_yticks([])


def _figure(rows: int, columns: int, size: tuple[float, float]) -> tuple[Any, Any]:
    from ._figure import new_figure

    figure = new_figure(size, layout=None)
    axes = figure.subplots(rows, columns, squeeze=False)
    return figure, axes


def _save(figure: Any, path: str | None, overwrite: bool) -> None:
    import os

    if path is None:
        return
    from .._atomic import save_figure

    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    save_figure(figure, path, overwrite=overwrite, dpi=110)  # atomic: a failed write keeps the old file


def _mark(axis: Any, unstable: bool) -> None:
    for spine in axis.spines.values():
        spine.set_visible(bool(unstable))
        spine.set_edgecolor("red")
        spine.set_linewidth(3)


def plot_layer_profiles(comparison: Any, sample: int = 0, path: str | None = None, figsize=(11, 4),
                        overwrite: bool = False) -> Any:
    """Conservation error and smallest |z| per layer for every setting of one sample; returns the figure."""
    rows = comparison.rows_for(sample)
    if not rows:
        raise ValueError(f"the comparison has no rows for sample {sample}")
    figure, axes = _figure(1, 2, figsize)
    left, right = axes[0]
    layers = numpy.arange(len(comparison.layers))
    for row in rows:
        linear = ~numpy.isnan(row.smallest_denominator)
        errors = numpy.where(linear, numpy.maximum(row.conservation_error, 1e-17), numpy.nan)
        style = "-" if row.dtype.endswith("64") else "--"
        left.semilogy(layers[linear], errors[linear], style, marker="o", markersize=3, label=row.label)
        right.semilogy(layers[linear], numpy.maximum(row.smallest_denominator[linear], 1e-30), style, marker="o",
                       markersize=3, label=row.label + (" UNSTABLE" if row.unstable else ""))
    left.set_title(f"sample {sample}: |ΣR_in − ΣR_out| / |ΣR_out| per layer")
    right.set_title("smallest stabilized |z_k| with R_k ≠ 0")
    for axis in (left, right):
        axis.set_xlabel("layer index")
        axis.grid(True, which="major", alpha=0.3)
    right.legend(fontsize=7, loc="best")
    figure.tight_layout()
    _save(figure, path, overwrite)
    return figure


def plot_stability_grid(grid: Any, sample: int = 0, path: str | None = None, cell_size: float = 1.6,
                        overwrite: bool = False) -> Any:
    """The heatmaps of a :class:`~lrpcore.stability.StabilityGrid` with unstable cells framed in red."""
    rows, columns = len(grid.row_values), len(grid.column_values)
    figure, axes = _figure(rows, columns, (max(cell_size * columns + 0.8, 4.0), cell_size * rows + 1.0))
    for i in range(rows):
        for j in range(columns):
            axis = axes[i, j]
            _show(axis, grid.heatmaps[i, j][sample])
            _mark(axis, grid.unstable[i, j, sample])
            axis.set_title(f"{grid.statistic[i, j, sample]:.2f}", fontsize=8,
                           color="red" if grid.unstable[i, j, sample] else "black")
            if j == 0:
                axis.set_ylabel(f"{grid.row_name}={grid.row_values[i]:g}", fontsize=8)
            if i == rows - 1 and grid.column_name:
                axis.set_xlabel(f"{grid.column_name}={grid.column_values[j]:g}", fontsize=8)
    figure.suptitle(f"{grid.composite} + {grid.stabilizer}\ninstability statistic per cell (red: unstable)",
                    fontsize=9)
    figure.tight_layout()
    _save(figure, path, overwrite)
    return figure


def plot_heatmap_row(heatmaps: dict[str, numpy.ndarray], unstable: dict[str, bool] | None = None,
                     path: str | None = None, cell_size: float = 2.2, overwrite: bool = False,
                     image: Any = None, value_range: tuple[float, float] = (0.0, 1.0), title: str | None = None,
                     colorbar: bool = True) -> Any:
    """One heatmap (a single sample's relevance) per label side by side, unstable ones framed in red.

    ``image``: the sample's raw input (C, H, W) in ``value_range``, shown first. ``title``: an
    overall title. ``colorbar``: a colour bar from −b to +b; each map has its own b = max|R|,
    written under it.
    """
    panels = len(heatmaps) + (1 if image is not None else 0)
    from ._figure import new_figure

    figure = new_figure((cell_size * panels + (0.9 if colorbar else 0.0), cell_size + 0.6 + (0.3 if title else 0.0)))
    axes = figure.subplots(1, panels, squeeze=False)
    cells = list(axes[0])
    if image is not None:
        from .heatmap import _image_for_display

        shown = _image_for_display(image, value_range)
        first = cells.pop(0)
        first.imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
        first.set_xticks([])
        first.set_yticks([])
        first.set_title("input", fontsize=8)
    for axis, (label, relevance) in zip(cells, heatmaps.items()):
        _show(axis, relevance)
        flagged = bool(unstable.get(label, False)) if unstable else False
        _mark(axis, flagged)
        axis.set_title(label + ("\nUNSTABLE" if flagged else ""), fontsize=8, color="red" if flagged else "black")
        finite = _pixels(relevance)
        finite = finite[numpy.isfinite(finite)]
        axis.set_xlabel(f"b = max|R| = {float(numpy.abs(finite).max()) if finite.size else 0.0:.3g}", fontsize=7)
    if title:
        figure.suptitle(title, fontsize=10)
    if colorbar:
        from matplotlib import cm, colors

        bar = figure.colorbar(cm.ScalarMappable(norm=colors.Normalize(-1.0, 1.0), cmap="seismic"),
                              ax=list(axes[0]), shrink=0.8, pad=0.01, aspect=15)
        bar.set_ticks([-1.0, 0.0, 1.0], labels=["−b", "0", "+b"])
        bar.ax.tick_params(labelsize=7)
        bar.set_label("relevance / b", fontsize=7)
    _save(figure, path, overwrite)
    return figure
