"""Deep Taylor checks on the weighted layers of the small shipped models, per rule (float64).

    python tools/dtd_report.py            # digits_mlp and digits_cnn, 4 samples each

For every weighted layer and rule, :func:`lrpcore.dtd.check_roots` is run with the relevance LRP-0 brings
down to that layer's output; the table gives the largest value over the layers of: the Taylor-reconstruction
error (Σ_k terms vs ``rule.relevance``, relative to max |R_j|), the hinge error beyond the absorbed bias and
ε shares (relative to max |z_k|), the distance from the plain hinge, and the domain violation.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lrpcore  # noqa: E402
from lrpcore.dtd import check_roots  # noqa: E402
from lrpcore.layers import Conv2d, Dense  # noqa: E402
from lrpcore.rules import Epsilon, Gamma, WSquare, ZBox, Zero, ZPlus  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4)
    args = parser.parse_args(argv)
    x = lrpcore.data.digits().x[:args.samples].astype("float64")
    rules = {"LRP-0": Zero(), "LRP-ε (0.25)": Epsilon(0.25), "LRP-γ (0.25)": Gamma(0.25), "z⁺": ZPlus(),
             "z^B [0, 1] (input layer)": ZBox(0.0, 1.0), "w²": WSquare(), "w² (bias in z)": WSquare(use_bias=True)}
    worst = {name: [0.0, 0.0, 0.0, None, 0, 0] for name in rules}
    for model_name in ("digits_mlp", "digits_cnn"):
        model = lrpcore.load(ROOT / "models" / f"{model_name}.h5").astype("float64")
        explanation = lrpcore.explain(model, x, composite="zero")
        activations = model.forward(x, record=True)
        first = next(i for i, layer in enumerate(model.layers) if isinstance(layer, (Dense, Conv2d)))
        for index, layer in enumerate(model.layers):
            if not isinstance(layer, (Dense, Conv2d)):
                continue
            for name, rule in rules.items():
                if name.startswith("z^B") and index != first:
                    continue
                check = check_roots(layer, activations[index], explanation.layer_relevances[index + 1], rule)
                row = worst[name]
                row[0] = max(row[0], check.reconstruction_error)
                row[1] = max(row[1], check.hinge_error)
                row[2] = max(row[2], check.hinge_residual)
                if check.domain_violation is not None:      # rules with a domain: z⁺, γ (a ≥ 0), z^B
                    row[3] = max(row[3] or 0.0, check.domain_violation)
                row[4] += check.active
                row[5] += check.outside_box
    print(f"{'rule':<26}{'reconstruction':>15}{'hinge − absorbed':>18}{'off plain hinge':>17}{'domain':>9}"
          f"{'roots':>8}{'no root in box':>16}")
    for name, (reconstruction, hinge, residual, domain, active, outside) in worst.items():
        shown = "—" if domain is None else f"{domain:.1e}"
        print(f"{name:<26}{reconstruction:>15.1e}{hinge:>18.1e}{residual:>17.1e}{shown:>9}{active:>8}{outside:>16}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
