"""Models and file surgery shared by the model-file tests (test_io_*.py, test_cli_inspect_convert.py)."""
from __future__ import annotations

import json

import h5py
import numpy as np

from lrpcore import Graph, ModelMetadata, Sequential
from lrpcore.layers import (Add, AvgPool2d, BatchNorm1d, BatchNorm2d, Concat, Conv2d, Dense, Dropout, Flatten,
                            Identity, MaxPool2d, ReLU)


def every_layer_model(dtype: str = "float32", seed: int = 0) -> Sequential:
    """A small conv net holding every 2-D layer type, with non-trivial BatchNorm statistics and full metadata."""
    rng = np.random.default_rng(seed)

    def normal(*shape: int, scale: float = 0.5) -> np.ndarray:
        return (rng.normal(size=shape) * scale).astype(dtype)

    def positive(*shape: int) -> np.ndarray:
        return rng.uniform(0.5, 2.0, size=shape).astype(dtype)

    layers = [
        Conv2d(normal(4, 3, 3, 3), normal(4, scale=0.1), stride=1, padding=1),
        BatchNorm2d(normal(4), positive(4), positive(4), normal(4), eps=1e-3),
        ReLU(),
        MaxPool2d(2),
        Conv2d(normal(6, 4, 3, 3), normal(6, scale=0.1), stride=(2, 1), padding=(1, 0)),
        ReLU(),
        AvgPool2d((2, 1), stride=(1, 1), padding=(1, 0)),
        Flatten(),
        Dropout(0.25),
        Dense(normal(7, 36), normal(7, scale=0.1)),
        BatchNorm1d(normal(7), positive(7), positive(7), normal(7)),
        ReLU(),
        Dense(normal(3, 7), normal(3, scale=0.1)),
    ]
    metadata = ModelMetadata(input_shape=(3, 8, 8), value_range=(0.0, 255.0), mean=(120.5, 110.25, 100.125),
                             std=(60.0, 58.5, 57.75), class_names=("circle", "square", "triangle"),
                             name="every_layer", description="test model with every layer type; ünïcode ✓")
    return Sequential(layers, metadata)


def fixed_text(value):
    """A str (or a list / array of str) as a *fixed-length* UTF-8 HDF5 string, as lrpcore writes text.

    h5py writes a plain Python str as a variable-length string, which lrpcore's reader refuses
    (models/FORMAT.md); file surgery in the tests keeps to the format unless a test means otherwise.
    """
    if isinstance(value, str):
        encoded = value.encode("utf-8")
        return np.array(encoded, dtype=h5py.string_dtype("utf-8", max(1, len(encoded))))
    if isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.dtype == object):
        items = [item.decode("utf-8") if isinstance(item, bytes) else item for item in list(np.asarray(value, dtype=object).ravel())]
        if all(isinstance(item, str) for item in items):
            encoded = [item.encode("utf-8") for item in items]
            return np.array(encoded, dtype=h5py.string_dtype("utf-8", max([1] + [len(item) for item in encoded])))
    return value


def read_graph_attributes(path) -> tuple[list[str], list[list[str]]]:
    """A format-2 file's node names and each node's input names, from the attributes of ``/graph``."""
    with h5py.File(path, "r") as handle:
        attrs = handle["graph"].attrs
        names = [name.decode() for name in attrs["names"]]
        counts = [int(count) for count in attrs["input_counts"]]
        flat = [name.decode() for name in attrs["inputs"]]
    starts = np.cumsum([0] + counts)
    return names, [flat[starts[i]:starts[i + 1]] for i in range(len(names))]


def write_graph_attributes(path, names: list[str], inputs: list[list[str]], counts: list[int] | None = None) -> None:
    """Overwrite the attributes of ``/graph`` (fixed-length text); ``counts`` default to the inputs' lengths."""
    with h5py.File(path, "r+") as handle:
        attrs = handle["graph"].attrs
        attrs["names"] = fixed_text(list(names))
        attrs["input_counts"] = np.asarray(counts if counts is not None else [len(item) for item in inputs],
                                           dtype=np.int64)
        attrs["inputs"] = fixed_text([name for item in inputs for name in item])


def every_node_graph(dtype: str = "float32", seed: int = 0) -> Graph:
    """A small graph with every kind of join: a three-way ``Add`` (a residual block whose input fans out to
    three readers, one through an ``Identity``), two pools of one map joined by ``Concat``, BatchNorm."""
    rng = np.random.default_rng(seed)

    def normal(*shape: int, scale: float = 0.5) -> np.ndarray:
        return (rng.normal(size=shape) * scale).astype(dtype)

    nodes = [
        ("stem.conv", Conv2d(normal(4, 3, 3, 3), normal(4, scale=0.1), padding=1), ["input"]),
        ("stem.bn", BatchNorm2d(normal(4), rng.uniform(0.5, 2, 4).astype(dtype), rng.uniform(0.5, 2, 4).astype(dtype),
                                normal(4)), ["stem.conv"]),
        ("stem.relu", ReLU(), ["stem.bn"]),
        ("block.conv", Conv2d(normal(4, 4, 3, 3), normal(4, scale=0.1), padding=1), ["stem.relu"]),
        ("block.skip", Identity(), ["stem.relu"]),
        ("block.add", Add(), ["block.conv", "block.skip", "stem.relu"]),
        ("block.relu", ReLU(), ["block.add"]),
        ("max", MaxPool2d(2), ["block.relu"]),
        ("mean", AvgPool2d(2), ["block.relu"]),
        ("join", Concat(1), ["max", "mean"]),
        ("flatten", Flatten(), ["join"]),
        ("fc", Dense(normal(3, 128), normal(3, scale=0.1)), ["flatten"]),
    ]
    metadata = ModelMetadata(input_shape=(3, 8, 8), value_range=(0.0, 1.0), mean=(0.5, 0.5, 0.5),
                             std=(0.25, 0.25, 0.25), class_names=("a", "b", "c"), name="every_node",
                             description="test graph: Add with fan-out, Identity, Concat of two pools")
    return Graph(nodes, metadata)


def set_attribute(path, location: str, name: str, value) -> None:
    """Overwrite (or add) attribute ``name`` of the object at ``location`` in the HDF5 file ``path``
    (text as fixed-length strings, see :func:`fixed_text`)."""
    with h5py.File(path, "r+") as handle:
        handle[location].attrs[name] = fixed_text(value)


def delete_attribute(path, location: str, name: str) -> None:
    with h5py.File(path, "r+") as handle:
        del handle[location].attrs[name]


def create_checksummed(group, name: str, data: np.ndarray):
    """A dataset as lrpcore writes arrays: with a Fletcher-32 checksum when it has elements and axes."""
    data = np.asarray(data)
    if data.size and data.ndim:
        return group.create_dataset(name, data=data, chunks=True, fletcher32=True)
    return group.create_dataset(name, data=data)


def replace_dataset(path, location: str, data: np.ndarray) -> None:
    """Replace the dataset at ``location`` by ``data`` (any shape or dtype), checksummed as lrpcore does."""
    with h5py.File(path, "r+") as handle:
        del handle[location]
        create_checksummed(handle, location, data)


# --- Keras 2 style files, written without Keras --------------------------------------------------
def _keras2_config(layers: list[tuple[str, dict]]) -> dict:
    return {"class_name": "Sequential", "config": {"name": "handmade", "layers": [
        {"class_name": kind, "config": config} for kind, config in layers]}}


def write_keras2(path, config: dict, weights: dict[str, list[tuple[str, np.ndarray]]], full: bool) -> None:
    """A file laid out as Keras 2's ``model.save`` (full) or ``save_weights`` (weights only) writes it."""
    with h5py.File(path, "w") as handle:
        root = handle.create_group("model_weights") if full else handle
        if full:
            handle.attrs["model_config"] = json.dumps(config)
        names = [layer["config"]["name"] for layer in config["config"]["layers"]]
        root.attrs["layer_names"] = np.array([name.encode() for name in names])
        for name in names:
            group = root.create_group(name)
            arrays = weights.get(name, [])
            group.attrs["weight_names"] = np.array([f"{name}/{short}:0".encode() for short, _ in arrays])
            for short, array in arrays:
                group.create_dataset(f"{name}/{short}:0", data=array)


def nhwc_reference(x, kernel, conv_bias, dense_kernel, dense_bias):
    """Keras' computation in NumPy: valid conv (NHWC, kernel kh·kw·in·out), ReLU, NHWC flatten, dense."""
    windows = np.lib.stride_tricks.sliding_window_view(x, kernel.shape[:2], axis=(1, 2))  # N,Ho,Wo,C,kh,kw
    conv = np.einsum("nhwcij,ijco->nhwo", windows, kernel) + conv_bias
    flat = np.maximum(conv, 0).reshape(len(x), -1)
    return flat @ dense_kernel + dense_bias


def keras2_example(seed: int = 7):
    """(config, weights, NHWC input, expected output) of a Keras 2 model: conv, ReLU, pool, flatten, dense."""
    rng = np.random.default_rng(seed)
    kernel, conv_bias = rng.normal(size=(3, 2, 3, 4)), rng.normal(size=4)
    dense_kernel, dense_bias = rng.normal(size=(5 * 4 * 4, 3)), rng.normal(size=3)
    config = _keras2_config([
        ("Conv2D", {"name": "conv2d_1", "filters": 4, "kernel_size": [3, 2], "strides": [1, 1],
                    "padding": "valid", "activation": "relu", "use_bias": True, "data_format": "channels_last",
                    "batch_input_shape": [None, 7, 5, 3]}),
        ("MaxPooling2D", {"name": "pool", "pool_size": [1, 1], "strides": [1, 1], "padding": "valid"}),
        ("Flatten", {"name": "flatten_1"}),
        ("Dense", {"name": "dense_1", "units": 3, "activation": "linear", "use_bias": True}),
    ])
    weights = {"conv2d_1": [("kernel", kernel), ("bias", conv_bias)],
               "dense_1": [("kernel", dense_kernel), ("bias", dense_bias)]}
    x = rng.normal(size=(4, 7, 5, 3))
    return config, weights, x, nhwc_reference(x, kernel, conv_bias, dense_kernel, dense_bias)


def randomise_keras(model, seed: int) -> None:
    """Non-trivial biases and BatchNorm statistics in a Keras model (Keras initialises them to 0/1); arrays
    of more than one axis after the first (a separable convolution's second kernel) are kept."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if type(layer).__name__ == "BatchNormalization":
            size = weights[0].shape
            layer.set_weights([rng.uniform(0.5, 1.5, size), rng.normal(0, 0.2, size), rng.normal(0, 0.3, size),
                               rng.uniform(0.5, 2.0, size)])
        else:
            layer.set_weights([weights[0]] + [w if w.ndim > 1 else rng.normal(0, 0.1, w.shape) for w in weights[1:]])
