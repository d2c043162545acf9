"""Short reprs and notebook views of explanations: ``Explanation``, ``Trace``, ``TraceStep``.

A recorded explanation holds every intermediate array of the backward pass; the dataclass
reprs printed all of them (hundreds of thousands of characters for one image). These
functions give one-line reprs that say what is inside (shapes, dtype, target, sums,
conservation) and, for Jupyter, ``_repr_html_`` views: the conservation table layer by layer
with the rule, ΣR in and out, the absorbed share and the zero / near-zero denominators, and a
small heatmap of the relevance where it has a spatial shape.

They only read attributes (duck typing), so they serve the chain models of
:class:`lrpcore.Sequential` and graph steps alike (a graph step's ``name`` is shown when it
has one). :mod:`lrpcore.explain` binds them as the classes' ``__repr__`` and ``_repr_html_``.
"""
from __future__ import annotations

import html
from typing import Any, Sequence

import numpy as np

from .backend import to_numpy

__all__ = ["step_repr", "step_html", "trace_repr", "trace_html", "explanation_repr", "explanation_html",
           "step_label"]

#: Relevance maps larger than this many rows are not drawn in the notebook views.
_MAX_SAMPLES_DRAWN = 4


# --- small formatting helpers ------------------------------------------------------------------------
def _array(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    try:
        return np.asarray(to_numpy(value))
    except Exception:  # an object that is not an array: shown by its type only
        return None


def _shape(value: Any) -> str:
    """``(1, 3, 64, 64) float32`` for an array, ``None`` for None."""
    if value is None:
        return "None"
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is None:
        return type(value).__name__
    return f"({', '.join(str(int(size)) for size in shape)}{',' if len(shape) == 1 else ''}) {dtype}"


def _number(value: float) -> str:
    return f"{value:.4g}"


def _numbers(values: Any, limit: int = 4) -> str:
    """Up to ``limit`` numbers as ``[1.23, 4.56]``, or ``[1.23, ..., 7.89] (N values)`` beyond."""
    array = _array(values)
    if array is None:
        return "None"
    flat = array.reshape(-1)
    if flat.size <= limit:
        return "[" + ", ".join(_number(float(value)) for value in flat) + "]"
    return f"[{_number(float(flat[0]))}, ..., {_number(float(flat[-1]))}] ({flat.size} values)"


def _total(values: Any) -> float:
    array = _array(values)
    return float(np.sum(array)) if array is not None else float("nan")


def _describe(item: Any) -> str:
    describe = getattr(item, "describe", None)
    return describe() if callable(describe) else type(item).__name__


def step_label(step: Any) -> str:
    """How a step is named: its graph node name when it has one, else its layer index."""
    name = getattr(step, "name", None)
    return str(name) if name is not None else str(getattr(step, "index", "?"))


def _escape(text: Any) -> str:
    return html.escape(str(text))


def _count_cell(count: int) -> str:
    """A table cell for a denominator count, flagged red when not zero."""
    return f'<td class="warn">{count}</td>' if count else f"<td>{count}</td>"


def _absorbed_share(sum_out: float, sum_in: float) -> float:
    return (sum_out - sum_in) / sum_out if sum_out != 0 else float("nan")


def _stabilizer(rule: Any) -> str:
    name = getattr(rule, "stabilizer_name", None)
    epsilon = getattr(rule, "epsilon", None)
    if name is None:
        return "-"
    return f"{name}, ε={epsilon:g}" if isinstance(epsilon, (int, float)) else str(name)


_STYLE = ("<style>.lrpcore-view table{border-collapse:collapse;font-size:12px}"
          ".lrpcore-view td,.lrpcore-view th{padding:1px 8px;text-align:right;border-bottom:1px solid #ddd}"
          ".lrpcore-view td.l,.lrpcore-view th.l{text-align:left}.lrpcore-view .warn{color:#b00;font-weight:bold}"
          ".lrpcore-view img{image-rendering:pixelated;margin:2px}</style>")


def _thumbnail(values: Any, caption: str) -> str:
    """An <img> of the channel-summed relevance of one sample (no picture for non-spatial arrays)."""
    from .plot.heatmap import heatmap_scale
    from .plot.raster import data_uri, png_bytes, relevance_rgb, spatial_map

    pixels = spatial_map(values)
    if pixels is None or not np.all(np.isfinite(pixels)) or pixels.size < 2:
        return ""
    limit = heatmap_scale(pixels, "auto")
    uri = data_uri(png_bytes(relevance_rgb(pixels, limit), target=96, largest=192))
    return (f'<figure style="display:inline-block;margin:0 6px"><img src="{uri}" alt="{_escape(caption)}">'
            f'<figcaption style="font-size:11px">{_escape(caption)}</figcaption></figure>')


# --- TraceStep -----------------------------------------------------------------------------------------
def step_repr(step: Any) -> str:
    """``TraceStep(3 Conv2d(...), rule Gamma(γ=0.25), a (1, 16, 32, 32) float32, ΣR out 4.1 → in 4.0, ...)``."""
    sum_out, sum_in = _total(step.sum_out), _total(step.sum_in)
    parts = [f"{step_label(step)} {_describe(step.layer)}", f"rule {_describe(step.rule)}", f"a {_shape(step.a)}",
             f"ΣR out {_number(sum_out)} → in {_number(sum_in)} (absorbed {_absorbed_share(sum_out, sum_in):.2%})",
             f"zero denominators {step.zero_denominators}", f"near-zero {step.near_zero_denominators}"]
    inputs = getattr(step, "inputs", None)
    if inputs:
        parts.insert(1, f"inputs {', '.join(map(str, inputs))}")
    return "TraceStep(" + ", ".join(parts) + ")"


def step_html(step: Any) -> str:
    """A table of the step's quantities (shape, range, sum) and heatmaps of the relevance in and out."""
    rows = []
    for name, value, meaning in (("a", step.a, "layer input"), ("z", step.z, "stabilized denominator"),
                                 ("s", step.s, "R_out ⊘ z"), ("c", step.c, "transposed map of s"),
                                 ("relevance_out", step.relevance_out, "relevance at the layer output"),
                                 ("relevance_in", step.relevance_in, "relevance passed down (a ⊙ c)")):
        array = _array(value)
        if array is None or array.size == 0:
            rows.append(f'<tr><td class="l">{name}</td><td class="l">{_escape(meaning)}</td><td>-</td>'
                        "<td>-</td><td>-</td><td>-</td></tr>")
            continue
        finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
        low = _number(float(finite.min())) if finite.size else "nan"
        high = _number(float(finite.max())) if finite.size else "nan"
        rows.append(f'<tr><td class="l">{name}</td><td class="l">{_escape(meaning)}</td>'
                    f"<td>{_escape(_shape(value))}</td><td>{low}</td><td>{high}</td>"
                    f"<td>{_number(float(np.sum(array)))}</td></tr>")
    sum_out, sum_in = _total(step.sum_out), _total(step.sum_in)
    zero, near = step.zero_denominators, step.near_zero_denominators
    flags = f'<span class="warn">{zero} zero</span>' if zero else "0 zero"
    flags += f', <span class="warn">{near} near-zero</span>' if near else ", 0 near-zero"
    pictures = ""
    relevance_in, relevance_out = _array(step.relevance_in), _array(step.relevance_out)
    if relevance_in is not None and relevance_in.ndim >= 2:
        pictures = (_thumbnail(relevance_out[0], "relevance out (sample 0)")
                    + _thumbnail(relevance_in[0], "relevance in (sample 0)"))
    return (f'<div class="lrpcore-view">{_STYLE}<b>step {_escape(step_label(step))}</b>: '
            f"{_escape(_describe(step.layer))}, rule <code>{_escape(_describe(step.rule))}</code> "
            f"(stabilizer {_escape(_stabilizer(step.rule))})<br>ΣR out {_number(sum_out)} → ΣR in "
            f"{_number(sum_in)}, absorbed {_absorbed_share(sum_out, sum_in):.2%}; denominators: {flags}"
            f'<table><tr><th class="l">quantity</th><th class="l">meaning</th><th>shape</th><th>min</th>'
            f"<th>max</th><th>sum</th></tr>{''.join(rows)}</table>{pictures}</div>")


# --- Trace ---------------------------------------------------------------------------------------------
def _recorded(trace: Sequence[Any]) -> list[Any]:
    return [step for step in trace if step is not None]


def trace_repr(trace: Sequence[Any]) -> str:
    """``Trace(11 steps: 0 Conv2d … 10 Dense; ΣR 4.12 at the top, 3.9 at the input)``."""
    steps = _recorded(trace)
    if not steps:
        return f"Trace({len(trace)} steps, none recorded)"
    top = max(steps, key=lambda step: getattr(step, "index", 0))
    bottom = min(steps, key=lambda step: getattr(step, "index", 0))
    zero = sum(step.zero_denominators for step in steps)
    near = sum(step.near_zero_denominators for step in steps)
    return (f"Trace({len(steps)} steps: {step_label(bottom)} {_describe(bottom.layer)} … {step_label(top)} "
            f"{_describe(top.layer)}; ΣR {_number(_total(top.sum_out))} at the top, "
            f"{_number(_total(bottom.sum_in))} at the input; {zero} zero and {near} near-zero denominators)")


def trace_html(trace: Sequence[Any]) -> str:
    """The conservation table of the recorded steps, top layer first, with denominators flagged."""
    steps = sorted(_recorded(trace), key=lambda step: getattr(step, "index", 0), reverse=True)
    rows = []
    for step in steps:
        sum_out, sum_in = _total(step.sum_out), _total(step.sum_in)
        zero, near = step.zero_denominators, step.near_zero_denominators
        rows.append(f'<tr><td class="l">{_escape(step_label(step))}</td><td class="l">{_escape(_describe(step.layer))}'
                    f'</td><td class="l">{_escape(_describe(step.rule))}</td><td class="l">'
                    f"{_escape(_stabilizer(step.rule))}</td><td>{_number(sum_out)}</td><td>{_number(sum_in)}</td>"
                    f"<td>{_absorbed_share(sum_out, sum_in):.2%}</td>"
                    + _count_cell(zero) + _count_cell(near) + "</tr>")
    return (f'<div class="lrpcore-view">{_STYLE}<b>Trace</b> of {len(steps)} steps (top layer first; sums over '
            'the batch)<table><tr><th class="l">step</th><th class="l">layer</th><th class="l">rule</th>'
            '<th class="l">stabilizer</th><th>ΣR out</th><th>ΣR in</th><th>absorbed</th><th>zero z</th>'
            f"<th>near-zero z</th></tr>{''.join(rows)}</table></div>")


# --- Explanation ---------------------------------------------------------------------------------------
def _class_names(explanation: Any) -> tuple[str, ...]:
    metadata = getattr(getattr(explanation, "model", None), "metadata", None)
    return tuple(getattr(metadata, "class_names", None) or ())


def _targets_text(explanation: Any, limit: int = 4) -> str:
    targets = _array(explanation.target)
    if targets is None:
        return "None"
    names = _class_names(explanation)
    labels = [f"{int(value)} ({names[int(value)]})" if int(value) < len(names) else str(int(value))
              for value in targets.reshape(-1)[:limit]]
    more = f", ... ({targets.size} samples)" if targets.size > limit else ""
    return "[" + ", ".join(labels) + more + "]"


def explanation_repr(explanation: Any) -> str:
    """``Explanation(model 'shapes_cnn', relevance (1, 3, 64, 64) float32, target [2 (circle)], ...)``."""
    metadata = getattr(getattr(explanation, "model", None), "metadata", None)
    name = getattr(metadata, "name", None) or "unnamed"
    sums = [_total(explanation.relevance), _total(explanation.output)]
    error = abs(sums[0] - sums[1]) / max(abs(sums[1]), 1e-30)
    trace = explanation.trace
    recorded = f"trace of {len(_recorded(trace))} steps" if trace is not None else "no trace (record=False)"
    return (f"Explanation(model {name!r}, relevance {_shape(explanation.relevance)}, target "
            f"{_targets_text(explanation)}, explained score {_numbers(explanation.output)}, "
            f"Σ_i R_i {_number(sums[0])} (relative difference to f(x) {error:.2e}), {recorded})")


def explanation_html(explanation: Any) -> str:
    """Per sample: target, score, Σ_i R_i and a heatmap; then the per-layer conservation table."""
    relevance = _array(explanation.relevance)
    outputs = _array(explanation.output).reshape(-1)
    targets = _array(explanation.target).reshape(-1)
    names = _class_names(explanation)
    pictures = []
    for sample in range(min(relevance.shape[0], _MAX_SAMPLES_DRAWN)):
        label = names[int(targets[sample])] if int(targets[sample]) < len(names) else str(int(targets[sample]))
        caption = (f"sample {sample}: {label}, f(x) = {_number(float(outputs[sample]))}, "
                   f"ΣR = {_number(float(relevance[sample].sum()))}")
        picture = _thumbnail(relevance[sample], caption)
        pictures.append(picture or f"<div>{_escape(caption)}</div>")
    if relevance.shape[0] > _MAX_SAMPLES_DRAWN:
        pictures.append(f"<div>... {relevance.shape[0] - _MAX_SAMPLES_DRAWN} more samples</div>")
    table = explanation.conservation()
    rows = []
    for index, row in sorted(enumerate(table.rows), key=lambda item: item[0], reverse=True):
        zero = int(np.sum(explanation.zero_denominators[index])) if explanation.zero_denominators is not None else 0
        near = int(np.sum(explanation.near_zero_denominators[index])) \
            if explanation.near_zero_denominators is not None else 0
        rows.append(f'<tr><td class="l">{_escape(row.get("name", row["index"]))}</td><td class="l">'
                    f'{_escape(row["layer"])}</td><td class="l">{_escape(row["rule"])}</td>'
                    f"<td>{_number(row['sum_out'])}</td><td>{_number(row['sum_in'])}</td>"
                    f"<td>{_absorbed_share(row['sum_out'], row['sum_in']):.2%}</td>"
                    + _count_cell(zero) + _count_cell(near) + "</tr>")
    metadata = getattr(getattr(explanation, "model", None), "metadata", None)
    heading = (f"<b>Explanation</b> of model {_escape(getattr(metadata, 'name', None) or 'unnamed')}: relevance "
               f"{_escape(_shape(explanation.relevance))}; f(x) = {_number(table.explained)}, Σ_i R_i = "
               f"{_number(table.input_sum)} (relative difference {table.total_relative_error:.2e})"
               + ("" if explanation.trace is None else "; <code>.trace</code> holds every step"))
    return (f'<div class="lrpcore-view">{_STYLE}{heading}<div>{"".join(pictures)}</div>'
            '<table><tr><th class="l">layer</th><th class="l"></th><th class="l">rule</th><th>ΣR out</th>'
            '<th>ΣR in</th><th>absorbed</th><th>zero z</th><th>near-zero z</th></tr>'
            f"{''.join(rows)}</table></div>")
