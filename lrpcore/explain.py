"""``explain``: run the forward pass, start relevance at the output, and propagate it layer by layer.

The backward pass walks the layers from the top: at layer l the rule given by the
composite maps the relevance at the layer's output to relevance at its input
(``Rule.relevance``). With ``record=True`` every intermediate quantity of every
step is kept in a :class:`Trace`, so a student can inspect step k of the pass.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Callable, Literal, Sequence

from .backend import get_namespace, to_numpy
from .composites import Composite, get_composite
from .errors import ConservationError, InputValueError, LRPError, ShapeError
from ._parallel import BatchSplit, batch_split, separable
from .layers import _BatchNorm, Dense, Layer, LinearLayer, ReLU
from .model import Sequential
from .rules import BranchRecord, Pass, Rule
from .stabilizers import get_stabilizer

__all__ = ["explain", "gradient", "Explanation", "Trace", "TraceStep", "ConservationTable",
           "check_conservation"]

Target = None | int | Sequence[int] | Any | Literal["pred"]


@dataclasses.dataclass
class TraceStep:
    """Everything one backward step computed (one layer, whole batch).

    ``a``: layer input; ``z``/``s``/``c``: stabilized denominator, R ⊘ z and the
    transposed map of the rule's first branch (``branches`` holds all of them);
    ``relevance_out``: relevance at the layer output (from above); ``relevance_in``:
    relevance at the layer input (passed down). Sums are per sample.
    """

    index: int
    layer: Layer
    rule: Rule
    a: Any
    relevance_out: Any
    relevance_in: Any
    branches: list[BranchRecord]
    sum_out: Any
    sum_in: Any
    info: dict = dataclasses.field(default_factory=dict)

    @property
    def z(self) -> Any:
        return self.branches[0].z if self.branches else None

    @property
    def s(self) -> Any:
        return self.branches[0].s if self.branches else None

    @property
    def c(self) -> Any:
        return self.branches[0].c if self.branches else None

    @property
    def absorbed(self) -> Any:
        """Relevance that did not reach the layer input (bias, ε, zero denominators), per sample."""
        return self.sum_out - self.sum_in

    @property
    def zero_denominators(self) -> int:
        """Outputs carrying relevance whose denominator was exactly zero (relevance dropped), whole batch."""
        return int(sum(branch.zero_denominators.sum() for branch in self.branches))

    @property
    def near_zero_denominators(self) -> int:
        """Outputs carrying relevance whose |denominator| was near zero, whole batch."""
        return int(sum(branch.near_zero_denominators.sum() for branch in self.branches))

    @property
    def smallest_denominator(self) -> float:
        values = [branch.smallest_denominator for branch in self.branches]
        return min(values) if values else float("nan")

    @property
    def relevance_min(self) -> float:
        return float(to_numpy(self.relevance_in).min())

    @property
    def relevance_max(self) -> float:
        return float(to_numpy(self.relevance_in).max())


class Trace(list):
    """The recorded backward pass: ``trace[k]`` is the :class:`TraceStep` of layer k (input side first).

    Steps are stored in layer order, so ``trace[0]`` is the input layer even though it
    is computed last.
    """

    def step(self, index: int) -> TraceStep:
        return self[index]


@dataclasses.dataclass
class ConservationTable:
    """Per-layer relevance sums and conservation errors; ``print(table)`` shows them.

    ``rows``: one dict per layer with index, layer, rule, sum_out (ΣR at the layer output),
    sum_in (ΣR at the layer input), absorbed and relative error |sum_in − sum_out| / |sum_out|
    (batch sums). ``total`` compares Σ_i R_i at the input with the explained output f(x).
    """

    rows: list[dict[str, Any]]
    explained: float
    input_sum: float

    @property
    def total_relative_error(self) -> float:
        return abs(self.input_sum - self.explained) / max(abs(self.explained), 1e-30)

    def __str__(self) -> str:
        header = ("index", "layer", "rule", "ΣR out", "ΣR in", "absorbed", "rel. error")
        cells = [header]
        for row in self.rows:
            cells.append((str(row["index"]), row["layer"], row["rule"], f"{row['sum_out']:.6g}",
                          f"{row['sum_in']:.6g}", f"{row['absorbed']:.3g}", f"{row['relative_error']:.2e}"))
        widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
        lines = []
        for number, row in enumerate(cells):
            lines.append("  ".join(cell.ljust(width) if column < 3 else cell.rjust(width)
                                   for column, (cell, width) in enumerate(zip(row, widths))))
            if number == 0:
                lines.append("  ".join("-" * width for width in widths))
        lines.append(f"f(x) = {self.explained:.6g}, Σ_i R_i = {self.input_sum:.6g}, "
                     f"relative error {self.total_relative_error:.2e}")
        return "\n".join(lines)


@dataclasses.dataclass
class Explanation:
    """The result of :func:`explain`.

    ``relevance``: input relevance, shape of x. ``output``: the explained score per sample
    (the target logit, or η_c for ``top="logprob_ratio"``). ``target``: class per sample.
    ``layer_relevances[l]``: relevance at the input of layer l (``layer_relevances[len]`` is
    the starting relevance at the output). ``rules``: the rule of each layer. ``trace``:
    the recorded steps when ``record=True``.
    """

    relevance: Any
    output: Any
    target: Any
    logits: Any
    layer_relevances: list[Any]
    rules: list[Rule]
    model: Sequential
    trace: Trace | None = None
    zero_denominators: Any = None
    near_zero_denominators: Any = None
    """(layers × samples) NumPy counts of relevance-carrying outputs with zero / near-zero denominators."""

    def layer_sums(self) -> list[Any]:
        """Per-sample ΣR at the input of each layer (and at the output, last)."""
        sums = []
        for relevance in self.layer_relevances:
            xp = get_namespace(relevance)
            sums.append(xp.sum(xp.reshape(relevance, (relevance.shape[0], -1)), axis=1))
        return sums

    def conservation(self) -> ConservationTable:
        """Per-layer conservation table (batch sums): Σ_j R_j vs Σ_k R_k and the absorbed relevance."""
        sums = [float(to_numpy(total).sum()) for total in self.layer_sums()]
        rows = []
        for index, (layer, rule) in enumerate(zip(self.model.layers, self.rules)):
            sum_in, sum_out = sums[index], sums[index + 1]
            rows.append({"index": index, "layer": layer.describe(), "rule": rule.describe(), "sum_out": sum_out,
                         "sum_in": sum_in, "absorbed": sum_out - sum_in,
                         "relative_error": abs(sum_in - sum_out) / max(abs(sum_out), 1e-30)})
        explained = float(to_numpy(self.output).sum())
        return ConservationTable(rows=rows, explained=explained, input_sum=sums[0])


def check_conservation(explanation: Explanation, rtol: float = 1e-6, atol: float = 1e-12) -> None:
    """Raise :class:`ConservationError` naming the first layer (from the top) where relevance is not conserved.

    Conservation per sample: |Σ_j R_j − Σ_k R_k| ≤ atol + rtol·|Σ_k R_k| at each layer.
    """
    sums = [to_numpy(total) for total in explanation.layer_sums()]
    for index in range(len(explanation.model) - 1, -1, -1):
        lower, upper = sums[index], sums[index + 1]
        error = abs(lower - upper)
        bound = atol + rtol * abs(upper)
        bad = (error > bound).nonzero()[0]
        if bad.size:
            sample = int(bad[0])
            layer = explanation.model.layers[index]
            raise ConservationError(
                f"relevance not conserved at layer {index} ({layer.describe()}, rule "
                f"{explanation.rules[index].describe()}): sample {sample} has ΣR out = {upper[sample]:.6g}, "
                f"ΣR in = {lower[sample]:.6g} (relative error {error[sample] / max(abs(upper[sample]), 1e-30):.2e} "
                f"> rtol {rtol:g})")


def _targets(target: Target, logits: Any, classes: int) -> Any:
    """Resolve ``target`` to an integer array with one class per sample; errors name the bad value."""
    import numpy

    batch = logits.shape[0]
    if target is None or (isinstance(target, str) and target == "pred"):
        return numpy.argmax(to_numpy(logits), axis=1).astype(numpy.int64)
    if isinstance(target, str):
        raise InputValueError(f"target must be None, 'pred', an int or one int per sample, got {target!r}")
    values = numpy.asarray(to_numpy(target) if hasattr(target, "shape") else target)
    if values.dtype.kind not in "iu":
        if values.dtype.kind == "f" and numpy.all(numpy.mod(values, 1) == 0):
            values = values.astype(numpy.int64)
        else:
            raise InputValueError(f"target must hold integers, got dtype {values.dtype}")
    values = numpy.broadcast_to(values.astype(numpy.int64), (batch,)) if values.ndim == 0 else values
    if values.shape != (batch,):
        raise ShapeError(f"target must be one int or {batch} ints (one per sample), got shape {values.shape}")
    if values.min() < 0 or values.max() >= classes:
        raise InputValueError(f"target {values.tolist()} out of range for {classes} classes (0..{classes - 1})")
    return values.astype(numpy.int64)


def _logprob_ratio_start(layer: Dense, a: Any, targets: Any, xp: Any) -> tuple[Any, Any]:
    """Relevance at the input of the top Dense layer for η_c = log(p_c / (1 − p_c)).

    Montavon et al. 2019, section 10.3.1: η_c = −log Σ_{c'≠c} exp(−(z_c − z_c')) is a soft
    minimum over the logit differences z_cc' = z_c − z_c' = Σ_k a_k (w_kc − w_kc') + (b_c − b_c').
    Each difference is redistributed like a neuron of weights w_c − w_c', and the soft
    minimum's weights exp(−z_cc') / Σ_c'' exp(−z_cc'') ("min-take-most") mix them:
    R_k = Σ_{c'≠c} a_k (w_kc − w_kc') · exp(−z_cc') / Σ_{c''≠c} exp(−z_cc'').
    The bias differences are absorbed, as the bias is in the ε rule.
    Returns (relevance at the layer input, η per sample).
    """
    weight = layer.weight
    onehot = xp.asarray(_onehot(targets, weight.shape[0]), dtype=a.dtype)
    w_target = xp.matmul(onehot, weight)                         # (N, in): w_c for each sample
    logits = layer.forward(a)
    z_target = xp.sum(onehot * logits, axis=1, keepdims=True)
    differences = z_target - logits                              # z_cc' (N, C); 0 at c' = c
    others = 1.0 - onehot
    # soft-min weights over c' ≠ c, computed stably (shift by the smallest difference)
    shifted = xp.where(others > 0, differences, xp.full_like(differences, float("inf")))
    minimum = xp.min(shifted, axis=1, keepdims=True)
    weights = xp.where(others > 0, xp.exp(-(differences - minimum)), xp.zeros_like(differences))
    weights = weights / xp.sum(weights, axis=1, keepdims=True)
    eta = minimum[:, 0] - xp.log(xp.sum(xp.where(others > 0, xp.exp(-(differences - minimum)),
                                                 xp.zeros_like(differences)), axis=1))
    # R_k = a_k Σ_c' weights_c' (w_kc − w_kc') = a_k (w_kc − Σ_c' weights_c' w_kc')
    mixed = w_target - xp.matmul(weights, weight)
    return a * mixed, eta


def _onehot(targets: Any, classes: int) -> Any:
    import numpy

    onehot = numpy.zeros((len(targets), classes))
    onehot[numpy.arange(len(targets)), targets] = 1.0
    return onehot


def explain(model: Sequential, x: Any, target: Target = None, composite: Composite | str | None = None,
            stabilizer: str | None = None, top: Literal["logit", "logprob_ratio"] = "logit",
            record: bool = False, activations: list[Any] | None = None,
            modify: Callable[..., Any] | None = None) -> Explanation:
    """Explain ``model``'s prediction on the batch ``x`` with LRP.

    ``target``: None or ``"pred"`` (the predicted class), an int (same class for every
    sample) or one int per sample. ``composite``: a :class:`Composite`, a preset name, or
    None for LRP-0 everywhere. ``stabilizer``: if given, overrides the stabilizer of every
    rule (a name or callable; each rule keeps its ε). ``top``: ``"logit"`` starts from the
    target logit (R = onehot ⊙ f(x)); ``"logprob_ratio"`` explains η_c = log(p_c/(1−p_c))
    with the min-take-most top layer (needs a Dense output layer). ``record``: keep a
    :class:`Trace` of every intermediate quantity.

    ``activations``: the list [a_0 = x, ..., a_L] from ``model.forward(x, record=True)``, to
    reuse one forward pass for many composites (sweeps). ``modify``: a callable
    ``modify(index, layer, rule, a, relevance_upper, relevance_lower) -> relevance_lower`` or
    ``-> (relevance_lower, info)``, applied after each layer's rule (pruned LRP uses it);
    ``info`` (a dict) is kept in the trace step.

    With NumPy arrays and more than one BLAS thread, the work is spread over that many threads
    (the batch cut into shares, or each convolution into blocks; :mod:`lrpcore._parallel`),
    giving the same numbers as one thread.
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be an lrpcore.Sequential, got {type(model).__name__}")
    x = model.prepare_input(x)
    xp = get_namespace(x)
    composite = get_composite(composite) if composite is not None else Composite(name="zero")
    rules = composite.rules(model)
    if stabilizer is not None:
        function = get_stabilizer(stabilizer)
        rules = [_with_stabilizer(rule, function, stabilizer) for rule in rules]
    if any(isinstance(layer, _BatchNorm) for layer in model.layers):
        warnings.warn("the model has BatchNorm layers; LRP passes relevance through them unchanged. "
                      "Fold them first with lrpcore.canonize(model).", stacklevel=2)

    # NumPy batches are cut into one share per BLAS thread where the rules treat samples separately
    with batch_split(xp, x.shape[0], allowed=not record and all(separable(rule) for rule in rules)) as split:
        return _forward_backward(model, x, xp, rules, target, top, record, activations, modify, split)


def _forward(model: Sequential, x: Any, split: BatchSplit | None) -> list[Any]:
    """``model.forward(x, record=True)``, with weighted and windowed layers and ReLUs run share by share."""
    if split is None:
        return model.forward(x, record=True)
    xp = get_namespace(x)
    activations = [x]
    for index, layer in enumerate(model.layers):
        current = activations[-1]
        if isinstance(layer, (LinearLayer, ReLU)) and not isinstance(layer, Dense):
            try:
                result = xp.empty((x.shape[0], *layer.output_shape(tuple(current.shape[1:]))), dtype=current.dtype)

                def work(share: slice, layer: Layer = layer, current: Any = current, result: Any = result) -> None:
                    result[share, ...] = layer.forward(current[share, ...])

                split.run(work)
            except Exception:       # let the serial pass raise its error with the layer named
                result = _layer_forward(index, layer, current)
        else:
            result = _layer_forward(index, layer, current)
        activations.append(result)
    return activations


def _layer_forward(index: int, layer: Layer, x: Any) -> Any:
    """``layer.forward(x)`` with errors naming the layer, as :meth:`Sequential.forward` reports them."""
    try:
        return layer.forward(x)
    except LRPError as error:
        raise type(error)(f"layer {index} ({layer.describe()}): {error}") from None


def _forward_backward(model: Sequential, x: Any, xp: Any, rules: list[Rule], target: Target, top: str,
                      record: bool, activations: list[Any] | None, modify: Callable[..., Any] | None,
                      split: BatchSplit | None) -> Explanation:
    # only activations computed here are known to be each layer's forward of the one below (callers may
    # pass edited ones, e.g. pruned LRP zeroes some); only then can rules reuse them as layer outputs
    own_forward = activations is None
    if activations is None:
        activations = _forward(model, x, split)
    elif len(activations) != len(model) + 1:
        raise ShapeError(f"activations must hold {len(model) + 1} arrays (input and every layer output), "
                         f"got {len(activations)}")
    logits = activations[-1]
    if logits.ndim != 2:
        raise ShapeError(f"the model output must be (N, classes) scores, got shape {tuple(logits.shape)}")
    targets = _targets(target, logits, logits.shape[1])
    onehot = xp.asarray(_onehot(targets, logits.shape[1]), dtype=logits.dtype)

    relevances: list[Any] = [None] * (len(model) + 1)
    trace = Trace([None] * len(model)) if record else None
    last = len(model) - 1
    if top == "logprob_ratio":
        layer = model.layers[last]
        if not isinstance(layer, Dense):
            raise ShapeError(f"top='logprob_ratio' needs a Dense output layer, got {layer.describe()}")
        if logits.shape[1] < 2:
            raise ShapeError("top='logprob_ratio' needs at least two classes")
        start, output = _logprob_ratio_start(layer, activations[last], targets, xp)
        relevances[last + 1] = onehot * logits
        relevances[last] = start
        if record:
            sums = xp.sum(xp.reshape(start, (start.shape[0], -1)), axis=1)
            trace[last] = TraceStep(last, layer, rules[last], activations[last], relevances[last + 1], start, [],
                                    output, sums)
        first_step = last - 1
    elif top == "logit":
        output = xp.sum(onehot * logits, axis=1)
        relevances[last + 1] = onehot * logits
        first_step = last
    else:
        raise ValueError(f"top must be 'logit' or 'logprob_ratio', got {top!r}")

    import numpy

    zero_counts = numpy.zeros((len(model), x.shape[0]), dtype=numpy.int64)
    near_counts = numpy.zeros((len(model), x.shape[0]), dtype=numpy.int64)
    for index in range(first_step, -1, -1):
        layer, rule, a = model.layers[index], rules[index], activations[index]
        upper = relevances[index + 1]
        branches: list[BranchRecord] = []
        # the recorded output spares the rule recomputing the layer's forward pass; idle branches
        # (no relevance under their mask) are skipped unless the trace should show them
        known_output = activations[index + 1] if own_forward else None
        if split is not None and not isinstance(rule, Pass) and not isinstance(layer, Dense):
            lower = _split_relevance(split, rule, layer, a, upper, known_output, branches)
        else:
            extra = {"output": known_output, "counts_only": not record} if _takes_output(rule) else {}
            lower = rule.relevance(layer, a, upper, record=branches, **extra)
        if own_forward and not record:
            activations[index + 1] = None           # no longer needed: free it as the pass goes down
        info = None
        if modify is not None:
            modified = modify(index, layer, rule, a, upper, lower)
            lower, info = modified if isinstance(modified, tuple) else (modified, None)
        relevances[index] = lower
        for branch in branches:
            zero_counts[index] += branch.zero_denominators
            near_counts[index] += branch.near_zero_denominators
        if record:
            trace[index] = TraceStep(index, layer, rule, a, upper, lower, branches,
                                     xp.sum(xp.reshape(upper, (upper.shape[0], -1)), axis=1),
                                     xp.sum(xp.reshape(lower, (lower.shape[0], -1)), axis=1), info or {})
    return Explanation(relevance=relevances[0], output=output, target=targets, logits=logits,
                       layer_relevances=relevances, rules=rules, model=model, trace=trace,
                       near_zero_denominators=near_counts, zero_denominators=zero_counts)


def _split_relevance(split: BatchSplit, rule: Rule, layer: Layer, a: Any, upper: Any, output: Any | None,
                     branches: list[BranchRecord]) -> Any:
    """``rule.relevance`` share by share into one result; each share's branch records (counts) are
    gathered per sample into ``branches`` (one record per branch and share, counts zero elsewhere)."""
    import numpy

    xp = get_namespace(a)
    lower = xp.empty(a.shape, dtype=upper.dtype)

    def work(share: slice) -> list[BranchRecord]:
        found: list[BranchRecord] = []
        part_output = None if output is None else output[share, ...]
        lower[share, ...] = rule.relevance(layer, a[share, ...], upper[share, ...], record=found,
                                           output=part_output, counts_only=True)
        return found

    for share, found in zip(split.shares, split.run(work)):
        for record in found:
            zeros = numpy.zeros(a.shape[0], dtype=numpy.int64)
            near = numpy.zeros(a.shape[0], dtype=numpy.int64)
            zeros[share] = record.zero_denominators
            near[share] = record.near_zero_denominators
            branches.append(dataclasses.replace(record, zero_denominators=zeros, near_zero_denominators=near))
    return lower


def _takes_output(rule: Rule) -> bool:
    """Whether ``rule.relevance`` accepts ``output``/``counts_only`` (user rules may override it
    with the older ``(layer, a, relevance, record=None)`` signature)."""
    import inspect

    parameters = inspect.signature(rule.relevance).parameters
    return "output" in parameters and "counts_only" in parameters


def _with_stabilizer(rule: Rule, function: Any, name: Any) -> Rule:
    if isinstance(rule, Pass):
        return rule
    import copy

    clone = copy.copy(rule)
    clone.stabilizer = function
    clone.stabilizer_name = name if isinstance(name, str) else getattr(name, "__name__", "custom")
    return clone


def gradient(model: Sequential, x: Any, target: Target = None) -> tuple[Any, Any]:
    """Gradient of the target logit with respect to the input, from the layers' transposed maps.

    Returns (gradient, logits). ``gradient * x`` is gradient×input, which LRP-0 equals on
    bias-free ReLU networks.
    """
    x = model.prepare_input(x)
    xp = get_namespace(x)
    activations = model.forward(x, record=True)
    logits = activations[-1]
    targets = _targets(target, logits, logits.shape[1])
    grad = xp.asarray(_onehot(targets, logits.shape[1]), dtype=logits.dtype)
    for index in range(len(model) - 1, -1, -1):
        grad = model.layers[index].gradient(activations[index], grad)
    return grad, logits
