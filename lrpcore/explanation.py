"""What :func:`lrpcore.explain` returns: the relevances, the trace of every step, and the conservation report.

- :class:`Explanation`: the input relevance, the relevance at every activation, the rule of every node,
  per-node relevance sums and the zero-denominator counts;
- :class:`Trace` / :class:`TraceStep`: with ``record=True``, every intermediate quantity of every node
  (a, z, s, c, R in and out);
- :class:`ConservationTable` and :func:`check_conservation`: Σ R in against Σ R out at every node and at
  every fan-out, and Σ_i R_i against the explained output.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from . import _display
from .backend import get_namespace, to_numpy
from .errors import ConservationError, LRPError
from .graph import Graph
from .layers import Layer
from .rules import BranchRecord, Rule

__all__ = ["Explanation", "Trace", "TraceStep", "ConservationTable", "check_conservation"]


@dataclasses.dataclass
class TraceStep:
    """Everything one backward step computed (one node, whole batch).

    ``index``: the node's position; ``name``/``inputs``: its name and the names it reads.
    ``a``: the node's input (for ``Add``, its inputs stacked on axis 1); ``z``/``s``/``c``: stabilized
    denominator, R ⊘ z and the transposed map of the rule's first branch (``branches`` holds all of
    them); ``relevance_out``: relevance at the node's output (from above); ``relevance_in``: the
    relevance the node passes to its input (shape of ``a``). Sums are per sample.
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
    name: str = ""
    inputs: tuple[str, ...] = ()

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
        """Relevance that did not reach the node's input (bias, ε, zero denominators), per sample."""
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

    __repr__ = _display.step_repr
    _repr_html_ = _display.step_html


class Trace(list):
    """The recorded backward pass: ``trace[p]`` is the :class:`TraceStep` of the node at position p.

    Steps are stored in node order, so ``trace[0]`` is the input node even though it is computed
    last. ``trace["name"]`` finds a step by its node's name.
    """

    def step(self, key: int | str) -> TraceStep:
        return self[key]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            for step in self:
                if step is not None and step.name == key:
                    return step
            raise KeyError(f"the trace has no node {key!r}")
        return super().__getitem__(key)

    __repr__ = _display.trace_repr
    _repr_html_ = _display.trace_html


@dataclasses.dataclass
class ConservationTable:
    """Per-node relevance sums and conservation errors; ``print(table)`` shows them.

    ``rows``: one dict per node with index, name, layer, rule, sum_out (ΣR at the node's output),
    sum_in (ΣR the node passes to its inputs), absorbed and relative error |sum_in − sum_out| / |sum_out|
    (batch sums). ``fanouts``: one dict per activation read by several nodes, with each reader's share
    and their total (the relevance the activation receives). ``total`` compares Σ_i R_i at the input
    with the explained output f(x).
    """

    rows: list[dict[str, Any]]
    explained: float
    input_sum: float
    fanouts: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def total_relative_error(self) -> float:
        return abs(self.input_sum - self.explained) / max(abs(self.explained), 1e-30)

    def __str__(self) -> str:
        named = any(row.get("name", str(row["index"])) != str(row["index"]) for row in self.rows)
        header = ("index", "name", "layer", "rule", "ΣR out", "ΣR in", "absorbed", "rel. error")
        keep = [0, 1, 2, 3, 4, 5, 6, 7] if named else [0, 2, 3, 4, 5, 6, 7]
        cells = [tuple(header[k] for k in keep)]
        for row in self.rows:
            values = (str(row["index"]), row.get("name", str(row["index"])), row["layer"], row["rule"], f"{row['sum_out']:.6g}",
                      f"{row['sum_in']:.6g}", f"{row['absorbed']:.3g}", f"{row['relative_error']:.2e}")
            cells.append(tuple(values[k] for k in keep))
        text_columns = 4 if named else 3
        widths = [max(len(row[column]) for row in cells) for column in range(len(keep))]
        lines = []
        for number, row in enumerate(cells):
            lines.append("  ".join(cell.ljust(width) if column < text_columns else cell.rjust(width)
                                   for column, (cell, width) in enumerate(zip(row, widths))))
            if number == 0:
                lines.append("  ".join("-" * width for width in widths))
        for fanout in self.fanouts:
            shares = " + ".join(f"{share:.6g} ({reader})" for reader, share in fanout["shares"])
            lines.append(f"fan-out at {fanout['name']!r}: {shares} = {fanout['total']:.6g}")
        lines.append(f"f(x) = {self.explained:.6g}, Σ_i R_i = {self.input_sum:.6g}, "
                     f"relative error {self.total_relative_error:.2e}")
        return "\n".join(lines)


@dataclasses.dataclass
class Explanation:
    """The result of :func:`explain`.

    ``relevance``: input relevance, shape of x. ``output``: the explained score per sample
    (the target logit, or η_c for ``top="logprob_ratio"``). ``target``: class per sample.
    ``layer_relevances[i]``: relevance at activation i, numbered as :class:`~lrpcore.Graph` numbers
    them: 0 is the input, i + 1 the output of the node at position i (so in a chain, the input of
    layer i, and ``layer_relevances[len(model)]`` the starting relevance at the output).
    ``rules``: the rule of each node. ``node_sums_out``/``node_sums_in``: (nodes × samples) ΣR at each
    node's output and ΣR it passes down; ``input_sums[p]``: per input of node p, the per-sample ΣR it
    passes to that input. ``trace``: the recorded steps when ``record=True``.
    ``zero_denominators``/``near_zero_denominators``: (nodes × samples) counts of relevance-carrying
    outputs with a zero / near-zero denominator. ``method``: ``"lrp"``, or the name of the attribution
    baseline that made it (then only ``relevance``, ``output``, ``target`` and ``logits`` are filled).
    """

    relevance: Any
    output: Any
    target: Any
    logits: Any
    layer_relevances: list[Any]
    rules: list[Rule]
    model: Graph
    trace: Trace | None = None
    zero_denominators: Any = None
    near_zero_denominators: Any = None
    node_sums_out: Any = None
    node_sums_in: Any = None
    input_sums: list[list[Any]] | None = None
    method: str = "lrp"

    __repr__ = _display.explanation_repr
    _repr_html_ = _display.explanation_html

    def _require_layers(self, what: str) -> None:
        if self.method != "lrp":
            raise LRPError(f"this explanation comes from the attribution baseline {self.method!r}, which has no "
                           f"layer-wise relevance: no {what}")

    def layer_sums(self) -> list[Any]:
        """Per-sample ΣR at every activation (the input first, the output last)."""
        sums = []
        for relevance in self.layer_relevances:
            xp = get_namespace(relevance)
            sums.append(xp.sum(xp.reshape(relevance, (relevance.shape[0], -1)), axis=1))
        return sums

    def zero_denominator_nodes(self) -> list[tuple[str, int]]:
        """(where, count) of every node where relevance was dropped at an exactly zero denominator."""
        counts = to_numpy(self.zero_denominators).sum(axis=1) if self.zero_denominators is not None else []
        return [(self.model.where(position), int(count)) for position, count in enumerate(counts) if count]

    def conservation(self) -> ConservationTable:
        """Per-node conservation table (batch sums): Σ_j R_j vs Σ_k R_k, the absorbed relevance, the fan-outs."""
        self._require_layers("conservation")
        model = self.model
        sums_out, sums_in = to_numpy(self.node_sums_out), to_numpy(self.node_sums_in)
        rows = []
        for index, (node, rule) in enumerate(zip(model.nodes, self.rules)):
            sum_out, sum_in = float(sums_out[index].sum()), float(sums_in[index].sum())
            rows.append({"index": index, "name": node.name, "layer": node.layer.describe(),
                         "rule": rule.describe(), "sum_out": sum_out, "sum_in": sum_in,
                         "absorbed": sum_out - sum_in,
                         "relative_error": abs(sum_in - sum_out) / max(abs(sum_out), 1e-30)})
        fanouts = []
        for activation, readers in enumerate(model.consumers):
            if len(readers) < 2:
                continue
            shares = [(model.nodes[reader].name, _share(self, reader, activation)) for reader in readers]
            name = model.input_name if activation == 0 else model.nodes[activation - 1].name
            fanouts.append({"name": name, "shares": shares, "total": sum(share for _, share in shares)})
        explained = float(to_numpy(self.output).sum())
        input_sum = float(to_numpy(self.layer_sums()[0]).sum())
        return ConservationTable(rows=rows, explained=explained, input_sum=input_sum, fanouts=fanouts)


def _share(explanation: Explanation, reader: int, activation: int) -> float:
    """ΣR (batch) that node ``reader`` passes to ``activation``."""
    inputs = explanation.model.input_positions[reader]
    return float(sum(to_numpy(part).sum() for index, part in zip(inputs, explanation.input_sums[reader])
                     if index == activation))


def check_conservation(explanation: Explanation, rtol: float = 1e-6, atol: float = 1e-12) -> None:
    """Raise :class:`ConservationError` naming the first node (from the top) where relevance is not conserved.

    Conservation per sample: |Σ_j R_j − Σ_k R_k| ≤ atol + rtol·|Σ_k R_k| at each node, Σ_j over
    everything the node passes to its inputs.
    """
    explanation._require_layers("conservation check")
    sums_out, sums_in = to_numpy(explanation.node_sums_out), to_numpy(explanation.node_sums_in)
    model = explanation.model
    for index in range(len(model) - 1, -1, -1):
        lower, upper = sums_in[index], sums_out[index]
        error = abs(lower - upper)
        bound = atol + rtol * abs(upper)
        bad = (error > bound).nonzero()[0]
        if bad.size:
            sample = int(bad[0])
            raise ConservationError(
                f"relevance not conserved at {model.where(index)}, rule "
                f"{explanation.rules[index].describe()}: sample {sample} has ΣR out = {upper[sample]:.6g}, "
                f"ΣR in = {lower[sample]:.6g} (relative error {error[sample] / max(abs(upper[sample]), 1e-30):.2e} "
                f"> rtol {rtol:g})")
