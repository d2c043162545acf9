"""Sparsity and localisation of pruned LRP as the pruned share p grows (Yanez Sarmiento et al. 2024).

    python tools/pruning_table.py                          # motif and shapes models, Markdown to stdout
    python tools/pruning_table.py --models motif --n 300 --pf
    python tools/pruning_table.py --out table.md           # also write the table (refuses to overwrite)

For each shipped model (``models/motif_cnn.h5``, ``models/shapes_cnn.h5``; a missing one is
reported and skipped) the script draws fresh data with ground-truth masks (seeds other than
the training seeds), keeps the samples the model classifies correctly (motif sequences: only
the two motif classes, the background class has no ground truth), explains the true class with
a composite, and reports per pruning setting the mean over samples of

- Gini index of |R| pooled over channels (sparsity; higher = sparser), ``lrpcore.evaluate.gini``;
- relevance mass accuracy, the share of positive relevance on the ground-truth mask
  (``lrpcore.evaluate.relevance_mass_accuracy``);
- with ``--pf``: the area under the most-relevant-first perturbation curve of the normalised target
  logit (``lrpcore.evaluate.pixel_flipping``; sequences: windows of 5 bases set to the value-range
  midpoint 0.5 in every channel, images: 8×8 patches inpainted (Telea); lower = more faithful);
- the relative conservation error |Σ_i R_i − f(x)| / |f(x)| (bias and ε absorb some relevance
  in every setting; pruning itself conserves it with PLRP-λ),

for p ∈ {0, 0.05, 0.1, 0.2, 0.3} with PLRP-λ and PLRP-M (eq. 3.5; p = 0 is plain LRP for PLRP-λ) and
for the sparsity-gain mode (minimum gain ``--sparsity-gain``, search ``--gain-search``: the paper's
entry-by-entry search per sign, or the older grid). Standard errors of the means are given as ±.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lrpcore.data import motifs, shapes  # noqa: E402
from lrpcore.evaluate import gini, pixel_flipping, relevance_mass_accuracy  # noqa: E402
from lrpcore.pruning import explain_pruned  # noqa: E402

PROPORTIONS = (0.0, 0.05, 0.1, 0.2, 0.3)
MODELS = {"motif": ROOT / "models" / "motif_cnn.h5", "shapes": ROOT / "models" / "shapes_cnn.h5"}
#: Data seeds for the evaluation; the trainers use 0–2 (see tools/train_motifs.py, tools/train_shapes.py).
EVALUATION_SEED = 2024


def _load(name: str):
    from lrpcore.io import load

    return load(MODELS[name])


def evaluation_data(name: str, model, count: int):
    """(model inputs, raw inputs, targets, masks) of correctly classified samples with ground truth."""
    if name == "motif":
        data = motifs(count, seed=EVALUATION_SEED)
        data = data[data.y > 0]
    else:
        size = model.metadata.input_shape[-1]
        data = shapes(count, size=size, seed=EVALUATION_SEED)
    inputs = model.metadata.preprocess(data.x)
    correct = model.forward(inputs).argmax(axis=1) == data.y
    return inputs[correct], data.x[correct], data.y[correct], data.masks[correct]


def _mean(values: np.ndarray) -> str:
    values = np.asarray(values, dtype=np.float64)
    error = values.std(ddof=1) / np.sqrt(values.size) if values.size > 1 else 0.0
    return f"{values.mean():.3f} ± {error:.3f}"


def measure(model, inputs, targets, masks, composite: str, method: str, pruning: dict, pf: bool,
            pf_patch: int, pf_mode: str = "constant") -> dict[str, str]:
    explanation = explain_pruned(model, inputs, target=targets, composite=composite, method=method, **pruning)
    relevance = np.asarray(explanation.relevance, dtype=np.float64)
    spatial = masks.ndim - 1
    pooled = relevance.sum(axis=1) if relevance.ndim == spatial + 2 else relevance
    output = np.asarray(explanation.output, dtype=np.float64)
    row = {"Gini": _mean(gini(pooled)), "RMA": _mean(relevance_mass_accuracy(pooled, masks)),
           "conservation error": _mean(np.abs(pooled.reshape(len(pooled), -1).sum(axis=1) - output)
                                       / np.abs(output))}
    if pf:
        curve = pixel_flipping(model, inputs, relevance, targets, sort="morf", mode=pf_mode,
                               patch_size=pf_patch, final_gray=False)
        row["PF-AUC (MoRF)"] = _mean(curve.auc(normalised=True))
    return row


def table_for(name: str, count: int, composite: str, pf: bool, sparsity_gain: float,
              gain_search: str = "paper") -> str:
    if not MODELS[name].exists():
        return f"### {name}\n\n{MODELS[name].relative_to(ROOT)} not found; skipped.\n"
    model = _load(name)
    inputs, _raw, targets, masks = evaluation_data(name, model, count)
    pf_patch, pf_mode = (5, "constant") if name == "motif" else (8, "inpaint")
    settings = [("LRP", "lambda", {"p": 0.0})]
    for method, label in (("lambda", "PLRP-λ"), ("m", "PLRP-M")):
        settings += [(f"{label} p={p:g}", method, {"p": p}) for p in PROPORTIONS[1:]]
        settings.append((f"{label} sparsity gain ≥ {sparsity_gain:g} ({gain_search})", method,
                         {"sparsity_gain": sparsity_gain, "gain_search": gain_search}))
    rows, start = [], time.perf_counter()
    for label, method, pruning in settings:
        rows.append((label, measure(model, inputs, targets, masks, composite, method, pruning, pf, pf_patch,
                                    pf_mode)))
    columns = list(rows[0][1])
    lines = [f"### {name} ({MODELS[name].name}; {len(targets)} correctly classified samples with ground truth, "
             f"composite {composite}, {time.perf_counter() - start:.0f} s)", "",
             "| setting | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    lines += [f"| {label} | " + " | ".join(values[column] for column in columns) + " |" for label, values in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["motif", "shapes"])
    parser.add_argument("--n", type=int, default=300, help="samples drawn per model (before selection)")
    parser.add_argument("--composite", default="epsilon_plus", help="composite preset name")
    parser.add_argument("--sparsity-gain", type=float, default=1.0, help="minimum gain of the sparsity-gain rows")
    parser.add_argument("--gain-search", choices=("paper", "grid"), default="paper",
                        help="sparsity-gain search: the paper's entry by entry per sign (default), or the old grid")
    parser.add_argument("--pf", action="store_true", help="add the MoRF pixel-flipping AUC column")
    parser.add_argument("--out", help="also write the Markdown table to this file")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    args = parser.parse_args(argv)
    if args.out and Path(args.out).exists() and not args.overwrite:
        print(f"{args.out} exists; pass --overwrite to replace it", file=sys.stderr)
        return 1
    text = "\n".join(table_for(name, args.n, args.composite, args.pf, args.sparsity_gain, args.gain_search)
                     for name in args.models)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
