"""Pixel-flipping pictures: perturbation curves with their AUC, and the perturbed images step by step.

``perturbation_curve`` draws the batch-mean score of each :class:`~lrpcore.evaluate.PerturbationCurve`
over the fraction of patches flipped, with a band of ± one standard error and the AUC in the
legend (normalised to the unperturbed score by default). ``perturbation_steps`` shows, for one
image, the input, its heatmap and the perturbed inputs at chosen steps, like the thesis' Figure 4.4
(needs a curve computed with ``keep_images=True``). Host-side code: NumPy and matplotlib,
imported when called.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy

from .._atomic import save_figure

__all__ = ["perturbation_curve", "perturbation_steps"]


def _labelled(curves: Any) -> list[tuple[str, Any]]:
    if isinstance(curves, Mapping):
        return [(str(label), curve) for label, curve in curves.items()]
    if hasattr(curves, "scores"):
        curves = [curves]
    return [(f"{curve.sort} / {curve.mode}", curve) for curve in curves]


def perturbation_curve(curves: Any, normalised: bool = True, ax: Any = None, path: str | None = None,
                       title: str | None = None, band: bool = True, figsize: tuple[float, float] = (6.0, 4.0)) -> Any:
    """Mean curves of one or several pixel-flipping results, AUC in the legend; returns the figure.

    ``curves``: a curve, a list of curves (labelled "sort / mode") or a dict label → curve.
    ``normalised``: plot s_k / s_0 (images with s_0 ≤ 0 are left out and counted in the legend)
    instead of the raw score. ``band``: shade ± one standard error of the mean. ``ax``: draw
    there (the figure returned is then ``ax.figure``).
    """
    from ._figure import new_figure

    if ax is None:
        figure = new_figure(figsize, layout="tight")
        ax = figure.add_subplot()
    else:
        figure = ax.figure
    for label, curve in _labelled(curves):
        used = curve.subset(curve.valid) if normalised else curve
        if used.n_images == 0:
            continue
        values = used.normalised_scores if normalised else used.scores
        mean = values.mean(axis=0)
        auc = float(used.auc(normalised).mean())
        note = f"AUC {auc:.3f}" + ("" if curve.better is None else f", {curve.better} is better")
        if normalised and used.n_images < curve.n_images:
            left_out = curve.n_images - used.n_images
            note += f", {left_out} image{'' if left_out == 1 else 's'} with s0≤0 left out"
        fractions = used.fractions
        (line,) = ax.plot(fractions, mean, marker="o", markersize=3, label=f"{label} ({note})")
        if band and used.n_images > 1:
            error = values.std(axis=0, ddof=1) / numpy.sqrt(used.n_images)
            ax.fill_between(fractions, mean - error, mean + error, color=line.get_color(), alpha=0.15, linewidth=0)
    ax.set_xlabel("fraction of patches perturbed")
    ax.set_ylabel("score / unperturbed score" if normalised else "target score")
    ax.set_xlim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    if path is not None:
        save_figure(figure, path, overwrite=True, dpi=120)  # atomic (lrpcore._atomic)
    return figure


def _display_image(model_input: numpy.ndarray, metadata: Any, value_range: tuple[float, float]) -> numpy.ndarray:
    """Model input (C, H, W) → an RGB or grey image in [0, 1] for imshow."""
    raw = model_input[None].astype(numpy.float64)
    if metadata is not None:
        raw = numpy.asarray(metadata.deprocess(raw))
    low, high = value_range
    image = numpy.clip((raw[0] - low) / (high - low), 0.0, 1.0)
    if image.ndim == 2:  # sequences (C, L) are shown as a C-row image
        return image
    return image[0] if image.shape[0] != 3 else numpy.moveaxis(image, 0, -1)


def _heat(relevance: numpy.ndarray) -> numpy.ndarray:
    values = numpy.asarray(relevance, dtype=numpy.float64)
    return values.sum(axis=0) if values.ndim == 3 else values


def perturbation_steps(curve: Any, image: int = 0, steps: Sequence[int] | None = None, relevance: Any = None,
                       metadata: Any = None, value_range: tuple[float, float] | None = None,
                       path: str | None = None, cell_size: float = 2.0) -> Any:
    """Input, heatmap and perturbed inputs of one image at chosen steps; returns the figure.

    ``steps``: step indices (default: four spread over the curve, the gray step last). ``relevance``:
    the heatmap (C, H, W) or (H, W) of that image; without it the per-patch relevance sums are
    shown. ``metadata``: the model's metadata, to show raw images (``deprocess``) and name the
    class (``class_names``); ``value_range`` defaults to ``metadata.value_range`` or the data's
    own range. Titles give the patches flipped and the score.
    """
    from ._figure import new_figure
    from ..backend import to_numpy

    if curve.images is None:
        raise ValueError("perturbation_steps needs the perturbed images: run pixel_flipping(..., keep_images=True)")
    if not 0 <= image < curve.n_images:
        raise IndexError(f"image {image} is out of range for a curve of {curve.n_images} images")
    if steps is None:
        steps = sorted(set(numpy.linspace(1, curve.n_steps - 1, num=min(4, curve.n_steps - 1)).round().astype(int)))
    steps = [int(step) for step in steps]
    for step in steps:
        if not 0 <= step < curve.n_steps:
            raise IndexError(f"step {step} is out of range for a curve of {curve.n_steps} steps")
    inputs = curve.images[image]
    if value_range is None:
        value_range = metadata.value_range if metadata is not None else (float(inputs.min()), float(inputs.max()))
    if relevance is None:
        rows = -(-curve.masks.shape[2] // curve.patch_size[0])
        heat = curve.patch_scores[image].reshape(rows, -1)
        heat_title = "patch relevance sums"
    else:
        heat = _heat(to_numpy(relevance))
        heat_title = "heatmap"
    columns = 2 + len(steps)
    figure = new_figure((cell_size * columns, cell_size * 1.25), layout="tight")
    axes = figure.subplots(1, columns)
    axes[0].imshow(_display_image(inputs[0], metadata, value_range), cmap="gray", vmin=0, vmax=1,
                   interpolation="nearest")
    axes[0].set_title(f"input\nscore {curve.scores[image, 0]:.3g}", fontsize=8)
    bound = float(numpy.abs(heat).max()) or 1.0
    axes[1].imshow(heat, cmap="seismic", vmin=-bound, vmax=bound, interpolation="nearest")
    target = int(curve.targets[image])
    names = tuple(getattr(metadata, "class_names", None) or ())
    label = f"'{names[target]}'" if 0 <= target < len(names) else f"class {target}"
    axes[1].set_title(f"{heat_title}\n{curve.sort}, {label}", fontsize=8)
    for axis, step in zip(axes[2:], steps):
        axis.imshow(_display_image(inputs[step], metadata, value_range), cmap="gray", vmin=0, vmax=1,
                    interpolation="nearest")
        gray = curve.gray_step and step == curve.n_steps - 1
        flipped = int(curve.counts[step])
        what = "all gray" if gray else \
            f"{flipped} patch{'' if flipped == 1 else 'es'} ({100 * curve.fractions[step]:.0f}%)"
        axis.set_title(f"step {step}: {what}\nscore {curve.scores[image, step]:.3g}", fontsize=8)
    for axis in axes:
        axis.set_xticks([])
        axis.set_yticks([])
    if path is not None:
        save_figure(figure, path, overwrite=True, dpi=120)  # atomic (lrpcore._atomic)
    return figure
