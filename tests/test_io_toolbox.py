"""LRP Toolbox plain-text models → lrpcore, and the Toolbox's LRP variants reproduced by ``toolbox_composite``.

The tests write Toolbox-format files themselves (the format of the Toolbox's ``model_io.write``), and
compute the Toolbox's forward pass and relevances independently: loops over the Toolbox's channels-last
arrays (N, H, W, D), each written from the formulas of ``python/modules/{linear,convolution,sumpool,
maxpool}.py`` (ε·sign(z) with sign(0) = +1; 1e-16 in the simple rule, 1e-12 at sum pooling, ε added
to the window sum; winner-take-all with equal ties at max pooling; uniform under flat and w² there).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from lrpcore import explain
from lrpcore.cli import main
from lrpcore.errors import ModelFormatError
from lrpcore.io import load, load_toolbox, toolbox_composite
from lrpcore.layers import Conv2d, Dense, Flatten, MaxPool2d, ReLU, SumPool2d, Tanh


# --- writing Toolbox files ------------------------------------------------------------------------
def _values(array: np.ndarray) -> str:
    return " ".join(repr(float(value)) for value in np.asarray(array).ravel())


def write_toolbox(path, modules: list[tuple], legacy: bool = False) -> None:
    """Write ``modules`` [(name, params...)] in the Toolbox's text format (``model_io._write_txt``)."""
    lines = []
    for module in modules:
        name = module[0]
        if name == "Linear":
            weight, bias = module[1], module[2]
            lines.append(f"Linear {weight.shape[0]} {weight.shape[1]}")
            lines += [_values(row) for row in weight] if legacy else [_values(weight)]
            lines.append(_values(bias))
        elif name == "Convolution":
            weight, bias, stride = module[1], module[2], module[3]
            lines.append(f"Convolution {' '.join(str(size) for size in weight.shape)} {stride[0]} {stride[1]}")
            lines += [_values(weight), _values(bias)]
        elif name in ("MaxPool", "SumPool"):
            pool, stride = module[1], module[2]
            lines.append(f"{name} {pool[0]} {pool[1]} {stride[0]} {stride[1]}")
        else:
            lines.append(name)
    path.write_text("\n".join(lines) + "\n")


# --- the Toolbox's formulas, as loops over channels-last arrays --------------------------------------
def _sign(value: float) -> float:
    return 1.0 if value >= 0 else -1.0           # the Toolbox's (Z >= 0)*2 - 1


class ToolboxReference:
    """Forward and LRP of a Toolbox module list, one sample, written out with loops."""

    def __init__(self, modules: list[tuple]):
        self.modules = [module for module in modules if module[0] != "SoftMax"]

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        activations = [x]
        for module in self.modules:
            activations.append(self._forward(module, activations[-1]))
        return activations

    def _forward(self, module, x):
        name = module[0]
        if name == "Linear":
            weight, bias = module[1], module[2]
            return np.array([sum(x[j] * weight[j, k] for j in range(weight.shape[0])) + bias[k]
                             for k in range(weight.shape[1])])
        if name == "Convolution":
            weight, bias, (sh, sw) = module[1], module[2], module[3]
            hf, wf, df, nf = weight.shape
            height, width, _ = x.shape
            out = np.zeros(((height - hf) // sh + 1, (width - wf) // sw + 1, nf))
            for i, j, f in np.ndindex(*out.shape):
                out[i, j, f] = bias[f] + sum(x[i * sh + a, j * sw + b, c] * weight[a, b, c, f]
                                             for a in range(hf) for b in range(wf) for c in range(df))
            return out
        if name in ("MaxPool", "SumPool"):
            (hp, wp), (sh, sw) = module[1], module[2]
            height, width, depth = x.shape
            out = np.zeros(((height - hp) // sh + 1, (width - wp) // sw + 1, depth))
            for i, j, d in np.ndindex(*out.shape):
                window = x[i * sh:i * sh + hp, j * sw:j * sw + wp, d]
                out[i, j, d] = window.max() if name == "MaxPool" else window.sum() / math.sqrt(hp * wp)
            return out
        if name == "Rect":
            return np.maximum(x, 0.0)
        if name == "Tanh":
            return np.tanh(x)
        if name == "Flatten":
            return x.reshape(-1)                     # (H, W, D) order
        raise ValueError(name)

    def lrp(self, x: np.ndarray, relevance: np.ndarray, variant: str, param: float | None) -> np.ndarray:
        activations = self.forward(x)
        for index in range(len(self.modules) - 1, -1, -1):
            relevance = self._lrp(self.modules[index], activations[index], relevance, variant, param)
        return relevance

    def _lrp(self, module, x, relevance, variant, param):
        name = module[0]
        if name in ("Rect", "Tanh"):
            return relevance
        if name == "Flatten":
            return relevance.reshape(x.shape)
        if name == "Linear":
            weight, bias = module[1], module[2]
            links = [((j,), (k,), weight[j, k]) for k in range(weight.shape[1]) for j in range(weight.shape[0])]
            return self._weighted(links, x, relevance, bias, lambda k: k[0], variant, param)
        if name == "Convolution":
            weight, bias, (sh, sw) = module[1], module[2], module[3]
            hf, wf, df, _ = weight.shape
            links = [((i * sh + a, j * sw + b, c), (i, j, f), weight[a, b, c, f])
                     for i, j, f in np.ndindex(*relevance.shape)
                     for a in range(hf) for b in range(wf) for c in range(df)]
            return self._weighted(links, x, relevance, bias, lambda k: k[2], variant, param)
        (hp, wp), (sh, sw) = module[1], module[2]
        lower = np.zeros_like(x)
        for i, j, d in np.ndindex(*relevance.shape):
            cells = [(i * sh + a, j * sw + b, d) for a in range(hp) for b in range(wp)]
            values = np.array([x[cell] for cell in cells])
            r = relevance[i, j, d]
            if variant in ("flat", "ww") or (name == "SumPool" and variant == "ww"):
                shares = np.full(len(cells), 1.0 / len(cells))
            elif name == "MaxPool":
                winners = values == values.max()
                shares = winners / winners.sum()
            elif variant == "alphabeta":               # α = 1 only (the Toolbox's general case is not LRP)
                positive = values * (values > 0)
                shares = positive / (positive.sum() + 1e-16)
            else:
                total = values.sum()
                epsilon = 1e-12 if variant == "simple" else param
                shares = values / (total + epsilon * _sign(total))
            for cell, share in zip(cells, shares):
                lower[cell] += share * r
        return lower

    @staticmethod
    def _weighted(links, x, relevance, bias, channel, variant, param):
        """R_j = Σ_k q_jk / Σ_j q_jk · R_k for the Toolbox's q of each variant, over explicit (j, k, w) links."""
        lower = np.zeros_like(x)
        outputs = {}
        for j, k, w in links:
            outputs.setdefault(k, []).append((j, w))
        for k, inputs in outputs.items():
            r = relevance[k]
            z = np.array([x[j] * w for j, w in inputs])
            b = bias[channel(k)]
            if variant in ("simple", "epsilon"):
                total = z.sum() + b
                epsilon = 1e-16 if variant == "simple" else param
                shares = z / (total + epsilon * _sign(total))
            elif variant == "alphabeta":
                alpha = param
                beta = 1.0 - alpha
                zp = z * (z > 0)
                zsp = zp.sum() + max(b, 0.0) + 1e-16
                if beta != 0:
                    zn = z - zp
                    zsn = (z.sum() + b) - zsp - 1e-16
                    shares = alpha * zp / zsp + beta * zn / zsn
                else:
                    shares = zp / zsp
            elif variant == "flat":
                shares = np.full(len(z), 1.0 / len(z))
            else:   # ww
                squares = np.array([w * w for _, w in inputs])
                shares = squares / squares.sum()
            for (j, _), share in zip(inputs, shares):
                lower[j] += share * r
        return lower


# --- networks --------------------------------------------------------------------------------------
def _conv_modules(seed: int = 0) -> list[tuple]:
    rng = np.random.default_rng(seed)
    return [
        ("Convolution", rng.normal(size=(3, 3, 2, 3)) * 0.5, rng.normal(size=3) * 0.1, (1, 1)),   # 9×9×2 → 7×7×3
        ("Rect",),
        ("SumPool", (2, 2), (1, 1)),                                                                # → 6×6×3
        ("Convolution", rng.normal(size=(2, 2, 3, 4)) * 0.5, rng.normal(size=4) * 0.1, (2, 2)),   # → 3×3×4
        ("Tanh",),
        ("MaxPool", (2, 2), (1, 1)),                                                                # → 2×2×4
        ("Flatten",),
        ("Linear", rng.normal(size=(16, 5)) * 0.5, rng.normal(size=5) * 0.1),
        ("Rect",),
        ("Linear", rng.normal(size=(5, 3)) * 0.5, rng.normal(size=3) * 0.1),
        ("SoftMax",),
    ]


def _mlp_modules(seed: int = 1) -> list[tuple]:
    rng = np.random.default_rng(seed)
    return [("Linear", rng.normal(size=(6, 5)), rng.normal(size=5) * 0.1), ("Tanh",),
            ("Linear", rng.normal(size=(5, 4)), rng.normal(size=4) * 0.1), ("Rect",),
            ("Linear", rng.normal(size=(4, 3)), rng.normal(size=3) * 0.1), ("SoftMax",)]


@pytest.fixture()
def conv_file(tmp_path):
    path = tmp_path / "conv.txt"
    write_toolbox(path, _conv_modules())
    return path


def _relevances(model, modules, x_nhwc, variant, param):
    """(lrpcore's relevance in NHWC, the loop reference's) for each sample, explaining the top logit."""
    composite = toolbox_composite(model, variant, param)
    model_x = x_nhwc.transpose(0, 3, 1, 2) if x_nhwc.ndim == 4 else x_nhwc
    ours = np.asarray(explain(model, model_x, composite=composite).relevance)
    if ours.ndim == 4:
        ours = ours.transpose(0, 2, 3, 1)
    reference = ToolboxReference(modules)
    expected = []
    for sample in x_nhwc:
        logits = reference.forward(sample)[-1]
        start = np.zeros_like(logits)
        start[logits.argmax()] = logits.max()
        expected.append(reference.lrp(sample, start, variant, param))
    return ours, np.stack(expected)


# --- tests ----------------------------------------------------------------------------------------
def test_conv_model_reads_with_the_toolbox_layouts_converted(conv_file):
    model = load_toolbox(conv_file, input_shape=(9, 9, 2))
    assert [type(layer) for layer in model.layers] == [Conv2d, ReLU, SumPool2d, Conv2d, Tanh, MaxPool2d, Flatten,
                                                      Dense, ReLU, Dense]
    assert model.metadata.input_shape == (2, 9, 9) and str(model.dtype) == "float64"
    assert model[2].scale == pytest.approx(0.5) and "dropped the final SoftMax" in model.metadata.description
    x = np.random.default_rng(3).normal(size=(2, 9, 9, 2))
    reference = ToolboxReference(_conv_modules())
    expected = np.stack([reference.forward(sample)[-1] for sample in x])
    np.testing.assert_allclose(model.forward(x.transpose(0, 3, 1, 2)), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("variant, param", [("simple", None), ("epsilon", 0.01), ("epsilon", 1.0),
                                            ("alphabeta", 1.0), ("flat", None), ("ww", None)])
def test_toolbox_composite_reproduces_the_toolbox_formulas_on_a_conv_net(conv_file, variant, param):
    model = load_toolbox(conv_file, input_shape=(9, 9, 2))
    x = np.random.default_rng(4).normal(size=(2, 9, 9, 2))
    ours, expected = _relevances(model, _conv_modules(), x, variant, param)
    scale = np.abs(expected).max()
    assert scale > 0
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-10 * scale)


@pytest.mark.parametrize("variant, param", [("simple", None), ("epsilon", 0.1), ("alphabeta", 2.0),
                                            ("alphabeta", 1.0), ("flat", None), ("ww", None)])
@pytest.mark.parametrize("legacy", [False, True])
def test_toolbox_composite_reproduces_the_toolbox_formulas_on_a_tanh_mlp(tmp_path, variant, param, legacy):
    path = tmp_path / "mlp.txt"
    write_toolbox(path, _mlp_modules(), legacy=legacy)
    model = load_toolbox(path)
    assert model.metadata.input_shape == (6,)
    x = np.random.default_rng(5).normal(size=(3, 6))
    ours, expected = _relevances(model, _mlp_modules(), x, variant, param)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-10 * np.abs(expected).max())


def test_the_sum_pooling_epsilon_is_on_the_window_sum_not_on_the_scaled_output(conv_file):
    """The Toolbox adds ε to Σ window; an ε on lrpcore's scaled z instead gives measurably different numbers."""
    from lrpcore.composites import Composite
    from lrpcore.rules import Epsilon

    model = load_toolbox(conv_file, input_shape=(9, 9, 2))
    x = np.random.default_rng(6).normal(size=(1, 9, 9, 2))
    ours, expected = _relevances(model, _conv_modules(), x, "epsilon", 1.0)
    wrong = toolbox_composite(model, "epsilon", 1.0)
    wrong.by_index[2] = Epsilon(1.0, stabilizer="zennit")              # ε on 0.5·Σ instead of 0.5·ε
    naive = np.asarray(explain(model, x.transpose(0, 3, 1, 2), composite=Composite(by_index=wrong.by_index))
                       .relevance).transpose(0, 2, 3, 1)
    assert np.abs(naive - expected).max() > 1e-3 * np.abs(expected).max()
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-10 * np.abs(expected).max())


def test_convert_command_writes_an_lrpcore_file_from_a_toolbox_text_model(conv_file, tmp_path, capsys):
    out = tmp_path / "conv.h5"
    assert main(["convert", str(conv_file), str(out), "--input-shape", "9", "9", "2"]) == 0
    assert "from toolbox file" in capsys.readouterr().out
    model = load(out)
    x = np.random.default_rng(7).normal(size=(2, 2, 9, 9))
    np.testing.assert_allclose(model.forward(x), load_toolbox(conv_file, input_shape=(9, 9, 2)).forward(x),
                               rtol=1e-12)
    assert main(["convert", str(conv_file), str(tmp_path / "no.h5")]) == 1
    assert "input_shape=(H, W, D)" in capsys.readouterr().err


@pytest.mark.parametrize("content, suffix, message", [
    (b"\x80\x04\x95 pickled", ".nn", "unpickling runs"),
    (b"Linear 3 2\n1 2 3 4 5 6\n", ".txt", r"line 3: B: expected a line of 2 numbers, found an empty line"),
    (b"Linear 3 2\n1 2 3 4 5\n0 0\n", ".txt", r"line 2: W: expected 6 numbers, found 5"),
    (b"Linear 3 2\n1 2 3 4 5 six\n0 0\n", ".txt", r"line 2: W: not a number"),
    (b"Linear 2 2\n1 2 3 4\n0 0\nDropout\n", ".txt", r"line 4: layer type 'Dropout' is not part"),
    (b"Linear 2 2\n1 2 3 4\n0 0\nSoftMax\nRect\n", ".txt", r"line 4: SoftMax is only supported as the last"),
    (b"Linear 2 2\n1 2 3 4\n0 0\n\nRect\n", ".txt", r"line 5: text after an empty line"),
    (b"Linear 2 2\n1 2 3 4\n0 0\nLinear 3 1\n1 2 3\n0\n", ".txt", r"line 4: Linear 3 1 receives per-sample shape "
                                                                r"\(2,\)"),
    (b"Convolution 2 2 1 1 1 1\n1 2 3 4\n0\n", ".txt", r"line 1: Convolution needs the input image size"),
])
def test_bad_toolbox_files_are_refused_naming_file_and_line(tmp_path, content, suffix, message):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(content)
    with pytest.raises(ModelFormatError, match=message):
        load_toolbox(path)


def test_toolbox_composite_rejects_unknown_variants_and_missing_parameters(conv_file):
    model = load_toolbox(conv_file, input_shape=(9, 9, 2))
    with pytest.raises(ValueError, match="unknown Toolbox LRP variant 'gamma'"):
        toolbox_composite(model, "gamma")
    with pytest.raises(ValueError, match="needs param"):
        toolbox_composite(model, "epsilon")
