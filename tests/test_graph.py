"""Graphs: construction and its errors, forward, LRP through Add / Concat / fan-out, explicit matrices,
per-node conservation, composites by name, canonization inside residual branches."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from _networks import relu_network, residual_network

import lrpcore
from lrpcore import Graph, ModelMetadata, Sequential, explain
from lrpcore.composites import Composite, epsilon_gamma_box, uniform
from lrpcore.graph import GraphError, Node
from lrpcore.layers import Add, BatchNorm2d, Concat, Conv2d, Dense, Flatten, Identity, ReLU
from lrpcore.matrix import graph_relevance_matrix, relevance_matrix
from lrpcore.rules import AlphaBeta, Epsilon, Gamma, Pass, WinnerTakesAll, Zero, ZPlus


def _x(seed: int = 1, batch: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, size=(batch, 3, 8, 8))


# --- construction -------------------------------------------------------------------------------
def _dense(rows: int, cols: int, seed: int = 0) -> Dense:
    return Dense(np.random.default_rng(seed).normal(size=(rows, cols)))


@pytest.mark.parametrize("nodes, message", [
    ([("a", _dense(3, 4), "input"), ("a", _dense(2, 3), "a")], "two nodes are named 'a'"),
    ([("a", _dense(3, 4), "input"), ("b", _dense(2, 3), "missing")], "reads 'missing', which is neither"),
    ([("a", _dense(3, 4), "b"), ("b", _dense(4, 3), "a")], r"cycle through the nodes \['a', 'b'\]"),
    ([("a", _dense(3, 4), "input"), ("b", _dense(2, 3), "a"), ("c", _dense(2, 3), "a")],
     r"nodes \['b'\] are not read by any node"),
    ([("a", _dense(3, 4), "input"), ("b", Add(), "a")], "needs at least two inputs"),
    ([("a", _dense(3, 4), ("input", "input"))], r"takes 1 input\(s\)"),
    ([("input", _dense(3, 4), "input")], "the name of the graph input"),
    ([], "at least one node"),
])
def test_malformed_graphs_are_refused_with_the_node_named(nodes, message):
    with pytest.raises(GraphError, match=message):
        Graph(nodes)


def test_nodes_are_sorted_topologically_keeping_the_given_order_where_possible():
    nodes = [("fc", _dense(2, 4), "relu"), ("first", _dense(4, 4), "input"), ("relu", ReLU(), "first")]
    graph = Graph(nodes, ModelMetadata(input_shape=(4,)))
    assert graph.names == ["first", "relu", "fc"]
    assert graph.input_positions == [(0,), (1,), (2,)] and graph.is_chain
    assert graph["relu"] is nodes[2][1] and graph[2] is nodes[0][1] and graph.position("fc") == 2


def test_sequential_is_the_chain_case_with_the_same_api():
    model = relu_network()
    assert isinstance(model, Graph) and model.is_chain and len(model) == 10
    assert model.names == [str(index) for index in range(10)] and model[3] is model.layers[3]
    assert isinstance(model[2:5], Sequential) and len(model[2:5]) == 3
    activations = model.forward(_x(), record=True)
    assert len(activations) == 11 and activations[-1].shape == (2, 5)
    assert model.astype("float32").dtype == np.float32 and model.to("numpy").metadata == model.metadata
    assert "index" in model.summary() and "inputs" not in model.summary()


def test_graph_forward_computes_the_residual_sum_and_the_concatenation():
    graph = residual_network()
    x = _x()
    activations = graph.forward(x, record=True)
    act = dict(zip(["input"] + graph.names, activations))
    np.testing.assert_array_equal(act["block.add"], act["block.conv2"] + act["stem.relu"])
    np.testing.assert_array_equal(act["cat"], np.concatenate([act["branch_a"], act["branch_b"]], axis=1))
    np.testing.assert_array_equal(graph.forward(x), activations[-1])
    assert graph.consumers[graph.position("stem.relu") + 1] == [graph.position("block.conv1"),
                                                                graph.position("block.add")]
    assert graph.output_shapes()[graph.position("cat")] == (5, 4, 4)
    assert "block.conv2, stem.relu" in graph.summary()


def test_layer_errors_in_a_graph_name_the_node():
    graph = Graph([("a", _dense(3, 4), "input"), ("b", _dense(2, 5), "a")])
    with pytest.raises(lrpcore.ShapeError, match=r"node 'b' \(Dense\(5→2\)\)"):
        graph.forward(np.ones((1, 4)))


# --- relevance at the new nodes -----------------------------------------------------------------
def test_add_splits_relevance_in_proportion_to_its_inputs():
    rng = np.random.default_rng(0)
    first, second = rng.normal(size=(2, 5)), rng.normal(size=(2, 5))
    relevance = rng.normal(size=(2, 5))
    layer = Add()
    a = layer.combine([first, second])
    for rule in (Epsilon(0.1, stabilizer="vanilla"), Zero(), Epsilon(1e-6, stabilizer="zennit")):
        total = rule.stabilize(first + second)
        got = layer.split(rule.relevance(layer, a, relevance), [first.shape, second.shape])
        np.testing.assert_allclose(got[0], first / total * relevance, rtol=1e-12)
        np.testing.assert_allclose(got[1], second / total * relevance, rtol=1e-12)
    # its matrix has one block per input, each the diagonal z_i / stabilize(Σ z)
    matrix = relevance_matrix(layer, a[:1], Epsilon(0.1, stabilizer="vanilla"))
    assert matrix.shape == (10, 5)
    np.testing.assert_allclose(matrix[:5], np.diag(first[0] / (first[0] + second[0] + 0.1)), rtol=1e-12)
    np.testing.assert_allclose(matrix[5:], np.diag(second[0] / (first[0] + second[0] + 0.1)), rtol=1e-12)


def test_concat_cuts_relevance_back_into_the_inputs_slices_exactly():
    layer = Concat(axis=1)
    parts = [np.ones((2, 2, 3)), np.ones((2, 5, 3))]
    relevance = np.arange(2 * 7 * 3, dtype=float).reshape(2, 7, 3)
    back = layer.split(relevance, [p.shape for p in parts])
    np.testing.assert_array_equal(back[0], relevance[:, :2]) and np.testing.assert_array_equal(back[1],
                                                                                              relevance[:, 2:])
    with pytest.raises(lrpcore.ShapeError, match="inputs differ outside axis 1"):
        layer.combine([np.ones((2, 2, 3)), np.ones((2, 2, 4))])


def _tiny_residual(seed: int = 0):
    rng = np.random.default_rng(seed)
    w1, b1 = rng.normal(size=(5, 4)), rng.normal(size=5) * 0.1
    w2, b2 = rng.normal(size=(5, 5)), rng.normal(size=5) * 0.1
    w3, b3 = rng.normal(size=(3, 5)), rng.normal(size=3) * 0.1
    graph = Graph([("fc1", Dense(w1, b1), "input"), ("relu1", ReLU(), "fc1"),
                   ("fc2", Dense(w2, b2), "relu1"), ("relu2", ReLU(), "fc2"),
                   ("add", Add(), ("relu2", "relu1")), ("fc3", Dense(w3, b3), "add")],
                  ModelMetadata(input_shape=(4,)))
    return graph, (w1, b1, w2, b2, w3, b3)


def test_tiny_residual_net_matches_the_lrp_epsilon_formula_written_as_loops():
    graph, (w1, b1, w2, b2, w3, b3) = _tiny_residual()
    x = np.abs(np.random.default_rng(3).normal(size=(1, 4)))
    eps = 0.1
    explanation = explain(graph, x, target=2, composite=uniform(Epsilon(eps, stabilizer="vanilla")))

    x0 = x[0]
    h1 = np.maximum(0, w1 @ x0 + b1)
    h2 = np.maximum(0, w2 @ h1 + b2)
    s = h1 + h2
    out = w3 @ s + b3
    r_out = np.zeros(3)
    r_out[2] = out[2]
    r_s = np.zeros(5)
    for j in range(5):
        for k in range(3):
            r_s[j] += s[j] * w3[k, j] / (sum(s[i] * w3[k, i] for i in range(5)) + b3[k] + eps) * r_out[k]
    r_h2, r_h1 = np.zeros(5), np.zeros(5)
    for j in range(5):                       # the Add node: each input's share of the sum
        r_h2[j] = h2[j] / (h2[j] + h1[j] + eps) * r_s[j]
        r_h1[j] = h1[j] / (h2[j] + h1[j] + eps) * r_s[j]
    for i in range(5):                       # fc2 passes its share on to h1, which also has the skip's
        for j in range(5):
            r_h1[i] += h1[i] * w2[j, i] / (sum(h1[m] * w2[j, m] for m in range(5)) + b2[j] + eps) * r_h2[j]
    r_x = np.zeros(4)
    for i in range(4):
        for j in range(5):
            r_x[i] += x0[i] * w1[j, i] / (sum(x0[m] * w1[j, m] for m in range(4)) + b1[j] + eps) * r_h1[j]
    np.testing.assert_allclose(explanation.relevance[0], r_x, rtol=1e-12)
    np.testing.assert_allclose(explanation.layer_relevances[graph.position("relu1") + 1][0], r_h1, rtol=1e-12)


@pytest.mark.parametrize("composite", ["epsilon_gamma_box", "epsilon_plus", "zero",
                                       lambda: uniform(Gamma(0.3, stabilizer="vanilla", epsilon=1e-3))])
def test_whole_graph_matrix_equals_the_fast_path(composite):
    graph = residual_network()
    composite = composite() if callable(composite) else lrpcore.composites.get_composite(composite)
    x = _x(seed=4, batch=1)
    explanation = explain(graph, x, composite=composite, target=1)
    transfer = graph_relevance_matrix(graph, x, composite)
    top = np.zeros(3)
    top[1] = explanation.logits[0, 1]
    np.testing.assert_allclose((transfer @ top).reshape(x.shape), explanation.relevance, rtol=1e-10, atol=1e-14)


def test_fan_out_receives_the_sum_of_its_readers_relevances():
    graph = residual_network()
    explanation = explain(graph, _x(), composite="epsilon_plus", record=True)
    trace = explanation.trace
    add_share = graph.node("block.add").layer.split(trace["block.add"].relevance_in, [None, None])[1]
    conv_share = trace["block.conv1"].relevance_in
    skip = explanation.layer_relevances[graph.position("stem.relu") + 1]
    np.testing.assert_allclose(skip, add_share + conv_share, rtol=1e-12)
    table = explanation.conservation()
    fanout = next(item for item in table.fanouts if item["name"] == "stem.relu")
    assert [reader for reader, _ in fanout["shares"]] == ["block.conv1", "block.add"]
    np.testing.assert_allclose(fanout["total"], skip.sum(), rtol=1e-10)
    assert "fan-out at 'stem.relu'" in str(table) and "block.add" in str(table)


def test_lrp0_without_bias_conserves_at_every_node_of_a_graph():
    graph = residual_network(bias=False)
    explanation = explain(graph, _x(), composite=uniform(Zero()), target=0)
    lrpcore.check_conservation(explanation, rtol=1e-9)
    table = explanation.conservation()
    assert table.total_relative_error < 1e-9
    add_row = next(row for row in table.rows if row["name"] == "block.add")
    assert add_row["relative_error"] < 1e-12                   # Σ over the Add's two inputs = Σ at its output


def test_conservation_check_names_the_node_that_absorbs():
    graph = residual_network(bias=True)
    explanation = explain(graph, _x(), composite=uniform(Epsilon(5.0, stabilizer="vanilla")), target=0)
    with pytest.raises(lrpcore.ConservationError, match=r"node 'fc' \(Dense"):
        lrpcore.check_conservation(explanation, rtol=1e-9)


def test_lrp0_equals_gradient_times_input_on_a_bias_free_graph():
    graph = residual_network(bias=False)
    x = _x()
    explanation = explain(graph, x, target=2)
    grad, _ = lrpcore.gradient(graph, x, target=2)
    np.testing.assert_allclose(explanation.relevance, grad * x, rtol=1e-9, atol=1e-13)


def test_graph_gradient_matches_finite_differences():
    graph = residual_network()
    x = _x(batch=1)
    grad, logits = lrpcore.gradient(graph, x, target=1)
    step = 1e-6
    for index in [(0, 0, 1, 2), (0, 2, 5, 5), (0, 1, 7, 0)]:
        moved = x.copy()
        moved[index] += step
        numeric = (graph.forward(moved)[0, 1] - logits[0, 1]) / step
        assert abs(numeric - grad[index]) < 1e-4 * max(1.0, abs(numeric))


def test_the_trace_has_one_step_per_node_with_names():
    graph = residual_network()
    explanation = explain(graph, _x(), composite="epsilon_gamma_box", record=True)
    assert [step.name for step in explanation.trace] == graph.names
    add = explanation.trace["block.add"]
    assert add.inputs == ("block.conv2", "stem.relu") and add.a.shape == (2, 2, 4, 8, 8)
    np.testing.assert_allclose(add.relevance_in.sum(axis=(1, 2, 3, 4)), add.sum_in, rtol=1e-12)


# --- composites on graphs -------------------------------------------------------------------------
def test_composites_select_nodes_by_name_pattern_position_and_type():
    graph = residual_network()
    composite = Composite(by_name={"block.conv2": ZPlus(), "branch_*": AlphaBeta(2, 1)},
                          by_index={0: Gamma(0.5)}, by_type={Dense: Epsilon(0.2)})
    rules = dict(zip(graph.names, composite.rules(graph)))
    assert isinstance(rules["block.conv2"], ZPlus) and isinstance(rules["branch_b"], AlphaBeta)
    assert isinstance(rules["stem"], Gamma) and isinstance(rules["fc"], Epsilon)
    assert isinstance(rules["block.add"], Epsilon) and rules["block.add"].epsilon == 1e-6   # structural
    assert isinstance(rules["pool"], WinnerTakesAll) and isinstance(rules["cat"], Pass)
    assert isinstance(rules["block.conv1"], Zero)                                          # default
    with pytest.raises(lrpcore.CompositeError, match="names node 'nowhere'"):
        Composite(by_name={"nowhere": Zero()}).rules(graph)
    described = composite.describe(graph)
    assert "block.add" in described and "WinnerTakesAll" in described


@pytest.mark.parametrize("preset", sorted(lrpcore.composites.PRESETS))
def test_every_preset_explains_a_graph(preset):
    graph = residual_network()
    explanation = explain(graph, _x(), composite=preset)
    assert np.all(np.isfinite(explanation.relevance)) and explanation.relevance.shape == (2, 3, 8, 8)


def test_epsilon_gamma_box_gives_add_zennits_norm_rule():
    rules = dict(zip(residual_network().names, epsilon_gamma_box().rules(residual_network())))
    add = rules["block.add"]
    assert isinstance(add, Epsilon) and add.epsilon == 1e-6 and add.stabilizer_name == "zennit"
    assert isinstance(rules["pool"], WinnerTakesAll) and rules["pool"].ties == "first"


# --- canonization in a graph ----------------------------------------------------------------------
def _with_batchnorms(seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)

    def norm(channels):
        return BatchNorm2d(rng.normal(size=channels), rng.uniform(0.5, 2, size=channels),
                           rng.normal(size=channels), rng.normal(size=channels))

    return Graph([
        ("conv1", Conv2d(rng.normal(size=(4, 3, 3, 3)), padding=1), "input"),
        ("bn1", norm(4), "conv1"),
        ("relu1", ReLU(), "bn1"),
        ("conv2", Conv2d(rng.normal(size=(4, 4, 3, 3)), padding=1), "relu1"),
        ("bn2", norm(4), "conv2"),
        ("add", Add(), ("bn2", "relu1")),
        ("bn_after_add", norm(4), "add"),
        ("flatten", Flatten(), "bn_after_add"),
        ("fc", Dense(rng.normal(size=(2, 4 * 8 * 8))), "flatten"),
    ], ModelMetadata(input_shape=(3, 8, 8)))


def test_canonize_folds_batchnorm_inside_a_residual_branch_and_keeps_the_rest():
    from lrpcore.canonize import UnfoldedBatchNormWarning

    graph = _with_batchnorms()
    with pytest.warns(UnfoldedBatchNormWarning, match="node 'bn_after_add'"):
        folded = lrpcore.canonize(graph)
    assert folded.names == ["conv1", "relu1", "conv2", "add", "bn_after_add", "flatten", "fc"]
    assert folded.node("add").inputs == ("conv2", "relu1")
    x = _x()
    np.testing.assert_allclose(folded.forward(x), graph.forward(x), rtol=1e-10)
    with warnings.catch_warnings(record=True):
        rules = dict(zip(folded.names, uniform(Zero()).rules(folded)))
    assert isinstance(rules["bn_after_add"], Pass)


def test_identity_passes_relevance_unchanged():
    graph = Graph([("a", _dense(3, 4), "input"), ("same", Identity(), "a"), ("b", _dense(2, 3, seed=1), "same")],
                  ModelMetadata(input_shape=(4,)))
    explanation = explain(graph, np.ones((1, 4)), record=True)
    np.testing.assert_array_equal(explanation.trace["same"].relevance_in, explanation.trace["same"].relevance_out)


# --- errors, targets, non-finite values -------------------------------------------------------------
def test_class_names_are_accepted_as_targets():
    model = relu_network()
    model.metadata.class_names = ("a", "b", "c", "d", "e")
    by_name = explain(model, _x(), target="c")
    assert by_name.target.tolist() == [2, 2]
    assert explain(model, _x(), target=["e", "a"]).target.tolist() == [4, 0]
    with pytest.raises(lrpcore.InputValueError, match=r"target 'z' is not a class of model 'relu_network'; classes: a, b"):
        explain(model, _x(), target="z")


def test_an_overflowing_model_raises_naming_the_first_node():
    from lrpcore.explain import NonFiniteError

    graph = residual_network()
    graph.node("block.conv1").layer.weight[...] = 1e308           # float64: the sums overflow to inf
    with pytest.raises(NonFiniteError, match=r"not finite from node 'block.conv1'"):
        explain(graph, _x())
    with pytest.warns(RuntimeWarning, match="not finite from node 'block.conv1'"):
        explain(graph, _x(), nonfinite="warn")


def test_a_relevance_blow_up_raises_naming_the_node():
    from lrpcore.explain import NonFiniteError

    # layer 0: z = −0.099999994, so z + ε (vanilla, ε = 0.1) = 7.45e-9 in float32; the relevance from above,
    # about −1e34, divided by it overflows float32
    w0 = np.nextafter(np.float32(-0.1), np.float32(0))
    model = Sequential([Dense(np.array([[w0]], dtype=np.float32)), Dense(np.array([[1e35]], dtype=np.float32))],
                       ModelMetadata(input_shape=(1,)))
    x = np.ones((1, 1), dtype=np.float32)
    assert np.isfinite(model.forward(x)).all()
    with pytest.raises(NonFiniteError, match=r"relevance became NaN or inf at layer 0 \(Dense"):
        explain(model, x, composite=uniform(Epsilon(0.1, stabilizer="vanilla")))
