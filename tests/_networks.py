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
