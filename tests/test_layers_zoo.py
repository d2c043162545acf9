"""The layers of the common image, sequence and classic-LRP networks against PyTorch, one by one.

Each torch module is converted with ``from_torch``; the lrpcore layer must be the expected type, compute
torch's forward and torch autograd's input gradient in float64, be the adjoint of itself where it is linear,
round-trip through the HDF5 format and ``to_torch``, and refuse bad hyperparameters naming them.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import lrpcore  # noqa: E402
from lrpcore import ModelMetadata, Sequential  # noqa: E402
from lrpcore.errors import ShapeError  # noqa: E402
from lrpcore.io.torch import from_torch, to_torch  # noqa: E402
from lrpcore.layers import (ELU, GELU, AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d,  # noqa: E402
                            AdaptiveMaxPool2d, AvgPool1d, AvgPool2d, BatchNorm1d, BatchNorm2d, BatchNormLinear, Conv1d,
                            Conv2d, Dense, LeakyReLU, LinearLayer, LocalResponseNorm, MaxPool1d, MaxPool2d, ReLU6,
                            Reshape, Sigmoid, SiLU, SumPool2d, Tanh, ZeroPad1d, ZeroPad2d)

# (torch module, per-sample input shape, expected lrpcore type)
CASES = {
    "conv2d_groups2": (lambda: nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), (4, 7, 6), Conv2d),
    "conv2d_depthwise": (lambda: nn.Conv2d(3, 3, 3, padding=1, groups=3), (3, 6, 5), Conv2d),
    "conv2d_depthwise_multiplier": (lambda: nn.Conv2d(3, 6, (3, 2), stride=(2, 1), groups=3), (3, 7, 6), Conv2d),
    "conv2d_same": (lambda: nn.Conv2d(2, 4, 5, padding="same", groups=2), (2, 6, 6), Conv2d),
    "conv1d_groups": (lambda: nn.Conv1d(4, 8, 3, stride=2, padding=1, groups=4), (4, 9), Conv1d),
    "maxpool2d_ceil": (lambda: nn.MaxPool2d(3, stride=2, ceil_mode=True), (2, 8, 7), MaxPool2d),
    "maxpool2d_ceil_padding": (lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 6, 6), MaxPool2d),
    "avgpool2d_ceil": (lambda: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 6, 7), AvgPool2d),
    # ceil mode's last window would start in the right padding: PyTorch drops it
    "maxpool2d_ceil_dropped": (lambda: nn.MaxPool2d(2, stride=2, padding=1, ceil_mode=True), (2, 5, 5), MaxPool2d),
    "avgpool2d_ceil_dropped": (lambda: nn.AvgPool2d(2, stride=2, padding=1, ceil_mode=True), (2, 5, 4), AvgPool2d),
    "avgpool2d_exclude_pad": (lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (2, 7, 7),
                              AvgPool2d),
    "avgpool2d_ceil_exclude_pad": (lambda: nn.AvgPool2d(2, padding=1, ceil_mode=True, count_include_pad=False),
                                   (2, 6, 5), AvgPool2d),
    "maxpool1d_ceil": (lambda: nn.MaxPool1d(3, stride=2, ceil_mode=True), (3, 10), MaxPool1d),
    "avgpool1d_ceil_exclude_pad": (lambda: nn.AvgPool1d(3, stride=2, padding=1, ceil_mode=True,
                                                        count_include_pad=False), (3, 10), AvgPool1d),
    "adaptive_avg_6x6": (lambda: nn.AdaptiveAvgPool2d((6, 6)), (3, 13, 13), AdaptiveAvgPool2d),
    "adaptive_avg_upsampling": (lambda: nn.AdaptiveAvgPool2d((5, 4)), (2, 3, 3), AdaptiveAvgPool2d),
    "adaptive_avg_none": (lambda: nn.AdaptiveAvgPool2d((None, 3)), (2, 5, 7), AdaptiveAvgPool2d),
    "adaptive_max": (lambda: nn.AdaptiveMaxPool2d((3, 2)), (2, 7, 5), AdaptiveMaxPool2d),
    "adaptive_avg_1d": (lambda: nn.AdaptiveAvgPool1d(4), (3, 10), AdaptiveAvgPool1d),
    "adaptive_max_1d": (lambda: nn.AdaptiveMaxPool1d(3), (3, 8), AdaptiveMaxPool1d),
    "tanh": (nn.Tanh, (3, 4, 4), Tanh),
    "sigmoid": (nn.Sigmoid, (7,), Sigmoid),
    "leaky_relu": (lambda: nn.LeakyReLU(0.1), (3, 5), LeakyReLU),
    "elu": (lambda: nn.ELU(0.7), (2, 3, 3), ELU),
    "gelu": (nn.GELU, (9,), GELU),
    "gelu_tanh": (lambda: nn.GELU(approximate="tanh"), (9,), GELU),
    "silu": (nn.SiLU, (9,), SiLU),
    "relu6": (nn.ReLU6, (9,), ReLU6),
    "lrn": (lambda: nn.LocalResponseNorm(3, alpha=0.3, beta=0.75, k=1.5), (5, 3, 4), LocalResponseNorm),
    "lrn_alexnet": (lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0), (8, 3, 3), LocalResponseNorm),
    "lrn_1d": (lambda: nn.LocalResponseNorm(2, alpha=0.5), (4, 6), LocalResponseNorm),
    "unflatten": (lambda: nn.Unflatten(1, (2, 3, 4)), (24,), Reshape),
    "zeropad2d": (lambda: nn.ZeroPad2d((1, 2, 0, 3)), (2, 4, 3), ZeroPad2d),
    "zeropad1d": (lambda: nn.ZeroPad1d((2, 1)), (2, 5), ZeroPad1d),
    "batchnorm1d_sequence": (lambda: nn.BatchNorm1d(3), (3, 6), BatchNorm1d),
}


def _randomised(module):
    """Non-trivial weights, biases and running statistics, in float64 eval mode."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            if tensor.dtype.is_floating_point:
                values = torch.rand(tensor.shape, generator=generator, dtype=torch.float64)
                tensor.copy_(values + 0.5 if "var" in name else values * 2 - 1)
    return module.double().eval()


def _convert(name):
    factory, shape, kind = CASES[name]
    module = _randomised(factory())
    model = from_torch(nn.Sequential(module).eval(), input_shape=shape, dtype="float64")
    assert len(model) == 1 and type(model[0]) is kind, f"{name}: got {[layer.describe() for layer in model]}"
    return module, model[0], shape


def _input(shape, seed=1, batch=2):
    values = np.random.default_rng(seed).normal(size=(batch, *shape)) * 2
    return values


@pytest.mark.parametrize("name", list(CASES))
def test_layer_computes_torchs_forward_and_input_gradient(name):
    module, layer, shape = _convert(name)
    x = _input(shape)
    if "max" in name:
        x = np.round(x * 2) / 2                                  # ties: torch's gradient picks the first maximum
    tensor = torch.from_numpy(x).requires_grad_(True)
    expected = module(tensor)
    np.testing.assert_allclose(layer.forward(x), expected.detach().numpy(), rtol=1e-12, atol=1e-13)
    upstream = np.random.default_rng(2).normal(size=tuple(expected.shape))
    (gradient,) = torch.autograd.grad(expected, tensor, grad_outputs=torch.from_numpy(upstream))
    np.testing.assert_allclose(layer.gradient(x, upstream), gradient.numpy(), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if issubclass(case[2], LinearLayer)])
def test_transposed_map_is_the_adjoint_of_the_substituted_forward(name):
    """⟨f(x; w), s⟩ = ⟨x, fᵀ(s; w)⟩ with the layer's relevance weight (and with a rule-modified one)."""
    _, layer, shape = _convert(name)
    x = _input(shape, seed=3)
    for weight in (layer.relevance_weight(x), layer.relevance_weight(x) ** 2 + 0.5):
        y = layer.linear_forward(x, weight, None)
        s = np.random.default_rng(4).normal(size=y.shape)
        np.testing.assert_allclose((y * s).sum(), (x * layer.linear_transpose(s, weight, x.shape)).sum(),
                                   rtol=1e-11)


@pytest.mark.parametrize("name", list(CASES))
def test_layer_round_trips_through_hdf5_and_to_torch(name, tmp_path):
    module, layer, shape = _convert(name)
    model = Sequential([layer], ModelMetadata(input_shape=shape, name=name))
    path = tmp_path / f"{name}.h5"
    lrpcore.save(model, path)
    loaded = lrpcore.load(path)
    assert type(loaded[0]) is type(layer) and loaded[0].hyperparameters() == layer.hyperparameters()
    x = _input(shape, seed=5)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))
    twin = to_torch(loaded)
    np.testing.assert_allclose(twin(torch.from_numpy(x)).detach().numpy(), module(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-12, atol=1e-13)


def test_files_without_the_new_hyperparameters_read_as_before(tmp_path):
    """groups, ceil_mode and count_include_pad are written only when not at their default."""
    import h5py

    model = Sequential([Conv2d(np.ones((2, 1, 3, 3)), padding=1), MaxPool2d(2), AvgPool2d(2, padding=1)],
                       ModelMetadata(input_shape=(1, 6, 6)))
    lrpcore.save(model, tmp_path / "plain.h5")
    with h5py.File(tmp_path / "plain.h5") as handle:
        written = [set(handle[f"layers/{index}"].attrs) for index in range(3)]
    assert written == [{"type", "stride", "padding"}, {"type", "kernel_size", "stride", "padding"},
                       {"type", "kernel_size", "stride", "padding"}]
    grouped = Sequential([Conv2d(np.ones((4, 1, 3, 3)), groups=2), AvgPool2d(2, ceil_mode=True,
                                                                              count_include_pad=False)],
                         ModelMetadata(input_shape=(2, 6, 6)))
    lrpcore.save(grouped, tmp_path / "grouped.h5")
    with h5py.File(tmp_path / "grouped.h5") as handle:
        assert handle["layers/0"].attrs["groups"] == 2 and bool(handle["layers/1"].attrs["ceil_mode"])
        assert not bool(handle["layers/1"].attrs["count_include_pad"])


@pytest.mark.parametrize("build, words", [
    (lambda: Conv2d(np.ones((6, 2, 3, 3)), groups=4), "groups=4 does not divide the 6 output channels"),
    (lambda: Conv2d(np.ones((6, 2, 3, 3)), groups=0), "groups must be an integer ≥ 1"),
    (lambda: Conv1d(np.ones((6, 2, 3)), groups=1.5), "Conv1d groups"),
    (lambda: MaxPool2d(3, ceil_mode="yes"), "ceil_mode must be True or False"),
    (lambda: MaxPool2d(2, padding=2, ceil_mode=True), "padding (2, 2) must be at most half the kernel"),
    (lambda: AvgPool2d(2, count_include_pad=None), "count_include_pad must be True or False"),
    (lambda: AvgPool1d(2, count_include_pad=0), "count_include_pad must be True or False"),
    (lambda: SumPool2d(2, scale=-1.0), "SumPool2d scale must be a positive finite number"),
    (lambda: AdaptiveAvgPool2d((3, 0)), "output_size must be an int or a pair of ints ≥ 1"),
    (lambda: AdaptiveMaxPool1d(None), "output_size must be an int ≥ 1"),
    (lambda: LeakyReLU(float("nan")), "LeakyReLU negative_slope must be a finite number"),
    (lambda: ELU("one"), "ELU alpha must be a finite number"),
    (lambda: GELU("erf"), "GELU approximate must be 'none' or 'tanh'"),
    (lambda: LocalResponseNorm(0), "LocalResponseNorm size must be an integer ≥ 1"),
    (lambda: LocalResponseNorm(3, beta=float("inf")), "LocalResponseNorm beta must be a finite number"),
    (lambda: Reshape((2, -1, -1)), "Reshape shape must be positive integers with at most one −1"),
    (lambda: ZeroPad2d((1, 2, 3)), "ZeroPad2d padding must be one int or 4 ints (left, right, top, bottom)"),
    (lambda: ZeroPad1d(-1), "ZeroPad1d padding must be integers ≥ 0"),
])
def test_bad_hyperparameters_are_refused_naming_them(build, words):
    with pytest.raises((ValueError, ShapeError)) as caught:
        build()
    assert words in str(caught.value)


@pytest.mark.parametrize("layer, x_shape, words", [
    (Conv2d(np.ones((4, 1, 3, 3)), groups=2), (1, 3, 5, 5), "expects 2 input channels"),
    (AdaptiveAvgPool2d(2), (1, 3, 5), "expects (N, C, H, W)"),
    (LocalResponseNorm(3), (2, 5), "expects (N, C, ...) inputs with a channel axis"),
    (Reshape((2, 3)), (1, 7), "needs 6 values per sample"),
    (ZeroPad2d(1), (1, 2, 3), "expects rank-4 input"),
    (MaxPool2d(3, stride=2, ceil_mode=True), (1, 1, 2, 2), "smaller than the window"),
])
def test_bad_inputs_are_refused_naming_the_layer_and_shape(layer, x_shape, words):
    with pytest.raises(ShapeError) as caught:
        layer.forward(np.zeros(x_shape))
    assert words in str(caught.value) and layer.describe() in str(caught.value)


def test_describe_names_the_settings():
    assert Conv2d(np.ones((6, 1, 3, 3)), groups=3).describe() == "Conv2d(3→6, k=3x3, s=1, p=0, g=3)"
    assert Conv1d(np.ones((4, 2, 3)), groups=2).describe() == "Conv1d(4→4, k=3, s=1, p=0, g=2)"
    assert MaxPool2d(3, 2, ceil_mode=True).describe() == "MaxPool2d(k=3x3, s=2, ceil)"
    assert AvgPool2d(3, 2, 1, count_include_pad=False).describe() == "AvgPool2d(k=3x3, s=2, pad not counted)"
    assert SumPool2d(2, scale=0.5).describe() == "SumPool2d(k=2x2, s=2, scale=0.5)"
    assert AdaptiveAvgPool2d((6, 6)).describe() == "AdaptiveAvgPool2d(6x6)"
    assert AdaptiveMaxPool1d(3).describe() == "AdaptiveMaxPool1d(3)"
    assert LocalResponseNorm(5, 1e-4, 0.75, 2.0).describe() == "LocalResponseNorm(size=5, α=0.0001, β=0.75, k=2)"
    assert LeakyReLU(0.1).describe() == "LeakyReLU(negative_slope=0.1)" and Tanh().describe() == "Tanh()"
    assert GELU("tanh").describe() == "GELU(approximate=tanh)" and Reshape((2, 3)).describe() == "Reshape((2, 3))"
    assert ZeroPad2d(1).describe() == "ZeroPad2d((1, 1, 1, 1))"
    norm = BatchNormLinear(np.zeros(3), np.ones(3))
    assert norm.describe() == "BatchNormLinear(3, eps=1e-05)"


def test_zero_padding_relevance_is_cropped_like_its_gradient():
    layer = ZeroPad2d((1, 2, 0, 1))
    x = _input((2, 3, 4))
    relevance = np.random.default_rng(6).normal(size=layer.forward(x).shape)
    np.testing.assert_array_equal(layer.pass_relevance(relevance, x.shape), layer.gradient(x, relevance))
    np.testing.assert_array_equal(layer.pass_relevance(relevance, x.shape), relevance[:, :, 0:3, 1:5])


def test_final_softmax_is_dropped_with_a_note_and_warning():
    network = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1)).double().eval()
    with pytest.warns(UserWarning, match="dropped the final Softmax of module '1'"):
        model = from_torch(network)
    assert [type(layer) for layer in model.layers] == [Dense]
    assert "lrpcore explains the logits" in model.metadata.description
    x = _input((4,))
    np.testing.assert_allclose(model.forward(x), network[0](torch.from_numpy(x)).detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("input_shape", [None, (5,)])
def test_linear_unflatten_conv_converts_with_and_without_input_shape(input_shape):
    network = _randomised(nn.Sequential(nn.Linear(5, 18), nn.ReLU(), nn.Unflatten(1, (2, 3, 3)),
                                        nn.Conv2d(2, 4, 2), nn.Flatten(), nn.Linear(16, 3)))
    model = from_torch(network, input_shape=input_shape)
    assert isinstance(model[2], Reshape) and model[2].shape == [2, 3, 3]
    x = _input((5,))
    np.testing.assert_allclose(model.forward(x), network(torch.from_numpy(x)).detach().numpy(), rtol=1e-12)


def test_batchnorm_folds_into_grouped_and_1d_convolutions_exactly():
    for conv, norm, shape in [(nn.Conv1d(4, 8, 3, groups=2), nn.BatchNorm1d(8), (4, 9)),
                              (nn.Conv2d(3, 6, 3, groups=3), nn.BatchNorm2d(6), (3, 6, 6)),
                              (nn.Linear(5, 4), nn.BatchNorm1d(4), (5,))]:
        network = _randomised(nn.Sequential(conv, norm))
        model = from_torch(network, input_shape=shape)
        folded = model[1].fold_into(model[0])
        assert type(folded) is type(model[0])
        x = _input(shape)
        np.testing.assert_allclose(folded.forward(x), network(torch.from_numpy(x)).detach().numpy(),
                                   rtol=1e-10, atol=1e-12)
    with pytest.raises(ShapeError, match="it has 6 output channels"):
        BatchNorm2d(np.zeros(4), np.ones(4)).fold_into(Conv2d(np.ones((6, 1, 3, 3)), groups=2))


def test_batchnorm_as_a_linear_layer_computes_the_same_map():
    module, layer, shape = _convert("batchnorm1d_sequence")
    linear = layer.as_linear()
    assert isinstance(linear, LinearLayer) and not isinstance(linear, BatchNorm1d)
    x = _input(shape)
    np.testing.assert_allclose(linear.forward(x), layer.forward(x), rtol=1e-14)
    np.testing.assert_allclose(linear.gradient(x, x), layer.gradient(x, x), rtol=1e-14)


def test_lrn_identity_pass_is_the_other_choice_and_the_taylor_rule_the_default():
    """``Pass()`` for LocalResponseNorm hands relevance on unchanged; a linear-layer rule (the default) uses
    Binder et al.'s Taylor terms and conserves relevance up to its ε."""
    from lrpcore.composites import Composite
    from lrpcore.rules import Epsilon, Pass

    _, layer, shape = _convert("lrn")
    model = Sequential([layer, lrpcore.layers.Flatten(), Dense(np.random.default_rng(7).normal(size=(3, 60)))],
                       ModelMetadata(input_shape=shape))
    x = _input(shape, seed=8)
    passed = lrpcore.explain(model, x, composite=Composite(by_type={LocalResponseNorm: Pass()}, default=Epsilon(1e-9)),
                             record=True)
    np.testing.assert_array_equal(passed.trace[0].relevance_in, passed.trace[0].relevance_out)
    taylor = lrpcore.explain(model, x, composite=Composite(default=Epsilon(1e-9)), record=True)
    step = taylor.trace[0]
    assert type(step.rule) is Epsilon
    assert np.abs(step.relevance_in - step.relevance_out).max() > 1e-3 * np.abs(step.relevance_out).max()
    np.testing.assert_allclose(step.relevance_in.sum(axis=(1, 2, 3)), step.relevance_out.sum(axis=(1, 2, 3)),
                               rtol=1e-6)


@pytest.mark.parametrize("kind", ["conv2d_depthwise", "lrn", "adaptive_maxpool2d", "avgpool2d_ceil", "sumpool2d",
                                  "batchnorm_linear"])
def test_sparse_explicit_matrix_equals_the_dense_one(kind):
    from lrpcore import relevance_matrix
    from lrpcore.rules import Epsilon
    from lrpcore.testing import random_input, random_layer

    layer, shape = random_layer(kind, 0)
    a = random_input(shape, 0, nonnegative=True)
    dense = relevance_matrix(layer, a, Epsilon(0.1))
    sparse = relevance_matrix(layer, a, Epsilon(0.1), sparse=True)
    assert np.abs(dense).max() > 0
    np.testing.assert_allclose(sparse.toarray(), dense, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("layer, shape", [
    (Tanh(), (3, 4)), (Sigmoid(), (3, 4)), (LeakyReLU(0.1), (5,)), (ELU(0.5), (5,)), (GELU(), (5,)),
    (GELU("tanh"), (5,)), (SiLU(), (5,)), (ReLU6(), (5,)), (Reshape((2, 6)), (12,)), (ZeroPad2d((1, 0, 2, 1)), (2, 3, 3)),
    (ZeroPad1d(2), (2, 4)), (LocalResponseNorm(3, 0.4), (4, 2, 2)), (AdaptiveMaxPool2d((2, 3)), (2, 5, 5)),
    (AdaptiveAvgPool1d(3), (2, 7)), (AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False), (2, 6, 6)),
    (Conv2d(np.random.default_rng(0).normal(size=(4, 1, 3, 3)), groups=2, padding=1), (2, 5, 5)),
])
def test_forward_and_gradient_run_on_every_backend_and_in_float32(layer, shape, backend):
    """The same numbers on NumPy, array-api-strict (and CuPy), and float32 stays float32."""
    from lrpcore.backend import to_backend, to_numpy

    x = _input(shape, seed=9)
    upstream = np.random.default_rng(10).normal(size=layer.forward(x).shape)
    moved = layer.to(backend)
    forward = moved.forward(to_backend(x, backend))
    gradient = moved.gradient(to_backend(x, backend), to_backend(upstream, backend))
    np.testing.assert_allclose(to_numpy(forward), layer.forward(x), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(to_numpy(gradient), layer.gradient(x, upstream), rtol=1e-12, atol=1e-14)
    single = layer.astype("float32") if layer.parameters() else layer
    assert single.forward(x.astype(np.float32)).dtype == np.float32
    assert single.gradient(x.astype(np.float32), upstream.astype(np.float32)).dtype == np.float32
