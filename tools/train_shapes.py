"""Train the shipped shapes classifiers: ``models/shapes_cnn.h5`` and, with ``--cleverhans``,
``models/shapes_cnn_cleverhans.h5``.

Data: :func:`lrpcore.data.shapes`, 64 x 64 RGB images of six shape classes on textured
backgrounds. The "Clever Hans" model is trained on images that all carry the
class-specific watermark glyph in the bottom-right corner (``watermark=True``), so the
glyph alone predicts the label; the script then measures how much it relies on it
(accuracy on the counterfactual clean test images, LRP relevance on the watermark box).

Network (VGG-style, PyTorch layer list, converted one to one by ``lrpcore.io.from_torch``)::

    Conv3x3(3→8, pad 1) ReLU MaxPool2         64 → 32
    Conv3x3(8→16, pad 1) ReLU MaxPool2        32 → 16
    Conv3x3(16→32, pad 1) ReLU Conv3x3(32→32, pad 1) ReLU MaxPool2   16 → 8
    Flatten Dense(2048→64) ReLU Dropout(0.5) Dense(64→6)

Inputs are normalised per channel with the mean/std of the training images, stored in
the model's metadata (``model.metadata.preprocess`` applies them), so raw inputs stay in
[0, 1] and the z^B bounds of the first layer are the non-trivial (0 − mean)/std,
(1 − mean)/std.

Training: PyTorch's default initialisation (in trials, Kaiming-normal weights with zero
biases sat on the chance-level plateau for many more epochs), Adam with learning rate
10⁻³, divided by 10 for the last four of 16 epochs, batches of 64, 5000 training images.

Usage::

    python tools/train_shapes.py                 # writes models/shapes_cnn.h5 (asks before replacing)
    python tools/train_shapes.py --cleverhans    # writes models/shapes_cnn_cleverhans.h5
    python tools/train_shapes.py --check         # retrain, compare with the shipped file, write nothing

Reproducible: fixed data and torch seeds, deterministic algorithms, 2 threads.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from _training import (REPOSITORY, TrainingSettings, channel_statistics, compare_with_file, configure_torch,
                       convert, environment_note, lrpcore_accuracy, normalise, save_model, torch_accuracy,
                       train_classifier)


@dataclasses.dataclass(frozen=True)
class ShapesRecipe:
    """Everything that determines one shipped shapes model."""

    name: str
    watermark: bool
    data_seed: int
    torch_seed: int
    description: str
    train_count: int = 5000
    epochs: int = 16
    decay_epoch: int = 12


CLEAN = ShapesRecipe(
    name="shapes_cnn", watermark=False, data_seed=0, torch_seed=0,
    description="VGG-style CNN classifying the shape (circle, square, triangle, cross, ring, diamond) in "
                "64x64 RGB images of lrpcore.data.shapes; trained on clean images. Raw inputs in [0, 1], "
                "normalised per channel by metadata mean/std.")
CLEVERHANS = ShapesRecipe(
    name="shapes_cnn_cleverhans", watermark=True, data_seed=1, torch_seed=1,
    description="'Clever Hans' VGG-style CNN: same architecture as shapes_cnn, trained on lrpcore.data.shapes "
                "images that all carry the class-specific watermark glyph (bottom-right corner), so it relies "
                "on the glyph rather than the shape. For demonstrating how LRP unmasks a shortcut. Raw "
                "inputs in [0, 1], normalised per channel by metadata mean/std.")

#: Seed and size of the freshly generated test set the model cards quote (never used in training).
TEST_SEED = 12345
TEST_COUNT = 300
IMAGE_SIZE = 64


def build_network(torch: Any, class_count: int) -> Any:
    """The VGG-style torch network of the module docstring."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * (IMAGE_SIZE // 8) ** 2, 64), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(64, class_count),
    )


def watermark_relevance_share(model: Any, dataset: Any, composite: str = "epsilon_gamma_box",
                              batch_size: int = 50) -> float:
    """Mean over images of the share of positive input relevance inside the watermark box.

    share = Σ_{p ∈ box} max(R_p, 0) / Σ_p max(R_p, 0), with R summed over colour channels and
    the target the predicted class. The box covers 100 of 4096 pixels (2.4 %), so a model
    that ignores the watermark scores near or below that.
    """
    from lrpcore import explain

    top, left, bottom, right = dataset.meta["watermark_box"]
    shares = []
    for begin in range(0, len(dataset), batch_size):
        raw = dataset.x[begin:begin + batch_size]
        explanation = explain(model, model.metadata.preprocess(raw), composite=composite)
        relevance = np.asarray(explanation.relevance, dtype=np.float64).sum(axis=1)
        positive = np.maximum(relevance, 0.0)
        inside = positive[:, top:bottom, left:right].sum(axis=(1, 2))
        shares.append(inside / np.maximum(positive.sum(axis=(1, 2)), 1e-30))
    return float(np.concatenate(shares).mean())


def train(recipe: ShapesRecipe, log: bool = True) -> tuple[Any, Any, dict[str, float]]:
    """Train the torch network of ``recipe``; return (network, metadata, measurements)."""
    from lrpcore import ModelMetadata
    from lrpcore.data import shapes

    torch = configure_torch(recipe.torch_seed)
    started = time.perf_counter()
    training = shapes(recipe.train_count, size=IMAGE_SIZE, seed=recipe.data_seed, watermark=recipe.watermark)
    mean, std = channel_statistics(training.x)
    network = build_network(torch, training.n_classes)
    if log:
        print(f"{recipe.name}: {recipe.train_count} training images (seed {recipe.data_seed}, "
              f"watermark={recipe.watermark}), mean {mean}, std {std}; {environment_note()}", flush=True)
    settings = TrainingSettings(epochs=recipe.epochs, batch_size=64, learning_rate=1e-3, seed=recipe.torch_seed,
                                decay_epoch=recipe.decay_epoch)
    train_classifier(network, normalise(training.x, mean, std), training.y, settings, log=log)
    measurements = {"train_accuracy": torch_accuracy(network, normalise(training.x, mean, std), training.y),
                    "training_seconds": time.perf_counter() - started}
    metadata = ModelMetadata(input_shape=(3, IMAGE_SIZE, IMAGE_SIZE), value_range=(0.0, 1.0), mean=mean, std=std,
                             class_names=tuple(training.class_names), name=recipe.name,
                             description=recipe.description)
    return network, metadata, measurements


def evaluate(model: Any, recipe: ShapesRecipe) -> dict[str, float]:
    """Accuracies of the converted lrpcore ``model`` on the fresh test sets (and watermark relevance)."""
    from lrpcore.data import shapes

    clean = shapes(TEST_COUNT, size=IMAGE_SIZE, seed=TEST_SEED)
    results = {"test_accuracy_clean": lrpcore_accuracy(model, clean.x, clean.y)}
    watermarked = shapes(TEST_COUNT, size=IMAGE_SIZE, seed=TEST_SEED, watermark=True)
    results["test_accuracy_watermarked"] = lrpcore_accuracy(model, watermarked.x, watermarked.y)
    sample = slice(0, 60)
    results["watermark_relevance_share_watermarked"] = watermark_relevance_share(model, watermarked[sample])
    results["watermark_relevance_share_clean"] = watermark_relevance_share(model, clean[sample])
    return results


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cleverhans", action="store_true",
                        help="train the watermark ('Clever Hans') model instead of the clean one")
    parser.add_argument("--out", type=Path, default=None,
                        help="output .h5 file (default models/shapes_cnn.h5 or models/shapes_cnn_cleverhans.h5)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--check", action="store_true",
                        help="retrain and compare the parameters with the existing --out file; write nothing")
    parser.add_argument("--state-dict", type=Path, default=None,
                        help="also save the torch state dict (and normalisation) to this .pt file")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    recipe = CLEVERHANS if args.cleverhans else CLEAN
    out = args.out or REPOSITORY / "models" / f"{recipe.name}.h5"
    if out.exists() and not (args.overwrite or args.check):
        raise SystemExit(f"error: {out} exists; pass --overwrite to replace it or --check to compare with it")
    network, metadata, measurements = train(recipe)
    if args.state_dict is not None:
        import torch

        torch.save({"state_dict": network.state_dict(), "mean": metadata.mean, "std": metadata.std}, args.state_dict)
        print(f"wrote torch state dict {args.state_dict}")
    model = convert(network, metadata)
    measurements.update(evaluate(model, recipe))
    for key, value in measurements.items():
        print(f"{key}: {value:.4f}")
    if args.check:
        difference = compare_with_file(model, out)
        print(f"largest parameter difference from {out}: {difference:.3g}")
        return 0 if difference <= 1e-5 else 1
    save_model(model, out, overwrite=args.overwrite)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
