"""Max-pool windows whose maximum is 0 (issue 14, item 3): relevance that reaches them goes to the first
maximum, as zennit's gradient routing does, instead of being absorbed by LRP-0's zero denominator.

Repro from the issue: integer-valued inputs (so many windows are all zero), a max pool first, and a rule
on the first convolution that puts relevance on inputs regardless of their value (z^B or flat).
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed; the zennit reference suite needs "
                                            "torch==2.13.0 and zennit==0.5.1 (pip install --no-deps zennit==0.5.1)")
import zennit  # noqa: E402,F401

import _reference_harness as harness  # noqa: E402
import lrpcore  # noqa: E402
from lrpcore import ModelMetadata  # noqa: E402
from lrpcore.composites import get_composite  # noqa: E402
from lrpcore.io.torch import from_torch  # noqa: E402
from lrpcore.layers import MaxPool2d  # noqa: E402
from lrpcore.rules import Zero  # noqa: E402


def _pool_first_twin(seed: int) -> harness.Twin:
    nn = torch.nn
    torch.manual_seed(seed)
    network = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(),
                            nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    network = network.double().eval()
    metadata = ModelMetadata(input_shape=(2, 8, 8), value_range=(0.0, 2.0), name="pool_first")
    model = from_torch(network, input_shape=(2, 8, 8), metadata=metadata, dtype="float64")
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, size=(3, 2, 8, 8)) * (rng.random((3, 2, 8, 8)) < 0.3)
    x = x.astype(np.float64)
    target = model.forward(x).argmax(axis=1)
    return harness.Twin("pool_first", network, model, x, target, f"random init, seed {seed}")


def _composites(method: str, batch: int):
    """(lrpcore composite, zennit composite); z^B bounds are the value range (0, 2), which max pooling keeps."""
    from zennit import composites as zc

    if method == "epsilon_gamma_box":
        low, high = torch.zeros((batch, 2, 4, 4), dtype=torch.float64), torch.full((batch, 2, 4, 4), 2.0,
                                                                                   dtype=torch.float64)
        return (get_composite(method, low=0.0, high=2.0, gamma=harness.GAMMA),
                zc.EpsilonGammaBox(low=low, high=high, gamma=harness.GAMMA))
    return get_composite(method), getattr(zc, {"epsilon_plus_flat": "EpsilonPlusFlat",
                                               "epsilon_alpha2_beta1_flat": "EpsilonAlpha2Beta1Flat"}[method])()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("method", ["epsilon_gamma_box", "epsilon_plus_flat", "epsilon_alpha2_beta1_flat"])
def test_relevance_at_zero_windows_follows_zennit(method, seed):
    twin = _pool_first_twin(seed)
    pooled = twin.model.forward(twin.x, record=True)[1]
    assert (pooled == 0).mean() > 0.2                          # the repro really has zero windows
    composite, zennit_composite = _composites(method, len(twin.x))
    ours = lrpcore.explain(twin.model, twin.x, target=twin.target, composite=composite)
    reference = harness.zennit_attribution(zennit_composite, twin.torch_net, twin.x, twin.target)
    assert harness.relative_difference(np.asarray(ours.relevance), reference) <= harness.TOLERANCE
    # the max pool passes on exactly what reaches it
    np.testing.assert_allclose(ours.node_sums_in[0], ours.node_sums_out[0], rtol=1e-12, atol=1e-12)
    # LRP-0 on the same selection weights (the presets' old choice) absorbs relevance there and differs
    composite.structural = {MaxPool2d: Zero(stabilizer="vanilla", maxpool="winner_first")}
    absorbing = lrpcore.explain(twin.model, twin.x, target=twin.target, composite=composite)
    assert harness.relative_difference(np.asarray(absorbing.relevance), reference) > 1e-2
