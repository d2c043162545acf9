"""What the report shows, computed from a recorded explanation: one :class:`LayerView` per step.

Everything comes from ``lrpcore.explain(model, x, record=True)``'s trace (one sample): for each
step, top layer first,

- the relevance arriving at the layer (R at its output, ``relevance_out``) and the relevance it
  passes down (R at its input, ``relevance_in = a ⊙ c``), channel-summed into maps; vectors are
  folded row by row into a near-square grid;
- Σ R out, Σ R in and the absorbed share (Σ R out − Σ R in) / Σ R out (bias, ε, dropped relevance);
- the rule and its stabilizer;
- the denominators z of each branch over the outputs that carry relevance (R_k ≠ 0): their
  smallest |z|, median, RMS and a histogram of log10 |z|, with the exactly-zero and near-zero
  counts the rules record (near zero: |z| < 1e-6 · RMS(z) of the sample);
- one neuron's four quantities: the output k with the largest |R_k| (its z_k and s_k = R_k / z_k
  per branch) and the input j with the largest |R_j| (its a_j and c_j; R_j = a_j c_j for
  single-term rules);
- on small layers (at most ``COLUMN_LIMIT`` matrix entries) the column k of the explicit matrix
  M_l = :func:`lrpcore.relevance_matrix` that distributes R_k over the inputs, with the check
  that M_l R_out reproduces the fast path's R_in.

Graph models' steps carry a node ``name`` and ``inputs``; chain steps are named by their index.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np

from ..backend import to_numpy
from ..plot.heatmap import heatmap_scale

__all__ = ["MapView", "LayerView", "ReportData", "collect", "COLUMN_LIMIT", "fold"]

#: Largest in_features × out_features for which the column of M_l is built (a dense matrix).
COLUMN_LIMIT = 4_000_000
#: Bins of the log10 |z| histogram.
HISTOGRAM_BINS = 24


@dataclasses.dataclass
class MapView:
    """A channel-summed map (2-D float64) and how it was made from the array."""

    pixels: np.ndarray
    note: str
    limit: float                 # this map's own colour limit b
    padding: int = 0             # trailing cells added when a vector was folded (not data)

    @property
    def total(self) -> float:
        return float(np.nansum(self.pixels))


@dataclasses.dataclass
class LayerView:
    """The numbers and maps the report shows for one backward step (see the module docstring)."""

    position: int                # 0 = top layer
    index: int
    name: str
    layer: str
    rule: str
    stabilizer: str
    inputs: list[str]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    sum_out: float
    sum_in: float
    arriving: MapView
    passed: MapView
    zero: int
    near_zero: int
    denominators: list[dict[str, Any]]
    neuron: dict[str, Any]
    column: dict[str, Any] | None
    column_note: str

    @property
    def absorbed(self) -> float:
        return self.sum_out - self.sum_in

    @property
    def absorbed_share(self) -> float:
        return self.absorbed / self.sum_out if self.sum_out != 0 else float("nan")


@dataclasses.dataclass
class ReportData:
    """Everything the page needs: the model, the input, the prediction and the layer views."""

    model_name: str
    description: str
    origin: str
    input_note: str
    composite: str
    dtype: str
    image: np.ndarray | None         # (H, W, 3) uint8 picture of the raw input, or None
    heatmap: MapView
    classes: list[tuple[str, float, float]]   # top classes: (name, score, probability)
    target: str
    explained: float
    input_sum: float
    layers: list[LayerView]

    @property
    def relative_error(self) -> float:
        return abs(self.input_sum - self.explained) / max(abs(self.explained), 1e-30)


# --- maps ------------------------------------------------------------------------------------------------
def fold(vector: np.ndarray) -> tuple[np.ndarray, str]:
    """A vector as a 2-D map: up to 16 values in one row, longer ones row by row in a near-square grid
    (cells past the end are NaN)."""
    size = vector.size
    if size <= 16:
        return vector.reshape(1, size), f"{size} values in one row"
    columns = math.ceil(math.sqrt(size))
    rows = math.ceil(size / columns)
    grid = np.full(rows * columns, np.nan)
    grid[:size] = vector
    return grid.reshape(rows, columns), f"{size} values folded row by row into {rows} × {columns}"


def map_of(values: Any) -> MapView:
    """One sample's array (without batch axis) as a channel-summed map."""
    array = np.asarray(to_numpy(values), dtype=np.float64)
    if array.ndim == 3:
        pixels, note = array.sum(axis=0), f"{array.shape[0]} channels summed, {array.shape[1]} × {array.shape[2]}"
    elif array.ndim == 2:
        pixels, note = array.sum(axis=0)[None, :], f"{array.shape[0]} channels summed, length {array.shape[1]}"
        if pixels.shape[1] > 256:
            pixels, note = fold(pixels.reshape(-1))[0], note + ", folded row by row"
    elif array.ndim == 1:
        pixels, note = fold(array)
    else:
        pixels, note = fold(array.reshape(-1))
    padding = pixels.size - (array.size if array.ndim != 3 and array.ndim != 2 else pixels.size)
    if array.ndim == 2 and "folded" in note:
        padding = pixels.size - array.shape[1]
    finite = pixels[np.isfinite(pixels)]
    limit = heatmap_scale(finite[None, :], "auto") if finite.size else 1.0
    return MapView(pixels=pixels, note=note, limit=limit, padding=int(padding))


# --- one step -----------------------------------------------------------------------------------------------
def _label(step: Any) -> str:
    name = getattr(step, "name", None)
    return str(name) if name is not None else str(step.index)


def _stabilizer(rule: Any) -> str:
    if type(rule).__name__ == "Pass":
        return "none (relevance passes unchanged)"
    name = getattr(rule, "stabilizer_name", None) or "custom"
    epsilon = getattr(rule, "epsilon", None)
    return f"{name}, ε = {epsilon:g}" if isinstance(epsilon, (int, float)) else str(name)


def _where(index: int, shape: Sequence[int], class_names: Sequence[str] = ()) -> str:
    """Human position of a flat index in one sample's shape: (c, h, w), (c, l) or k (with a class name)."""
    position = np.unravel_index(index, tuple(shape))
    if len(shape) == 3:
        return f"channel {position[0]}, row {position[1]}, column {position[2]}"
    if len(shape) == 2:
        return f"channel {position[0]}, position {position[1]}"
    name = f" ('{class_names[index]}')" if class_names and index < len(class_names) else ""
    return f"neuron {index}{name}"


def _flat(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    return np.asarray(to_numpy(value), dtype=np.float64)[0].reshape(-1)


def _denominators(step: Any, carrying: np.ndarray) -> list[dict[str, Any]]:
    """Per branch: statistics of |z| over the relevance-carrying outputs, with a log10 histogram."""
    result = []
    for number, branch in enumerate(step.branches):
        z = _flat(branch.z)
        if z is None or z.size != carrying.size:
            continue
        magnitudes = np.abs(z[carrying & np.isfinite(z)])
        rms = float(np.sqrt(np.mean(z[np.isfinite(z)] ** 2))) if np.isfinite(z).any() else float("nan")
        entry = {"branch": number, "outputs": int(z.size), "carrying": int(carrying.sum()),
                 "zero": int(np.sum(branch.zero_denominators)), "near_zero": int(np.sum(branch.near_zero_denominators)),
                 "rms": rms, "histogram": None}
        if magnitudes.size:
            entry.update(smallest=float(magnitudes.min()), median=float(np.median(magnitudes)),
                         largest=float(magnitudes.max()))
            positive = magnitudes[magnitudes > 0]
            if positive.size:
                logs = np.log10(positive)
                low, high = float(logs.min()), float(logs.max())
                if high - low < 1e-9:
                    low, high = low - 0.5, high + 0.5
                counts, edges = np.histogram(logs, bins=HISTOGRAM_BINS, range=(low, high))
                entry["histogram"] = (counts.tolist(), edges.tolist())
        result.append(entry)
    return result


def _neuron(step: Any, output_shape: tuple[int, ...], input_shape: tuple[int, ...],
            class_names: Sequence[str], top: bool) -> dict[str, Any]:
    """The output with the largest |R_k| (z_k, s_k per branch) and the input with the largest |R_j| (a_j, c_j)."""
    upper, lower, a = _flat(step.relevance_out), _flat(step.relevance_in), _flat(step.a)
    k = int(np.argmax(np.abs(upper)))
    j = int(np.argmax(np.abs(lower)))
    branches = []
    for number, branch in enumerate(step.branches):
        z, s, c = _flat(branch.z), _flat(branch.s), _flat(branch.c)
        branches.append({"branch": number,
                         "z": None if z is None or z.size != upper.size else float(z[k]),
                         "s": None if s is None or s.size != upper.size else float(s[k]),
                         "c": None if c is None or c.size != lower.size else float(c[j])})
    return {"k": k, "k_where": _where(k, output_shape, class_names if top else ()), "R_k": float(upper[k]),
            "j": j, "j_where": _where(j, input_shape), "a_j": float(a[j]), "R_j": float(lower[j]),
            "branches": branches}


def _column(step: Any, k: int, limit: int) -> tuple[dict[str, Any] | None, str]:
    """Column k of M_l (lrpcore.relevance_matrix) and the check M_l R_out = R_in, on small linear layers."""
    from ..layers import LinearLayer

    layer, rule = step.layer, step.rule
    if type(rule).__name__ == "Pass":
        return None, "Pass: M_l is the identity (relevance passes unchanged)"
    if not isinstance(layer, LinearLayer):
        return None, "no explicit matrix for this layer"
    a = np.asarray(to_numpy(step.a))[:1]
    upper = np.asarray(to_numpy(step.relevance_out), dtype=np.float64)[0].reshape(-1)
    lower = np.asarray(to_numpy(step.relevance_in), dtype=np.float64)[0].reshape(-1)
    entries = a[0].size * upper.size
    if entries > limit:
        return None, (f"M_l would be {a[0].size:,} × {upper.size:,}; shown on layers with at most {limit:,} entries "
                      "(build it with lrpcore.relevance_matrix(..., sparse=True))")
    from ..matrix import relevance_matrix

    try:
        matrix = np.asarray(to_numpy(relevance_matrix(layer, step.a[:1], rule)), dtype=np.float64)
    except Exception as error:  # a rule without branches (it overrides relevance): say why, show the rest
        return None, f"M_l not available for rule {rule.describe()}: {error}"
    column = matrix[:, k]
    deviation = float(np.max(np.abs(matrix @ upper - lower))) if lower.size else 0.0
    order = np.argsort(-np.abs(column))[:5]
    return {"values": map_of(column.reshape(a.shape[1:])), "sum": float(column.sum()),
            "shape": matrix.shape, "deviation": deviation, "scale": float(np.max(np.abs(lower))) or 1.0,
            "top": [(int(index), _where(int(index), a.shape[1:]), float(column[index]),
                     float(column[index] * upper[k])) for index in order]}, ""


def _layer_view(position: int, step: Any, class_names: Sequence[str], top: bool, limit: int) -> LayerView:
    input_shape = tuple(int(size) for size in np.shape(to_numpy(step.a))[1:])
    output_shape = tuple(int(size) for size in np.shape(to_numpy(step.relevance_out))[1:])
    upper = _flat(step.relevance_out)
    neuron = _neuron(step, output_shape, input_shape, class_names, top)
    column, note = _column(step, neuron["k"], limit)
    return LayerView(
        position=position, index=int(step.index), name=_label(step), layer=step.layer.describe(),
        rule=step.rule.describe(), stabilizer=_stabilizer(step.rule),
        inputs=[str(item) for item in (getattr(step, "inputs", None) or ())],
        input_shape=input_shape, output_shape=output_shape,
        sum_out=float(np.sum(to_numpy(step.sum_out)[:1])), sum_in=float(np.sum(to_numpy(step.sum_in)[:1])),
        arriving=map_of(np.asarray(to_numpy(step.relevance_out))[0]),
        passed=map_of(np.asarray(to_numpy(step.relevance_in))[0]),
        zero=int(step.zero_denominators), near_zero=int(step.near_zero_denominators),
        denominators=_denominators(step, upper != 0), neuron=neuron, column=column, column_note=note)


def collect(explanation: Any, raw: Any = None, value_range: tuple[float, float] = (0.0, 1.0), *,
            origin: str = "", input_note: str = "", composite: str = "",
            column_limit: int = COLUMN_LIMIT) -> ReportData:
    """The report's data from a recorded explanation of one sample (``explain(..., record=True)``).

    ``raw``: the sample's raw input (C, H, W) in ``value_range`` for the picture (None: no picture).
    """
    from ..plot.raster import image_rgb

    if explanation.trace is None:
        raise ValueError("the report needs a recorded explanation: lrpcore.explain(..., record=True)")
    model = explanation.model
    metadata = model.metadata
    names = tuple(metadata.class_names or ())
    logits = np.asarray(to_numpy(explanation.logits), dtype=np.float64)[0]
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    order = np.argsort(-logits)[:5]
    label = (lambda index: names[index] if index < len(names) else str(index))
    target = int(np.asarray(to_numpy(explanation.target))[0])
    steps = sorted((step for step in explanation.trace if step is not None), key=lambda step: step.index,
                   reverse=True)
    layers = [_layer_view(position, step, names, position == 0, column_limit) for position, step in enumerate(steps)]
    image = None
    if raw is not None:
        array = np.asarray(to_numpy(raw), dtype=np.float64)
        if array.ndim == 3 and array.shape[0] in (1, 3):
            image = image_rgb(array, value_range)
    relevance = np.asarray(to_numpy(explanation.relevance), dtype=np.float64)[0]
    return ReportData(
        model_name=metadata.name or "unnamed model", description=metadata.description or "", origin=origin,
        input_note=input_note, composite=composite, dtype=str(model.dtype),
        image=image, heatmap=map_of(relevance),
        classes=[(label(int(index)), float(logits[index]), float(probabilities[index])) for index in order],
        target=label(target), explained=float(np.asarray(to_numpy(explanation.output), dtype=np.float64)[0]),
        input_sum=float(relevance.sum()), layers=layers)
