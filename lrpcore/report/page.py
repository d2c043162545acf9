"""The report as one self-contained HTML page: inline CSS, a small inline script, PNG maps as data URIs.

Nothing is fetched: no server, no network, no fonts or libraries from elsewhere. Maps are
embedded at their own resolution and enlarged by the browser with ``image-rendering:
pixelated`` (sharp neurons, small files). Each map is embedded twice, coloured on its own
scale b and on one scale shared by every layer (the largest b of all layers); the page
switches between them.

Navigation: the slider, the ← → (or ↑ ↓, j k, Home End) keys, the rows of the overview table
and the bars of the conservation waterfall select a layer. The address's fragment selects a
layer and the scale too (``report.html#layer=12&scale=shared``; ``layer`` is a step name, or
``pos=N`` counts from the top), which lets a link, or a test taking screenshots, show a chosen
layer. When loaded, the page writes where its parts are (``data-layout`` on ``<html>``) for
tests that cut a screenshot, and logs one line ``lrpcore report ready``.
"""
from __future__ import annotations

import html
import json
import math
from typing import Any, Sequence

import numpy as np

from ..plot.raster import data_uri, image_rgb, png_bytes, relevance_rgb
from .collect import LayerView, MapView, ReportData

__all__ = ["render"]

_PADDING_COLOUR = (225, 225, 225)


# --- pieces -------------------------------------------------------------------------------------------------
def _escape(value: Any) -> str:
    return html.escape(str(value))


def _number(value: float, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return str(value)
    return f"{value:.{digits}g}"


def _percent(share: float, digits: int = 2) -> str:
    """A share as a percentage, without a sign on values that round to zero."""
    if not math.isfinite(share):
        return "–"
    text = f"{share:.{digits}%}"
    return text[1:] if text.startswith("-") and float(text[:-1]) == 0 else text


def _map_uri(view: MapView, limit: float) -> str:
    colours = relevance_rgb(view.pixels, limit)
    if view.padding:
        flat = colours.reshape(-1, 3)
        flat[-view.padding:] = _PADDING_COLOUR
    return data_uri(png_bytes(colours, target=0))


def _display_size(shape: Sequence[int], longest: int = 200) -> tuple[int, int]:
    height, width = shape
    factor = max(1, longest // max(height, width)) if max(height, width) < longest else 1
    if height * factor < 12:      # thin strips: make them tall enough to see
        return max(12, height * factor), width * factor
    return height * factor, width * factor


def _map_img(view: MapView, shared: float | None, alt: str, role: str) -> str:
    own = _map_uri(view, view.limit)
    height, width = _display_size(view.pixels.shape)
    shared_attribute = f' data-shared="{_map_uri(view, shared)}" data-own="{own}"' if shared is not None else ""
    return (f'<img class="map" data-role="{role}" src="{own}"{shared_attribute} alt="{_escape(alt)}" '
            f'width="{width}" height="{height}">')


def _figure(view: MapView, shared: float | None, caption: str, role: str) -> str:
    scale = (f'<span class="own">b = {_number(view.limit, 3)}</span>'
             + (f'<span class="shared">b = {_number(shared, 3)} (shared)</span>' if shared is not None else ""))
    return (f'<figure>{_map_img(view, shared, caption, role)}<figcaption>{_escape(caption)}<br>'
            f'<small>{_escape(view.note)}; Σ = {_number(view.total)}; {scale}</small></figcaption></figure>')


def _colour_bar() -> str:
    values = np.linspace(-1.0, 1.0, 9)
    colours = relevance_rgb(values[None, :], 1.0)[0]
    stops = ", ".join(f"rgb{tuple(int(channel) for channel in colour)} {100 * (value + 1) / 2:.0f}%"
                      for value, colour in zip(values, colours))
    return (f'<div class="colourbar"><span>−b</span><div style="background:linear-gradient(to right, {stops})">'
            '</div><span>+b</span> <small>red: positive relevance, blue: negative, white: none</small></div>')


def _histogram(entry: dict[str, Any]) -> str:
    if not entry.get("histogram"):
        return ""
    counts, edges = entry["histogram"]
    width, height, top = 240, 60, max(counts) or 1
    step = width / len(counts)
    bars = "".join(f'<rect x="{index * step:.1f}" y="{height - count / top * height:.1f}" width="{step - 1:.1f}" '
                   f'height="{count / top * height:.1f}"></rect>' for index, count in enumerate(counts))
    return (f'<svg class="histogram" width="{width}" height="{height + 14}" viewBox="0 0 {width} {height + 14}">'
            f'{bars}<text x="0" y="{height + 12}">10^{edges[0]:.1f}</text>'
            f'<text x="{width}" y="{height + 12}" text-anchor="end">10^{edges[-1]:.1f}</text></svg>')


def _denominators(layer: LayerView) -> str:
    if not layer.denominators:
        return "<p>No denominators: this rule divides by nothing.</p>"
    rows = []
    for entry in layer.denominators:
        zero = f'<td class="{"flag" if entry["zero"] else ""}">{entry["zero"]}</td>'
        near = f'<td class="{"flag" if entry["near_zero"] else ""}">{entry["near_zero"]}</td>'
        rows.append(f"<tr><td>{entry['branch']}</td><td>{entry['carrying']:,} of {entry['outputs']:,}</td>"
                    f"<td>{_number(entry.get('smallest', float('nan')), 3)}</td>"
                    f"<td>{_number(entry.get('median', float('nan')), 3)}</td><td>{_number(entry['rms'], 3)}</td>"
                    f"{zero}{near}<td>{_histogram(entry)}</td></tr>")
    warning = ""
    if layer.zero or layer.near_zero:
        warning = (f'<p class="flag">{layer.zero} relevance-carrying output(s) had an exactly zero denominator '
                   f"(their relevance was dropped) and {layer.near_zero} a near-zero one (|z| &lt; 1e-6·RMS(z)): "
                   "their s = R ⊘ z can explode.</p>")
    return (f"{warning}<table><tr><th>branch</th><th>outputs with R ≠ 0</th><th>min |z|</th><th>median |z|</th>"
            "<th>RMS(z)</th><th>z = 0</th><th>|z| near 0</th><th>histogram of log10 |z| (R ≠ 0)</th></tr>"
            + "".join(rows) + "</table>")


def _neuron(layer: LayerView) -> str:
    neuron = layer.neuron
    if not neuron["branches"]:
        return (f"<p>Output {_escape(neuron['k_where'])}: R<sub>k</sub> = {_number(neuron['R_k'])}. Input "
                f"{_escape(neuron['j_where'])}: a<sub>j</sub> = {_number(neuron['a_j'])}, R<sub>j</sub> = "
                f"{_number(neuron['R_j'])}. The rule passes relevance unchanged (no z, s, c).</p>")
    rows = "".join(f"<tr><td>{branch['branch']}</td><td>{_number(branch['z'])}</td><td>{_number(branch['s'])}</td>"
                   f"<td>{_number(branch['c'])}</td></tr>" for branch in neuron["branches"])
    return (f"<p>Output k = {_escape(neuron['k_where'])} (largest |R<sub>k</sub>|): R<sub>k</sub> = "
            f"{_number(neuron['R_k'])}.<br>Input j = {_escape(neuron['j_where'])} (largest |R<sub>j</sub>|): "
            f"a<sub>j</sub> = {_number(neuron['a_j'])}, R<sub>j</sub> = {_number(neuron['R_j'])}.</p>"
            "<table><tr><th>branch</th><th>z<sub>k</sub> (stabilized)</th><th>s<sub>k</sub> = R<sub>k</sub> / "
            "z<sub>k</sub></th><th>c<sub>j</sub> = (W<sup>T</sup>s)<sub>j</sub></th></tr>" + rows + "</table>"
            "<p class='note'>z = f<sub>ρ</sub>(a) + stabilizer, s = R ⊘ z, c = f<sub>ρ</sub><sup>T</sup>(s), "
            "R<sub>lower</sub> = a ⊙ c (Montavon et al. 2019, appendix 10.A); c is the first term's of each "
            "branch.</p>")


def _column(layer: LayerView, shared: float | None) -> str:
    if layer.column is None:
        return f"<p>{_escape(layer.column_note)}</p>"
    column = layer.column
    rows = "".join(f"<tr><td>{_escape(where)}</td><td>{_number(value)}</td><td>{_number(share)}</td></tr>"
                   for _, where, value, share in column["top"])
    return (f"<p>M<sub>l</sub> is {column['shape'][0]:,} × {column['shape'][1]:,} "
            f"(lrpcore.relevance_matrix); max |M<sub>l</sub>R<sub>out</sub> − R<sub>in</sub>| = "
            f"{_number(column['deviation'], 2)} (fast path reproduced). Column k sums to "
            f"{_number(column['sum'])}: the share of R<sub>k</sub> passed down.</p>"
            + _figure(column["values"], None, "column k of M_l over the inputs", "column")
            + "<table><tr><th>input j</th><th>M<sub>jk</sub></th><th>M<sub>jk</sub>R<sub>k</sub></th></tr>"
            + rows + "</table>")


def _waterfall(data: ReportData) -> str:
    """SVG: f(x) on the left, each layer's change of Σ R (top layer first), Σ_i R_i on the right.

    The changes are often a fraction of a percent of Σ R, so the axis is zoomed to the range the
    levels span (its bounds are labelled); the two totals run off its bottom edge.
    """
    layers = data.layers
    levels = [data.explained] + [layer.sum_out for layer in layers] + [layer.sum_in for layer in layers] \
        + [data.input_sum]
    low, high = min(levels), max(levels)
    span = high - low
    span = span if span > 1e-9 * max(abs(high), abs(low), 1e-30) else max(abs(high), 1e-30) * 1e-3
    low, high = low - 0.15 * span, high + 0.15 * span
    width, height, margin, left = max(560, 34 * (len(layers) + 2) + 80), 230, 34, 80
    step = (width - left - margin) / (len(layers) + 2)

    def y(value: float) -> float:
        return margin / 2 + (high - min(max(value, low), high)) / (high - low) * (height - margin * 2)

    parts = [f'<line x1="{left}" x2="{left}" y1="{y(high):.1f}" y2="{y(low):.1f}" class="axis"></line>']
    for value in (low, (low + high) / 2, high):
        parts.append(f'<text x="{left - 4}" y="{y(value) + 3:.1f}" text-anchor="end">{_number(value, 6)}</text>')

    def bar(position: float, top: float, bottom: float, css: str, label: str, title: str, data_pos: str = "") -> None:
        upper, lower = y(max(top, bottom)), y(min(top, bottom))
        if lower - upper < 2:
            upper, lower = (upper + lower) / 2 - 1, (upper + lower) / 2 + 1
        x = left + position * step
        parts.append(f'<g class="bar {css}"{data_pos}><title>{_escape(title)}</title><rect x="{x + 3:.1f}" '
                     f'y="{upper:.1f}" width="{step - 6:.1f}" height="{lower - upper:.1f}"></rect>'
                     f'<text x="{x + step / 2:.1f}" y="{height - 4}" transform="rotate(-45 {x + step / 2:.1f} '
                     f'{height - 4})" text-anchor="end">{_escape(label)}</text></g>')

    bar(0, data.explained, low, "total", "f(x)", f"explained score f(x) = {data.explained:.6g}")
    for number, layer in enumerate(layers, start=1):
        share = layer.absorbed_share
        css = "same" if not abs(share) > 1e-6 else ("lost" if share > 0 else "gained")
        bar(number, layer.sum_out, layer.sum_in, css, layer.name,
            f"{layer.name} {layer.layer}: ΣR out {layer.sum_out:.6g} → in {layer.sum_in:.6g} "
            f"(absorbed {layer.absorbed_share:.3%})", f' data-pos="{layer.position}"')
    bar(len(layers) + 1, data.input_sum, low, "total", "Σ_i R_i",
        f"relevance at the input Σ_i R_i = {data.input_sum:.6g}")
    return (f'<svg id="waterfall" width="{width}" height="{height + 40}" viewBox="0 0 {width} {height + 40}">'
            + "".join(parts) + "</svg>")


def _overview(data: ReportData) -> str:
    rows = []
    for layer in data.layers:
        flag = "flag" if layer.zero or layer.near_zero else ""
        rows.append(f'<tr data-pos="{layer.position}"><td>{_escape(layer.name)}</td><td>{_escape(layer.layer)}</td>'
                    f"<td>{_escape(layer.rule)}</td><td>{_number(layer.sum_out)}</td><td>{_number(layer.sum_in)}</td>"
                    f'<td>{_percent(layer.absorbed_share)}</td>'
                    f'<td class="{flag}">{layer.zero} / {layer.near_zero}</td></tr>')
    return ('<table id="overview">'
            "<tr><th>step</th><th>layer</th><th>rule</th><th>ΣR out</th><th>ΣR in</th>"
            "<th>absorbed</th><th>z = 0 / near 0</th></tr>" + "".join(rows) + "</table>")


def _section(layer: LayerView, count: int, shared: float) -> str:
    inputs = f"; inputs: {_escape(', '.join(layer.inputs))}" if layer.inputs else ""
    return f"""<section class="layer" data-pos="{layer.position}" data-name="{_escape(layer.name)}"{' hidden' if layer.position else ''}>
<h2>step {_escape(layer.name)}: {_escape(layer.layer)} <small>({layer.position + 1} of {count} from the top{inputs})</small></h2>
<p class="summary">rule <b>{_escape(layer.rule)}</b>, stabilizer {_escape(layer.stabilizer)}.
Σ R out (arriving) = {_number(layer.sum_out, 6)}, Σ R in (passed down) = {_number(layer.sum_in, 6)},
absorbed {_number(layer.absorbed, 3)} ({_percent(layer.absorbed_share, 3)}).</p>
<div class="maps">{_figure(layer.arriving, shared, f"relevance arriving: R at the output {layer.output_shape}", "arriving")}
{_figure(layer.passed, shared, f"relevance passed down: R at the input {layer.input_shape}", "passed")}</div>
<h3>Denominators</h3>{_denominators(layer)}
<h3>One neuron: a, z, s, c</h3>{_neuron(layer)}
<h3>Column of M<sub>l</sub> for output k</h3>{_column(layer, shared)}
</section>"""


# --- the page -------------------------------------------------------------------------------------------------
_STYLE = """
body{font-family:system-ui,-apple-system,"DejaVu Sans",sans-serif;margin:16px 24px;color:#222;max-width:1200px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:12px 0 4px}h3{font-size:14px;margin:14px 0 4px}
table{border-collapse:collapse;font-size:12px;margin:4px 0}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}
td:first-child,th:first-child{text-align:left}
#overview td:nth-child(2),#overview td:nth-child(3),#overview th:nth-child(2),#overview th:nth-child(3){text-align:left}
#overview tr[data-pos]{cursor:pointer}#overview tr.current{background:#fff3c4}
.flag{color:#b00000;font-weight:bold}.note,small{color:#555}
img.map,img.picture{image-rendering:pixelated;image-rendering:crisp-edges;border:1px solid #bbb;background:#fff}
figure{display:inline-block;margin:4px 14px 4px 0;vertical-align:top;max-width:420px}figcaption{font-size:12px}
.header{display:flex;gap:18px;align-items:flex-start;flex-wrap:wrap}
#controls{position:sticky;top:0;background:#fafafa;border:1px solid #ddd;padding:6px 10px;margin:10px 0;z-index:2}
#controls input[type=range]{width:320px;vertical-align:middle}
.colourbar{display:inline-flex;align-items:center;gap:6px;font-size:12px}.colourbar div{width:160px;height:12px;border:1px solid #aaa}
body.shared .own,body:not(.shared) .shared{display:none}
#waterfall .bar rect{fill:#7a9cc6}#waterfall .bar.lost rect{fill:#e08a2c}#waterfall .bar.gained rect{fill:#8e5cc4}
#waterfall .bar.total rect{fill:#555}#waterfall .bar[data-pos]{cursor:pointer}#waterfall .bar.current rect{stroke:#000;stroke-width:2}
#waterfall text{font-size:10px}#waterfall .axis{stroke:#999}.histogram rect{fill:#7a9cc6}.histogram text{font-size:9px}
"""

_SCRIPT = """
(function () {
  "use strict";
  var sections = Array.prototype.slice.call(document.querySelectorAll("section.layer"));
  var slider = document.getElementById("slider"), label = document.getElementById("current");
  var current = 0;
  function show(position) {
    position = Math.max(0, Math.min(sections.length - 1, position));
    current = position;
    sections.forEach(function (section, index) { section.hidden = index !== position; });
    slider.value = String(position);
    label.textContent = "step " + sections[position].dataset.name + " (" + (position + 1) + " of " + sections.length + ")";
    document.querySelectorAll("[data-pos]").forEach(function (element) {
      if (element.tagName !== "SECTION") {
        element.classList.toggle("current", Number(element.dataset.pos) === position);
      }
    });
  }
  function setScale(scale) {
    var shared = scale === "shared";
    document.body.classList.toggle("shared", shared);
    document.querySelectorAll("img[data-shared]").forEach(function (image) {
      image.src = shared ? image.dataset.shared : image.dataset.own;
    });
    document.getElementById(shared ? "scale-shared" : "scale-own").checked = true;
  }
  function fromAddress() {
    var fragment = decodeURIComponent(location.hash.replace(/^#/, ""));
    fragment.split("&").forEach(function (part) {
      var pair = part.split("="), key = pair[0], value = pair.slice(1).join("=");
      if (key === "layer") {
        sections.forEach(function (section, index) { if (section.dataset.name === value) { show(index); } });
      } else if (key === "pos") {
        show(Number(value) || 0);
      } else if (key === "scale") {
        setScale(value);
      }
    });
  }
  slider.addEventListener("input", function () { show(Number(slider.value)); });
  document.getElementById("previous").addEventListener("click", function () { show(current - 1); });
  document.getElementById("next").addEventListener("click", function () { show(current + 1); });
  document.getElementById("scale-own").addEventListener("change", function () { setScale("own"); });
  document.getElementById("scale-shared").addEventListener("change", function () { setScale("shared"); });
  document.querySelectorAll("#overview tr[data-pos], #waterfall [data-pos]").forEach(function (element) {
    element.addEventListener("click", function () { show(Number(element.dataset.pos)); });
  });
  document.addEventListener("keydown", function (event) {
    if (event.target === slider) { return; }
    var moves = {ArrowRight: 1, ArrowDown: 1, j: 1, ArrowLeft: -1, ArrowUp: -1, k: -1};
    if (event.key in moves) { show(current + moves[event.key]); event.preventDefault(); }
    else if (event.key === "Home") { show(0); } else if (event.key === "End") { show(sections.length - 1); }
  });
  window.addEventListener("hashchange", fromAddress);
  show(0);
  fromAddress();
  var layout = {};
  ["input-heatmap", "controls"].forEach(function (id) {
    var box = document.getElementById(id).getBoundingClientRect();
    layout[id] = [box.left, box.top, box.width, box.height];
  });
  var visible = sections[current].querySelector("img.map[data-role=arriving]").getBoundingClientRect();
  layout["current-map"] = [visible.left, visible.top, visible.width, visible.height];
  layout.current = sections[current].dataset.name;
  document.documentElement.dataset.layout = JSON.stringify(layout);
  console.log("lrpcore report ready: " + sections.length + " steps");
})();
"""


def render(data: ReportData) -> str:
    """The whole page for ``data`` (see the module docstring)."""
    shared = max((view.limit for layer in data.layers for view in (layer.arriving, layer.passed)), default=1.0)
    picture = ""
    if data.image is not None:
        height, width = _display_size(data.image.shape[:2], 220)
        picture = (f'<figure><img class="picture" src="{data_uri(png_bytes(data.image, target=0))}" alt="input" '
                   f'width="{width}" height="{height}"><figcaption>input<br><small>{_escape(data.input_note)}'
                   "</small></figcaption></figure>")
    heatmap_height, heatmap_width = _display_size(data.heatmap.pixels.shape, 220)
    heatmap = (f'<figure><img id="input-heatmap" class="map" src="{_map_uri(data.heatmap, data.heatmap.limit)}" '
               f'alt="heatmap" width="{heatmap_width}" height="{heatmap_height}"><figcaption>heatmap: relevance at the '
               f"input, channels summed<br><small>b = {_number(data.heatmap.limit, 3)}; Σ_i R_i = "
               f"{_number(data.input_sum)}</small></figcaption></figure>")
    classes = "".join(f"<tr><td>{_escape(name)}</td><td>{_number(score)}</td><td>{probability:.3f}</td></tr>"
                      for name, score, probability in data.classes)
    count = len(data.layers)
    sections = "\n".join(_section(layer, count, shared) for layer in data.layers)
    title = f"LRP report: {data.model_name}, explaining '{data.target}'"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<style>{_STYLE}</style></head>
<body>
<h1>{_escape(title)}</h1>
<p class="note">{_escape(data.origin)}{"; " + _escape(data.description) if data.description else ""}<br>
composite <b>{_escape(data.composite)}</b>, precision {_escape(data.dtype)}. Explained score f(x) = {_number(data.explained, 6)},
relevance at the input Σ_i R_i = {_number(data.input_sum, 6)} (relative difference {data.relative_error:.2e}).</p>
<div class="header">{picture}{heatmap}
<div><table><tr><th>class</th><th>score</th><th>probability</th></tr>{classes}</table>
<p>explained class: <b>{_escape(data.target)}</b></p>{_colour_bar()}</div></div>
<h2>Conservation, layer by layer (top first)</h2>
<p class="note">Σ R from the explained score f(x) (left) to the input (right). Each bar between is one step's
change of Σ R, from Σ R out to Σ R in: orange where relevance was absorbed (bias, ε, dropped at zero denominators),
purple where it grew, blue where it was conserved. The axis is zoomed to the levels. Click a bar or a row to open
that step.</p>
{_waterfall(data)}
{_overview(data)}
<div id="controls"><button id="previous" title="previous step (←)">←</button>
<input id="slider" type="range" min="0" max="{count - 1}" value="0" step="1" aria-label="step">
<button id="next" title="next step (→)">→</button> <b id="current"></b>
&nbsp; colour scale: <label><input type="radio" name="scale" id="scale-own" checked> per layer</label>
<label><input type="radio" name="scale" id="scale-shared"> shared by all layers</label>
<small>keys: ← → (or j k), Home, End</small></div>
{sections}
<script>{_SCRIPT}</script>
</body></html>
"""
