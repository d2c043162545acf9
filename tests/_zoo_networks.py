"""Small PyTorch networks with the layers of issue 12, shared by the zennit reference suite and the CLI tests.

- ``alexnet``: AlexNet/CaffeNet-style: 11×11 stride-4 convolution, LRN, overlapping ceil-mode max pools,
  ``AdaptiveAvgPool2d((6, 6))`` (here from 4×4: uneven, repeating windows), dropout, dense head;
- ``mobilenet_block``: a MobileNet-v2 inverted-residual block *without* its residual connection (1×1
  expansion, BatchNorm, ReLU6, depthwise 3×3, BatchNorm, ReLU6, 1×1 linear bottleneck, BatchNorm),
  then global average pooling and a classifier; the residual sum needs lrpcore's graphs;
- ``grouped``: grouped (groups=2) and depthwise (with and without a channel multiplier) convolutions;
- ``pooling``: ceil-mode max and average pooling, ``count_include_pad=False``, uneven adaptive average
  and max pooling and global average pooling;
- ``tanh_mlp`` / ``sigmoid_mlp``: the LRP Toolbox's kind of MLP;
- ``sequence``: a 1-D CNN (grouped Conv1d, BatchNorm1d after a Conv1d, ceil-mode MaxPool1d, AvgPool1d,
  AdaptiveAvgPool1d).

Weights: Kaiming-normal convolutions and dense layers with small random biases (torchvision's init keeps
relevance from being absorbed by the biases), random BatchNorm statistics; float64, eval mode.
"""
from __future__ import annotations

from typing import Any

NAMES = ("alexnet", "mobilenet_block", "grouped", "pooling", "tanh_mlp", "sigmoid_mlp", "sequence")


def build(name: str, seed: int = 0) -> tuple[Any, tuple[int, ...]]:
    """(torch network in float64 eval mode, one sample's input shape) for ``name``."""
    import torch
    from torch import nn

    if name == "alexnet":
        network = nn.Sequential(
            nn.Conv2d(3, 16, 11, stride=4, padding=2), nn.ReLU(), nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),                       # 16×16 → 8×8 (floor: 7×7)
            nn.Conv2d(16, 24, 5, padding=2), nn.ReLU(), nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),                       # 8×8 → 4×4 (floor: 3×3)
            nn.Conv2d(24, 24, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d((6, 6)), nn.Flatten(), nn.Dropout(0.5),
            nn.Linear(24 * 36, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 5))
        shape = (3, 67, 67)
    elif name == "mobilenet_block":
        network = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU6(),
            nn.Conv2d(8, 48, 1), nn.BatchNorm2d(48), nn.ReLU6(),                       # expansion ×6
            nn.Conv2d(48, 48, 3, padding=1, groups=48), nn.BatchNorm2d(48), nn.ReLU6(),  # depthwise
            nn.Conv2d(48, 8, 1), nn.BatchNorm2d(8),                                     # linear bottleneck
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
        shape = (3, 16, 16)
    elif name == "grouped":
        network = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(),
            nn.Conv2d(6, 6, 3, padding=1, groups=6), nn.ReLU(),
            nn.Conv2d(6, 12, 3, stride=2, groups=6), nn.ReLU(),
            nn.Conv2d(12, 8, 3, padding=1, groups=2), nn.ReLU(), nn.AvgPool2d(2),
            nn.Flatten(), nn.Linear(8 * 2 * 2, 16), nn.ReLU(), nn.Linear(16, 5))
        shape = (3, 10, 10)
    elif name == "pooling":
        network = nn.Sequential(
            nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(3, stride=2, ceil_mode=True),        # 14 → 12 → 6
            nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
            nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),     # 6 → 4 (floor 3)
            nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d((3, 3)),             # 4 → 3, uneven
            nn.Conv2d(8, 8, 1), nn.ReLU(), nn.AdaptiveMaxPool2d((2, 2)),                      # 3 → 2, overlapping
            nn.AdaptiveAvgPool2d(1),                                                          # global
            nn.Flatten(), nn.Linear(8, 5))
        shape = (3, 14, 14)
    elif name in ("tanh_mlp", "sigmoid_mlp"):
        activation = nn.Tanh if name == "tanh_mlp" else nn.Sigmoid
        network = nn.Sequential(nn.Flatten(), nn.Linear(36, 24), activation(), nn.Linear(24, 16), activation(),
                                nn.Linear(16, 5))
        shape = (1, 6, 6)
    elif name == "sequence":
        network = nn.Sequential(
            nn.Conv1d(2, 8, 5, padding=2), nn.BatchNorm1d(8), nn.ReLU(), nn.MaxPool1d(2, ceil_mode=True),  # 25 → 13
            nn.Conv1d(8, 8, 3, padding=1, groups=4), nn.ReLU(), nn.AvgPool1d(2),                        # 13 → 6
            nn.Conv1d(8, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool1d(3),                                     # 4 → 3
            nn.Flatten(), nn.Linear(24, 12), nn.ReLU(), nn.Linear(12, 4))
        shape = (2, 25)
    else:
        raise ValueError(f"unknown network {name!r}; expected one of {NAMES}")
    _initialise(torch, network, seed)
    return network.double().eval(), shape


def _initialise(torch: Any, network: Any, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.05)
            elif isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                size = module.num_features
                module.weight.copy_(torch.rand(size, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(size, generator=generator) * 0.1)
                module.running_mean.copy_(torch.randn(size, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)


def inputs(shape: tuple[int, ...], batch: int = 3, seed: int = 1) -> Any:
    """A float64 batch of ``shape`` samples: uniform in [0, 1] (images and sequences alike)."""
    import numpy

    return numpy.random.default_rng(seed).random((batch, *shape))
