"""explain(): targets, batches, the trace, conservation tables, log-probability ratio, stabilizers."""
from __future__ import annotations

import numpy as np
import pytest

import lrpcore
from lrpcore import explain
from lrpcore.composites import uniform
from lrpcore.rules import Epsilon, Gamma, Zero

from _networks import relu_network


@pytest.fixture
def model():
    return relu_network(seed=2)


@pytest.fixture
def batch():
    return np.abs(np.random.default_rng(0).normal(size=(4, 3, 8, 8)))


def test_batched_explanation_equals_one_sample_at_a_time(model, batch):
    together = explain(model, batch, target=[0, 1, 2, 3], composite="epsilon_gamma_box")
    for index in range(4):
        alone = explain(model, batch[index:index + 1], target=index, composite="epsilon_gamma_box")
        np.testing.assert_allclose(together.relevance[index], alone.relevance[0], rtol=1e-12, atol=1e-14)


def test_target_none_explains_the_predicted_class(model, batch):
    result = explain(model, batch)
    np.testing.assert_array_equal(result.target, model.forward(batch).argmax(axis=1))
    np.testing.assert_allclose(result.output, model.forward(batch).max(axis=1))


def test_trace_records_every_step_of_the_backward_pass(model, batch):
    result = explain(model, batch, target=1, composite=uniform(Epsilon(0.1, stabilizer="vanilla")), record=True)
    assert len(result.trace) == len(model)
    activations = model.forward(batch, record=True)
    step = result.trace[7]                                   # Dense(6→8)
    layer = model.layers[7]
    z = activations[7] @ layer.weight.T + layer.bias + 0.1
    np.testing.assert_allclose(step.z, z, rtol=1e-12)
    np.testing.assert_allclose(step.s, step.relevance_out / z, rtol=1e-12)
    np.testing.assert_allclose(step.c, step.s @ layer.weight, rtol=1e-12)
    np.testing.assert_allclose(step.relevance_in, activations[7] * step.c, rtol=1e-12)
    np.testing.assert_allclose(step.absorbed, step.sum_out - step.sum_in)
    assert step.rule.describe() == "Epsilon(ε=0.1)"
    assert result.trace[1].rule.describe() == "Pass" and result.trace[1].z is None
    # the trace's relevances are the explanation's layer relevances
    for index in range(len(model)):
        np.testing.assert_array_equal(result.trace[index].relevance_in, result.layer_relevances[index])


def test_conservation_table_lists_each_layer_and_the_total(model, batch):
    result = explain(model, batch, composite=uniform(Epsilon(0.5)))
    table = result.conservation()
    text = str(table)
    assert len(table.rows) == len(model)
    assert "Dense(8→5)" in text and "Epsilon(ε=0.5)" in text and "f(x) =" in text
    bottom = result.relevance.sum()
    assert table.input_sum == pytest.approx(bottom)
    assert table.rows[-1]["sum_out"] == pytest.approx(float(result.output.sum()))
    assert any(row["absorbed"] != 0 for row in table.rows)


def test_logprob_ratio_explains_log_odds_of_the_target(model, batch):
    result = explain(model, batch, target=2, top="logprob_ratio")
    logits = model.forward(batch)
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(result.output, np.log(probabilities[:, 2] / (1 - probabilities[:, 2])), rtol=1e-10)
    # min-take-most: with one dominant competitor, relevance equals that of the logit difference z_c − z_c'
    relevance_top = result.layer_relevances[len(model) - 1]
    assert relevance_top.shape == (4, 8)


def test_logprob_ratio_with_two_classes_is_the_logit_difference():
    from lrpcore import ModelMetadata, Sequential
    from lrpcore.layers import Dense

    rng = np.random.default_rng(0)
    layer = Dense(rng.normal(size=(2, 3)), np.zeros(2))
    model = Sequential([layer], ModelMetadata(input_shape=(3,)))
    x = np.abs(rng.normal(size=(5, 3)))
    result = explain(model, x, target=0, top="logprob_ratio")
    np.testing.assert_allclose(result.relevance, x * (layer.weight[0] - layer.weight[1]), rtol=1e-12)
    np.testing.assert_allclose(result.output, (x @ layer.weight.T) @ [1, -1], rtol=1e-12)


def test_stabilizer_argument_overrides_every_rule(model, batch):
    plain = explain(model, batch, composite=uniform(Epsilon(0.3, stabilizer="vanilla"), structural={}))
    overridden = explain(model, batch, composite=uniform(Epsilon(0.3, stabilizer="vanilla"), structural={}),
                         stabilizer="quadratic_mean")
    reference = explain(model, batch, composite=uniform(Epsilon(0.3, stabilizer="quadratic_mean"), structural={}))
    np.testing.assert_allclose(overridden.relevance, reference.relevance, rtol=1e-12)
    assert not np.allclose(plain.relevance, overridden.relevance)


def test_vanilla_zero_denominator_is_reported_not_turned_into_nan():
    from lrpcore import ModelMetadata, Sequential
    from lrpcore.layers import Dense

    # a linear hidden unit with z = 1 − 1.5 = −0.5 = −ε: vanilla's z + ε is exactly zero while the unit
    # still carries relevance from the top layer
    hidden = Dense(np.array([[1.0, -1.5], [1.0, 1.0]]), np.zeros(2))
    top = Dense(np.array([[1.0, 1.0]]), np.array([0.0]))
    model = Sequential([hidden, top], ModelMetadata(input_shape=(2,)))
    x = np.array([[1.0, 1.0]])
    result = explain(model, x, target=0, composite=uniform(Epsilon(0.5, stabilizer="vanilla")), record=True)
    assert np.isfinite(result.relevance).all()
    assert result.trace[0].zero_denominators == 1 and result.trace[1].zero_denominators == 0
    report = lrpcore.detect_instability(result)
    assert bool(report.unstable[0]) and "zero denominators in layers [0]" in report.reasons[0]
    with_zennit = explain(model, x, target=0, composite=uniform(Epsilon(0.5, stabilizer="zennit")))
    assert with_zennit.zero_denominators.sum() == 0 and not lrpcore.detect_instability(with_zennit)


def test_quadratic_mean_heatmap_does_not_depend_on_the_batch(model, batch):
    per_sample = uniform(Epsilon(0.25, stabilizer="quadratic_mean"))
    batch_wide = uniform(Epsilon(0.25, stabilizer="quadratic_mean_batch"))
    alone = explain(model, batch[:1], target=0, composite=per_sample).relevance
    together = explain(model, batch, target=0, composite=per_sample).relevance[:1]
    np.testing.assert_allclose(alone, together, rtol=1e-12)
    alone_b = explain(model, batch[:1], target=0, composite=batch_wide).relevance
    together_b = explain(model, batch, target=0, composite=batch_wide).relevance[:1]
    assert not np.allclose(alone_b, together_b, rtol=1e-6)


def test_precomputed_activations_give_the_same_explanation(model, batch):
    activations = model.forward(batch, record=True)
    fresh = explain(model, batch, composite="tutorial")
    reused = explain(model, batch, composite="tutorial", activations=activations)
    np.testing.assert_array_equal(fresh.relevance, reused.relevance)


def test_modify_hook_changes_relevance_and_is_kept_in_the_trace(model, batch):
    def halve(index, layer, rule, a, upper, lower):
        return (lower * 0.5, {"halved": True}) if index == 3 else lower

    base = explain(model, batch, composite=uniform(Gamma(0.25)))
    changed = explain(model, batch, composite=uniform(Gamma(0.25)), modify=halve, record=True)
    np.testing.assert_allclose(changed.relevance, base.relevance * 0.5, rtol=1e-12)
    assert changed.trace[3].info == {"halved": True} and changed.trace[2].info == {}


def test_explanation_runs_on_array_api_strict(model, batch):
    strict = pytest.importorskip("array_api_strict")
    from lrpcore.backend import to_numpy

    result = explain(model.to(strict), strict.asarray(batch), target=1, composite="epsilon_gamma_box")
    reference = explain(model, batch, target=1, composite="epsilon_gamma_box")
    np.testing.assert_allclose(to_numpy(result.relevance), reference.relevance, rtol=1e-10, atol=1e-13)
