"""Sequence logos of relevance: one letter per base and position, its height the relevance.

For one-hot DNA (4, L) (channels A, C, G, T) an explanation gives a relevance per base and
position; with rules that multiply by the input (LRP-0, ε, γ, αβ) only the base present at a
position can carry relevance, so the logo spells the sequence with letters scaled by how much
each base contributed. Positive relevance stands on the axis, negative hangs below it; the
letters of one position are stacked by size (largest farthest from the axis). Ground-truth
positions (a planted motif) are shaded.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..backend import to_numpy
from ..errors import ShapeError

__all__ = ["sequence_logo", "sequence_logos", "BASE_COLORS"]

#: Colours of the letters A, C, G, T (the usual green, blue, orange, red of DNA logos).
BASE_COLORS = {"A": "#109648", "C": "#255C99", "G": "#F7B32B", "T": "#D62839"}


def _as_host(array: Any, name: str) -> np.ndarray:
    host = np.asarray(to_numpy(array), dtype=np.float64)
    if host.ndim == 3 and host.shape[0] == 1:
        host = host[0]
    return host


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of every run of True in a 1-D boolean array."""
    padded = np.concatenate(([False], mask.astype(bool), [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def _letter(ax: Any, letter: str, x: float, bottom: float, height: float, color: str, font: Any) -> None:
    """Draw ``letter`` filling the box [x, x+1] × [bottom, bottom+height] (height may be tiny)."""
    from matplotlib.patches import PathPatch
    from matplotlib.textpath import TextPath
    from matplotlib.transforms import Affine2D

    path = TextPath((0, 0), letter, size=1, prop=font)
    extent = path.get_extents()
    width_scale = 0.9 / extent.width
    height_scale = height / extent.height
    transform = (Affine2D().translate(-extent.x0, -extent.y0).scale(width_scale, height_scale)
                 .translate(x + 0.05, bottom))
    ax.add_patch(PathPatch(transform.transform_path(path), facecolor=color, edgecolor="none"))


def sequence_logo(relevance: Any, sequence_onehot: Any, mask: Any = None, ax: Any = None,
                  start: int = 0, stop: int | None = None, bases: str = "ACGT",
                  colors: dict[str, str] | None = None, title: str | None = None,
                  only_present: bool = False, shade_color: str = "#9ecae1") -> Any:
    """Draw a relevance sequence logo for one sequence and return the matplotlib Axes.

    ``relevance``: (4, L) relevance per base and position (or (L,) for the base present at
    each position); ``sequence_onehot``: (4, L) one-hot input (a leading batch axis of 1 is
    allowed for both); ``mask``: (L,) ground truth, shaded; ``start``/``stop``: the window of
    positions to draw (long sequences make tiny letters); ``only_present``: draw only the
    base present at each position. Letter heights are in relevance units (the y axis).
    """
    from matplotlib.font_manager import FontProperties

    onehot = _as_host(sequence_onehot, "sequence_onehot")
    if onehot.ndim != 2 or onehot.shape[0] != len(bases):
        raise ShapeError(f"sequence_onehot must be ({len(bases)}, L) for bases {bases!r}, got shape {onehot.shape}")
    length = onehot.shape[1]
    scores = _as_host(relevance, "relevance")
    if scores.ndim == 1:
        if scores.shape[0] != length:
            raise ShapeError(f"relevance of shape {scores.shape} does not match a sequence of length {length}")
        scores = onehot * scores[None, :]
    if scores.shape != onehot.shape:
        raise ShapeError(f"relevance of shape {scores.shape} does not match sequence_onehot {onehot.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("relevance contains NaN or inf values; nothing sensible can be drawn")
    if only_present:
        scores = scores * (onehot > 0)
    stop = length if stop is None else int(stop)
    if not 0 <= start < stop <= length:
        raise ValueError(f"need 0 ≤ start < stop ≤ {length}, got start={start}, stop={stop}")
    colors = {**BASE_COLORS, **(colors or {})}
    font = FontProperties(family="DejaVu Sans", weight="bold")
    if ax is None:
        width = min(20.0, max(4.0, 0.18 * (stop - start)))
        from ._figure import new_figure

        ax = new_figure((width, 2.6)).add_subplot()

    if mask is not None:
        truth = np.asarray(to_numpy(mask)).astype(bool).reshape(-1)
        if truth.shape[0] != length:
            raise ShapeError(f"mask of length {truth.shape[0]} does not match a sequence of length {length}")
        for run_start, run_stop in _runs(truth[start:stop]):
            ax.axvspan(start + run_start, start + run_stop, color=shade_color, alpha=0.4, lw=0, zorder=0)

    window = scores[:, start:stop]
    for offset in range(window.shape[1]):
        column = window[:, offset]
        position = start + offset
        for sign in (1.0, -1.0):
            chosen = np.flatnonzero(sign * column > 0)
            chosen = chosen[np.argsort(np.abs(column[chosen]))]          # smallest next to the axis
            level = 0.0
            for base in chosen:
                height = abs(column[base])
                bottom = level if sign > 0 else -(level + height)
                _letter(ax, bases[base], position, bottom, height, colors.get(bases[base], "black"), font)
                level += height
    top = max(float(np.clip(window, 0, None).sum(axis=0).max()), 0.0)
    low = max(float(np.clip(-window, 0, None).sum(axis=0).max()), 0.0)
    margin = 0.05 * max(top + low, 1e-12)
    ax.set_xlim(start, stop)
    ax.set_ylim(-low - margin, top + margin)
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_xlabel("position")
    ax.set_ylabel("relevance")
    if title:
        ax.set_title(title)
    return ax


def sequence_logos(relevances: Any, sequences: Any, masks: Any = None, titles: Sequence[str] | None = None,
                   **options: Any) -> Any:
    """One :func:`sequence_logo` per row of a batch, stacked in one figure; returns the figure."""
    from ._figure import new_figure

    relevances, sequences = np.asarray(to_numpy(relevances)), np.asarray(to_numpy(sequences))
    count = sequences.shape[0]
    figure = new_figure((14, 2.4 * count), layout="tight")
    axes = figure.subplots(count, 1, squeeze=False)
    for row in range(count):
        sequence_logo(relevances[row], sequences[row], None if masks is None else masks[row], ax=axes[row, 0],
                      title=None if titles is None else titles[row], **options)
    return figure
