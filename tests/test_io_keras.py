"""Keras files → lrpcore: the converted model computes what Keras computes.

Two sources of files:

- real Keras 3 (run on its PyTorch backend), building small conv nets at test time and saving
  them as legacy ``.h5``, ``.keras`` and ``.weights.h5``; outputs are compared with Keras' own
  ``model.predict`` (skipped, with the reason, when Keras is not importable; install with
  ``pip install keras==3.15.1`` — it needs no TensorFlow and does not touch torch);
- hand-written files in the Keras 2 layout (``kernel:0`` names, weights-only variant), checked
  against a NumPy NHWC reference forward pass, so the reader is tested without Keras too.
"""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from lrpcore.errors import ModelFormatError
import lrpcore  # noqa: E402
from lrpcore.io import load_keras
from lrpcore.layers import BatchNorm1d, BatchNorm2d, Conv2d, Dense, Flatten, MaxPool2d

from io_helpers import keras2_example, randomise_keras, write_keras2

TOLERANCE = dict(rtol=1e-5, atol=1e-5)
# Keras 3.15 on NumPy 2.4 warns about its own __array__ methods; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


# --- real Keras (the keras fixture is in conftest.py) ------------------------------------------
@pytest.fixture(scope="module")
def conv_net(keras, tmp_path_factory):
    """A conv net with BN, max/avg pooling, activation-in-layer and as layer, Dropout and Dense, saved three ways."""
    from keras import layers

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((12, 10, 3)),
        layers.Conv2D(6, 3, padding="same", activation="relu", name="conv_a"),
        layers.BatchNormalization(name="bn_a"),
        layers.MaxPooling2D(2, name="pool_a"),
        layers.Conv2D(8, (3, 2), name="conv_b"),
        layers.ReLU(name="relu_b"),
        layers.AveragePooling2D(2, name="pool_b"),
        layers.Flatten(name="flat"),
        layers.Dropout(0.3, name="drop"),
        layers.Dense(10, activation="relu", name="dense_a"),
        layers.BatchNormalization(name="bn_b"),
        layers.Dense(4, name="logits"),
    ])
    randomise_keras(model, seed=1)
    folder = tmp_path_factory.mktemp("keras")
    paths = {"h5": folder / "net.h5", "keras": folder / "net.keras", "weights": folder / "net.weights.h5"}
    model.save(paths["h5"])
    model.save(paths["keras"])
    model.save_weights(paths["weights"])
    x = np.random.default_rng(2).uniform(0, 1, size=(5, 12, 10, 3)).astype(np.float32)
    return model, paths, x, model.predict(x, verbose=0)


def test_keras_conv_net_from_legacy_h5_matches_keras_predict(conv_net):
    model, paths, x, expected = conv_net
    converted = load_keras(paths["h5"])
    assert converted.metadata.input_shape == (3, 12, 10)
    assert str(converted.dtype) == "float32"
    np.testing.assert_allclose(converted.forward(x.transpose(0, 3, 1, 2)), expected, **TOLERANCE)


def test_keras_conv_net_from_keras_archive_matches_keras_predict(conv_net):
    _, paths, x, expected = conv_net
    np.testing.assert_allclose(load_keras(paths["keras"]).forward(x.transpose(0, 3, 1, 2)), expected, **TOLERANCE)


@pytest.mark.parametrize("config_kind", ["json string", "dict", "json file", "keras archive"])
def test_keras3_weights_file_with_config_matches_keras_predict(conv_net, tmp_path, config_kind):
    model, paths, x, expected = conv_net
    config = {"json string": model.to_json(), "dict": json.loads(model.to_json()),
              "json file": tmp_path / "net.json", "keras archive": paths["keras"]}[config_kind]
    (tmp_path / "net.json").write_text(model.to_json())
    converted = load_keras(paths["weights"], config=config)
    np.testing.assert_allclose(converted.forward(x.transpose(0, 3, 1, 2)), expected, **TOLERANCE)


def test_keras_layers_become_the_expected_lrpcore_layers(conv_net):
    _, paths, _, _ = conv_net
    converted = load_keras(paths["h5"])
    kinds = [type(layer).__name__ for layer in converted]
    assert kinds == ["Conv2d", "ReLU", "BatchNorm2d", "MaxPool2d", "Conv2d", "ReLU", "AvgPool2d", "Flatten",
                     "Dropout", "Dense", "ReLU", "BatchNorm1d", "Dense"]
    assert converted[0].padding == (1, 1) and converted[4].kernel_size == (3, 2)
    assert isinstance(converted[2], BatchNorm2d) and converted[2].eps == pytest.approx(1e-3)
    assert isinstance(converted[11], BatchNorm1d) and converted[8].p == pytest.approx(0.3)


def test_final_softmax_is_dropped_and_strided_same_padding_converts(keras, tmp_path):
    from keras import layers

    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((10, 10, 2)),
        layers.Conv2D(3, 4, strides=2, padding="same", name="strided"),      # pads 1 before, 1 after
        layers.MaxPooling2D(3, strides=1, padding="same", name="same_pool"),  # pads 1 and 1
        layers.Flatten(),
        layers.Dense(5, activation="softmax", name="probabilities"),
    ])
    randomise_keras(model, seed=4)
    model.save(tmp_path / "soft.keras")
    x = np.random.default_rng(5).normal(size=(3, 10, 10, 2)).astype(np.float32)
    converted = load_keras(tmp_path / "soft.keras")
    logits = converted.forward(x.transpose(0, 3, 1, 2))
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    np.testing.assert_allclose(probabilities, model.predict(x, verbose=0), **TOLERANCE)
    assert "dropped the final softmax" in converted.metadata.description
    assert type(converted[-1]).__name__ == "Dense" and converted[0].padding == (1, 1)


def test_batch_norm_between_flatten_and_dense_is_permuted_to_lrpcore_order(keras, tmp_path):
    from keras import layers

    keras.utils.set_random_seed(8)
    model = keras.Sequential([keras.Input((4, 3, 3)), layers.Conv2D(2, 1), layers.Flatten(),
                              layers.BatchNormalization(), layers.Dense(3)])
    randomise_keras(model, seed=9)
    model.save(tmp_path / "flat_bn.h5")
    converted = load_keras(tmp_path / "flat_bn.h5")
    assert isinstance(converted[2], BatchNorm1d)
    x = np.random.default_rng(10).normal(size=(4, 4, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(converted.forward(x.transpose(0, 3, 1, 2)), model.predict(x, verbose=0), **TOLERANCE)


def test_functional_chain_model_converts_to_a_sequential(keras, tmp_path):
    from keras import layers

    inputs = keras.Input((8, 8, 1))
    hidden = layers.Conv2D(2, 3, activation="relu")(inputs)
    outputs = layers.Dense(3)(layers.Flatten()(hidden))
    chain = keras.Model(inputs, outputs)
    chain.save(tmp_path / "chain.keras")
    x = np.random.default_rng(6).normal(size=(2, 8, 8, 1)).astype(np.float32)
    converted = load_keras(tmp_path / "chain.keras")
    assert isinstance(converted, lrpcore.Sequential)
    np.testing.assert_allclose(converted.forward(x.transpose(0, 3, 1, 2)), chain.predict(x, verbose=0), **TOLERANCE)


def _residual_functional(keras, seed: int):
    """A functional model with a residual Add, a channel Concatenate and a flat Concatenate after Flatten."""
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    stem = layers.Conv2D(4, 3, padding="same", activation="relu", name="stem")(inputs)
    branch = layers.Conv2D(4, 3, padding="same", name="branch")(stem)
    branch = layers.BatchNormalization(name="bn")(branch)
    summed = layers.ReLU(name="after_add")(layers.Add(name="skip")([branch, stem]))
    joined = layers.Concatenate(name="channels")([summed, layers.Conv2D(2, 1, name="side")(stem)])
    pooled = layers.MaxPooling2D(2, name="pool")(joined)
    flat = layers.Flatten(name="flat")(pooled)
    wide = layers.Concatenate(name="features")([flat, layers.Flatten(name="flat_in")(layers.AveragePooling2D(
        4, name="coarse")(inputs))])
    outputs = layers.Dense(3, activation="softmax", name="out")(wide)
    model = keras.Model(inputs, outputs)
    randomise_keras(model, seed)
    return model


@pytest.mark.parametrize("suffix", ["h5", "keras"])
def test_functional_graph_with_add_and_concatenate_matches_keras_predict(keras, tmp_path, suffix):
    model = _residual_functional(keras, seed=11)
    model.save(tmp_path / f"residual.{suffix}")
    converted = load_keras(tmp_path / f"residual.{suffix}")
    assert isinstance(converted, lrpcore.Graph) and not converted.is_chain
    assert converted.node("skip").inputs == ("bn", "stem/relu")
    assert converted.node("channels").layer.axis == 1 and converted.node("features").layer.axis == 1
    x = np.random.default_rng(12).normal(size=(3, 8, 8, 3)).astype(np.float32)
    logits = converted.forward(x.transpose(0, 3, 1, 2))
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)          # the dropped final softmax
    np.testing.assert_allclose(probabilities, model.predict(x, verbose=0), **TOLERANCE)
    folded = lrpcore.canonize(converted)
    assert "bn" not in folded.names and folded.node("skip").inputs == ("branch", "stem/relu")
    explanation = lrpcore.explain(folded, x.transpose(0, 3, 1, 2), composite="epsilon_plus")
    assert np.isfinite(explanation.relevance).all()


def test_functional_models_that_share_layers_or_have_two_outputs_are_refused(keras, tmp_path):
    from keras import layers

    inputs = keras.Input((4,))
    shared = layers.Dense(4, name="shared")
    twice = keras.Model(inputs, layers.Dense(2)(shared(shared(inputs))))
    twice.save(tmp_path / "twice.keras")
    with pytest.raises(ModelFormatError, match=r"twice\.keras: Keras layer \d 'shared' \(Dense\) is called 2 times"):
        load_keras(tmp_path / "twice.keras")
    hidden = layers.Dense(3)(inputs)
    two = keras.Model(inputs, [layers.Dense(2)(hidden), layers.Dense(1)(hidden)])
    two.save(tmp_path / "two.keras")
    with pytest.raises(ModelFormatError, match="one input and one output"):
        load_keras(tmp_path / "two.keras")


@pytest.mark.parametrize("layer, message", [
    ("UpSampling2D()", r"Keras layer 2 'odd' \(UpSampling2D\): layer type 'UpSampling2D' is not supported"),
    ("Conv2D(2, 3, activation='softplus')", r"Keras layer 2 'odd' \(Conv2D\): activation 'softplus' is not "
                                            r"supported"),
    ("Conv2D(2, 2, padding='same')", r"'odd' \(Conv2D\): padding 'same' pads 1 cells along the height .*"
                                     r"0 before and 1 after"),
    ("AveragePooling2D(2, strides=1, padding='same')", r"'odd' \(AveragePooling2D\): padding 'same' pads 1 cells"),
    ("Conv2D(2, 3, dilation_rate=2)", r"dilation_rate \(2, 2\)"),
    ("PReLU()", r"'PReLU' is not supported"),
    ("ReLU(max_value=4.0)", r"'odd' \(ReLU\): ReLU with .*max_value.: 4.0.* is not supported"),
    ("Activation('softmax')", r"'odd' \(Activation\): activation 'softmax' is not supported \(only 'linear', "
                              r"'relu', .*and 'softmax' on the last layer\)"),
])
def test_unsupported_keras_layers_are_refused_naming_the_layer(keras, tmp_path, layer, message):
    from keras import layers

    odd = eval(f"layers.{layer}", {"layers": layers})
    odd.name = "odd"
    model = keras.Sequential([keras.Input((8, 8, 2)), layers.Conv2D(2, 1), odd, layers.Flatten(), layers.Dense(2)])
    model.save(tmp_path / "odd.h5")
    with pytest.raises(ModelFormatError, match=message):
        load_keras(tmp_path / "odd.h5")


def test_weights_file_without_architecture_or_with_a_wrong_one_is_refused(conv_net, keras, tmp_path):
    from keras import layers

    _, paths, _, _ = conv_net
    with pytest.raises(ModelFormatError, match=r"net\.weights\.h5: this weights\.h5 file holds weights only; "
                                               r"pass the architecture as config="):
        load_keras(paths["weights"])
    wider = keras.Sequential([keras.Input((12, 10, 3)), layers.Conv2D(7, 3, padding="same", name="conv_a")])
    with pytest.raises(ModelFormatError, match=r"Keras layer 1 'conv_a' \(Conv2D\): weight 'kernel' has shape "
                                               r"\(3, 3, 3, 6\), expected \(3, 3, 3, 7\)"):
        load_keras(paths["weights"], config=wider.to_json())


# --- hand-written Keras 2 files (no Keras needed) -------------------------------------------------
@pytest.fixture
def handmade():
    return keras2_example()


def test_keras2_full_model_file_matches_numpy_nhwc_reference(handmade, tmp_path):
    config, weights, x, expected = handmade
    write_keras2(tmp_path / "k2.h5", config, weights, full=True)
    converted = load_keras(tmp_path / "k2.h5")
    assert [type(layer) for layer in converted][:1] == [Conv2d] and isinstance(converted[2], MaxPool2d)
    assert str(converted.dtype) == "float64"      # float64 weights stay float64
    np.testing.assert_allclose(converted.forward(x.transpose(0, 3, 1, 2)), expected, rtol=1e-12, atol=1e-12)


def test_keras2_weights_only_file_needs_and_uses_the_config(handmade, tmp_path):
    config, weights, x, expected = handmade
    write_keras2(tmp_path / "k2w.h5", config, weights, full=False)
    with pytest.raises(ModelFormatError, match="holds weights only"):
        load_keras(tmp_path / "k2w.h5")
    converted = load_keras(tmp_path / "k2w.h5", config=config, dtype="float32")
    assert str(converted.dtype) == "float32"
    np.testing.assert_allclose(converted.forward(x.transpose(0, 3, 1, 2).astype(np.float32)), expected,
                               rtol=1e-4, atol=1e-4)


def test_flatten_order_is_converted_by_permuting_the_dense_columns(handmade, tmp_path):
    config, weights, _, _ = handmade
    write_keras2(tmp_path / "k2.h5", config, weights, full=True)
    dense = load_keras(tmp_path / "k2.h5")[-1]
    keras_kernel = weights["dense_1"][0][1]             # rows in Keras' (h, w, c) order, here (5, 4, 4)
    height, width, channels = 5, 4, 4
    for c, h, w in [(0, 0, 0), (1, 0, 0), (0, 0, 1), (3, 4, 3)]:
        lrpcore_column = c * height * width + h * width + w
        keras_row = (h * width + w) * channels + c
        assert np.array_equal(dense.weight[:, lrpcore_column], keras_kernel[keras_row])
    assert isinstance(dense, Dense) and isinstance(load_keras(tmp_path / "k2.h5")[3], Flatten)


def test_keras_weight_shape_mismatch_names_layer_and_shapes(handmade, tmp_path):
    config, weights, _, _ = handmade
    weights["dense_1"][0] = ("kernel", np.ones((81, 3)))
    write_keras2(tmp_path / "bad.h5", config, weights, full=True)
    with pytest.raises(ModelFormatError, match=r"bad\.h5: Keras layer 3 'dense_1' \(Dense\): weight 'kernel' has "
                                               r"shape \(81, 3\), expected \(80, 3\)"):
        load_keras(tmp_path / "bad.h5")


def test_keras_bad_files_are_refused(tmp_path, handmade):
    with pytest.raises(FileNotFoundError):
        load_keras(tmp_path / "absent.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ModelFormatError, match=r"text\.h5: not a readable HDF5 file"):
        load_keras(tmp_path / "text.h5")
    with h5py.File(tmp_path / "empty.h5", "w") as handle:
        handle.create_group("something")
    with pytest.raises(ModelFormatError, match=r"empty\.h5: not a Keras weight file"):
        load_keras(tmp_path / "empty.h5")
    config, weights, _, _ = handmade
    write_keras2(tmp_path / "k2.h5", config, weights, full=True)
    data = (tmp_path / "k2.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[:len(data) // 2])
    with pytest.raises(ModelFormatError, match=r"cut\.h5"):
        load_keras(tmp_path / "cut.h5")


def test_keras3_weights_without_layer_names_are_found_by_keras_path_names(handmade, tmp_path):
    """Keras 3 names groups by class (conv2d, dense, dense_1...); files without the ``name`` attribute still load."""
    config, weights, x, expected = handmade
    with h5py.File(tmp_path / "k3.weights.h5", "w") as handle:
        for path, arrays in (("conv2d", weights["conv2d_1"]), ("max_pooling2d", []), ("flatten", []),
                             ("dense", weights["dense_1"])):
            variables = handle.create_group(f"layers/{path}/vars")
            for number, (_, array) in enumerate(arrays):
                variables.create_dataset(str(number), data=array)
    converted = load_keras(tmp_path / "k3.weights.h5", config=config)
    np.testing.assert_allclose(converted.forward(x.transpose(0, 3, 1, 2)), expected, rtol=1e-12, atol=1e-12)


def test_keras_input_shape_argument_fills_in_a_config_without_one(handmade, tmp_path):
    config, weights, x, expected = handmade
    del config["config"]["layers"][0]["config"]["batch_input_shape"]
    write_keras2(tmp_path / "noshape.h5", config, weights, full=True)
    with pytest.raises(ModelFormatError, match=r"'conv2d_1' \(Conv2D\): the input shape is unknown .*"
                                               r"pass input_shape=\(H, W, C\)"):
        load_keras(tmp_path / "noshape.h5")
    converted = load_keras(tmp_path / "noshape.h5", input_shape=(7, 5, 3))
    assert converted.metadata.input_shape == (3, 7, 5)
    np.testing.assert_allclose(converted.forward(x.transpose(0, 3, 1, 2)), expected, rtol=1e-12, atol=1e-12)
