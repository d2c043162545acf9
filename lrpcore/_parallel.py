"""Batch splitting across threads for NumPy: each thread runs a layer (or its LRP rule) on a share of the samples.

Why: NumPy runs its element-wise passes (im2col copies, col2im, the rules' divisions and
masks) on one core, and only the matrix products use BLAS threads. On a 2-core machine
that leaves a core idle most of the time. LRP treats samples independently, so the batch
can be cut into one share per BLAS thread; each share runs in its own Python thread (NumPy
releases the GIL inside its loops) with BLAS limited to one thread, and writes its rows of
a preallocated result. Every number is computed exactly as in the serial pass: per-sample
matrix products have the same shapes, and the rules that may be split (those whose
``Rule.per_sample`` is true; the caller decides) never mix samples.

It is used only where it cannot change results or surprise the caller: NumPy arrays, a
batch of at least two, ``threadpoolctl`` available (to hold BLAS at one thread per share)
and BLAS itself allowed more than one thread (a process pool that pinned BLAS to one thread
keeps its serial pass).

Where the batch cannot be cut (one sample, a trace, a rule that mixes samples), the same
threads run the blocks of each convolution instead (:func:`block_runner`): the row blocks of
the im2col products and the channel groups of col2im, whose layout never depends on the
thread count, so again every number equals the serial pass's.

Outside ``explain`` (``model.forward``, a layer called directly), a convolution called from the
main thread runs its blocks on a shared pool of as many threads as BLAS may use, BLAS held at
one thread meanwhile (:func:`conv_runner`); with one BLAS thread
(``threadpoolctl.threadpool_limits(1)``) or from any other thread, its blocks run serially.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

__all__ = ["BatchSplit", "BlockRunner", "batch_split", "block_runner", "conv_runner"]


@functools.lru_cache(maxsize=1)
def _controller() -> Any:
    try:
        import threadpoolctl
    except ImportError:
        return None
    return threadpoolctl.ThreadpoolController()


def _blas_threads() -> int:
    """Threads the BLAS libraries loaded in this process may use now (1 if that cannot be controlled)."""
    controller = _controller()
    if controller is None:
        return 1
    blas = controller.select(user_api="blas")
    counts = [info.get("num_threads", 1) for info in blas.info()]
    return max(counts) if counts else 1


def _is_numpy(xp: Any) -> bool:
    name = getattr(xp, "__name__", "")
    return name in ("numpy", "array_api_compat.numpy")


class BatchSplit:
    """Contiguous shares of a batch, one per worker thread; :meth:`run` calls ``work(share)`` for all of them."""

    def __init__(self, batch: int, workers: int, pool: ThreadPoolExecutor):
        bounds = [batch * index // workers for index in range(workers + 1)]
        self.shares = [slice(start, stop) for start, stop in zip(bounds[:-1], bounds[1:]) if stop > start]
        self._pool = pool

    def run(self, work: Callable[[slice], Any]) -> list[Any]:
        """``[work(share) for share in shares]``, computed concurrently; the first error is re-raised."""
        return _concurrently(self._pool, work, self.shares)


class BlockRunner:
    """Runs independent blocks of one layer operation on the worker threads (see :func:`block_runner`)."""

    def __init__(self, pool: ThreadPoolExecutor):
        self._pool = pool

    def map(self, work: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        """``[work(item) for item in items]``, computed concurrently; the first error is re-raised."""
        return _concurrently(self._pool, work, items)


def _concurrently(pool: ThreadPoolExecutor, work: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """Run ``work`` on every item in the pool with BLAS held at one thread meanwhile (the threads are
    the parallelism); outside, BLAS keeps its threads for the work that is not cut (dense layers)."""
    with _controller().limit(limits=1, user_api="blas"):
        futures = [pool.submit(work, item) for item in items]
        return [future.result() for future in futures]


_BLOCK_RUNNER: contextvars.ContextVar[BlockRunner | None] = contextvars.ContextVar("lrpcore_block_runner",
                                                                                  default=None)


def block_runner() -> BlockRunner | None:
    """The runner for convolution blocks while :func:`batch_split` lends its threads to them, else None
    (worker threads see None too: blocks never nest)."""
    return _BLOCK_RUNNER.get()


_SHARED: dict[int, BlockRunner] = {}
_SHARED_LOCK = threading.Lock()


def conv_runner(xp: Any) -> BlockRunner | None:
    """The runner for a convolution's blocks: :func:`block_runner` inside ``explain``; outside it, for
    NumPy arrays in the main thread with BLAS allowed two threads or more, a shared pool of that many
    threads (created once); else None (the blocks run one after the other)."""
    runner = _BLOCK_RUNNER.get()
    if runner is not None or not _is_numpy(xp) or threading.current_thread() is not threading.main_thread():
        return runner
    if _controller() is None:
        return None
    threads = _blas_threads()
    if threads < 2:
        return None
    with _SHARED_LOCK:
        if threads not in _SHARED:
            _SHARED[threads] = BlockRunner(ThreadPoolExecutor(max_workers=threads,
                                                              thread_name_prefix="lrpcore-conv"))
        return _SHARED[threads]


@contextlib.contextmanager
def batch_split(xp: Any, batch: int, allowed: bool = True) -> Iterator[BatchSplit | None]:
    """A :class:`BatchSplit` over as many threads as BLAS may use (BLAS held at one thread while they
    run), or None where the batch is not cut (not NumPy, no threadpoolctl, one BLAS thread, one sample or
    ``allowed`` false). In the last two cases the threads, if any, serve :func:`block_runner` instead."""
    threads = _blas_threads() if _is_numpy(xp) else 1
    if threads < 2:
        yield None
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        if allowed and batch > 1:
            yield BatchSplit(batch, min(threads, batch), pool)
            return
        token = _BLOCK_RUNNER.set(BlockRunner(pool))
        try:
            yield None
        finally:
            _BLOCK_RUNNER.reset(token)
