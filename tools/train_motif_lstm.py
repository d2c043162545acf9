"""Train the small LSTM shipped as ``models/motif_lstm.h5`` on ``lrpcore.data.motifs``.

    python tools/train_motif_lstm.py                      # writes models/motif_lstm.h5 (refuses to overwrite)
    python tools/train_motif_lstm.py --out /tmp/l.h5 --overwrite

PyTorch (CPU) trains ``torch.nn.LSTM(4, H, batch_first=True)`` followed by ``Linear(H, 3)`` on the
last hidden state. The LSTM's state dict goes through :func:`lrpcore.lstm.from_torch_state_dict`,
the linear layer into :class:`lrpcore.layers.Dense`; lrpcore's logits are checked against PyTorch's
before :func:`lrpcore.io.save` writes the file. Everything is seeded (data seeds 1 and 2 as for the
CNN, ``torch.manual_seed``, a seeded batch order, deterministic algorithms, 2 threads), so the same
command gives the same file on the same machine.

Sequences are fed to torch as (N, L, 4) (``x.transpose(0, 2, 1)``); the lrpcore model takes the
(N, 4, L) one-hot arrays of ``motifs`` directly.
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
from lrpcore.layers import Dense  # noqa: E402
from lrpcore.lstm import from_torch_state_dict  # noqa: E402

TRAIN_SEED, VALIDATION_SEED = 1, 2
LENGTH = 100
#: Initial bias of the forget gates (Gers et al. 2000; Jozefowicz et al. 2015 recommend ≥ 1).
FORGET_BIAS = 2.0



def build_torch(torch, hidden: int):
    class LastState(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(4, hidden, batch_first=True)
            self.linear = torch.nn.Linear(hidden, 3)
            with torch.no_grad():           # forget gates start open (bias 2: f ≈ 0.88) so memories last
                self.lstm.bias_ih_l0[hidden:2 * hidden].fill_(FORGET_BIAS)

        def forward(self, x):                       # x: (N, 4, L), lrpcore's layout
            _, (h_n, _) = self.lstm(x.transpose(1, 2))
            return self.linear(h_n[0])

    return LastState()


def to_lrpcore(network, class_names) -> lrpcore.Sequential:
    lstm = from_torch_state_dict(network.lstm.state_dict())
    dense = Dense(network.linear.weight.detach().numpy().copy(), network.linear.bias.detach().numpy().copy())
    metadata = lrpcore.ModelMetadata(
        input_shape=(4, LENGTH), value_range=(0.0, 1.0), class_names=tuple(class_names), name="motif_lstm",
        description=("LSTM (torch.nn.LSTM forward) on one-hot DNA (channels A,C,G,T; length 100) from "
                     "lrpcore.data.motifs, last hidden state into a dense layer: class 0 background, "
                     "1 motif A (GGGACTTTCC), 2 motif B (TGACTCAGCA). Trained by tools/train_motif_lstm.py; "
                     "see models/motif_lstm.md."))
    return lrpcore.Sequential([lstm, dense], metadata)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "models" / "motif_lstm.h5"))
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    parser.add_argument("--train", type=int, default=6000, help="training sequences")
    parser.add_argument("--validation", type=int, default=2000, help="validation sequences")
    parser.add_argument("--hidden", type=int, default=24, help="LSTM hidden size")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--lr", type=float, default=1e-2)
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
    network = build_torch(torch, args.hidden)
    optimizer = torch.optim.Adam(network.parameters(), lr=args.lr)
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
            torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
            optimizer.step()
            total += loss.item() * len(batch)
        network.eval()
        with torch.no_grad():
            predicted = network(torch.from_numpy(validation.x)).argmax(dim=1).numpy()
        print(f"epoch {epoch + 1}: loss {total / len(labels):.4f}, validation accuracy "
              f"{(predicted == validation.y).mean():.4f} ({time.perf_counter() - start:.0f} s)", flush=True)

    model = to_lrpcore(network.eval(), train.class_names)
    with torch.no_grad():
        reference = network(torch.from_numpy(validation.x)).numpy()
    difference = float(np.abs(model.forward(validation.x) - reference).max())
    if difference > 1e-4:
        raise RuntimeError(f"lrpcore and torch logits differ by {difference:.3g}; the conversion is wrong")
    accuracy = float((model.forward(validation.x).argmax(axis=1) == validation.y).mean())
    print(f"lrpcore logits match torch to {difference:.2g}; validation accuracy {accuracy:.4f}")
    from lrpcore.io import save

    out.parent.mkdir(parents=True, exist_ok=True)
    save(model, out, overwrite=args.overwrite)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
