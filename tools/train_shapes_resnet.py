"""Train the shipped residual network ``models/shapes_resnet.h5`` on :func:`lrpcore.data.shapes`.

Network: a small member of torchvision's ResNet family (BasicBlocks), written in PyTorch with
torchvision's module names, so :func:`lrpcore.models.resnet.resnet_from_state_dict` rebuilds it
from its state dict as an :class:`lrpcore.Graph` (node names = module paths)::

    conv1 3×3 (3→8, pad 1) → bn1 → relu → maxpool 2×2             64 → 32
    layer1.0  BasicBlock(8 → 8), identity shortcut                  32
    layer2.0  BasicBlock(8 → 16, stride 2), 1×1 projection          16
    layer3.0  BasicBlock(16 → 32, stride 2), 1×1 projection          8
    avgpool (mean over the 8×8 map) → flatten → fc (32 → 6)

(``lrpcore.models.resnet.ResNetSpec("basic", (1, 1, 1), (8, 16, 32), stem_channels=8, stem_kernel=3,
stem_stride=1, stem_padding=1, maxpool=(2, 2, 0))``, :data:`SPEC` below). Every BatchNorm is folded
into the convolution before it (:func:`lrpcore.canonize`) before the model is written, so the
shipped graph holds convolutions, ReLUs, the max pool, three ``Add`` nodes, the average pool,
flatten and the dense layer.

Inputs are normalised per channel with the mean/std of the training images (stored in the
metadata, as for ``shapes_cnn.h5``). Training: torchvision's initialisation (Kaiming-normal
fan-out convolutions, BatchNorm 1/0, PyTorch's default for fc) from the torch seed, Adam with
learning rate 3·10⁻³ divided by 10 for the last three of 12 epochs, batches of 64, 5000 training images
``shapes(5000, seed=0)``; test images ``shapes(300, seed=12345)``, never used in training.

Usage::

    python tools/train_shapes_resnet.py             # writes models/shapes_resnet.h5 (refuses to replace it)
    python tools/train_shapes_resnet.py --check     # retrain, compare with the shipped file, write nothing

Reproducible: fixed data and torch seeds, deterministic algorithms, 2 threads (see tools/_training.py).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from _training import (REPOSITORY, TrainingSettings, channel_statistics, compare_with_file, configure_torch,
                       environment_note, lrpcore_accuracy, normalise, save_model, torch_accuracy, train_classifier)

NAME = "shapes_resnet"
DATA_SEED = 0
TORCH_SEED = 0
TRAIN_COUNT = 5000
EPOCHS = 12
DECAY_EPOCH = 9
LEARNING_RATE = 3e-3
IMAGE_SIZE = 64
#: The fresh test set the model card quotes (as for shapes_cnn.h5).
TEST_SEED = 12345
TEST_COUNT = 300
DESCRIPTION = ("Small residual network (torchvision-style BasicBlocks: stem conv + max pool, three blocks of "
               "8, 16, 32 channels with an identity and two projection shortcuts, global average pool, fc) "
               "classifying the shape (circle, square, triangle, cross, ring, diamond) in 64x64 RGB images of "
               "lrpcore.data.shapes; BatchNorm folded into the convolutions. Raw inputs in [0, 1], normalised "
               "per channel by metadata mean/std.")


def spec() -> Any:
    """The architecture as an :class:`lrpcore.models.resnet.ResNetSpec`."""
    from lrpcore.models.resnet import ResNetSpec

    return ResNetSpec("basic", (1, 1, 1), (8, 16, 32), stem_channels=8, stem_kernel=3, stem_stride=1,
                      stem_padding=1, maxpool=(2, 2, 0))


def build_network(torch: Any, class_count: int) -> Any:
    """The torch network of the module docstring, with torchvision's module names and initialisation."""
    nn = torch.nn
    architecture = spec()

    class BasicBlock(nn.Module):
        def __init__(self, inplanes: int, planes: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = None
            if stride != 1 or inplanes != planes:
                self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                                nn.BatchNorm2d(planes))

        def forward(self, x: Any) -> Any:
            shortcut = x if self.downsample is None else self.downsample(x)
            out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
            return self.relu(out + shortcut)

    class ResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, architecture.stem_channels, architecture.stem_kernel, architecture.stem_stride,
                                   architecture.stem_padding, bias=False)
            self.bn1 = nn.BatchNorm2d(architecture.stem_channels)
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool2d(*architecture.maxpool)
            inplanes = architecture.stem_channels
            for stage, (count, planes) in enumerate(zip(architecture.layers, architecture.widths)):
                blocks = []
                for index in range(count):
                    blocks.append(BasicBlock(inplanes, planes, 2 if stage > 0 and index == 0 else 1))
                    inplanes = planes
                setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
            self.stages = len(architecture.layers)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(inplanes, class_count)
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(module, nn.BatchNorm2d):
                    nn.init.constant_(module.weight, 1)
                    nn.init.constant_(module.bias, 0)

        def forward(self, x: Any) -> Any:
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            for stage in range(self.stages):
                x = getattr(self, f"layer{stage + 1}")(x)
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet()


def convert(network: Any, metadata: Any) -> Any:
    """The trained torch network as an lrpcore Graph (from its state dict), BatchNorm folded."""
    import lrpcore
    from lrpcore.io.torch import load_state_dict
    from lrpcore.models.resnet import resnet_from_state_dict

    network.eval()
    graph = resnet_from_state_dict(load_state_dict(network.state_dict()), spec(), input_size=IMAGE_SIZE,
                                   dtype="float32", metadata=metadata)
    return lrpcore.canonize(graph)


def train(log: bool = True) -> tuple[Any, Any, dict[str, float]]:
    """Train the torch network; return (network, metadata, measurements)."""
    from lrpcore import ModelMetadata
    from lrpcore.data import shapes

    torch = configure_torch(TORCH_SEED)
    started = time.perf_counter()
    training = shapes(TRAIN_COUNT, size=IMAGE_SIZE, seed=DATA_SEED)
    mean, std = channel_statistics(training.x)
    network = build_network(torch, training.n_classes)
    if log:
        print(f"{NAME}: {TRAIN_COUNT} training images (seed {DATA_SEED}), mean {mean}, std {std}; "
              f"{environment_note()}", flush=True)
    settings = TrainingSettings(epochs=EPOCHS, batch_size=64, learning_rate=LEARNING_RATE, seed=TORCH_SEED,
                                decay_epoch=DECAY_EPOCH)
    inputs = normalise(training.x, mean, std)
    train_classifier(network, inputs, training.y, settings, log=log)
    measurements = {"train_accuracy": torch_accuracy(network, inputs, training.y),
                    "training_seconds": time.perf_counter() - started}
    metadata = ModelMetadata(input_shape=(3, IMAGE_SIZE, IMAGE_SIZE), value_range=(0.0, 1.0), mean=mean, std=std,
                             class_names=tuple(training.class_names), name=NAME, description=DESCRIPTION)
    return network, metadata, measurements


def evaluate(model: Any, network: Any) -> dict[str, float]:
    """Test accuracy of the lrpcore model, and the largest logit difference from the torch network."""
    import torch
    from lrpcore.data import shapes

    test = shapes(TEST_COUNT, size=IMAGE_SIZE, seed=TEST_SEED)
    results = {"test_accuracy": lrpcore_accuracy(model, test.x, test.y)}
    inputs = model.metadata.preprocess(test.x[:50])
    with torch.no_grad():
        reference = network(torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))).numpy()
    results["largest_logit_difference_torch"] = float(np.abs(np.asarray(model.forward(inputs)) - reference).max())
    return results


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPOSITORY / "models" / f"{NAME}.h5", help="output .h5 file")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--check", action="store_true",
                        help="retrain and compare the parameters with the existing --out file; write nothing")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    if args.out.exists() and not (args.overwrite or args.check):
        raise SystemExit(f"error: {args.out} exists; pass --overwrite to replace it or --check to compare with it")
    network, metadata, measurements = train()
    model = convert(network, metadata)
    measurements.update(evaluate(model, network))
    for key, value in measurements.items():
        print(f"{key}: {value:.4g}")
    if args.check:
        difference = compare_with_file(model, args.out)
        print(f"largest parameter difference from {args.out}: {difference:.3g}")
        return 0 if difference <= 1e-5 else 1
    save_model(model, args.out, overwrite=args.overwrite)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
