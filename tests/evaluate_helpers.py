"""Small hand-built models and counting wrappers shared by the tests of ``lrpcore.evaluate``."""
from __future__ import annotations

import numpy as np

import lrpcore
from lrpcore import layers


def linear_model(weight: np.ndarray, value_range=(0.0, 1.0), mean=None, std=None) -> lrpcore.Sequential:
    """f(x) = W · flatten(x): one Dense layer without bias, so LRP-0 relevance is exactly w ⊙ x."""
    weight = np.asarray(weight, dtype=np.float64)
    classes = weight.shape[0]
    dense = layers.Dense(weight.reshape(classes, -1), np.zeros(classes))
    metadata = lrpcore.ModelMetadata(input_shape=tuple(weight.shape[1:]), value_range=value_range, mean=mean, std=std)
    return lrpcore.Sequential([layers.Flatten(), dense], metadata)


def tiny_cnn(size: int = 16, classes: int = 3, seed: int = 0, channels: int = 3) -> lrpcore.Sequential:
    """Conv(3→4, 3×3) – ReLU – AvgPool(2) – Flatten – Dense: a small convolutional model, float32."""
    rng = np.random.default_rng(seed)
    conv = layers.Conv2d((rng.normal(size=(4, channels, 3, 3)) * 0.3).astype(np.float32),
                         (rng.normal(size=4) * 0.05).astype(np.float32), padding=1)
    dense = layers.Dense((rng.normal(size=(classes, 4 * (size // 2) ** 2)) * 0.1).astype(np.float32),
                         np.zeros(classes, dtype=np.float32))
    metadata = lrpcore.ModelMetadata(input_shape=(channels, size, size))
    return lrpcore.Sequential([conv, layers.ReLU(), layers.AvgPool2d(2), layers.Flatten(), dense], metadata)


class CountingModel:
    """Wraps a model as a callable that counts forward calls and records batch sizes."""

    def __init__(self, model: lrpcore.Sequential):
        self.model = model
        self.metadata = model.metadata
        self.batch_sizes: list[int] = []

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.batch_sizes.append(len(batch))
        return self.model.forward(batch.astype(np.float32))

    @property
    def calls(self) -> int:
        return len(self.batch_sizes)
