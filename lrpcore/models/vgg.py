"""VGG networks (Simonyan & Zisserman 2015) with torchvision's exact layer list.

VGG-16 as ``lrpcore.Sequential`` (configuration "D"):

    index  0–30   features: Conv3x3(pad 1)+ReLU blocks with MaxPool2d(2) after each block;
                  convolutions at 0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28,
                  max pools at 4, 9, 16, 23, 30 (torchvision's ``features`` indices)
    index  31     Flatten
    index  32–38  classifier: Dense(512·s·s → 4096), ReLU, Dropout, Dense(4096 → 4096), ReLU,
                  Dropout, Dense(4096 → num_classes)

so the layer indices of the LRP literature (the tutorial's "layers 1–16 γ, 17–30 ε") hold.

torchvision puts ``AdaptiveAvgPool2d((7, 7))`` between ``features`` and the classifier. At
224×224 the features are already 7×7 and it is the identity, so it is left out. For other
``input_size`` (a multiple of 32) the features are (512, s, s) with s = input_size/32 and the
first classifier layer here takes 512·s·s inputs (a smaller network than torchvision's, whose
classifier always takes 512·7·7 after the adaptive pool). Such a model is what a torchvision
VGG computes with ``avgpool`` replaced by the identity and ``classifier[0]`` resized; exact
equivalence with torchvision's own 25 088-input classifier at other sizes would need the
adaptive pool (which at s < 7 replicates values and is not an LRP-friendly average pool).

Without weights the parameters are drawn as torchvision initialises VGG: convolution weights
Kaiming-normal (He et al. 2015) with fan-out and ReLU gain, std = sqrt(2 / (out·kh·kw)); dense
weights N(0, 0.01²); all biases 0 (BatchNorm: weight 1, bias 0). With PyTorch's default init a
random VGG's logits are dominated by the biases; this init keeps relevance meaningful. The
draws use NumPy's generator seeded by ``seed``, always in float32 (a float64 model holds the
same values), layer by layer in the order above.
"""
from __future__ import annotations

import math
import os
from typing import Any, Mapping

import numpy

from ..errors import ModelFormatError, ShapeError
from ..layers import BatchNorm2d, Conv2d, Dense, Dropout, Flatten, Layer, MaxPool2d, ReLU
from ..model import ModelMetadata, Sequential
from ._weights import cast_arrays as _cast, matched_arrays

__all__ = ["ARCHITECTURES", "IMAGENET_MEAN", "IMAGENET_STD", "vgg", "vgg16", "vgg_from_state_dict"]

#: Per-channel ImageNet statistics used by torchvision's pretrained models (inputs in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_POOL = "M"
_CONFIGS: dict[str, list[int | str]] = {
    "A": [64, _POOL, 128, _POOL, 256, 256, _POOL, 512, 512, _POOL, 512, 512, _POOL],
    "B": [64, 64, _POOL, 128, 128, _POOL, 256, 256, _POOL, 512, 512, _POOL, 512, 512, _POOL],
    "D": [64, 64, _POOL, 128, 128, _POOL, 256, 256, 256, _POOL, 512, 512, 512, _POOL, 512, 512, 512, _POOL],
    "E": [64, 64, _POOL, 128, 128, _POOL, 256, 256, 256, 256, _POOL, 512, 512, 512, 512, _POOL,
          512, 512, 512, 512, _POOL],
}

#: Architecture name → (configuration, batch norm), torchvision's names.
ARCHITECTURES: dict[str, tuple[str, bool]] = {
    "vgg11": ("A", False), "vgg13": ("B", False), "vgg16": ("D", False), "vgg19": ("E", False),
    "vgg11_bn": ("A", True), "vgg13_bn": ("B", True), "vgg16_bn": ("D", True), "vgg19_bn": ("E", True),
}

_HIDDEN = 4096
_CLASSIFIER_KEYS = ("classifier.0", "classifier.3", "classifier.6")


def _parameter_shapes(arch: str, input_size: int, num_classes: int) -> dict[str, tuple[int, ...]]:
    """torchvision state-dict names → shapes, in forward order (without num_batches_tracked)."""
    config, batch_norm = ARCHITECTURES[arch]
    shapes: dict[str, tuple[int, ...]] = {}
    index, channels = 0, 3
    for entry in _CONFIGS[config]:
        if entry == _POOL:
            index += 1
            continue
        shapes[f"features.{index}.weight"] = (int(entry), channels, 3, 3)
        shapes[f"features.{index}.bias"] = (int(entry),)
        if batch_norm:
            for name in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"features.{index + 1}.{name}"] = (int(entry),)
            index += 1
        index += 2          # conv (+ batch norm) + ReLU
        channels = int(entry)
    side = input_size // 32
    widths = (channels * side * side, _HIDDEN, _HIDDEN, num_classes)
    for key, (fan_in, fan_out) in zip(_CLASSIFIER_KEYS, zip(widths[:-1], widths[1:])):
        shapes[f"{key}.weight"] = (fan_out, fan_in)
        shapes[f"{key}.bias"] = (fan_out,)
    return shapes


def _check_size(input_size: int, num_classes: int) -> None:
    if not isinstance(input_size, int) or input_size < 32 or input_size % 32:
        raise ShapeError(f"VGG input_size must be a positive multiple of 32 (five 2×2 max pools), got {input_size!r}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")


def _torchvision_init(shapes: Mapping[str, tuple[int, ...]], seed: int) -> dict[str, Any]:
    """Parameters drawn as torchvision's VGG initialises them (float32, in ``shapes`` order)."""
    generator = numpy.random.default_rng(seed)
    arrays: dict[str, Any] = {}
    for name, shape in shapes.items():
        if name.endswith("running_var") or (len(shape) == 1 and name.endswith("weight")):
            arrays[name] = numpy.ones(shape, dtype=numpy.float32)          # BatchNorm scale, running var
        elif len(shape) == 1:
            arrays[name] = numpy.zeros(shape, dtype=numpy.float32)         # biases, BatchNorm shift and mean
        else:
            if len(shape) == 4:         # Kaiming normal, fan_out mode, ReLU gain sqrt(2)
                std = math.sqrt(2.0 / (shape[0] * shape[2] * shape[3]))
            else:                       # nn.init.normal_(weight, 0, 0.01)
                std = 0.01
            draw = generator.standard_normal(shape, dtype=numpy.float32)
            draw *= numpy.float32(std)
            arrays[name] = draw
    return arrays


def _layers(arch: str, arrays: Mapping[str, Any]) -> list[Layer]:
    config, batch_norm = ARCHITECTURES[arch]
    layers: list[Layer] = []
    for entry in _CONFIGS[config]:
        if entry == _POOL:
            layers.append(MaxPool2d(2, 2))
            continue
        index = len(layers)
        layers.append(Conv2d(arrays[f"features.{index}.weight"], arrays[f"features.{index}.bias"], 1, 1))
        if batch_norm:
            prefix = f"features.{index + 1}"
            layers.append(BatchNorm2d(arrays[f"{prefix}.running_mean"], arrays[f"{prefix}.running_var"],
                                      arrays[f"{prefix}.weight"], arrays[f"{prefix}.bias"]))
        layers.append(ReLU())
    layers.append(Flatten())
    for position, key in enumerate(_CLASSIFIER_KEYS):
        layers.append(Dense(arrays[f"{key}.weight"], arrays[f"{key}.bias"]))
        if position < 2:
            layers.extend([ReLU(), Dropout(0.5)])
    return layers


def _metadata(arch: str, input_size: int, source: str) -> ModelMetadata:
    return ModelMetadata(input_shape=(3, input_size, input_size), value_range=(0.0, 1.0), mean=IMAGENET_MEAN,
                         std=IMAGENET_STD, name=arch,
                         description=f"{arch.upper()} (Simonyan & Zisserman 2015) in torchvision's layer order, "
                                     f"{input_size}×{input_size} RGB inputs in [0, 1] normalised with the ImageNet "
                                     f"mean/std; {source}")


def vgg_from_state_dict(arrays: Mapping[str, Any], arch: str = "vgg16", input_size: int | None = None,
                        dtype: str | None = "float32", source: str = "weights from a state dict") -> Sequential:
    """Build ``arch`` from torchvision-named NumPy arrays, checking every name and shape first."""
    if arch not in ARCHITECTURES:
        raise ModelFormatError(f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}")
    last = f"{_CLASSIFIER_KEYS[-1]}.weight"
    first = f"{_CLASSIFIER_KEYS[0]}.weight"
    for key in (first, last):
        if key not in arrays or getattr(arrays[key], "ndim", 0) != 2:
            raise ModelFormatError(f"{arch} state dict has no 2-D entry {key!r}; is it a torchvision-style "
                                   f"{arch}? First keys: {list(arrays)[:4]}")
    num_classes = int(arrays[last].shape[0])
    side = math.isqrt(int(arrays[first].shape[1]) // 512)
    if input_size is None:
        if 512 * side * side != int(arrays[first].shape[1]):
            raise ModelFormatError(f"{first} has {arrays[first].shape[1]} inputs, not 512·s·s for any s")
        input_size = 32 * side
    _check_size(input_size, num_classes)
    expected = _parameter_shapes(arch, input_size, num_classes)
    matched_arrays(arrays, expected, f"{arch} at input size {input_size}")
    model_arrays = _cast({name: arrays[name] for name in expected}, dtype)
    return Sequential(_layers(arch, model_arrays), _metadata(arch, input_size, source))


def _weights_from_file(path: str, arch: str, input_size: int, num_classes: int, dtype: str) -> Sequential:
    suffix = os.path.splitext(path)[1].lower()
    if not os.path.isfile(path):
        raise ModelFormatError(f"weights file '{path}' does not exist")
    if suffix in (".h5", ".hdf5"):
        from ..io import load      # the lrpcore HDF5 format

        model = load(path, dtype=dtype)
        _check_same_structure(model, arch, input_size, num_classes, path)
        return model
    from ..io.torch import load_state_dict

    return vgg_from_state_dict(load_state_dict(path), arch, input_size, dtype, source=f"weights from '{path}'")


def _check_same_structure(model: Sequential, arch: str, input_size: int, num_classes: int, where: str) -> None:
    reference = _layers(arch, {name: numpy.zeros(shape, dtype=numpy.float32) for name, shape in
                               _parameter_shapes(arch, input_size, num_classes).items()})
    if len(model.layers) != len(reference):
        raise ModelFormatError(f"'{where}' holds {len(model.layers)} layers; {arch} at input size {input_size} "
                               f"with {num_classes} classes has {len(reference)}")
    for index, (layer, expected) in enumerate(zip(model.layers, reference)):
        if layer.describe() != expected.describe():
            raise ModelFormatError(f"'{where}' layer {index} is {layer.describe()}; {arch} needs "
                                   f"{expected.describe()} there (input size {input_size}, {num_classes} classes)")


def vgg(arch: str = "vgg16", weights: Any = None, input_size: int = 224, num_classes: int = 1000, seed: int = 0,
        dtype: str = "float32") -> Sequential:
    """A VGG network of torchvision's architecture ``arch`` (see :data:`ARCHITECTURES`).

    ``weights``: None (torchvision-style random init from ``seed``), a path to an lrpcore HDF5
    file (``.h5``/``.hdf5``) or a ``torch.save``d state dict (``.pt``/``.pth``/other), or a
    mapping name → array/tensor with torchvision's names. ``input_size``: image side, a multiple
    of 32 (see the module docstring for sizes other than 224). Metadata: input shape
    (3, input_size, input_size), value range (0, 1), ImageNet mean and std.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown VGG architecture {arch!r}; known: {sorted(ARCHITECTURES)}")
    _check_size(input_size, num_classes)
    if weights is None:
        arrays = _torchvision_init(_parameter_shapes(arch, input_size, num_classes), seed)
        return Sequential(_layers(arch, _cast(arrays, dtype)),
                          _metadata(arch, input_size, f"torchvision-style random init (seed={seed})"))
    if isinstance(weights, (str, os.PathLike)):
        return _weights_from_file(os.fspath(weights), arch, input_size, num_classes, dtype)
    if isinstance(weights, Mapping):
        from ..io.torch import load_state_dict

        model = vgg_from_state_dict(load_state_dict(weights), arch, input_size, dtype)
        _check_same_structure(model, arch, input_size, num_classes, "the state dict")
        return model
    raise TypeError(f"weights must be None, a file path or a state dict mapping, got {type(weights).__name__}")


def vgg16(weights: Any = None, input_size: int = 224, num_classes: int = 1000, seed: int = 0,
          dtype: str = "float32") -> Sequential:
    """VGG-16 with torchvision's layer indices (convolutions at 0, 2, 5, …, 28; max pools at 4, 9, 16, 23,
    30; Flatten at 31; dense layers at 32, 35, 38). See :func:`vgg` for the arguments and the module
    docstring for the initialisation and for input sizes other than 224."""
    return vgg("vgg16", weights=weights, input_size=input_size, num_classes=num_classes, seed=seed, dtype=dtype)
