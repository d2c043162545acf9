"""Shared pieces of the training scripts ``tools/train_digits.py`` and ``tools/train_shapes.py``.

The shipped models under ``models/`` are trained with PyTorch (CPU) and converted to
lrpcore with :func:`lrpcore.io.from_torch`. Everything here is set up so that the same
command on the same machine kind reproduces the shipped file: fixed seeds for the data
and for PyTorch, ``torch.use_deterministic_algorithms(True)``, a fixed thread count and a
hand-written shuffling loop driven by an explicit ``torch.Generator``.

Not part of the ``lrpcore`` package: PyTorch is only needed to *re*-train the models.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

REPOSITORY = Path(__file__).resolve().parents[1]
if str(REPOSITORY) not in sys.path:  # run as `python tools/train_*.py` from a checkout
    sys.path.insert(0, str(REPOSITORY))

#: Thread count used for training; results are bit-reproducible for a fixed count.
TRAINING_THREADS = 2

# Idle OpenMP threads sleep instead of spinning: on a busy 2-core machine spinning threads
# triple the wall time. Scheduling only, results are unchanged. Must precede `import torch`.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def configure_torch(seed: int, threads: int = TRAINING_THREADS) -> Any:
    """Import torch, make it deterministic and seed it; return the module."""
    import torch

    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    return torch


@dataclasses.dataclass
class TrainingSettings:
    """Optimiser settings of one training run (Adam, cross-entropy, mini-batches)."""

    epochs: int
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    #: From this epoch on (0-based) the learning rate is divided by 10; None keeps it constant.
    decay_epoch: int | None = None


def train_classifier(network: Any, inputs: np.ndarray, labels: np.ndarray, settings: TrainingSettings,
                     log: bool = True) -> list[float]:
    """Train ``network`` (a torch module) with Adam on cross-entropy; return the mean loss per epoch.

    ``inputs`` are the already preprocessed model inputs. Mini-batches are drawn by a
    permutation from a ``torch.Generator`` seeded with ``settings.seed``, so the run is
    deterministic.
    """
    import torch

    generator = torch.Generator().manual_seed(settings.seed)
    optimiser = torch.optim.Adam(network.parameters(), lr=settings.learning_rate,
                                 weight_decay=settings.weight_decay)
    input_tensor = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
    label_tensor = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    count = input_tensor.shape[0]
    losses = []
    start = time.perf_counter()
    for epoch in range(settings.epochs):
        if settings.decay_epoch is not None and epoch == settings.decay_epoch:
            for group in optimiser.param_groups:
                group["lr"] = settings.learning_rate / 10
        network.train()
        order = torch.randperm(count, generator=generator)
        total = 0.0
        for begin in range(0, count, settings.batch_size):
            batch = order[begin:begin + settings.batch_size]
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(network(input_tensor[batch]), label_tensor[batch])
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(batch)
        losses.append(total / count)
        if log:
            print(f"  epoch {epoch + 1:2d}/{settings.epochs}: loss {losses[-1]:.4f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    network.eval()
    return losses


def torch_accuracy(network: Any, inputs: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of ``inputs`` (preprocessed) the torch ``network`` classifies as ``labels``."""
    import torch

    network.eval()
    with torch.no_grad():
        logits = network(torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32)))
    return float((logits.argmax(dim=1).numpy() == np.asarray(labels)).mean())


def lrpcore_accuracy(model: Any, raw_inputs: np.ndarray, labels: np.ndarray, batch_size: int = 100) -> float:
    """Fraction of ``raw_inputs`` (in the model's value range) an lrpcore model classifies as ``labels``.

    Applies ``model.metadata.preprocess`` first, as every user of a shipped model must.
    """
    correct = 0
    for begin in range(0, len(labels), batch_size):
        batch = model.metadata.preprocess(np.asarray(raw_inputs[begin:begin + batch_size], dtype=np.float32))
        logits = model.forward(batch)
        correct += int((np.argmax(np.asarray(logits), axis=1) == labels[begin:begin + batch_size]).sum())
    return correct / len(labels)


def channel_statistics(images: np.ndarray, decimals: int = 4) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of NCHW ``images``, rounded to ``decimals``.

    Rounding keeps the stored metadata short and identical across machines whose
    float summation order differs in the last bits.
    """
    mean = images.mean(axis=(0, 2, 3), dtype=np.float64)
    std = images.std(axis=(0, 2, 3), dtype=np.float64)
    return (tuple(round(float(value), decimals) for value in mean),
            tuple(round(float(value), decimals) for value in std))


def normalise(images: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """(images − mean) / std per channel, float32 — the same map as ``ModelMetadata.preprocess``."""
    mean_array = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    std_array = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
    return ((images - mean_array) / std_array).astype(np.float32)


def convert(network: Any, metadata: Any) -> Any:
    """Convert the trained torch ``network`` to an lrpcore ``Sequential`` carrying ``metadata``."""
    from lrpcore.io import from_torch

    network.eval()
    return from_torch(network, input_shape=metadata.input_shape, metadata=metadata)


def save_model(model: Any, path: Path, overwrite: bool) -> None:
    """Save ``model`` with :func:`lrpcore.save`; refuse to replace an existing file unless ``overwrite``."""
    import lrpcore

    if path.exists() and not overwrite:
        raise SystemExit(f"error: {path} exists; pass --overwrite to replace it "
                         "(or --check to compare a fresh training run with it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    lrpcore.save(model, path, overwrite=overwrite)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


def compare_with_file(model: Any, path: Path) -> float:
    """Largest absolute difference between ``model``'s parameters and those stored in ``path``.

    Raises ``SystemExit`` if the layer structure differs. Used by ``--check`` to show
    that a fresh training run reproduces the shipped file.
    """
    import lrpcore

    stored = lrpcore.load(str(path))
    if len(stored.layers) != len(model.layers):
        raise SystemExit(f"error: {path} has {len(stored.layers)} layers, the fresh model {len(model.layers)}")
    largest = 0.0
    for index, (fresh_layer, stored_layer) in enumerate(zip(model.layers, stored.layers)):
        if type(fresh_layer) is not type(stored_layer):
            raise SystemExit(f"error: layer {index} is {stored_layer.describe()} in {path}, "
                             f"{fresh_layer.describe()} in the fresh model")
        fresh_parameters, stored_parameters = fresh_layer.parameters(), stored_layer.parameters()
        for name, value in fresh_parameters.items():
            difference = np.abs(np.asarray(value, dtype=np.float64)
                                - np.asarray(stored_parameters[name], dtype=np.float64))
            largest = max(largest, float(difference.max()) if difference.size else 0.0)
    return largest


def environment_note() -> str:
    """torch version and thread count, for the model cards."""
    import torch

    return f"torch {torch.__version__}, {torch.get_num_threads()} threads"
