"""Benchmark of ``lrpcore.sweep.grid`` against the naive loop, and on a 2-worker Dask LocalCluster.

The setting of the issue: the Tutorial composite's γ × ε grid on ``{0} ∪ logspace(-4, 0, 15)``
(16 × 16 = 256 configurations), ``shapes_cnn`` (``models/shapes_cnn.h5``; the same architecture
with random Kaiming weights when the file is absent), 16 shapes images, MoRF sort, Telea
inpainting, 8×8 patches, quadratic schedule, final gray step. Measured in one run:

1. **naive**: for each configuration ``explain(model, x, composite=tutorial(γ, ε))`` (its own
   forward pass) then ``pixel_flipping(model, x, R, sort="morf")``: the loop a user would write;
2. **sweep, serial**: ``grid(...)`` in this process (one forward pass per image block, batched
   explanations, each distinct perturbed input scored once, big model batches);
3. **sweep, Dask**: the same on a ``LocalCluster(n_workers=2, threads_per_worker=1)``, cluster start-up
   excluded (reported separately).

The naive loop is timed on the first ``--naive-configs`` configurations (default 32, a 2 × 16
strip of the grid) and extrapolated linearly to 256 — every configuration costs the same there,
so this is fair; ``--naive-configs 256`` times all of it. Both sweeps run the full grid. The AUCs of
the timed naive configurations are compared with the sweep's (they must agree to 1e-9).

Usage::

    python tools/bench_sweep.py                    # Markdown table on stdout
    python tools/bench_sweep.py --values 8 --images 8 --no-dask   # quicker, smaller grid
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--values", type=int, default=16, help="grid values per axis: 0 and values-1 log-spaced")
    parser.add_argument("--naive-configs", type=int, default=32, help="configurations the naive loop is timed on")
    parser.add_argument("--no-dask", dest="dask", action="store_false")
    args = parser.parse_args(argv)

    model, model_name = _model()
    data = shapes(args.images, size=int(model.metadata.input_shape[-1]), seed=1)
    x = np.asarray(model.metadata.preprocess(data.x.astype(np.float64))).astype(np.float32)
    targets = np.asarray(data.y, dtype=np.int64)
    values = (0.0,) + tuple(float(value) for value in np.logspace(-4, 0, args.values - 1))
    preset = tutorial(values)
    configs = [dict(gamma=gamma, epsilon=epsilon) for gamma in values for epsilon in values]
    evaluation = {"sorts": ["morf"], "mode": "inpaint", "patch_size": 8}

    naive_count = min(args.naive_configs, len(configs))
    naive_auc = []
    start = time.perf_counter()
    for config in configs[:naive_count]:
        relevance = explain(model, x, target=targets, composite=composites.tutorial(**config)).relevance
        naive_auc.append(pixel_flipping(model, x, relevance, targets, sort="morf", mode="inpaint",
                                        patch_size=8).auc())
    naive_measured = time.perf_counter() - start
    naive_total = naive_measured * len(configs) / naive_count

    start = time.perf_counter()
    serial = grid(model, x, targets, composite=preset, evaluation=evaluation, progress=False)
    serial_seconds = time.perf_counter() - start
    difference = float(np.max(np.abs(serial.per_image("morf")[:naive_count] - np.stack(naive_auc))))

    dask_seconds = startup = None
    if args.dask:
        from dask.distributed import Client, LocalCluster
        start = time.perf_counter()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
        client = Client(cluster)
        client.run(lambda: __import__("lrpcore.sweep"))
        startup = time.perf_counter() - start
        start = time.perf_counter()
        distributed = grid(model, x, targets, composite=preset, evaluation=evaluation, executor=client,
                           config_block=16, progress=False)
        dask_seconds = time.perf_counter() - start
        client.close()
        cluster.close()
        same = all(serial.table[name].tolist() == distributed.table[name].tolist() if serial.table[name].dtype == object
                   else np.array_equal(serial.table[name], distributed.table[name], equal_nan=True)
                   for name in serial.table)
        print(f"dask table identical to serial: {same}", file=sys.stderr)

    cpus = os.cpu_count()
    print(f"### Sweep: {len(values)}×{len(values)} Tutorial γ×ε grid, {args.images} images, MoRF, inpainting\n")
    print(f"Model: {model_name}; {platform.processor() or platform.machine()}, {cpus} CPUs, "
          f"Python {platform.python_version()}, NumPy {np.__version__}, OPENBLAS_NUM_THREADS="
          f"{os.environ['OPENBLAS_NUM_THREADS']}, load average {os.getloadavg()[0]:.1f} at the end. "
          f"Naive loop timed on {naive_count} of "
          f"{len(configs)} configurations and extrapolated linearly; max |AUC difference| sweep vs naive "
          f"{difference:.1e}.\n")
    print("| run | wall time (s) | speedup vs naive |")
    print("|---|---:|---:|")
    print(f"| naive loop (explain + pixel_flipping per config){' (extrapolated)' if naive_count < len(configs) else ''}"
          f" | {naive_total:.1f} | 1.0× |")
    print(f"| sweep, serial (1 process) | {serial_seconds:.1f} | {naive_total / serial_seconds:.1f}× |")
    if dask_seconds is not None:
        print(f"| sweep, Dask LocalCluster 2 workers × 1 thread (start-up {startup:.1f} s excluded) | "
              f"{dask_seconds:.1f} | {naive_total / dask_seconds:.1f}× "
              f"({serial_seconds / dask_seconds:.2f}× vs serial sweep) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
