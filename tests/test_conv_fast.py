"""The fast convolution paths (Winograd F(2×2, 3×3), 1×1 products) against the im2col reference and the paper.

The reference is ``lrpcore._conv.use_algorithm("im2col")``: explicit window columns and one GEMM per
block. The fast path must give its numbers up to rounding (float64 ≤ 1e-12, float32 ≤ 1e-5 relative
to the largest output), for the forward map and the transposed map, on every shape it accepts.
"""
from __future__ import annotations

import numpy as np
import pytest

import lrpcore
from lrpcore import ModelMetadata, Sequential, _conv, _parallel, _winograd
from lrpcore.backend import to_backend, to_numpy
from lrpcore.layers import Conv2d, Dense, Flatten, MaxPool2d, ReLU

TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5}

# (batch, in channels, height, width), (out channels, kh, kw), stride, padding: odd sizes, padding 0–2,
# non-square inputs and kernels, 1×1 and 5×5 kernels, stride 2, batch 1 and several
SHAPES = [
    ((1, 16, 9, 7), (20, 3, 3), 1, 1),
    ((3, 17, 6, 11), (16, 3, 3), 1, 0),
    ((2, 16, 5, 5), (24, 3, 3), 1, 2),
    ((2, 32, 8, 13), (16, 3, 3), 1, (2, 0)),
    ((2, 16, 3, 3), (16, 3, 3), 1, 0),              # one output pixel
    ((1, 16, 2, 9), (16, 3, 3), 1, 1),              # a single, half-used tile row
    ((2, 16, 8, 8), (24, 1, 1), 1, 0),
    ((2, 16, 9, 7), (16, 5, 5), 1, 2),
    ((2, 16, 9, 8), (16, 3, 3), 2, 1),
    ((1, 3, 10, 10), (16, 3, 3), 1, 1),             # too few input channels: reference path
    ((2, 16, 7, 9), (16, 3, 2), 1, 1),
]


def _pair(value):
    return value if isinstance(value, tuple) else (value, value)


def _case(shape, kernel, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape).astype(dtype)
    weight = rng.normal(size=(kernel[0], shape[1], kernel[1], kernel[2])).astype(dtype)
    return x, weight


def _relative(ours, reference):
    return float(np.max(np.abs(ours - reference)) / np.max(np.abs(reference)))


@pytest.fixture(autouse=True)
def small_maps_use_winograd(monkeypatch):
    """The test shapes are small; by default maps under WINOGRAD_MIN_PIXELS keep the reference path."""
    monkeypatch.setattr(_conv, "WINOGRAD_MIN_PIXELS", 1)


@pytest.fixture
def winograd_calls(monkeypatch):
    """The (input shape, transpose) of every call that went through Winograd."""
    calls = []
    original = _winograd.correlate

    def spy(x, weight, padding, blocks, run, transpose=False):
        calls.append((tuple(x.shape), transpose))
        return original(x, weight, padding, blocks, run, transpose=transpose)

    monkeypatch.setattr(_winograd, "correlate", spy)
    return calls


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, kernel, stride, padding", SHAPES)
def test_fast_forward_and_transpose_equal_the_im2col_reference(shape, kernel, stride, padding, dtype,
                                                               winograd_calls):
    x, weight = _case(shape, kernel, dtype)
    layer = Conv2d(weight, None, stride=stride, padding=padding)
    fast = layer.linear_forward(x, weight)
    s = np.random.default_rng(1).normal(size=fast.shape).astype(dtype)
    fast_back = layer.linear_transpose(s, weight, x.shape)
    with _conv.use_algorithm("im2col"):
        reference = layer.linear_forward(x, weight)
        reference_back = layer.linear_transpose(s, weight, x.shape)
    assert fast.dtype == reference.dtype == dtype and fast.shape == reference.shape
    assert fast_back.dtype == dtype and fast_back.shape == x.shape
    assert _relative(fast, reference) <= TOLERANCE[dtype]
    assert _relative(fast_back, reference_back) <= TOLERANCE[dtype]
    expected = _conv.winograd_applies(weight, _pair(stride), _pair(padding))
    assert expected == (kernel[1:] == (3, 3) and stride == 1 and min(shape[1], kernel[0]) >= 16)
    assert winograd_calls == ([(shape, False), (fast.shape, True)] if expected else [])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_module_entry_points_give_the_reference_numbers(dtype, winograd_calls):
    """_conv.correlate / correlate_transpose (what layers built on them call) against their im2col forms."""
    x, weight = _case((2, 16, 7, 9), (20, 3, 3), dtype, seed=13)
    y = _conv.correlate(x, weight, (1, 1), (1, 1), 1 << 20)
    back = _conv.correlate_transpose(y, weight, x.shape, (1, 1), (1, 1), 1 << 20)
    assert winograd_calls == [(x.shape, False), (y.shape, True)]
    assert _relative(y, _conv.correlate_im2col(x, weight, (1, 1), (1, 1), 1 << 20)) <= TOLERANCE[dtype]
    assert _relative(back, _conv.correlate_transpose_col2im(y, weight, x.shape, (1, 1), (1, 1),
                                                            1 << 20)) <= TOLERANCE[dtype]


def test_small_maps_keep_the_reference_path(monkeypatch, winograd_calls):
    monkeypatch.setattr(_conv, "WINOGRAD_MIN_PIXELS", 400)
    for side, expected in ((19, 0), (20, 2)):                # 19² = 361 < 400 ≤ 20² output pixels
        x, weight = _case((1, 16, side, side), (16, 3, 3), np.float64)
        layer = Conv2d(weight, padding=1)
        y = layer.linear_forward(x, weight)
        layer.linear_transpose(y, weight, x.shape)
        assert len(winograd_calls) == expected
        winograd_calls.clear()


def test_the_reference_switch_is_scoped_and_checked(winograd_calls):
    x, weight = _case((1, 16, 6, 6), (16, 3, 3), np.float64)
    layer = Conv2d(weight, padding=1)
    assert _conv.algorithm() == "auto"
    with _conv.use_algorithm("im2col"):
        assert _conv.algorithm() == "im2col"
        layer.forward(x)
        assert winograd_calls == []
    assert _conv.algorithm() == "auto"
    layer.forward(x)
    assert len(winograd_calls) == 1
    with pytest.raises(ValueError, match="unknown convolution algorithm 'winograd'"):
        with _conv.use_algorithm("winograd"):
            pass
    assert _conv.algorithm() == "auto"


# Lavin & Gray (2016), "Fast Algorithms for Convolutional Neural Networks", section 4.1, F(2×2, 3×3)
PAPER_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=float)
PAPER_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
PAPER_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=float)


def test_the_paper_formula_computes_a_2x2_correlation_tile():
    """Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A with the paper's matrices is the 2×2 correlation of a 4×4 tile."""
    rng = np.random.default_rng(2)
    d, g = rng.normal(size=(4, 4)), rng.normal(size=(3, 3))
    direct = np.array([[np.sum(d[i:i + 3, j:j + 3] * g) for j in range(2)] for i in range(2)])
    winograd = PAPER_AT @ ((PAPER_G @ g @ PAPER_G.T) * (PAPER_BT @ d @ PAPER_BT.T)) @ PAPER_AT.T
    np.testing.assert_allclose(winograd, direct, rtol=1e-13, atol=1e-14)


def test_transformed_kernels_are_g_g_gt_of_the_paper():
    rng = np.random.default_rng(3)
    weight = rng.normal(size=(5, 4, 3, 3))
    u = _winograd.transform_weight(weight)
    assert u.shape == (16, 5, 4)
    for o in range(5):
        for c in range(4):
            expected = PAPER_G @ weight[o, c] @ PAPER_G.T
            np.testing.assert_allclose(u[:, o, c].reshape(4, 4), expected, rtol=1e-14, atol=1e-15)


def test_one_tile_by_the_paper_matrices_equals_winograd_correlate():
    """A 4×4 input with one channel and no padding: one tile, which the module must compute as the paper does."""
    rng = np.random.default_rng(4)
    d, g = rng.normal(size=(4, 4)), rng.normal(size=(3, 3))
    paper = PAPER_AT @ ((PAPER_G @ g @ PAPER_G.T) * (PAPER_BT @ d @ PAPER_BT.T)) @ PAPER_AT.T
    ours = _winograd.correlate(d[None, None], g[None, None], (0, 0), [(slice(0, 1), slice(0, 1), slice(0, 1))],
                               lambda work, items: [work(item) for item in items])
    np.testing.assert_allclose(ours[0, 0], paper, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("padding", [0, 1, 2, (1, 2)])
def test_winograd_transpose_is_the_adjoint_of_its_forward(padding):
    """⟨f(x), s⟩ = ⟨x, fᵀ(s)⟩ for the Winograd forward and transposed maps (float64)."""
    x, weight = _case((2, 16, 7, 10), (24, 3, 3), np.float64, seed=5)
    layer = Conv2d(weight, stride=1, padding=padding)
    assert _conv.winograd_applies(weight, (1, 1), _pair(padding))
    y = layer.linear_forward(x, weight)
    s = np.random.default_rng(6).normal(size=y.shape)
    np.testing.assert_allclose((y * s).sum(), (x * layer.linear_transpose(s, weight, x.shape)).sum(), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_row_blocks_of_one_tile_row_give_the_whole_sample_result(monkeypatch, dtype, winograd_calls):
    """A 1-byte budget cuts every sample into blocks of one tile row (odd counts, the last one half used)."""
    import lrpcore.layers.conv as layers

    x, weight = _case((2, 16, 9, 11), (16, 3, 3), dtype, seed=7)
    layer = Conv2d(weight, padding=1)
    whole = layer.linear_forward(x, weight)
    back = layer.linear_transpose(whole, weight, x.shape)
    monkeypatch.setattr(layers, "COLUMN_BUDGET_BYTES", 1)
    assert len(_conv._winograd_blocks(2, 9, 11, 16, 16, 8, 1)) == 2 * 5
    np.testing.assert_allclose(layer.linear_forward(x, weight), whole, rtol=TOLERANCE[dtype], atol=0)
    np.testing.assert_allclose(layer.linear_transpose(whole, weight, x.shape), back, rtol=TOLERANCE[dtype],
                               atol=TOLERANCE[dtype] * float(np.abs(back).max()))
    assert len(winograd_calls) == 4


def test_the_array_api_path_gives_numpys_numbers(backend, winograd_calls):
    """The Winograd code written for any array-API namespace (no ``out=``) equals the NumPy fast path."""
    x, weight = _case((2, 16, 6, 9), (24, 3, 3), np.float64, seed=8)
    layer = Conv2d(weight, padding=1)
    expected = layer.linear_forward(x, weight)
    expected_back = layer.linear_transpose(expected, weight, x.shape)
    moved = layer.to(backend)
    got = moved.linear_forward(to_backend(x, backend), moved.weight)
    back = moved.linear_transpose(got, moved.weight, x.shape)
    np.testing.assert_allclose(to_numpy(got), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(to_numpy(back), expected_back, rtol=1e-12, atol=1e-12)
    assert len(winograd_calls) == 4


def _wide_network(dtype):
    """A VGG-like block with enough channels for Winograd, a 1×1 convolution and a stride-2 one."""
    rng = np.random.default_rng(9)

    def he(shape):
        return (rng.normal(size=shape) * np.sqrt(2.0 / np.prod(shape[1:]))).astype(dtype)

    layers = [Conv2d(he((16, 3, 3, 3)), np.zeros(16, dtype), padding=1), ReLU(),
              Conv2d(he((24, 16, 3, 3)), (rng.normal(size=24) * 0.01).astype(dtype), padding=1), ReLU(),
              MaxPool2d(2),
              Conv2d(he((16, 24, 1, 1)), np.zeros(16, dtype)), ReLU(),
              Conv2d(he((16, 16, 3, 3)), np.zeros(16, dtype), stride=2, padding=1), ReLU(),
              Flatten(), Dense(he((5, 16 * 3 * 3)), np.zeros(5, dtype))]
    return Sequential(layers, ModelMetadata(input_shape=(3, 10, 12)))


@pytest.mark.parametrize("composite", ["epsilon_gamma_box", "epsilon_plus_flat", "zero"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_explanations_with_the_fast_path_equal_the_reference(composite, dtype, winograd_calls):
    model = _wide_network(dtype)
    x = np.random.default_rng(10).normal(size=(3, 3, 10, 12)).astype(dtype)
    settings = {"low": -3.0, "high": 3.0} if composite == "epsilon_gamma_box" else {}
    rules = lrpcore.composites.get_composite(composite, **settings)
    fast = lrpcore.explain(model, x, composite=rules)
    assert winograd_calls
    with _conv.use_algorithm("im2col"):
        reference = lrpcore.explain(model, x, composite=rules)
    for ours, theirs in zip(fast.layer_relevances, reference.layer_relevances):
        assert _relative(ours, theirs) <= 10 * TOLERANCE[dtype]
    assert _relative(fast.logits, reference.logits) <= TOLERANCE[dtype]


@pytest.mark.parametrize("batch", [1, 4])
def test_winograd_blocks_on_threads_give_the_serial_numbers(batch, monkeypatch, winograd_calls):
    pytest.importorskip("threadpoolctl")
    model = _wide_network(np.float32)
    x = np.random.default_rng(11).normal(size=(batch, 3, 10, 12)).astype(np.float32)
    monkeypatch.setattr(_parallel, "_blas_threads", lambda: 1)
    serial = lrpcore.explain(model, x, composite="epsilon_gamma_box")
    monkeypatch.setattr(_parallel, "_blas_threads", lambda: 2)
    threaded = lrpcore.explain(model, x, composite="epsilon_gamma_box")
    assert winograd_calls
    for ours, reference in zip(threaded.layer_relevances, serial.layer_relevances):
        np.testing.assert_array_equal(ours, reference)


@pytest.mark.cupy
def test_cupy_fast_path_equals_numpy():
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA GPU")
    except Exception as error:  # pragma: no cover - depends on the machine
        pytest.skip(f"no usable CUDA GPU: {error}")
    for dtype in (np.float64, np.float32):
        x, weight = _case((2, 32, 14, 15), (48, 3, 3), dtype, seed=12)
        layer = Conv2d(weight, padding=1)
        expected = layer.linear_forward(x, weight)
        expected_back = layer.linear_transpose(expected, weight, x.shape)
        moved = layer.to("cupy")
        got = moved.linear_forward(to_backend(x, "cupy"), moved.weight)
        back = moved.linear_transpose(got, moved.weight, x.shape)
        assert _relative(to_numpy(got), expected) <= TOLERANCE[dtype]
        assert _relative(to_numpy(back), expected_back) <= TOLERANCE[dtype]
