"""Print every rule × layer kind checked against the loop reference, with the largest deviation.

    python tools/rule_report.py

Uses the same rules, layers and seeds as tests/test_rules_reference.py; each entry compares the fast
path and the explicit matrix with lrpcore.testing.naive_relevance on 3 seeds × 2 input kinds
(mixed-sign and non-negative), in float64. Deviations are relative to the reference's largest value.
"""
from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))

from lrpcore.testing import LAYER_KINDS, assert_rule_matches_reference  # noqa: E402
from test_rules_reference import RULES, _rule  # noqa: E402


def main() -> None:
    worst_overall = 0.0
    count = 0
    widths = [max(9, len(name) + 1) for name in RULES]
    print(f"{'layer kind':24s}" + "".join(f"{name:>{width}s}" for name, width in zip(RULES, widths)))
    for kind in LAYER_KINDS:
        row = []
        for name, width in zip(RULES, widths):
            worst = assert_rule_matches_reference(_rule(name, kind), kind, seeds=(0, 1, 2), rtol=1e-10)
            worst_overall = max(worst_overall, worst)
            count += 1
            row.append(f"{worst:{width}.1e}")
        print(f"{kind:24s}" + "".join(row))
    print(f"\n{count} rule × layer combinations, each on 3 seeds × 2 input kinds, fast path and explicit "
          f"matrix: largest relative deviation from the loops {worst_overall:.2e}")


if __name__ == "__main__":
    main()
