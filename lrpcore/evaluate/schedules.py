"""Flipping schedules: how many patches are flipped after each perturbation step.

A schedule is a strictly increasing sequence of *cumulative* patch counts
c_1 < c_2 < … < c_K ≤ P (P patches in the grid); step k shows the image with its
c_k first-ranked patches perturbed. Step 0, the unperturbed image, is not part of the
schedule (every curve starts with it).

- ``"quadratic"``: c_k = min(k², P) for k = 1 … ⌈√P⌉, i.e. 1, 3, 5, … (2k − 1) new patches
  per step. This is the thesis code's schedule: on a 224×224 image with 8×8 patches
  (P = 784, a 28×28 grid) it takes 28 steps flipping 1, 3, 5, …, 55 patches. Early
  steps, where the score changes most, are sampled finely. ``steps`` must not be given.
- ``"linear"``: c_k = ⌈k·P / K⌉ for k = 1 … K, the same number of patches every step
  (K = ``steps``, by default ⌈√P⌉ like the quadratic schedule, so both cost as many model calls).
- ``"log"``: c_k = round(P^{(k−1)/(K−1)}) for k = 1 … K, geometric from 1 to P, repeated
  counts dropped (so a small grid can get fewer than K steps).
- a sequence of ints: the cumulative counts themselves (e.g. ``range(1, 101)`` flips one
  patch per step for 100 steps, Quantus' RegionPerturbation with ``regions_evaluation=100``).
"""
from __future__ import annotations

import math
from typing import Sequence, Union

import numpy as np

__all__ = ["Schedule", "schedule_counts"]

Schedule = Union[str, Sequence[int]]


def _check_steps(steps: int | None, patches: int) -> int:
    if steps is None:
        return math.isqrt(patches - 1) + 1 if patches > 1 else 1
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if steps > patches:
        raise ValueError(f"steps={steps} is more than the {patches} patches of the grid; "
                         "each step must flip at least one new patch")
    return int(steps)


def schedule_counts(schedule: Schedule, patches: int, steps: int | None = None) -> np.ndarray:
    """Cumulative patch counts (K,) int64 for ``schedule`` on a grid of ``patches`` patches."""
    if isinstance(patches, bool) or not isinstance(patches, (int, np.integer)) or patches < 1:
        raise ValueError(f"the patch grid must have at least one patch, got {patches!r}")
    if isinstance(schedule, str):
        if schedule == "quadratic":
            if steps is not None:
                raise ValueError("steps applies to the 'linear' and 'log' schedules; the quadratic schedule "
                                 "runs until every patch is flipped (pass explicit counts to stop early)")
            last = math.isqrt(patches - 1) + 1
            return np.minimum(np.arange(1, last + 1, dtype=np.int64) ** 2, patches)
        count = _check_steps(steps, patches)
        if schedule == "linear":
            k = np.arange(1, count + 1, dtype=np.int64)
            return -(-k * patches // count)  # ceil(k·P / K) in exact integer arithmetic
        if schedule == "log":
            if count == 1:
                return np.array([patches], dtype=np.int64)
            exponents = np.arange(count) / (count - 1)
            counts = np.rint(float(patches) ** exponents).astype(np.int64)
            counts[-1] = patches
            return np.unique(np.clip(counts, 1, patches))
        raise ValueError(f"schedule must be 'quadratic', 'linear', 'log' or a sequence of patch counts, "
                         f"got {schedule!r}")
    if steps is not None:
        raise ValueError("steps cannot be combined with an explicit list of counts")
    counts = np.asarray(list(schedule))
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError(f"an explicit schedule must be a non-empty sequence of ints, got {schedule!r}")
    if counts.dtype.kind not in "iu":
        if counts.dtype.kind == "f" and np.all(np.mod(counts, 1) == 0):
            counts = counts.astype(np.int64)
        else:
            raise ValueError(f"an explicit schedule must hold ints (cumulative patch counts), got {counts.dtype}")
    counts = counts.astype(np.int64)
    if counts[0] < 1 or counts[-1] > patches or np.any(np.diff(counts) <= 0):
        raise ValueError(f"an explicit schedule must be strictly increasing cumulative patch counts in "
                         f"[1, {patches}], got {counts.tolist()}")
    return counts
