"""Train the small 1-D CNN shipped as ``models/motif_cnn.h5`` on ``lrpcore.data.motifs``.

    python tools/train_motifs.py                      # writes models/motif_cnn.h5 (refuses to overwrite)
    python tools/train_motifs.py --out /tmp/m.h5 --overwrite

PyTorch (CPU) trains the network; its weights are then copied by hand into lrpcore layers
(torch ``Conv1d`` weight (out, in, k) and ``Linear`` weight (out, in) have lrpcore's layout),
the lrpcore model's logits are checked against PyTorch's, and the model is saved with
:func:`lrpcore.io.save`. Everything is seeded: the data (``motifs(seed=...)``), the initial
weights and the batch order (``torch.manual_seed``), and PyTorch runs deterministic
single-process kernels, so the same command gives the same file on the same machine.

Architecture (input one-hot (4, 250), channels A, C, G, T):
Conv1d(4→32, k=11, p=5) · ReLU · MaxPool1d(5) · Conv1d(32→32, k=5, p=2) · ReLU · MaxPool1d(50) ·
Flatten · Dense(32→32) · ReLU · Dense(32→3).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lrpcore  # noqa: E402
from lrpcore.data import motifs  # noqa: E402
from lrpcore.layers import Dense, Flatten, ReLU  # noqa: E402
from lrpcore.layers1d import Conv1d, MaxPool1d  # noqa: E402

#: Seeds of the training and validation sets; the tests draw fresh data with other seeds.
TRAIN_SEED, VALIDATION_SEED = 1, 2
LENGTH = 250


def build_torch(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv1d(4, 32, 11, padding=5), nn.ReLU(), nn.MaxPool1d(5),
        nn.Conv1d(32, 32, 5, padding=2), nn.ReLU(), nn.MaxPool1d(50),
        nn.Flatten(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))


def to_lrpcore(network, class_names) -> lrpcore.Sequential:
    """Copy the torch modules' weights into the equivalent lrpcore layers, one by one."""
    import torch

    layers = []
    for module in network:
        if isinstance(module, torch.nn.Conv1d):
            layers.append(Conv1d(module.weight.detach().numpy().copy(), module.bias.detach().numpy().copy(),
                                 stride=module.stride[0], padding=module.padding[0]))
        elif isinstance(module, torch.nn.Linear):
            layers.append(Dense(module.weight.detach().numpy().copy(), module.bias.detach().numpy().copy()))
        elif isinstance(module, torch.nn.ReLU):
            layers.append(ReLU())
        elif isinstance(module, torch.nn.MaxPool1d):
            layers.append(MaxPool1d(module.kernel_size, module.stride, module.padding))
        elif isinstance(module, torch.nn.Flatten):
            layers.append(Flatten())
        else:
            raise TypeError(f"no lrpcore layer for {module!r}")
    metadata = lrpcore.ModelMetadata(
        input_shape=(4, LENGTH), value_range=(0.0, 1.0), class_names=tuple(class_names), name="motif_cnn",
        description=("1-D CNN on one-hot DNA (channels A,C,G,T; length 250) from lrpcore.data.motifs: "
                     "class 0 background, 1 motif A (GGGACTTTCC), 2 motif B (TGACTCAGCA). "
                     "Trained by tools/train_motifs.py; see models/motif_cnn.md."))
    return lrpcore.Sequential(layers, metadata)


def accuracy(model: lrpcore.Sequential, x: np.ndarray, y: np.ndarray) -> float:
    return float((model.forward(x).argmax(axis=1) == y).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "models" / "motif_cnn.h5"))
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    parser.add_argument("--train", type=int, default=6000, help="training sequences")
    parser.add_argument("--validation", type=int, default=2000, help="validation sequences")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0, help="torch seed (initial weights, batch order)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        print(f"{out} exists; pass --overwrite to replace it", file=sys.stderr)
        return 1

    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    train = motifs(args.train, length=LENGTH, seed=TRAIN_SEED)
    validation = motifs(args.validation, length=LENGTH, seed=VALIDATION_SEED)
    network = build_torch(torch)
    optimizer = torch.optim.Adam(network.parameters(), lr=2e-3)
    inputs, labels = torch.from_numpy(train.x), torch.from_numpy(train.y)
    generator = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        network.train()
        order = torch.randperm(len(labels), generator=generator)
        total = 0.0
        for batch in order.split(64):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(network(inputs[batch]), labels[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        network.eval()
        with torch.no_grad():
            predicted = network(torch.from_numpy(validation.x)).argmax(dim=1).numpy()
        print(f"epoch {epoch + 1}: loss {total / len(labels):.4f}, validation accuracy "
              f"{(predicted == validation.y).mean():.4f} ({time.perf_counter() - start:.0f} s)")

    model = to_lrpcore(network.eval(), train.class_names)
    with torch.no_grad():
        reference = network(torch.from_numpy(validation.x)).numpy()
    difference = np.abs(model.forward(validation.x) - reference).max()
    if difference > 1e-4:
        raise RuntimeError(f"lrpcore and torch logits differ by {difference:.3g}; the conversion is wrong")
    print(f"lrpcore logits match torch to {difference:.2g}; validation accuracy {accuracy(model, validation.x, validation.y):.4f}")
    from lrpcore.io import save

    out.parent.mkdir(parents=True, exist_ok=True)
    save(model, out, overwrite=args.overwrite)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
