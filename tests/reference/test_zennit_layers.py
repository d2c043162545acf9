"""The layers of issue 12 against zennit 0.5.1 on the same weights, float64, largest relative difference ≤ 1e-6.

Networks from ``tests/_zoo_networks.py``: grouped and depthwise convolutions, ceil-mode and
``count_include_pad=False`` pooling, uneven adaptive and global average pooling, tanh and sigmoid MLPs
(identity rule at the activations, as zennit's ``Pass``), a 1-D CNN, the MobileNet-v2 block without its
residual, and the AlexNet-style network with its LRN layers passed (``Pass`` on both sides: zennit has no
LRN rule; lrpcore's default for LRN, Binder et al.'s Taylor terms, is checked against loops written from
that formula, in the same trace).

The options matching zennit's definitions are the harness's (``_reference_harness``): max pooling to the
first maximum, average pooling with zennit's ``Norm`` (ε = 1e-6), zennit's stabilizer, symmetric γ,
w² with b², BatchNorm passed. zennit starts from onehot ⊙ output.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed; the zennit reference suite needs "
                                            "torch==2.13.0 and zennit==0.5.1 (pip install --no-deps zennit==0.5.1)")
import zennit  # noqa: E402,F401

import _reference_harness as harness  # noqa: E402
from lrpcore import explain  # noqa: E402
from lrpcore.composites import Composite  # noqa: E402
from lrpcore.io.torch import from_torch  # noqa: E402
from lrpcore.layers import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d, AdaptiveMaxPool2d,  # noqa: E402
                            AvgPool1d, AvgPool2d, Conv1d, Conv2d, Dense, LocalResponseNorm, MaxPool1d, MaxPool2d)
from lrpcore.rules import AlphaBeta, Epsilon, Flat, Gamma, Pass, WSquare, Zero, ZPlus  # noqa: E402
from lrpcore.testing import naive_relevance  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _zoo_networks as networks  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:the model has BatchNorm layers")
METHODS = ("epsilon", "gamma", "zplus", "alpha2beta1", "flat", "wsquare")
#: network → the methods compared (all six everywhere; the LRN network passes LRN on both sides).
CASES = [(name, method) for name in networks.NAMES for method in METHODS]


@dataclasses.dataclass
class Case:
    name: str
    torch_net: object
    model: object
    x: np.ndarray
    target: np.ndarray
    source: str = "random weights (tests/_zoo_networks.py)"


_CACHE: dict[str, Case] = {}


def case_for(name: str) -> Case:
    if name not in _CACHE:
        network, shape = networks.build(name)
        model = from_torch(network, input_shape=shape, dtype="float64")
        x = networks.inputs(shape)
        logits = model.forward(x)
        target = logits.argmax(axis=1)
        target[1::2] = (target[1::2] + 1) % logits.shape[1]
        _CACHE[name] = Case(name, network, model, x, target)
    return _CACHE[name]


def lrpcore_composite(method: str) -> Composite:
    rule = {"epsilon": lambda: Epsilon(harness.EPSILON), "gamma": lambda: Gamma(harness.GAMMA, symmetric=True),
            "zplus": ZPlus, "alpha2beta1": lambda: AlphaBeta(2, 1), "flat": Flat,
            "wsquare": lambda: WSquare(use_bias=True)}[method]()
    route_like_gradient = isinstance(rule, (Flat, WSquare))
    max_rule = (WSquare(stabilizer="vanilla", epsilon=0.0, maxpool="winner_first") if route_like_gradient
                else Zero(stabilizer="vanilla", maxpool="winner_first"))
    average = Epsilon(1e-6, stabilizer="zennit")
    by_type = {Dense: rule, Conv2d: rule, Conv1d: rule, LocalResponseNorm: Pass()}
    by_type.update({kind: average for kind in (AvgPool2d, AvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool1d)})
    by_type.update({kind: max_rule for kind in (MaxPool2d, MaxPool1d, AdaptiveMaxPool2d, AdaptiveMaxPool1d)})
    return Composite(by_type=by_type, name=f"zennit-like {method}")


def zennit_relevance(case: Case, method: str) -> np.ndarray:
    from zennit import composites as zc
    from zennit import rules as zr
    from zennit.types import Activation, AvgPool, BatchNorm, Linear

    rule = {"epsilon": lambda: zr.Epsilon(epsilon=harness.EPSILON), "gamma": lambda: zr.Gamma(gamma=harness.GAMMA),
            "zplus": zr.ZPlus, "alpha2beta1": lambda: zr.AlphaBeta(alpha=2, beta=1), "flat": zr.Flat,
            "wsquare": zr.WSquare}[method]()
    layer_map = [(Activation, zr.Pass()), (AvgPool, zr.Norm()), (BatchNorm, zr.Pass()),
                 (torch.nn.LocalResponseNorm, zr.Pass()), (Linear, rule)]
    composite = zc.LayerMapComposite(layer_map=layer_map)
    x = torch.from_numpy(case.x.copy()).requires_grad_(True)
    with composite.context(case.torch_net) as modified:
        output = modified(x)
        onehot = torch.zeros_like(output)
        onehot[torch.arange(len(case.target)), torch.from_numpy(case.target)] = 1.0
        (relevance,) = torch.autograd.grad(output, x, grad_outputs=(onehot * output).detach())
    return relevance.detach().numpy()


@pytest.mark.parametrize("name, method", CASES)
def test_relevance_equals_zennit_in_float64(name, method):
    case = case_for(name)
    ours = np.asarray(explain(case.model, case.x, target=case.target, composite=lrpcore_composite(method)).relevance)
    reference = zennit_relevance(case, method)
    assert np.abs(reference).max() > 0
    difference = harness.relative_difference(ours, reference)
    harness.record(case, method, difference)
    assert difference <= harness.TOLERANCE, f"{name}/{method}: relative difference {difference:.3g} to zennit"


@pytest.mark.parametrize("name", networks.NAMES)
def test_gradient_times_input_equals_torch_autograd(name):
    case = case_for(name)
    difference = harness.gradient_times_input_difference(case)
    harness.record(case, "gradient×input (autograd)", difference)
    assert difference <= 1e-10


def test_the_layer_types_are_the_expected_ones():
    """The conversions keep what makes each network the case it stands for."""
    kinds = {name: [type(layer).__name__ for layer in case_for(name).model.layers] for name in networks.NAMES}
    assert kinds["alexnet"].count("LocalResponseNorm") == 2 and "AdaptiveAvgPool2d" in kinds["alexnet"]
    assert all(layer.ceil_mode for layer in case_for("alexnet").model.layers if isinstance(layer, MaxPool2d))
    groups = [layer.groups for layer in case_for("mobilenet_block").model.layers if isinstance(layer, Conv2d)]
    assert groups == [1, 1, 48, 1]
    assert "AdaptiveAvgPool2d" in kinds["pooling"] and "AdaptiveMaxPool2d" in kinds["pooling"]
    assert "AdaptiveAvgPool1d" in kinds["sequence"]
    assert kinds["tanh_mlp"].count("Tanh") == 2 and kinds["sigmoid_mlp"].count("Sigmoid") == 2


def test_lrn_steps_of_the_alexnet_trace_equal_binders_formula_as_loops():
    """With its default (a linear-layer rule on Binder et al.'s Taylor terms), each LRN step of an explanation
    equals the loop reference of that formula (``lrpcore.testing``) on the step's own input and relevance."""
    case = case_for("alexnet")
    composite = lrpcore_composite("epsilon")
    del composite.by_type[LocalResponseNorm]                  # back to the default: the rule of linear layers
    explanation = explain(case.model, case.x[:1], target=case.target[:1], composite=composite, record=True)
    steps = [step for step in explanation.trace if isinstance(step.layer, LocalResponseNorm)]
    assert len(steps) == 2
    for step in steps:
        expected = naive_relevance(step.layer, step.a, step.relevance_out, step.rule)
        scale = np.abs(expected).max()
        assert scale > 0
        np.testing.assert_allclose(np.asarray(step.relevance_in), expected, rtol=0, atol=1e-10 * scale)
        # conservation up to the ε the rule adds, and a real difference from the identity pass
        assert abs(float(np.sum(step.relevance_in)) - float(np.sum(step.relevance_out))) <= 1e-3 * float(
            np.abs(step.relevance_out).sum())
        assert np.abs(np.asarray(step.relevance_in) - np.asarray(step.relevance_out)).max() > 1e-6 * scale


def test_zero_padding_crops_relevance_as_zennits_gradient_does():
    """zennit has no rule for ZeroPad2d and lets the gradient route relevance: the padded cells are cropped.
    lrpcore's ``ZeroPad2d.pass_relevance`` is that crop; ``Pass`` needs to call it (the lead's change to
    ``lrpcore.rules.Pass``), here done by a ``Pass`` that uses it, named by index."""
    from lrpcore.layers import ZeroPad2d

    class CropPass(Pass):
        def relevance(self, layer, a, relevance, record=None, output=None, counts_only=False):
            return layer.pass_relevance(relevance, tuple(a.shape))

    network = torch.nn.Sequential(torch.nn.ZeroPad2d((1, 2, 0, 1)), torch.nn.Conv2d(2, 4, 3), torch.nn.ReLU(),
                                  torch.nn.ZeroPad2d(1), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                                  torch.nn.Linear(4 * 3 * 4, 3))
    networks._initialise(torch, network, seed=5)
    network = network.double().eval()
    model = from_torch(network, input_shape=(2, 6, 5), dtype="float64")
    x = networks.inputs((2, 6, 5))
    logits = model.forward(x)
    case = Case("zero padding", network, model, x, logits.argmax(axis=1))
    for method in ("epsilon", "flat"):
        composite = lrpcore_composite(method)
        composite.by_index = {index: CropPass() for index, layer in enumerate(model.layers)
                              if isinstance(layer, ZeroPad2d)}
        ours = np.asarray(explain(model, x, target=case.target, composite=composite).relevance)
        difference = harness.relative_difference(ours, zennit_relevance(case, method))
        harness.record(case, method, difference)
        assert difference <= harness.TOLERANCE, f"zero padding/{method}: {difference:.3g}"
