"""Pruned LRP (Yanez Sarmiento et al. 2024), Fig. 2: sparsity, localisation and robustness against the pruned share p.

    python tools/reproduce/pruned_lrp.py                       # shapes and motifs, p ∈ {0, .05, .1, .2, .3, .4}
    python tools/reproduce/pruned_lrp.py --models motif --images 200 --lipschitz-images 8

For PLRP-λ and PLRP-M (eq. 3.5) at each p, on correctly classified samples with ground truth:

- Gini index of the channel-pooled |R| (sparsity; higher = sparser), ``lrpcore.evaluate.gini``;
- relevance mass accuracy, the share of positive relevance on the ground-truth mask (the shape's pixels,
  the planted motif's bases), ``lrpcore.evaluate.relevance_mass_accuracy``;
- local Lipschitz estimate of the explanation (Alvarez-Melis & Jaakkola 2018; lower = more robust),
  ``lrpcore.evaluate.local_lipschitz`` with a uniform L∞ neighbourhood of radius 0.05 (model-input
  units) and 8 neighbours, on the first ``--lipschitz-images`` samples.

p = 0 is plain LRP for PLRP-λ; PLRP-M by eq. 3.5 replaces the rule of every pruned layer by its LRP-0 form,
so its p = 0 point is LRP-0 (without bias) at those layers. Composite ``epsilon_plus`` throughout.

This machine: the shipped ``models/shapes_cnn.h5`` (64×64 shapes, mask = the shape) and
``models/motif_cnn.h5`` (250-base one-hot DNA, mask = the planted motif) instead of VGG-16/ResNet-50 on
ImageNet/ECSSD and the paper's genomics CNN; fewer samples.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from lrpcore.evaluate import gini, local_lipschitz, relevance_mass_accuracy  # noqa: E402
from lrpcore.pruning import explain_pruned  # noqa: E402

PROPORTIONS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4)
METHODS = (("lambda", "PLRP-λ"), ("m", "PLRP-M"))
COMPOSITE = "epsilon_plus"


def _data(name: str, model: Any, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if name == "motif":
        data, inputs = _common.motif_data(model, count)
    else:
        data, inputs = _common.shapes_data(model, count)
    return inputs, data.y, data.masks


def run(models: Sequence[str] = ("shapes", "motif"), images: int = 120, proportions: Sequence[float] = PROPORTIONS,
        lipschitz_images: int = 6, lipschitz_samples: int = 8, radius: float = 0.05) -> dict[str, Any]:
    results: dict[str, Any] = {"proportions": tuple(proportions), "models": {}}
    for name in models:
        model = _common.load(name)
        inputs, targets, masks = _data(name, model, images)
        curves: dict[str, dict[str, np.ndarray]] = {}
        start = time.perf_counter()
        for method, label in METHODS:
            rows = {"gini": [], "rma": [], "lipschitz": []}
            for p in proportions:
                relevance = np.asarray(explain_pruned(model, inputs, target=targets, composite=COMPOSITE,
                                                      method=method, p=p).relevance, dtype=np.float64)
                pooled = relevance.sum(axis=1)
                rows["gini"].append(gini(pooled))
                rows["rma"].append(relevance_mass_accuracy(pooled, masks))

                def explain_fn(batch: Any, batch_targets: Any, method: str = method, p: float = p) -> Any:
                    return explain_pruned(model, batch, target=batch_targets, composite=COMPOSITE, method=method,
                                          p=p).relevance

                rows["lipschitz"].append(local_lipschitz(explain_fn, inputs[:lipschitz_images], radius,
                                                         n_samples=lipschitz_samples,
                                                         target=targets[:lipschitz_images]))
            curves[label] = {metric: np.stack(values) for metric, values in rows.items()}   # (P, samples)
        results["models"][name] = {"samples": len(targets), "curves": curves,
                                   "seconds": time.perf_counter() - start}
    return results


def means(results: dict[str, Any], model: str, label: str, metric: str) -> np.ndarray:
    """(P,) means over the samples of one curve."""
    return results["models"][model]["curves"][label][metric].mean(axis=1)


def report(results: dict[str, Any]) -> str:
    proportions = results["proportions"]
    lines = [f"## Pruned LRP, Fig. 2 ({COMPOSITE}; mean ± standard error over the samples)", ""]
    for name, entry in results["models"].items():
        lines += [f"### {name} ({entry['samples']} samples, {entry['seconds']:.0f} s)", ""]
        header = ["metric", "method"] + [f"p = {p:g}" for p in proportions]
        rows = []
        for metric, title in (("gini", "Gini (↑ sparser)"), ("rma", "RMA (↑)"), ("lipschitz", "local Lipschitz (↓)")):
            for label in entry["curves"]:
                values = entry["curves"][label][metric]
                errors = values.std(axis=1, ddof=1) / np.sqrt(values.shape[1]) if values.shape[1] > 1 else \
                    np.zeros(len(values))
                rows.append([title, label] + [f"{m:.3f} ± {e:.3f}" for m, e in zip(values.mean(axis=1), errors)])
        lines += [_common.markdown_table(header, rows), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(_common.MODELS), default=["shapes", "motif"])
    parser.add_argument("--images", type=int, default=120, help="samples drawn per model (default 120)")
    parser.add_argument("--lipschitz-images", type=int, default=6, help="samples of the Lipschitz estimate")
    parser.add_argument("--out", help="also write the Markdown here (refuses to replace a file)")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    results = run(args.models, args.images, lipschitz_images=args.lipschitz_images)
    text = report(results)
    print(text)
    if args.out:
        _common.write_new(args.out, text, overwrite=args.overwrite)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
