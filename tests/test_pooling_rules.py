"""What pooling layers get under every preset and every uniform rule, and that none creates relevance there
(issue 14, item 2: αβ on a max pool after a ReLU multiplied relevance by α, 9.4× on a LeNet)."""
from __future__ import annotations

import numpy as np
import pytest
from _networks import relu_network, residual_network

import lrpcore
from lrpcore import ModelMetadata, Sequential
from lrpcore.composites import PRESETS, get_composite, uniform
from lrpcore.layers import AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d, ReLU
from lrpcore.rules import AlphaBeta, Epsilon, Flat, Gamma, WinnerTakesAll, WSquare, Zero, ZPlus

RULES = [Zero(), Epsilon(0.25), Gamma(0.25), Gamma(0.25, symmetric=True), AlphaBeta(2, 1), AlphaBeta(1, 0),
         ZPlus(), Flat(), WSquare()]


def lenet(seed: int = 0) -> Sequential:
    """LeNet-5's layout: conv → ReLU → max pool, twice, then three dense layers."""
    rng = np.random.default_rng(seed)

    def he(*shape):
        return rng.normal(size=shape) * np.sqrt(2.0 / np.prod(shape[1:]))

    layers = [Conv2d(he(6, 1, 5, 5), rng.normal(size=6) * 0.05), ReLU(), MaxPool2d(2),
              Conv2d(he(16, 6, 5, 5), rng.normal(size=16) * 0.05), ReLU(), MaxPool2d(2), Flatten(),
              Dense(he(120, 256), rng.normal(size=120) * 0.05), ReLU(), Dense(he(84, 120)), ReLU(),
              Dense(he(10, 84))]
    return Sequential(layers, ModelMetadata(input_shape=(1, 28, 28), name="lenet"))


def _pool_positions(model) -> list[int]:
    return [i for i, layer in enumerate(model.layers) if isinstance(layer, (MaxPool2d, AvgPool2d))]


def _composites():
    for name in sorted(PRESETS):
        yield name, lambda name=name: get_composite(name)
    for rule in RULES:
        yield f"uniform({rule.describe()})", lambda rule=rule: uniform(rule)


@pytest.mark.parametrize("network", [relu_network, lenet, residual_network])
@pytest.mark.parametrize("label, composite", list(_composites()))
def test_no_preset_or_uniform_rule_creates_relevance_at_a_pooling_layer(network, label, composite):
    model = network()
    shape = model.metadata.input_shape
    x = np.random.default_rng(1).uniform(0, 1, size=(3, *shape))
    explanation = lrpcore.explain(model, x, composite=composite(), record=True)
    for position in _pool_positions(model):
        step = explanation.trace[position]
        r_out = step.relevance_out.reshape(3, -1)
        r_in = step.relevance_in.reshape(3, -1)
        assert np.all(np.abs(r_in).sum(axis=1) <= np.abs(r_out).sum(axis=1) * (1 + 1e-9) + 1e-12), \
            (label, position, step.rule.describe())
        if isinstance(step.rule, WinnerTakesAll):
            np.testing.assert_allclose(r_in.sum(axis=1), r_out.sum(axis=1), rtol=1e-12, atol=1e-12)


def test_alpha_beta_on_a_max_pool_would_multiply_relevance_by_alpha():
    model = lenet()
    x = np.random.default_rng(2).uniform(0, 1, size=(2, 1, 28, 28))
    pools = _pool_positions(model)
    default = lrpcore.explain(model, x, composite=uniform(AlphaBeta(2, 1)), record=True)
    everywhere = lrpcore.explain(model, x, composite=uniform(AlphaBeta(2, 1), structural={}), record=True)
    for position in pools:
        assert isinstance(default.trace[position].rule, WinnerTakesAll)
        ratio = everywhere.trace[position].sum_in / everywhere.trace[position].sum_out
        np.testing.assert_allclose(ratio, 2.0, rtol=1e-6)          # α: no negative contributions to balance it
        np.testing.assert_allclose(default.trace[position].sum_in, default.trace[position].sum_out, rtol=1e-12)
    total = default.conservation()
    assert abs(total.input_sum / total.explained) < abs(everywhere.conservation().input_sum / total.explained)


def test_what_each_kind_of_composite_gives_pooling_layers():
    model = relu_network()                       # max pool at 2, average pool at 5
    rules = {name: get_composite(name).rules(model) for name in PRESETS}
    for name in ("epsilon_gamma_box", "epsilon_plus", "epsilon_plus_flat", "epsilon_alpha2_beta1",
                 "epsilon_alpha2_beta1_flat", "cmp"):
        assert isinstance(rules[name][2], WinnerTakesAll) and rules[name][2].ties == "first", name
        assert isinstance(rules[name][5], Epsilon) and rules[name][5].epsilon == 1e-6, name
    for name in ("tutorial", "decreasing_gamma"):          # the thesis' code: the group's rule on the window sum
        assert rules[name][2].maxpool == "sum" and rules[name][5].maxpool == "sum", name
    assert isinstance(uniform(Zero()).rules(model)[5], Zero)          # LRP-0 stays LRP-0 at average pools
    assert isinstance(uniform(AlphaBeta(2, 1)).rules(model)[5], Epsilon)
    assert isinstance(uniform(Flat()).rules(model)[2], Flat) and isinstance(uniform(WSquare()).rules(model)[5], Flat)
    assert isinstance(uniform(Gamma(0.5)).rules(model)[2], WinnerTakesAll) and \
        uniform(Gamma(0.5)).rules(model)[2].ties == "split"
