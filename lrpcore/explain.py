"""``explain``: the forward pass, relevance at the output, and the rules applied node by node down to the input.

The algorithm of Montavon et al. 2019 (section 10.2.2), for a chain or any graph:

1. run the network and keep every activation a;
2. start at the output with the target's score, R = onehot ⊙ f(x);
3. visit the nodes from the top; at each, its rule maps the relevance at the node's output to its
   input in four steps (``Rule.relevance``): z = ρ-forward + stabilizer, s = R ⊘ z, c = ρ-transposed(s),
   R_input = a ⊙ c;
4. where an activation feeds several nodes, it receives the sum of their relevances.

How each step runs fast (threads, reuse of the recorded outputs, freeing memory) lives in
:mod:`lrpcore._engine`; what it returns in :mod:`lrpcore.explanation`. With ``record=True`` every
intermediate quantity of every node is kept in a :class:`~lrpcore.explanation.Trace`.
"""
from __future__ import annotations

import copy
import warnings
from typing import Any, Callable, Literal

from ._engine import engine
from .backend import get_namespace, to_numpy
from .composites import Composite, get_composite, uniform
from .errors import LRPError, ShapeError
from .explanation import ConservationTable, Explanation, Trace, TraceStep, check_conservation
from .graph import Graph
from .layers import Dense, _BatchNorm
from .rules import Pass, Rule, Zero
from .stabilizers import get_stabilizer
from .top import Target, logprob_ratio_start, onehot, resolve_targets

__all__ = ["explain", "gradient", "Explanation", "Trace", "TraceStep", "ConservationTable",
           "check_conservation", "NonFiniteError"]


class NonFiniteError(LRPError, FloatingPointError):
    """An activation or a relevance became NaN or inf (overflowing weights, a relevance blow-up)."""


def explain(model: Graph, x: Any, target: Target = None, composite: Composite | str | None = None,
            stabilizer: str | None = None, top: Literal["logit", "logprob_ratio"] = "logit",
            record: bool = False, activations: list[Any] | None = None,
            modify: Callable[..., Any] | None = None,
            nonfinite: Literal["raise", "warn"] = "raise") -> Explanation:
    """Explain ``model``'s prediction on the batch ``x`` with LRP.

    ``model``: an :class:`lrpcore.Graph` or :class:`lrpcore.Sequential`. ``target``: None or
    ``"pred"`` (the predicted class), a class index or class name (same class for every sample), or
    one per sample. ``composite``: a :class:`Composite`, a preset name, or None for LRP-0 everywhere.
    ``stabilizer``: if given, overrides the stabilizer of every rule (a name or callable; each rule
    keeps its ε). ``top``: ``"logit"`` starts from the target logit (R = onehot ⊙ f(x));
    ``"logprob_ratio"`` explains η_c = log(p_c/(1−p_c)) with the min-take-most top layer (needs a
    Dense output node). ``record``: keep a :class:`Trace` of every intermediate quantity.

    ``activations``: the list [a_0 = x, ..., a_n] from ``model.forward(x, record=True)``, to reuse one
    forward pass for many composites (sweeps). ``modify``: a callable
    ``modify(index, layer, rule, a, relevance_upper, relevance_lower) -> relevance_lower`` or
    ``-> (relevance_lower, info)``, applied after each node's rule (pruned LRP uses it); ``info``
    (a dict) is kept in the trace step.

    ``composite`` may also name an attribution baseline of :mod:`lrpcore.baselines` (``"gradient"``,
    ``"integrated_gradients"``, ``"guided_backprop"``, ...), so that LRP and the methods it is compared
    with are selected the same way; such an explanation has only the input relevance (no trace, no
    per-layer sums).

    ``nonfinite``: an activation or relevance that becomes NaN or inf raises a
    :class:`NonFiniteError` naming the first node where it happened (``"raise"``), or only warns
    (``"warn"``) and returns the non-finite explanation.
    """
    if not isinstance(model, Graph):
        raise TypeError(f"model must be an lrpcore.Graph or Sequential, got {type(model).__name__}")
    if isinstance(composite, str) and composite in _baseline_names():
        return _baseline(model, x, target, composite, stabilizer, top, record, activations, modify)
    if nonfinite not in ("raise", "warn"):
        raise ValueError(f"nonfinite must be 'raise' or 'warn', got {nonfinite!r}")
    x = model.prepare_input(x)
    rules = _rules(model, composite, stabilizer)
    if any(isinstance(layer, _BatchNorm) for layer in model.layers):
        warnings.warn("the model has BatchNorm layers; LRP passes relevance through them unchanged. "
                      "Fold them first with lrpcore.canonize(model).", stacklevel=2)
    with engine(model, x, rules, record) as run:
        own_forward = activations is None
        activations = run.forward(x) if own_forward else _given_activations(model, activations)
        _check_finite_forward(model, activations, nonfinite)
        logits = activations[-1]
        if logits.ndim != 2:
            raise ShapeError(f"the model output must be (N, classes) scores, got shape {tuple(logits.shape)}")
        targets = resolve_targets(target, logits, model.metadata.class_names, model.metadata.name)
        return _propagate(model, activations, rules, targets, top, record, modify, nonfinite, own_forward, run)


def _propagate(model: Graph, activations: list[Any], rules: list[Rule], targets: Any, top: str, record: bool,
               modify: Callable[..., Any] | None, nonfinite: str, own_forward: bool, run: Any) -> Explanation:
    """Steps 2–4 of the algorithm: relevance at the output, then every node's rule from the top."""
    xp = get_namespace(activations[0])
    logits = activations[-1]
    relevances: list[Any] = [None] * (len(model) + 1)          # R at every activation; [-1]: the output's
    relevances[-1] = xp.asarray(onehot(targets, logits.shape[1]), dtype=logits.dtype) * logits
    output = xp.sum(relevances[-1], axis=1)
    ledger = _Ledger(model, logits.shape[0], record, nonfinite)
    first = len(model) - 1
    if top == "logprob_ratio":
        first, output = _logprob_ratio_top(model, activations, rules, targets, relevances, ledger)
    elif top != "logit":
        raise ValueError(f"top must be 'logit' or 'logprob_ratio', got {top!r}")

    for position in range(first, -1, -1):
        node, rule = model.nodes[position], rules[position]
        a = model.node_input(position, activations)            # the node's input
        upper = relevances[position + 1]                        # relevance at its output
        lower, branches = run.relevance(rule, node.layer, a, upper,   # z, s, c and R = a ⊙ c
                                        activations[position + 1] if own_forward else None)
        run.release(activations, position, own_forward)
        info = None
        if modify is not None:
            modified = modify(position, node.layer, rule, a, upper, lower)
            lower, info = modified if isinstance(modified, tuple) else (modified, None)
        inputs = model.input_positions[position]
        parts = node.layer.split(lower, [tuple(activations[index].shape) for index in inputs])
        for index, part in zip(inputs, parts):                 # an activation read twice gets both shares
            relevances[index] = part if relevances[index] is None else relevances[index] + part
        ledger.record(position, rule, a, upper, lower, parts, branches, info)
    return Explanation(relevance=relevances[0], output=output, target=targets, logits=logits,
                       layer_relevances=relevances, rules=rules, model=model, trace=ledger.trace,
                       zero_denominators=ledger.zero_counts, near_zero_denominators=ledger.near_counts,
                       node_sums_out=ledger.sums_out, node_sums_in=ledger.sums_in, input_sums=ledger.input_sums)


class _Ledger:
    """What the backward pass reports besides the relevances: per-node sums (conservation), denominator
    counts, the trace (``record=True``), and the check that relevance stays finite."""

    def __init__(self, model: Graph, batch: int, record: bool, nonfinite: str):
        import numpy

        count = len(model)
        self.model, self.nonfinite = model, nonfinite
        self.trace = Trace([None] * count) if record else None
        self.zero_counts = numpy.zeros((count, batch), dtype=numpy.int64)
        self.near_counts = numpy.zeros((count, batch), dtype=numpy.int64)
        self.sums_out = numpy.zeros((count, batch))
        self.sums_in = numpy.zeros((count, batch))
        self.input_sums: list[list[Any]] = [[] for _ in range(count)]

    def record(self, position: int, rule: Rule, a: Any, upper: Any, lower: Any, parts: list[Any],
               branches: list[Any], info: dict | None, sum_out: Any = None) -> None:
        self.input_sums[position] = [_per_sample_sum(part) for part in parts]
        self.sums_out[position] = _per_sample_sum(upper) if sum_out is None else to_numpy(sum_out)
        self.sums_in[position] = sum(self.input_sums[position])
        _check_finite_relevance(self.model, position, rule, self.sums_out[position], self.sums_in[position],
                                self.nonfinite)
        for branch in branches:
            self.zero_counts[position] += branch.zero_denominators
            self.near_counts[position] += branch.near_zero_denominators
        if self.trace is not None:
            node = self.model.nodes[position]
            self.trace[position] = TraceStep(position, node.layer, rule, a, upper, lower, branches,
                                             _batch_sum(upper) if sum_out is None else sum_out, _batch_sum(lower),
                                             info or {}, node.name, node.inputs)


def _logprob_ratio_top(model: Graph, activations: list[Any], rules: list[Rule], targets: Any, relevances: list[Any],
                       ledger: _Ledger) -> tuple[int, Any]:
    """The top node for ``top="logprob_ratio"`` (min-take-most over logit differences).

    Returns the position of the next node down and η per sample."""
    last = len(model) - 1
    layer, inputs = model.layers[last], model.input_positions[last]
    if not isinstance(layer, Dense):
        raise ShapeError(f"top='logprob_ratio' needs a Dense output layer, got {layer.describe()}")
    if activations[-1].shape[1] < 2:
        raise ShapeError("top='logprob_ratio' needs at least two classes")
    xp = get_namespace(activations[0])
    a = activations[inputs[0]]
    start, eta = logprob_ratio_start(layer, a, targets, xp)
    relevances[inputs[0]] = start
    ledger.record(last, rules[last], a, relevances[last + 1], start, [start], [], None, sum_out=eta)
    return last - 1, eta


def _batch_sum(array: Any) -> Any:
    xp = get_namespace(array)
    return xp.sum(xp.reshape(array, (array.shape[0], -1)), axis=1)


def _per_sample_sum(array: Any) -> Any:
    """Per-sample ΣR as float64 NumPy (the conservation report)."""
    import numpy

    return numpy.asarray(to_numpy(_batch_sum(array)), dtype=numpy.float64)


def _baseline_names() -> tuple[str, ...]:
    from .baselines import BASELINES

    return tuple(BASELINES)


def _baseline(model: Graph, x: Any, target: Target, name: str, stabilizer: Any, top: str, record: bool,
              activations: Any, modify: Any) -> Explanation:
    """``explain`` with a baseline's name: its attribution as an Explanation without layer-wise parts."""
    from .baselines import attribute

    if record or stabilizer is not None or top != "logit" or activations is not None or modify is not None:
        raise ValueError(f"{name!r} is an attribution baseline, not LRP: it has no trace, stabilizer, top, "
                         "reused activations or modify hook")
    attribution = attribute(model, x, target, name)
    return Explanation(relevance=attribution.relevance, output=attribution.output, target=attribution.target,
                       logits=attribution.logits, layer_relevances=[attribution.relevance], rules=[], model=model,
                       method=name)


def _rules(model: Graph, composite: Composite | str | None, stabilizer: Any) -> list[Rule]:
    composite = get_composite(composite) if composite is not None else uniform(Zero())
    rules = composite.rules(model)
    if stabilizer is not None:
        function = get_stabilizer(stabilizer)
        rules = [_with_stabilizer(rule, function, stabilizer) for rule in rules]
    return rules


def _given_activations(model: Graph, activations: list[Any]) -> list[Any]:
    if len(activations) != len(model) + 1:
        raise ShapeError(f"activations must hold {len(model) + 1} arrays (input and every node's output), "
                         f"got {len(activations)}")
    return list(activations)


def _check_finite_forward(model: Graph, activations: list[Any], nonfinite: str) -> None:
    """Name the first node whose output is NaN or inf, if the logits are not finite."""
    xp = get_namespace(activations[-1])
    if bool(xp.all(xp.isfinite(activations[-1]))):
        return
    position = next(index for index in range(len(model))
                    if not bool(xp.all(xp.isfinite(activations[index + 1]))))
    message = (f"the forward pass is not finite from {model.where(position)} on: its output holds NaN or inf "
               "(overflowing weights or inputs?)")
    if nonfinite == "raise":
        raise NonFiniteError(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def _check_finite_relevance(model: Graph, position: int, rule: Rule, sum_out: Any, sum_in: Any,
                            nonfinite: str) -> None:
    """Name the node where relevance became NaN or inf (its input's sums are not finite, its output's are)."""
    import numpy

    if numpy.all(numpy.isfinite(sum_in)) or not numpy.all(numpy.isfinite(sum_out)):
        return
    message = (f"relevance became NaN or inf at {model.where(position)} under {rule.describe()}: a denominator "
               "too close to zero for the dtype? Try a larger ε, the zennit stabilizer or float64")
    if nonfinite == "raise":
        raise NonFiniteError(message)
    warnings.warn(message, RuntimeWarning, stacklevel=4)


def _with_stabilizer(rule: Rule, function: Any, name: Any) -> Rule:
    if isinstance(rule, Pass):
        return rule
    clone = copy.copy(rule)
    clone.stabilizer = function
    clone.stabilizer_name = name if isinstance(name, str) else getattr(name, "__name__", "custom")
    return clone


def gradient(model: Graph, x: Any, target: Target = None) -> tuple[Any, Any]:
    """Gradient of the target logit with respect to the input, from the layers' transposed maps.

    Returns (gradient, logits). ``gradient * x`` is gradient×input, which LRP-0 equals on
    bias-free ReLU networks.
    """
    x = model.prepare_input(x)
    xp = get_namespace(x)
    activations = model.forward(x, record=True)
    logits = activations[-1]
    targets = resolve_targets(target, logits, model.metadata.class_names, model.metadata.name)
    grad = xp.asarray(onehot(targets, logits.shape[1]), dtype=logits.dtype)
    return model.backward(activations, grad), logits
