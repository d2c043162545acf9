"""Where a sweep task's time goes: the same tasks in this process and on a Dask worker, side by side.

Runs explain tasks (``--configs`` configurations × 16 images, two tasks) and ``--flips`` flip tasks
(one image × every configuration) of the benchmark sweep (``tools/bench_sweep.py``: Tutorial
composite, shapes model, MoRF, inpainting) in this process and on a one-worker ``LocalCluster``
in three set-ups, alternating, ``--rounds`` times:

- ``dask``: Dask's defaults (statistical profiler on, ``MALLOC_TRIM_THRESHOLD_=65536`` from the
  nanny), tasks inside :func:`lrpcore.sweep.worker.task_environment` (what lrpcore does on any cluster);
- ``bare``: Dask's defaults without ``task_environment`` (what workers did before issue 16);
- ``lrpcore``: :func:`lrpcore.sweep.executors.local_cluster` (no profiler) with ``task_environment``.

Per task kind: the task thread's CPU time, system time and minor page faults; per worker run: its
CPU outside the task thread (Dask's own threads), the payload's scatter time and size, and the
round trip of a no-op task. CPU times are the robust figures on a busy machine; record the load.

Usage::

    python tools/profile_sweep_worker.py                # 3 rounds of main, dask, lrpcore
    python tools/profile_sweep_worker.py --setups main,dask,bare --rounds 1
"""
from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import pickle
import resource
import sys
import time

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from bench_sweep import _model  # noqa: E402
from lrpcore.data import shapes  # noqa: E402
from lrpcore.sweep import FlipSettings, tutorial  # noqa: E402
from lrpcore.sweep.tasks import ExplainTask, FlipTask, explain_task, flip_task  # noqa: E402


def _payload(configs: int) -> dict:
    model, _ = _model()
    data = shapes(16, size=int(model.metadata.input_shape[-1]), seed=1)
    x = np.asarray(model.metadata.preprocess(data.x.astype(np.float64))).astype(np.float32)
    preset = tutorial((0.0,) + tuple(float(value) for value in np.logspace(-4, 0, 15)))
    grid = [dict(gamma=gamma, epsilon=epsilon) for gamma in preset.params["gamma"]
            for epsilon in preset.params["epsilon"]][:configs]
    return {"model": model, "images": x, "image_ids": np.arange(16), "targets": np.asarray(data.y, dtype=np.int64),
            "factory": preset.composite, "configs": grid,
            "settings": FlipSettings(sorts=("morf",), mode="inpaint", patch_size=8)}


def run_tasks(payload: dict, explains: list, flips: list, environment: bool) -> dict:
    """Run the tasks here (in whatever process this is) and measure each kind."""
    from lrpcore.sweep.worker import task_environment
    context = task_environment if environment else contextlib.nullcontext
    measured, parts = {}, []
    for kind in ("explain", "flip"):
        before, cpu, wall = resource.getrusage(resource.RUSAGE_SELF), time.thread_time(), time.perf_counter()
        with context():
            if kind == "explain":
                parts = [explain_task(payload, task) for task in explains]
            else:
                for task in flips:
                    flip_task(payload, task, parts)
        after = resource.getrusage(resource.RUSAGE_SELF)
        measured[kind] = {"cpu": time.thread_time() - cpu, "wall": time.perf_counter() - wall,
                          "system": after.ru_stime - before.ru_stime, "faults": after.ru_minflt - before.ru_minflt}
    return measured


def _on_worker(setup: str, payload: dict, explains: list, flips: list) -> tuple[dict, dict]:
    import dask
    from dask.distributed import Client, LocalCluster

    from lrpcore.sweep.executors import local_cluster
    if setup == "lrpcore":
        cluster, client = local_cluster(1)
    else:
        with dask.config.set({"distributed.worker.profile.enabled": True}):
            cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None)
            client = Client(cluster)
    try:
        client.run(lambda: [__import__(name) for name in ("lrpcore.sweep.tasks", "cv2")])
        start = time.perf_counter()
        shared = client.scatter([payload], broadcast=True, hash=False)[0]
        scatter = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(20):
            client.submit(time.time, pure=False).result()
        trip = (time.perf_counter() - start) / 20

        def process_cpu() -> float:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            return usage.ru_utime + usage.ru_stime
        (before,) = client.run(process_cpu).values()
        start = time.perf_counter()
        measured = client.submit(run_tasks, shared, explains, flips, setup != "bare", pure=False).result()
        wall = time.perf_counter() - start
        (after,) = client.run(process_cpu).values()
    finally:
        client.close()
        cluster.close()
    outside = after - before - sum(kind["cpu"] for kind in measured.values())
    return measured, {"scatter": scatter, "payload MB": len(pickle.dumps(payload)) / 1e6, "round trip ms": trip * 1e3,
                      "outside tasks": outside, "wall": wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", type=int, default=64, help="configurations (two explain tasks)")
    parser.add_argument("--flips", type=int, default=4, help="flip tasks of one image each")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--setups", type=lambda text: text.split(","), default=["main", "dask", "lrpcore"])
    args = parser.parse_args(argv)
    payload = _payload(args.configs)
    half = args.configs // 2
    explains = [ExplainTask(tuple(range(0, half)), (0, 16)), ExplainTask(tuple(range(half, args.configs)), (0, 16))]
    flips = [FlipTask((0, 16), (image, image + 1), args.configs) for image in range(args.flips)]
    print(f"{args.configs} configurations × 16 images in 2 explain tasks; {args.flips} flip tasks of one image\n")
    print("| round | set-up | load | explain CPU / system (s), faults | flip CPU / system (s), faults | "
          "worker CPU outside tasks (s) / wall (s) | scatter (s, MB) | round trip (ms) |")
    print("|---:|---|---:|---|---|---|---|---:|")
    for round_number in range(1, args.rounds + 1):
        for setup in args.setups:
            load = os.getloadavg()[0]
            if setup == "main":
                measured, extra = run_tasks(payload, explains, flips, environment=False), None
            else:
                measured, extra = _on_worker(setup, payload, explains, flips)
            cells = [f"{measured[kind]['cpu']:.2f} / {measured[kind]['system']:.2f}, {measured[kind]['faults']}"
                     for kind in ("explain", "flip")]
            if extra is None:
                cells += ["–", "–", "–"]
            else:
                cells += [f"{extra['outside tasks']:.2f} / {extra['wall']:.1f}",
                          f"{extra['scatter']:.3f}, {extra['payload MB']:.1f}", f"{extra['round trip ms']:.1f}"]
            print(f"| {round_number} | {setup} | {load:.1f} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
