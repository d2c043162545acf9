"""Benchmark of ``lrpcore.sweep.grid``: against the naive loop, and how it scales on Dask workers.

The setting of the issue: the Tutorial composite's γ × ε grid on ``{0} ∪ logspace(-4, 0, 15)``
(16 × 16 = 256 configurations), ``shapes_cnn`` (``models/shapes_cnn.h5``; the same architecture
with random Kaiming weights when the file is absent), 16 shapes images, MoRF sort, Telea
inpainting, 8×8 patches, quadratic schedule, final gray step. Measured in one run:

1. **naive**: for each configuration ``explain(model, x, composite=tutorial(γ, ε))`` (its own
   forward pass) then ``pixel_flipping(model, x, R, sort="morf")``: the loop a user would write;
2. **sweep, serial**: ``grid(...)`` in this process;
3. **sweep, Dask**: the same on lrpcore's ``LocalCluster`` (:func:`lrpcore.sweep.executors.local_cluster`:
   W worker processes × 1 thread) for W = 1, 2 and, where the machine has the cores, 4, 8, …;
   cluster start-up (and the workers' first imports) excluded and reported separately.
   ``--executors processes`` adds the standard-library process pool (its start-up included).

Reported per distributed run: how many of W cores the machine gave W busy processes just before
(Σ CPU / wall; a shared machine may give fewer, and then no speedup is possible); wall time,
speedup over the serial sweep and over one worker, parallel efficiency (speedup / W); the CPU time of the tasks on the workers (each task's own thread) against the
serial run's, by kind of task; the workers' CPU time outside tasks (Dask's own threads) and this
process's CPU time during the run (client, and the LocalCluster's scheduler); whether the table
is identical to the serial one.

The naive loop is timed on the first ``--naive-configs`` configurations (default 32, a 2 × 16
strip of the grid) and extrapolated linearly to 256 — every configuration costs the same there,
so this is fair; ``--naive-configs 256`` times all of it. The AUCs of the timed naive
configurations are compared with the sweep's (they must agree to ~1e-6: the model sees the same
inputs in other batches, whose float32 sums may differ in the last bits).

Usage::

    python tools/bench_sweep.py --images 16 --values 16 --naive-configs 8   # the issue's setting
    python tools/bench_sweep.py --images 16 --values 16 --naive-configs 8 --workers 1,2 --repeats 3
    python tools/bench_sweep.py --values 8 --images 8 --workers 2            # quicker, smaller grid
"""
from __future__ import annotations

import argparse
import math
import os
import pathlib
import platform
import sys
import time

# One BLAS thread per process for every run: on a shared 2-core machine OpenBLAS' spinning threads
# oversubscribe the cores (15× slower forward passes measured under load), and Dask workers use
# one thread each anyway. Set OPENBLAS_NUM_THREADS yourself to override.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lrpcore import ModelMetadata, Sequential, composites, explain  # noqa: E402
from lrpcore.data import shapes  # noqa: E402
from lrpcore.evaluate import pixel_flipping  # noqa: E402
from lrpcore.layers import Conv2d, Dense, Dropout, Flatten, MaxPool2d, ReLU  # noqa: E402
from lrpcore.sweep import grid, tutorial  # noqa: E402


def _random_shapes_cnn(seed: int = 0) -> Sequential:
    """The architecture of tools/train_shapes.py with Kaiming-normal weights and zero biases."""
    rng = np.random.default_rng(seed)

    def conv(out_channels: int, in_channels: int) -> Conv2d:
        weight = rng.normal(size=(out_channels, in_channels, 3, 3)) * math.sqrt(2 / (9 * in_channels))
        return Conv2d(weight.astype(np.float32), np.zeros(out_channels, np.float32), padding=1)

    def dense(out_features: int, in_features: int) -> Dense:
        weight = rng.normal(size=(out_features, in_features)) * math.sqrt(2 / in_features)
        return Dense(weight.astype(np.float32), np.zeros(out_features, np.float32))

    layers = [conv(16, 3), ReLU(), MaxPool2d(2), conv(32, 16), ReLU(), MaxPool2d(2), conv(64, 32), ReLU(),
              conv(64, 64), ReLU(), MaxPool2d(2), Flatten(), dense(64, 4096), ReLU(), Dropout(0.5), dense(6, 64)]
    metadata = ModelMetadata(input_shape=(3, 64, 64), value_range=(0.0, 1.0), mean=(0.5, 0.5, 0.5),
                             std=(0.25, 0.25, 0.25), name="shapes_cnn (random weights)")
    return Sequential(layers, metadata)


def _model() -> tuple[Sequential, str]:
    shipped = ROOT / "models" / "shapes_cnn.h5"
    if shipped.exists():
        from lrpcore.io import load
        return load(str(shipped)), "models/shapes_cnn.h5"
    print("models/shapes_cnn.h5 not found: using the same architecture with random weights", file=sys.stderr)
    return _random_shapes_cnn(), "shapes_cnn architecture, random Kaiming weights (trained file absent)"


def _same_table(first, second) -> bool:
    return all(first.table[name].tolist() == second.table[name].tolist() if first.table[name].dtype == object
               else np.array_equal(first.table[name], second.table[name], equal_nan=True) for name in first.table)


def _task_cpu(result) -> dict[str, float]:
    """CPU seconds of the tasks' own threads, by kind of task."""
    return {kind: sum(timing.cpu for timing in result.timings if timing.kind == kind) for kind in ("explain", "flip")}


def _process_cpu() -> float:
    import resource
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _spin(seconds: float, results) -> None:
    """Busy-loop for ``seconds`` of CPU time; report (CPU, wall)."""
    cpu, wall = time.process_time(), time.perf_counter()
    while time.process_time() - cpu < seconds:
        sum(range(10_000))
    results.put((time.process_time() - cpu, time.perf_counter() - wall))


def _free_cores(count: int, seconds: float = 1.0) -> float:
    """How many of ``count`` cores this machine gives at once right now: Σ CPU / wall of ``count`` busy processes.

    On a quiet 2-core machine ≈ 2.0; 1.0 means another job holds one core, and no number of workers
    can then beat one core's speed. Printed beside every distributed figure.
    """
    import multiprocessing
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=_spin, args=(seconds, results)) for _ in range(count)]
    for process in processes:
        process.start()
    measured = [results.get() for _ in processes]
    for process in processes:
        process.join()
    return sum(cpu for cpu, _ in measured) / max(wall for _, wall in measured)


def _default_workers() -> list[int]:
    counts, count = [1, 2], 4
    while count <= (os.cpu_count() or 1):
        counts.append(count)
        count *= 2
    return counts


def _serial_run(model, x, targets, preset, evaluation) -> dict:
    cpu = _process_cpu()
    start = time.perf_counter()
    result = grid(model, x, targets, composite=preset, evaluation=evaluation, progress=False)
    return {"seconds": time.perf_counter() - start, "process_cpu": _process_cpu() - cpu, "result": result,
            "task_cpu": _task_cpu(result)}


def _distributed_run(executor: str, workers: int, model, x, targets, preset, evaluation) -> dict:
    run = {"executor": executor, "workers": workers, "free": _free_cores(workers)}
    if executor == "dask":
        from lrpcore.sweep.executors import local_cluster
        start = time.perf_counter()
        cluster, client = local_cluster(workers)
        client.run(lambda: [__import__(name) for name in ("lrpcore.sweep", "cv2")])
        run["startup"] = time.perf_counter() - start

        def worker_cpu() -> float:
            return sum(client.run(_process_cpu).values())
        before_workers, cpu = worker_cpu(), _process_cpu()
        start = time.perf_counter()
        result = grid(model, x, targets, composite=preset, evaluation=evaluation, executor=client, progress=False)
        run["seconds"] = time.perf_counter() - start
        run["main_cpu"] = _process_cpu() - cpu
        run["worker_process_cpu"] = worker_cpu() - before_workers
        client.close()
        cluster.close()
    else:
        cpu = _process_cpu()
        start = time.perf_counter()
        result = grid(model, x, targets, composite=preset, evaluation=evaluation, executor=executor,
                      workers=workers, progress=False)
        run["seconds"] = time.perf_counter() - start
        run["main_cpu"] = _process_cpu() - cpu
    run["task_cpu"] = _task_cpu(result)
    run["tasks"] = len(result.timings)
    run["result"] = result
    return run


def _spread(values: list[float], form: str) -> str:
    """Median, with the range when there are several values: ``1.80× (1.70–2.42)``."""
    middle = form.format(float(np.median(values)))
    if len(values) == 1:
        return middle
    return f"{middle} ({form.format(min(values))}–{form.format(max(values))})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--values", type=int, default=16, help="grid values per axis: 0 and values-1 log-spaced")
    parser.add_argument("--naive-configs", type=int, default=32, help="configurations the naive loop is timed on")
    parser.add_argument("--workers", type=lambda text: [int(part) for part in text.split(",")],
                        default=_default_workers(), help="worker counts to run, e.g. 1,2,4 (default: 1, 2 and "
                        "powers of two up to the CPU count)")
    parser.add_argument("--executors", type=lambda text: text.split(","), default=["dask"],
                        help="distributed executors to time: dask, processes (default: dask)")
    parser.add_argument("--no-dask", dest="executors", action="store_const", const=[],
                        help="serial sweep and naive loop only")
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds of the serial and distributed runs, interleaved; ratios are taken within a "
                             "round and reported as median (range). Use 3 or more on a shared machine")
    args = parser.parse_args(argv)

    model, model_name = _model()
    data = shapes(args.images, size=int(model.metadata.input_shape[-1]), seed=1)
    x = np.asarray(model.metadata.preprocess(data.x.astype(np.float64))).astype(np.float32)
    targets = np.asarray(data.y, dtype=np.int64)
    values = (0.0,) + tuple(float(value) for value in np.logspace(-4, 0, args.values - 1))
    preset = tutorial(values)
    configs = [dict(gamma=gamma, epsilon=epsilon) for gamma in values for epsilon in values]
    evaluation = {"sorts": ["morf"], "mode": "inpaint", "patch_size": 8}
    loads = [os.getloadavg()[0]]

    naive_count = min(args.naive_configs, len(configs))
    naive_auc = []
    start = time.perf_counter()
    for config in configs[:naive_count]:
        relevance = explain(model, x, target=targets, composite=composites.tutorial(**config)).relevance
        naive_auc.append(pixel_flipping(model, x, relevance, targets, sort="morf", mode="inpaint",
                                        patch_size=8).auc())
    naive_measured = time.perf_counter() - start
    naive_total = naive_measured * len(configs) / naive_count

    serials, rounds = [], []
    for _ in range(max(1, args.repeats)):
        serials.append(_serial_run(model, x, targets, preset, evaluation))
        loads.append(os.getloadavg()[0])
        runs = []
        for executor in args.executors:
            for workers in args.workers:
                runs.append(_distributed_run(executor, workers, model, x, targets, preset, evaluation))
                runs[-1]["same"] = _same_table(serials[0]["result"], runs[-1].pop("result"))
                loads.append(os.getloadavg()[0])
        rounds.append(runs)
    serial = serials[0]["result"]
    difference = float(np.max(np.abs(serial.per_image("morf")[:naive_count] - np.stack(naive_auc))))
    same_serial = all(_same_table(serial, other["result"]) for other in serials[1:])
    serial_seconds = [run["seconds"] for run in serials]

    cpus = os.cpu_count()
    print(f"### Sweep: {len(values)}×{len(values)} Tutorial γ×ε grid, {args.images} images, MoRF, inpainting\n")
    print(f"Model: {model_name}; {platform.processor() or platform.machine()}, {cpus} CPUs, "
          f"Python {platform.python_version()}, NumPy {np.__version__}, OPENBLAS_NUM_THREADS="
          f"{os.environ['OPENBLAS_NUM_THREADS']}; load average (1 min) {', '.join(f'{load:.1f}' for load in loads)} "
          f"at the start and after each run; {len(serials)} round(s). Naive loop timed on {naive_count} of "
          f"{len(configs)} configurations and extrapolated linearly; max |AUC difference| sweep vs naive "
          f"{difference:.1e}.\n")
    print("| run | wall time (s) | speedup vs naive |")
    print("|---|---:|---:|")
    print(f"| naive loop (explain + pixel_flipping per config){' (extrapolated)' if naive_count < len(configs) else ''}"
          f" | {naive_total:.1f} | 1.0× |")
    print(f"| sweep, serial (1 process) | {_spread(serial_seconds, '{:.1f}')} | "
          f"{naive_total / float(np.median(serial_seconds)):.1f}× |")
    serial_cpu = {kind: [run["task_cpu"][kind] for run in serials] for kind in ("explain", "flip")}
    print(f"\nSerial sweep: {len(serial.timings)} tasks; task CPU explain {_spread(serial_cpu['explain'], '{:.2f}')} s "
          f"+ flip {_spread(serial_cpu['flip'], '{:.2f}')} s; process CPU "
          f"{_spread([run['process_cpu'] for run in serials], '{:.2f}')} s; every round's table identical: "
          f"{'yes' if same_serial else '**no**'}.\n")
    if not rounds[0]:
        return 0
    print("| executor | workers | free cores before | tasks | start-up (s) | wall (s) | speedup vs serial | "
          "efficiency | speedup vs 1 worker | task CPU explain / flip (s) | task CPU vs serial | "
          "workers' CPU outside tasks (s) | this process's CPU (s) | table = serial |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|")
    for position, first in enumerate(rounds[0]):
        runs = [runs_of_round[position] for runs_of_round in rounds]
        speedups = [serials[index]["seconds"] / run["seconds"] for index, run in enumerate(runs)]
        ones = [next((other for other in rounds[index] if other["executor"] == run["executor"]
                      and other["workers"] == 1), None) for index, run in enumerate(runs)]
        versus_one = "–" if ones[0] is None else _spread([one["seconds"] / run["seconds"]
                                                         for one, run in zip(ones, runs)], "{:.2f}×")
        ratios = [(run["task_cpu"]["explain"] + run["task_cpu"]["flip"]) / sum(serials[index]["task_cpu"].values())
                  for index, run in enumerate(runs)]
        outside = "–" if "worker_process_cpu" not in first else _spread(
            [run["worker_process_cpu"] - sum(run["task_cpu"].values()) for run in runs], "{:.2f}")
        startup = _spread([run["startup"] for run in runs], "{:.1f}") if "startup" in first else "incl."
        efficiency = _spread([speedup / first["workers"] * 100 for speedup in speedups], "{:.0f} %")
        print(f"| {first['executor']} | {first['workers']} | {_spread([run['free'] for run in runs], '{:.1f}')} | "
              f"{first['tasks']} | {startup} | {_spread([run['seconds'] for run in runs], '{:.1f}')} | "
              f"{_spread(speedups, '{:.2f}×')} | {efficiency} | {versus_one} | "
              f"{_spread([run['task_cpu']['explain'] for run in runs], '{:.2f}')} / "
              f"{_spread([run['task_cpu']['flip'] for run in runs], '{:.2f}')} | {_spread(ratios, '{:.2f}×')} | "
              f"{outside} | {_spread([run['main_cpu'] for run in runs], '{:.2f}')} | "
              f"{'yes' if all(run['same'] for run in runs) else '**no**'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
