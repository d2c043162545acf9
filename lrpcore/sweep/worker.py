"""What a sweep does to the worker processes it runs in: the allocator, thread pools, and dying with the parent.

Measured on the sweep benchmark (``tools/BENCHMARKS.md``, sweep section), a Dask worker spent
about twice the CPU time of the main process on the identical task. The causes, and what is
done about each while a sweep task runs (:func:`task_environment`):

- **The allocator.** Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``
  (``distributed.nanny.pre-spawn-environ``) so that they hand freed memory back to the OS.
  Setting any of glibc's malloc variables also switches off its dynamic mmap threshold, so
  every array above 128 KiB is a fresh ``mmap`` whose pages fault in zero-filled, and the heap
  top is trimmed after every free: about 850 000 page faults per task instead of 2 000, and
  1.6–2.6 s of system time on a 2 s task. While a task runs, the thresholds are set to the
  most glibc's dynamic mode reaches (mmap 32 MiB, trim 64 MiB) with ``mallopt``; that also
  beats the dynamic mode's slow climb (measured: 12 000 page faults on an explain task where
  a plain process takes 100 000–160 000). When the last task ends, the worker's own settings
  are put back (glibc's static defaults where it has none) and ``malloc_trim(0)`` returns the
  free memory, so between tasks the worker keeps what its operator asked for. glibc only.
- **BLAS and OpenMP threads.** A worker runs one task per worker thread; BLAS threads on top
  of that oversubscribe the cores (15× slower forward passes were measured on a busy 2-core
  machine). Dask's nanny sets ``OPENBLAS_NUM_THREADS=1`` etc.; workers started without it (or
  threads in a user's own process) are held at one BLAS/OpenMP thread during the task with
  ``threadpoolctl``, unless the user set one of those variables.
- **OpenCV's thread pool** is set to one thread during the task (``cv2.setNumThreads``).
  Telea inpainting is single-threaded (same CPU time with 1 or 2 threads, measured), so this
  only guards OpenCV calls that do use the pool.

Process-pool workers also die with the process that started them (:func:`die_with_parent`),
so killing a sweep — even with SIGKILL — never leaves workers behind (Dask's own worker
processes already exit when their nanny or ``LocalCluster`` parent goes).
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import signal
import sys
import threading
import time
from typing import Any, Iterator

__all__ = ["task_environment", "die_with_parent"]

_BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_THRESHOLD_DEFAULT = 128 * 1024           # glibc's static default of both
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024    # the most glibc's dynamic mode raises the mmap threshold to (64-bit)
_TRIM_THRESHOLD = 2 * _MMAP_THRESHOLD_MAX  # what dynamic mode pairs with it

_lock = threading.Lock()
_active = 0
_restore: list[Any] = []


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return None
    return libc


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ[name])
    except (KeyError, ValueError):
        return default


def _keep_freed_memory() -> Any:
    """Raise glibc's trim and mmap thresholds for the task; returns the undo, or None where that is not possible."""
    libc = _libc()
    if libc is None:
        return None
    if not (libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)):
        return None
    # back to the worker's own setting (glibc's static defaults where it has none)
    trim = _env_int("MALLOC_TRIM_THRESHOLD_", _THRESHOLD_DEFAULT)
    mmap = _env_int("MALLOC_MMAP_THRESHOLD_", _THRESHOLD_DEFAULT)

    def undo() -> None:
        libc.mallopt(_M_MMAP_THRESHOLD, mmap)
        libc.mallopt(_M_TRIM_THRESHOLD, trim)
        libc.malloc_trim(0)
    return undo


def _one_thread_each() -> list[Any]:
    """Hold BLAS/OpenMP (unless the user set their variables) and OpenCV at one thread; returns the undos."""
    undos: list[Any] = []
    try:  # first: OpenCV's wheels bring their own OpenBLAS, which must be loaded before the limits are set
        import cv2
    except ImportError:
        cv2 = None
    if cv2 is not None and hasattr(cv2, "setNumThreads"):
        before = cv2.getNumThreads()
        if before != 1:
            cv2.setNumThreads(1)
            undos.append(lambda: cv2.setNumThreads(before))
    if not any(name in os.environ for name in _BLAS_VARIABLES):
        try:
            import threadpoolctl
        except ImportError:
            return undos
        # a fresh controller each time (about 3 ms): libraries loaded since the last task are included
        undos.append(threadpoolctl.ThreadpoolController().limit(limits=1).restore_original_limits)
    return undos


@contextlib.contextmanager
def task_environment() -> Iterator[None]:
    """Run a sweep task in a worker with the allocator and thread settings above; restore them when the last ends.

    Nested and concurrent tasks (a Dask worker with several threads) share one setting: it is
    made when the first task starts and undone when the last one ends.
    """
    global _active
    with _lock:
        _active += 1
        if _active == 1:
            undo = _keep_freed_memory()
            _restore[:] = ([undo] if undo is not None else []) + _one_thread_each()
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                for undo in reversed(_restore):
                    undo()
                _restore.clear()


def die_with_parent(parent_pid: int) -> None:
    """Make this process exit when ``parent_pid`` does (called first thing in a pool worker).

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, so the kernel kills the worker the moment its
    parent dies, SIGKILL included. Elsewhere a daemon thread checks the parent once a second.
    Either way a worker that finds its parent already gone exits at once.
    """
    libc = _libc()
    armed = False
    if libc is not None:
        try:
            armed = libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0  # PR_SET_PDEATHSIG = 1
        except AttributeError:
            armed = False
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    if armed:
        return

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)
    threading.Thread(target=watch, name="lrpcore-parent-watch", daemon=True).start()
