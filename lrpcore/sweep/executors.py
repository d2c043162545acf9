"""Running a sweep's tasks: in this process, in a standard-library process pool, or on Dask.

A task is one block of configurations × one block of images (:func:`lrpcore.sweep.grid.run_task`).
The work that is the same for every task — the model, the images, the composite factory, the
settings — is the *payload*, sent to each worker once (the pool's initializer; Dask's
``scatter(broadcast=True)``), so tasks carry only their indices.

- ``None`` / ``"serial"``: one task after the other, here.
- ``"processes"``: :class:`concurrent.futures.ProcessPoolExecutor` (``spawn`` start method,
  ``workers`` processes, default 2, one BLAS thread each unless ``OPENBLAS_NUM_THREADS`` etc.
  are set), for users without Dask.
- ``"dask"``: a :class:`dask.distributed.Client` on a new ``LocalCluster`` (``workers``
  processes, one thread each, on 127.0.0.1, no dashboard) or, with ``scheduler="tcp://host:8786"``, on an
  existing cluster; or pass your own ``Client`` as the executor. Workers need lrpcore (and
  OpenCV for inpainting) installed in the same version.

Results come back as tasks finish (in any order) and are handed to ``on_result``, which
stores them; a task's rows depend only on the task, so every executor gives the same table.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
from typing import Any, Callable, Iterator, Sequence

__all__ = ["run_tasks", "EXECUTORS"]

EXECUTORS = (None, "serial", "processes", "dask")

_WORKER_PAYLOAD: dict[str, Any] = {}


def _init_worker(payload: dict[str, Any]) -> None:
    _WORKER_PAYLOAD.clear()
    _WORKER_PAYLOAD.update(payload)


def _run_in_worker(task: Any) -> tuple[Any, list]:
    from .grid import run_task
    return task, run_task(_WORKER_PAYLOAD, task)


def _run_with_payload(payload: dict[str, Any], task: Any) -> tuple[Any, list]:
    from .grid import run_task
    return task, run_task(payload, task)


@contextlib.contextmanager
def _single_threaded_blas_children() -> Iterator[None]:
    """Spawned workers start with one BLAS/OpenMP thread each (as Dask's workers do), unless the user set them.

    N workers × several BLAS threads oversubscribe the cores; on a busy 2-core machine that made
    forward passes 15× slower. The variables are set while the pool starts its processes, then restored.
    """
    names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    added = [name for name in names if name not in os.environ]
    for name in added:
        os.environ[name] = "1"
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _dask_client(executor: Any, scheduler: str | None, workers: int) -> tuple[Any, Callable[[], None]]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ImportError('executor="dask" needs dask.distributed: pip install "dask[distributed]"') from None
    if isinstance(executor, Client):
        return executor, lambda: None
    if scheduler:
        client = Client(scheduler)
        return client, client.close
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None)
    client = Client(cluster)

    def close() -> None:
        client.close()
        cluster.close()
    return client, close


def _is_dask_client(executor: Any) -> bool:
    return type(executor).__name__ == "Client" and type(executor).__module__.startswith("distributed")


def run_tasks(tasks: Sequence[Any], payload: dict[str, Any], on_result: Callable[[Any, list], None],
              executor: Any = None, workers: int | None = None, scheduler: str | None = None) -> None:
    """Run ``run_task(payload, task)`` for every task on ``executor``; call ``on_result(task, rows)`` here."""
    if not tasks:
        return
    if executor in (None, "serial"):
        if scheduler:
            raise ValueError("scheduler is only used with executor='dask'")
        for task in tasks:
            on_result(*_run_with_payload(payload, task))
        return
    if executor == "processes":
        context = multiprocessing.get_context("spawn")
        pool_options = dict(max_workers=workers or 2, mp_context=context, initializer=_init_worker,
                            initargs=(payload,))
        with _single_threaded_blas_children(), concurrent.futures.ProcessPoolExecutor(**pool_options) as pool:
            futures = [pool.submit(_run_in_worker, task) for task in tasks]
            try:
                for future in concurrent.futures.as_completed(futures):
                    on_result(*future.result())
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return
    if executor == "dask" or _is_dask_client(executor):
        client, close = _dask_client(executor, scheduler, workers or 2)
        try:
            from dask.distributed import as_completed
            shared = client.scatter(payload, broadcast=True)
            futures = [client.submit(_run_with_payload, shared, task, pure=False) for task in tasks]
            try:
                for future in as_completed(futures):
                    on_result(*future.result())
            except BaseException:
                client.cancel(futures)
                raise
        finally:
            close()
        return
    raise ValueError(f"executor must be None, 'serial', 'processes', 'dask' or a dask.distributed.Client, "
                     f"got {executor!r}")
