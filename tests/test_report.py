"""The report's numbers come from the trace and the explicit matrix; the command writes one safe file."""
from __future__ import annotations

import re

import numpy as np
import pytest

import lrpcore
from lrpcore.cli import main
from lrpcore.composites import Composite, uniform
from lrpcore.layers import Dense, ReLU
from lrpcore.report import build_report, collect, render
from lrpcore.rules import Epsilon, Gamma, Zero


@pytest.fixture(scope="module")
def mlp():
    rng = np.random.default_rng(0)
    model = lrpcore.Sequential(
        [Dense(rng.normal(size=(5, 6)), rng.normal(size=5) * 0.1), ReLU(),
         Dense(rng.normal(size=(3, 5)), rng.normal(size=3) * 0.1)],
        lrpcore.ModelMetadata(input_shape=(6,), name="mlp", class_names=("a", "b", "c")))
    return model.astype("float64"), np.abs(rng.normal(size=(1, 6)))


def test_layer_views_hold_the_trace_numbers_top_first(mlp):
    model, x = mlp
    explanation = lrpcore.explain(model, x, composite=Composite(by_index={0: Gamma(0.25), 2: Epsilon(0.1)}),
                                  record=True)
    data = collect(explanation)
    assert [layer.name for layer in data.layers] == ["2", "1", "0"]
    table = explanation.conservation()
    for layer in data.layers:
        row = table.rows[layer.index]
        assert layer.sum_out == pytest.approx(row["sum_out"]) and layer.sum_in == pytest.approx(row["sum_in"])
        assert layer.absorbed_share == pytest.approx((row["sum_out"] - row["sum_in"]) / row["sum_out"])
    assert data.explained == pytest.approx(float(explanation.output[0]))
    assert data.input_sum == pytest.approx(float(explanation.relevance.sum()))


def test_neuron_quantities_follow_the_four_steps(mlp):
    """s_k = R_k / z_k; for LRP-ε (one term) R_j = a_j c_j; z_k = Σ_j a_j w_jk + b_k + ε sign(z)."""
    model, x = mlp
    explanation = lrpcore.explain(model, x, composite=uniform(Epsilon(0.1)), record=True)
    top = collect(explanation).layers[0]
    neuron = top.neuron
    branch = neuron["branches"][0]
    assert branch["s"] == pytest.approx(neuron["R_k"] / branch["z"])
    assert neuron["R_j"] == pytest.approx(neuron["a_j"] * branch["c"])
    layer = model[2]
    a = explanation.trace[2].a[0]
    z = a @ layer.weight[neuron["k"]] + layer.bias[neuron["k"]]
    assert branch["z"] == pytest.approx(z + 0.1 * np.sign(z))
    assert neuron["k"] == int(np.argmax(np.abs(explanation.trace[2].relevance_out[0])))
    assert "('" in neuron["k_where"]                          # the top layer's neuron is named by its class


def test_column_of_the_explicit_matrix_and_its_check(mlp):
    model, x = mlp
    explanation = lrpcore.explain(model, x, composite=uniform(Epsilon(0.1)), record=True)
    data = collect(explanation)
    top = data.layers[0]
    step = explanation.trace[2]
    matrix = lrpcore.relevance_matrix(model[2], step.a[:1], step.rule)
    column = matrix[:, top.neuron["k"]]
    np.testing.assert_allclose(top.column["values"].pixels.reshape(-1)[:5], column)
    assert top.column["sum"] == pytest.approx(column.sum())
    assert top.column["deviation"] < 1e-12
    relu = data.layers[1]
    assert relu.column is None and "identity" in relu.column_note
    small = collect(explanation, column_limit=10).layers[0]     # 5 x 3 = 15 entries > 10: not built
    assert small.column is None and "at most 10" in small.column_note


def test_zero_denominators_are_flagged_on_the_page():
    """The tutorial's case: vanilla ε = 0.5 on a hidden pre-activation of exactly −0.5 gives z = 0."""
    hidden = Dense(np.array([[1.0, -1.5], [1.0, 1.0]]), np.zeros(2))
    top = Dense(np.array([[1.0, 1.0]]), np.zeros(1))
    model = lrpcore.Sequential([hidden, top], lrpcore.ModelMetadata(input_shape=(2,)))
    point = np.array([[1.0, 1.0]])
    explanation = lrpcore.explain(model, point, target=0, composite=uniform(Epsilon(0.5, stabilizer="vanilla")),
                                  record=True)
    data = collect(explanation)
    flagged = [layer for layer in data.layers if layer.zero]
    assert [layer.name for layer in flagged] == ["0"]      # the hidden layer: z_k = −0.5 + 0.5
    page = render(data)
    assert "1 relevance-carrying output(s) had an exactly zero denominator" in page
    assert re.search(r'<td class="flag">1 / \d+</td>', page)           # the overview row is flagged
    stable = render(collect(lrpcore.explain(model, point, target=0, composite=uniform(Epsilon(0.5)), record=True)))
    assert "exactly zero denominator" not in stable


def test_graph_steps_are_named_by_their_node(mlp):
    """Graph models' steps carry ``name`` and ``inputs``; the page uses them where chain steps use the index."""
    model, x = mlp
    explanation = lrpcore.explain(model, x, composite=uniform(Zero()), record=True)
    for index, step in enumerate(explanation.trace):
        step.name, step.inputs = f"node_{index}", ((f"node_{index - 1}",) if index else ("x",))
    page = render(collect(explanation))
    assert 'data-name="node_2"' in page and "inputs: node_1" in page and "inputs: x" in page


def test_report_command_writes_a_fresh_file_and_refuses_to_replace_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--target", "cross", "--dtype", "float64"]) == 0
    first = tmp_path / "lrpcore_out" / "report.html"
    page = first.read_text(encoding="utf-8")
    assert "explaining &#x27;cross&#x27;" in page and "precision float64" in page
    assert main(["report", "--seed", "2"]) == 0
    assert (tmp_path / "lrpcore_out" / "report-2.html").is_file() and first.read_text(encoding="utf-8") == page
    mine = tmp_path / "mine.html"
    mine.write_text("user data")
    capsys.readouterr()
    assert main(["report", "--out", str(mine)]) == 1
    assert "--overwrite" in capsys.readouterr().err and mine.read_text() == "user data"
    assert main(["report", "--out", str(mine), "--overwrite"]) == 0 and mine.read_text().startswith("<!DOCTYPE")
    assert main(["report", "--target", "hexagon", "--out", str(tmp_path / "x.html")]) == 1
    assert "'hexagon' is not a class of model 'shapes_cnn'" in capsys.readouterr().err


def test_build_report_takes_one_sample_and_a_class_name():
    from lrpcore.cli.explain import find_shipped_model

    model = lrpcore.load(find_shipped_model("digits_cnn"))
    test = lrpcore.data.digits("test")
    x = model.metadata.preprocess(test.x[:2])
    with pytest.raises(ValueError, match="one sample"):
        build_report(model, x)
    page = build_report(model, x[1], target="7", composite="epsilon_plus")
    assert "explaining &#x27;7&#x27;" in page and page.count('<section class="layer"') == len(model)


def test_a_residual_graph_is_reported_node_by_node():
    from _networks import residual_network

    model = residual_network()
    x = np.random.default_rng(5).uniform(0, 1, size=(1, 3, 8, 8))
    page = render(collect(lrpcore.explain(model, x, composite="epsilon_plus", record=True)))
    for name in ("block.add", "cat", "stem.relu"):
        assert f'data-name="{name}"' in page
    assert "inputs: block.conv2, stem.relu" in page
