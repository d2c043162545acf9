"""Benchmark: LRP on VGG-16 (224×224, float32), lrpcore (NumPy) against zennit (PyTorch CPU), same run.

    python tools/bench_lrp.py                 # batch 1 and 8, both composites, 5 timed runs each
    python tools/bench_lrp.py --quick         # batch 1 only, 1 timed run (a smoke test of the set-up)
    python tools/bench_lrp.py --repeats 3 --batches 1
    python tools/bench_lrp.py --profile       # where lrpcore's time goes, by layer type and by function
    python tools/bench_lrp.py --libraries lrpcore lrpcore-im2col zennit --composites epsilon_gamma_box
                                              # also lrpcore with the im2col reference convolutions
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

``lrpcore-im2col`` is lrpcore with every convolution computed by the im2col reference path
(``lrpcore._conv.use_algorithm("im2col")``) instead of the fast one (Winograd F(2×2, 3×3)).

The same run measures the machine's NumPy float32 GEMM rate (a 2048³ product with the same
threads, median of 5) and from it the arithmetic floor of an explanation: three passes of
VGG-16's multiply–adds (forward, ρ-forward, transposed map; 2 × 15.47 G = 30.9 GFLOP per pass),
3 × 30.9 GFLOP ÷ rate per image. The load average is recorded before and after every run.

Targets (issue 17, see tools/BENCHMARKS.md): time ratio lrpcore/zennit ≤ 0.4 at batch 1 and ≤ 0.25
at batch 8; lrpcore's forward ≤ 1.2 × torch's; an explanation ≤ 2 × the floor; peak memory ≤ 0.5 ×
zennit's at batch 8. They are reported, never asserted.
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
if str(REPOSITORY) not in sys.path:          # the table and --profile import lrpcore: run from a checkout too
    sys.path.insert(0, str(REPOSITORY))
COMPOSITES = ("epsilon_gamma_box", "tutorial")
LIBRARIES = ("lrpcore", "zennit", "lrpcore-im2col")
DEFAULT_LIBRARIES = ("lrpcore", "zennit")
GEMM_SIZE = 2048
PASSES = 3                  # forward, ρ-forward and transposed map: the least an LRP-γ explanation computes
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


def _lrpcore_runner(composite: str, algorithm: str = "auto") -> tuple[Any, Any]:
    """(explain(x), forward(x)) callables for lrpcore, its convolutions computed by ``algorithm``."""
    import lrpcore
    from lrpcore import _conv
    from lrpcore.composites import get_composite
    from lrpcore.models import vgg16

    model = vgg16(input_size=INPUT_SIZE, seed=SEED)
    settings = {"low": -3.0, "high": 3.0} if composite == "epsilon_gamma_box" else {}
    rules = get_composite(composite, **settings)

    def explain(x: Any) -> Any:
        with _conv.use_algorithm(algorithm):
            return lrpcore.explain(model, x, composite=rules).relevance

    def forward(x: Any) -> Any:
        with _conv.use_algorithm(algorithm):
            return model.forward(x)

    return explain, forward


def vgg16_flop() -> float:
    """Floating-point operations of one VGG-16 forward pass at INPUT_SIZE (2 per multiply–add; conv and dense)."""
    from lrpcore.layers import Conv2d, Dense
    from lrpcore.models import vgg16

    model = vgg16(input_size=INPUT_SIZE, seed=SEED)
    shape, multiply_adds = (3, INPUT_SIZE, INPUT_SIZE), 0
    for layer in model.layers:
        out = layer.output_shape(shape)
        if isinstance(layer, Conv2d):
            multiply_adds += layer.weight.size * out[1] * out[2]
        elif isinstance(layer, Dense):
            multiply_adds += layer.weight.size
        shape = out
    return 2.0 * multiply_adds


def gemm_rate(repeats: int = 5) -> float:
    """NumPy float32 GEMM rate of this process (GFLOP/s): median of ``repeats`` 2048³ products after a warm-up."""
    import numpy

    rng = numpy.random.default_rng(SEED)
    a = rng.random((GEMM_SIZE, GEMM_SIZE), dtype=numpy.float32)
    b = rng.random((GEMM_SIZE, GEMM_SIZE), dtype=numpy.float32)
    out = a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        numpy.matmul(a, b, out=out)
        times.append(time.perf_counter() - start)
    return 2.0 * GEMM_SIZE ** 3 / statistics.median(times) / 1e9


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

    return zennit_runners(torch, rules, network)


def zennit_runners(torch: Any, rules: Any, network: Any) -> tuple[Any, Any]:
    """(explain, forward) of ``network`` under the zennit composite ``rules``: the predicted class explained
    from onehot ⊙ output, as lrpcore's runs do (shared with tools/_bench_resnet.py)."""

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


def _median_time(function: Any, argument: Any, repeats: int) -> tuple[float, float]:
    """Median wall time and median CPU time (all threads of the process) of ``repeats`` calls."""
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        function(argument)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(times), statistics.median(cpu)


def run_worker(library: str, composite: str, batch: int, repeats: int, threads: int) -> dict[str, Any]:
    import resource

    build_start = time.perf_counter()
    if library == "zennit":
        explain, forward = _zennit_runner(composite, threads)
    else:
        explain, forward = _lrpcore_runner(composite, "im2col" if library == "lrpcore-im2col" else "auto")
    build = time.perf_counter() - build_start
    x = _inputs(batch)
    explain(x[:1])                                  # warm-up (allocations, lazy imports, thread pools)
    (explain_s, explain_cpu), (forward_s, forward_cpu) = (_median_time(explain, x, repeats),
                                                          _median_time(forward, x, repeats))
    result = {"library": library, "composite": composite, "batch": batch, "repeats": repeats, "build_s": build,
              "explain_s": explain_s, "forward_s": forward_s, "explain_cpu_s": explain_cpu,
              "forward_cpu_s": forward_cpu}
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux
    return result


# --- the driver -------------------------------------------------------------------------------------
#: glibc settings of ``--keep-freed-memory``: no ``mmap`` for large blocks and no trimming, so the memory an
#: explanation frees is reused by the next one instead of being returned to the kernel and faulted in
#: (zeroed, on this VM also compacted into huge pages) again. Set for both peers' processes alike.
KEEP_FREED_MEMORY = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "2147483647", "MALLOC_TOP_PAD_": "67108864"}


def allocator_note() -> str:
    """The glibc allocator variables set for this run (both peers), for the printed header."""
    settings = [f"{name}={os.environ[name]}" for name in sorted(KEEP_FREED_MEMORY) if name in os.environ]
    return "glibc allocator: " + (" ".join(settings) if settings else "defaults")


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
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    busy, own, start = _busy_seconds(), _children_seconds(), time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, env=_thread_environment(threads))
    if completed.returncode != 0:
        raise RuntimeError(f"{library} {composite} batch {batch} failed:\n{completed.stderr[-3000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["load"] = (load_before, os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"))
    # share of the machine's CPU time taken by other processes during the run: the times are only
    # comparable when it is small
    if busy is not None:
        others = (_busy_seconds() - busy) - (_children_seconds() - own)
        result["others_cpu"] = max(0.0, others) / ((time.perf_counter() - start) * (os.cpu_count() or 1))
    return result


def peer_pairs(results: list[dict[str, Any]]) -> Any:
    """(composite, batch, lrpcore's result, zennit's result) for every configuration both peers ran,
    composites in run order and batches ascending."""
    by_key = {(r["library"], r["composite"], r["batch"]): r for r in results}
    for composite in dict.fromkeys(r["composite"] for r in results):
        for batch in sorted({r["batch"] for r in results}):
            ours, theirs = by_key.get(("lrpcore", composite, batch)), by_key.get(("zennit", composite, batch))
            if ours is not None and theirs is not None:
                yield composite, batch, ours, theirs


def _table(results: list[dict[str, Any]], gemm: dict[str, Any] | None) -> list[str]:
    by_key = {(r["library"], r["composite"], r["batch"]): r for r in results}
    floor = PASSES * vgg16_flop() / (gemm["gflops"] * 1e9) if gemm else None     # seconds per image
    reference = any(r["library"] == "lrpcore-im2col" for r in results)
    lines = ["| composite | batch | lrpcore s | zennit s | time ratio | lrpcore MiB | zennit MiB | memory ratio "
             "| lrpcore explain/forward | lrpcore forward s | torch forward s | forward ratio | explain ÷ floor "
             + ("| im2col lrpcore s | im2col forward s " if reference else "") + "| load | others' CPU |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if reference else "") + "---|---|"]
    ratios = []
    for composite, batch, ours, theirs in peer_pairs(results):
        time_ratio = ours["explain_s"] / theirs["explain_s"]
        memory_ratio = ours["peak_mib"] / theirs["peak_mib"]
        forward_ratio = ours["forward_s"] / theirs["forward_s"]
        per_floor = ours["explain_s"] / batch / floor if floor else float("nan")
        ratios.append((composite, batch, time_ratio, memory_ratio, forward_ratio, per_floor))
        old = by_key.get(("lrpcore-im2col", composite, batch))
        extra = ""
        if reference:
            extra = f"{old['explain_s']:.2f} | {old['forward_s']:.3f} | " if old else "– | – | "
        loads = [value for r in (ours, theirs, old) if r for value in r.get("load", ())]
        lines.append(f"| {composite} | {batch} | {ours['explain_s']:.2f} | {theirs['explain_s']:.2f} | "
                     f"{time_ratio:.2f} | {ours['peak_mib']:.0f} | {theirs['peak_mib']:.0f} | {memory_ratio:.2f} | "
                     f"{ours['explain_s'] / ours['forward_s']:.1f} | {ours['forward_s']:.3f} | "
                     f"{theirs['forward_s']:.3f} | {forward_ratio:.2f} | {per_floor:.2f} | {extra}"
                     f"{min(loads, default=float('nan')):.1f}–{max(loads, default=float('nan')):.1f} | "
                     f"{max(ours.get('others_cpu', 0), theirs.get('others_cpu', 0)):.0%} |")
    lines.append("")
    if gemm:
        lines.append(f"NumPy float32 GEMM ({GEMM_SIZE}³, {gemm['threads']} threads): {gemm['gflops']:.0f} GFLOP/s "
                     f"(load {gemm['load'][0]:.1f}–{gemm['load'][1]:.1f}); VGG-16 forward {vgg16_flop() / 1e9:.1f} "
                     f"GFLOP; floor of an explanation = {PASSES} passes = {floor:.3f} s per image")
    for composite, batch, time_ratio, memory_ratio, forward_ratio, per_floor in ratios:
        target = 0.4 if batch == 1 else 0.25
        lines.append(f"ratio lrpcore/zennit  {composite:18s} batch {batch}: time {time_ratio:.2f} "
                     f"(target ≤ {target}), peak memory {memory_ratio:.2f} (target ≤ 0.5 at batch 8), "
                     f"forward {forward_ratio:.2f} × torch (target ≤ 1.2), explain {per_floor:.2f} × floor "
                     f"(target ≤ 2)")
    return lines


def _spawn_gemm(threads: int) -> dict[str, Any]:
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    completed = subprocess.run([sys.executable, __file__, "--worker", "gemm", "--threads", str(threads)],
                               capture_output=True, text=True, env=_thread_environment(threads))
    if completed.returncode != 0:
        raise RuntimeError(f"GEMM rate measurement failed:\n{completed.stderr[-3000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["load"] = (load_before, os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"))
    return result


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
    profiler = cProfile.Profile(time.process_time)      # CPU seconds: steadier than wall time on a busy machine
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
    print("By operation, CPU seconds (cProfile follows the calling thread only: exact with --threads 1):")
    print("| operation | CPU s | share |\n|---|---|---|")
    for name, seconds in _operations(pstats.Stats(profiler)):
        print(f"| {name} | {seconds:.3f} | {seconds / total_cpu:.0%} |")
    print()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


#: (label, module file ending, function names): cumulative time of these functions, which never nest in one another
OPERATIONS = (
    ("convolution: Winograd products (16 GEMMs per block)", "_winograd.py", ("_products",)),
    ("convolution: Winograd input/output transforms", "_winograd.py", ("_input_transform", "_output_transform")),
    ("convolution: Winograd phases (strided gather, padding)", "_winograd.py", ("_phases",)),
    ("convolution: Winograd weight transform", "_winograd.py", ("transform_weight",)),
    ("convolution: im2col blocks (columns + GEMM)", "_conv.py", ("correlate_im2col",)),
    ("convolution: col2im transposed maps", "_conv.py", ("correlate_transpose_col2im",)),
    ("dense layers (forward and transposed)", "dense.py", ("linear_forward", "linear_transpose", "forward")),
    ("pooling layers", "pooling.py", ("forward", "relevance_weight", "linear_forward", "linear_transpose")),
)


def _operations(stats: Any) -> list[tuple[str, float]]:
    """Cumulative seconds per operation of :data:`OPERATIONS`, and the rest of the explanation."""
    rows, total, covered = [], 0.0, 0.0
    for (filename, _, function), (_, _, _, cumulative, _) in stats.stats.items():
        total = max(total, cumulative)
    for label, ending, functions in OPERATIONS:
        seconds = sum(entry[3] for (filename, _, function), entry in stats.stats.items()
                      if filename.endswith(ending) and function in functions)
        rows.append((label, seconds))
        covered += seconds
    rows.append(("the rest (rules' element-wise passes, masks, counts, Python)", max(0.0, total - covered)))
    return rows


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
    parser.add_argument("--libraries", nargs="+", default=list(DEFAULT_LIBRARIES), choices=LIBRARIES,
                        help="lrpcore, zennit (default both); lrpcore-im2col: lrpcore with the reference convolutions")
    parser.add_argument("--threads", type=int, default=2, help="BLAS / torch threads for both (default 2)")
    parser.add_argument("--quick", action="store_true", help="batch 1, one timed run: check the set-up")
    parser.add_argument("--profile", action="store_true", help="profile lrpcore only (first batch/composite)")
    parser.add_argument("--json", help="also write the raw results to this JSON file")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="run both peers with glibc keeping freed memory for reuse (MALLOC_MMAP_MAX_=0, no "
                             "trimming; see tools/BENCHMARKS.md): faster repeated explanations, memory kept")
    parser.add_argument("--worker", choices=LIBRARIES + ("gemm",), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.keep_freed_memory:     # inherited by every worker process, lrpcore's and zennit's alike
        os.environ.update(KEEP_FREED_MEMORY)
    if args.arch == "resnet50":
        import _bench_resnet

        args.composites = args.composites or list(_bench_resnet.COMPOSITES)
        return _bench_resnet.main(args)
    args.composites = args.composites or list(COMPOSITES)
    if not set(args.composites) <= set(COMPOSITES):
        parser.error(f"VGG-16 composites are {', '.join(COMPOSITES)}")
    if args.quick:
        args.repeats, args.batches = 1, [1]
    if args.worker == "gemm":
        print(json.dumps({"threads": args.threads, "gflops": gemm_rate()}))
        return 0
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
    gemm = _spawn_gemm(args.threads)
    print(f"NumPy float32 GEMM rate: {gemm['gflops']:.0f} GFLOP/s ({args.threads} threads)", flush=True)
    for composite in args.composites:
        for batch in args.batches:
            for library in args.libraries:
                result = _spawn(library, composite, batch, args.repeats, args.threads)
                results.append(result)
                print(f"{library:14s} {composite:18s} batch {batch}: explain {result['explain_s']:.3f} s "
                      f"({result['explain_cpu_s']:.2f} s CPU), forward {result['forward_s']:.3f} s "
                      f"({result['forward_cpu_s']:.2f} s CPU), peak {result['peak_mib']:.0f} MiB, "
                      f"other processes {result.get('others_cpu', float('nan')):.0%} of the CPU, "
                      f"load {result['load'][0]:.1f}–{result['load'][1]:.1f}", flush=True)
    print(f"\nVGG-16 {INPUT_SIZE}×{INPUT_SIZE} float32, {args.threads} threads, median of {args.repeats} "
          f"after a warm-up; total {time.perf_counter() - started:.0f} s; \"others' CPU\": the larger share of "
          f"the machine's CPU time other processes took during the two runs (times are comparable only when "
          f"it is small); {allocator_note()}\n")
    print("\n".join(_table(results, gemm)))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"gemm": gemm, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
