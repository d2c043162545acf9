"""The LSTM layer against torch.nn.LSTM, and signal-take-all LRP against loops written from Arras et al.'s
equations; conservation; the shipped motif LSTM."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import lrpcore
from lrpcore.data import motifs
from lrpcore.layers import Dense
from lrpcore.lstm import LSTM, SignalTakesAll, from_torch_state_dict
from lrpcore.composites import Composite, get_composite
from lrpcore.rules import Epsilon

torch = pytest.importorskip("torch")
MODEL = Path(__file__).resolve().parents[1] / "models" / "motif_lstm.h5"


@pytest.fixture(scope="module")
def torch_lstm():
    torch.manual_seed(0)
    return torch.nn.LSTM(4, 6, batch_first=True).double()


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).normal(size=(3, 4, 9))


@pytest.mark.parametrize("batch_first", [True, False])
def test_forward_equals_torch(torch_lstm, x, batch_first):
    layer = from_torch_state_dict(torch_lstm.state_dict())
    module = torch.nn.LSTM(4, 6, batch_first=batch_first).double()
    module.load_state_dict(torch_lstm.state_dict())
    sequence = x.transpose(0, 2, 1) if batch_first else x.transpose(2, 0, 1)
    _, (h_n, _) = module(torch.from_numpy(np.ascontiguousarray(sequence)))
    np.testing.assert_allclose(layer.forward(x), h_n[0].detach().numpy(), rtol=1e-12, atol=1e-14)
    states = layer.states(x)
    output, _ = module(torch.from_numpy(np.ascontiguousarray(sequence)))
    every_h = output.detach().numpy() if batch_first else output.detach().numpy().transpose(1, 0, 2)
    np.testing.assert_allclose(states.h, every_h, rtol=1e-12, atol=1e-14)


def test_gradient_equals_torch_autograd(torch_lstm, x):
    layer = from_torch_state_dict(torch_lstm.state_dict())
    grad_output = np.random.default_rng(1).normal(size=(3, 6))
    inputs = torch.from_numpy(x).requires_grad_()
    _, (h_n, _) = torch_lstm(inputs.permute(0, 2, 1))
    (h_n[0] * torch.from_numpy(grad_output)).sum().backward()
    np.testing.assert_allclose(layer.gradient(x, grad_output), inputs.grad.numpy(), rtol=1e-10, atol=1e-13)


def loop_signal_take_all(layer: LSTM, x: np.ndarray, relevance: np.ndarray, eps: float) -> np.ndarray:
    """Arras et al. 2017 written per element: forward by the LSTM equations, backward by signal-take-all."""
    hidden, channels, length = layer.hidden_size, layer.input_size, x.shape[2]
    w_ih, w_hh, b = layer.weight_ih, layer.weight_hh, layer.bias_ih + layer.bias_hh
    out = np.zeros_like(x)

    def sig(value):
        return 1 / (1 + math.exp(-value))

    def stab(value):
        return value + eps * (1 if value >= 0 else -1)

    for n in range(x.shape[0]):
        h = [np.zeros(hidden)]
        c = [np.zeros(hidden)]
        gates = []
        for t in range(length):
            pre = [sum(w_ih[r, q] * x[n, q, t] for q in range(channels))
                   + sum(w_hh[r, q] * h[-1][q] for q in range(hidden)) + b[r] for r in range(4 * hidden)]
            i = np.array([sig(pre[r]) for r in range(hidden)])
            f = np.array([sig(pre[hidden + r]) for r in range(hidden)])
            z_g = np.array(pre[2 * hidden:3 * hidden])
            g = np.tanh(z_g)
            o = np.array([sig(pre[3 * hidden + r]) for r in range(hidden)])
            c.append(f * c[-1] + i * g)
            h.append(o * np.tanh(c[-1]))
            gates.append((i, f, g, z_g))
        r_h = relevance[n].copy()
        r_c = np.zeros(hidden)
        for t in range(length - 1, -1, -1):
            i, f, g, z_g = gates[t]
            r_c = r_c + r_h
            r_g = np.array([i[q] * g[q] / stab(c[t + 1][q]) * r_c[q] for q in range(hidden)])
            r_c_prev = np.array([f[q] * c[t][q] / stab(c[t + 1][q]) * r_c[q] for q in range(hidden)])
            for p in range(channels):
                out[n, p, t] = sum(x[n, p, t] * w_ih[2 * hidden + q, p] / stab(z_g[q]) * r_g[q] for q in range(hidden))
            r_h = np.array([sum(h[t][p] * w_hh[2 * hidden + q, p] / stab(z_g[q]) * r_g[q] for q in range(hidden))
                            for p in range(hidden)])
            r_c = r_c_prev
    return out


@pytest.mark.parametrize("eps", [1e-3, 0.1])
def test_signal_take_all_matches_the_loops(torch_lstm, x, eps):
    layer = from_torch_state_dict(torch_lstm.state_dict())
    relevance = np.random.default_rng(2).normal(size=(3, 6))
    fast = SignalTakesAll(epsilon=eps).relevance(layer, x, relevance)
    np.testing.assert_allclose(fast, loop_signal_take_all(layer, x, relevance, eps), rtol=1e-9, atol=1e-12)


def test_conserved_without_g_biases(torch_lstm, x):
    state = {key: value.clone() for key, value in torch_lstm.state_dict().items()}
    layer = from_torch_state_dict(state)
    rows = layer.gate_slice("g")
    layer.bias_ih[rows] = 0.0
    layer.bias_hh[rows] = 0.0
    relevance = layer.forward(x)
    out = SignalTakesAll(epsilon=1e-12).relevance(layer, x, relevance)
    np.testing.assert_allclose(out.sum(axis=(1, 2)), relevance.sum(axis=1), rtol=1e-8)
    # with the g-biases back, the relevance they absorb is what is missing
    biased = from_torch_state_dict(torch_lstm.state_dict())
    leak = SignalTakesAll(epsilon=1e-12).relevance(biased, x, biased.forward(x)).sum(axis=(1, 2))
    assert np.abs(leak - biased.forward(x).sum(axis=1)).max() > 1e-3


def test_explain_traces_the_lstm_and_reports_conservation(torch_lstm, x):
    layer = from_torch_state_dict(torch_lstm.state_dict())
    model = lrpcore.Sequential([layer, Dense(np.random.default_rng(3).normal(size=(2, 6)), np.zeros(2))])
    composite = Composite(by_type={LSTM: SignalTakesAll(1e-3), Dense: Epsilon(1e-3)})
    explanation = lrpcore.explain(model, x, composite=composite, record=True)
    step = explanation.trace[0]
    assert isinstance(step.rule, SignalTakesAll) and step.z.shape == (3, 9, 6)
    assert explanation.relevance.shape == x.shape
    rows = explanation.conservation().rows
    assert rows[0]["rule"].startswith("SignalTakesAll")
    # the same composite written from a preset
    preset = get_composite("epsilon")
    preset.by_type[LSTM] = SignalTakesAll(1e-3)
    again = lrpcore.explain(model, x, composite=preset)
    assert again.relevance.shape == x.shape
    # and gradient×input through the layer's BPTT
    grad, _ = lrpcore.gradient(model, x)
    assert grad.shape == x.shape


def test_explicit_matrix_of_signal_take_all(torch_lstm, x):
    """The rule is linear in R_h for a fixed input: its matrix (C·L × H) reproduces the fast path, and
    each column's sum is the share of a unit relevance that reaches the input (1 minus the absorbed)."""
    from lrpcore.matrix import rule_matrix as own_rule_matrix

    layer = from_torch_state_dict(torch_lstm.state_dict())
    rule = SignalTakesAll(1e-3)
    matrix = own_rule_matrix(layer, x[:1], rule)
    assert matrix.shape == (4 * 9, 6)
    relevance = np.random.default_rng(4).normal(size=(1, 6))
    np.testing.assert_allclose(matrix @ relevance[0], rule.relevance(layer, x[:1], relevance).ravel(), rtol=1e-10,
                               atol=1e-13)
    rows = layer.gate_slice("g")
    layer.bias_ih[rows] = 0.0
    layer.bias_hh[rows] = 0.0
    np.testing.assert_allclose(own_rule_matrix(layer, x[:1], SignalTakesAll(1e-12)).sum(axis=0), 1.0, rtol=1e-8)


def test_bad_weights_and_inputs_are_named():
    with pytest.raises(lrpcore.ShapeError, match="weight_hh"):
        LSTM(np.zeros((8, 3)), np.zeros((8, 3)))
    layer = LSTM(np.zeros((8, 3)), np.zeros((8, 2)))
    with pytest.raises(lrpcore.ShapeError, match=r"\(N, 3, L\)"):
        layer.forward(np.zeros((1, 5, 4)))
    with pytest.raises(lrpcore.ShapeError, match="bidirectional"):
        from_torch_state_dict({"weight_ih_l0_reverse": None})


# --- the shipped model ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped():
    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing; train it with `python tools/train_motif_lstm.py`")
    return lrpcore.load(MODEL)


def test_shipped_lstm_classifies_fresh_motif_sequences(shipped):
    fresh = motifs(1000, length=shipped.metadata.input_shape[1], seed=31)
    predicted = np.asarray(shipped.forward(fresh.x)).argmax(axis=1)
    assert (predicted == fresh.y).mean() >= 0.85


def test_shipped_lstm_equals_torch_and_its_explanation_is_mostly_conserved(shipped):
    lstm, dense = shipped.layers
    module = torch.nn.LSTM(4, lstm.hidden_size, batch_first=True)
    module.load_state_dict({"weight_ih_l0": torch.from_numpy(lstm.weight_ih), "weight_hh_l0": torch.from_numpy(lstm.weight_hh),
                            "bias_ih_l0": torch.from_numpy(lstm.bias_ih), "bias_hh_l0": torch.from_numpy(lstm.bias_hh)})
    fresh = motifs(40, length=shipped.metadata.input_shape[1], seed=32)
    with torch.no_grad():
        _, (h_n, _) = module(torch.from_numpy(fresh.x).transpose(1, 2))
        logits = h_n[0].numpy() @ dense.weight.T + dense.bias
    np.testing.assert_allclose(shipped.forward(fresh.x), logits, rtol=1e-4, atol=1e-5)
    model = shipped.astype("float64")
    chosen = fresh.x[fresh.y > 0][:8].astype(np.float64)
    explanation = lrpcore.explain(model, chosen, target=fresh.y[fresh.y > 0][:8],
                                  composite=Composite(by_type={LSTM: SignalTakesAll(1e-3), Dense: Epsilon(1e-3)}))
    assert explanation.conservation().total_relative_error < 0.5
    # relevance on the planted motif bases: more than their share of the sequence
    masks = fresh.masks[fresh.y > 0][:8]
    per_base = explanation.relevance.sum(axis=1)
    on_motif = (per_base * masks).sum(axis=1) / np.abs(per_base).sum(axis=1)
    assert np.median(on_motif) > 2 * masks.mean()
