"""Search for a natural unstable LRP heatmap with the vanilla stabilizer, and check the other stabilizers on it.

Usage: python tools/find_instability.py [--quick]

Three places are searched (all deterministic, seeds fixed):

1. VGG-16 (torchvision-style random init, 32×32 input) and any model in ``models/*.h5``, with the
   ``tutorial``, ``decreasing_gamma`` and LRP-ε composites under the vanilla stabilizer. In a
   network where every linear layer is followed by a ReLU, a hidden output carries relevance only
   where z_k > 0, so z_k + ε > 0: the only denominator that can reach zero is the explained
   *logit* itself, when it is negative and close to −ε. For each input the script explains the
   class whose logit is closest to −ε (a user explaining "why not class c?") and reports the
   amplification z_c / (z_c + ε) of the top step. This scales the whole heatmap (and can flip
   its sign) but does not concentrate it, so detect_instability's statistic does not move; the
   conservation error and the trace's near-zero counters show it.
2. The linear-bottleneck network of :func:`lrpcore.stability.linear_bottleneck_network` (a
   convolution without ReLU, as in MobileNetV2), where hidden outputs of either sign carry
   relevance: here z_k ≈ −ε happens by itself for some inputs and ε, and the heatmap collapses into
   a patch. Every unstable cell is re-run with the zennit and quadratic-mean stabilizers.
3. The same network with the ``tutorial`` composite: LRP-γ (γ = 0.25, ε = 1e-9) lands on the
   bottleneck, and its denominator z_k + γ·z⁺_k can be close to zero for an output with z_k < 0.
   With ε = 1e-9 no stabilizer helps (|z'| ≥ 1e-9 is still tiny); zennit's symmetric γ, which
   favours the negative contributions where z_k < 0, does.
"""
from __future__ import annotations

import argparse
import glob
import pathlib
import sys

import numpy

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from lrpcore import detect_instability, explain  # noqa: E402
from lrpcore.composites import decreasing_gamma, tutorial, uniform  # noqa: E402
from lrpcore.rules import Epsilon  # noqa: E402
from lrpcore.stability import linear_bottleneck_network, locate_instability, with_stabilizer  # noqa: E402


def _top_layer_case(model, x, epsilons, label):
    logits = numpy.asarray(model.forward(model.prepare_input(x)), dtype=numpy.float64)
    for epsilon in epsilons:
        targets = numpy.argmin(numpy.abs(logits + epsilon), axis=1)
        composite = uniform(Epsilon(epsilon, stabilizer="vanilla"))
        result = explain(model, x, target=targets, composite=composite, record=True)
        report = detect_instability(result)
        table = result.conservation()
        for sample in range(x.shape[0]):
            z = logits[sample, targets[sample]]
            print(f"{label} ε={epsilon:g} sample {sample} class {targets[sample]}: logit {z:.4g}, "
                  f"z+ε = {z + epsilon:.3g}, top-step amplification {z / (z + epsilon):.3g}, "
                  f"statistic {report.statistic[sample]:.2f}, near-zero {int(result.near_zero_denominators[:, sample].sum())}")
        print(f"{label} ε={epsilon:g}: batch conservation error {table.total_relative_error:.3g}")


def _bottleneck_search(seeds, epsilons, samples):
    found = []
    for seed in seeds:
        model = linear_bottleneck_network(seed, size=32)
        x = numpy.random.default_rng(100 + seed).uniform(size=(samples, 3, 32, 32))
        for epsilon in epsilons:
            composite = uniform(Epsilon(epsilon, stabilizer="vanilla"))
            result = explain(model, x, composite=composite, record=True)
            report = detect_instability(result)
            for sample in numpy.nonzero(report.statistic > report.threshold)[0]:
                found.append((seed, epsilon, int(sample), float(report.statistic[sample]), result))
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds and ε values")
    args = parser.parse_args(argv)
    epsilons = (0.01, 0.1) if args.quick else (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)

    from lrpcore.models import vgg16

    print("== 1. ReLU networks: VGG-16 (random torchvision-style init, 32x32) and shipped models ==")
    model = vgg16(input_size=32, dtype="float64")
    x = numpy.random.default_rng(0).uniform(size=(2, 3, 32, 32))
    x = numpy.asarray(model.metadata.preprocess(x), dtype=numpy.float64)
    for name, factory in (("tutorial", tutorial), ("decreasing_gamma", decreasing_gamma)):
        result = explain(model, x, composite=with_stabilizer(model, factory(), "vanilla"), record=True)
        report = detect_instability(result)
        print(f"vgg16 {name}+vanilla (predicted class): statistic {numpy.round(report.statistic, 2).tolist()}, "
              f"near-zero {int(result.near_zero_denominators.sum())}, zero {int(result.zero_denominators.sum())}")
    _top_layer_case(model, x, (0.003, 0.01), "vgg16 LRP-ε+vanilla, class with logit closest to −ε:")
    from lrpcore.io import load

    for path in sorted(glob.glob(str(pathlib.Path(__file__).resolve().parent.parent / "models" / "*.h5"))):
        try:
            shipped = load(path)
        except Exception as error:  # a model still being written by its trainer
            print(f"{path}: not loadable ({error})")
            continue
        shape = shipped.metadata.input_shape
        raw = numpy.random.default_rng(1).uniform(size=(4, *shape))
        data = numpy.asarray(shipped.metadata.preprocess(raw), dtype=numpy.float64)
        shipped = shipped.astype("float64")
        for name, factory in (("tutorial", tutorial), ("decreasing_gamma", decreasing_gamma)):
            result = explain(shipped, data, composite=with_stabilizer(shipped, factory(), "vanilla"), record=True)
            report = detect_instability(result)
            print(f"{pathlib.Path(path).name} {name}+vanilla: statistic {numpy.round(report.statistic, 2).tolist()}")
        _top_layer_case(shipped, data, epsilons[:2], f"{pathlib.Path(path).name} LRP-ε+vanilla:")

    print("\n== 2. linear-bottleneck network, LRP-ε + vanilla, inputs U(0,1) ==")
    seeds = range(2) if args.quick else range(4)
    found = _bottleneck_search(seeds, epsilons, samples=4)
    print(f"{len(found)} unstable heatmaps (statistic > 2) found")
    for seed, epsilon, sample, statistic, result in found:
        diagnosis = locate_instability(result, sample)
        model = result.model
        data = numpy.random.default_rng(100 + seed).uniform(size=(4, 3, 32, 32))
        others = []
        for stabilizer in ("zennit", "quadratic_mean"):
            fixed = explain(model, data, composite=uniform(Epsilon(epsilon, stabilizer=stabilizer)))
            others.append(f"{stabilizer} {detect_instability(fixed).statistic[sample]:.2f}")
        print(f"seed {seed} ε={epsilon:g} sample {sample}: statistic {statistic:.2f} at layer {diagnosis.layer} "
              f"({diagnosis.layer_name}); smallest z+ε {diagnosis.denominators[0]:.3g} at neuron "
              f"{diagnosis.neurons[0]}; max|R| × {diagnosis.peak_growth[diagnosis.layer]:.3g} there; "
              f"other stabilizers: {', '.join(others)}")

    print("\n== 3. linear-bottleneck network, tutorial composite (γ = 0.25 on the bottleneck, its ε = 1e-9) ==")
    for seed in seeds:
        model = linear_bottleneck_network(seed, size=32)
        data = numpy.random.default_rng(100 + seed).uniform(size=(4, 3, 32, 32))
        statistics = {}
        for stabilizer in ("vanilla", "zennit", "quadratic_mean"):
            result = explain(model, data, composite=with_stabilizer(model, tutorial(), stabilizer), record=True)
            statistics[stabilizer] = detect_instability(result).statistic
            if stabilizer == "zennit":
                zennit_result = result
        symmetric = _symmetric_gamma(model)
        statistics["symmetric γ"] = detect_instability(explain(model, data, composite=symmetric)).statistic
        for sample in range(data.shape[0]):
            if statistics["vanilla"][sample] > 2 or statistics["zennit"][sample] > 2:
                diagnosis = locate_instability(zennit_result, sample)
                print(f"seed {seed} sample {sample}: " + ", ".join(f"{name} {values[sample]:.2f}"
                                                                  for name, values in statistics.items())
                      + f"; zennit's patch at layer {diagnosis.layer} ({diagnosis.rule}), smallest z "
                        f"{diagnosis.denominators[0]:.3g} at {diagnosis.neurons[0]}")
    return 0


def _symmetric_gamma(model):
    """The tutorial composite with zennit's sign-of-z form of γ (favour negative contributions where z_k < 0)."""
    from lrpcore.composites import Composite
    from lrpcore.rules import Gamma

    rules = {}
    for index, rule in enumerate(tutorial().rules(model)):
        if rule.name == "Pass":
            continue
        rules[index] = Gamma(rule.gamma, symmetric=True, stabilizer=rule.stabilizer_name, epsilon=rule.epsilon,
                             maxpool=rule.maxpool) if isinstance(rule, Gamma) else rule
    return Composite(by_index=rules, name="tutorial[symmetric γ]")


if __name__ == "__main__":
    sys.exit(main())
