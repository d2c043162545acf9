"""Tests of the 1-D sequence layers: forward maps, transposes, rules, explicit matrices, composites, files."""
from __future__ import annotations

import numpy as np
import pytest

import lrpcore
from lrpcore.backend import to_backend, to_numpy
from lrpcore.errors import ShapeError
from lrpcore.layers import AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d, ReLU
from lrpcore.layers1d import AvgPool1d, Conv1d, MaxPool1d
from lrpcore.rules import AlphaBeta, Epsilon, Flat, Gamma, WSquare, ZBox, Zero, ZPlus
from _networks import sequence_network

GEOMETRIES = [(1, 0), (2, 3), (3, 1)]   # (stride, padding)
POOLS = [(2, None, 0), (3, 2, 1), (5, 5, 0)]   # (kernel, stride, padding)


def _conv(seed: int = 0, stride: int = 1, padding: int = 0, channels: tuple[int, int] = (4, 5), kernel: int = 7):
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=(channels[1], channels[0], kernel))
    return Conv1d(weight, rng.normal(size=channels[1]), stride=stride, padding=padding)


def _sequence(seed: int = 1, shape: tuple[int, ...] = (3, 4, 23)) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape)


@pytest.mark.parametrize("stride,padding", GEOMETRIES)
def test_conv1d_forward_matches_torch_conv1d(stride, padding):
    torch = pytest.importorskip("torch")
    layer, x = _conv(stride=stride, padding=padding), _sequence()
    expected = torch.nn.functional.conv1d(torch.tensor(x), torch.tensor(layer.weight), torch.tensor(layer.bias),
                                          stride=stride, padding=padding).numpy()
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)
    assert layer.output_shape(x.shape[1:]) == expected.shape[1:]


@pytest.mark.parametrize("stride,padding", GEOMETRIES)
def test_conv1d_transpose_is_the_adjoint_of_its_forward(stride, padding):
    layer, x = _conv(stride=stride, padding=padding), _sequence()
    s = np.random.default_rng(5).normal(size=(x.shape[0], *layer.output_shape(x.shape[1:])))
    forward = layer.linear_forward(x, layer.weight)
    transposed = layer.linear_transpose(s, layer.weight, x.shape)
    assert transposed.shape == x.shape
    np.testing.assert_allclose(np.sum(transposed * x), np.sum(s * forward), rtol=1e-12)


@pytest.mark.parametrize("kernel,stride,padding", POOLS)
def test_pools_match_torch_forward_and_max_pool_gradient(kernel, stride, padding):
    torch = pytest.importorskip("torch")
    x = _sequence()
    average, maximum = AvgPool1d(kernel, stride, padding), MaxPool1d(kernel, stride, padding)
    tensor = torch.tensor(x, requires_grad=True)
    expected_max = torch.nn.functional.max_pool1d(tensor, kernel, stride, padding)
    expected_avg = torch.nn.functional.avg_pool1d(torch.tensor(x), kernel, stride, padding).numpy()
    np.testing.assert_allclose(average.forward(x), expected_avg, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(maximum.forward(x), expected_max.detach().numpy())
    np.testing.assert_array_equal(maximum.linear_forward(x, maximum.relevance_weight(x)),
                                  expected_max.detach().numpy())
    upstream = np.random.default_rng(3).normal(size=expected_max.shape)
    expected_max.backward(torch.tensor(upstream))
    np.testing.assert_allclose(maximum.gradient(x, upstream), tensor.grad.numpy(), rtol=1e-12)


def test_max_pool_modes_split_ties_pick_the_first_or_sum_the_window():
    x = np.array([[[1.0, 3.0, 3.0, 0.5, 2.0, 0.0]]])
    layer = MaxPool1d(3)
    # windows [1, 3, 3] and [0.5, 2, 0]; weights are (window offset, output position)
    np.testing.assert_allclose(layer.relevance_weight(x, "winner")[0, 0], [[0, 0], [0.5, 1], [0.5, 0]])
    np.testing.assert_allclose(layer.relevance_weight(x, "winner_first")[0, 0], [[0, 0], [1, 1], [0, 0]])
    np.testing.assert_allclose(layer.relevance_weight(x, "sum"), np.ones((3, 1)))
    relevance = np.array([[[6.0, 4.0]]])
    lower = Zero(maxpool="winner").relevance(layer, x, relevance)
    np.testing.assert_allclose(lower, [[[0, 3, 3, 0, 4, 0]]])
    with pytest.raises(ValueError, match="max-pool mode"):
        layer.relevance_weight(x, "largest")


@pytest.mark.parametrize("stride,padding", GEOMETRIES)
@pytest.mark.parametrize("rule", [Zero(), Epsilon(0.1), Gamma(0.25), Gamma(0.5, symmetric=True), AlphaBeta(2, 1),
                                  ZPlus(), Flat(), WSquare(), ZBox(-1.0, 2.0)], ids=lambda rule: rule.describe())
def test_conv1d_rules_equal_conv2d_rules_on_a_height_one_image(rule, stride, padding):
    """Conv2d is checked against the loop-over-connections reference elsewhere; Conv1d must agree with it."""
    layer, x = _conv(stride=stride, padding=padding), _sequence()
    plane = Conv2d(layer.weight[:, :, None, :], layer.bias, stride=(1, stride), padding=(0, padding))
    upper = np.random.default_rng(7).normal(size=(x.shape[0], *layer.output_shape(x.shape[1:])))
    expected = rule.relevance(plane, x[:, :, None, :], upper[:, :, None, :])[:, :, 0, :]
    np.testing.assert_allclose(rule.relevance(layer, x, upper), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kernel,stride,padding", POOLS)
@pytest.mark.parametrize("mode", ["winner", "winner_first", "sum"])
def test_pool1d_rules_equal_pool2d_rules_on_a_height_one_image(kernel, stride, padding, mode):
    x = np.abs(_sequence()) + 0.1
    x[0, 0, :4] = 2.0                                      # a tie inside a window
    stride = stride or kernel
    for layer, plane in ((MaxPool1d(kernel, stride, padding), MaxPool2d((1, kernel), (1, stride), (0, padding))),
                         (AvgPool1d(kernel, stride, padding), AvgPool2d((1, kernel), (1, stride), (0, padding)))):
        rule = Epsilon(1e-3, maxpool=mode)
        upper = np.random.default_rng(2).normal(size=(x.shape[0], *layer.output_shape(x.shape[1:])))
        expected = rule.relevance(plane, x[:, :, None, :], upper[:, :, None, :])[:, :, 0, :]
        np.testing.assert_allclose(rule.relevance(layer, x, upper), expected, rtol=1e-12, atol=1e-14)


MATRIX_CASES = [(layer, rule) for layer in (_conv(stride=2, padding=3), MaxPool1d(3, 2, 1), AvgPool1d(4))
                for rule in (Zero(), Epsilon(0.25), Gamma(0.25, symmetric=True), AlphaBeta(2, 1), Flat())
                if isinstance(layer, Conv1d) or not isinstance(rule, Flat)]   # flat is a rule for weighted layers


@pytest.mark.parametrize("layer,rule", MATRIX_CASES,
                         ids=[f"{layer.describe()}-{rule.describe()}" for layer, rule in MATRIX_CASES])
def test_relevance_matrix_reproduces_the_fast_path_on_1d_layers(layer, rule):
    a = np.abs(_sequence(shape=(1, 4, 17))) if not isinstance(layer, Conv1d) else _sequence(shape=(1, 4, 17))
    upper = np.random.default_rng(4).normal(size=(1, *layer.output_shape(a.shape[1:])))
    matrix = lrpcore.relevance_matrix(layer, a, rule)
    assert matrix.shape == (a.size, upper.size)
    fast = rule.relevance(layer, a, upper)
    np.testing.assert_allclose((matrix @ upper.ravel()).reshape(a.shape), fast, rtol=1e-9, atol=1e-12)
    sparse = lrpcore.relevance_matrix(layer, a[0], rule, sparse=True)
    np.testing.assert_allclose(sparse.toarray(), matrix, rtol=1e-12, atol=1e-15)


def test_lrp0_equals_gradient_times_input_on_a_bias_freesequence_network():
    model = sequence_network(bias=False)
    x = _sequence(shape=(4, 4, 20))
    explanation = lrpcore.explain(model, x, target=1)
    grad, _ = lrpcore.gradient(model, x, target=1)
    np.testing.assert_allclose(explanation.relevance, grad * x, rtol=1e-9, atol=1e-12)
    lrpcore.check_conservation(explanation, rtol=1e-9)


def test_composites_treat_conv1d_and_1d_pools_like_their_2d_counterparts():
    model = sequence_network()
    rules = lrpcore.composites.epsilon_gamma_box(low=0.0, high=1.0).rules(model)
    assert isinstance(rules[0], ZBox) and isinstance(rules[3], Gamma)
    assert isinstance(rules[7], Epsilon) and isinstance(rules[9], Epsilon)
    assert rules[2].maxpool == "winner_first" and isinstance(rules[5], Epsilon)
    plus_flat = lrpcore.composites.epsilon_plus_flat().rules(model)
    assert isinstance(plus_flat[0], Flat) and isinstance(plus_flat[3], ZPlus)
    assert isinstance(lrpcore.composites.epsilon_alpha2_beta1().rules(model)[3], AlphaBeta)
    assert isinstance(lrpcore.composites.cmp().rules(model)[0], AlphaBeta)
    tutorial = lrpcore.composites.tutorial(low=0.0, high=1.0).rules(model)
    # first conv z^B, the one remaining conv (and its pool) in the γ group, dense layers LRP-0-like ε
    assert isinstance(tutorial[0], ZBox) and isinstance(tutorial[3], Gamma) and isinstance(tutorial[5], Gamma)
    assert isinstance(tutorial[7], Epsilon) and tutorial[7].epsilon == pytest.approx(1e-9)


def test_sequence_model_round_trips_through_the_native_file_format(tmp_path):
    io = pytest.importorskip("lrpcore.io")
    model = sequence_network().astype("float32")
    path = tmp_path / "sequence.h5"
    io.save(model, path)
    loaded = io.load(path)
    assert [layer.describe() for layer in loaded.layers] == [layer.describe() for layer in model.layers]
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    x = _sequence(shape=(2, 4, 20)).astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))


@pytest.mark.parametrize("backend", ["array_api_strict"])
def test_sequence_model_explains_on_array_api_strict_as_on_numpy(backend):
    pytest.importorskip("array_api_strict")
    model = sequence_network()
    x = np.abs(_sequence(shape=(2, 4, 20)))
    composite = lrpcore.composites.epsilon_gamma_box(low=0.0, high=5.0)
    expected = lrpcore.explain(model, x, target=0, composite=composite).relevance
    strict = lrpcore.explain(model.to(backend), to_backend(x, backend), target=0, composite=composite)
    np.testing.assert_allclose(to_numpy(strict.relevance), expected, rtol=1e-10, atol=1e-12)


def test_1d_layers_reject_bad_shapes_and_settings_with_clear_errors():
    layer = _conv()
    with pytest.raises(ShapeError, match=r"Conv1d\(4→5.*\(N, 4, L\)"):
        layer.forward(np.zeros((2, 4, 1, 23)))
    with pytest.raises(ShapeError, match="4 input channels"):
        layer.forward(np.zeros((2, 3, 23)))
    with pytest.raises(ShapeError, match="shorter than the kernel"):
        layer.forward(np.zeros((2, 4, 3)))
    with pytest.raises(ShapeError, match=r"\(out, in, k\)"):
        Conv1d(np.zeros((5, 4, 1, 3)))
    with pytest.raises(ShapeError, match="bias"):
        Conv1d(np.zeros((5, 4, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="stride"):
        Conv1d(np.zeros((5, 4, 3)), stride=0)
    with pytest.raises(ValueError, match="kernel_size"):
        MaxPool1d(0)
    with pytest.raises(ShapeError, match="shorter than the window"):
        AvgPool1d(5).forward(np.zeros((1, 2, 3)))
    with pytest.raises(ShapeError, match=r"\(N, C, L\)"):
        MaxPool1d(2).forward(np.zeros((1, 2, 3, 4)))


def test_layers_module_reexports_the_1d_layers():
    from lrpcore import layers

    assert layers.Conv1d is Conv1d and layers.MaxPool1d is MaxPool1d and layers.AvgPool1d is AvgPool1d
    assert Conv1d.input_rank == 3 and Conv1d.has_weights and not MaxPool1d.has_weights
