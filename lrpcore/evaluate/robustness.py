"""Robustness of explanations: the local Lipschitz estimate.

Alvarez-Melis & Jaakkola 2018, "On the robustness of interpretability methods" (ICML
Workshop on Human Interpretability), eq. 1:

    L(x) = max_{x' ∈ B_r(x)} ‖e(x) − e(x')‖₂ / ‖x − x'‖₂

where e is the explanation. The maximum is estimated by Monte Carlo: ``n_samples`` points
x' = x + δ with δ uniform in the cube [−r, r]^d (an L∞ ball of radius r). Lower is more robust.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..backend import to_numpy
from ..errors import InputValueError, ShapeError
from .patches import image_seed

__all__ = ["local_lipschitz"]


def local_lipschitz(explain_fn: Callable[..., Any], x: Any, radius: float, n_samples: int = 16, seed: int = 0,
                    target: Any = None, batch_size: int | None = None) -> np.ndarray:
    """Local Lipschitz estimate per image (N,) of ``explain_fn`` around each image of ``x``.

    ``explain_fn(batch)`` → heatmaps of the same batch size, or, when ``target`` is given
    (an int or one per image), ``explain_fn(batch, targets)`` with the image's target repeated,
    so the neighbours explain the same class as the image. Image i's perturbations come from
    ``SeedSequence(seed, spawn_key=(i, 2))``; the image and its neighbours are explained in calls of at most
    ``batch_size`` inputs (default: all n_samples + 1 at once).
    """
    host = np.asarray(to_numpy(x))
    if host.dtype.kind != "f" or host.ndim < 2:
        raise ShapeError(f"x must be a floating batch (N, ...), got {host.dtype} array of shape {host.shape}")
    if not (np.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be a positive number, got {radius!r}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
    count = host.shape[0]
    targets = None
    if target is not None:
        targets = np.broadcast_to(np.asarray(to_numpy(target)), (count,))
    chunk = n_samples + 1 if batch_size is None else int(batch_size)
    if chunk < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    estimates = np.empty(count)
    for image in range(count):
        rng = image_seed(seed, image, 2)
        offsets = rng.uniform(-radius, radius, size=(n_samples,) + host.shape[1:])
        batch = np.concatenate([host[image:image + 1], (host[image] + offsets).astype(host.dtype)])
        heatmaps = []
        for start in range(0, len(batch), chunk):
            part = batch[start:start + chunk]
            result = explain_fn(part) if targets is None else explain_fn(part, np.full(len(part), targets[image]))
            heatmaps.append(np.asarray(to_numpy(result), dtype=np.float64).reshape(len(part), -1))
        heatmaps = np.concatenate(heatmaps)
        if not np.all(np.isfinite(heatmaps)):
            raise InputValueError(f"explain_fn returned NaN or inf relevance around image {image}")
        changes = np.linalg.norm(heatmaps[1:] - heatmaps[:1], axis=1)
        distances = np.linalg.norm((batch[1:] - batch[:1]).astype(np.float64).reshape(n_samples, -1), axis=1)
        estimates[image] = np.max(changes / distances)
    return estimates
