"""On ResNets, lrpcore's composites give zennit's input relevances (with its ResNetCanonizer) in float64.

The networks, the matching definitions (``Add`` ↔ zennit's ``Sum`` with ``Norm``, pools, BatchNorm
merging) and the difference measure are in ``_resnet_harness`` and ``_reference_harness``. CI runs
ResNet-18 at 64×64 with three seeds and every method, and ResNet-50 at 64×64 with one seed;
``python tools/reference_report.py --resnets`` runs both architectures with three seeds.
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed; the zennit reference suite needs "
                                            "torch==2.13.0 and zennit==0.5.1 (pip install --no-deps zennit==0.5.1)")
import zennit  # noqa: E402,F401

import _reference_harness as harness  # noqa: E402
import _resnet_harness as resnets  # noqa: E402

SEEDS = (0, 1, 2)
_TWINS: dict[tuple, resnets.ResNetTwin] = {}


def twin_for(arch: str, seed: int, merge: str = "exact") -> resnets.ResNetTwin:
    key = (arch, seed, merge)
    if key not in _TWINS:
        _TWINS[key] = resnets.build_resnet_twin(arch, seed, size=64, merge=merge)
    return _TWINS[key]


def _check(arch: str, seed: int, method: str) -> None:
    twin = twin_for(arch, seed)
    difference = resnets.compare(twin, method)
    harness.record(twin, method, difference)
    assert difference <= harness.TOLERANCE, f"{twin.name}/{method}: relative difference {difference:.3g} to zennit"


@pytest.mark.parametrize("method", resnets.METHODS)
@pytest.mark.parametrize("seed", SEEDS)
def test_resnet18_relevance_equals_zennit_in_float64(seed, method):
    _check("resnet18", seed, method)


@pytest.mark.slow
@pytest.mark.parametrize("method", resnets.METHODS)
def test_resnet50_relevance_equals_zennit_in_float64(method):
    _check("resnet50", 0, method)


def test_zennits_batchnorm_merge_keeping_eps_explains_another_network():
    # zennit 0.5.1 leaves each merged BatchNorm computing x/sqrt(1 + eps): with eps kept the two sides
    # explain networks that differ by about 5e-6 per BatchNorm on a path, well above the tolerance
    twin = twin_for("resnet18", 0, merge="zennit")
    difference = resnets.compare(twin, "epsilon_plus")
    harness.record(twin, "epsilon_plus", difference)
    assert 1e-5 < difference < 1e-3


def test_uniform_epsilon_needs_zennits_structural_rules():
    # zennit's LayerMapComposite gives the block sums and the average pool Norm (ε = 1e-6), not the layers' ε
    twin = twin_for("resnet18", 1)
    assert resnets.compare(twin, "epsilon") <= harness.TOLERANCE
    assert resnets.compare(twin, "epsilon", zennit_structural=False) > 1e-3
