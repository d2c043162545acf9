"""Residual networks (He et al. 2016) as :class:`lrpcore.Graph`, with torchvision's parameter names.

:func:`resnet18`, :func:`resnet34` (``BasicBlock``) and :func:`resnet50` (``Bottleneck``) build
torchvision's ``resnet18/34/50`` exactly: the state-dict names (``conv1``, ``bn1``,
``layer1.0.conv1`` … ``layer4.2.bn3``, ``layer2.0.downsample.0/1``, ``fc``) and the computation,
"ResNet v1.5" as torchvision ships it (a bottleneck strides its 3×3 convolution, not its first 1×1).

Node names follow torchvision's module paths; the operations torchvision writes in ``forward``
rather than as modules get these names:

=====================  =============================================================================
``conv1``, ``bn1``,    the stem; ``maxpool`` is ``MaxPool2d(3, stride 2, padding 1)``
``relu``, ``maxpool``
``layerS.B.convK``,    the K-th convolution and BatchNorm of block B of stage S (as the modules)
``layerS.B.bnK``
``layerS.B.reluK``     the K-th application of the block's (shared) ``relu`` module: in a BasicBlock
                       ``relu1`` follows ``bn1`` and ``relu2`` the addition; in a Bottleneck
                       ``relu1``/``relu2`` follow ``bn1``/``bn2`` and ``relu3`` the addition
``layerS.B.downsample.0``/``.1``   the 1×1 convolution and BatchNorm of the projection shortcut
``layerS.B.add``       ``Add`` of (last BatchNorm of the branch, shortcut): torchvision's ``out += identity``
``avgpool``            torchvision's ``AdaptiveAvgPool2d((1, 1))``: here an ``AvgPool2d`` whose window is
                       the whole final feature map for the model's ``input_size`` (the same mean)
``flatten``            ``torch.flatten(x, 1)``
``fc``                 the classifier
=====================  =============================================================================

Nodes are in torchvision's module order (in a block: the residual branch, then the
shortcut, then ``add`` and the last ReLU), which is the topological order composites count
positions in. BatchNorm nodes are kept, as in torchvision; :func:`lrpcore.canonize` folds each
into the convolution before it (inside the residual branches and in the shortcut), which is what
zennit's ``ResNetCanonizer`` does.

Without weights the parameters are drawn as torchvision initialises a ResNet: convolutions
Kaiming-normal with fan-out and ReLU gain, std = sqrt(2 / (out·kh·kw)) (He et al. 2015); BatchNorm
weight 1, bias 0 (running mean 0, variance 1); ``fc`` as PyTorch's ``nn.Linear`` default,
weight and bias uniform in ±1/sqrt(fan_in). The draws use NumPy's generator seeded by ``seed``,
in float32, parameter by parameter in state-dict order (so they are not torch's numbers).

:class:`ResNetSpec` describes other residual networks of the same family (stage widths, blocks
per stage, stem); the shipped ``models/shapes_resnet.h5`` is one.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Mapping

import numpy

from ..errors import ModelFormatError, ShapeError
from ..graph import INPUT, Graph, Node
from ..layers import Add, AvgPool2d, BatchNorm2d, Conv2d, Dense, Flatten, MaxPool2d, ReLU
from ..metadata import ModelMetadata
from ._weights import cast_arrays as _cast, matched_arrays
from .vgg import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["ARCHITECTURES", "ResNetSpec", "resnet", "resnet18", "resnet34", "resnet50", "resnet_from_state_dict",
           "parameter_shapes"]

_BN_ENTRIES = ("weight", "bias", "running_mean", "running_var")
#: torchvision's BatchNorm2d eps (not stored in a state dict).
BATCHNORM_EPS = 1e-5


@dataclasses.dataclass(frozen=True)
class ResNetSpec:
    """One residual network of the torchvision family.

    ``block``: ``"basic"`` (two 3×3 convolutions, expansion 1) or ``"bottleneck"`` (1×1, 3×3, 1×1,
    expansion 4). ``layers``: blocks per stage; stage i has ``widths[i]`` planes and stride 1 (first
    stage) or 2 (the others). Stem: ``stem_channels`` outputs of a ``stem_kernel``×``stem_kernel``
    convolution with ``stem_stride``/``stem_padding``, BatchNorm, ReLU, then
    ``MaxPool2d(*maxpool)`` (kernel, stride, padding) unless ``maxpool`` is None.
    """

    block: str
    layers: tuple[int, ...]
    widths: tuple[int, ...] = (64, 128, 256, 512)
    stem_channels: int = 64
    stem_kernel: int = 7
    stem_stride: int = 2
    stem_padding: int = 3
    maxpool: tuple[int, int, int] | None = (3, 2, 1)
    in_channels: int = 3

    def __post_init__(self) -> None:
        if self.block not in ("basic", "bottleneck"):
            raise ValueError(f"ResNetSpec block must be 'basic' or 'bottleneck', got {self.block!r}")
        if not self.layers or len(self.layers) != len(self.widths) or min(self.layers) < 1 or min(self.widths) < 1:
            raise ValueError(f"ResNetSpec needs one positive width per stage and at least one block per stage, "
                             f"got layers={self.layers}, widths={self.widths}")

    @property
    def expansion(self) -> int:
        return 1 if self.block == "basic" else 4

    @property
    def features(self) -> int:
        """Channels of the final feature map (the classifier's inputs)."""
        return self.widths[-1] * self.expansion


#: torchvision's architectures by name.
ARCHITECTURES: dict[str, ResNetSpec] = {
    "resnet18": ResNetSpec("basic", (2, 2, 2, 2)),
    "resnet34": ResNetSpec("basic", (3, 4, 6, 3)),
    "resnet50": ResNetSpec("bottleneck", (3, 4, 6, 3)),
}


def _spec(arch: str | ResNetSpec) -> ResNetSpec:
    if isinstance(arch, ResNetSpec):
        return arch
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown ResNet architecture {arch!r}; known: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[arch]


# --- the architecture ---------------------------------------------------------------------------
def _blocks(spec: ResNetSpec) -> list[tuple[str, int, int, int, bool]]:
    """(prefix, in channels, planes, stride, has downsample) of every block, in order."""
    blocks = []
    channels = spec.stem_channels
    for stage, (count, planes) in enumerate(zip(spec.layers, spec.widths)):
        for index in range(count):
            stride = 2 if stage > 0 and index == 0 else 1
            downsample = index == 0 and (stride != 1 or channels != planes * spec.expansion)
            blocks.append((f"layer{stage + 1}.{index}", channels, planes, stride, downsample))
            channels = planes * spec.expansion
    return blocks


def _block_convolutions(spec: ResNetSpec, inplanes: int, planes: int, stride: int
                        ) -> list[tuple[str, int, int, int, int, int]]:
    """(name, in, out, kernel, stride, padding) of the residual branch's convolutions."""
    if spec.block == "basic":
        return [("conv1", inplanes, planes, 3, stride, 1), ("conv2", planes, planes, 3, 1, 1)]
    return [("conv1", inplanes, planes, 1, 1, 0), ("conv2", planes, planes, 3, stride, 1),
            ("conv3", planes, planes * 4, 1, 1, 0)]


def parameter_shapes(arch: str | ResNetSpec, num_classes: int = 1000) -> dict[str, tuple[int, ...]]:
    """torchvision state-dict names → shapes, in state-dict order (without ``num_batches_tracked``)."""
    spec = _spec(arch)
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(name: str, inputs: int, outputs: int, kernel: int) -> None:
        shapes[f"{name}.weight"] = (outputs, inputs, kernel, kernel)

    def norm(name: str, channels: int) -> None:
        for entry in _BN_ENTRIES:
            shapes[f"{name}.{entry}"] = (channels,)

    conv("conv1", spec.in_channels, spec.stem_channels, spec.stem_kernel)
    norm("bn1", spec.stem_channels)
    for prefix, inplanes, planes, stride, downsample in _blocks(spec):
        for position, (name, inputs, outputs, kernel, _, _) in enumerate(
                _block_convolutions(spec, inplanes, planes, stride)):
            conv(f"{prefix}.{name}", inputs, outputs, kernel)
            norm(f"{prefix}.bn{position + 1}", outputs)
        if downsample:
            conv(f"{prefix}.downsample.0", inplanes, planes * spec.expansion, 1)
            norm(f"{prefix}.downsample.1", planes * spec.expansion)
    shapes["fc.weight"] = (num_classes, spec.features)
    shapes["fc.bias"] = (num_classes,)
    return shapes


def _side(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def final_map_size(arch: str | ResNetSpec, input_size: int) -> int:
    """Side of the last stage's feature map for square inputs of side ``input_size``."""
    spec = _spec(arch)
    side = _side(input_size, spec.stem_kernel, spec.stem_stride, spec.stem_padding)
    if spec.maxpool is not None:
        side = _side(side, *spec.maxpool)
    for stage in range(1, len(spec.layers)):
        side = _side(side, 3, 2, 1)          # the strided 3×3 convolution (and the 1×1 shortcut, same size)
    return side


def _nodes(spec: ResNetSpec, arrays: Mapping[str, Any], input_size: int) -> list[Node]:
    """The graph's nodes, named as in the module docstring, in torchvision's module order."""
    nodes: list[Node] = []

    def add(name: str, layer: Any, *inputs: str) -> str:
        nodes.append(Node(name, layer, inputs))
        return name

    def norm(name: str, source: str) -> str:
        return add(name, BatchNorm2d(arrays[f"{name}.running_mean"], arrays[f"{name}.running_var"],
                                     arrays[f"{name}.weight"], arrays[f"{name}.bias"], BATCHNORM_EPS), source)

    current = add("conv1", Conv2d(arrays["conv1.weight"], None, spec.stem_stride, spec.stem_padding), INPUT)
    current = add("relu", ReLU(), norm("bn1", current))
    if spec.maxpool is not None:
        kernel, stride, padding = spec.maxpool
        current = add("maxpool", MaxPool2d(kernel, stride, padding), current)
    for prefix, inplanes, planes, stride, downsample in _blocks(spec):
        convolutions = _block_convolutions(spec, inplanes, planes, stride)
        branch = current
        for position, (name, _, _, _, conv_stride, padding) in enumerate(convolutions, start=1):
            branch = add(f"{prefix}.{name}", Conv2d(arrays[f"{prefix}.{name}.weight"], None, conv_stride, padding),
                         branch)
            branch = norm(f"{prefix}.bn{position}", branch)
            if position < len(convolutions):
                branch = add(f"{prefix}.relu{position}", ReLU(), branch)
        shortcut = current
        if downsample:
            shortcut = add(f"{prefix}.downsample.0", Conv2d(arrays[f"{prefix}.downsample.0.weight"], None, stride, 0),
                           current)
            shortcut = norm(f"{prefix}.downsample.1", shortcut)
        joined = add(f"{prefix}.add", Add(), branch, shortcut)
        current = add(f"{prefix}.relu{len(convolutions)}", ReLU(), joined)
    side = final_map_size(spec, input_size)
    current = add("avgpool", AvgPool2d(side, side, 0), current)
    current = add("flatten", Flatten(), current)
    add("fc", Dense(arrays["fc.weight"], arrays["fc.bias"]), current)
    return nodes


# --- parameters -----------------------------------------------------------------------------------
def _torchvision_init(shapes: Mapping[str, tuple[int, ...]], seed: int) -> dict[str, Any]:
    """Parameters drawn as torchvision initialises a ResNet (float32, in ``shapes`` order)."""
    generator = numpy.random.default_rng(seed)
    arrays: dict[str, Any] = {}
    for name, shape in shapes.items():
        if name.startswith("fc."):              # nn.Linear's default: U(±1/sqrt(fan_in)) for weight and bias
            bound = 1.0 / math.sqrt(shapes["fc.weight"][1])
            arrays[name] = generator.uniform(-bound, bound, shape).astype(numpy.float32)
        elif len(shape) == 4:                   # Kaiming normal, fan_out mode, ReLU gain sqrt(2)
            draw = generator.standard_normal(shape, dtype=numpy.float32)
            draw *= numpy.float32(math.sqrt(2.0 / (shape[0] * shape[2] * shape[3])))
            arrays[name] = draw
        elif name.endswith(("running_var", ".weight")):
            arrays[name] = numpy.ones(shape, dtype=numpy.float32)          # BatchNorm scale, running variance
        else:
            arrays[name] = numpy.zeros(shape, dtype=numpy.float32)         # BatchNorm shift, running mean
    return arrays


def _check_size(input_size: Any) -> None:
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
        raise ShapeError(f"ResNet input_size must be a positive int (the image side), got {input_size!r}")


def _metadata(name: str, input_size: int, source: str, spec: ResNetSpec) -> ModelMetadata:
    return ModelMetadata(input_shape=(spec.in_channels, input_size, input_size), value_range=(0.0, 1.0),
                         mean=IMAGENET_MEAN, std=IMAGENET_STD, name=name,
                         description=f"{name} (He et al. 2016, torchvision's ResNet v1.5) as a graph with "
                                     f"torchvision's module names, {input_size}×{input_size} RGB inputs in [0, 1] "
                                     f"normalised with the ImageNet mean/std; BatchNorm not folded "
                                     f"(lrpcore.canonize); {source}")


def resnet_from_state_dict(arrays: Mapping[str, Any], arch: str | ResNetSpec = "resnet50", input_size: int = 224,
                           dtype: str | None = "float32", source: str = "weights from a state dict",
                           metadata: ModelMetadata | None = None) -> Graph:
    """Build ``arch`` from torchvision-named NumPy arrays, checking every name, shape and dtype first.

    The number of classes is read from ``fc.weight``. ``num_batches_tracked`` entries are ignored.
    Missing, unexpected or mis-shaped entries raise :class:`~lrpcore.errors.ModelFormatError`
    naming them. ``metadata`` (default: ImageNet preprocessing, ``input_size``) is used as given,
    its ``input_shape`` set to (C, input_size, input_size).
    """
    spec = _spec(arch) if isinstance(arch, ResNetSpec) or arch in ARCHITECTURES else None
    if spec is None:
        raise ModelFormatError(f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}")
    name = arch if isinstance(arch, str) else "resnet"
    _check_size(input_size)
    classifier = arrays.get("fc.weight")
    if classifier is None or getattr(classifier, "ndim", 0) != 2:
        raise ModelFormatError(f"{name} state dict has no 2-D entry 'fc.weight'; is it a torchvision-style "
                               f"{name}? First keys: {list(arrays)[:4]}")
    num_classes = int(classifier.shape[0])
    expected = parameter_shapes(spec, num_classes)
    matched_arrays(arrays, expected, name)
    model_arrays = _cast({key: numpy.asarray(arrays[key]) for key in expected}, dtype)
    if metadata is None:
        metadata = _metadata(name, input_size, source, spec)
    else:
        metadata = dataclasses.replace(metadata, input_shape=(spec.in_channels, input_size, input_size))
    return Graph(_nodes(spec, model_arrays, input_size), metadata)


def _structure(graph: Graph) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(node.name, node.layer.describe(), node.inputs) for node in graph.nodes]


def _check_same_structure(model: Any, reference: Graph, where: str) -> None:
    if not isinstance(model, Graph) or _structure(model) != _structure(reference):
        found = _structure(model) if isinstance(model, Graph) else []
        first = next((index for index, (a, b) in enumerate(zip(found, _structure(reference))) if a != b),
                     min(len(found), len(reference)))
        got = found[first] if first < len(found) else "nothing"
        raise ModelFormatError(f"'{where}' is not {reference.metadata.name} at input size "
                               f"{reference.metadata.input_shape[-1]}: node {first} is {got}, expected "
                               f"{_structure(reference)[first] if first < len(reference) else 'nothing'} "
                               "(a canonized model loads with lrpcore.load)")


def resnet(arch: str | ResNetSpec = "resnet50", weights: Any = None, input_size: int = 224, num_classes: int | None = None,
           seed: int = 0, dtype: str = "float32") -> Graph:
    """A ResNet of torchvision's architecture ``arch`` (``"resnet18"``, ``"resnet34"``, ``"resnet50"``).

    ``weights``: None (torchvision-style random init from ``seed``), a path to an lrpcore HDF5
    file (``.h5``/``.hdf5``, holding this architecture unfolded) or to a ``torch.save``d state
    dict (any other suffix), or a mapping name → array/tensor with torchvision's names (e.g.
    ``torchvision_model.state_dict()``). ``input_size``: image side (any size torchvision takes;
    it fixes the window of the final average pool). ``num_classes``: 1000 for random weights
    unless given; read from ``fc.weight`` for loaded weights (checked when given). Metadata:
    input shape (3, input_size, input_size), value range (0, 1), ImageNet mean and std.
    """
    spec = _spec(arch)
    name = arch if isinstance(arch, str) else "resnet"
    _check_size(input_size)
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                    or num_classes < 1):
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if weights is None:
        arrays = _torchvision_init(parameter_shapes(spec, num_classes or 1000), seed)
        return Graph(_nodes(spec, _cast(arrays, dtype), input_size),
                     _metadata(name, input_size, f"torchvision-style random init (seed={seed})", spec))
    if isinstance(weights, (str, os.PathLike)):
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise ModelFormatError(f"weights file '{path}' does not exist")
        if os.path.splitext(path)[1].lower() in (".h5", ".hdf5"):
            from ..io import load      # the lrpcore HDF5 format

            model = load(path, dtype=dtype)
            classes = model.output_shapes()[-1][0] if model.metadata.input_shape else None
            shapes = parameter_shapes(spec, num_classes or classes or 1000)
            reference = Graph(_nodes(spec, {key: numpy.zeros(shape, numpy.float32) for key, shape in shapes.items()},
                                     input_size), _metadata(name, input_size, "", spec))
            _check_same_structure(model, reference, path)
            return model
        from ..io.torch import load_state_dict

        model = resnet_from_state_dict(load_state_dict(path), arch, input_size, dtype, source=f"weights from '{path}'")
    elif isinstance(weights, Mapping):
        from ..io.torch import load_state_dict

        model = resnet_from_state_dict(load_state_dict(weights), arch, input_size, dtype)
    else:
        raise TypeError(f"weights must be None, a file path or a state dict mapping, got {type(weights).__name__}")
    classes = int(model["fc"].out_features)
    if num_classes is not None and classes != num_classes:
        raise ModelFormatError(f"the weights' fc layer has {classes} outputs, but num_classes={num_classes}")
    return model


def resnet18(weights: Any = None, input_size: int = 224, num_classes: int | None = None, seed: int = 0,
             dtype: str = "float32") -> Graph:
    """torchvision's ResNet-18 (BasicBlocks, [2, 2, 2, 2]); see :func:`resnet` for the arguments."""
    return resnet("resnet18", weights, input_size, num_classes, seed, dtype)


def resnet34(weights: Any = None, input_size: int = 224, num_classes: int | None = None, seed: int = 0,
             dtype: str = "float32") -> Graph:
    """torchvision's ResNet-34 (BasicBlocks, [3, 4, 6, 3]); see :func:`resnet` for the arguments."""
    return resnet("resnet34", weights, input_size, num_classes, seed, dtype)


def resnet50(weights: Any = None, input_size: int = 224, num_classes: int | None = None, seed: int = 0,
             dtype: str = "float32") -> Graph:
    """torchvision's ResNet-50 (Bottlenecks, v1.5, [3, 4, 6, 3]); see :func:`resnet` for the arguments."""
    return resnet("resnet50", weights, input_size, num_classes, seed, dtype)
