"""The zennit reference comparison, shared by ``tests/reference`` and ``tools/reference_report.py``.

One set of weights lives in a PyTorch network; lrpcore gets it through
:func:`lrpcore.io.torch.from_torch`. Both explain the same float64 batch for the same
targets, zennit starting its backward pass from ``onehot * output`` (relevance in logit
units, as lrpcore's ``top="logit"``), and the input relevances are compared.

Where zennit's definitions differ from lrpcore's defaults, lrpcore's matching option is
set explicitly here:

- max pooling: zennit leaves it to the gradient (all relevance to the first maximum of
  each window) → lrpcore ``WinnerTakesAll("first")`` (the presets' structural rule);
- Gamma: zennit chooses the favoured sign by the sign of z_k → ``Gamma(symmetric=True)``;
- WSquare: zennit adds b² to the denominator → ``WSquare(use_bias=True)``;
- stabilizer: zennit's z + ((z = 0) + sign z)·ε → lrpcore's ``"zennit"`` stabilizer;
- average pooling: zennit's parameter-free ε rule (``Norm``) → ``Epsilon(1e-6)``;
- ReLU/BatchNorm: zennit's ``Pass`` → lrpcore ``Pass`` (the default for element-wise layers).

Networks: the shipped ``models/<name>.h5`` when present (loaded with ``lrpcore.load``),
else a network of the same architecture with random weights (torchvision-style Kaiming
init, plus small random biases so that every rule's bias handling is exercised); VGG-16 at
32×32 with torchvision's init (zero biases) in a torchvision-style container.
"""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, Callable

import numpy as np

from lrpcore import Composite, ModelMetadata, Sequential, explain, gradient
from lrpcore.composites import get_composite
from lrpcore.io.torch import from_torch, to_torch
from lrpcore.layers import AvgPool2d, Conv2d, Dense, MaxPool2d
from lrpcore.rules import AlphaBeta, Epsilon, Flat, Gamma, Rule, WinnerTakesAll, WSquare, ZBox, ZPlus

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
MODEL_NAMES = ("digits_mlp", "digits_cnn", "shapes_cnn", "vgg16")
RULES = ("epsilon", "gamma", "zplus", "alpha2beta1", "flat", "wsquare", "zbox")
COMPOSITES = ("epsilon_gamma_box", "epsilon_plus", "epsilon_plus_flat", "epsilon_alpha2_beta1",
              "epsilon_alpha2_beta1_flat")
METHODS = RULES + COMPOSITES
#: Largest accepted relative difference in float64 (see :func:`relative_difference`).
TOLERANCE = 1e-6
#: ε of the uniform Epsilon case: large enough that the stabilizer visibly matters.
EPSILON = 0.1
GAMMA = 0.25
BATCH = 3
VGG_INPUT_SIZE = 32


@dataclasses.dataclass
class Twin:
    """The same network in PyTorch (float64, eval mode) and lrpcore (converted by from_torch)."""

    name: str
    torch_net: Any
    model: Sequential
    x: np.ndarray            # model input (preprocessed), float64
    target: np.ndarray       # one class per sample, not always the predicted one
    source: str              # where the weights came from


# --- networks -----------------------------------------------------------------------------------
def _init_torchvision_style(torch: Any, network: Any, seed: int, bias_scale: float) -> None:
    """Kaiming-normal (fan_out, ReLU) convolutions, Kaiming (fan_in) dense layers, small random biases."""
    generator = torch.Generator().manual_seed(seed)
    for module in network.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            fan = (module.weight.shape[0] * module.weight[0, 0].numel() if isinstance(module, torch.nn.Conv2d)
                   else module.weight.shape[1])
            with torch.no_grad():
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2.0 / fan) ** 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * bias_scale)


def _random_network(torch: Any, name: str) -> tuple[Any, ModelMetadata]:
    nn = torch.nn
    if name == "digits_mlp":
        network = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                                nn.Linear(16, 10))
        metadata = ModelMetadata(input_shape=(1, 8, 8), value_range=(0.0, 1.0), name=name)
    elif name == "digits_cnn":
        network = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                                nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        metadata = ModelMetadata(input_shape=(1, 8, 8), value_range=(0.0, 1.0), name=name)
    elif name == "shapes_cnn":
        network = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1),
                                nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 8 * 8, 64), nn.ReLU(),
                                nn.Dropout(0.5), nn.Linear(64, 6))
        metadata = ModelMetadata(input_shape=(3, 64, 64), value_range=(0.0, 1.0), mean=(0.5, 0.45, 0.4),
                                 std=(0.25, 0.25, 0.3), name=name)
    else:
        raise ValueError(f"no random stand-in for {name!r}")
    _init_torchvision_style(torch, network, seed=MODEL_NAMES.index(name), bias_scale=0.1)
    return network, metadata


class TorchVGG:
    """Factory of torchvision's VGG container (features, avgpool, classifier) without torchvision."""

    @staticmethod
    def build(torch: Any, model: Sequential) -> Any:
        nn = torch.nn
        layers = list(to_torch(model))

        class VGG(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.features = nn.Sequential(*layers[:31])
                # torchvision's AdaptiveAvgPool2d((7, 7)) is the identity at 224×224, and lrpcore's VGG leaves
                # it out. zennit would still give it its ε rule for average pooling (Norm), which scales
                # relevance by a/(a + ε) and puts none on inactive units, so the twin uses the identity.
                self.avgpool = nn.Identity()
                self.classifier = nn.Sequential(*layers[32:])

            def forward(self, x: Any) -> Any:
                return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

        return VGG().eval()


def _inputs(name: str, metadata: ModelMetadata) -> np.ndarray:
    """A raw batch in the model's value range: real data where the model was trained on it."""
    if name.startswith("digits"):
        from lrpcore.data import digits

        raw = digits("test").x[:BATCH].astype(np.float64)
    elif name.startswith("shapes"):
        from lrpcore.data import shapes

        raw = shapes(BATCH, size=metadata.input_shape[-1], seed=2024).x.astype(np.float64)
    else:
        raw = np.random.default_rng(0).random((BATCH, *metadata.input_shape))
    return raw.reshape((BATCH, *metadata.input_shape))


def build_twin(name: str) -> Twin:
    """The float64 torch/lrpcore pair for ``name`` (one of :data:`MODEL_NAMES`)."""
    import torch

    if name == "vgg16":
        from lrpcore.models import vgg16

        reference = vgg16(input_size=VGG_INPUT_SIZE, num_classes=10, seed=0, dtype="float64")
        network = TorchVGG.build(torch, reference)
        metadata, source = reference.metadata, f"torchvision-style init, seed 0, {VGG_INPUT_SIZE}×{VGG_INPUT_SIZE}"
    else:
        path = REPOSITORY / "models" / f"{name}.h5"
        if path.is_file():
            import lrpcore

            shipped = lrpcore.load(path, dtype="float64")
            network, metadata, source = to_torch(shipped), shipped.metadata, f"models/{name}.h5"
        else:
            network, metadata = _random_network(torch, name)
            source = f"random weights (models/{name}.h5 not found)"
    network = network.double().eval()
    model = from_torch(network, input_shape=metadata.input_shape, metadata=metadata, dtype="float64")
    x = model.metadata.preprocess(_inputs(name, model.metadata))
    logits = model.forward(x)
    predicted = logits.argmax(axis=1)
    target = predicted.copy()
    target[1::2] = (predicted[1::2] + 1) % logits.shape[1]        # also explain classes that were not predicted
    return Twin(name=name, torch_net=network, model=model, x=x, target=target, source=source)


def input_bounds(twin: Twin) -> tuple[np.ndarray, np.ndarray]:
    """z^B bounds: the raw value range through the model's preprocessing, one value per input entry."""
    low, high = twin.model.metadata.input_bounds()
    return (np.broadcast_to(low, twin.x.shape).astype(np.float64),
            np.broadcast_to(high, twin.x.shape).astype(np.float64))


def first_layer_bounds(twin: Twin) -> tuple[np.ndarray, np.ndarray]:
    """The bounds in the shape of the first Dense/Conv2d layer's input (flattened behind a Flatten).

    zennit's ZBox needs them in that shape; lrpcore's ZBox flattens model-shaped bounds itself.
    """
    first = next(i for i, layer in enumerate(twin.model.layers) if isinstance(layer, (Dense, Conv2d)))
    shape = twin.model.forward(twin.x, record=True)[first].shape
    low, high = input_bounds(twin)
    return low.reshape(shape), high.reshape(shape)


# --- lrpcore side -------------------------------------------------------------------------------
def _zennit_pooling() -> dict[type, Rule]:
    """Pooling as zennit treats it (the presets' structural rules): its max pooling follows the gradient,
    all relevance to the first maximum of each window, which is :class:`WinnerTakesAll` with ``ties="first"``
    (also where the window's maximum is 0); its average pooling gets the parameter-free ε rule ``Norm``."""
    return {AvgPool2d: Epsilon(1e-6, stabilizer="zennit"), MaxPool2d: WinnerTakesAll("first")}


def _uniform(rule: Rule, first: Rule | None = None) -> Composite:
    return Composite(by_type={Dense: rule, Conv2d: rule}, structural=_zennit_pooling(), first=first,
                     name=f"uniform({rule.describe()})")


def lrpcore_composite(twin: Twin, method: str) -> Composite:
    low, high = input_bounds(twin)
    rules: dict[str, Callable[[], Composite]] = {
        "epsilon": lambda: _uniform(Epsilon(EPSILON, stabilizer="zennit")),
        "gamma": lambda: _uniform(Gamma(GAMMA, symmetric=True)),
        "zplus": lambda: _uniform(ZPlus()),
        "alpha2beta1": lambda: _uniform(AlphaBeta(2, 1)),
        "flat": lambda: _uniform(Flat()),
        "wsquare": lambda: _uniform(WSquare(use_bias=True)),
        "zbox": lambda: _uniform(Epsilon(1e-6, stabilizer="zennit"), first=ZBox(low[:1], high[:1])),
        "epsilon_gamma_box": lambda: get_composite("epsilon_gamma_box", low=low[:1], high=high[:1], gamma=GAMMA),
    }
    if method in rules:
        return rules[method]()
    return get_composite(method)


def lrpcore_relevance(twin: Twin, method: str) -> np.ndarray:
    explanation = explain(twin.model, twin.x, target=twin.target, composite=lrpcore_composite(twin, method))
    return np.asarray(explanation.relevance)


# --- zennit side --------------------------------------------------------------------------------
def zennit_composite(twin: Twin, method: str) -> Any:
    import torch
    from zennit import composites as zc
    from zennit import rules as zr
    from zennit.types import Activation, AvgPool, BatchNorm, Linear

    low, high = (torch.from_numpy(np.ascontiguousarray(bound)) for bound in first_layer_bounds(twin))
    base = [(Activation, zr.Pass()), (AvgPool, zr.Norm()), (BatchNorm, zr.Pass())]
    uniform = {
        "epsilon": lambda: zr.Epsilon(epsilon=EPSILON),
        "gamma": lambda: zr.Gamma(gamma=GAMMA),
        "zplus": lambda: zr.ZPlus(),
        "alpha2beta1": lambda: zr.AlphaBeta(alpha=2, beta=1),
        "flat": lambda: zr.Flat(),
        "wsquare": lambda: zr.WSquare(),
    }
    if method in uniform:
        return zc.LayerMapComposite(layer_map=base + [(Linear, uniform[method]())])
    if method == "zbox":
        return zc.SpecialFirstLayerMapComposite(layer_map=base + [(Linear, zr.Epsilon(epsilon=1e-6))],
                                                first_map=[(Linear, zr.ZBox(low=low, high=high))])
    named = {
        "epsilon_gamma_box": lambda: zc.EpsilonGammaBox(low=low, high=high, gamma=GAMMA),
        "epsilon_plus": zc.EpsilonPlus,
        "epsilon_plus_flat": zc.EpsilonPlusFlat,
        "epsilon_alpha2_beta1": zc.EpsilonAlpha2Beta1,
        "epsilon_alpha2_beta1_flat": zc.EpsilonAlpha2Beta1Flat,
    }
    return named[method]()


def zennit_attribution(composite: Any, network: Any, x: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Input relevance of ``network`` under the zennit ``composite``, starting from onehot ⊙ output (relevance
    in logit units, as lrpcore's ``top="logit"``), for one ``target`` class per sample."""
    import torch

    inputs = torch.from_numpy(np.array(x, copy=True)).requires_grad_(True)
    with composite.context(network) as modified:
        output = modified(inputs)
        onehot = torch.zeros_like(output)
        onehot[torch.arange(len(target)), torch.from_numpy(np.asarray(target))] = 1.0
        (relevance,) = torch.autograd.grad(output, inputs, grad_outputs=(onehot * output).detach())
    return relevance.detach().numpy()


def zennit_relevance(twin: Twin, method: str) -> np.ndarray:
    """Input relevance from zennit, starting from onehot ⊙ output (relevance in logit units)."""
    return zennit_attribution(zennit_composite(twin, method), twin.torch_net, twin.x, twin.target)


# --- comparing ----------------------------------------------------------------------------------
def relative_difference(ours: np.ndarray, reference: np.ndarray) -> float:
    """max over samples of max_i |ours_i − reference_i| / max_i |reference_i| (per-sample scale)."""
    ours = ours.reshape(ours.shape[0], -1)
    reference = reference.reshape(reference.shape[0], -1)
    scale = np.maximum(np.abs(reference).max(axis=1), np.finfo(np.float64).tiny)
    return float((np.abs(ours - reference).max(axis=1) / scale).max())


def compare(twin: Twin, method: str) -> float:
    return relative_difference(lrpcore_relevance(twin, method), zennit_relevance(twin, method))


def gradient_times_input_difference(twin: Twin) -> float:
    """lrpcore's ``gradient(model, x, target) * x`` against torch autograd on the same weights."""
    import torch

    ours, _ = gradient(twin.model, twin.x, twin.target)
    x = torch.from_numpy(twin.x.copy()).requires_grad_(True)
    output = twin.torch_net(x)
    selected = output[torch.arange(len(twin.target)), torch.from_numpy(twin.target)].sum()
    (reference,) = torch.autograd.grad(selected, x)
    return relative_difference(np.asarray(ours) * twin.x, (reference * x).detach().numpy())


# --- collecting the table -------------------------------------------------------------------------
#: (model, method) → (largest relative difference, weight source); filled by the tests and the report tool.
RESULTS: dict[tuple[str, str], tuple[float, str]] = {}


def record(twin: Twin, method: str, difference: float) -> None:
    RESULTS[(twin.name, method)] = (difference, twin.source)


def format_table(results: dict[tuple[str, str], tuple[float, str]] | None = None) -> list[str]:
    """A Markdown table: one row per (model, method) with the largest relative difference."""
    results = RESULTS if results is None else results
    lines = ["| model | method | largest relative difference | weights |", "|---|---|---|---|"]
    for (model, method), (difference, source) in sorted(
            results.items(), key=lambda item: (MODEL_NAMES.index(item[0][0]) if item[0][0] in MODEL_NAMES
                                               else len(MODEL_NAMES), item[0][1])):
        flag = "" if difference <= TOLERANCE else "  **above tolerance**"
        lines.append(f"| {model} | {method} | {difference:.2e}{flag} | {source} |")
    return lines
