"""The zennit reference comparison on residual networks, shared by ``tests/reference`` and
``tools/reference_report.py``.

One torchvision ResNet (the architecture from ``torchvision.models.resnet``: the real package where
it imports, else the test stand-in in ``_stubs/``) holds the weights: torchvision's initialisation
from ``torch.manual_seed(seed)``, plus random BatchNorm statistics and affine parameters (weight in
[0.5, 1.5], bias and running mean ~ N(0, 0.1²), running variance in [0.5, 1.5]) so that folding
BatchNorm is exercised (torchvision's init makes every BatchNorm an identity). lrpcore builds the
same network from its state dict, ``lrpcore.models.resnet18(weights=state_dict)``, and folds
BatchNorm with ``lrpcore.canonize``; zennit gets the torch network with its ``ResNetCanonizer``
(BatchNorm merged into the convolution before it, and each block's addition replaced by a ``Sum``
module over the stacked (identity, branch) pair). Both explain the same float64 batch for the same
targets, zennit starting from ``onehot * output``, and the input relevances are compared.

Matching definitions:

- ``Sum`` gets zennit's ``Norm`` rule in every zennit composite (``layer_map_base``): LRP-ε with
  ε = 1e-6 and zennit's stabilizer, R_i = z_i / stab(Σ z) · R, which is lrpcore's structural rule for
  ``Add``; AdaptiveAvgPool2d likewise (``Norm``) ↔ lrpcore's structural rule for the final
  ``AvgPool2d``; the max pool follows the gradient (all relevance to the first maximum of each
  window) ↔ ``WinnerTakesAll("first")``, which lrpcore's zennit presets use.
- For uniform ε and γ (zennit ``LayerMapComposite(layer_map_base() + [(Linear, rule)])``) lrpcore's
  ``uniform(rule, structural=structural_rules("first"))``: the rule on every convolution and the
  fc layer, and zennit's ``Norm``/gradient at ``Add``, the average pool and the max pool. (Without
  ``structural=``, ``uniform(Epsilon(0.1))`` gives ``Add`` and the pool ε = 0.1 as well: LRP-ε
  everywhere, a different definition.)
- BatchNorm merging: zennit 0.5.1's merge folds scale γ/√(σ² + eps) into the convolution but leaves
  the BatchNorm module computing x/√(1 + eps) afterwards (running variance 1, eps kept), so the
  merged network is not the original one (each merged BatchNorm ≈ 1 − 5·10⁻⁶). ``merge="exact"``
  (the default) moves eps into the running variance of the torch twin (σ² + eps, eps = 0: the same
  function, and zennit's merge is then exact), so both sides explain the same canonized network;
  ``merge="zennit"`` keeps eps and shows the residual of zennit's merge.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

import _reference_harness as harness
from lrpcore import Composite, canonize, explain
from lrpcore.composites import get_composite, structural_rules, uniform
from lrpcore.models import resnet
from lrpcore.rules import Epsilon, Gamma

ARCHITECTURES = ("resnet18", "resnet50")
METHODS = ("epsilon_plus", "epsilon_alpha2_beta1", "epsilon_gamma_box", "epsilon", "gamma")
NUM_CLASSES = 10
BATCH = 2


@dataclasses.dataclass
class ResNetTwin:
    """One ResNet in torch (float64, eval mode) and lrpcore (from its state dict, BatchNorm folded)."""

    name: str
    torch_net: Any
    model: Any
    x: np.ndarray
    target: np.ndarray
    source: str


def _random_batchnorm(torch: Any, network: Any, seed: int) -> None:
    generator = torch.Generator().manual_seed(1000 + seed)
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                size = module.num_features
                module.weight.copy_(0.5 + torch.rand(size, generator=generator, dtype=torch.float64))
                module.bias.copy_(0.1 * torch.randn(size, generator=generator, dtype=torch.float64))
                module.running_mean.copy_(0.1 * torch.randn(size, generator=generator, dtype=torch.float64))
                module.running_var.copy_(0.5 + torch.rand(size, generator=generator, dtype=torch.float64))


def build_resnet_twin(arch: str, seed: int, size: int = 64, merge: str = "exact") -> ResNetTwin:
    """The float64 torch/lrpcore pair: torchvision init from ``seed``, random BatchNorm statistics."""
    import torch
    from torchvision.models import resnet as torchvision_resnet

    if merge not in ("exact", "zennit"):
        raise ValueError(f"merge must be 'exact' or 'zennit', got {merge!r}")
    torch.manual_seed(seed)
    network = getattr(torchvision_resnet, arch)(num_classes=NUM_CLASSES).double().eval()
    _random_batchnorm(torch, network, seed)
    model = canonize(resnet(arch, weights=network.state_dict(), input_size=size, dtype="float64"))
    if merge == "exact":        # the same function; zennit's merge then leaves exact identities
        with torch.no_grad():
            for module in network.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_var += module.eps
                    module.eps = 0.0
    raw = np.random.default_rng(seed).random((BATCH, 3, size, size))
    x = model.metadata.preprocess(raw)
    predicted = model.forward(x).argmax(axis=1)
    target = predicted.copy()
    target[1::2] = (predicted[1::2] + 1) % NUM_CLASSES        # also a class that was not predicted
    source = (f"torchvision init seed {seed}, random BN statistics, {size}×{size}"
              + ("" if merge == "exact" else ", zennit's merge with eps kept"))
    name = f"{arch} (seed {seed}, {size}×{size}{'' if merge == 'exact' else ', eps kept in the merge'})"
    return ResNetTwin(name, network, model, x, target, source)


def _bounds(twin: ResNetTwin) -> tuple[np.ndarray, np.ndarray]:
    low, high = twin.model.metadata.input_bounds()
    return (np.broadcast_to(low, twin.x.shape).astype(np.float64),
            np.broadcast_to(high, twin.x.shape).astype(np.float64))


def lrpcore_composite(twin: ResNetTwin, method: str, zennit_structural: bool = True) -> Composite:
    low, high = _bounds(twin)
    structural = structural_rules("first") if zennit_structural else None
    made = {
        "epsilon": lambda: uniform(Epsilon(harness.EPSILON, stabilizer="zennit"), structural=structural),
        "gamma": lambda: uniform(Gamma(harness.GAMMA, symmetric=True), structural=structural),
        "epsilon_gamma_box": lambda: get_composite("epsilon_gamma_box", low=low[:1], high=high[:1],
                                                   gamma=harness.GAMMA),
    }
    return made[method]() if method in made else get_composite(method)


def zennit_composite(twin: ResNetTwin, method: str) -> Any:
    import torch
    from zennit import composites as zc
    from zennit import rules as zr
    from zennit.torchvision import ResNetCanonizer
    from zennit.types import Linear

    low, high = (torch.from_numpy(np.ascontiguousarray(bound)) for bound in _bounds(twin))
    canonizers = [ResNetCanonizer()]
    made = {
        "epsilon_plus": lambda: zc.EpsilonPlus(canonizers=canonizers),
        "epsilon_alpha2_beta1": lambda: zc.EpsilonAlpha2Beta1(canonizers=canonizers),
        "epsilon_gamma_box": lambda: zc.EpsilonGammaBox(low=low, high=high, gamma=harness.GAMMA,
                                                        canonizers=canonizers),
        "epsilon": lambda: zc.LayerMapComposite(zc.layer_map_base() + [(Linear, zr.Epsilon(epsilon=harness.EPSILON))],
                                                canonizers=canonizers),
        "gamma": lambda: zc.LayerMapComposite(zc.layer_map_base() + [(Linear, zr.Gamma(gamma=harness.GAMMA))],
                                              canonizers=canonizers),
    }
    return made[method]()


def lrpcore_relevance(twin: ResNetTwin, method: str, zennit_structural: bool = True) -> np.ndarray:
    composite = lrpcore_composite(twin, method, zennit_structural)
    return np.asarray(explain(twin.model, twin.x, target=twin.target, composite=composite).relevance)


def zennit_relevance(twin: ResNetTwin, method: str) -> np.ndarray:
    """Input relevance from zennit with its ResNet canonizer, starting from onehot ⊙ output."""
    return harness.zennit_attribution(zennit_composite(twin, method), twin.torch_net, twin.x, twin.target)


def compare(twin: ResNetTwin, method: str, zennit_structural: bool = True) -> float:
    return harness.relative_difference(lrpcore_relevance(twin, method, zennit_structural),
                                       zennit_relevance(twin, method))


def forward_difference(arch: str, seed: int, size: int = 64) -> float:
    """Largest relative difference of the logits: torch's torchvision ResNet vs lrpcore's unfolded graph."""
    import torch
    from torchvision.models import resnet as torchvision_resnet

    torch.manual_seed(seed)
    network = getattr(torchvision_resnet, arch)(num_classes=NUM_CLASSES).double().eval()
    _random_batchnorm(torch, network, seed)
    model = resnet(arch, weights=network.state_dict(), input_size=size, dtype="float64")
    x = np.random.default_rng(seed).standard_normal((BATCH, 3, size, size))
    with torch.no_grad():
        reference = network(torch.from_numpy(x)).numpy()
    return float(np.abs(model.forward(x) - reference).max() / np.abs(reference).max())
