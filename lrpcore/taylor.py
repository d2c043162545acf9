"""Simple Taylor decomposition, gradient×input, gradient shattering, and the quality of the relevance model.

Montavon et al. 2019, sections 10.1 and 10.3.1.

Simple Taylor decomposition (section 10.1): expand f at a root point x̃ (f(x̃) = 0) near x,
f(x) ≈ Σ_i [∇f(x̃)]_i (x_i − x̃_i), and call the terms R_i. :func:`simple_taylor` finds x̃ by Newton steps
on the level set (x ← x − f(x) ∇f(x)/‖∇f(x)‖², the nearest root to first order). Gradient×input
(:func:`gradient_x_input`) is the same expansion at x̃ = 0, exact for bias-free ReLU networks. Both rest on
the gradient, and the gradient of a deep ReLU network is *shattered* (Balduzzi et al. 2017, cited by the
chapter): it changes erratically from one input to a nearby one, so these explanations are noisy. Two
measures make that visible (:func:`neighbour_correlation`, :func:`total_variation_ratio`):

- the correlation between the explanations of x and of nearby inputs x + σξ — Balduzzi et al.'s own
  diagnostic of shattering is the (auto)correlation of gradients across inputs; a shattered explanation
  decorrelates even for small σ, a stable one stays near 1;
- the total variation of the explanation map relative to its ℓ1 norm, TV(R)/‖R‖₁ — high-frequency noise
  ("the explanation is noisy" of figure 10.2) has large differences between neighbouring pixels; a
  heatmap made of smooth blobs has a small ratio.

The relevance model (section 10.3.1): the relevance of a neuron is modelled as R_k(a) = a_k(a) · c_k with
c_k held constant when the lower activations a move. :func:`relevance_model_error` measures it layer by
layer: the input a of layer l is perturbed multiplicatively, a' = a ⊙ (1 + σξ) (ξ standard normal; the
sign pattern of a is kept, so ReLU inputs stay ≥ 0), the network is run from layer l up and LRP back down
to layer l's neurons, and the measured change ΔR_k = R_k(a') − R_k(a) is compared with the model's
prediction Δa_k · c_k (c_k = R_k(a)/a_k(a)):

    error_l = ‖ΔR − Δa ⊙ c‖ / ‖ΔR‖            (per sample and perturbation; the median is reported)

0 means c_k is exactly constant (as it is for the top layer, R_k = a_k); 1 means predicting no change
would do as well as the model. What it shows on the shipped models (``tools/relevance_model_report.py``):
for LRP-0 in ReLU layers c_k is the gradient of the output with respect to a_k, constant until a ReLU
switches (median error ~1e-14); ε and γ above make it vary smoothly (1e-8–1e-4); but where a max pooling
sits above the layer, a perturbation that changes a pooling winner or breaks a tie (frequent where
activations are 0) moves a neuron's whole relevance at once, and the error is near 1.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy

from .composites import Composite, get_composite
from .explain import explain, gradient
from .layers import Conv1d, Conv2d, Dense, ReLU
from .model import Sequential

__all__ = ["simple_taylor", "TaylorResult", "gradient_x_input", "neighbour_correlation", "total_variation_ratio",
           "relevance_model_error", "LayerModelError"]


@dataclasses.dataclass
class TaylorResult:
    """``relevance`` ∇f(x̃) ⊙ (x − x̃); ``root`` x̃; ``output`` f(x); ``root_output`` f(x̃) (≈ 0);
    ``steps`` Newton steps taken; ``error`` f(x) − f(x̃) − Σ_i R_i (the first-order remainder)."""

    relevance: Any
    root: Any
    output: Any
    root_output: Any
    steps: int
    error: Any


def _target_output(model: Sequential, x: Any, target: Any) -> Any:
    logits = numpy.asarray(model.forward(x))
    return logits[numpy.arange(len(x)), target]


def simple_taylor(model: Sequential, x: Any, target: int | Any, tolerance: float = 1e-3, max_steps: int = 50,
                  step_size: float = 1.0) -> TaylorResult:
    """Simple Taylor decomposition of the ``target`` logit at a nearby root point found by Newton steps.

    Stops when |f(x̃)| ≤ ``tolerance``·|f(x)| for every sample, or after ``max_steps``.
    """
    x = model.prepare_input(numpy.asarray(x))
    targets = numpy.broadcast_to(numpy.asarray(target), (x.shape[0],)).astype(int)
    output = _target_output(model, x, targets)
    root = x.copy()
    steps = 0
    current = output.copy()
    for steps in range(1, max_steps + 1):
        grad, _ = gradient(model, root, targets)
        grad = numpy.asarray(grad)
        norm = (grad.reshape(len(x), -1) ** 2).sum(axis=1)
        move = numpy.where(norm > 0, current / numpy.where(norm > 0, norm, 1.0), 0.0)
        root = root - step_size * move.reshape((-1,) + (1,) * (x.ndim - 1)) * grad
        current = _target_output(model, root, targets)
        if numpy.all(numpy.abs(current) <= tolerance * numpy.abs(output)):
            break
    grad, _ = gradient(model, root, targets)
    relevance = numpy.asarray(grad) * (x - root)
    error = output - current - relevance.reshape(len(x), -1).sum(axis=1)
    return TaylorResult(relevance=relevance, root=root, output=output, root_output=current, steps=steps, error=error)


def gradient_x_input(model: Sequential, x: Any, target: int | Any) -> Any:
    """∇f(x) ⊙ x for the ``target`` logit (the Taylor expansion at x̃ = 0)."""
    grad, _ = gradient(model, x, target)
    return numpy.asarray(grad) * numpy.asarray(x)


def _pearson(a: Any, b: Any) -> float:
    a = numpy.ravel(a) - numpy.mean(a)
    b = numpy.ravel(b) - numpy.mean(b)
    denominator = numpy.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else float("nan")


def neighbour_correlation(method: Callable[[Any], Any], x: Any, sigma: float, count: int = 8,
                          seed: int = 0) -> Any:
    """Mean Pearson correlation between ``method(x)`` and ``method(x + σξ)`` over ``count`` draws, per sample.

    ``method`` maps a batch (N, ...) to explanations of the same shape; ξ is standard normal (seeded).
    """
    x = numpy.asarray(x)
    rng = numpy.random.default_rng(seed)
    reference = numpy.asarray(method(x))
    totals = numpy.zeros(len(x))
    for _ in range(count):
        moved = numpy.asarray(method(x + sigma * rng.standard_normal(x.shape).astype(x.dtype)))
        totals += numpy.array([_pearson(reference[i], moved[i]) for i in range(len(x))])
    return totals / count


def total_variation_ratio(relevance: Any) -> Any:
    """TV(R) / ‖R‖₁ per sample, on the last two axes summed over the channels first ((N, C, H, W) → (N, H, W);
    (N, C, L) sequences use the last axis only)."""
    relevance = numpy.asarray(relevance, dtype=numpy.float64)
    if relevance.ndim == 4:
        maps = relevance.sum(axis=1)
        tv = numpy.abs(numpy.diff(maps, axis=1)).sum(axis=(1, 2)) + numpy.abs(numpy.diff(maps, axis=2)).sum(axis=(1, 2))
        return tv / numpy.maximum(numpy.abs(maps).sum(axis=(1, 2)), 1e-300)
    maps = relevance.sum(axis=1) if relevance.ndim == 3 else relevance
    tv = numpy.abs(numpy.diff(maps, axis=-1)).sum(axis=-1)
    return tv / numpy.maximum(numpy.abs(maps).sum(axis=-1), 1e-300)


@dataclasses.dataclass
class LayerModelError:
    """One row of :func:`relevance_model_error`: the layer, its median / 90th percentile error, and the
    number of (sample, perturbation) pairs measured (pairs with ΔR = 0 are left out)."""

    index: int
    layer: str
    median: float
    p90: float
    pairs: int


def relevance_model_error(model: Sequential, x: Any, target: Any = None, composite: Composite | str | None = None,
                          sigma: float = 0.01, count: int = 4, seed: int = 0) -> list[LayerModelError]:
    """How well R_k(a) ≈ a_k c_k (c_k constant) holds at each weighted layer of ``model`` (module docstring).

    The neurons k of layer l are its outputs after the ReLU that follows it (its raw outputs for the top
    layer). Rules are resolved once for the whole model, so every layer keeps its rule. Computed in float64
    (the model is cast), so rounding does not pose as model error.
    """
    model = model.astype("float64")
    x = model.prepare_input(numpy.asarray(x))
    resolved = (get_composite(composite) if composite is not None else Composite(name="zero")).rules(model)
    full = explain(model, x, target=target, composite=Composite(by_index=dict(enumerate(resolved))))
    targets = full.target
    activations = model.forward(x, record=True)
    rng = numpy.random.default_rng(seed)
    rows = []
    for index, layer in enumerate(model.layers):
        if not isinstance(layer, (Dense, Conv2d, Conv1d)):
            continue
        sub = model[index:]
        sub.metadata.input_shape = None
        rules = Composite(by_index={i: rule for i, rule in enumerate(resolved[index:])})
        after_relu = index + 1 < len(model) and isinstance(model.layers[index + 1], ReLU)
        level = 2 if after_relu else 1       # activations[level] of the sub-model: a_k (after the ReLU)
        a = activations[index]
        base = explain(sub, a, target=targets, composite=rules)
        base_r = numpy.asarray(base.layer_relevances[level])
        base_a = numpy.asarray(sub.forward(a, record=True)[level])
        c = numpy.where(base_a != 0, base_r / numpy.where(base_a != 0, base_a, 1.0), 0.0)
        errors = []
        for _ in range(count):
            moved = a * (1.0 + sigma * rng.standard_normal(a.shape)).astype(a.dtype)
            result = explain(sub, moved, target=targets, composite=rules)
            moved_r = numpy.asarray(result.layer_relevances[level])
            moved_a = numpy.asarray(sub.forward(moved, record=True)[level])
            delta_r = (moved_r - base_r).reshape(len(x), -1)
            predicted = ((moved_a - base_a) * c).reshape(len(x), -1)
            norm = numpy.linalg.norm(delta_r, axis=1)
            keep = norm > 0
            errors.extend((numpy.linalg.norm(delta_r - predicted, axis=1)[keep] / norm[keep]).tolist())
        errors = numpy.asarray(errors)
        rows.append(LayerModelError(index, layer.describe(), float(numpy.median(errors)) if errors.size else float("nan"),
                                    float(numpy.quantile(errors, 0.9)) if errors.size else float("nan"), int(errors.size)))
    return rows
