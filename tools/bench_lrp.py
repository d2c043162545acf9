"""Benchmark: LRP on VGG-16 (224×224, float32), lrpcore (NumPy) against zennit (PyTorch CPU), same run.

    python tools/bench_lrp.py                 # batch 1 and 8, both composites, 5 timed runs each
    python tools/bench_lrp.py --quick         # batch 1 only, 1 timed run (a smoke test of the set-up)
    python tools/bench_lrp.py --repeats 3 --batches 1
    python tools/bench_lrp.py --profile       # where lrpcore's time goes, by layer type and by function
    python tools/bench_lrp.py --arch resnet50 # ResNet-50 against zennit's ResNet canonizer (tools/_bench_resnet.py)

Every configuration (library × composite × batch) runs in its own subprocess with the same
number of BLAS/torch threads (``--threads``, default 2): the process builds VGG-16 with
torchvision-style init (``lrpcore.models.vgg16(seed=0)``; zennit gets the same weights through
``lrpcore.io.torch.to_torch``, sharing memory), warms up with one batch-1 explanation, then
times ``--repeats`` explanations of the batch (median wall time) and ``--repeats`` plain forward
passes, and reports its peak resident memory (``ru_maxrss``) when done. The subprocess
isolates the memory numbers; the same weights, inputs, targets (the predicted class) and
thread count make the times comparable.

Composites: ``epsilon_gamma_box`` with low = −3, high = 3 against zennit's ``EpsilonGammaBox``
(same rules and layer map: z^B on the first convolution, symmetric γ = 0.25 on the others, ε on
dense layers, max pooling by the gradient); ``tutorial`` (lrpcore's LRP-tutorial composite, see
``lrpcore.composites.tutorial``) against a zennit layer map of its rules built by module index:
``ZBox`` on layer 0, ``Gamma(0.25)`` on convolutions 2–16, ``Epsilon`` with ε = 0.25·RMS(z)
(zennit's norm-scaled stabilizer) on 17–28, ``Epsilon(1e-9)`` on the dense layers. zennit has no
sum-pooling rule for max pooling, so its max pools follow the gradient (lrpcore: ``maxpool="sum"``)
and its stabilizers add ε·sign(z) where the tutorial adds ε (same cost).

Targets (see tools/BENCHMARKS.md): time ratio lrpcore/zennit ≤ 0.5 at batch 1 and ≤ 0.25 at
batch 8; peak memory ≤ 0.5 × zennit's. They are reported, never asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time
from typing import Any

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
COMPOSITES = ("epsilon_gamma_box", "tutorial")
LIBRARIES = ("lrpcore", "zennit")
INPUT_SIZE = 224
SEED = 0


# --- inside a worker process ----------------------------------------------------------------------
def _inputs(batch: int) -> Any:
    import numpy

    from lrpcore.models import IMAGENET_MEAN, IMAGENET_STD

    raw = numpy.random.default_rng(SEED).random((batch, 3, INPUT_SIZE, INPUT_SIZE), dtype=numpy.float32)
    mean = numpy.asarray(IMAGENET_MEAN, dtype=numpy.float32).reshape(1, 3, 1, 1)
    std = numpy.asarray(IMAGENET_STD, dtype=numpy.float32).reshape(1, 3, 1, 1)
    return (raw - mean) / std


def _lrpcore_runner(composite: str) -> tuple[Any, Any]:
    """(explain(x), forward(x)) callables for lrpcore."""
    import lrpcore
    from lrpcore.composites import get_composite
    from lrpcore.models import vgg16

    model = vgg16(input_size=INPUT_SIZE, seed=SEED)
    settings = {"low": -3.0, "high": 3.0} if composite == "epsilon_gamma_box" else {}
    rules = get_composite(composite, **settings)

    def explain(x: Any) -> Any:
        return lrpcore.explain(model, x, composite=rules).relevance

    return explain, model.forward


def _zennit_tutorial(torch: Any, network: Any, low: Any, high: Any) -> Any:
    """zennit's rules on the layers lrpcore's ``tutorial`` gives them (module names are layer indices)."""
    from zennit import composites as zc
    from zennit import rules as zr
    from zennit.core import Stabilizer

    name_map = [(("0",), zr.ZBox(low=low, high=high, stabilizer=1e-9))]
    convolutions = [name for name, module in network.named_children() if isinstance(module, torch.nn.Conv2d)]
    dense = [name for name, module in network.named_children() if isinstance(module, torch.nn.Linear)]
    name_map.append((tuple(n for n in convolutions if 1 <= int(n) <= 16), zr.Gamma(gamma=0.25, stabilizer=1e-9)))
    name_map.append((tuple(n for n in convolutions if 17 <= int(n) <= 30),
                     zr.Epsilon(epsilon=Stabilizer(epsilon=0.25, norm_scale=True))))
    name_map.append((tuple(dense), zr.Epsilon(epsilon=1e-9)))
    name_map.append((tuple(name for name, module in network.named_children()
                           if isinstance(module, torch.nn.ReLU)), zr.Pass()))
    return zc.NameMapComposite(name_map=name_map)


def _zennit_runner(composite: str, threads: int) -> tuple[Any, Any]:
    sys.path.insert(0, str(REPOSITORY / "tests" / "reference"))
    import _torchvision_stand_in

    _torchvision_stand_in.install()
    import torch
    from zennit import composites as zc

    torch.set_num_threads(threads)
    from lrpcore.io.torch import to_torch
    from lrpcore.models import vgg16

    network = to_torch(vgg16(input_size=INPUT_SIZE, seed=SEED), copy=False)   # shares the NumPy weights
    if composite == "epsilon_gamma_box":
        rules = zc.EpsilonGammaBox(low=-3.0, high=3.0)
    else:
        import numpy

        from lrpcore.models import IMAGENET_MEAN, IMAGENET_STD

        mean = numpy.asarray(IMAGENET_MEAN, dtype=numpy.float32).reshape(1, 3, 1, 1)
        std = numpy.asarray(IMAGENET_STD, dtype=numpy.float32).reshape(1, 3, 1, 1)
        low, high = torch.from_numpy((0 - mean) / std), torch.from_numpy((1 - mean) / std)
        rules = _zennit_tutorial(torch, network, low, high)

    def explain(x: Any) -> Any:
        inputs = torch.from_numpy(x).requires_grad_(True)
        with rules.context(network) as modified:
            output = modified(inputs)
            onehot = torch.zeros_like(output)
            onehot[torch.arange(output.shape[0]), output.argmax(dim=1)] = 1.0
            (relevance,) = torch.autograd.grad(output, inputs, grad_outputs=(onehot * output).detach())
        return relevance

    def forward(x: Any) -> Any:
        with torch.no_grad():
            return network(torch.from_numpy(x))

    return explain, forward


def _median_time(function: Any, argument: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(argument)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_worker(library: str, composite: str, batch: int, repeats: int, threads: int) -> dict[str, Any]:
    import resource

    build_start = time.perf_counter()
    explain, forward = (_lrpcore_runner(composite) if library == "lrpcore" else _zennit_runner(composite, threads))
    build = time.perf_counter() - build_start
    x = _inputs(batch)
    explain(x[:1])                                  # warm-up (allocations, lazy imports, thread pools)
    result = {"library": library, "composite": composite, "batch": batch, "repeats": repeats, "build_s": build,
              "explain_s": _median_time(explain, x, repeats), "forward_s": _median_time(forward, x, repeats)}
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux
    return result


# --- the driver -------------------------------------------------------------------------------------
def _thread_environment(threads: int) -> dict[str, str]:
    environment = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        environment[name] = str(threads)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY), environment.get("PYTHONPATH")]))
    return environment


def _busy_seconds() -> float | None:
    """CPU seconds the whole machine has been busy (Linux /proc/stat), or None elsewhere."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(value) for value in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _children_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _spawn(library: str, composite: str, batch: int, repeats: int, threads: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", library, "--composites", composite, "--batches", str(batch),
               "--repeats", str(repeats), "--threads", str(threads)]
    busy, own, start = _busy_seconds(), _children_seconds(), time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, env=_thread_environment(threads))
    if completed.returncode != 0:
        raise RuntimeError(f"{library} {composite} batch {batch} failed:\n{completed.stderr[-3000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    # share of the machine's CPU time taken by other processes during the run: the times are only
    # comparable when it is small
    if busy is not None:
        others = (_busy_seconds() - busy) - (_children_seconds() - own)
        result["others_cpu"] = max(0.0, others) / ((time.perf_counter() - start) * (os.cpu_count() or 1))
    return result


def _table(results: list[dict[str, Any]]) -> list[str]:
    by_key = {(r["library"], r["composite"], r["batch"]): r for r in results}
    lines = ["| composite | batch | lrpcore s | zennit s | time ratio | lrpcore MiB | zennit MiB | memory ratio "
             "| lrpcore explain/forward | lrpcore forward s | torch forward s | others' CPU |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    ratios = []
    for composite in dict.fromkeys(r["composite"] for r in results):
        for batch in sorted({r["batch"] for r in results}):
            ours, theirs = by_key.get(("lrpcore", composite, batch)), by_key.get(("zennit", composite, batch))
            if ours is None or theirs is None:
                continue
            time_ratio = ours["explain_s"] / theirs["explain_s"]
            memory_ratio = ours["peak_mib"] / theirs["peak_mib"]
            ratios.append((composite, batch, time_ratio, memory_ratio))
            lines.append(f"| {composite} | {batch} | {ours['explain_s']:.2f} | {theirs['explain_s']:.2f} | "
                         f"{time_ratio:.2f} | {ours['peak_mib']:.0f} | {theirs['peak_mib']:.0f} | {memory_ratio:.2f} | "
                         f"{ours['explain_s'] / ours['forward_s']:.1f} | {ours['forward_s']:.3f} | "
                         f"{theirs['forward_s']:.3f} | "
                         f"{max(ours.get('others_cpu', 0), theirs.get('others_cpu', 0)):.0%} |")
    lines.append("")
    for composite, batch, time_ratio, memory_ratio in ratios:
        target = 0.5 if batch == 1 else 0.25
        lines.append(f"ratio lrpcore/zennit  {composite:18s} batch {batch}: time {time_ratio:.2f} "
                     f"(target ≤ {target}), peak memory {memory_ratio:.2f} (target ≤ 0.5)")
    return lines


def profile(batch: int, composite: str) -> None:
    """Per-layer-type split of one lrpcore explanation (wall and CPU time) and the top functions."""
    import cProfile
    import collections
    import pstats

    import lrpcore
    from lrpcore.composites import get_composite
    from lrpcore.models import vgg16

    model = vgg16(input_size=INPUT_SIZE, seed=SEED)
    rules = get_composite(composite, **({"low": -3.0, "high": 3.0} if composite == "epsilon_gamma_box" else {}))
    x = _inputs(batch)
    lrpcore.explain(model, x[:1], composite=rules)        # warm-up
    stamps: list[tuple[str, float, float]] = []

    def stamp(index: int, layer: Any, rule: Any, a: Any, upper: Any, lower: Any) -> Any:
        stamps.append((f"{type(layer).__name__} / {rule.describe()}", time.perf_counter(), time.process_time()))
        return lower

    forward_start = time.perf_counter(), time.process_time()
    model.forward(x)
    forward_end = time.perf_counter(), time.process_time()
    start = time.perf_counter(), time.process_time()
    profiler = cProfile.Profile()
    profiler.enable()
    lrpcore.explain(model, x, composite=rules, modify=stamp)
    profiler.disable()
    end = time.perf_counter(), time.process_time()
    split: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
    previous = None
    for name, wall, cpu in stamps:
        if previous is not None:
            split[name][0] += wall - previous[0]
            split[name][1] += cpu - previous[1]
        else:   # the first step also holds explain's forward pass and the rule set-up
            split["forward pass (inside explain)"][0] += forward_end[0] - forward_start[0]
            split["forward pass (inside explain)"][1] += forward_end[1] - forward_start[1]
            split[name][0] += max(0.0, wall - start[0] - (forward_end[0] - forward_start[0]))
            split[name][1] += max(0.0, cpu - start[1] - (forward_end[1] - forward_start[1]))
        previous = (wall, cpu)
    total_wall, total_cpu = end[0] - start[0], end[1] - start[1]
    print(f"lrpcore {composite}, batch {batch}: explain {total_wall:.3f} s wall, {total_cpu:.3f} s CPU")
    print("| layer / rule | wall s | share | CPU s |\n|---|---|---|---|")
    for name, (wall, cpu) in sorted(split.items(), key=lambda item: -item[1][0]):
        print(f"| {name} | {wall:.3f} | {wall / total_wall:.0%} | {cpu:.3f} |")
    print()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per configuration (median; default 5)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="batch sizes (default 1 8)")
    parser.add_argument("--arch", choices=("vgg16", "resnet50"), default="vgg16",
                        help="network (default vgg16); resnet50: composites epsilon_plus and epsilon_gamma_box, "
                             "see tools/_bench_resnet.py")
    parser.add_argument("--composites", nargs="+", default=None, choices=COMPOSITES + ("epsilon_plus",),
                        help=f"default: {' '.join(COMPOSITES)} (VGG-16), epsilon_plus epsilon_gamma_box (ResNet-50)")
    parser.add_argument("--libraries", nargs="+", default=list(LIBRARIES), choices=LIBRARIES)
    parser.add_argument("--threads", type=int, default=2, help="BLAS / torch threads for both (default 2)")
    parser.add_argument("--quick", action="store_true", help="batch 1, one timed run: check the set-up")
    parser.add_argument("--profile", action="store_true", help="profile lrpcore only (first batch/composite)")
    parser.add_argument("--json", help="also write the raw results to this JSON file")
    parser.add_argument("--worker", choices=LIBRARIES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.arch == "resnet50":
        import _bench_resnet

        args.composites = args.composites or list(_bench_resnet.COMPOSITES)
        return _bench_resnet.main(args)
    args.composites = args.composites or list(COMPOSITES)
    if not set(args.composites) <= set(COMPOSITES):
        parser.error(f"VGG-16 composites are {', '.join(COMPOSITES)}")
    if args.quick:
        args.repeats, args.batches = 1, [1]
    if args.worker:
        result = run_worker(args.worker, args.composites[0], args.batches[0], args.repeats, args.threads)
        print(json.dumps(result))
        return 0
    if args.profile:
        os.environ.update({key: value for key, value in _thread_environment(args.threads).items()
                           if key.endswith("_THREADS")})
        profile(args.batches[0], args.composites[0])
        return 0
    results = []
    started = time.perf_counter()
    for composite in args.composites:
        for batch in args.batches:
            for library in args.libraries:
                result = _spawn(library, composite, batch, args.repeats, args.threads)
                results.append(result)
                print(f"{library:8s} {composite:18s} batch {batch}: explain {result['explain_s']:.3f} s, "
                      f"forward {result['forward_s']:.3f} s, peak {result['peak_mib']:.0f} MiB, "
                      f"other processes {result.get('others_cpu', float('nan')):.0%} of the CPU", flush=True)
    print(f"\nVGG-16 {INPUT_SIZE}×{INPUT_SIZE} float32, {args.threads} threads, median of {args.repeats} "
          f"after a warm-up; total {time.perf_counter() - started:.0f} s; \"others' CPU\": the larger share of "
          f"the machine's CPU time other processes took during the two runs (times are comparable only when "
          f"it is small)\n")
    print("\n".join(_table(results)))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
