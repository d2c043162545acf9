"""lrpcore's native HDF5 model format: exact round trips, safe writing, and clear errors for bad files."""
from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

import lrpcore
from lrpcore import ModelMetadata, Sequential
from lrpcore.errors import ModelFormatError
from lrpcore.io import hdf5, registry
from lrpcore.layers import Dense, Flatten, Layer, ReLU

from io_helpers import (delete_attribute, every_layer_model, every_node_graph, read_graph_attributes, replace_dataset,
                        set_attribute, write_graph_attributes)


def assert_models_identical(saved: Sequential, loaded: Sequential) -> None:
    assert len(saved) == len(loaded)
    for index, (a, b) in enumerate(zip(saved.layers, loaded.layers)):
        assert type(a) is type(b), index
        assert a.hyperparameters() == b.hyperparameters(), index
        assert list(a.parameters()) == list(b.parameters()), index
        for name, value in a.parameters().items():
            other = b.parameters()[name]
            assert other.dtype == value.dtype and other.shape == value.shape, (index, name)
            assert other.tobytes() == value.tobytes(), (index, name)  # bit for bit
    assert loaded.metadata == saved.metadata


@pytest.fixture
def saved_file(tmp_path):
    path = tmp_path / "model.h5"
    lrpcore.save(every_layer_model(), path)
    return path


# --- round trips ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_keeps_arrays_layers_metadata_and_dtype_exactly(tmp_path, dtype):
    model = every_layer_model(dtype)
    path = tmp_path / "model.h5"
    lrpcore.save(model, path)
    loaded = lrpcore.load(path)
    assert_models_identical(model, loaded)
    assert str(loaded.dtype) == dtype
    x = np.random.default_rng(1).uniform(0, 255, size=(2, 3, 8, 8)).astype(dtype)
    assert np.array_equal(model.forward(x), loaded.forward(x))


def test_round_trip_keeps_absent_metadata_absent(tmp_path):
    model = Sequential([Flatten(), Dense(np.ones((2, 4), np.float32))], ModelMetadata())
    lrpcore.save(model, tmp_path / "m.h5")
    assert lrpcore.load(tmp_path / "m.h5").metadata == ModelMetadata()


def test_round_trip_of_a_model_without_parameters(tmp_path):
    model = Sequential([ReLU(), Flatten()], ModelMetadata(input_shape=(2, 3)))
    lrpcore.save(model, tmp_path / "m.h5")
    loaded = lrpcore.load(tmp_path / "m.h5")
    assert [type(layer) for layer in loaded] == [ReLU, Flatten] and loaded.metadata == model.metadata


def test_round_trip_of_one_dimensional_layers(tmp_path):
    layers1d = pytest.importorskip("lrpcore.layers1d", reason="lrpcore.layers1d (Conv1d...) is not present")
    rng = np.random.default_rng(0)
    model = Sequential([
        layers1d.Conv1d(rng.normal(size=(5, 4, 3)).astype(np.float32), rng.normal(size=5).astype(np.float32),
                        stride=2, padding=1),
        ReLU(), layers1d.MaxPool1d(2), layers1d.AvgPool1d(3, stride=1, padding=1), Flatten(),
        Dense(rng.normal(size=(2, 5 * 6)).astype(np.float32)),
    ], ModelMetadata(input_shape=(4, 24)))
    lrpcore.save(model, tmp_path / "seq.h5")
    assert_models_identical(model, lrpcore.load(tmp_path / "seq.h5"))


def test_load_casts_to_the_requested_dtype(saved_file):
    loaded = lrpcore.load(saved_file, dtype="float64")
    original = every_layer_model("float32")
    assert str(loaded.dtype) == "float64"
    assert np.array_equal(loaded[0].weight, original[0].weight.astype(np.float64))
    with pytest.raises(ValueError, match="dtype"):
        lrpcore.load(saved_file, dtype="int8")


def test_load_moves_the_model_to_the_requested_backend(saved_file):
    pytest.importorskip("array_api_strict")
    loaded = lrpcore.load(saved_file, backend="array_api_strict")
    assert "array_api_strict" in type(loaded[0].weight).__module__


def test_registered_custom_layer_round_trips(tmp_path, monkeypatch):
    class Shift(Layer):
        """y = x + offset·scale, a custom layer with one array and two settings."""

        def __init__(self, scale, offset=0.0, label="shift"):
            self.scale, self.offset, self.label = scale, float(offset), label

        def forward(self, x):
            return x + self.offset * self.scale

        def parameters(self):
            return {"scale": self.scale}

        def hyperparameters(self):
            return {"offset": self.offset, "label": self.label}

    model = Sequential([Shift(np.arange(3, dtype=np.float32), offset=0.5, label="ß")])
    with pytest.raises(ModelFormatError, match="register_layer"):
        lrpcore.save(model, tmp_path / "custom.h5")
    assert not (tmp_path / "custom.h5").exists()
    monkeypatch.setitem(registry.LAYER_TYPES, "Shift", Shift)
    lrpcore.save(model, tmp_path / "custom.h5")
    assert_models_identical(model, lrpcore.load(tmp_path / "custom.h5"))


# --- writing safely -------------------------------------------------------------------------------
def test_save_refuses_to_replace_an_existing_file_unless_asked(tmp_path):
    path = tmp_path / "model.h5"
    path.write_bytes(b"user data")
    with pytest.raises(FileExistsError, match="overwrite"):
        lrpcore.save(every_layer_model(), path)
    assert path.read_bytes() == b"user data"
    lrpcore.save(every_layer_model(), path, overwrite=True)
    assert_models_identical(every_layer_model(), lrpcore.load(path))
    assert os.listdir(tmp_path) == ["model.h5"]


def test_save_failing_midway_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "model.h5"
    path.write_bytes(b"previous version")

    def crash(handle, *args):
        handle.attrs["format"] = "half written"
        raise RuntimeError("disk full")

    monkeypatch.setattr(hdf5, "_write", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        lrpcore.save(every_layer_model(), path, overwrite=True)
    with pytest.raises(RuntimeError, match="disk full"):
        lrpcore.save(every_layer_model(), tmp_path / "new.h5")
    assert path.read_bytes() == b"previous version"
    assert os.listdir(tmp_path) == ["model.h5"]


def test_save_refuses_a_model_whose_file_could_not_be_loaded(tmp_path):
    model = every_layer_model()
    model.layers[0].weight[0, 0, 0, 0] = np.nan
    with pytest.raises(ModelFormatError, match=r"layer 0 .*weight.*NaN"):
        lrpcore.save(model, tmp_path / "nan.h5")
    mixed = every_layer_model()
    mixed.layers[-1] = mixed.layers[-1].astype("float64")
    with pytest.raises(ModelFormatError, match=r"layer 12 .*float64.*float32"):
        lrpcore.save(mixed, tmp_path / "mixed.h5")
    assert os.listdir(tmp_path) == []


# --- bad files ------------------------------------------------------------------------------------
def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        lrpcore.load(tmp_path / "missing.h5")


def test_file_that_is_not_hdf5_is_refused_naming_it(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("just some text\n" * 20)
    with pytest.raises(ModelFormatError, match=r"notes\.h5.*not a readable HDF5"):
        lrpcore.load(path)


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.9, 0.99])
def test_truncated_file_is_refused(saved_file, fraction):
    data = saved_file.read_bytes()
    saved_file.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(ModelFormatError, match=str(saved_file.name)):
        lrpcore.load(saved_file)


def test_unknown_layer_type_names_the_layer_and_the_known_types(saved_file):
    set_attribute(saved_file, "layers/4", "type", "Conv3d")
    with pytest.raises(ModelFormatError,
                       match=r"model\.h5: layer 4: unknown layer type 'Conv3d'; known types .*Conv2d"):
        lrpcore.load(saved_file)


def test_weight_shape_not_matching_the_layers_names_layer_and_shapes(saved_file):
    replace_dataset(saved_file, "layers/9/weight", np.ones((7, 40), np.float32))
    with pytest.raises(ModelFormatError, match=r"model\.h5: layer 9 \(Dense\): attribute 'in_features' is 36, "
                                               r"but the layer built from the file's arrays has 40"):
        lrpcore.load(saved_file)
    set_attribute(saved_file, "layers/9", "in_features", np.int64(40))  # consistent layer, wrong for the net
    with pytest.raises(ModelFormatError) as error:
        lrpcore.load(saved_file)
    message = str(error.value)
    assert "model.h5" in message and "layer 9" in message and "(N, 40)" in message and "(1, 36)" in message


def test_bias_of_wrong_length_names_layer_and_shapes(saved_file):
    replace_dataset(saved_file, "layers/0/bias", np.ones(5, np.float32))
    with pytest.raises(ModelFormatError, match=r"layer 0 \(Conv2d\).*bias must be \(4,\), got shape \(5,\)"):
        lrpcore.load(saved_file)


def test_hyperparameter_contradicting_the_arrays_is_refused(saved_file):
    set_attribute(saved_file, "layers/9", "in_features", np.int64(40))
    with pytest.raises(ModelFormatError, match=r"layer 9 \(Dense\): attribute 'in_features' is 40.*has 36"):
        lrpcore.load(saved_file)


def test_missing_and_unexpected_parts_are_named(saved_file, tmp_path):
    delete_attribute(saved_file, "layers/4", "stride")
    with pytest.raises(ModelFormatError, match=r"layer 4 \(Conv2d\): attribute 'stride' is missing"):
        lrpcore.load(saved_file)
    other = tmp_path / "other.h5"
    lrpcore.save(every_layer_model(), other)
    with h5py.File(other, "r+") as handle:
        del handle["layers/12/bias"]
    with pytest.raises(ModelFormatError, match=r"layer 12 \(Dense\): datasets \['weight'\] found.*missing \['bias'\]"):
        lrpcore.load(other)


def test_wrong_dataset_dtype_is_refused(saved_file):
    replace_dataset(saved_file, "layers/0/bias", np.ones(4, np.float64))
    with pytest.raises(ModelFormatError, match=r"layer 0 \(Conv2d\) dataset 'bias': dtype is float64, .*float32"):
        lrpcore.load(saved_file)
    replace_dataset(saved_file, "layers/0/bias", np.ones(4, np.int32))
    with pytest.raises(ModelFormatError, match=r"dtype is int32, expected float32 or float64"):
        lrpcore.load(saved_file)


def test_non_finite_weights_are_refused(saved_file):
    weights = np.ones((7, 36), np.float32)
    weights[3, 5] = np.inf
    replace_dataset(saved_file, "layers/9/weight", weights)
    with pytest.raises(ModelFormatError, match=r"layer 9 \(Dense\) dataset 'weight'.*NaN or inf"):
        lrpcore.load(saved_file)


@pytest.mark.parametrize("version, expected", [(3, "newer lrpcore"), (0, "versions 1 to 2")])
def test_wrong_format_version_is_refused(saved_file, version, expected):
    set_attribute(saved_file, "/", "format_version", np.int64(version))
    with pytest.raises(ModelFormatError, match=rf"format_version is {version}.*{expected}"):
        lrpcore.load(saved_file)


def test_keras_or_foreign_hdf5_is_refused_with_a_pointer_to_the_converter(tmp_path):
    path = tmp_path / "keras.h5"
    with h5py.File(path, "w") as handle:
        handle.create_group("model_weights")
    with pytest.raises(ModelFormatError, match="not an lrpcore model file.*load_keras"):
        lrpcore.load(path)


def test_input_shape_not_matching_the_layers_is_refused(saved_file):
    set_attribute(saved_file, "metadata", "input_shape", np.array([3, 10, 10]))
    with pytest.raises(ModelFormatError) as error:
        lrpcore.load(saved_file)
    message = str(error.value)
    assert "input shape (3, 10, 10)" in message and "layer 9" in message and "Dense(36→7)" in message


def test_class_names_not_matching_the_outputs_are_refused(saved_file):
    set_attribute(saved_file, "metadata", "class_names", np.array(["a", "b"], dtype=h5py.string_dtype()))
    with pytest.raises(ModelFormatError, match=r"2 class names, but the last layer \(Dense\(7→3\)\) gives .*\(3,\)"):
        lrpcore.load(saved_file)


@pytest.mark.parametrize("name, value, expected", [
    ("std", np.array([1.0, 0.0, 1.0]), "std must be positive"),
    ("mean", np.array([1.0, 2.0]), "mean has 2 values, expected 1 or 3"),
    ("value_range", np.array([1.0, 0.0]), "low < high"),
    ("value_range", np.array([0.0]), "value_range must be 2 numbers"),
    ("name", np.int64(3), "'name' must be a string"),
])
def test_invalid_metadata_is_refused(saved_file, name, value, expected):
    set_attribute(saved_file, "metadata", name, value)
    with pytest.raises(ModelFormatError, match=expected):
        lrpcore.load(saved_file)


def test_layer_groups_must_match_the_count(saved_file):
    set_attribute(saved_file, "layers", "count", np.int64(14))
    with pytest.raises(ModelFormatError, match=r"count is 14, so groups 0\.\.13 are expected"):
        lrpcore.load(saved_file)


def test_io_package_exports_the_torch_bridge_lazily():
    import importlib

    import lrpcore.io

    assert {"load", "save", "load_keras", "from_torch"} <= set(lrpcore.io.__all__)
    assert lrpcore.io.from_torch is importlib.import_module("lrpcore.io.torch").from_torch
    with pytest.raises(AttributeError, match="no attribute 'from_tensorflow'"):
        lrpcore.io.from_tensorflow  # noqa: B018


# --- format version 2: graphs -------------------------------------------------------------------------
@pytest.fixture
def graph_file(tmp_path):
    path = tmp_path / "graph.h5"
    lrpcore.save(every_node_graph(), path)
    return path


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_graph_round_trip_keeps_names_inputs_arrays_and_outputs(tmp_path, dtype):
    graph = every_node_graph(dtype)
    path = tmp_path / "graph.h5"
    lrpcore.save(graph, path)
    loaded = lrpcore.load(path)
    assert type(loaded) is lrpcore.Graph
    assert [(node.name, node.inputs) for node in loaded.nodes] == [(node.name, node.inputs) for node in graph.nodes]
    assert_models_identical(graph, loaded)
    x = np.random.default_rng(2).uniform(0, 1, size=(2, 3, 8, 8)).astype(dtype)
    assert np.array_equal(graph.forward(x), loaded.forward(x))
    with h5py.File(path, "r") as handle:
        assert int(handle.attrs["format_version"]) == 2
        assert [name.decode() for name in handle["graph"].attrs["names"]] == graph.names
        assert list(handle["graph"].attrs["input_counts"]) == [len(node.inputs) for node in graph.nodes]


def test_chains_are_still_written_as_version_1_without_a_graph(saved_file):
    with h5py.File(saved_file, "r") as handle:
        assert int(handle.attrs["format_version"]) == 1 and "graph" not in handle
    assert type(lrpcore.load(saved_file)) is Sequential


def test_a_resnet_round_trips_through_version_2(tmp_path):
    from lrpcore.models import resnet18

    model = lrpcore.canonize(resnet18(input_size=32, num_classes=4, seed=3))
    lrpcore.save(model, tmp_path / "resnet.h5")
    loaded = lrpcore.load(tmp_path / "resnet.h5")
    assert loaded.names == model.names and "layer2.0.downsample.0" in loaded.names
    x = np.random.default_rng(0).uniform(size=(1, 3, 32, 32)).astype(np.float32)
    assert np.array_equal(loaded.forward(x), model.forward(x))


def test_version_1_file_marked_as_version_2_is_refused(saved_file):
    set_attribute(saved_file, "/", "format_version", np.int64(2))
    with pytest.raises(ModelFormatError, match=r"model.h5: graph: group 'graph' is missing"):
        lrpcore.load(saved_file)


def test_graph_group_in_a_version_1_file_is_refused(graph_file):
    set_attribute(graph_file, "/", "format_version", np.int64(1))
    with pytest.raises(ModelFormatError, match=r"root: unexpected entries \['graph'\]"):
        lrpcore.load(graph_file)


@pytest.mark.parametrize("damage, expected", [
    ("cycle", "cycle through the nodes"),
    ("self loop", "cycle through the nodes"),
    ("missing input", "reads 'nowhere', which is neither the graph input"),
    ("dangling node", r"not read by any node"),
    ("duplicate name", "two nodes are named 'block.conv'"),
    ("wrong arity", r"needs at least two inputs"),
])
def test_malformed_graphs_are_refused_naming_the_file(graph_file, damage, expected):
    names, inputs = read_graph_attributes(graph_file)
    if damage == "cycle":                 # the stem's convolution reads the block's output
        inputs[names.index("stem.conv")] = ["block.relu"]
    elif damage == "self loop":
        inputs[names.index("block.relu")] = ["block.relu"]
    elif damage == "missing input":
        inputs[names.index("fc")] = ["nowhere"]
    elif damage == "dangling node":       # 'mean' is computed but nobody reads it
        inputs[names.index("join")] = ["max", "max"]
    elif damage == "duplicate name":
        names[names.index("block.skip")] = "block.conv"
    else:
        inputs[names.index("block.add")] = ["block.conv"]
    write_graph_attributes(graph_file, names, inputs)
    with pytest.raises(ModelFormatError, match=rf"graph.h5: graph: .*{expected}"):
        lrpcore.load(graph_file)


@pytest.mark.parametrize("name, value, expected", [
    ("input_counts", np.array([1] * 11 + [0], dtype=np.int64), "must be ≥ 1 and add up"),
    ("input_counts", np.array([1] * 12, dtype=np.int64), "must be ≥ 1 and add up to the 15"),
    ("names", np.array([b"a", b"b"]), "12 layers, but 2 names"),
    ("inputs", np.arange(15), "'inputs' must hold str values"),
    ("input_name", np.int64(1), "'input_name' must be a string"),
])
def test_inconsistent_graph_attributes_are_named(graph_file, name, value, expected):
    set_attribute(graph_file, "graph", name, value)
    with pytest.raises(ModelFormatError, match=rf"graph.h5: graph: .*{expected}"):
        lrpcore.load(graph_file)


def test_missing_or_extra_graph_attributes_are_named(graph_file):
    delete_attribute(graph_file, "graph", "input_name")
    set_attribute(graph_file, "graph", "colour", np.int64(1))
    with pytest.raises(ModelFormatError, match=r"\['input_name'\] are missing; unexpected attributes \['colour'\]"):
        lrpcore.load(graph_file)
