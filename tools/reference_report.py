"""Print the zennit reference table: lrpcore vs zennit 0.5.1 (and torch autograd), largest relative difference.

    python tools/reference_report.py                      # every network and method (a few minutes)
    python tools/reference_report.py --models digits_cnn --methods gamma epsilon_gamma_box
    python tools/reference_report.py --resnets                        # ResNet rows only (about 20 min loaded)
    python tools/reference_report.py --resnets --archs resnet18 --seeds 0 --sizes 64 96

The comparison itself lives in ``tests/reference/_reference_harness.py`` and, for the ResNets
(ResNet-18/50 with zennit's ``ResNetCanonizer``), ``tests/reference/_resnet_harness.py`` (the test
suite runs the same code: ``pytest tests/reference -ra`` prints the table at the end). With
``--resnets`` the tool runs every ResNet method for each architecture, seed and input size (the
CI copy is ResNet-18 at 64×64 with three seeds and ResNet-50 with one), and the residual of
zennit's BatchNorm merge (eps kept) as an extra, expected-above-tolerance row. Differences are
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
    parser.add_argument("--resnets", action="store_true", help="the ResNet rows instead of the chain networks")
    parser.add_argument("--archs", nargs="+", default=["resnet18", "resnet50"], choices=["resnet18", "resnet50"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--sizes", nargs="+", type=int, default=[64])
    args = parser.parse_args(argv)
    started = time.perf_counter()
    worst = 0.0
    if args.resnets:
        worst = _resnet_rows(args, harness)
    for name in [] if args.resnets else args.models:
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


def _resnet_rows(args: argparse.Namespace, harness) -> float:
    """Every ResNet method per architecture, seed and size; plus zennit's eps-keeping merge once per arch."""
    import _resnet_harness as resnets

    worst = 0.0
    for arch in args.archs:
        for size in args.sizes:
            for seed in args.seeds:
                twin = resnets.build_resnet_twin(arch, seed, size)
                for method in resnets.METHODS:
                    difference = resnets.compare(twin, method)
                    harness.record(twin, method, difference)
                    worst = max(worst, difference)
                    print(f"{twin.name:28s} {method:24s} {difference:.2e}", file=sys.stderr, flush=True)
        twin = resnets.build_resnet_twin(arch, args.seeds[0], args.sizes[0], merge="zennit")
        difference = resnets.compare(twin, "epsilon_plus")
        harness.record(twin, "epsilon_plus", difference)
        print(f"{twin.name:28s} {'epsilon_plus (eps kept)':24s} {difference:.2e}", file=sys.stderr, flush=True)
    return worst


if __name__ == "__main__":
    sys.exit(main())
