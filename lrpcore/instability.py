"""Detect heatmaps whose relevance concentrates by orders of magnitude in a few pixels.

The thesis "In-Depth Hyperparameter Selection for LRP" (§§2.1.4–2.1.5) shows LRP heatmaps
that collapse into "patches": a handful of pixels carry relevance orders of magnitude
larger than the rest, typically because a denominator came close to zero. Such a
heatmap looks like a bright square on a blank image.

Statistic (per sample): the per-pixel magnitude r_p = |Σ_channels R| is compared with
the magnitude that a high fraction of the pixels reach,

    concentration = log10( max_p r_p / q_{0.95}(r) ),

the number of orders of magnitude by which the strongest pixel exceeds the 95th
percentile. Natural heatmaps of trained networks stay around 0.3–1.5 (the strongest
pixel a few times the typical strong pixel); a patch pushes it to 2 and beyond. A
heatmap is flagged as unstable when the statistic exceeds ``threshold`` (default 2,
a hundredfold), when it holds NaN/inf, or (given an explanation) when relevance reached
an exactly zero denominator and was dropped there. If q_{0.95} is 0 but the maximum is not (fewer than 5 % of the pixels
carry all relevance), the statistic is +inf.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from .backend import to_numpy

__all__ = ["InstabilityReport", "detect_instability", "concentration"]

#: Orders of magnitude between the strongest pixel and the 95th percentile that mark a patch.
DEFAULT_THRESHOLD = 2.0
#: Which quantile of pixel magnitudes stands for "a typical strong pixel".
REFERENCE_QUANTILE = 0.95


@dataclasses.dataclass
class InstabilityReport:
    """Per-sample verdicts: ``unstable[i]``, the ``statistic[i]`` (orders of magnitude), and why."""

    unstable: Any
    statistic: Any
    reasons: list[str]
    threshold: float

    def __bool__(self) -> bool:
        return bool(self.unstable.any())

    def __str__(self) -> str:
        lines = [f"instability check (threshold {self.threshold:g} orders of magnitude):"]
        for index, (flag, value, reason) in enumerate(zip(self.unstable, self.statistic, self.reasons)):
            lines.append(f"  sample {index}: {'UNSTABLE' if flag else 'stable'}  statistic {value:.2f}"
                         + (f"  ({reason})" if reason else ""))
        return "\n".join(lines)


def concentration(relevance: Any) -> Any:
    """log10(max pixel magnitude / 95th percentile) per sample (see the module docstring)."""
    import numpy

    values = numpy.asarray(to_numpy(relevance), dtype=numpy.float64)
    if values.ndim == 1:
        values = values[None]
    if values.ndim == 4:            # (N, C, H, W): pixels are channel sums
        pixels = numpy.abs(values.sum(axis=1)).reshape(values.shape[0], -1)
    else:                           # (N, F) or (N, C, L): every position is a pixel
        pixels = numpy.abs(values.reshape(values.shape[0], -1)) if values.ndim == 2 else \
            numpy.abs(values.sum(axis=1))
    peak = pixels.max(axis=1)
    reference = numpy.quantile(pixels, REFERENCE_QUANTILE, axis=1)
    with numpy.errstate(divide="ignore", invalid="ignore"):
        statistic = numpy.where(peak == 0, 0.0,
                                numpy.where(reference == 0, numpy.inf, numpy.log10(peak / reference)))
    return statistic


def detect_instability(relevance: Any, threshold: float = DEFAULT_THRESHOLD) -> InstabilityReport:
    """Flag samples whose heatmap is a "patch" (see the module docstring).

    ``relevance`` is an input-relevance array (N, ...) or an :class:`~lrpcore.Explanation`; with an
    explanation, zero and near-zero denominators counted during the backward pass are reported too.
    """
    import numpy

    explanation = None
    if hasattr(relevance, "relevance") and hasattr(relevance, "zero_denominators"):
        explanation = relevance
        relevance = explanation.relevance
    values = numpy.asarray(to_numpy(relevance), dtype=numpy.float64)
    if values.ndim == 1:
        values = values[None]
    finite = numpy.isfinite(values.reshape(values.shape[0], -1)).all(axis=1)
    statistic = concentration(numpy.where(numpy.isfinite(values), values, 0.0))
    statistic = numpy.where(finite, statistic, numpy.inf)
    unstable = numpy.array(statistic > threshold)
    reasons = []
    for index in range(values.shape[0]):
        reason = []
        if not finite[index]:
            reason.append("NaN or inf relevance")
        elif unstable[index]:
            reason.append(f"peak pixel {statistic[index]:.1f} orders above the 95th percentile")
        reasons.append("; ".join(reason))
    if explanation is not None:
        # per sample: layers where relevance met a zero (dropped) or near-zero denominator
        zero = numpy.asarray(explanation.zero_denominators)
        near = numpy.asarray(explanation.near_zero_denominators)
        for index in range(values.shape[0]):
            zero_layers = numpy.nonzero(zero[:, index])[0].tolist()
            near_layers = numpy.nonzero(near[:, index])[0].tolist()
            notes = [reasons[index]] if reasons[index] else []
            if zero_layers:
                notes.append(f"relevance dropped at zero denominators in layers {zero_layers}")
                unstable[index] = True
            if near_layers:
                notes.append(f"near-zero denominators in layers {near_layers}")
            reasons[index] = "; ".join(notes)
    return InstabilityReport(unstable=numpy.asarray(unstable), statistic=statistic, reasons=reasons,
                             threshold=threshold)
