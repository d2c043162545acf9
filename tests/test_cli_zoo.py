"""The networks of issue 12 converted from torch, saved, and run through ``lrpcore inspect`` and ``lrpcore explain``.

Their relevances against zennit are in ``tests/reference/test_zennit_layers.py``; here the files the
converter writes must work with the command line as every shipped model does.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

import lrpcore  # noqa: E402
from lrpcore.cli import main  # noqa: E402
from lrpcore.io.torch import from_torch  # noqa: E402

import _zoo_networks as networks  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:the model has BatchNorm layers")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMAGE_NETWORKS = ("alexnet", "mobilenet_block", "grouped", "pooling", "tanh_mlp", "sigmoid_mlp")
#: A layer description each network's inspect output must show.
SHOWN = {"alexnet": "LocalResponseNorm(size=5, α=0.0001, β=0.75, k=2)", "mobilenet_block": "g=48",
         "grouped": "Conv2d(12→8, k=3x3, s=1, p=1, g=2)", "pooling": "AdaptiveAvgPool2d(3x3)",
         "tanh_mlp": "Tanh()", "sigmoid_mlp": "Sigmoid()", "sequence": "MaxPool1d(k=2, s=2, ceil)"}


def _saved(name: str, folder) -> tuple[str, tuple[int, ...]]:
    network, shape = networks.build(name)
    model = from_torch(network, input_shape=shape)
    path = folder / f"{name}.h5"
    lrpcore.save(model, path)
    return str(path), shape


@pytest.mark.parametrize("name", networks.NAMES)
def test_inspect_shows_the_converted_network(name, tmp_path, capsys):
    path, shape = _saved(name, tmp_path)
    assert main(["inspect", path]) == 0
    output = capsys.readouterr().out
    assert SHOWN[name] in output and f"input shape:  {shape}" in output


@pytest.mark.parametrize("name", IMAGE_NETWORKS)
def test_explain_writes_a_heatmap_and_the_conservation_table(name, tmp_path, capsys):
    path, shape = _saved(name, tmp_path)
    sample = tmp_path / "input.npy"
    np.save(sample, networks.inputs(shape, batch=1)[0].astype(np.float32))
    out = tmp_path / "heatmap.png"
    assert main(["explain", path, str(sample), "--out", str(out), "--composite", "epsilon_plus"]) == 0
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    output = capsys.readouterr().out
    assert "ΣR out" in output and "relative error" in output
    layers = lrpcore.load(path).layers
    assert all(layer.describe() in output for layer in layers)


def test_explain_draws_a_sequence_model_as_channels_by_positions(tmp_path, capsys):
    """A 1-D model's relevance (C, L) is drawn as an image of C rows and L positions."""
    path, shape = _saved("sequence", tmp_path)
    sample = tmp_path / "input.npy"
    np.save(sample, networks.inputs(shape, batch=2).astype(np.float32))
    out = tmp_path / "sequence.png"
    assert main(["explain", path, str(sample), "--out", str(out), "--grid"]) == 0
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    assert "MaxPool1d(k=2, s=2, ceil)" in capsys.readouterr().out
    assert main(["explain", path, str(sample), "--out", str(tmp_path / "one.png")]) == 0
    assert (tmp_path / "one_000.png").read_bytes()[:8] == PNG_SIGNATURE


def test_explain_refuses_a_flat_input_model_naming_why(tmp_path, capsys):
    import torch

    network = torch.nn.Sequential(torch.nn.Linear(6, 3)).double().eval()
    path = tmp_path / "flat.h5"
    lrpcore.save(from_torch(network, input_shape=(6,)), path)
    sample = tmp_path / "input.npy"
    np.save(sample, np.zeros(6, dtype=np.float32))
    assert main(["explain", str(path), str(sample), "--out", str(tmp_path / "h.png")]) == 1
    assert "image inputs (C, H, W) and sequences (C, L)" in capsys.readouterr().err
