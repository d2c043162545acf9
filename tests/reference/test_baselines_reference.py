"""The attribution baselines of ``lrpcore.baselines`` against captum 0.9.0 and zennit 0.5.1, float64, same weights.

Each method is the explicit-array chain of vector-Jacobian products (no autograd) on the lrpcore
model; the peers run torch autograd with their own hooks on the torch twin. Random draws are made
the peer's way (``torch.manual_seed`` then the peer's own call) and handed to lrpcore as ``noise=``,
so the definitions, not the random streams, are compared. Differences land in the reference table
(``pytest tests/reference -ra``).

Where the definitions differ, the test pins the difference instead:
captum's ``riemann_trapezoid`` uses weights 1/n (halved ends) on α = linspace(0, 1, n), which sum
to (n − 1)/n; lrpcore's trapezoid rule uses 1/(n − 1), so lrpcore = captum · n/(n − 1) exactly.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed; the reference suite needs torch==2.13.0")
captum_attr = pytest.importorskip("captum.attr", reason="captum is not installed (pip install captum==0.9.0)")
import zennit  # noqa: E402,F401  (with torch present, a missing zennit is an error, not a skip)

import _reference_harness as harness  # noqa: E402
from lrpcore import baselines  # noqa: E402

MODELS = ("digits_mlp", "digits_cnn", "shapes_cnn")
_TWINS: dict[str, harness.Twin] = {}


def twin_for(name: str) -> harness.Twin:
    if name not in _TWINS:
        _TWINS[name] = harness.build_twin(name)
    return _TWINS[name]


def _torch_input(twin: harness.Twin) -> "torch.Tensor":
    return torch.from_numpy(twin.x.copy()).requires_grad_(True)


def _onehot(twin: harness.Twin) -> "torch.Tensor":
    output = twin.torch_net(torch.from_numpy(twin.x.copy()))
    onehot = torch.zeros_like(output)
    onehot[torch.arange(len(twin.target)), torch.from_numpy(twin.target)] = 1.0
    return onehot.detach()


def _check(twin: harness.Twin, label: str, ours, reference, tolerance: float = harness.TOLERANCE) -> None:
    difference = harness.relative_difference(np.asarray(ours), np.asarray(reference))
    harness.record(twin, label, difference)
    assert difference <= tolerance, f"{twin.name}/{label}: relative difference {difference:.3g}"


@pytest.mark.parametrize("name", MODELS)
def test_gradient_methods_equal_captum(name):
    twin = twin_for(name)
    target = torch.from_numpy(twin.target)
    attr = captum_attr
    _check(twin, "gradient (captum Saliency, abs=False)", baselines.gradient(twin.model, twin.x, twin.target).relevance,
           attr.Saliency(twin.torch_net).attribute(_torch_input(twin), target=target, abs=False).detach())
    _check(twin, "gradient×input (captum InputXGradient)",
           baselines.gradient_x_input(twin.model, twin.x, twin.target).relevance,
           attr.InputXGradient(twin.torch_net).attribute(_torch_input(twin), target=target).detach())
    with pytest.warns(UserWarning):  # captum warns that it hooks the ReLUs
        guided = attr.GuidedBackprop(twin.torch_net).attribute(_torch_input(twin), target=target).detach()
    _check(twin, "guided backprop (captum)", baselines.guided_backprop(twin.model, twin.x, twin.target).relevance,
           guided)
    with pytest.warns(UserWarning):
        deconv = attr.Deconvolution(twin.torch_net).attribute(_torch_input(twin), target=target).detach()
    _check(twin, "deconvnet (captum Deconvolution)", baselines.deconvnet(twin.model, twin.x, twin.target).relevance,
           deconv)


@pytest.mark.parametrize("rule", ["riemann_right", "riemann_left", "riemann_middle", "gausslegendre"])
@pytest.mark.parametrize("name", MODELS)
def test_integrated_gradients_equal_captum_for_each_quadrature(name, rule):
    twin = twin_for(name)
    steps = 16
    reference = captum_attr.IntegratedGradients(twin.torch_net).attribute(
        _torch_input(twin), baselines=0.0, target=torch.from_numpy(twin.target), n_steps=steps, method=rule).detach()
    ours = baselines.integrated_gradients(twin.model, twin.x, twin.target, steps=steps, rule=rule).relevance
    _check(twin, f"integrated gradients {rule} (captum)", ours, reference)


def test_captum_trapezoid_weights_sum_to_n_minus_one_over_n_and_lrpcore_integrates_exactly():
    twin = twin_for("digits_cnn")
    steps = 16
    reference = captum_attr.IntegratedGradients(twin.torch_net).attribute(
        _torch_input(twin), baselines=0.0, target=torch.from_numpy(twin.target), n_steps=steps,
        method="riemann_trapezoid").detach().numpy()
    ours = np.asarray(baselines.integrated_gradients(twin.model, twin.x, twin.target, steps=steps,
                                                     rule="riemann_trapezoid").relevance)
    assert harness.relative_difference(ours, reference * steps / (steps - 1)) <= 1e-9
    alphas, weights = baselines.integral_points(steps, "riemann_trapezoid")
    assert weights.sum() == pytest.approx(1.0, abs=1e-15)     # a constant integrand is integrated exactly


@pytest.mark.parametrize("name", MODELS)
def test_smoothgrad_equals_captum_noise_tunnel_on_its_own_draws(name):
    twin = twin_for(name)
    samples, stdev, count = 5, 0.3, twin.x.shape[0]
    torch.manual_seed(3)
    reference = captum_attr.NoiseTunnel(captum_attr.Saliency(twin.torch_net)).attribute(
        _torch_input(twin), nt_type="smoothgrad", nt_samples=samples, stdevs=stdev,
        target=torch.from_numpy(twin.target), abs=False).detach()
    torch.manual_seed(3)   # captum's draw: torch.normal(0, stdev repeated over the interleaved copies)
    draws = torch.normal(0, torch.tensor(stdev).repeat((count * samples,) + twin.x.shape[1:])).double().numpy()
    noise = draws.reshape((count, samples) + twin.x.shape[1:]).swapaxes(0, 1) / stdev
    ours = baselines.smoothgrad(twin.model, twin.x, twin.target, samples=samples, stdev=stdev, noise=noise).relevance
    _check(twin, "smoothgrad (captum NoiseTunnel)", ours, reference)


@pytest.mark.parametrize("name", MODELS)
def test_occlusion_equals_captum_with_windows_cut_at_the_border(name):
    twin = twin_for(name)
    channels, size = twin.x.shape[1], twin.x.shape[-1]
    window, stride = (5, 3) if size == 8 else (16, 10)     # (8 − 5)/3 and (64 − 16)/10 leave a cut last window
    reference = captum_attr.Occlusion(twin.torch_net).attribute(
        _torch_input(twin), sliding_window_shapes=(channels, window, window), strides=(channels, stride, stride),
        baselines=0.0, target=torch.from_numpy(twin.target)).detach()
    ours = baselines.occlusion(twin.model, twin.x, twin.target, window=window, stride=stride).relevance
    # captum divides the summed drops by the counts in float32 (``attrib.float() / weight``): ~1e-8
    _check(twin, "occlusion (captum)", ours, reference)


@pytest.mark.parametrize("name", MODELS)
def test_zennit_attributors_equal_lrpcore(name):
    from zennit.attribution import Gradient, IntegratedGradients, SmoothGrad
    from zennit.composites import DeconvNet, GuidedBackprop

    twin = twin_for(name)
    onehot = _onehot(twin)
    for label, composite, ours in (("guided backprop (zennit)", GuidedBackprop(), baselines.guided_backprop),
                                   ("deconvnet (zennit)", DeconvNet(), baselines.deconvnet)):
        with Gradient(twin.torch_net, composite) as attributor:
            _, reference = attributor(_torch_input(twin), onehot)
        _check(twin, label, ours(twin.model, twin.x, twin.target).relevance, reference.detach())
    with IntegratedGradients(twin.torch_net, n_iter=12) as attributor:
        _, reference = attributor(_torch_input(twin), onehot)
    _check(twin, "integrated gradients riemann_right (zennit)",
           baselines.integrated_gradients(twin.model, twin.x, twin.target, steps=12).relevance, reference.detach())
    samples = 6
    torch.manual_seed(5)
    with SmoothGrad(twin.torch_net, noise_level=0.2, n_iter=samples) as attributor:
        _, reference = attributor(_torch_input(twin), onehot)
    torch.manual_seed(5)   # zennit: randn_like for all samples but the last, which is noise-free
    x = torch.from_numpy(twin.x.copy())
    noise = np.stack([torch.randn_like(x).numpy() for _ in range(samples - 1)] + [np.zeros(twin.x.shape)])
    _check(twin, "smoothgrad (zennit, its draws)",
           baselines.smoothgrad(twin.model, twin.x, twin.target, samples=samples, noise_level=0.2,
                                noise=noise).relevance, reference.detach())
