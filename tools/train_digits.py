"""Train the shipped 8 x 8 digits classifiers ``models/digits_mlp.h5`` and ``models/digits_cnn.h5``.

Data: :func:`lrpcore.data.digits` (scikit-learn's bundled 1797 handwritten digits, pixels
scaled to [0, 1]); training split ``digits("train", seed=0)`` (1348 images), test split
``digits("test", seed=0)`` (449 images). No normalisation: the model input is the raw
image in [0, 1].

Networks (PyTorch layer lists, converted one to one by ``lrpcore.io.from_torch``)::

    digits_mlp: Flatten Dense(64→64) ReLU Dense(64→32) ReLU Dense(32→10)
    digits_cnn: Conv3x3(1→16, pad 1) ReLU MaxPool2   8 → 4
                Conv3x3(16→32, pad 1) ReLU MaxPool2  4 → 2
                Flatten Dense(128→64) ReLU Dropout(0.25) Dense(64→10)

Both take inputs of shape (N, 1, 8, 8).

Usage::

    python tools/train_digits.py                # writes both files (asks before replacing)
    python tools/train_digits.py --model mlp    # only digits_mlp.h5
    python tools/train_digits.py --check        # retrain, compare with the shipped files, write nothing

Reproducible: fixed split and torch seeds, deterministic algorithms, 2 threads.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Sequence

from _training import (REPOSITORY, TrainingSettings, compare_with_file, configure_torch, convert, environment_note,
                       lrpcore_accuracy, save_model, torch_accuracy, train_classifier)

#: Seed of the train/test split (``lrpcore.data.digits(split, seed=SPLIT_SEED)``).
SPLIT_SEED = 0
#: Seed of the torch initialisation and mini-batch order, per model.
TORCH_SEEDS = {"mlp": 0, "cnn": 0}
EPOCHS = {"mlp": 60, "cnn": 60}

DESCRIPTIONS = {
    "mlp": "Multilayer perceptron (64-64-32-10, ReLU) on scikit-learn's 8x8 handwritten digits "
           "(lrpcore.data.digits). Raw inputs in [0, 1], shape (1, 8, 8); no normalisation.",
    "cnn": "Small CNN (two conv-ReLU-maxpool blocks, two dense layers) on scikit-learn's 8x8 handwritten "
           "digits (lrpcore.data.digits). Raw inputs in [0, 1], shape (1, 8, 8); no normalisation.",
}


def build_network(torch: Any, kind: str) -> Any:
    """The torch network ``kind`` ("mlp" or "cnn") of the module docstring."""
    nn = torch.nn
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
                             nn.Linear(32, 10))
    if kind == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 2 * 2, 64), nn.ReLU(), nn.Dropout(0.25), nn.Linear(64, 10))
    raise ValueError(f"unknown digits model {kind!r}; expected 'mlp' or 'cnn'")


def train(kind: str, log: bool = True) -> tuple[Any, Any, dict[str, float]]:
    """Train the digits ``kind`` network; return (torch network, metadata, measurements)."""
    from lrpcore import ModelMetadata
    from lrpcore.data import digits

    torch = configure_torch(TORCH_SEEDS[kind])
    started = time.perf_counter()
    training = digits("train", seed=SPLIT_SEED)
    network = build_network(torch, kind)
    for module in network.modules():  # Kaiming weights, zero biases: relevance is not absorbed by biases
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            torch.nn.init.zeros_(module.bias)
    if log:
        print(f"digits_{kind}: {len(training)} training images (split seed {SPLIT_SEED}); {environment_note()}",
              flush=True)
    settings = TrainingSettings(epochs=EPOCHS[kind], batch_size=32, learning_rate=1e-3, weight_decay=1e-4,
                                seed=TORCH_SEEDS[kind])
    train_classifier(network, training.x, training.y, settings, log=log)
    measurements = {"train_accuracy": torch_accuracy(network, training.x, training.y),
                    "training_seconds": time.perf_counter() - started}
    metadata = ModelMetadata(input_shape=(1, 8, 8), value_range=(0.0, 1.0), mean=None, std=None,
                             class_names=tuple(training.class_names), name=f"digits_{kind}",
                             description=DESCRIPTIONS[kind])
    return network, metadata, measurements


def evaluate(model: Any) -> dict[str, float]:
    """Accuracy of the converted lrpcore ``model`` on the test split."""
    from lrpcore.data import digits

    test = digits("test", seed=SPLIT_SEED)
    return {"test_accuracy": lrpcore_accuracy(model, test.x, test.y)}


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("mlp", "cnn", "both"), default="both", help="which model to train")
    parser.add_argument("--out-dir", type=Path, default=REPOSITORY / "models",
                        help="folder for digits_mlp.h5 / digits_cnn.h5 (default: the repository's models/)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    parser.add_argument("--check", action="store_true",
                        help="retrain and compare the parameters with the existing files; write nothing")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    kinds = ("mlp", "cnn") if args.model == "both" else (args.model,)
    status = 0
    for kind in kinds:
        out = args.out_dir / f"digits_{kind}.h5"
        if out.exists() and not (args.overwrite or args.check):
            raise SystemExit(f"error: {out} exists; pass --overwrite to replace it or --check to compare with it")
        network, metadata, measurements = train(kind)
        model = convert(network, metadata)
        measurements.update(evaluate(model))
        for key, value in measurements.items():
            print(f"{key}: {value:.4f}")
        if args.check:
            difference = compare_with_file(model, out)
            print(f"largest parameter difference from {out}: {difference:.3g}")
            status = max(status, 0 if difference <= 1e-5 else 1)
        else:
            save_model(model, out, overwrite=args.overwrite)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
