"""How well does the relevance model R_k(a) ≈ a_k c_k (c_k constant) hold on the shipped models, layer by layer?

    python tools/relevance_model_report.py                       # all shipped image/sequence models
    python tools/relevance_model_report.py --samples 8 --sigma 0.001

For each model and composite, :func:`lrpcore.taylor.relevance_model_error` perturbs the input of every
weighted layer multiplicatively (a' = a ⊙ (1 + σξ)), recomputes the relevance of that layer's neurons and
prints the median and 90th percentile of ‖ΔR − Δa ⊙ c‖ / ‖ΔR‖ (Montavon et al. 2019, section 10.3.1).
Computed in float64. Samples are the first ``--samples`` of each model's data set (fixed seeds).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lrpcore  # noqa: E402
from lrpcore.data import digits, motifs, shapes  # noqa: E402
from lrpcore.taylor import relevance_model_error  # noqa: E402


def inputs(name: str, count: int):
    if name.startswith("digits"):
        return digits().x[:count]
    if name.startswith("shapes"):
        return shapes(count, seed=11).x
    if name == "motif_cnn":
        return motifs(count, seed=31).x
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--sigma", type=float, default=0.01, help="relative perturbation size")
    parser.add_argument("--count", type=int, default=3, help="perturbations per sample")
    parser.add_argument("--composites", default="zero,epsilon_plus", help="comma-separated preset names")
    parser.add_argument("--models", default="digits_mlp,digits_cnn,shapes_cnn,motif_cnn")
    args = parser.parse_args(argv)
    print(f"relevance model error ‖ΔR − Δa⊙c‖/‖ΔR‖, σ = {args.sigma}, {args.samples} samples × {args.count} "
          "perturbations (median / 90th percentile)")
    for name in args.models.split(","):
        model = lrpcore.load(ROOT / "models" / f"{name}.h5")
        x = inputs(name, args.samples)
        for composite in args.composites.split(","):
            print(f"\n{name}, {composite}")
            for row in relevance_model_error(model, x, composite=composite, sigma=args.sigma, count=args.count):
                print(f"  {row.index:>3}  {row.layer:<34} {row.median:9.2e} / {row.p90:9.2e}  ({row.pairs} pairs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
