"""The attribution methods LRP is compared with, written as explicit array operations (no autograd).

Every gradient here is a chain of the layers' vector-Jacobian products, ``layer.gradient(a, g)``,
walked from the output down in one private function (:func:`_backward`); guided backprop and
deconvnet only change the ReLU's step of that walk. The arrays' namespace is taken from the
input, so the methods run on NumPy, CuPy and any array-API library, in the model's dtype.

Methods (f_c is the target logit, x the model input, ∇ the gradient with respect to x):

- ``gradient``: ∇f_c(x) (Simonyan et al. 2014, "Deep inside convolutional networks"; signed,
  captum's ``Saliency(abs=False)``);
- ``gradient_x_input``: x ⊙ ∇f_c(x) (Shrikumar et al. 2016);
- ``smoothgrad``: (1/n) Σ_i ∇f_c(x + ε_i), ε_i ~ N(0, σ²) with σ = noise_level·(max x − min x)
  per sample (Smilkov et al. 2017, "SmoothGrad: removing noise by adding noise", eq. 2 and
  §3.1's noise level) or an absolute ``stdev``;
- ``integrated_gradients``: (x − x̄) ⊙ ∫₀¹ ∇f_c(x̄ + α(x − x̄)) dα (Sundararajan et al. 2017,
  "Axiomatic attribution for deep networks", eq. 1), the integral by a Riemann sum
  (right, left, middle, trapezoid) or Gauss–Legendre quadrature over ``steps`` points;
- ``occlusion``: the drop f_c(x) − f_c(x with a window filled) averaged over the windows that
  cover each input element (Zeiler & Fergus 2014, "Visualizing and understanding
  convolutional networks", §4.2; captum's ``Occlusion``);
- ``guided_backprop``: the gradient with every ReLU's step g ↦ 1[a > 0] ⊙ max(g, 0)
  (Springenberg et al. 2015, "Striving for simplicity", §3.4);
- ``deconvnet``: the gradient with every ReLU's step g ↦ max(g, 0), the forward mask ignored
  (Zeiler & Fergus 2014);
- ``random``: the thesis' random-relevance baseline, uniform on [0, 1) per input element;
  ``random_normal``: standard normal (lrpcore's noise heatmap before issue 14);
- ``uniform``: the same value everywhere, Kohlbrenner et al. 2020's uniform attribution
  (μ = box share of the image, μ_w = 1).

:func:`attribute` dispatches a method name, or an LRP composite (a preset name or a
:class:`~lrpcore.Composite`), to the same :class:`Attribution` result, so evaluations can compare
LRP with these baselines by name.

Where the peers define a method differently (checked in ``tests/reference/test_baselines_reference.py``):
captum's ``"riemann_trapezoid"`` weights sum to (n − 1)/n (step sizes 1/n with halved ends at
α = linspace(0, 1, n)); lrpcore's trapezoid rule uses 1/(n − 1), which integrates a constant
exactly. zennit's ``SmoothGrad`` uses the noise-free input as its last sample and zennit's
``Occlusion`` scores the *kept* window (everything else filled) and sums scores instead of
averaging drops, with windows wrapping around the border.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, Callable, Literal, Sequence

import numpy

from .backend import clip_min, get_namespace, to_backend, to_numpy
from .errors import InputValueError, ShapeError
from .layers import Layer, ReLU
from .top import resolve_targets

__all__ = [
    "Attribution",
    "BASELINES",
    "attribute",
    "gradient",
    "gradient_x_input",
    "smoothgrad",
    "integrated_gradients",
    "occlusion",
    "guided_backprop",
    "deconvnet",
    "random_relevance",
    "uniform",
    "is_baseline",
    "vjp_plain",
    "vjp_guided",
    "vjp_deconvnet",
]

#: A vector-Jacobian product of one layer: (layer, layer input a, gradient at the output) → gradient at a.
VJP = Callable[[Layer, Any, Any], Any]
IntegralRule = Literal["riemann_right", "riemann_left", "riemann_middle", "riemann_trapezoid", "gausslegendre"]


@dataclasses.dataclass
class Attribution:
    """An attribution of a batch: ``relevance`` (shape of x, model dtype and backend), ``target`` (NumPy
    int per sample), ``output`` (the explained score f_c(x) per sample), ``logits`` (N, classes) of the
    unperturbed input, ``method`` (its name) and ``explanation`` (the LRP :class:`~lrpcore.Explanation`
    when the method was a composite, else None)."""

    relevance: Any
    target: numpy.ndarray
    output: Any
    logits: Any
    method: str
    explanation: Any = None


# --- the backward walk ------------------------------------------------------------------------------
def vjp_plain(layer: Layer, a: Any, grad_output: Any) -> Any:
    """The layer's own vector-Jacobian product (max pooling: the first maximum of a window, as autograd)."""
    return layer.gradient(a, grad_output)


def vjp_guided(layer: Layer, a: Any, grad_output: Any) -> Any:
    """Guided backprop: at a ReLU, g ↦ 1[a > 0] ⊙ max(g, 0); every other layer its plain gradient."""
    if isinstance(layer, ReLU):
        xp = get_namespace(grad_output)
        return xp.where(a > 0, clip_min(grad_output), xp.zeros_like(grad_output))
    return layer.gradient(a, grad_output)


def vjp_deconvnet(layer: Layer, a: Any, grad_output: Any) -> Any:
    """Deconvnet: at a ReLU, g ↦ max(g, 0) whatever the forward input; every other layer its plain gradient."""
    if isinstance(layer, ReLU):
        return clip_min(grad_output)
    return layer.gradient(a, grad_output)


def _backward(model: Any, activations: list[Any], grad_output: Any, vjp: VJP | None = None) -> Any:
    """Walk ``grad_output`` (at the model output) down to the input with ``vjp`` per layer.

    The one place that walks the model backwards. A model with its own graph-aware
    ``model.backward(activations, grad_output, vjp)`` walks itself (fan-outs add their gradients);
    otherwise the layers are chained from the top.
    """
    vjp = vjp_plain if vjp is None else vjp
    walk = getattr(model, "backward", None)
    if callable(walk):
        return walk(activations, grad_output, vjp)
    grad = grad_output
    for index in reversed(range(len(model))):
        grad = vjp(model.layers[index], activations[index], grad)
    return grad


# --- shared helpers ------------------------------------------------------------------------------------
def _check_model(model: Any) -> None:
    if not (hasattr(model, "layers") and hasattr(model, "forward") and hasattr(model, "prepare_input")):
        raise TypeError(f"model must be an lrpcore.Graph or Sequential, got {type(model).__name__}")


def _onehot(targets: numpy.ndarray, like: Any) -> Any:
    """(N, classes) one-hot rows on ``like``'s backend and dtype."""
    xp = get_namespace(like)
    rows = numpy.zeros(tuple(like.shape))
    rows[numpy.arange(len(targets)), targets] = 1.0
    return xp.astype(to_backend(rows, xp), like.dtype)


def _select(logits: Any, targets: numpy.ndarray) -> Any:
    """f_c per sample, on the logits' backend."""
    xp = get_namespace(logits)
    return xp.sum(logits * _onehot(targets, logits), axis=1)


def _start(model: Any, x: Any, target: Any) -> tuple[Any, Any, numpy.ndarray]:
    """(checked input, its activations [x, a_1, ..., a_L], targets)."""
    _check_model(model)
    x = model.prepare_input(x)
    activations = model.forward(x, record=True)
    metadata = getattr(model, "metadata", None)
    targets = resolve_targets(target, activations[-1], getattr(metadata, "class_names", None),
                              getattr(metadata, "name", None))
    return x, activations, numpy.asarray(targets, dtype=numpy.int64)


def _gradient_at(model: Any, x: Any, targets: numpy.ndarray, vjp: VJP | None = None) -> Any:
    activations = model.forward(x, record=True)
    return _backward(model, activations, _onehot(targets, activations[-1]), vjp)


def _result(relevance: Any, activations: list[Any], targets: numpy.ndarray, method: str) -> Attribution:
    logits = activations[-1]
    return Attribution(relevance=relevance, target=targets, output=_select(logits, targets), logits=logits,
                       method=method)


def _sample_generator(seed: int, image: int) -> numpy.random.Generator:
    """Image ``image``'s own stream: its draws do not depend on the batch it is attributed in."""
    if isinstance(seed, bool) or not isinstance(seed, (int, numpy.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return numpy.random.default_rng(numpy.random.SeedSequence(int(seed), spawn_key=(int(image),)))


def _image_ids(image_ids: Sequence[int] | None, count: int) -> list[int]:
    if image_ids is None:
        return list(range(count))
    ids = [int(value) for value in image_ids]
    if len(ids) != count:
        raise ShapeError(f"image_ids must hold {count} ids (one per sample), got {len(ids)}")
    return ids


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


# --- gradient methods -----------------------------------------------------------------------------------
def gradient(model: Any, x: Any, target: Any = None) -> Attribution:
    """∇_x f_c(x): the target logit's gradient, chained through every layer's vector-Jacobian product."""
    x, activations, targets = _start(model, x, target)
    grad = _backward(model, activations, _onehot(targets, activations[-1]))
    return _result(grad, activations, targets, "gradient")


def gradient_x_input(model: Any, x: Any, target: Any = None) -> Attribution:
    """x ⊙ ∇_x f_c(x) (equals LRP-0 on bias-free ReLU networks)."""
    x, activations, targets = _start(model, x, target)
    grad = _backward(model, activations, _onehot(targets, activations[-1]))
    return _result(x * grad, activations, targets, "gradient_x_input")


def guided_backprop(model: Any, x: Any, target: Any = None) -> Attribution:
    """Guided backprop (Springenberg et al. 2015): ReLU steps pass only positive gradient where a > 0."""
    x, activations, targets = _start(model, x, target)
    grad = _backward(model, activations, _onehot(targets, activations[-1]), vjp_guided)
    return _result(grad, activations, targets, "guided_backprop")


def deconvnet(model: Any, x: Any, target: Any = None) -> Attribution:
    """Deconvnet (Zeiler & Fergus 2014): ReLU steps pass only positive gradient, ignoring the forward input."""
    x, activations, targets = _start(model, x, target)
    grad = _backward(model, activations, _onehot(targets, activations[-1]), vjp_deconvnet)
    return _result(grad, activations, targets, "deconvnet")


def smoothgrad(model: Any, x: Any, target: Any = None, samples: int = 20, noise_level: float = 0.1,
               stdev: float | None = None, seed: int = 0, noise: Any = None,
               image_ids: Sequence[int] | None = None) -> Attribution:
    """SmoothGrad (Smilkov et al. 2017, eq. 2): (1/n) Σ_{i=1}^{n} ∇f_c(x + ε_i), ε_i ~ N(0, σ²).

    ``samples``: n. σ = ``noise_level`` · (max x − min x), per sample over all its elements (the
    paper's noise level, 10–20 % recommended), or the absolute ``stdev`` if given. ``noise``: the
    standard-normal draws themselves, shape ``(n, *x.shape)`` (then ε_i = σ·noise[i]; ``seed`` unused),
    to reproduce another implementation's draws. Otherwise sample j's draws come from its own
    stream ``SeedSequence(seed, spawn_key=(image_ids[j],))`` (default ids 0..N−1), so an image's
    result does not depend on the batch it is in. The target is fixed from the noise-free input.
    """
    x, activations, targets = _start(model, x, target)
    xp = get_namespace(x)
    samples = _positive_int(samples, "samples")
    count = x.shape[0]
    axes = tuple(range(1, x.ndim))
    if stdev is not None:
        if not float(stdev) >= 0 or not math.isfinite(float(stdev)):
            raise ValueError(f"stdev must be a finite number ≥ 0, got {stdev!r}")
        sigma = xp.full((count,) + (1,) * (x.ndim - 1), float(stdev), dtype=x.dtype, device=x.device)
    else:
        if not float(noise_level) >= 0 or not math.isfinite(float(noise_level)):
            raise ValueError(f"noise_level must be a finite number ≥ 0, got {noise_level!r}")
        sigma = float(noise_level) * (xp.max(x, axis=axes, keepdims=True) - xp.min(x, axis=axes, keepdims=True))
    if noise is not None:
        draws = xp.astype(to_backend(numpy.asarray(to_numpy(noise)), xp), x.dtype)
        if tuple(draws.shape) != (samples,) + tuple(x.shape):
            raise ShapeError(f"noise must have shape (samples, *x.shape) = {(samples,) + tuple(x.shape)}, "
                             f"got {tuple(draws.shape)}")
    else:
        generators = [_sample_generator(seed, image) for image in _image_ids(image_ids, count)]
        host = numpy.stack([generator.standard_normal((samples,) + tuple(x.shape[1:])) for generator in generators],
                           axis=1)
        draws = xp.astype(to_backend(host, xp), x.dtype)
    total = None
    for index in range(samples):
        grad = _gradient_at(model, x + sigma * draws[index, ...], targets)
        total = grad if total is None else total + grad
    return _result(total / samples, activations, targets, "smoothgrad")


def integral_points(steps: int, rule: IntegralRule = "riemann_right") -> tuple[numpy.ndarray, numpy.ndarray]:
    """(α_k, weights w_k) with ∫₀¹ g(α) dα ≈ Σ_k w_k g(α_k) over ``steps`` points.

    ``riemann_right``: α_k = k/n, k = 1..n, w = 1/n (Sundararajan et al. 2017, eq. 3; zennit);
    ``riemann_left``: k = 0..n−1; ``riemann_middle``: (k + ½)/n; ``riemann_trapezoid``: α =
    linspace(0, 1, n), w = 1/(n − 1) with halved ends (captum's weights are 1/n with halved ends);
    ``gausslegendre``: Gauss–Legendre nodes and weights mapped from [−1, 1] to [0, 1].
    """
    steps = _positive_int(steps, "steps")
    if rule == "riemann_right":
        return numpy.arange(1, steps + 1) / steps, numpy.full(steps, 1.0 / steps)
    if rule == "riemann_left":
        return numpy.arange(steps) / steps, numpy.full(steps, 1.0 / steps)
    if rule == "riemann_middle":
        return (numpy.arange(steps) + 0.5) / steps, numpy.full(steps, 1.0 / steps)
    if rule == "riemann_trapezoid":
        if steps < 2:
            raise ValueError("the trapezoid rule needs steps ≥ 2")
        weights = numpy.full(steps, 1.0 / (steps - 1))
        weights[[0, -1]] /= 2
        return numpy.linspace(0.0, 1.0, steps), weights
    if rule == "gausslegendre":
        nodes, weights = numpy.polynomial.legendre.leggauss(steps)
        return (nodes + 1.0) / 2.0, weights / 2.0
    raise ValueError(f"unknown integral rule {rule!r}; choose riemann_right, riemann_left, riemann_middle, "
                     "riemann_trapezoid or gausslegendre")


def integrated_gradients(model: Any, x: Any, target: Any = None, steps: int = 20, baseline: Any = 0.0,
                         rule: IntegralRule = "riemann_right") -> Attribution:
    """Integrated gradients (Sundararajan et al. 2017, eq. 1): (x − x̄) ⊙ ∫₀¹ ∇f_c(x̄ + α(x − x̄)) dα.

    ``baseline`` x̄: a number or an array broadcastable to x, in model-input units (0 by default,
    as captum and zennit; with mean/std preprocessing that is the mean image). ``steps`` and
    ``rule``: the quadrature, see :func:`integral_points`. Completeness, Σ IG = f_c(x) − f_c(x̄),
    holds up to the quadrature error.
    """
    x, activations, targets = _start(model, x, target)
    xp = get_namespace(x)
    if isinstance(baseline, (int, float)):
        reference = xp.full(x.shape, float(baseline), dtype=x.dtype, device=x.device)
    else:
        reference = xp.astype(to_backend(numpy.asarray(to_numpy(baseline)), xp), x.dtype)
        try:
            reference = xp.broadcast_to(reference, x.shape)
        except ValueError:
            raise ShapeError(f"baseline of shape {tuple(reference.shape)} does not broadcast to x "
                             f"{tuple(x.shape)}") from None
    alphas, weights = integral_points(steps, rule)
    difference = x - reference
    total = None
    for alpha, weight in zip(alphas.tolist(), weights.tolist()):
        grad = _gradient_at(model, reference + alpha * difference, targets) * weight
        total = grad if total is None else total + grad
    return _result(difference * total, activations, targets, "integrated_gradients")


def _window_offsets(shape: tuple[int, ...], window: tuple[int, ...], stride: tuple[int, ...]) -> list[tuple]:
    """Start of every window along each spatial axis: 0, s, ..., ⌈(D − w)/s⌉·s (the last one cut at the edge)."""
    ranges = []
    for size, extent, step in zip(shape, window, stride):
        count = math.ceil((size - extent) / step) + 1
        ranges.append([index * step for index in range(count)])
    return list(itertools.product(*ranges))


def occlusion(model: Any, x: Any, target: Any = None, window: int | Sequence[int] = 8,
              stride: int | Sequence[int] | None = None, fill: float = 0.0, batch_size: int = 64) -> Attribution:
    """Occlusion (Zeiler & Fergus 2014): slide a window over the spatial axes (all channels at once),
    fill it with ``fill`` (model-input units) and record the drop Δ = f_c(x) − f_c(x_occluded);
    each input element gets the mean Δ of the windows covering it (captum's ``Occlusion``).

    ``window``/``stride``: an int or one per spatial axis; ``stride`` defaults to the window (no
    overlap) and may not exceed it, so every element is covered. Windows start at 0, s, 2s, ...,
    ⌈(D − w)/s⌉·s; the last is cut at the border. ``batch_size``: occluded inputs per model call.
    """
    x, activations, targets = _start(model, x, target)
    xp = get_namespace(x)
    spatial = tuple(x.shape[2:])
    if not spatial:
        raise ShapeError(f"occlusion slides over spatial axes; x of shape {tuple(x.shape)} has none")

    def per_axis(value: Any, name: str) -> tuple[int, ...]:
        values = (value,) * len(spatial) if isinstance(value, (int, numpy.integer)) else tuple(value)
        if len(values) != len(spatial) or any(isinstance(v, bool) or int(v) < 1 for v in values):
            raise ValueError(f"{name} must be a positive int or {len(spatial)} of them, got {value!r}")
        return tuple(int(v) for v in values)

    window = per_axis(window, "window")
    stride = window if stride is None else per_axis(stride, "stride")
    if any(w > size for w, size in zip(window, spatial)):
        raise ShapeError(f"occlusion window {window} is larger than the input's spatial shape {spatial}")
    if any(s > w for s, w in zip(stride, window)):
        raise ValueError(f"stride {stride} may not exceed the window {window}: elements would go uncovered")
    batch_size = _positive_int(batch_size, "batch_size")
    offsets = _window_offsets(spatial, window, stride)
    count = x.shape[0]
    base = _select(activations[-1], targets)
    total = xp.zeros(x.shape, dtype=x.dtype, device=x.device)
    covered = numpy.zeros(spatial)
    per_call = max(1, batch_size // count)
    for first in range(0, len(offsets), per_call):
        chunk = offsets[first:first + per_call]
        masks = numpy.zeros((len(chunk),) + spatial, dtype=bool)
        for row, offset in enumerate(chunk):
            masks[(row,) + tuple(slice(o, o + w) for o, w in zip(offset, window))] = True
        covered += masks.sum(axis=0)
        mask = to_backend(masks[:, None, None], xp)                       # (W, 1, 1, *spatial)
        occluded = xp.where(mask, xp.asarray(fill, dtype=x.dtype), x[None, ...])
        scores = model.forward(xp.reshape(occluded, (len(chunk) * count,) + tuple(x.shape[1:])))
        drops = base[None, :] - xp.reshape(_select(scores, numpy.tile(targets, len(chunk))), (len(chunk), count))
        total = total + xp.sum(xp.astype(mask, x.dtype) * xp.reshape(drops, (len(chunk), count) + (1,) * (x.ndim - 1)),
                               axis=0)
    return _result(total / xp.astype(to_backend(covered, xp), x.dtype), activations, targets, "occlusion")


# --- reference heatmaps -------------------------------------------------------------------------------
def random_relevance(model: Any, x: Any, target: Any = None, seed: int = 0,
                     distribution: Literal["uniform", "normal"] = "uniform",
                     image_ids: Sequence[int] | None = None) -> Attribution:
    """A heatmap that knows nothing of the model: the thesis' random relevance, uniform on [0, 1) per
    input element (``"uniform"``), or standard normal (``"normal"``). Image j draws from its own stream
    ``SeedSequence(seed, spawn_key=(image_ids[j],))``."""
    x, activations, targets = _start(model, x, target)
    xp = get_namespace(x)
    generators = [_sample_generator(seed, image) for image in _image_ids(image_ids, x.shape[0])]
    if distribution == "uniform":
        host = numpy.stack([generator.random(tuple(x.shape[1:])) for generator in generators])
    elif distribution == "normal":
        host = numpy.stack([generator.standard_normal(tuple(x.shape[1:])) for generator in generators])
    else:
        raise ValueError(f"distribution must be 'uniform' or 'normal', got {distribution!r}")
    relevance = xp.astype(to_backend(host, xp), x.dtype)
    return _result(relevance, activations, targets, "random" if distribution == "uniform" else "random_normal")


def uniform(model: Any, x: Any, target: Any = None) -> Attribution:
    """Kohlbrenner et al. 2020's uniform attribution: 1 for every input element (so μ equals the box's
    share of the image and μ_w = 1, the level every explanation should beat)."""
    x, activations, targets = _start(model, x, target)
    xp = get_namespace(x)
    return _result(xp.ones_like(x), activations, targets, "uniform")


#: Baseline methods by name, as ``attribute`` and the command line know them.
BASELINES: dict[str, Callable[..., Attribution]] = {
    "gradient": gradient,
    "gradient_x_input": gradient_x_input,
    "smoothgrad": smoothgrad,
    "integrated_gradients": integrated_gradients,
    "occlusion": occlusion,
    "guided_backprop": guided_backprop,
    "deconvnet": deconvnet,
    "random": random_relevance,
    "random_normal": lambda model, x, target=None, **options: random_relevance(
        model, x, target, distribution="normal", **options),
    "uniform": uniform,
}


def is_baseline(method: Any) -> bool:
    """Whether ``method`` names one of :data:`BASELINES` (rather than an LRP composite)."""
    return isinstance(method, str) and method in BASELINES


def attribute(model: Any, x: Any, target: Any = None, method: Any = "epsilon_plus", **options: Any) -> Attribution:
    """Attribute ``model``'s target scores on ``x`` with ``method``: a baseline name (:data:`BASELINES`),
    an LRP composite preset name (:data:`lrpcore.composites.PRESETS`) or a :class:`~lrpcore.Composite`.

    ``options`` go to the baseline function (e.g. ``samples=``, ``steps=``, ``window=``) or, for LRP,
    to :func:`lrpcore.explain` (``stabilizer=``, ``top=``, ``record=``). The result is an
    :class:`Attribution`; for LRP its ``explanation`` holds the full :class:`~lrpcore.Explanation`.
    """
    if is_baseline(method):
        return BASELINES[method](model, x, target, **options)
    from .composites import PRESETS, Composite
    from .explain import explain

    if isinstance(method, str) and method not in PRESETS:
        raise ValueError(f"unknown method {method!r}: neither a baseline ({', '.join(BASELINES)}) nor a composite "
                         f"preset ({', '.join(sorted(PRESETS))})")
    if not isinstance(method, (str, Composite)):
        raise TypeError(f"method must be a baseline name, a composite preset name or a Composite, "
                        f"got {type(method).__name__}")
    explanation = explain(model, x, target=target, composite=method, **options)
    name = method if isinstance(method, str) else method.name
    return Attribution(relevance=explanation.relevance, target=numpy.asarray(to_numpy(explanation.target)),
                       output=explanation.output, logits=explanation.logits, method=name, explanation=explanation)
