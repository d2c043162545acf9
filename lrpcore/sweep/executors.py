"""Running a sweep's tasks: in this process, in a standard-library process pool, or on Dask.

The tasks (:mod:`lrpcore.sweep.tasks`) come in image blocks: explain tasks, then flip tasks
that need all of their block's explanations. One loop (:func:`run_plan`) drives every executor:
it keeps about two tasks per worker in flight, flip tasks first (they finish blocks, whose
rows are then stored), explain tasks of the next block next, so workers never wait for this
process and results become durable block by block.

The work that is the same for every task — the model, the images, the composite factory, the
settings — is the *payload*, sent to each worker once (the pool's initializer; Dask's
``scatter(broadcast=True)`` of one object under a unique key), so tasks carry only their indices.
Explanations stay on the worker that made them under Dask (flip tasks fetch them from there);
the process pool passes them through this process.

- ``None`` / ``"serial"``: the tasks one after the other, here.
- ``"processes"``: :class:`concurrent.futures.ProcessPoolExecutor` (``spawn``, ``workers``
  processes, default 2, one BLAS thread each unless ``OPENBLAS_NUM_THREADS`` etc. are set), for
  users without Dask. Its workers die with this process, even when it is killed with SIGKILL.
- ``"dask"``: a :class:`dask.distributed.Client` on a new ``LocalCluster`` (``workers`` processes,
  one thread each, on 127.0.0.1, no dashboard, no profiler, slower housekeeping: :func:`local_cluster`)
  or, with ``scheduler="tcp://host:8786"``, on an existing cluster; or pass your own ``Client`` as
  the executor. Workers need lrpcore (and OpenCV for inpainting) installed in the same version.

Every task runs in :func:`lrpcore.sweep.worker.task_environment` on workers. While tasks run,
SIGTERM (from the main thread) stops the sweep like Ctrl-C does: pool workers are terminated,
a ``LocalCluster`` is closed, and the rows stored so far stay; the process then exits with the
signal's status.
"""
from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
from typing import Any, Callable, Iterator, Sequence

from .progress import Progress
from .tasks import Block, ExplainPart, ExplainTask, FlipOutcome, FlipTask, explain_task, flip_task
from .worker import die_with_parent, task_environment

__all__ = ["run_plan", "local_cluster", "LOCAL_CLUSTER_CONFIG", "EXECUTORS", "SweepTerminated"]

EXECUTORS = (None, "serial", "processes", "dask")

_WORKER_PAYLOAD: dict[str, Any] = {}


class SweepTerminated(SystemExit):
    """Raised in the main thread when SIGTERM arrives during a sweep; exits with status 128 + SIGTERM."""


# --- functions that run on workers ------------------------------------------------------------------------
def _init_pool_worker(payload: dict[str, Any], parent_pid: int) -> None:
    die_with_parent(parent_pid)
    _WORKER_PAYLOAD.clear()
    _WORKER_PAYLOAD.update(payload)


def _pool_explain(task: ExplainTask) -> ExplainPart:
    with task_environment():
        return explain_task(_WORKER_PAYLOAD, task)


def _pool_flip(task: FlipTask, parts: Sequence[ExplainPart]) -> FlipOutcome:
    with task_environment():
        return flip_task(_WORKER_PAYLOAD, task, parts)


def _dask_explain(payload: dict[str, Any], task: ExplainTask) -> ExplainPart:
    with task_environment():
        return explain_task(payload, task)


def _dask_flip(payload: dict[str, Any], task: FlipTask, parts: Sequence[ExplainPart]) -> FlipOutcome:
    with task_environment():
        return flip_task(payload, task, parts)


# --- backends: submit, wait, count running tasks ---------------------------------------------------------
class _Done:
    """A finished task's value (a handle compared by identity)."""

    def __init__(self, value: Any):
        self.value = value


class _Serial:
    """Runs a task when it is submitted."""

    workers = 1

    def __init__(self, payload: dict[str, Any]):
        self.payload = payload

    def explain(self, task: ExplainTask) -> _Done:
        return _Done(explain_task(self.payload, task))

    def flip(self, task: FlipTask, parts: list[Any]) -> _Done:
        return _Done(flip_task(self.payload, task, parts))

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Any]:
        return list(handles)

    def keep(self, handle: Any) -> Any:
        return handle.value

    def result(self, handle: Any) -> Any:
        return handle.value

    def running(self, handles: Sequence[Any]) -> int:
        return 0

    def cancel(self, handles: Sequence[Any]) -> None:
        pass


class _Pool:
    def __init__(self, pool: concurrent.futures.ProcessPoolExecutor, workers: int):
        self.pool, self.workers = pool, workers

    def explain(self, task: ExplainTask) -> Any:
        return self.pool.submit(_pool_explain, task)

    def flip(self, task: FlipTask, parts: list[Any]) -> Any:
        # only the task's images of each explanation travel to the worker
        return self.pool.submit(_pool_flip, task, [part.images(*task.images) for part in parts])

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Any]:
        done, _ = concurrent.futures.wait(handles, timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED)
        return [handle for handle in handles if handle in done]

    def keep(self, handle: Any) -> Any:
        return handle.result()  # explanations pass through this process to the flip tasks

    def result(self, handle: Any) -> Any:
        return handle.result()

    def running(self, handles: Sequence[Any]) -> int:
        return min(self.workers, sum(handle.running() for handle in handles))

    def cancel(self, handles: Sequence[Any]) -> None:
        for handle in handles:
            handle.cancel()


class _Dask:
    def __init__(self, client: Any, payload: dict[str, Any]):
        self.client = client
        self.prefix = f"lrpcore-sweep-{uuid.uuid4().hex[:12]}"
        if not client.nthreads():
            print(f"lrpcore sweep: waiting for Dask workers to join {client.scheduler.address}", file=sys.stderr,
                  flush=True)
            client.wait_for_workers(1)
        # one object under a unique key: a dict would be scattered value by value under its own keys
        # ("model", "images", ...), which other clients of a shared cluster could collide with
        self.payload = client.scatter([payload], broadcast=True, hash=False)[0]
        self.count = 0
        self._running = (0.0, 0)
        self._threads = dict(client.nthreads())
        self._workers = (time.monotonic(), max(1, sum(self._threads.values())))

    @property
    def workers(self) -> int:
        """Worker threads in the cluster (asked of the scheduler at most every 5 s)."""
        when, count = self._workers
        if time.monotonic() - when > 5.0:
            self._threads = dict(self.client.nthreads())
            count = max(1, sum(self._threads.values()))
            self._workers = (time.monotonic(), count)
        return count

    def _worker_threads(self, worker: str) -> int:
        """Threads of one worker: the most tasks it runs at once (it may hold more, queued)."""
        return self._threads.get(worker, 1)

    def _key(self, kind: str) -> str:
        self.count += 1
        return f"{self.prefix}-{kind}-{self.count}"

    def explain(self, task: ExplainTask) -> Any:
        return self.client.submit(_dask_explain, self.payload, task, key=self._key("explain"), pure=False)

    def flip(self, task: FlipTask, parts: list[Any]) -> Any:
        return self.client.submit(_dask_flip, self.payload, task, parts, key=self._key("flip"), pure=False)

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Any]:
        from dask.distributed import wait
        try:
            done, _ = wait(list(handles), timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return []
        return [handle for handle in handles if handle in done]

    def keep(self, handle: Any) -> Any:
        if handle.status == "error":
            handle.result()  # raises the task's exception here
        return handle  # explanations stay on their worker; flip tasks name the futures

    def result(self, handle: Any) -> Any:
        return handle.result()

    def running(self, handles: Sequence[Any]) -> int:
        """Tasks of this sweep that workers are processing (asked of the scheduler at most once a second)."""
        when, count = self._running
        if time.monotonic() - when > 1.0:
            try:
                processing = self.client.processing()
                count = sum(min(sum(str(key).startswith(self.prefix) for key in keys), self._worker_threads(worker))
                            for worker, keys in processing.items())
            except Exception:  # progress display only: never fail a sweep over it
                count = min(len(handles), self.workers)
            self._running = (time.monotonic(), count)
        return count

    def cancel(self, handles: Sequence[Any]) -> None:
        if handles:
            self.client.cancel(list(handles))


# --- the driving loop --------------------------------------------------------------------------------------
def _drive(blocks: Sequence[Block], backend: Any, on_result: Callable[[FlipOutcome], None],
           progress: Progress) -> None:
    """Run every block's explain tasks, then its flip tasks; hand each flip outcome to ``on_result``."""
    pending = collections.deque(blocks)
    explains: collections.deque = collections.deque()   # (block number, task)
    flips: collections.deque = collections.deque()      # (block number, task)
    parts: dict[int, list[Any]] = {}
    explains_left: dict[int, int] = {}
    flips_left: dict[int, int] = {}
    block_flips: dict[int, tuple[FlipTask, ...]] = {}
    in_flight: dict[Any, tuple[str, int, Any]] = {}
    number = 0
    try:
        while pending or explains or flips or in_flight:
            limit = max(2, 2 * backend.workers)
            while len(in_flight) < limit and (flips or explains or pending):
                if flips:
                    block, task = flips.popleft()
                    in_flight[backend.flip(task, parts[block])] = ("flip", block, task)
                elif explains:
                    block, task = explains.popleft()
                    in_flight[backend.explain(task)] = ("explain", block, task)
                else:
                    current = pending.popleft()
                    number += 1
                    parts[number], explains_left[number] = [], len(current.explains)
                    flips_left[number], block_flips[number] = len(current.flips), current.flips
                    explains.extend((number, task) for task in current.explains)
                if isinstance(backend, _Serial):
                    break  # the serial backend ran the task when it was submitted
            handles = list(in_flight)
            for handle in backend.wait(handles, timeout=0.5):
                kind, block, task = in_flight.pop(handle)
                if kind == "explain":
                    kept = backend.keep(handle)  # the explanation itself, or (Dask) its future
                    parts[block].append(kept)
                    progress.finished(task, kept if isinstance(kept, ExplainPart) else None)
                    explains_left[block] -= 1
                    if explains_left[block] == 0:
                        flips.extend((block, flip) for flip in block_flips.pop(block))
                else:
                    outcome = backend.result(handle)
                    on_result(outcome)
                    progress.finished(task, outcome)
                    flips_left[block] -= 1
                    if flips_left[block] == 0:
                        del parts[block]  # release the block's explanations (Dask frees them on its workers)
            if not progress.enabled:
                continue  # asking the scheduler what runs costs a round trip: only for a visible line
            if in_flight:
                running = backend.running(list(in_flight))
            else:  # the serial backend: the next task starts as soon as this line is drawn
                running = int(bool(pending or explains or flips))
            progress.show(running=running, workers=backend.workers)
    except BaseException:
        backend.cancel(list(in_flight))
        raise


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While a sweep runs in the main thread, SIGTERM raises :class:`SweepTerminated` so that cleanup runs."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise SweepTerminated(128 + signum)
    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


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


def _stop_pool(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Stop a pool now: cancel what is queued and terminate the worker processes (they may be mid-task)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python ≥ 3.14
    if terminate is not None:
        terminate()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()


@contextlib.contextmanager
def _process_pool(payload: dict[str, Any], workers: int) -> Iterator[_Pool]:
    context = multiprocessing.get_context("spawn")
    with _single_threaded_blas_children():
        pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                                      initializer=_init_pool_worker, initargs=(payload, os.getpid()))
        # start every worker now, while the BLAS variables are set (the pool would spawn them on submit)
        for _ in concurrent.futures.as_completed([pool.submit(os.getpid) for _ in range(workers)]):
            pass
    try:
        yield _Pool(pool, workers)
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


#: Dask settings of :func:`local_cluster` (also good for the workers of a cluster that runs sweeps).
LOCAL_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
}


def local_cluster(workers: int = 2) -> tuple[Any, Any]:
    """(cluster, client): the ``LocalCluster`` that ``executor="dask"`` starts, to reuse it across sweeps.

    ``workers`` processes with one thread each on 127.0.0.1, no dashboard, no statistical profiler
    (it samples every worker thread's stack every 10 ms), and Dask's housekeeping at a slower pace:
    the event-loop health tick every 1 s instead of 20 ms, memory checks every 1 s instead of
    100 ms, system metrics every 2 s. Measured on an idle 2-worker cluster: this process (scheduler,
    nannies, client) 4 % → 1 % of a core, the workers 5–9 % → 1 %, CPU the sweep's tasks get instead.
    Close both when done.
    """
    import dask
    from dask.distributed import Client, LocalCluster
    with dask.config.set(LOCAL_CLUSTER_CONFIG):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
        return cluster, Client(cluster)


@contextlib.contextmanager
def _dask_backend(executor: Any, scheduler: str | None, workers: int, payload: dict[str, Any]) -> Iterator[_Dask]:
    try:
        from dask.distributed import Client
    except ImportError:
        raise ImportError('executor="dask" needs dask.distributed: pip install "dask[distributed]"') from None
    cluster = None
    if isinstance(executor, Client):
        client = executor
    elif scheduler:
        client = Client(scheduler)
    else:
        cluster, client = local_cluster(workers)
    try:
        yield _Dask(client, payload)
    finally:
        if client is not executor:
            client.close()
        if cluster is not None:
            cluster.close()


def _is_dask_client(executor: Any) -> bool:
    return type(executor).__name__ == "Client" and type(executor).__module__.startswith("distributed")


@contextlib.contextmanager
def _backend(executor: Any, payload: dict[str, Any], workers: int | None, scheduler: str | None) -> Iterator[Any]:
    if executor in (None, "serial"):
        if scheduler:
            raise ValueError("scheduler is only used with executor='dask'")
        yield _Serial(payload)
    elif executor == "processes":
        with _process_pool(payload, workers or 2) as backend:
            yield backend
    elif executor == "dask" or _is_dask_client(executor):
        with _dask_backend(executor, scheduler, workers or 2, payload) as backend:
            yield backend
    else:
        raise ValueError(f"executor must be None, 'serial', 'processes', 'dask' or a dask.distributed.Client, "
                         f"got {executor!r}")


#: A serial sweep whose progress is shown cuts its work as for this many workers (finer progress steps).
SERIAL_PROGRESS_SHARES = 4


def run_plan(make_plan: Callable[[int], Sequence[Block]], payload: dict[str, Any],
             on_result: Callable[[FlipOutcome], None], executor: Any = None, workers: int | None = None,
             scheduler: str | None = None, progress: Progress | None = None) -> None:
    """Run the blocks ``make_plan(workers)`` on ``executor``; call ``on_result(outcome)`` here for each flip task.

    ``make_plan`` gets the number of tasks the executor runs at once (for Dask: the cluster's
    worker threads when the sweep starts), so that tasks are sized for it.
    """
    if executor not in EXECUTORS and not _is_dask_client(executor):
        raise ValueError(f"executor must be None, 'serial', 'processes', 'dask' or a dask.distributed.Client, "
                         f"got {executor!r}")
    if executor in (None, "serial") and scheduler:
        raise ValueError("scheduler is only used with executor='dask'")
    if executor in (None, "serial"):
        # shown progress moves at a finer grain when tasks are cut as for a few workers (the cut never changes
        # the table; it costs one forward pass per extra explain task)
        blocks = make_plan(SERIAL_PROGRESS_SHARES if progress is not None and progress.enabled else 1)
    elif executor == "processes":
        blocks = make_plan(workers or 2)
    else:
        blocks = None  # sized once the cluster is known
    if blocks is not None and not blocks:
        return
    progress = progress or Progress(enabled=False)
    with _sigterm_raises(), _backend(executor, payload, workers, scheduler) as backend:
        if blocks is None:
            blocks = make_plan(backend.workers)
            if not blocks:
                return
        progress.start(blocks)
        try:
            _drive(blocks, backend, on_result, progress)
        finally:
            progress.close()
