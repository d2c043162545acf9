"""Numerical-stability lab: compare stabilizers, sweep γ × ε, compare precisions, locate a blow-up.

Every LRP rule divides by a denominator z_k (:mod:`lrpcore.rules`, step 2: s = R ⊘ z). Where a
stabilized z_k comes close to zero while R_k ≠ 0, the quotient s_k explodes and the relevance
below it grows by orders of magnitude: the heatmap collapses into a "patch" (thesis "In-Depth
Hyperparameter Selection for LRP", §§2.1.4–2.1.5 and Figure 2.5). Which denominators come close to
zero depends on the input, on the rule's hyperparameters (γ, ε) and on the stabilizer
(:mod:`lrpcore.stabilizers`):

- ``vanilla`` z + ε moves every z the same way, so a z ≈ −ε lands on zero;
- ``quadratic_mean`` z + ε·RMS(z) + 1e-9 does the same with an ε scaled by the layer;
- ``zennit`` z + sign(z)·ε moves z away from zero and cannot produce |z'| < ε.

This module makes the comparison systematic:

- :func:`compare_stabilizers`: one explanation per (stabilizer, ε, dtype), and per sample the
  conservation error and smallest |z| of each layer, the near-zero denominator counts, the
  :func:`~lrpcore.instability.detect_instability` verdict and the difference between dtypes;
- :func:`stability_grid`: the thesis' Figure 2.5 as data (a grid of heatmaps over γ × ε with the
  instability statistic of every cell), drawn by :func:`lrpcore.plot.plot_stability_grid`;
- :func:`precision_study`: the same explanation in float16, float32 and float64, and the first
  layer (in the order of the backward pass) where a lower precision departs from float64;
- :func:`locate_instability`: for one heatmap, the layer where relevance grew most and the neurons
  whose denominators were smallest there, with the layer-by-layer growth profile.

Host-side analysis: the explanations run on the model's backend; the statistics are computed on
NumPy copies (``lrpcore.backend.to_numpy``).
"""
from __future__ import annotations

import copy
import csv
import dataclasses
import io
import itertools
import math
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy

from .backend import to_numpy
from .class_names import resolve_target_names
from .composites import Composite, get_composite
from .errors import InputValueError, ShapeError
from .explain import Explanation, explain
from .instability import DEFAULT_THRESHOLD, detect_instability
from .model import Sequential
from .rules import Pass, Rule
from .stabilizers import STABILIZERS, get_stabilizer

__all__ = [
    "StabilityRow",
    "StabilityComparison",
    "StabilityGrid",
    "PrecisionStudy",
    "InstabilityDiagnosis",
    "with_stabilizer",
    "layer_profile",
    "compare_stabilizers",
    "stability_grid",
    "precision_study",
    "locate_instability",
    "linear_bottleneck_network",
]

CompositeSpec = Composite | str | Callable[[], Composite] | None

#: A lower precision "departs" from float64 at the first layer whose relative difference exceeds this.
DEFAULT_DEPARTURE_TOLERANCE = 1e-2


# --- building the explanations ---------------------------------------------------------------------
def _resolve_composite(spec: CompositeSpec) -> Composite:
    if spec is None:
        return get_composite("zero")
    if isinstance(spec, (Composite, str)):
        return get_composite(spec)
    if callable(spec):
        composite = spec()
        if not isinstance(composite, Composite):
            raise TypeError(f"composite_factory must return an lrpcore Composite, got {type(composite).__name__}")
        return composite
    raise TypeError(f"composite must be a Composite, a preset name or a factory, got {type(spec).__name__}")


def with_stabilizer(model: Sequential, composite: CompositeSpec, stabilizer: str | Callable[..., Any] | None,
                    epsilon: float | None = None) -> Composite:
    """A composite giving every rule of ``composite`` (resolved on ``model``) the ``stabilizer``.

    ``epsilon``: if given, also replaces the ε each rule's stabilizer adds (the ε of LRP-ε, the
    + 1e-9 of the γ rules); None keeps each rule's own ε. The original rules are not modified.
    """
    base = _resolve_composite(composite)
    function = get_stabilizer(stabilizer) if stabilizer is not None else None
    if epsilon is not None and epsilon < 0:
        raise InputValueError(f"epsilon must be ≥ 0, got {epsilon}")
    mapping: dict[int, Rule] = {}
    for index, rule in enumerate(base.rules(model)):
        if isinstance(rule, Pass):
            continue
        clone = copy.copy(rule)
        if function is not None:
            clone.stabilizer = function
            clone.stabilizer_name = stabilizer if isinstance(stabilizer, str) else getattr(stabilizer, "__name__",
                                                                                            "custom")
        if epsilon is not None:
            clone.epsilon = float(epsilon)
        mapping[index] = clone
    name = f"{base.name}[{stabilizer if isinstance(stabilizer, str) or stabilizer is None else 'custom'}" \
           f"{'' if epsilon is None else f', ε={epsilon:g}'}]"
    return Composite(by_index=mapping, name=name)


def layer_profile(explanation: Explanation) -> dict[str, numpy.ndarray]:
    """Per-layer, per-sample stability numbers of a recorded explanation (arrays of shape (layers, N)).

    ``conservation_error``: |Σ_j R_j − Σ_k R_k| / |Σ_k R_k| at each layer;
    ``smallest_denominator``: min_k |z_k| over the outputs that carry relevance (R_k ≠ 0), over all
    branches (NaN for layers without denominators, e.g. ReLU);
    ``relative_smallest_denominator``: the same divided by the sample's RMS(z) of that branch;
    ``near_zero``/``zero``: the trace's counts of relevance-carrying near-zero / zero denominators;
    ``l1``: Σ|R| at each layer's input (index L: at the output), the size of the relevance;
    ``peak``: max|R| at each layer's input.
    """
    if explanation.trace is None:
        raise InputValueError("layer_profile needs an explanation computed with record=True")
    sums = numpy.stack([numpy.asarray(to_numpy(total), dtype=numpy.float64) for total in explanation.layer_sums()])
    upper, lower = sums[1:], sums[:-1]
    with numpy.errstate(divide="ignore", invalid="ignore"):
        conservation = numpy.abs(lower - upper) / numpy.maximum(numpy.abs(upper), 1e-30)
    layers, batch = len(explanation.model), sums.shape[1]
    smallest = numpy.full((layers, batch), numpy.nan)
    relative = numpy.full((layers, batch), numpy.nan)
    for step in explanation.trace:
        if step is None:
            continue
        carries = numpy.asarray(to_numpy(step.relevance_out), dtype=numpy.float64).reshape(batch, -1) != 0
        for branch in step.branches:
            z = numpy.abs(numpy.asarray(to_numpy(branch.z), dtype=numpy.float64)).reshape(batch, -1)
            rms = numpy.sqrt(numpy.mean(z * z, axis=1))
            masked = numpy.where(carries, z, numpy.inf).min(axis=1)
            masked = numpy.where(numpy.isfinite(masked), masked, numpy.nan)
            smallest[step.index] = numpy.fmin(smallest[step.index], masked)
            with numpy.errstate(divide="ignore", invalid="ignore"):
                relative[step.index] = numpy.fmin(relative[step.index], masked / rms)
    magnitudes = [numpy.abs(numpy.asarray(to_numpy(r), dtype=numpy.float64)).reshape(batch, -1)
                  for r in explanation.layer_relevances]
    return {
        "conservation_error": conservation,
        "smallest_denominator": smallest,
        "relative_smallest_denominator": relative,
        "near_zero": numpy.asarray(explanation.near_zero_denominators),
        "zero": numpy.asarray(explanation.zero_denominators),
        "l1": numpy.stack([m.sum(axis=1) for m in magnitudes]),
        "peak": numpy.stack([m.max(axis=1) for m in magnitudes]),
    }


def _relative_difference(value: numpy.ndarray, reference: numpy.ndarray) -> numpy.ndarray:
    """‖value − reference‖₂ / ‖reference‖₂ per sample (inf if value is not finite)."""
    batch = reference.shape[0]
    value = value.reshape(batch, -1).astype(numpy.float64)
    reference = reference.reshape(batch, -1).astype(numpy.float64)
    with numpy.errstate(over="ignore", invalid="ignore"):
        difference = numpy.linalg.norm(value - reference, axis=1)
    norm = numpy.maximum(numpy.linalg.norm(reference, axis=1), 1e-300)
    result = difference / norm
    return numpy.where(numpy.isfinite(value).all(axis=1), result, numpy.inf)


def _check_dtypes(dtypes: Sequence[str]) -> tuple[str, ...]:
    allowed = ("float16", "float32", "float64")
    names = tuple(str(numpy.dtype(d)) for d in dtypes)
    bad = [name for name in names if name not in allowed]
    if bad or not names:
        raise InputValueError(f"dtypes must be a non-empty selection of {allowed}, got {tuple(dtypes)}")
    return names


# --- compare_stabilizers ---------------------------------------------------------------------------
@dataclasses.dataclass
class StabilityRow:
    """One (sample, stabilizer, ε, dtype) cell of :class:`StabilityComparison` (per-layer arrays of length L)."""

    sample: int
    stabilizer: str
    epsilon: float | None
    dtype: str
    conservation_error: numpy.ndarray
    smallest_denominator: numpy.ndarray
    near_zero: numpy.ndarray
    zero: numpy.ndarray
    unstable: bool
    statistic: float
    reason: str
    total_error: float
    dtype_difference: float
    """‖R − R_ref‖/‖R_ref‖ against the same setting in the most precise dtype requested (0 for that one)."""

    @property
    def label(self) -> str:
        epsilon = "rule ε" if self.epsilon is None else f"ε={self.epsilon:g}"
        return f"{self.stabilizer}, {epsilon}, {self.dtype}"


@dataclasses.dataclass
class StabilityComparison:
    """Result of :func:`compare_stabilizers`: rows per sample and setting, and the heatmaps.

    ``heatmaps[(stabilizer, epsilon, dtype)]`` is the input relevance (N, ...) as float64 NumPy;
    ``layers`` names the model's layers; ``explanations`` keeps the recorded explanations
    (same keys) for :func:`locate_instability`.
    """

    rows: list[StabilityRow]
    heatmaps: dict[tuple[str, float | None, str], numpy.ndarray]
    layers: list[str]
    explanations: dict[tuple[str, float | None, str], Explanation]

    def rows_for(self, sample: int) -> list[StabilityRow]:
        """The rows of one input, in the order the settings were run."""
        return [row for row in self.rows if row.sample == sample]

    @property
    def samples(self) -> list[int]:
        return sorted({row.sample for row in self.rows})

    def table(self, sample: int = 0) -> str:
        """A text table for one input: one line per setting, the worst layer of each quantity."""
        header = ("setting", "verdict", "statistic", "max cons. err (layer)", "min |z| (layer)", "near-0",
                  "zero", "Δ dtype")
        cells = [header]
        for row in self.rows_for(sample):
            errors = numpy.nan_to_num(row.conservation_error, nan=-1.0)
            worst = int(numpy.argmax(errors))
            denominators = numpy.where(numpy.isnan(row.smallest_denominator), numpy.inf, row.smallest_denominator)
            tightest = int(numpy.argmin(denominators))
            cells.append((row.label, "UNSTABLE" if row.unstable else "stable", f"{row.statistic:.2f}",
                          f"{row.conservation_error[worst]:.2e} ({worst})",
                          f"{row.smallest_denominator[tightest]:.2e} ({tightest})"
                          if numpy.isfinite(denominators[tightest]) else "-",
                          str(int(row.near_zero.sum())), str(int(row.zero.sum())), f"{row.dtype_difference:.2e}"))
        widths = [max(len(line[column]) for line in cells) for column in range(len(header))]
        lines = [f"sample {sample}"]
        for number, line in enumerate(cells):
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths)))
            if number == 0:
                lines.append("  ".join("-" * width for width in widths))
        return "\n".join(lines)

    def __str__(self) -> str:
        return "\n\n".join(self.table(sample) for sample in self.samples) + "\n\n" + self.legend()

    def legend(self) -> str:
        """What the columns of :meth:`table` mean."""
        reference = max((row.dtype for row in self.rows), key=lambda d: numpy.dtype(d).itemsize, default="float64")
        return "\n".join([
            "columns:",
            "  verdict     UNSTABLE when the statistic exceeds the threshold (2: a hundredfold), when the heatmap",
            "              holds NaN/inf, or when relevance met an exactly zero denominator (and was dropped)",
            "  statistic   log10(max pixel |R| / 95th percentile of pixel |R|): orders of magnitude by which the",
            "              strongest pixel exceeds a typical strong one (natural heatmaps 0.3-1.5, patches 2 and more)",
            "  max cons. err (layer)  largest |ΣR_in − ΣR_out| / |ΣR_out| over the layers, and that layer",
            "  min |z| (layer)        smallest stabilized denominator |z_k| with R_k ≠ 0, and its layer",
            "  near-0, zero  relevance-carrying denominators with |z| below 1e-6·RMS(z) of the sample, and exactly 0",
            f"  Δ dtype     ‖R − R_ref‖ / ‖R_ref‖: the heatmap against the same setting in {reference},",
            "              the most precise dtype compared (0 for that dtype itself)",
        ])

    def to_csv(self) -> str:
        """Long-format CSV: one line per (sample, setting, layer) with every per-layer quantity."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["sample", "stabilizer", "epsilon", "dtype", "layer_index", "layer", "conservation_error",
                         "smallest_denominator", "near_zero", "zero", "unstable", "statistic", "dtype_difference"])
        for row in self.rows:
            for index, name in enumerate(self.layers):
                writer.writerow([row.sample, row.stabilizer, "" if row.epsilon is None else repr(row.epsilon),
                                 row.dtype, index, name, repr(float(row.conservation_error[index])),
                                 repr(float(row.smallest_denominator[index])), int(row.near_zero[index]),
                                 int(row.zero[index]), int(row.unstable), repr(float(row.statistic)),
                                 repr(float(row.dtype_difference))])
        return buffer.getvalue()


def compare_stabilizers(model: Sequential, x: Any, composite_factory: CompositeSpec = "tutorial",
                        stabilizers: Sequence[str] = ("vanilla", "zennit", "quadratic_mean"),
                        epsilons: Iterable[float | None] = (None,), dtypes: Sequence[str] = ("float32", "float64"),
                        target: Any = None, threshold: float = DEFAULT_THRESHOLD,
                        progress: Callable[[int], Any] | None = None) -> StabilityComparison:
    """Explain ``x`` once per (stabilizer, ε, dtype) and tabulate the stability of every sample.

    ``composite_factory``: a :class:`Composite`, a preset name, or a no-argument callable returning
    one; every rule it assigns gets each stabilizer in turn (:func:`with_stabilizer`).
    ``epsilons``: None keeps each rule's own ε; a number replaces it in every rule.
    ``dtypes``: the model and input are cast to each; the difference between dtypes is measured
    against the most precise one. ``target``: as in :func:`~lrpcore.explain`; it is resolved once
    on the most precise dtype, so all settings explain the same class. ``progress``: called with 1
    after each explanation (stabilizers × ε values × dtypes in all), e.g. a progress bar's ``update``.
    """
    dtypes = _check_dtypes(dtypes)
    for name in stabilizers:
        if name not in STABILIZERS:
            raise InputValueError(f"unknown stabilizer {name!r}; expected names from {sorted(STABILIZERS)}")
    epsilons = tuple(epsilons)
    if not epsilons:
        raise InputValueError("epsilons must hold at least one value (None keeps each rule's ε)")
    reference_dtype = max(dtypes, key=lambda d: numpy.dtype(d).itemsize)
    host = numpy.asarray(to_numpy(x))
    models = {dtype: model.astype(dtype) for dtype in dtypes}
    target = resolve_target_names(target, model.metadata.class_names, model.metadata.name)
    if target is None or isinstance(target, str):
        logits = to_numpy(models[reference_dtype].forward(models[reference_dtype].prepare_input(
            host.astype(reference_dtype))))
        target = numpy.argmax(logits, axis=1)
    heatmaps: dict[tuple[str, float | None, str], numpy.ndarray] = {}
    explanations: dict[tuple[str, float | None, str], Explanation] = {}
    rows: list[StabilityRow] = []
    for stabilizer, epsilon in itertools.product(stabilizers, epsilons):
        composite = with_stabilizer(model, composite_factory, stabilizer, epsilon)
        for dtype in dtypes:
            result = explain(models[dtype], host.astype(dtype), target=target, composite=composite, record=True)
            key = (stabilizer, epsilon, dtype)
            explanations[key] = result
            heatmaps[key] = numpy.asarray(to_numpy(result.relevance), dtype=numpy.float64)
            if progress is not None:
                progress(1)
        reference = heatmaps[(stabilizer, epsilon, reference_dtype)]
        for dtype in dtypes:
            key = (stabilizer, epsilon, dtype)
            result = explanations[key]
            profile = layer_profile(result)
            report = detect_instability(result, threshold=threshold)
            difference = _relative_difference(heatmaps[key], reference)
            outputs = numpy.asarray(to_numpy(result.output), dtype=numpy.float64)
            inputs = heatmaps[key].reshape(heatmaps[key].shape[0], -1).sum(axis=1)
            for sample in range(host.shape[0]):
                rows.append(StabilityRow(
                    sample=sample, stabilizer=stabilizer, epsilon=epsilon, dtype=dtype,
                    conservation_error=profile["conservation_error"][:, sample],
                    smallest_denominator=profile["smallest_denominator"][:, sample],
                    near_zero=profile["near_zero"][:, sample], zero=profile["zero"][:, sample],
                    unstable=bool(report.unstable[sample]), statistic=float(report.statistic[sample]),
                    reason=report.reasons[sample],
                    total_error=float(abs(inputs[sample] - outputs[sample]) / max(abs(outputs[sample]), 1e-30)),
                    dtype_difference=float(difference[sample])))
    return StabilityComparison(rows=rows, heatmaps=heatmaps, layers=[layer.describe() for layer in model.layers],
                               explanations=explanations)


# --- stability_grid --------------------------------------------------------------------------------
@dataclasses.dataclass
class StabilityGrid:
    """Figure 2.5 of the thesis as data: heatmaps over a 2-D parameter grid with instability marks.

    ``row_name``/``column_name`` are the swept parameters with ``row_values``/``column_values``;
    ``heatmaps[i, j]`` is the input relevance (N, ...) of cell (i, j); ``statistic[i, j, n]`` and
    ``unstable[i, j, n]`` the :func:`detect_instability` results; ``near_zero[i, j, n]`` the number of
    near-zero denominators over all layers; ``conservation_error[i, j, n]`` |ΣR_input − f(x)| / |f(x)|.
    """

    row_name: str
    row_values: list[float]
    column_name: str
    column_values: list[float]
    heatmaps: numpy.ndarray
    statistic: numpy.ndarray
    unstable: numpy.ndarray
    near_zero: numpy.ndarray
    conservation_error: numpy.ndarray
    stabilizer: str
    composite: str

    def __str__(self) -> str:
        columns = f", columns {self.column_name}" if self.column_name else ""
        lines = [f"{self.composite} with {self.stabilizer}: instability statistic (sample 0), "
                 f"rows {self.row_name}{columns}; * = unstable"]
        lines.append(f"{self.row_name:>10} | " + " ".join(f"{value:>9.3g}" if self.column_name else f"{'':>9}"
                                                            for value in self.column_values))
        for i, value in enumerate(self.row_values):
            cells = [f"{self.statistic[i, j, 0]:8.2f}{'*' if self.unstable[i, j, 0] else ' '}"
                     for j in range(len(self.column_values))]
            lines.append(f"{value:>10.3g} | " + " ".join(cells))
        return "\n".join(lines)


def stability_grid(model: Sequential, x: Any, param_grid: Mapping[str, Sequence[float]],
                   stabilizer: str = "vanilla", composite: str | Callable[..., Composite] = "tutorial",
                   target: Any = None, threshold: float = DEFAULT_THRESHOLD) -> StabilityGrid:
    """Explain ``x`` for every combination of two parameters of a composite preset and mark unstable cells.

    ``param_grid``: one or two keyword arguments of the preset (``composite`` is a name from
    :data:`lrpcore.composites.PRESETS` or a factory taking those keywords), e.g.
    ``{"gamma": [0.01, 0.1, 0.25, 1], "epsilon": [1e-3, 0.01, 0.25, 1]}`` for ``"tutorial"``; with
    one parameter the grid has a single column (``column_name`` "").
    Every rule then gets ``stabilizer`` (keeping its own ε). The forward pass is run once and reused.
    """
    from .composites import PRESETS

    if len(param_grid) not in (1, 2):
        raise InputValueError(f"param_grid must name one or two parameters, got {list(param_grid)}")
    axes = [(name, [float(v) for v in values]) for name, values in param_grid.items()]
    (row_name, row_values), (column_name, column_values) = axes if len(axes) == 2 else (axes[0], ("", [math.nan]))
    if not row_values or not column_values:
        raise InputValueError("every parameter in param_grid needs at least one value")
    if isinstance(composite, str):
        if composite not in PRESETS:
            raise InputValueError(f"unknown composite {composite!r}; presets are {sorted(PRESETS)}")
        factory, composite_name = PRESETS[composite], composite
    else:
        composite_name = getattr(composite, "__name__", "custom")
        factory, composite_name = composite, ("custom" if composite_name == "<lambda>" else composite_name)
    x = model.prepare_input(x)
    activations = model.forward(x, record=True)
    target = resolve_target_names(target, model.metadata.class_names, model.metadata.name)
    if target is None or isinstance(target, str):
        target = numpy.argmax(to_numpy(activations[-1]), axis=1)
    shape = (len(row_values), len(column_values))
    heatmaps = numpy.empty(shape, dtype=object)
    statistic = numpy.zeros(shape + (x.shape[0],))
    unstable = numpy.zeros(shape + (x.shape[0],), dtype=bool)
    near_zero = numpy.zeros(shape + (x.shape[0],), dtype=numpy.int64)
    error = numpy.zeros(shape + (x.shape[0],))
    for i, row_value in enumerate(row_values):
        for j, column_value in enumerate(column_values):
            arguments = {row_name: row_value, column_name: column_value} if column_name else {row_name: row_value}
            try:
                preset = factory(**arguments)
            except TypeError as problem:
                raise InputValueError(f"composite {composite_name!r} does not take {sorted(arguments)}: "
                                      f"{problem}") from None
            result = explain(model, x, target=target, composite=with_stabilizer(model, preset, stabilizer),
                             activations=activations)
            relevance = numpy.asarray(to_numpy(result.relevance), dtype=numpy.float64)
            report = detect_instability(result, threshold=threshold)
            heatmaps[i, j] = relevance
            statistic[i, j] = report.statistic
            unstable[i, j] = report.unstable
            near_zero[i, j] = result.near_zero_denominators.sum(axis=0)
            outputs = numpy.asarray(to_numpy(result.output), dtype=numpy.float64)
            totals = relevance.reshape(relevance.shape[0], -1).sum(axis=1)
            error[i, j] = numpy.abs(totals - outputs) / numpy.maximum(numpy.abs(outputs), 1e-30)
    return StabilityGrid(row_name=row_name, row_values=row_values, column_name=column_name,
                         column_values=column_values, heatmaps=heatmaps, statistic=statistic, unstable=unstable,
                         near_zero=near_zero, conservation_error=error, stabilizer=stabilizer,
                         composite=composite_name)


# --- precision study -------------------------------------------------------------------------------
@dataclasses.dataclass
class PrecisionStudy:
    """Result of :func:`precision_study`.

    ``layer_difference[dtype]``: (L + 1, N) relative difference ‖R_l − R_l^ref‖/‖R_l^ref‖ of the
    relevance at the input of every layer l (row L: the starting relevance at the output) against
    the reference dtype. ``first_departure[dtype][n]``: the first layer, in the order of the backward
    pass (from the top), whose difference exceeds ``tolerance`` — None if none does.
    ``heatmap_difference[dtype]``: the same number for the input relevance. ``largest_jump[dtype][n]``:
    the layer whose backward step multiplied the difference the most (where a near-zero denominator
    amplifies rounding), or None when the difference never grows.
    """

    dtypes: tuple[str, ...]
    reference: str
    tolerance: float
    layers: list[str]
    layer_difference: dict[str, numpy.ndarray]
    first_departure: dict[str, list[int | None]]
    heatmap_difference: dict[str, numpy.ndarray]
    heatmaps: dict[str, numpy.ndarray]
    seconds: dict[str, float]
    largest_jump: dict[str, list[int | None]] = dataclasses.field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"precision study against {self.reference} (departure: relative difference > {self.tolerance:g})"]
        for dtype in self.dtypes:
            if dtype == self.reference:
                continue
            for sample, layer in enumerate(self.first_departure[dtype]):
                where = "never departs" if layer is None else (
                    f"departs first at layer {layer} ({self.layers[layer]}) by "
                    f"{self.layer_difference[dtype][layer, sample]:.2e}")
                jump = self.largest_jump.get(dtype, [None] * (sample + 1))[sample]
                grows = "" if jump is None else (
                    f"; grows most at layer {jump} (× {self._jump_factor(dtype, jump, sample):.3g})")
                lines.append(f"  {dtype}, sample {sample}: heatmap differs by "
                             f"{self.heatmap_difference[dtype][sample]:.2e}; {where}{grows}  "
                             f"[{self.seconds[dtype]:.2f} s]")
        return "\n".join(lines)

    def _jump_factor(self, dtype: str, layer: int, sample: int) -> float:
        differences = self.layer_difference[dtype][:, sample]
        return float(differences[layer] / max(differences[layer + 1], 1e-300))


def precision_study(model: Sequential, x: Any, composite: CompositeSpec = "tutorial",
                    dtypes: Sequence[str] = ("float16", "float32", "float64"), target: Any = None,
                    stabilizer: str | None = None, tolerance: float = DEFAULT_DEPARTURE_TOLERANCE
                    ) -> PrecisionStudy:
    """The same explanation in several floating-point precisions, compared layer by layer with the most precise.

    float16 runs the whole pass (forward and backward) on float16 arrays through the array API:
    NumPy has no float16 BLAS, so its matmuls are computed in a slow loop (VGG-16 at 32×32 takes
    about 6× longer than float32) and its range ends at 65504, so large relevances overflow to inf
    (reported as an infinite difference). The targets are resolved once in the reference precision.
    """
    import time

    dtypes = _check_dtypes(dtypes)
    reference = max(dtypes, key=lambda d: numpy.dtype(d).itemsize)
    host = numpy.asarray(to_numpy(x))
    reference_model = model.astype(reference)
    target = resolve_target_names(target, model.metadata.class_names, model.metadata.name)
    if target is None or isinstance(target, str):
        target = numpy.argmax(to_numpy(reference_model.forward(reference_model.prepare_input(
            host.astype(reference)))), axis=1)
    chosen = with_stabilizer(model, composite, stabilizer) if stabilizer is not None else _resolve_composite(composite)
    relevances: dict[str, list[numpy.ndarray]] = {}
    seconds: dict[str, float] = {}
    for dtype in dtypes:
        cast = reference_model if dtype == reference else model.astype(dtype)
        start = time.perf_counter()
        with numpy.errstate(over="ignore", invalid="ignore", divide="ignore"):
            result = explain(cast, host.astype(dtype), target=target, composite=chosen)
        seconds[dtype] = time.perf_counter() - start
        relevances[dtype] = [numpy.asarray(to_numpy(r), dtype=numpy.float64) for r in result.layer_relevances]
    layer_difference, first_departure, heatmap_difference, largest_jump = {}, {}, {}, {}
    for dtype in dtypes:
        differences = numpy.stack([_relative_difference(value, ref)
                                   for value, ref in zip(relevances[dtype], relevances[reference])])
        layer_difference[dtype] = differences
        heatmap_difference[dtype] = differences[0]
        departures: list[int | None] = []
        for sample in range(host.shape[0]):
            exceeded = [layer for layer in range(len(model) - 1, -1, -1) if differences[layer, sample] > tolerance]
            departures.append(exceeded[0] if exceeded else None)
        first_departure[dtype] = departures
        with numpy.errstate(divide="ignore", invalid="ignore"):
            factors = differences[:-1] / numpy.maximum(differences[1:], 1e-300)
        factors = numpy.where(numpy.isnan(factors), 0.0, factors)
        largest_jump[dtype] = [int(numpy.argmax(factors[:, n])) if factors[:, n].max() > 1 else None
                               for n in range(host.shape[0])]
    return PrecisionStudy(dtypes=dtypes, reference=reference, tolerance=tolerance,
                          layers=[layer.describe() for layer in model.layers], layer_difference=layer_difference,
                          first_departure=first_departure, heatmap_difference=heatmap_difference,
                          heatmaps={dtype: relevances[dtype][0] for dtype in dtypes}, seconds=seconds,
                          largest_jump=largest_jump)


# --- locating the cause ----------------------------------------------------------------------------
@dataclasses.dataclass
class InstabilityDiagnosis:
    """Where one heatmap's relevance blew up (see :func:`locate_instability`).

    ``layer``: the layer whose step multiplied the peak relevance max|R| the most
    (``peak_growth[layer]``); ``neurons``: the output positions (index tuples without the batch
    axis) of that layer with the smallest stabilized |z_k| among those carrying relevance, with
    their ``denominators`` (signed, stabilized) and ``relevances`` R_k; ``growth[l]`` = Σ|R| at
    layer l's input / Σ|R| at its output; ``peak_growth[l]`` the same for max|R|;
    ``l1``/``peak``: Σ|R| and max|R| at every layer's input (last entry: the output).
    """

    sample: int
    layer: int
    layer_name: str
    rule: str
    neurons: list[tuple[int, ...]]
    denominators: list[float]
    relevances: list[float]
    growth: numpy.ndarray
    l1: numpy.ndarray
    peak: numpy.ndarray
    smallest_denominator: numpy.ndarray
    peak_growth: numpy.ndarray

    def __str__(self) -> str:
        lines = [f"sample {self.sample}: relevance grew most at layer {self.layer} ({self.layer_name}, "
                 f"{self.rule}): max|R| × {self.peak_growth[self.layer]:.3g}, Σ|R| × {self.growth[self.layer]:.3g}",
                 "  smallest stabilized denominators there (neuron: z_k, R_k):"]
        for neuron, z, relevance in zip(self.neurons, self.denominators, self.relevances):
            lines.append(f"    {neuron}: z = {z:.3e}, R = {relevance:.3e}")
        changed = [index for index in range(len(self.growth) - 1, -1, -1) if self.growth[index] != 1.0]
        lines.append("  Σ|R| from the output down: output " + f"{self.l1[-1]:.3g}" + "".join(
            f" → [{index}] {self.l1[index]:.3g}" for index in changed))
        return "\n".join(lines)


def locate_instability(explanation: Explanation, sample: int = 0, count: int = 5) -> InstabilityDiagnosis:
    """Name the layer and neurons behind an unstable heatmap of a recorded ``explanation``.

    The layer is the one whose backward step grew the peak relevance max|R| the most: a near-zero
    denominator z_k multiplies R_k's share by z_jk / z_k for the few inputs j of neuron k, a spike
    that the peak shows even where Σ|R| hardly moves (Σ|R| also grows where positive and negative
    relevance separate, so it can point at the wrong layer). The neurons are that layer's
    ``count`` relevance-carrying outputs with the smallest stabilized |z_k| (over all branches).
    """
    if explanation.trace is None:
        raise InputValueError("locate_instability needs an explanation computed with record=True")
    batch = explanation.relevance.shape[0]
    if not 0 <= sample < batch:
        raise ShapeError(f"sample {sample} out of range for a batch of {batch}")
    profile = layer_profile(explanation)
    l1 = profile["l1"][:, sample]
    with numpy.errstate(divide="ignore", invalid="ignore"):
        growth = numpy.where(l1[1:] > 0, l1[:-1] / l1[1:], numpy.where(l1[:-1] > 0, numpy.inf, 1.0))
    growth = numpy.nan_to_num(growth, nan=numpy.inf)
    peak = profile["peak"][:, sample]
    with numpy.errstate(divide="ignore", invalid="ignore"):
        peak_growth = numpy.where(peak[1:] > 0, peak[:-1] / peak[1:], numpy.where(peak[:-1] > 0, numpy.inf, 1.0))
    peak_growth = numpy.nan_to_num(peak_growth, nan=numpy.inf)
    layer = int(numpy.argmax(peak_growth))
    step = explanation.trace[layer]
    neurons: list[tuple[int, ...]] = []
    denominators: list[float] = []
    relevances: list[float] = []
    if step is not None and step.branches:
        upper = numpy.asarray(to_numpy(step.relevance_out), dtype=numpy.float64)[sample]
        candidates = []
        for branch in step.branches:
            z = numpy.asarray(to_numpy(branch.z), dtype=numpy.float64)[sample]
            flat = numpy.where(upper.reshape(-1) != 0, numpy.abs(z.reshape(-1)), numpy.inf)
            for position in numpy.argsort(flat, kind="stable")[:count]:
                if numpy.isfinite(flat[position]):
                    candidates.append((flat[position], int(position), float(z.reshape(-1)[position])))
        seen = set()
        for _, position, z_value in sorted(candidates):
            if position in seen:
                continue
            seen.add(position)
            neurons.append(tuple(int(i) for i in numpy.unravel_index(position, upper.shape)))
            denominators.append(z_value)
            relevances.append(float(upper.reshape(-1)[position]))
            if len(neurons) == count:
                break
    return InstabilityDiagnosis(sample=sample, layer=layer, layer_name=explanation.model.layers[layer].describe(),
                                rule=explanation.rules[layer].describe(), neurons=neurons,
                                denominators=denominators, relevances=relevances, growth=growth, l1=l1,
                                peak=peak, smallest_denominator=profile["smallest_denominator"][:, sample],
                                peak_growth=peak_growth)


# --- a network where hidden denominators can reach −ε -------------------------------------------------
def linear_bottleneck_network(seed: int = 0, channels: int = 8, size: int = 16, classes: int = 4,
                              dtype: str = "float64") -> Sequential:
    """A small random conv net with a *linear bottleneck*: a convolution whose output is not rectified.

    Conv(3→C, 3×3) → ReLU → Conv(C→C, 3×3, no ReLU: the bottleneck, as in MobileNetV2) →
    Conv(C→C, 1×1) → ReLU → AvgPool(4) → Flatten → Dense → ReLU → Dense. In a network where every
    linear layer is followed by a ReLU, a hidden output k carries relevance only where z_k > 0, so
    z_k + ε > 0 and the vanilla stabilizer is safe below the top layer. Behind the bottleneck,
    relevance reaches outputs of either sign, and a z_k ≈ −ε makes vanilla's z_k + ε vanish: the
    thesis' "patch" over that neuron's 3×3 receptive field. Weights: He-normal from ``seed``,
    biases N(0, 0.1²); input (3, size, size).
    """
    from .layers import AvgPool2d, Conv2d, Dense, Flatten, ReLU
    from .model import ModelMetadata

    if size % 4:
        raise InputValueError(f"size must be a multiple of 4, got {size}")
    rng = numpy.random.default_rng(seed)

    def he(shape: tuple[int, ...]) -> numpy.ndarray:
        fan_in = int(numpy.prod(shape[1:]))
        return (rng.normal(size=shape) * numpy.sqrt(2.0 / fan_in)).astype(dtype)

    def bias(count: int) -> numpy.ndarray:
        return (rng.normal(size=count) * 0.1).astype(dtype)

    hidden = channels * (size // 4) ** 2
    layers = [
        Conv2d(he((channels, 3, 3, 3)), bias(channels), padding=1), ReLU(),
        Conv2d(he((channels, channels, 3, 3)), bias(channels), padding=1),
        Conv2d(he((channels, channels, 1, 1)), bias(channels)), ReLU(),
        AvgPool2d(4), Flatten(),
        Dense(he((32, hidden)), bias(32)), ReLU(),
        Dense(he((classes, 32)), bias(classes)),
    ]
    return Sequential(layers, ModelMetadata(input_shape=(3, size, size), value_range=(0.0, 1.0),
                                            name="linear_bottleneck",
                                            description=f"random linear-bottleneck conv net (seed={seed})"))
