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

Writing and verifying a new rule
--------------------------------
A rule for layers linear in their input is (Montavon et al. 2019, eq. 10.A)

    R_j = Σ_k  m(a)_j ρ(w_jk) / incr(Σ_j m(a)_j ρ(w_jk) + ρ(b_k)) · R_k

with a parameter map ρ, an input modifier m and a stabilizer incr. :class:`SimpleRule` takes the
three as arguments, so a new rule is a few lines and gets the fast path, the explicit matrix
(:func:`lrpcore.relevance_matrix`), the trace and the loop reference for free::

    from lrpcore.backend import clip_max, clip_min
    from lrpcore.testing import SimpleRule, assert_rule_matches_reference, check_conservation

    class ClippedEpsilon(SimpleRule):      # LRP-ε on clipped weights: ρ(w) = clip(w, −c, c)
        def __init__(self, epsilon=0.25, clip=0.5):
            super().__init__(rho=lambda w: clip_max(clip_min(w, -clip), clip), epsilon=epsilon,
                             name=f"ClippedEpsilon(c={clip})")

    assert_rule_matches_reference(ClippedEpsilon(), "conv2d")
    check_conservation(ClippedEpsilon(), "dense", absorbed=True)

(For several terms or branches, subclass :class:`lrpcore.rules.Rule` and return
``[Branch([Term(input, weight, bias), ...])]`` from ``branches``.)

Property checks a user can run on any rule, each returning the measured number and raising
``AssertionError`` with the layer, seed and size of the violation:

- :func:`check_conservation`: Σ_j R_j = Σ_k R_k, or (``absorbed=True``) Σ_j R_j equals the
  relevance not absorbed by the bias and stabilizer, Σ_b scale_b Σ_k m_bk R_k · z⁰_bk / z_bk with
  z⁰ the denominator without bias and stabilizer (Bach et al. 2015, eq. 51–52);
- :func:`check_positivity`: non-negative inputs and upper relevance give non-negative lower
  relevance (Montavon et al. 2017 for z⁺/w²; Kohlbrenner et al. 2020);
- :func:`check_equivalence` and :func:`check_limit`: the rule equals another rule, or approaches
  it as a parameter moves (ε → 0 and γ → 0 give LRP-0; γ → ∞ gives z⁺ where Σ_j z⁺_jk > 0);
- :func:`check_rescaling_invariance`: scaling the weights and bias of each output k by c_k > 0
  leaves R_j unchanged (true when z_jk and z_k are homogeneous of the same degree in w_k: LRP-0,
  γ, αβ, z⁺, w², flat; not LRP-ε with a fixed ε).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Iterable, Sequence

import numpy

from .backend import to_numpy
from .layers import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d, AdaptiveMaxPool2d, AvgPool2d,
                     BatchNormLinear, Conv1d, Conv2d, Dense, Layer, LinearLayer, LocalResponseNorm, MaxPool2d,
                     SumPool2d)
from .rules import AlphaBeta, Branch, Epsilon, Flat, Gamma, Pass, Rule, Term, WSquare, Zero, ZBox, ZPlus, \
    branch_denominator

__all__ = [
    "Connection",
    "connections",
    "naive_relevance",
    "random_layer",
    "assert_rule_matches_reference",
    "LAYER_KINDS",
    "SimpleRule",
    "check_conservation",
    "check_positivity",
    "check_equivalence",
    "check_limit",
    "check_rescaling_invariance",
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
    """Convolution windows, with ``groups``: output o sees only the input channels of its group."""
    weight = to_numpy(layer.weight)
    channels, height, width = sample.shape
    out_channels, per_group, kernel_h, kernel_w = weight.shape
    groups = getattr(layer, "groups", 1)
    outputs_per_group = out_channels // groups
    _, out_h, out_w = layer.output_shape(sample.shape)
    (stride_h, stride_w), (pad_h, pad_w) = layer.stride, layer.padding
    found = []
    for o in range(out_channels):
        first_channel = (o // outputs_per_group) * per_group
        for y in range(out_h):
            for x in range(out_w):
                k = (o * out_h + y) * out_w + x
                for c_in_group in range(per_group):
                    c = first_channel + c_in_group
                    for i in range(kernel_h):
                        for jj in range(kernel_w):
                            row, col = y * stride_h - pad_h + i, x * stride_w - pad_w + jj
                            if 0 <= row < height and 0 <= col < width:
                                j = (c * height + row) * width + col
                                found.append(Connection(j, k, (o, c_in_group, i, jj),
                                                        float(weight[o, c_in_group, i, jj])))
    return found


def _conv1d_connections(layer: Conv1d, sample: numpy.ndarray) -> list[Connection]:
    weight = to_numpy(layer.weight)
    channels, length = sample.shape
    out_channels, per_group, kernel = weight.shape
    outputs_per_group = out_channels // layer.groups
    _, out_length = layer.output_shape(sample.shape)
    found = []
    for o in range(out_channels):
        first_channel = (o // outputs_per_group) * per_group
        for t in range(out_length):
            k = o * out_length + t
            for c_in_group in range(per_group):
                c = first_channel + c_in_group
                for i in range(kernel):
                    position = t * layer.stride - layer.padding + i
                    if 0 <= position < length:
                        found.append(Connection(c * length + position, k, (o, c_in_group, i),
                                                float(weight[o, c_in_group, i])))
    return found


def _window_starts(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> list[int]:
    """Start (in input coordinates, may be negative) of every pooling window along one axis.

    Written from PyTorch's definition: windows step by ``stride`` from −padding; in floor mode a
    window must end inside the padded input; in ceil mode a window may run past it as long as the
    window before it did not reach the end and it starts inside the input or its left padding.
    """
    starts = []
    index = 0
    while True:
        start = index * stride - padding
        fits = start + kernel <= size + padding
        overhang = ceil_mode and start < size and (index == 0 or start - stride + kernel < size + padding)
        if not (fits or overhang):
            break
        starts.append(start)
        index += 1
    return starts


def _divisor(starts: list[int], index: int, kernel: int, size: int, padding: int, include_pad: bool) -> int:
    """Cells of window ``index`` counted by an average: inside [−p, n + p) or, without padding, [0, n)."""
    start = starts[index]
    low, high = (-padding, size + padding) if include_pad else (0, size)
    return sum(1 for cell in range(start, start + kernel) if low <= cell < high)


def _pool_connections(layer: AvgPool2d | MaxPool2d | SumPool2d, sample: numpy.ndarray,
                      maxpool: str) -> list[Connection]:
    """Pooling windows with PyTorch's padding, ceil mode and divisors, enumerated cell by cell."""
    channels, height, width = sample.shape
    (kernel_h, kernel_w), (stride_h, stride_w), (pad_h, pad_w) = layer.kernel_size, layer.stride, layer.padding
    ceil_mode = getattr(layer, "ceil_mode", False)
    include_pad = getattr(layer, "count_include_pad", True)
    rows = _window_starts(height, kernel_h, stride_h, pad_h, ceil_mode)
    cols = _window_starts(width, kernel_w, stride_w, pad_w, ceil_mode)
    out_h, out_w = len(rows), len(cols)
    # a weight that differs per window is stored (K, Ho, Wo); otherwise (K, 1, 1)
    per_window = isinstance(layer, AvgPool2d) and (
        (not include_pad and (pad_h or pad_w))
        or any(start + kernel_h > height + pad_h for start in rows)
        or any(start + kernel_w > width + pad_w for start in cols))
    found = []
    for c in range(channels):
        for y in range(out_h):
            for x in range(out_w):
                k = (c * out_h + y) * out_w + x
                window = []
                for i in range(kernel_h):
                    for jj in range(kernel_w):
                        row, col = rows[y] + i, cols[x] + jj
                        if 0 <= row < height and 0 <= col < width:
                            window.append((i * kernel_w + jj, (c * height + row) * width + col, sample[c, row, col]))
                if isinstance(layer, AvgPool2d):
                    divisor = (_divisor(rows, y, kernel_h, height, pad_h, include_pad)
                               * _divisor(cols, x, kernel_w, width, pad_w, include_pad))
                    shares = {offset: 1.0 / divisor for offset, _, _ in window}
                elif isinstance(layer, SumPool2d):
                    shares = {offset: layer.scale for offset, _, _ in window}
                else:
                    shares = _max_shares(window, maxpool)
                for offset, j, _ in window:
                    if per_window:
                        index = (offset, y, x)
                    elif isinstance(layer, (AvgPool2d, SumPool2d)) or maxpool == "sum":
                        index = (offset, 0, 0)
                    else:
                        index = (0, c, offset, y, x)
                    found.append(Connection(j, k, index, shares[offset]))
    return found


def _max_shares(window: list[tuple[int, int, float]], maxpool: str) -> dict[int, float]:
    """Weight of each window cell (offset → w) for a max pool: the winners', or 1 each for ``"sum"``."""
    if maxpool == "sum":
        return {offset: 1.0 for offset, _, _ in window}
    best = max(value for _, _, value in window)
    winners = [offset for offset, _, value in window if value == best]
    if maxpool == "winner_first":
        winners = winners[:1]
    return {offset: (1.0 / len(winners) if offset in winners else 0.0) for offset, _, _ in window}


def _adaptive_connections(layer: AdaptiveAvgPool2d | AdaptiveMaxPool2d, sample: numpy.ndarray,
                          maxpool: str) -> list[Connection]:
    """PyTorch's adaptive windows, start = floor(i·n/O), end = ceil((i+1)·n/O), enumerated cell by cell."""
    channels, height, width = sample.shape
    out_h, out_w = layer.output_size
    rows = [(math.floor(i * height / out_h), math.ceil((i + 1) * height / out_h)) for i in range(out_h)]
    cols = [(math.floor(i * width / out_w), math.ceil((i + 1) * width / out_w)) for i in range(out_w)]
    regular = height % out_h == 0 and width % out_w == 0      # the layer then stores (K, 1, 1) weights
    longest_w = max(end - start for start, end in cols)
    found = []
    for c in range(channels):
        for y, (top, bottom) in enumerate(rows):
            for x, (left, right) in enumerate(cols):
                k = (c * out_h + y) * out_w + x
                width_here = right - left if regular else longest_w
                window = [(a * width_here + b, (c * height + row) * width + col, sample[c, row, col])
                          for a, row in enumerate(range(top, bottom)) for b, col in enumerate(range(left, right))]
                if isinstance(layer, AdaptiveAvgPool2d):
                    shares = {offset: 1.0 / ((bottom - top) * (right - left)) for offset, _, _ in window}
                else:
                    shares = _max_shares(window, maxpool)
                for offset, j, _ in window:
                    if isinstance(layer, AdaptiveAvgPool2d) or maxpool == "sum":
                        index = (offset, 0, 0) if regular else (offset, y, x)
                    else:
                        index = (0, c, offset, y, x)
                    found.append(Connection(j, k, index, shares[offset]))
    return found


def _lrn_connections(layer: LocalResponseNorm, sample: numpy.ndarray) -> list[Connection]:
    """Binder et al. 2016's Taylor terms of local response normalisation, written out per (j, k).

    y_k = x_k S_k^(−β), S_k = k + (α/n) Σ_{j ∈ N(k)} x_j²; the own term z_kk = x_k (k + (α/n) x_k²)^(−β),
    a neighbour's term z_jk = x_j ∂y_k/∂x_j = −2β(α/n) x_k x_j² S_k^(−β−1); w_jk = z_jk / x_j.
    """
    channels = sample.shape[0]
    rest = sample.shape[1:]
    positions = int(numpy.prod(rest)) if rest else 1
    flat = sample.reshape(channels, positions)
    n, alpha, beta, constant = layer.size, layer.alpha, layer.beta, layer.k
    offsets = list(range(-(n // 2), (n - 1) // 2 + 1))
    found = []
    for out_channel in range(channels):
        for position in range(positions):
            k = out_channel * positions + position
            window = [out_channel + d for d in offsets if 0 <= out_channel + d < channels]
            total = constant + alpha / n * sum(flat[j, position] ** 2 for j in window)
            x_k = flat[out_channel, position]
            spatial = numpy.unravel_index(position, rest) if rest else ()
            for index, d in enumerate(offsets):
                j_channel = out_channel + d
                if not 0 <= j_channel < channels:
                    continue
                if d == 0:
                    weight = (constant + alpha / n * x_k ** 2) ** (-beta)
                else:
                    weight = -2.0 * beta * alpha / n * x_k * flat[j_channel, position] * total ** (-beta - 1.0)
                found.append(Connection(j_channel * positions + position, k,
                                        (0, index, out_channel, *(int(i) for i in spatial)), float(weight)))
    return found


def _batchnorm_connections(layer: BatchNormLinear, sample: numpy.ndarray) -> list[Connection]:
    """Each output connected to its own input with weight γ_c / √(σ²_c + eps)."""
    gamma, variance = to_numpy(layer.weight), to_numpy(layer.running_var)
    channels = sample.shape[0]
    positions = int(numpy.prod(sample.shape[1:])) if sample.ndim > 1 else 1
    found = []
    for c in range(channels):
        scale = float(gamma[c]) / math.sqrt(float(variance[c]) + layer.eps)
        for position in range(positions):
            j = c * positions + position
            found.append(Connection(j, j, (c,), scale))
    return found


def connections(layer: Layer, sample: Any, maxpool: str = "winner") -> list[Connection]:
    """Every (j, k, w_jk) of ``layer`` for one input ``sample`` (no batch axis), from explicit loops."""
    sample = numpy.asarray(to_numpy(sample), dtype=numpy.float64)
    if isinstance(layer, Dense):
        return _dense_connections(layer, sample)
    if isinstance(layer, Conv2d):
        return _conv_connections(layer, sample)
    if isinstance(layer, Conv1d):
        return _conv1d_connections(layer, sample)
    if isinstance(layer, (AvgPool2d, MaxPool2d, SumPool2d)):
        return _pool_connections(layer, sample, maxpool)
    if isinstance(layer, (AdaptiveAvgPool2d, AdaptiveMaxPool2d)):
        return _adaptive_connections(layer, sample, maxpool)
    if isinstance(layer, (AdaptiveAvgPool1d, AdaptiveMaxPool1d)):       # a sequence is an image of height 1
        return _adaptive_connections(layer._plane, sample[:, None, :], maxpool)
    if isinstance(layer, LocalResponseNorm):
        return _lrn_connections(layer, sample)
    if isinstance(layer, BatchNormLinear):
        return _batchnorm_connections(layer, sample)
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
LAYER_KINDS = ("dense", "conv2d", "avgpool2d", "maxpool2d", "conv2d_grouped", "conv2d_depthwise", "conv1d_grouped",
               "avgpool2d_ceil", "avgpool2d_exclude_pad", "maxpool2d_ceil", "sumpool2d", "adaptive_avgpool2d",
               "adaptive_maxpool2d", "adaptive_avgpool1d", "lrn", "batchnorm_linear")

#: Layers whose relevance weight selects window maxima: their random inputs get ties.
MAX_POOLS = (MaxPool2d, AdaptiveMaxPool2d, AdaptiveMaxPool1d)


def random_layer(kind: str, seed: int, dtype: Any = numpy.float64) -> tuple[Layer, tuple[int, ...]]:
    """A small random layer of ``kind`` and the per-sample input shape it takes."""
    rng = numpy.random.default_rng(seed)

    def normal(*shape: int, scale: float = 1.0) -> numpy.ndarray:
        return (rng.normal(size=shape) * scale).astype(dtype)

    if kind == "dense":
        return Dense(normal(4, 6), normal(4)), (6,)
    if kind == "conv2d":
        return Conv2d(normal(3, 2, 3, 3), normal(3, scale=0.5), stride=2, padding=1), (2, 5, 5)
    if kind == "avgpool2d":
        return AvgPool2d(3, stride=2, padding=1), (2, 5, 5)
    if kind == "maxpool2d":
        return MaxPool2d(2, stride=2), (2, 4, 4)
    if kind == "conv2d_grouped":          # 4 → 6 channels in 2 groups
        return Conv2d(normal(6, 2, 3, 3), normal(6, scale=0.5), stride=2, padding=1, groups=2), (4, 5, 5)
    if kind == "conv2d_depthwise":        # 3 channels, 2 filters each
        return Conv2d(normal(6, 1, 3, 3), normal(6, scale=0.5), stride=1, padding=1, groups=3), (3, 4, 4)
    if kind == "conv1d_grouped":
        return Conv1d(normal(4, 1, 3), normal(4, scale=0.5), stride=2, padding=1, groups=2), (2, 7)
    if kind == "avgpool2d_ceil":          # the last window runs past the padded input
        return AvgPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 6, 6)
    if kind == "avgpool2d_exclude_pad":
        return AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (2, 5, 5)
    if kind == "maxpool2d_ceil":
        return MaxPool2d(3, stride=2, ceil_mode=True), (2, 6, 6)
    if kind == "sumpool2d":
        return SumPool2d(2, stride=1, scale=0.5), (2, 4, 4)
    if kind == "adaptive_avgpool2d":      # uneven, overlapping windows
        return AdaptiveAvgPool2d((3, 2)), (2, 5, 7)
    if kind == "adaptive_maxpool2d":
        return AdaptiveMaxPool2d((2, 3)), (2, 5, 5)
    if kind == "adaptive_avgpool1d":
        return AdaptiveAvgPool1d(3), (2, 7)
    if kind == "lrn":                     # α large enough that the neighbours' terms matter
        return LocalResponseNorm(3, alpha=0.5, beta=0.75, k=1.0), (5, 2, 2)
    if kind == "batchnorm_linear":
        return (BatchNormLinear(normal(3), rng.uniform(0.5, 2.0, 3).astype(dtype), normal(3), normal(3)),
                (3, 2, 2))
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
            a = random_input(shape, seed, positive, ties=isinstance(layer, MAX_POOLS))
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


# --- writing a rule in a few lines -----------------------------------------------------------------
class SimpleRule(Rule):
    """A one-term rule from its parts: R_j = Σ_k m(a)_j ρ(w_jk) / incr(Σ_j m(a)_j ρ(w_jk) + ρ(b_k)) · R_k.

    ``rho``: parameter map applied to the weight and (if ``use_bias``) the bias, an array function
    such as ``lambda w: w + 0.25 * clip_min(w)`` (LRP-γ on non-negative inputs); default identity.
    ``input_modifier``: m(a), e.g. ``lambda a: xp.ones_like(a)`` (flat); default identity.
    ``stabilizer``/``epsilon``: incr, as for every :class:`~lrpcore.rules.Rule`. ``name``: the label
    in tables. The rule gets the fast path, the explicit matrix, the trace and the loop reference
    (:func:`naive_relevance` loops over its modified inputs and weights) without further code.

    How to write one (LRP-ε on clipped weights), use it in a composite and verify it::

        class ClippedEpsilon(SimpleRule):
            def __init__(self, epsilon=0.25, clip=0.5):
                super().__init__(rho=lambda w: clip_max(clip_min(w, -clip), clip), epsilon=epsilon,
                                 name=f"ClippedEpsilon(c={clip})")

        composite = Composite(by_type={Dense: ClippedEpsilon()})
        assert_rule_matches_reference(ClippedEpsilon(), "conv2d")        # fast path = matrix = loops
        check_conservation(ClippedEpsilon(), "dense", absorbed=True)     # conserves up to bias/ε
    """

    def __init__(self, rho: Callable[[Any], Any] | None = None, input_modifier: Callable[[Any], Any] | None = None,
                 stabilizer: Any = "zennit", epsilon: float = 1e-6, use_bias: bool = True,
                 name: str = "SimpleRule", maxpool: Any = "winner"):
        super().__init__(stabilizer=stabilizer, epsilon=epsilon, maxpool=maxpool)
        self.rho = rho
        self.input_modifier = input_modifier
        self.use_bias = use_bias
        self.name = name

    def describe(self) -> str:
        return self.name

    def branches(self, layer, a, weight, bias):
        modified = a if self.input_modifier is None else self.input_modifier(a)
        rho = (lambda value: value) if self.rho is None else self.rho
        term_bias = rho(bias) if (self.use_bias and bias is not None) else None
        return [Branch([Term(modified, rho(weight), term_bias)])]


# --- property checks -------------------------------------------------------------------------------
def _cases(rule: Rule, layer_kind: str | Layer, seeds: Iterable[int], nonnegative: bool,
           input_shape: tuple[int, ...] | None, positive_relevance: bool = False):
    """(seed, layer, input, upper relevance) for each seed, on random layers or the given one."""
    for seed in seeds:
        if isinstance(layer_kind, Layer):
            if input_shape is None:
                raise ValueError("pass input_shape together with a layer instance")
            layer, shape = layer_kind, input_shape
        else:
            layer, shape = random_layer(layer_kind, seed)
        a = random_input(shape, seed, nonnegative, ties=isinstance(layer, MAX_POOLS))
        upper = numpy.random.default_rng(seed + 7).normal(size=(1, *layer.output_shape(shape)))
        if positive_relevance:
            upper = numpy.abs(upper)
        yield seed, layer, a, upper


def _label(rule: Rule, layer: Layer, seed: int) -> str:
    return f"{rule!r} on {layer.describe()} (seed {seed})"


def _unabsorbed(rule: Rule, layer: Layer, a: numpy.ndarray, upper: numpy.ndarray) -> float:
    """Σ_b scale_b Σ_k m_bk R_k z⁰_bk / z_bk: the relevance that a bias-free, stabilizer-free sum passes on."""
    total = 0.0
    for branch in rule.layer_branches(layer, a):
        z = numpy.asarray(to_numpy(rule.stabilize(branch_denominator(layer, branch))), dtype=numpy.float64)
        bare = None
        for term in branch.terms:
            part = numpy.asarray(to_numpy(layer.linear_forward(term.input, term.weight, None)), dtype=numpy.float64)
            bare = part if bare is None else bare + part
        mask = 1.0 if branch.mask is None else numpy.asarray(to_numpy(branch.mask), dtype=numpy.float64)
        ratio = numpy.divide(bare, z, out=numpy.zeros_like(bare), where=z != 0)
        total += branch.scale * float((mask * upper * ratio).sum())
    return total


def check_conservation(rule: Rule, layer_kind: str | Layer = "dense", seeds: Iterable[int] = (0, 1, 2),
                       absorbed: bool = False, nonnegative: bool = True, rtol: float | None = None,
                       input_shape: tuple[int, ...] | None = None) -> float:
    """Check that ``rule`` conserves relevance on random layers: returns the worst relative error.

    ``absorbed=False``: Σ_j R_j = Σ_k R_k (rules without bias and with a negligible stabilizer).
    ``absorbed=True``: Σ_j R_j = Σ_b scale_b Σ_k m_bk R_k · z⁰_bk / z_bk, where z⁰ is the branch's
    denominator without bias and stabilizer: the relevance is conserved up to what the bias and ε
    absorb (Bach et al. 2015, eq. 51–52), which holds for every correctly implemented term rule.
    The error is |Σ_j R_j − expected| / Σ_k |R_k|; ``rtol`` defaults to 1e-9 with ``absorbed``
    (an identity up to rounding) and 1e-4 without (the default stabilizer ε = 1e-6 absorbs a little).
    """
    rtol = (1e-9 if absorbed else 1e-4) if rtol is None else rtol
    worst = 0.0
    for seed, layer, a, upper in _cases(rule, layer_kind, seeds, nonnegative, input_shape):
        lower = numpy.asarray(to_numpy(rule.relevance(layer, a, upper)), dtype=numpy.float64)
        expected = _unabsorbed(rule, layer, a, upper) if absorbed else float(upper.sum())
        error = abs(float(lower.sum()) - expected) / max(float(numpy.abs(upper).sum()), 1e-300)
        worst = max(worst, error)
        if not error <= rtol:
            what = "the relevance not absorbed by bias and stabilizer" if absorbed else "Σ_k R_k"
            raise AssertionError(f"{_label(rule, layer, seed)} does not conserve relevance: Σ_j R_j = "
                                 f"{lower.sum():.6g} but {what} = {expected:.6g} (error {error:.3e} of Σ|R_k|, "
                                 f"more than rtol={rtol:g})")
    return worst


def check_positivity(rule: Rule, layer_kind: str | Layer = "dense", seeds: Iterable[int] = (0, 1, 2),
                     atol: float = 1e-12, input_shape: tuple[int, ...] | None = None) -> float:
    """Check that non-negative inputs and non-negative upper relevance give non-negative R_j.

    Returns the most negative R_j relative to max|R_j| (0 when none is negative); raises when it
    is below −``atol``. z⁺, w², flat and α1β0 preserve positivity; LRP-0/ε/γ do not in general.
    """
    worst = 0.0
    for seed, layer, a, upper in _cases(rule, layer_kind, seeds, True, input_shape, positive_relevance=True):
        lower = numpy.asarray(to_numpy(rule.relevance(layer, a, upper)), dtype=numpy.float64)
        scale = max(float(numpy.abs(lower).max()), 1e-300)
        negative = max(0.0, -float(lower.min()) / scale)
        worst = max(worst, negative)
        if not negative <= atol:
            position = numpy.unravel_index(int(numpy.argmin(lower)), lower.shape)
            raise AssertionError(f"{_label(rule, layer, seed)} does not preserve positivity: R_j = "
                                 f"{lower.min():.3e} at {tuple(int(i) for i in position)} (−{negative:.3e} of "
                                 f"max|R_j|) from non-negative inputs and relevance")
    return worst


def _deviation(rule: Rule, other: Rule, layer: Layer, a: numpy.ndarray, upper: numpy.ndarray) -> float:
    first = numpy.asarray(to_numpy(rule.relevance(layer, a, upper)), dtype=numpy.float64)
    second = numpy.asarray(to_numpy(other.relevance(layer, a, upper)), dtype=numpy.float64)
    return float(numpy.abs(first - second).max()) / max(float(numpy.abs(second).max()), 1e-300)


def check_equivalence(rule: Rule, other: Rule, layer_kind: str | Layer = "dense", seeds: Iterable[int] = (0, 1, 2),
                      nonnegative: bool | None = None, rtol: float = 1e-9,
                      input_shape: tuple[int, ...] | None = None) -> float:
    """Check that ``rule`` and ``other`` redistribute identically; returns max|R − R_other| / max|R_other|.

    ``nonnegative``: None tries both non-negative and mixed-sign inputs.
    """
    worst = 0.0
    signs = (True, False) if nonnegative is None else (nonnegative,)
    for positive in signs:
        for seed, layer, a, upper in _cases(rule, layer_kind, seeds, positive, input_shape):
            deviation = _deviation(rule, other, layer, a, upper)
            worst = max(worst, deviation)
            if not deviation <= rtol:
                raise AssertionError(f"{_label(rule, layer, seed)} differs from {other!r} by {deviation:.3e} "
                                     f"(relative) on {'non-negative' if positive else 'mixed-sign'} input, "
                                     f"more than rtol={rtol:g}")
    return worst


def check_limit(rule_at: Callable[[float], Rule], limit: Rule, values: Sequence[float],
                layer_kind: str | Layer = "dense", seeds: Iterable[int] = (0, 1, 2), nonnegative: bool = True,
                rtol: float = 1e-3, input_shape: tuple[int, ...] | None = None) -> list[float]:
    """Check that ``rule_at(v)`` approaches ``limit`` along ``values`` (e.g. ε = 1e-2, 1e-4, 1e-6 towards LRP-0).

    Returns the deviation (max over seeds, as in :func:`check_equivalence`) at each value; raises
    unless the deviations do not grow along ``values`` and the last is at most ``rtol``.
    """
    values = list(values)
    if len(values) < 2:
        raise ValueError("check_limit needs at least two parameter values")
    deviations = []
    for value in values:
        rule = rule_at(value)
        deviations.append(max(_deviation(rule, limit, layer, a, upper)
                              for _, layer, a, upper in _cases(rule, layer_kind, seeds, nonnegative, input_shape)))
    growing = [index for index in range(1, len(values)) if deviations[index] > deviations[index - 1] * (1 + 1e-9)]
    if growing or not deviations[-1] <= rtol:
        table = ", ".join(f"{value:g}: {deviation:.3e}" for value, deviation in zip(values, deviations))
        raise AssertionError(f"{rule_at(values[-1])!r} does not approach {limit!r} on {layer_kind if isinstance(layer_kind, str) else layer_kind.describe()}: "
                             f"deviations {table} (must not grow and end ≤ rtol={rtol:g})")
    return deviations


def _rescaled(layer: Layer, factors: numpy.ndarray) -> Layer:
    """A copy of a Dense/Conv2d layer with output k's weights and bias multiplied by factors[k]."""
    import copy

    scaled = copy.copy(layer)
    shape = (-1,) + (1,) * (layer.weight.ndim - 1)
    scaled.weight = layer.weight * numpy.asarray(factors, dtype=layer.weight.dtype).reshape(shape)
    if layer.bias is not None:
        scaled.bias = layer.bias * numpy.asarray(factors, dtype=layer.bias.dtype)
    return scaled


def check_rescaling_invariance(rule: Rule, layer_kind: str | Layer = "dense", seeds: Iterable[int] = (0, 1, 2),
                               nonnegative: bool = True, rtol: float = 1e-4,
                               input_shape: tuple[int, ...] | None = None) -> float:
    """Check that scaling each output's weights and bias by a positive c_k leaves R_j unchanged.

    c_k is drawn from [0.1, 10] per output (channel). Holds where z_jk and z_k are homogeneous of
    the same degree in (w_k, b_k); a fixed ε breaks it (the default zennit ε = 1e-6 by ~1e-6,
    hence ``rtol``). Dense and Conv2d layers only. Returns the worst relative deviation.
    """
    worst = 0.0
    for seed, layer, a, upper in _cases(rule, layer_kind, seeds, nonnegative, input_shape):
        if not isinstance(layer, (Dense, Conv2d)):
            raise TypeError(f"check_rescaling_invariance needs a Dense or Conv2d layer, got {layer.describe()}")
        factors = numpy.random.default_rng(seed + 11).uniform(0.1, 10.0, size=layer.weight.shape[0])
        original = numpy.asarray(to_numpy(rule.relevance(layer, a, upper)), dtype=numpy.float64)
        scaled = numpy.asarray(to_numpy(rule.relevance(_rescaled(layer, factors), a, upper)), dtype=numpy.float64)
        deviation = float(numpy.abs(scaled - original).max()) / max(float(numpy.abs(original).max()), 1e-300)
        worst = max(worst, deviation)
        if not deviation <= rtol:
            raise AssertionError(f"{_label(rule, layer, seed)} is not invariant to positive rescaling of the "
                                 f"weights: R_j changes by {deviation:.3e} (relative), more than rtol={rtol:g}")
    return worst
