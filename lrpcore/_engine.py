"""How :func:`lrpcore.explain` runs its steps fast. Nothing here changes a number.

:mod:`lrpcore.explain` states the algorithm; this module decides how each of its two kinds of step
is executed, in one place:

- **threads**: NumPy runs element-wise passes on one core, so a batch is cut into one share per
  BLAS thread where every rule treats samples on its own (``Rule.per_sample``) and no trace is kept;
  each share runs a layer, or a rule, in its own thread and writes its rows of a preallocated result
  (:mod:`lrpcore._parallel`). Where the batch is not cut, the same threads run the row blocks of
  each convolution instead. Both give exactly the serial numbers.
- **reuse**: a layer's recorded output is handed to its rule, which takes it as the denominator
  where the rule's forward pass is the layer's own (LRP-0/ε) or needs its sign (symmetric γ), and
  skips branches that carry no relevance when only the denominator counts are wanted;
- **memory**: without a trace, a node's output is freed once the backward pass is below it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
from typing import Any, Iterator, Sequence

from ._parallel import BatchSplit, batch_split
from .backend import get_namespace
from .graph import Graph
from .layers import Dense, Layer, LinearLayer, ReLU
from .rules import BranchRecord, Pass, Rule

__all__ = ["Engine", "engine"]


class Engine:
    """Runs a graph's forward pass and its rules' relevance steps, with the speed-ups above."""

    def __init__(self, graph: Graph, record: bool, split: BatchSplit | None):
        self.graph = graph
        self.record = record
        self.split = split

    # --- forward ----------------------------------------------------------------------------------
    def forward(self, x: Any) -> list[Any]:
        """``graph.forward(x, record=True)``, windowed and weighted layers and ReLUs run share by share."""
        if self.split is None:
            return self.graph.forward(x, record=True)
        return self.graph.forward(x, record=True, run=self._forward_in_shares)

    def _forward_in_shares(self, position: int, layer: Layer, a: Any) -> Any:
        if not isinstance(layer, (LinearLayer, ReLU)) or isinstance(layer, Dense) or layer.arity != 1:
            return layer.forward(a)
        xp = get_namespace(a)
        try:
            result = xp.empty((a.shape[0], *layer.output_shape(tuple(a.shape[1:]))), dtype=a.dtype)

            def work(share: slice) -> None:
                result[share, ...] = layer.forward(a[share, ...])

            self.split.run(work)
        except Exception:       # let the serial call raise its error, which the graph names
            return layer.forward(a)
        return result

    # --- backward ---------------------------------------------------------------------------------
    def relevance(self, rule: Rule, layer: Layer, a: Any, upper: Any,
                  output: Any | None) -> tuple[Any, list[BranchRecord]]:
        """``rule.relevance(layer, a, upper)`` and its branch records; ``output`` is the layer's recorded
        output f(a), or None where the caller's activations may not be the layer's own forward."""
        branches: list[BranchRecord] = []
        if self.split is not None and not isinstance(rule, Pass) and not isinstance(layer, Dense) \
                and _takes_output(rule):
            return self._relevance_in_shares(rule, layer, a, upper, output, branches), branches
        extra = {"output": output, "counts_only": not self.record} if _takes_output(rule) else {}
        return rule.relevance(layer, a, upper, record=branches, **extra), branches

    def _relevance_in_shares(self, rule: Rule, layer: Layer, a: Any, upper: Any, output: Any | None,
                             branches: list[BranchRecord]) -> Any:
        """The rule share by share into one result; each share's records (counts) are gathered per
        sample into ``branches`` (one record per branch and share, counts zero elsewhere)."""
        import numpy

        xp = get_namespace(a)
        lower = xp.empty(a.shape, dtype=upper.dtype)

        def work(share: slice) -> list[BranchRecord]:
            found: list[BranchRecord] = []
            part_output = None if output is None else output[share, ...]
            lower[share, ...] = rule.relevance(layer, a[share, ...], upper[share, ...], record=found,
                                               output=part_output, counts_only=True)
            return found

        for share, found in zip(self.split.shares, self.split.run(work)):
            for record in found:
                zeros = numpy.zeros(a.shape[0], dtype=numpy.int64)
                near = numpy.zeros(a.shape[0], dtype=numpy.int64)
                zeros[share] = record.zero_denominators
                near[share] = record.near_zero_denominators
                branches.append(dataclasses.replace(record, zero_denominators=zeros, near_zero_denominators=near))
        return lower

    def release(self, activations: list[Any], position: int, own_forward: bool) -> None:
        """Free the output of node ``position`` once its rule has run (no trace kept): every node reading
        it sits above it and is done. The top output (the logits) is kept for the explanation."""
        if own_forward and not self.record and position + 1 < len(activations) - 1:
            activations[position + 1] = None


def _takes_output(rule: Rule) -> bool:
    """Whether ``rule.relevance`` accepts ``output``/``counts_only`` (user rules may override it
    with the older ``(layer, a, relevance, record=None)`` signature)."""
    parameters = inspect.signature(rule.relevance).parameters
    return "output" in parameters and "counts_only" in parameters


@contextlib.contextmanager
def engine(graph: Graph, x: Any, rules: Sequence[Rule], record: bool) -> Iterator[Engine]:
    """An :class:`Engine` for one explanation: batch shares on threads where the rules allow it."""
    xp = get_namespace(x)
    allowed = not record and all(rule.per_sample for rule in rules)
    with batch_split(xp, x.shape[0], allowed=allowed) as split:
        yield Engine(graph, record, split)
