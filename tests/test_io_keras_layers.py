"""Keras files with depthwise, separable and grouped convolutions, global pooling, zero padding, Reshape and
the activations beyond ReLU → lrpcore: the converted model computes what real Keras 3 computes.

Files are written at test time by Keras 3 (PyTorch backend), as ``tests/test_io_keras.py`` does; the
test skips with the reason when Keras is not importable.
"""
from __future__ import annotations

import numpy as np
import pytest
from io_helpers import randomise_keras

from lrpcore.errors import ModelFormatError
from lrpcore.io import load_keras
from lrpcore.layers import (ELU, GELU, AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, BatchNorm2d, Conv2d, Dense,
                            Flatten, LeakyReLU, ReLU6, Reshape, Sigmoid, SiLU, Tanh, ZeroPad2d)

TOLERANCE = dict(rtol=1e-5, atol=1e-5)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def _check(keras, model, tmp_path, name: str, input_shape: tuple[int, ...], seed: int):
    """Save ``model`` as .keras and legacy .h5; both conversions must reproduce ``model.predict``."""
    x = np.random.default_rng(seed).normal(size=(3, *input_shape)).astype(np.float32)
    expected = model.predict(x, verbose=0)
    converted = None
    for suffix in (".keras", ".h5"):
        path = tmp_path / f"{name}{suffix}"
        model.save(path)
        converted = load_keras(path)
        ours = converted.forward(x.transpose(0, 3, 1, 2))
        np.testing.assert_allclose(ours, expected, **TOLERANCE)
    return converted


def test_mobilenet_style_keras_layers_match_keras_predict(keras, tmp_path):
    from keras import layers

    keras.utils.set_random_seed(11)
    model = keras.Sequential([
        keras.Input((11, 12, 3)),
        layers.ZeroPadding2D(((1, 0), (2, 1)), name="pad"),
        layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu6", name="dw"),
        layers.SeparableConv2D(6, 3, depth_multiplier=2, activation="tanh", name="sep"),
        layers.BatchNormalization(name="bn"),
        layers.ReLU(max_value=6.0, name="relu6"),
        layers.AveragePooling2D(3, strides=1, padding="same", name="avg_same"),   # Keras leaves padding out
        layers.LeakyReLU(name="leaky"),
        layers.GlobalAveragePooling2D(name="gap"),
        layers.Dense(5, activation="gelu", name="hidden"),
        layers.ELU(name="elu"),
        layers.Dense(3, activation="softmax", name="probabilities"),
    ])
    randomise_keras(model, seed=12)
    # compare logits: a copy of the model without the final softmax
    logits = keras.Sequential([keras.Input((11, 12, 3))] + model.layers[:-1]
                              + [layers.Dense(3, name="logits")])
    logits.get_layer("logits").set_weights(model.layers[-1].get_weights())
    converted = _check(keras, logits, tmp_path, "mobile", (11, 12, 3), seed=13)
    kinds = [type(layer) for layer in converted.layers]
    assert kinds == [ZeroPad2d, Conv2d, ReLU6, Conv2d, Conv2d, Tanh, BatchNorm2d, ReLU6, AvgPool2d, LeakyReLU,
                     AdaptiveAvgPool2d, Flatten, Dense, GELU, ELU, Dense]
    assert converted[1].groups == 3 and converted[1].out_channels == 6 and converted[3].groups == 6
    assert converted[8].count_include_pad is False and converted[9].negative_slope == pytest.approx(0.3)
    # the model with the softmax converts to the same logits, the softmax dropped with a note
    model.save(tmp_path / "soft.keras")
    with_softmax = load_keras(tmp_path / "soft.keras")
    x = np.random.default_rng(14).normal(size=(2, 11, 12, 3)).astype(np.float32).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(with_softmax.forward(x), converted.forward(x), rtol=1e-6, atol=1e-6)
    assert "dropped the final softmax" in with_softmax.metadata.description


def test_dense_reshape_conv_and_global_max_pooling_match_keras_predict(keras, tmp_path):
    from keras import layers

    keras.utils.set_random_seed(21)
    model = keras.Sequential([
        keras.Input((6,)),
        layers.Dense(32, activation="sigmoid", name="project"),
        layers.Reshape((4, 4, 2), name="to_image"),
        layers.Conv2D(3, 3, padding="same", activation="swish", name="conv"),
        layers.GlobalMaxPooling2D(name="gmp"),
        layers.Dense(2, name="logits"),
    ])
    randomise_keras(model, seed=22)
    x = np.random.default_rng(23).normal(size=(4, 6)).astype(np.float32)
    model.save(tmp_path / "unflatten.keras")
    converted = load_keras(tmp_path / "unflatten.keras")
    np.testing.assert_allclose(converted.forward(x), model.predict(x, verbose=0), **TOLERANCE)
    assert [type(layer) for layer in converted.layers] == [Dense, Sigmoid, Reshape, Conv2d, SiLU, AdaptiveMaxPool2d,
                                                          Flatten, Dense]
    assert converted[2].shape == [2, 4, 4]


def test_grouped_conv_and_global_pooling_with_keepdims_match_keras_predict(keras, tmp_path):
    from keras import layers

    keras.utils.set_random_seed(31)
    model = keras.Sequential([
        keras.Input((7, 7, 4)),
        layers.Conv2D(6, 3, groups=2, activation="elu", name="grouped"),
        layers.Identity(name="nothing"),
        layers.GlobalAveragePooling2D(keepdims=True, name="gap"),
        layers.Flatten(name="flat"),
        layers.Dense(3, activation="leaky_relu", name="out"),
    ])
    randomise_keras(model, seed=32)
    converted = _check(keras, model, tmp_path, "grouped", (7, 7, 4), seed=33)
    assert converted[0].groups == 2 and isinstance(converted[1], ELU) and isinstance(converted[2], AdaptiveAvgPool2d)
    assert isinstance(converted[-1], LeakyReLU) and converted[-1].negative_slope == pytest.approx(0.2)


def test_reshape_after_a_layer_that_cannot_be_reordered_is_refused(keras, tmp_path):
    from keras import layers

    model = keras.Sequential([keras.Input((4, 4, 2)), layers.Flatten(), layers.Reshape((4, 4, 2), name="back"),
                              layers.Conv2D(1, 1), layers.Flatten(), layers.Dense(2)])
    model.save(tmp_path / "reshape.keras")
    with pytest.raises(ModelFormatError, match=r"'back' \(Reshape\): the features come from Flatten"):
        load_keras(tmp_path / "reshape.keras")
