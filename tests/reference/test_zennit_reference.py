"""lrpcore's rules and composites give zennit's input relevances in float64, on the same weights.

The networks, the matching options and the difference measure are in ``_reference_harness``.
Run ``pytest tests/reference -ra`` to see the table of largest relative differences at the end
(``python tools/reference_report.py`` prints the same table without pytest).
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed; the zennit reference suite needs "
                                            "torch==2.13.0 and zennit==0.5.1 (pip install --no-deps zennit==0.5.1)")
import zennit  # noqa: E402,F401  (with torch present, a missing zennit is an error, not a skip)

import _reference_harness as harness  # noqa: E402
from lrpcore.composites import Composite  # noqa: E402
from lrpcore.layers import Conv2d, Dense  # noqa: E402
from lrpcore.rules import Gamma, WSquare  # noqa: E402

SMALL_MODELS = ("digits_mlp", "digits_cnn", "shapes_cnn")
#: On VGG-16 the five composites, the layer maps zennit users run on it (between them they use every
#: rule but WSquare); each single rule runs on the three smaller networks, and every method on VGG-16
#: in ``python tools/reference_report.py``.
VGG_METHODS = harness.COMPOSITES

_TWINS: dict[str, harness.Twin] = {}


def twin_for(name: str) -> harness.Twin:
    if name not in _TWINS:
        _TWINS[name] = harness.build_twin(name)
    return _TWINS[name]


def _check(name: str, method: str) -> None:
    twin = twin_for(name)
    difference = harness.compare(twin, method)
    harness.record(twin, method, difference)
    assert difference <= harness.TOLERANCE, f"{name}/{method}: relative difference {difference:.3g} to zennit"


@pytest.mark.parametrize("method", harness.METHODS)
@pytest.mark.parametrize("name", SMALL_MODELS)
def test_relevance_equals_zennit_in_float64(name, method):
    _check(name, method)


@pytest.mark.slow
@pytest.mark.parametrize("method", VGG_METHODS)
def test_vgg16_relevance_equals_zennit_in_float64(method):
    _check("vgg16", method)


@pytest.mark.parametrize("name", SMALL_MODELS + ("vgg16",))
def test_gradient_times_input_equals_torch_autograd(name):
    twin = twin_for(name)
    difference = harness.gradient_times_input_difference(twin)
    harness.record(twin, "gradient×input (autograd)", difference)
    assert difference <= 1e-10


def _uniform_difference(twin: harness.Twin, rule, zennit_method: str) -> float:
    import lrpcore

    composite = Composite(by_type={Dense: rule, Conv2d: rule}, structural=harness._zennit_pooling())
    ours = lrpcore.explain(twin.model, twin.x, target=twin.target, composite=composite).relevance
    return harness.relative_difference(np.asarray(ours), harness.zennit_relevance(twin, zennit_method))


def test_zennit_gamma_needs_the_symmetric_option():
    # zennit's γ favours the negative contributions where z_k < 0: explain the lowest logit, below zero
    import dataclasses

    twin = twin_for("digits_mlp")
    logits = twin.model.forward(twin.x)
    twin = dataclasses.replace(twin, target=logits.argmin(axis=1))
    assert logits.min(axis=1).max() < 0
    assert _uniform_difference(twin, Gamma(harness.GAMMA, symmetric=True), "gamma") <= harness.TOLERANCE
    assert _uniform_difference(twin, Gamma(harness.GAMMA, symmetric=False), "gamma") > 1e-3


def test_zennit_wsquare_needs_the_bias_option():
    # zennit adds b² to the w² denominator; the networks here have non-zero biases
    twin = twin_for("digits_mlp")
    assert _uniform_difference(twin, WSquare(use_bias=True), "wsquare") <= harness.TOLERANCE
    assert _uniform_difference(twin, WSquare(use_bias=False), "wsquare") > 1e-3
