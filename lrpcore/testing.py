"""Verification helpers: a loop-over-j-and-k reference for every rule, and checks built on it.

``naive_relevance(layer, a, R, rule)`` computes

    R_j = Σ_k (z_jk / z_k) · R_k

with explicit Python loops over the connections (j, k) of the layer, each z_jk written
out from the rule's formula in the paper's notation. It shares nothing with the fast
path but the stabilizer function: the connections are enumerated from the layer's
geometry (dense pairs, convolution windows with stride and padding, pooling windows
and their winners), so agreement checks the im2col/col2im code, the term lists of
the rules and the explicit matrices at once.

For a rule lrpcore does not know (a rule you wrote), the reference loops over the
connections with the modified inputs and weights your ``branches`` returns, so the
engine's transposed maps are still checked against the plain formula
R_j = Σ_b σ_b Σ_k Σ_i a_ij ρ_i(w_jk) m_bk / z_bk · R_k.

``assert_rule_matches_reference`` runs that comparison on random layers and seeds.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Iterable

import numpy

from .backend import to_numpy
from .layers import AvgPool2d, Conv2d, Dense, Layer, LinearLayer, MaxPool2d
from .rules import AlphaBeta, Epsilon, Flat, Gamma, Pass, Rule, WSquare, Zero, ZBox, ZPlus

__all__ = [
    "Connection",
    "connections",
    "naive_relevance",
    "random_layer",
    "assert_rule_matches_reference",
    "LAYER_KINDS",
]


@dataclasses.dataclass(frozen=True)
class Connection:
    """Input j (flat index) feeds output k (flat index) through weight w_jk = weight[weight_index]."""

    j: int
    k: int
    weight_index: tuple[int, ...]
    weight: float


def _dense_connections(layer: Dense, sample: numpy.ndarray) -> list[Connection]:
    weight = to_numpy(layer.weight)
    return [Connection(j, k, (k, j), float(weight[k, j]))
            for k in range(weight.shape[0]) for j in range(weight.shape[1])]


def _conv_connections(layer: Conv2d, sample: numpy.ndarray) -> list[Connection]:
    weight = to_numpy(layer.weight)
    channels, height, width = sample.shape
    out_channels, _, kernel_h, kernel_w = weight.shape
    _, out_h, out_w = layer.output_shape(sample.shape)
    (stride_h, stride_w), (pad_h, pad_w) = layer.stride, layer.padding
    found = []
    for o in range(out_channels):
        for y in range(out_h):
            for x in range(out_w):
                k = (o * out_h + y) * out_w + x
                for c in range(channels):
                    for i in range(kernel_h):
                        for jj in range(kernel_w):
                            row, col = y * stride_h - pad_h + i, x * stride_w - pad_w + jj
                            if 0 <= row < height and 0 <= col < width:
                                j = (c * height + row) * width + col
                                found.append(Connection(j, k, (o, c, i, jj), float(weight[o, c, i, jj])))
    return found


def _pool_connections(layer: AvgPool2d | MaxPool2d, sample: numpy.ndarray, maxpool: str) -> list[Connection]:
    channels, height, width = sample.shape
    _, out_h, out_w = layer.output_shape(sample.shape)
    (kernel_h, kernel_w), (stride_h, stride_w), (pad_h, pad_w) = layer.kernel_size, layer.stride, layer.padding
    area = kernel_h * kernel_w
    found = []
    for c in range(channels):
        for y in range(out_h):
            for x in range(out_w):
                k = (c * out_h + y) * out_w + x
                window = []
                for i in range(kernel_h):
                    for jj in range(kernel_w):
                        row, col = y * stride_h - pad_h + i, x * stride_w - pad_w + jj
                        if 0 <= row < height and 0 <= col < width:
                            window.append((i * kernel_w + jj, (c * height + row) * width + col, sample[c, row, col]))
                if isinstance(layer, AvgPool2d):
                    shares = {offset: 1.0 / area for offset, _, _ in window}
                elif maxpool == "sum":
                    shares = {offset: 1.0 for offset, _, _ in window}
                else:
                    best = max(value for _, _, value in window)
                    winners = [offset for offset, _, value in window if value == best]
                    if maxpool == "winner_first":
                        winners = winners[:1]
                    shares = {offset: (1.0 / len(winners) if offset in winners else 0.0) for offset, _, _ in window}
                for offset, j, _ in window:
                    index = (offset, 0, 0) if isinstance(layer, AvgPool2d) or maxpool == "sum" \
                        else (0, c, offset, y, x)
                    found.append(Connection(j, k, index, shares[offset]))
    return found


def connections(layer: Layer, sample: Any, maxpool: str = "winner") -> list[Connection]:
    """Every (j, k, w_jk) of ``layer`` for one input ``sample`` (no batch axis), from explicit loops."""
    sample = numpy.asarray(to_numpy(sample), dtype=numpy.float64)
    if isinstance(layer, Dense):
        return _dense_connections(layer, sample)
    if isinstance(layer, Conv2d):
        return _conv_connections(layer, sample)
    if isinstance(layer, (AvgPool2d, MaxPool2d)):
        return _pool_connections(layer, sample, maxpool)
    raise TypeError(f"no loop reference for {layer.describe()}")


def _bias_of(layer: Layer, k: int, output_shape: tuple[int, ...], bias: Any | None) -> float:
    if bias is None:
        return 0.0
    values = numpy.asarray(to_numpy(bias), dtype=numpy.float64)
    if isinstance(layer, Dense):
        return float(values[k])
    per_channel = math.prod(output_shape[1:])
    return float(values[k // per_channel])


def _stabilize(rule: Rule, z: numpy.ndarray) -> numpy.ndarray:
    import array_api_compat.numpy as xp

    return numpy.asarray(rule.stabilize(xp.asarray(z[None])))[0]


def _divide(numerator: float, denominator: float) -> float:
    return 0.0 if denominator == 0 else numerator / denominator


def _positive(value: float) -> float:
    return value if value > 0 else 0.0


def _negative(value: float) -> float:
    return value if value < 0 else 0.0


def naive_relevance(layer: Layer, a: Any, relevance: Any, rule: Rule) -> numpy.ndarray:
    """Loop reference: R_j = Σ_k z_jk / z_k · R_k for one sample, written out per rule (float64 NumPy).

    ``a`` is one sample's input (with or without a batch axis of 1), ``relevance`` the
    relevance at the layer output for that sample. Returns the input relevance with ``a``'s shape.
    """
    a_host = numpy.asarray(to_numpy(a), dtype=numpy.float64)
    shape = a_host.shape
    rank = getattr(layer, "input_rank", a_host.ndim)
    sample = a_host[0] if a_host.ndim == rank else a_host
    upper = numpy.asarray(to_numpy(relevance), dtype=numpy.float64).reshape(-1)
    if isinstance(rule, Pass):
        return upper.reshape(shape)
    if not isinstance(layer, LinearLayer):
        raise TypeError(f"{rule.describe()} needs a linear layer, got {layer.describe()}")
    output_shape = tuple(layer.output_shape(sample.shape))
    links = connections(layer, sample, rule.maxpool)
    values = sample.reshape(-1)
    lower = numpy.zeros(values.size)
    outputs = upper.size
    bias = layer.relevance_bias()
    formula = _FORMULAS.get(type(rule))
    if formula is None:
        lower = _generic(layer, sample, upper, rule, links, output_shape)
    else:
        formula(rule, layer, values, upper, lower, links, outputs, output_shape, bias, sample)
    return lower.reshape(shape)


def _epsilon(rule, layer, values, upper, lower, links, outputs, output_shape, bias, sample) -> None:
    z = numpy.array([_bias_of(layer, k, output_shape, bias) if rule.use_bias else 0.0 for k in range(outputs)])
    for link in links:
        z[link.k] += values[link.j] * link.weight
    z = _stabilize(rule, z)
    for link in links:
        lower[link.j] += _divide(values[link.j] * link.weight, z[link.k]) * upper[link.k]


def _gamma(rule, layer, values, upper, lower, links, outputs, output_shape, bias, sample) -> None:
    gamma = rule.gamma
    biases = [_bias_of(layer, k, output_shape, bias) if rule.use_bias else 0.0 for k in range(outputs)]
    original = numpy.array(biases)
    for link in links:
        original[link.k] += values[link.j] * link.weight
    forms = [(_positive, None if not rule.symmetric else (original > 0))]
    if rule.symmetric:
        forms.append((_negative, original < 0))
    for favour, selected in forms:
        # z_jk + γ·z_jk^± : the favoured contributions are boosted by γ
        z = numpy.array([b + gamma * favour(b) for b in biases])
        for link in links:
            contribution = values[link.j] * link.weight
            z[link.k] += contribution + gamma * favour(contribution)
        z = _stabilize(rule, z)
        for link in links:
            if selected is not None and not selected[link.k]:
                continue
            contribution = values[link.j] * link.weight
            lower[link.j] += _divide(contribution + gamma * favour(contribution), z[link.k]) * upper[link.k]


def _alpha_beta(rule, layer, values, upper, lower, links, outputs, output_shape, bias, sample) -> None:
    biases = [_bias_of(layer, k, output_shape, bias) if rule.use_bias else 0.0 for k in range(outputs)]
    for part, scale in ((_positive, rule.alpha), (_negative, -rule.beta)):
        if scale == 0:
            continue
        z = numpy.array([part(b) for b in biases])
        for link in links:
            z[link.k] += part(values[link.j] * link.weight)
        z = _stabilize(rule, z)
        for link in links:
            lower[link.j] += scale * _divide(part(values[link.j] * link.weight), z[link.k]) * upper[link.k]


def _flat(rule, layer, values, upper, lower, links, outputs, output_shape, bias, sample) -> None:
    z = numpy.zeros(outputs)
    for link in links:
        z[link.k] += 1.0
    z = _stabilize(rule, z)
    for link in links:
        lower[link.j] += _divide(1.0, z[link.k]) * upper[link.k]


def _wsquare(rule, layer, values, upper, lower, links, outputs, output_shape, bias, sample) -> None:
    z = numpy.array([_bias_of(layer, k, output_shape, bias) ** 2 if rule.use_bias else 0.0
                     for k in range(outputs)])
    for link in links:
        z[link.k] += link.weight ** 2
    z = _stabilize(rule, z)
    for link in links:
        lower[link.j] += _divide(link.weight ** 2, z[link.k]) * upper[link.k]


def _zbox(rule, layer, values, upper, lower, links, outputs, output_shape, bias, sample) -> None:
    low = numpy.broadcast_to(numpy.asarray(to_numpy(rule.low), dtype=numpy.float64), (1, *sample.shape)).reshape(-1) \
        if not isinstance(rule.low, (int, float)) else numpy.full(values.size, float(rule.low))
    high = numpy.broadcast_to(numpy.asarray(to_numpy(rule.high), dtype=numpy.float64), (1, *sample.shape)).reshape(-1) \
        if not isinstance(rule.high, (int, float)) else numpy.full(values.size, float(rule.high))

    def z_jk(link: Connection) -> float:
        # x_i w_ij − l_i w⁺_ij − h_i w⁻_ij
        return values[link.j] * link.weight - low[link.j] * _positive(link.weight) \
            - high[link.j] * _negative(link.weight)

    z = numpy.zeros(outputs)
    for link in links:
        z[link.k] += z_jk(link)
    z = _stabilize(rule, z)
    for link in links:
        lower[link.j] += _divide(z_jk(link), z[link.k]) * upper[link.k]


_FORMULAS: dict[type, Callable[..., None]] = {
    Zero: _epsilon, Epsilon: _epsilon, Gamma: _gamma, AlphaBeta: _alpha_beta, ZPlus: _alpha_beta,
    Flat: _flat, WSquare: _wsquare, ZBox: _zbox,
}


def _generic(layer: LinearLayer, sample: numpy.ndarray, upper: numpy.ndarray, rule: Rule,
             links: list[Connection], output_shape: tuple[int, ...]) -> numpy.ndarray:
    """Loops over (j, k) with the modified inputs/weights of ``rule.branches`` (rules lrpcore does not know)."""
    import array_api_compat.numpy as xp

    batch = xp.asarray(sample[None])
    outputs = upper.size
    lower = numpy.zeros(sample.size)
    for branch in rule.branches(layer, batch, layer.relevance_weight(batch, rule.maxpool), layer.relevance_bias()):
        mask = numpy.ones(outputs) if branch.mask is None else numpy.asarray(branch.mask, dtype=float).reshape(-1)
        z = numpy.zeros(outputs)
        for term in branch.terms:
            inputs = numpy.broadcast_to(numpy.asarray(term.input, dtype=float), batch.shape).reshape(-1)
            weights = numpy.asarray(term.weight, dtype=float)
            for k in range(outputs):
                z[k] += _bias_of(layer, k, output_shape, term.bias)
            for link in links:
                z[link.k] += inputs[link.j] * weights[link.weight_index]
        z = _stabilize(rule, z)
        for term in branch.terms:
            inputs = numpy.broadcast_to(numpy.asarray(term.input, dtype=float), batch.shape).reshape(-1)
            weights = numpy.asarray(term.weight, dtype=float)
            for link in links:
                share = inputs[link.j] * weights[link.weight_index]
                lower[link.j] += branch.scale * mask[link.k] * _divide(share, z[link.k]) * upper[link.k]
    return lower


# --- random layers and the reference check -------------------------------------------------------
#: The layer kinds ``random_layer`` builds: a small instance of each with stride and padding.
LAYER_KINDS = ("dense", "conv2d", "avgpool2d", "maxpool2d")


def random_layer(kind: str, seed: int, dtype: Any = numpy.float64) -> tuple[Layer, tuple[int, ...]]:
    """A small random layer of ``kind`` and the per-sample input shape it takes."""
    rng = numpy.random.default_rng(seed)
    if kind == "dense":
        return Dense(rng.normal(size=(4, 6)).astype(dtype), rng.normal(size=4).astype(dtype)), (6,)
    if kind == "conv2d":
        return (Conv2d(rng.normal(size=(3, 2, 3, 3)).astype(dtype), rng.normal(size=3).astype(dtype) * 0.5,
                       stride=2, padding=1), (2, 5, 5))
    if kind == "avgpool2d":
        return AvgPool2d(3, stride=2, padding=1), (2, 5, 5)
    if kind == "maxpool2d":
        return MaxPool2d(2, stride=2), (2, 4, 4)
    raise ValueError(f"unknown layer kind {kind!r}; expected one of {LAYER_KINDS}")


def random_input(shape: tuple[int, ...], seed: int, nonnegative: bool, ties: bool = False) -> numpy.ndarray:
    """One random sample (batch axis 1): mixed signs, or ReLU-like non-negative values (with exact zeros)."""
    rng = numpy.random.default_rng(seed + 1000)
    values = rng.normal(size=(1, *shape))
    if nonnegative:
        values = numpy.maximum(values, 0.0)
    if ties:
        values = numpy.round(values * 2) / 2      # repeated values: max-pool ties
    return values


def assert_rule_matches_reference(rule: Rule, layer_kind: str | Layer, seeds: Iterable[int] = (0, 1, 2),
                                  nonnegative: bool | None = None, rtol: float = 1e-10,
                                  input_shape: tuple[int, ...] | None = None) -> float:
    """Check ``rule``'s fast path and explicit matrix against :func:`naive_relevance`.

    For each seed: a random layer (or the given one), a random input (both signs and
    non-negative unless ``nonnegative`` fixes it) and random upper relevance. Raises
    ``AssertionError`` naming the seed, input kind and deviation; returns the largest
    deviation relative to the reference's largest magnitude.
    """
    from .matrix import relevance_matrix

    worst = 0.0
    signs = (False, True) if nonnegative is None else (nonnegative,)
    for seed in seeds:
        if isinstance(layer_kind, Layer):
            layer, shape = layer_kind, input_shape
            if shape is None:
                raise ValueError("pass input_shape together with a layer instance")
        else:
            layer, shape = random_layer(layer_kind, seed)
        for positive in signs:
            a = random_input(shape, seed, positive, ties=isinstance(layer, MaxPool2d))
            upper = numpy.random.default_rng(seed + 7).normal(size=(1, *layer.output_shape(shape)))
            reference = naive_relevance(layer, a, upper, rule)
            fast = to_numpy(rule.relevance(layer, a, upper))
            matrix = to_numpy(relevance_matrix(layer, a, rule))
            via_matrix = (matrix @ upper.reshape(-1)).reshape(a.shape)
            scale = max(float(numpy.abs(reference).max()), 1e-300)
            for name, result in (("fast path", fast), ("explicit matrix", via_matrix)):
                deviation = float(numpy.abs(result - reference).max()) / scale
                worst = max(worst, deviation)
                if not deviation <= rtol:
                    raise AssertionError(
                        f"{rule!r} on {layer.describe()} (seed {seed}, "
                        f"{'non-negative' if positive else 'mixed-sign'} input): {name} deviates from the "
                        f"loop reference by {deviation:.3e} (relative), more than rtol={rtol:g}")
    return worst
