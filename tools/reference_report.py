"""Print the zennit reference table: lrpcore vs zennit 0.5.1 (and torch autograd), largest relative difference.

    python tools/reference_report.py                      # every network and method (a few minutes)
    python tools/reference_report.py --models digits_cnn --methods gamma epsilon_gamma_box

The comparison itself lives in ``tests/reference/_reference_harness.py`` (the test suite runs
the same code: ``pytest tests/reference -ra`` prints the table at the end). Differences are
max_i |R_lrpcore − R_zennit| / max_i |R_zennit| per sample, worst sample, in float64; the
tolerance is 1e-6. Needs torch==2.13.0 and zennit==0.5.1 (torchvision is replaced by a stand-in
where it cannot be imported).
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))
sys.path.insert(0, str(REPOSITORY / "tests" / "reference"))

import _torchvision_stand_in  # noqa: E402

GRADIENT = "gradient×input (autograd)"


def main(argv: list[str] | None = None) -> int:
    torchvision = _torchvision_stand_in.install()
    import _reference_harness as harness

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(harness.MODEL_NAMES), choices=harness.MODEL_NAMES)
    parser.add_argument("--methods", nargs="+", default=list(harness.METHODS) + ["gradient"],
                        choices=list(harness.METHODS) + ["gradient"])
    args = parser.parse_args(argv)
    started = time.perf_counter()
    worst = 0.0
    for name in args.models:
        twin = harness.build_twin(name)
        for method in args.methods:
            if method == "gradient":
                difference = harness.gradient_times_input_difference(twin)
                harness.record(twin, GRADIENT, difference)
            else:
                difference = harness.compare(twin, method)
                harness.record(twin, method, difference)
                worst = max(worst, difference)
            print(f"{name:12s} {method:28s} {difference:.2e}", file=sys.stderr, flush=True)
    print(f"lrpcore vs zennit 0.5.1 (torchvision: {torchvision}), float64, {time.perf_counter() - started:.0f} s\n")
    print("\n".join(harness.format_table()))
    print(f"\nlargest difference over the LRP cases: {worst:.2e} (tolerance {harness.TOLERANCE:g})")
    return 0 if worst <= harness.TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
