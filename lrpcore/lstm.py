"""An LSTM layer with PyTorch's forward, and its LRP rule: signal-take-all (Arras et al. 2017, 2019).

Forward (``torch.nn.LSTM``, one layer, one direction; gate order i, f, g, o in the weight rows):

    i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
    f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
    g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
    o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    h_t = o_t ⊙ tanh(c_t),           h_0 = c_0 = 0

with ``weight_ih`` (4H, C), ``weight_hh`` (4H, H), ``bias_ih`` and ``bias_hh`` (4H,), exactly the
entries ``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0`` of the module's state dict.

Layout. lrpcore sequence models see (N, C, L) arrays, channels first (as ``Conv1d`` and
:func:`lrpcore.data.motifs`). ``torch.nn.LSTM`` reads (L, N, C), or (N, L, C) with
``batch_first=True``: the same data is ``x.transpose(0, 2, 1)`` for ``batch_first=True`` and
``x.transpose(2, 0, 1)`` otherwise. :class:`LSTM` returns the last hidden state h_L, shape (N, H)
(torch's ``h_n[0]``), so a model is ``Sequential([LSTM(...), Dense(H→classes)])``.

LRP (Arras, Montavon, Müller, Samek 2017, "Explaining recurrent neural network predictions in
sentiment analysis"; Arras et al. 2019, "Explaining and interpreting LSTMs", chapter 11 of the same
book as Montavon et al. 2019): in each product gate ⊙ signal the gate only switches, so the whole
relevance goes to the *signal* ("signal-take-all"), and the gates receive none:

- h_t = o_t ⊙ tanh(c_t): R_{c_t} += R_{h_t} (tanh is element-wise; o_t gets nothing);
- c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t is a sum of two signals (f_t c_{t-1} and i_t g_t), split by the
  ε-rule: R_{c_{t-1}} = f_t c_{t-1} / stab(c_t) · R_{c_t}, R_{g_t} = i_t g_t / stab(c_t) · R_{c_t};
- g_t = tanh(z_t) passes R_{g_t} to its pre-activation z_t = W_ig x_t + W_hg h_{t-1} + b_g, whose
  linear map takes the ε-rule: s = R_{g_t} / stab(z_t), R_{x_t} = x_t ⊙ W_igᵀ s,
  R_{h_{t-1}} += h_{t-1} ⊙ W_hgᵀ s.

stab(z) = z + ε·sign(z) (sign(0) = +1; the ``"zennit"`` stabilizer). The bias b_g = b_ig + b_hg and
ε absorb relevance (the "bias factor 0" of Arras et al.'s code), so Σ_t Σ_c R_{x_t,c} equals the
relevance of h_L up to that absorbed share; with zero g-biases and ε → 0 it is conserved exactly.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from .backend import get_namespace, to_numpy
from .errors import ShapeError
from .layers import Layer
from .rules import BranchRecord, Rule, safe_divide
from .stabilizers import Stabilizer

__all__ = ["LSTM", "LSTMStates", "SignalTakesAll", "from_torch_state_dict"]


def sigmoid(x: Any) -> Any:
    """σ(x) = (1 + tanh(x/2)) / 2: the logistic function without overflow for large |x|."""
    xp = get_namespace(x)
    return 0.5 * (1.0 + xp.tanh(0.5 * x))


@dataclasses.dataclass
class LSTMStates:
    """Everything the forward pass computed, each with time as axis 1: (N, L, H) arrays
    ``i, f, g, o`` (gates after their non-linearity), ``z_g`` (g's pre-activation), ``c`` and ``h``
    (c_1..c_L, h_1..h_L); ``x`` the input as (N, L, C)."""

    x: Any
    i: Any
    f: Any
    g: Any
    o: Any
    z_g: Any
    c: Any
    h: Any


class LSTM(Layer):
    """One-layer, one-direction LSTM with ``torch.nn.LSTM``'s forward; input (N, C, L) → last h (N, H).

    ``weight_ih`` (4H, C), ``weight_hh`` (4H, H), ``bias_ih`` and ``bias_hh`` (4H,) in torch's gate
    order (i, f, g, o). Missing biases are zeros. See the module docstring for the layout.
    """

    input_rank = 3

    def default_rule(self) -> "SignalTakesAll":
        """Signal-take-all with the ε-rule on the linear maps (Arras et al.), what every composite gives an LSTM."""
        return SignalTakesAll()

    def __init__(self, weight_ih: Any, weight_hh: Any, bias_ih: Any | None = None, bias_hh: Any | None = None):
        if weight_ih.ndim != 2 or weight_ih.shape[0] % 4:
            raise ShapeError(f"LSTM weight_ih must be (4·hidden, input), got shape {tuple(weight_ih.shape)}")
        hidden = weight_ih.shape[0] // 4
        if tuple(weight_hh.shape) != (4 * hidden, hidden):
            raise ShapeError(f"LSTM weight_hh must be ({4 * hidden}, {hidden}) for weight_ih of shape "
                             f"{tuple(weight_ih.shape)}, got {tuple(weight_hh.shape)}")
        xp = get_namespace(weight_ih)
        zeros = xp.zeros((4 * hidden,), dtype=weight_ih.dtype)
        bias_ih = zeros if bias_ih is None else bias_ih
        bias_hh = zeros if bias_hh is None else bias_hh
        for name, bias in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
            if tuple(bias.shape) != (4 * hidden,):
                raise ShapeError(f"LSTM {name} must be ({4 * hidden},), got shape {tuple(bias.shape)}")
        self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh = weight_ih, weight_hh, bias_ih, bias_hh

    @property
    def input_size(self) -> int:
        return int(self.weight_ih.shape[1])

    @property
    def hidden_size(self) -> int:
        return int(self.weight_hh.shape[1])

    def parameters(self) -> dict[str, Any]:
        return {"weight_ih": self.weight_ih, "weight_hh": self.weight_hh, "bias_ih": self.bias_ih,
                "bias_hh": self.bias_hh}

    def hyperparameters(self) -> dict[str, Any]:
        return {"input_size": self.input_size, "hidden_size": self.hidden_size}

    def describe(self) -> str:
        return f"LSTM({self.input_size}→{self.hidden_size})"

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (self.hidden_size,)

    def gate_slice(self, gate: str) -> slice:
        """Rows of the weights belonging to ``gate`` ('i', 'f', 'g' or 'o'), torch's order."""
        index = "ifgo".index(gate)
        return slice(index * self.hidden_size, (index + 1) * self.hidden_size)

    def _check(self, x: Any) -> None:
        if x.ndim != 3 or x.shape[1] != self.input_size:
            raise ShapeError(f"{self.describe()} expects sequences (N, {self.input_size}, L) (channels first), "
                             f"got shape {tuple(x.shape)}")
        if x.shape[2] < 1:
            raise ShapeError(f"{self.describe()} needs sequences of length ≥ 1, got shape {tuple(x.shape)}")

    def states(self, x: Any) -> LSTMStates:
        """Run the recurrence and keep every gate, cell and hidden state (what LRP and the gradient need)."""
        self._check(x)
        xp = get_namespace(x)
        n, _, length = x.shape
        hidden = self.hidden_size
        sequence = xp.permute_dims(x, (0, 2, 1))                               # (N, L, C)
        # the input part of every gate at every step in one product: (N, L, 4H)
        inputs = xp.matmul(sequence, xp.matrix_transpose(self.weight_ih)) + self.bias_ih + self.bias_hh
        h = xp.zeros((n, hidden), dtype=x.dtype)
        c = xp.zeros((n, hidden), dtype=x.dtype)
        kept = {name: [] for name in ("i", "f", "g", "o", "z_g", "c", "h")}
        recurrent = xp.matrix_transpose(self.weight_hh)
        for t in range(length):
            pre = inputs[:, t, :] + xp.matmul(h, recurrent)
            i = sigmoid(pre[:, :hidden])
            f = sigmoid(pre[:, hidden:2 * hidden])
            z_g = pre[:, 2 * hidden:3 * hidden]
            g = xp.tanh(z_g)
            o = sigmoid(pre[:, 3 * hidden:])
            c = f * c + i * g
            h = o * xp.tanh(c)
            for name, value in (("i", i), ("f", f), ("g", g), ("o", o), ("z_g", z_g), ("c", c), ("h", h)):
                kept[name].append(value)
        stacked = {name: xp.stack(values, axis=1) for name, values in kept.items()}
        return LSTMStates(x=sequence, **stacked)

    def forward(self, x: Any) -> Any:
        return self.states(x).h[:, -1, :]

    def gradient(self, x: Any, grad_output: Any) -> Any:
        """∂⟨grad_output, h_L⟩/∂x by backpropagation through time, shape (N, C, L)."""
        xp = get_namespace(x)
        states = self.states(x)
        n, length = x.shape[0], x.shape[2]
        hidden = self.hidden_size
        grad_h = grad_output
        grad_c = xp.zeros_like(grad_h)
        grads_x = [None] * length
        for t in range(length - 1, -1, -1):
            i, f, g, o, c = (getattr(states, name)[:, t, :] for name in ("i", "f", "g", "o", "c"))
            c_prev = states.c[:, t - 1, :] if t > 0 else xp.zeros_like(c)
            tanh_c = xp.tanh(c)
            grad_c = grad_c + grad_h * o * (1.0 - tanh_c * tanh_c)
            grad_pre = xp.concat([grad_c * g * i * (1.0 - i),              # through i
                                  grad_c * c_prev * f * (1.0 - f),         # through f
                                  grad_c * i * (1.0 - g * g),              # through g
                                  grad_h * tanh_c * o * (1.0 - o)], axis=1)  # through o
            grads_x[t] = xp.matmul(grad_pre, self.weight_ih)
            grad_h = xp.matmul(grad_pre, self.weight_hh)
            grad_c = grad_c * f
        del n, hidden
        return xp.stack(grads_x, axis=2)


def from_torch_state_dict(state_dict: Any, layer: int = 0) -> LSTM:
    """An :class:`LSTM` from a ``torch.nn.LSTM`` state dict (``weight_ih_l{layer}`` …), as NumPy arrays.

    Only one-direction layers are read (``*_reverse`` entries are refused with a clear error).
    """
    import numpy

    if any(key.endswith("_reverse") for key in state_dict):
        raise ShapeError("bidirectional LSTM state dicts are not supported; export one direction")
    suffix = f"_l{layer}"
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    missing = [name + suffix for name in names[:2] if name + suffix not in state_dict]
    if missing:
        raise ShapeError(f"the state dict has no {missing}; found keys {sorted(state_dict)}")

    def array(value: Any) -> Any:
        value = value.detach().cpu().numpy() if hasattr(value, "detach") else value
        return numpy.array(value, copy=True)

    return LSTM(*(array(state_dict[name + suffix]) if name + suffix in state_dict else None for name in names))


def _counts(z: Any, carries: Any, keep: bool) -> tuple[Any, Any, float]:
    """Per-sample counts of relevance-carrying entries with zero / near-zero (< 1e-6·RMS) denominators."""
    xp = get_namespace(z)
    n = z.shape[0]
    flat = xp.reshape(xp.abs(z), (n, -1))
    carry = xp.reshape(carries, (n, -1))
    scale = xp.linalg.vector_norm(flat, axis=1, keepdims=True) / math.sqrt(max(1, flat.shape[1]))
    near = xp.logical_and(flat <= 1e-6 * scale, carry)
    zero = xp.logical_and(flat == 0, carry)
    smallest = float(xp.min(flat)) if keep and z.size else float("nan")
    return to_numpy(xp.count_nonzero(zero, axis=1)), to_numpy(xp.count_nonzero(near, axis=1)), smallest


class SignalTakesAll(Rule):
    """LRP for :class:`LSTM`: relevance follows the signals (cell input g, cell state c), never the gates;
    ε-rule on the cell update and on g's linear map; bias and ε absorb (Arras et al. 2017, 2019).

    ``epsilon``: the ε of both ε-rules (Arras et al. use 0.001). The trace (``record``) holds two
    branch records: the cell update (z = c_t, s = R_{c_t}/stab(c_t), c = f_t c_{t-1} share) and the
    g-map (z = z_g, s = R_g / stab(z_g), c = W_igᵀ s), each stacked over time as (N, L, H).
    """

    name = "SignalTakesAll"

    def __init__(self, epsilon: float = 1e-3, stabilizer: str | Stabilizer = "zennit"):
        super().__init__(stabilizer=stabilizer, epsilon=epsilon)

    def describe(self) -> str:
        return f"SignalTakesAll(ε={self.epsilon:g})"

    def branches(self, layer, a, weight, bias):  # pragma: no cover - relevance() is overridden
        raise TypeError("SignalTakesAll has no terms; it overrides relevance()")

    def relevance(self, layer: Layer, a: Any, relevance: Any, record: list[BranchRecord] | None = None,
                  output: Any | None = None, counts_only: bool = False) -> Any:
        if not isinstance(layer, LSTM):
            raise TypeError(f"SignalTakesAll applies to LSTM layers, not {layer.describe()}")
        if tuple(relevance.shape) != (a.shape[0], layer.hidden_size):
            raise ShapeError(f"SignalTakesAll on {layer.describe()} needs relevance (N, {layer.hidden_size}) of "
                             f"the last hidden state, got shape {tuple(relevance.shape)}")
        xp = get_namespace(a)
        states = layer.states(a)
        length = a.shape[2]
        rows = layer.gate_slice("g")
        w_x, w_h = layer.weight_ih[rows, :], layer.weight_hh[rows, :]
        relevance_x = [None] * length
        relevance_h = relevance
        relevance_c = xp.zeros_like(relevance)
        kept = {"c_z": [], "c_s": [], "c_c": [], "g_z": [], "g_s": [], "g_c": [], "c_carry": [], "g_carry": []}
        for t in range(length - 1, -1, -1):
            f, i, g, c = (getattr(states, name)[:, t, :] for name in ("f", "i", "g", "c"))
            c_prev = states.c[:, t - 1, :] if t > 0 else xp.zeros_like(c)
            h_prev = states.h[:, t - 1, :] if t > 0 else xp.zeros_like(c)
            relevance_c = relevance_c + relevance_h                 # h_t = o_t ⊙ tanh(c_t): all to c_t
            z_c = self.stabilize(c)
            s_c = safe_divide(relevance_c, z_c)
            relevance_g = i * g * s_c                               # i_t ⊙ g_t: all to the signal g_t
            relevance_c_prev = f * c_prev * s_c                     # f_t ⊙ c_{t-1}: all to c_{t-1}
            z_g = self.stabilize(states.z_g[:, t, :])
            s_g = safe_divide(relevance_g, z_g)
            back_x = xp.matmul(s_g, w_x)                            # W_igᵀ s
            relevance_x[t] = states.x[:, t, :] * back_x
            relevance_h = h_prev * xp.matmul(s_g, w_h)
            if record is not None:
                kept["c_carry"].append(relevance_c != 0)
                kept["g_carry"].append(relevance_g != 0)
                kept["c_z"].append(z_c)
                kept["g_z"].append(z_g)
                if not counts_only:
                    kept["c_s"].append(s_c)
                    kept["c_c"].append(f * c_prev)
                    kept["g_s"].append(s_g)
                    kept["g_c"].append(back_x)
            relevance_c = relevance_c_prev
        if record is not None:
            for prefix in ("g", "c"):
                order = lambda values: xp.stack(values[::-1], axis=1)  # noqa: E731 - back to time order
                z = order(kept[f"{prefix}_z"])
                zeros, near, smallest = _counts(z, order(kept[f"{prefix}_carry"]), keep=not counts_only)
                record.append(BranchRecord(
                    z=None if counts_only else z,
                    s=None if counts_only else order(kept[f"{prefix}_s"]),
                    c=None if counts_only else order(kept[f"{prefix}_c"]),
                    zero_denominators=zeros, near_zero_denominators=near, smallest_denominator=smallest))
        return xp.stack(relevance_x, axis=2)


def _register() -> None:
    from .io.registry import register_layer

    register_layer(LSTM)


_register()
