"""Denominator stabilizers: how z is moved away from zero before s = R ⊘ z.

Every LRP rule divides by a denominator z_k = Σ_j z_jk (+ bias). Where z_k is close to
zero the quotient explodes; where it is exactly zero it is undefined. How the
denominator is stabilized is a modelling choice with visible consequences (the
"patches" of the thesis "In-Depth Hyperparameter Selection for LRP", §§2.1.4–2.1.5),
so lrpcore makes it explicit. A stabilizer is a function ``(z, epsilon) -> z'``:

- ``vanilla``: z' = z + ε (Bach et al. 2015). Moves every denominator in the same
  direction, so a z close to −ε lands near zero: the classic instability.
- ``zennit``: z' = z + ((z = 0) + sign(z))·ε. Moves z away from zero in its own
  direction; an exactly zero z becomes ε. The default of zennit and of lrpcore.
- ``quadratic_mean``: z' = z + ε·sqrt(mean(z²)) + 1e-9, the mean taken per sample over
  the layer's outputs. This is the tutorial's ε = 0.25·RMS(z) of Montavon's LRP
  tutorial (thesis, Table 2.4); the ε scales with the layer's typical magnitude.
- ``quadratic_mean_batch``: the same with the mean over the whole batch, as the
  original tutorial code computes it. It makes one sample's heatmap depend on the
  other samples in the batch, which is why the per-sample mean is the default.

A zero stabilized denominator is never divided by: the rules set s = 0 there (the
relevance is absorbed) and count it in the trace, so a vanilla instability is
*reported* instead of producing NaN heatmaps.
"""
from __future__ import annotations

from typing import Any, Callable

from .backend import get_namespace

__all__ = ["Stabilizer", "vanilla", "zennit", "quadratic_mean", "quadratic_mean_batch", "get_stabilizer",
           "STABILIZERS"]

Stabilizer = Callable[[Any, float], Any]

#: The constant added by the tutorial's quadratic-mean stabilizer so that an all-zero layer is safe.
QUADRATIC_MEAN_OFFSET = 1e-9


def vanilla(z: Any, epsilon: float) -> Any:
    """z + ε (Bach et al. 2015, eq. 58; Montavon et al. 2019, eq. 10.2 with ε)."""
    return z + epsilon


def zennit(z: Any, epsilon: float) -> Any:
    """z + ((z == 0) + sign(z))·ε: ε pushes z away from zero with z's own sign (zennit's ``Stabilizer``)."""
    xp = get_namespace(z)
    # the same numbers as z + (sign(z) + (z == 0))·ε, in fewer passes over z (ε in z's dtype: no promotion)
    step = xp.where(z >= 0, xp.asarray(epsilon, dtype=z.dtype, device=z.device),
                    xp.asarray(-epsilon, dtype=z.dtype, device=z.device))
    return z + step


def _sample_axes(z: Any) -> tuple[int, ...]:
    return tuple(range(1, z.ndim))


def quadratic_mean(z: Any, epsilon: float) -> Any:
    """z + ε·sqrt(mean(z²)) + 1e-9 with the mean over each sample's outputs (thesis Table 2.4)."""
    xp = get_namespace(z)
    axes = _sample_axes(z)
    root_mean_square = xp.sqrt(xp.mean(z * z, axis=axes, keepdims=True)) if axes else xp.abs(z)
    return z + epsilon * root_mean_square + QUADRATIC_MEAN_OFFSET


def quadratic_mean_batch(z: Any, epsilon: float) -> Any:
    """z + ε·sqrt(mean(z²)) + 1e-9 with the mean over the whole batch, as in the original tutorial code."""
    xp = get_namespace(z)
    return z + epsilon * xp.sqrt(xp.mean(z * z)) + QUADRATIC_MEAN_OFFSET


STABILIZERS: dict[str, Stabilizer] = {
    "vanilla": vanilla,
    "zennit": zennit,
    "quadratic_mean": quadratic_mean,
    "quadratic_mean_batch": quadratic_mean_batch,
}


def get_stabilizer(stabilizer: str | Stabilizer) -> Stabilizer:
    """Return the stabilizer function for a name in ``STABILIZERS`` or a callable ``(z, epsilon) -> z'``."""
    if callable(stabilizer):
        return stabilizer
    try:
        return STABILIZERS[stabilizer]
    except (KeyError, TypeError):
        raise ValueError(f"unknown stabilizer {stabilizer!r}; expected one of {sorted(STABILIZERS)} "
                         "or a callable (z, epsilon) -> stabilized z") from None
