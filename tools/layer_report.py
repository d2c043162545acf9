"""Print every layer case of tests/test_layers_zoo.py against PyTorch: forward and input gradient, float64.

    python tools/layer_report.py

Each torch module is converted with ``from_torch`` and run on the same random batch (inputs rounded to
halves for max pools, so that ties occur); deviations are max |ours − torch| / max |torch|.
"""
from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from test_layers_zoo import CASES, _convert, _input  # noqa: E402


def _relative(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(ours - reference).max() / max(np.abs(reference).max(), np.finfo(np.float64).tiny))


def main() -> None:
    print(f"| case | lrpcore layer | forward | input gradient |\n|---|---|---|---|")
    worst = 0.0
    for name in CASES:
        module, layer, shape = _convert(name)
        x = _input(shape)
        if "max" in name:
            x = np.round(x * 2) / 2
        tensor = torch.from_numpy(x).requires_grad_(True)
        expected = module(tensor)
        upstream = np.random.default_rng(2).normal(size=tuple(expected.shape))
        (gradient,) = torch.autograd.grad(expected, tensor, grad_outputs=torch.from_numpy(upstream))
        forward = _relative(layer.forward(x), expected.detach().numpy())
        backward = _relative(layer.gradient(x, upstream), gradient.numpy())
        worst = max(worst, forward, backward)
        print(f"| {name} | {layer.describe()} | {forward:.1e} | {backward:.1e} |")
    print(f"\n{len(CASES)} cases: largest relative deviation from torch {worst:.2e}")


if __name__ == "__main__":
    main()
