"""Small networks shared by the tests (import as ``from _networks import relu_network``)."""
from __future__ import annotations

import numpy as np


def relu_network(seed: int = 0, bias: bool = True, dtype=np.float64):
    """A small conv net with every layer kind: conv (stride, padding), max/avg pooling, dense."""
    from lrpcore import ModelMetadata, Sequential
    from lrpcore.layers import AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d, ReLU

    rng = np.random.default_rng(seed)

    def maybe(shape, scale=0.1):
        return (rng.normal(size=shape) * scale).astype(dtype) if bias else np.zeros(shape, dtype)

    layers = [
        Conv2d(rng.normal(size=(4, 3, 3, 3)).astype(dtype) * 0.5, maybe(4), padding=1),
        ReLU(),
        MaxPool2d(2),
        Conv2d(rng.normal(size=(6, 4, 3, 3)).astype(dtype) * 0.4, maybe(6), stride=2, padding=1),
        ReLU(),
        AvgPool2d(2),
        Flatten(),
        Dense(rng.normal(size=(8, 6)).astype(dtype) * 0.5, maybe(8)),
        ReLU(),
        Dense(rng.normal(size=(5, 8)).astype(dtype) * 0.5, maybe(5)),
    ]
    return Sequential(layers, ModelMetadata(input_shape=(3, 8, 8), name="relu_network"))


def sequence_network(seed: int = 0, bias: bool = True):
    """A small 1-D conv net (one-hot DNA-like input (4, 20)) with every 1-D layer kind."""
    import lrpcore
    from lrpcore.layers import Dense, Flatten, ReLU
    from lrpcore.layers1d import AvgPool1d, Conv1d, MaxPool1d

    rng = np.random.default_rng(seed)

    def maybe(size):
        return rng.normal(size=size) * 0.1 if bias else np.zeros(size)

    layers = [Conv1d(rng.normal(size=(6, 4, 5)) * 0.5, maybe(6), padding=2), ReLU(), MaxPool1d(2),
              Conv1d(rng.normal(size=(5, 6, 3)) * 0.5, maybe(5), padding=1), ReLU(), AvgPool1d(2),
              Flatten(), Dense(rng.normal(size=(8, 25)) * 0.5, maybe(8)), ReLU(),
              Dense(rng.normal(size=(3, 8)), maybe(3))]
    return lrpcore.Sequential(layers, lrpcore.ModelMetadata(input_shape=(4, 20), class_names=("a", "b", "c")))


def residual_network(seed: int = 0, bias: bool = True, dtype=np.float64):
    """A small graph with a residual block (Add, a fan-out), an average pool and a two-branch Concat."""
    from lrpcore import Graph, ModelMetadata
    from lrpcore.layers import Add, AvgPool2d, Concat, Conv2d, Dense, Flatten, MaxPool2d, ReLU

    rng = np.random.default_rng(seed)

    def weight(*shape, scale=0.4):
        return (rng.normal(size=shape) * scale).astype(dtype)

    def maybe(size):
        return (rng.normal(size=size) * 0.1).astype(dtype) if bias else np.zeros(size, dtype)

    nodes = [
        ("stem", Conv2d(weight(4, 3, 3, 3), maybe(4), padding=1), "input"),
        ("stem.relu", ReLU(), "stem"),
        ("block.conv1", Conv2d(weight(4, 4, 3, 3), maybe(4), padding=1), "stem.relu"),
        ("block.relu1", ReLU(), "block.conv1"),
        ("block.conv2", Conv2d(weight(4, 4, 3, 3), maybe(4), padding=1), "block.relu1"),
        ("block.add", Add(), ("block.conv2", "stem.relu")),
        ("block.relu2", ReLU(), "block.add"),
        ("pool", MaxPool2d(2), "block.relu2"),
        ("branch_a", Conv2d(weight(2, 4, 1, 1), maybe(2)), "pool"),
        ("branch_b", Conv2d(weight(3, 4, 3, 3), maybe(3), padding=1), "pool"),
        ("cat", Concat(axis=1), ("branch_a", "branch_b")),
        ("cat.relu", ReLU(), "cat"),
        ("avg", AvgPool2d(2), "cat.relu"),
        ("flatten", Flatten(), "avg"),
        ("fc", Dense(weight(3, 5 * 2 * 2), maybe(3)), "flatten"),
    ]
    return Graph(nodes, ModelMetadata(input_shape=(3, 8, 8), name="residual_network"))
