"""Composite resolution order and the literature presets' layer assignments."""
from __future__ import annotations

import numpy as np
import pytest

from lrpcore import Composite, CompositeError, ModelMetadata, Sequential
from lrpcore.composites import (cmp, decreasing_gamma, epsilon_alpha2_beta1_flat, epsilon_gamma_box,
                                epsilon_plus_flat, get_composite, tutorial)
from lrpcore.layers import AvgPool2d, Conv2d, Dense, Dropout, Flatten, MaxPool2d, ReLU
from lrpcore.rules import AlphaBeta, Epsilon, Flat, Gamma, Pass, WinnerTakesAll, Zero, ZBox, ZPlus

from _networks import relu_network


def vgg16_layout(channels: int = 2) -> Sequential:
    """The torchvision VGG-16 layer list with tiny channel counts (indices are what matter here)."""
    rng = np.random.default_rng(0)
    layers, in_channels = [], 3
    for block, convs in enumerate((2, 2, 3, 3, 3)):
        for _ in range(convs):
            layers += [Conv2d(rng.normal(size=(channels, in_channels, 3, 3)), padding=1), ReLU()]
            in_channels = channels
        layers.append(MaxPool2d(2))
    layers += [Flatten(), Dense(rng.normal(size=(4, channels))), ReLU(), Dropout(),
               Dense(rng.normal(size=(4, 4))), ReLU(), Dropout(), Dense(rng.normal(size=(3, 4)))]
    return Sequential(layers, ModelMetadata(input_shape=(3, 32, 32)))


def test_vgg16_layout_has_thesis_indices():
    model = vgg16_layout()
    assert [i for i, l in enumerate(model.layers) if isinstance(l, Conv2d)] == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21,
                                                                                24, 26, 28]
    assert [i for i, l in enumerate(model.layers) if isinstance(l, MaxPool2d)] == [4, 9, 16, 23, 30]


def test_tutorial_preset_follows_thesis_table_2_4_on_vgg16():
    model = vgg16_layout()
    rules = tutorial().rules(model)
    assert isinstance(rules[0], ZBox)
    for index in range(1, 17):
        if isinstance(model.layers[index], (Conv2d, MaxPool2d)):
            assert isinstance(rules[index], Gamma) and rules[index].gamma == 0.25, index
    for index in range(17, 31):
        if isinstance(model.layers[index], (Conv2d, MaxPool2d)):
            assert isinstance(rules[index], Epsilon) and rules[index].stabilizer_name == "quadratic_mean", index
    for index in range(31, len(model)):
        if isinstance(model.layers[index], Dense):
            assert isinstance(rules[index], Epsilon) and rules[index].epsilon == 1e-9
    assert all(isinstance(rules[i], Pass) for i, l in enumerate(model.layers) if isinstance(l, (ReLU, Flatten,
                                                                                                 Dropout)))


#: Thesis Table 2.3 (Decreasing-γ on VGG-16): z^B on layer 0, γ = 0.5 on layers 2–10, 0.25 on 11–17,
#: 0.1 on 18–24 and 0 on 25–31; the thesis' experiment code starts the first span at 1 (a ReLU) and runs
#: the last from 25 to the end, so the dense layers 32, 35 and 38 get γ = 0 as well.
THESIS_TABLE_2_3 = {(2, 10): 0.5, (11, 17): 0.25, (18, 24): 0.1, (25, 31): 0.0, (32, 38): 0.0}


def test_decreasing_gamma_preset_follows_thesis_table_2_3_on_vgg16():
    model = vgg16_layout()
    rules = decreasing_gamma().rules(model)
    assert isinstance(rules[0], ZBox)
    checked = 0
    for (first, last), gamma in THESIS_TABLE_2_3.items():
        for index in range(first, last + 1):
            if isinstance(model.layers[index], (Conv2d, MaxPool2d, Dense)):
                assert isinstance(rules[index], Gamma) and rules[index].gamma == gamma, (index, rules[index])
                checked += 1
            else:
                assert isinstance(rules[index], Pass), index
    assert checked == 12 + 5 + 3                      # every conv after the first, every pool, every dense
    # the convolutions at the span borders: 10 is the last of the γ = 0.5 group, 17 and 24 start no group
    assert [rules[i].gamma for i in (10, 12, 17, 19, 24, 26)] == [0.5, 0.25, 0.25, 0.1, 0.1, 0.0]


def test_epsilon_gamma_box_puts_zbox_on_the_first_conv_and_gamma_on_the_rest():
    model = relu_network()
    rules = epsilon_gamma_box(low=-1, high=1).rules(model)
    assert isinstance(rules[0], ZBox) and isinstance(rules[3], Gamma) and rules[3].symmetric
    assert isinstance(rules[7], Epsilon) and isinstance(rules[9], Epsilon)
    assert isinstance(rules[2], WinnerTakesAll) and rules[2].ties == "first"   # zennit: the gradient
    assert isinstance(rules[5], Epsilon)                       # AvgPool2d: parameter-free ε (zennit's Norm)


def test_flat_presets_put_flat_on_the_first_dense_or_conv():
    model = relu_network()
    assert isinstance(epsilon_plus_flat().rules(model)[0], Flat)
    rules = epsilon_alpha2_beta1_flat().rules(model)
    assert isinstance(rules[0], Flat) and isinstance(rules[3], AlphaBeta) and rules[3].alpha == 2
    mlp = Sequential([Dense(np.ones((3, 4))), ReLU(), Dense(np.ones((2, 3)))], ModelMetadata(input_shape=(4,)))
    assert isinstance(epsilon_plus_flat().rules(mlp)[0], Flat)
    assert not isinstance(epsilon_gamma_box(-1, 1).rules(mlp)[0], ZBox)   # zennit: ZBox only on convolutions


def test_cmp_uses_alpha_beta_on_convs_epsilon_on_dense_and_optional_flat_input():
    model = relu_network()
    rules = cmp(alpha=2).rules(model)
    assert isinstance(rules[0], AlphaBeta) and rules[0].beta == 1 and isinstance(rules[7], Epsilon)
    assert isinstance(cmp(alpha=1, flat_input=True).rules(model)[0], Flat)
    assert isinstance(cmp(alpha=1).rules(model)[3], AlphaBeta) and cmp(alpha=1).rules(model)[3].beta == 0


def test_resolution_order_index_beats_assign_beats_first_beats_type_beats_default():
    model = relu_network()
    composite = Composite(by_index={3: Flat(), range(7, 10): ZPlus()},
                          assign=lambda m: {3: Zero(), 5: Epsilon(0.7)},
                          first=Gamma(1.0), by_type={Conv2d: AlphaBeta(1, 0), Dense: Epsilon(0.2)},
                          default=Epsilon(0.9))
    rules = composite.rules(model)
    assert isinstance(rules[3], Flat)                  # by_index int beats assign
    assert isinstance(rules[5], Epsilon) and rules[5].epsilon == 0.7   # assign
    assert isinstance(rules[0], Gamma)                 # first (first Dense/Conv2d)
    assert isinstance(rules[7], ZPlus)                 # by_index range beats by_type
    assert isinstance(rules[2], WinnerTakesAll)        # MaxPool2d: the structural rule, not the default
    assert isinstance(rules[1], Pass)                  # non-linear layers: Pass


def test_exact_integer_index_beats_a_range_listed_before_it():
    composite = Composite(by_index={range(0, 10): Zero(), 9: Flat(), -3: Gamma(0.1)})
    rules = composite.rules(relu_network())
    assert isinstance(rules[9], Flat) and isinstance(rules[7], Gamma) and isinstance(rules[3], Zero)


def test_composite_naming_an_index_beyond_the_model_is_an_error():
    with pytest.raises(CompositeError, match="index 12, but the model has 10 layers"):
        Composite(by_index={12: Zero()}).rules(relu_network())
    with pytest.raises(CompositeError, match="beyond the model"):
        Composite(by_index={range(5, 40): Zero()}).rules(relu_network())


def test_a_non_pass_rule_on_a_relu_is_an_error_but_spans_skip_relus():
    with pytest.raises(CompositeError, match="layer 1 \\(ReLU\\(\\)\\), which is not linear"):
        Composite(by_index={1: Zero()}).rules(relu_network())
    rules = Composite(by_index={range(0, 10): Gamma(0.3)}).rules(relu_network())
    assert isinstance(rules[1], Pass) and isinstance(rules[0], Gamma) and isinstance(rules[9], Gamma)


def test_describe_prints_the_layer_rule_table():
    text = tutorial(low=-1, high=1).describe(relu_network())
    assert "ZBox" in text and "Conv2d(3→4" in text and "Pass" in text and "Gamma(γ=0.25)" in text
    assert "quadratic_mean" in tutorial(low=-1, high=1).describe(vgg16_layout())


def test_unknown_preset_name_is_an_error():
    with pytest.raises(CompositeError, match="unknown composite 'epsilon_gama_box'"):
        get_composite("epsilon_gama_box")
