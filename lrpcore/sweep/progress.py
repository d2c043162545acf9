"""Progress of a sweep: tasks done, tasks running, and an estimate of the time left.

Shown on a terminal (or in a notebook) as one tqdm line, e.g.
``sweep: 12/29 tasks |█████▌     | 2 running, ~38 s left``; nothing is written when standard
error is a pipe or a file. Every finished task's :class:`~lrpcore.sweep.tasks.TaskTiming` is
kept in :attr:`Progress.timings` (the sweep result carries them).

The estimate: each kind of task (explain, flip) has a cost per unit (heatmap) measured on the
workers, the wall time of its finished tasks over their units; the work left is the units not
yet finished times that cost, shared among the workers. Before a kind has been measured it is
assumed to cost what the other kind costs; before anything has been measured, the elapsed
time per finished unit is used. It is an estimate: it ignores the part of running tasks already
done and assumes every worker stays busy.
"""
from __future__ import annotations

import shutil
import sys
import time
from typing import Any, Callable, Sequence

__all__ = ["Progress", "format_seconds"]


def format_seconds(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (where tqdm.auto draws a widget), not merely when ipykernel was imported."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def _interactive(stream: Any) -> bool:
    if _in_notebook():
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed stream
        return False


class Progress:
    """Counts a sweep's tasks and shows them; ``enabled=None`` shows them only on a terminal or in a notebook."""

    def __init__(self, enabled: bool | None = None, stream: Any = None, clock: Callable[[], float] = time.monotonic,
                 refresh: float = 0.25):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = _interactive(self.stream) if enabled is None else bool(enabled)
        self.clock, self.refresh = clock, refresh
        self.timings: list[Any] = []
        self._seen: set[Any] = set()
        self.total = {"explain": 0, "flip": 0}
        self.units = {"explain": 0, "flip": 0}
        self.done = {"explain": 0, "flip": 0}
        self.done_units = {"explain": 0, "flip": 0}
        self.seconds = {"explain": 0.0, "flip": 0.0}
        self.measured_units = {"explain": 0, "flip": 0}
        self.running = 0
        self.workers = 1
        self._started = self._drawn = None
        self._bar = None

    # --- counting ---------------------------------------------------------------------------------------
    def start(self, blocks: Sequence[Any]) -> None:
        for block in blocks:
            for kind, tasks in (("explain", block.explains), ("flip", block.flips)):
                self.total[kind] += len(tasks)
                self.units[kind] += sum(task.units for task in tasks)
        self._started = self.clock()
        if self.enabled:
            from .._progress import tqdm_class

            tqdm = tqdm_class()
            # the size once, with a fallback: a terminal without a size (some ptys) reports 0 × 0, and tqdm then
            # draws nothing at all (its bar lies below the last of 0 rows)
            size = shutil.get_terminal_size((100, 24))
            self._bar = tqdm(total=self.total_tasks, file=self.stream, desc="sweep", unit="task", leave=True,
                             bar_format=self._format("time left unknown"), ncols=size.columns,
                             nrows=size.lines)

    @property
    def total_tasks(self) -> int:
        return self.total["explain"] + self.total["flip"]

    @property
    def done_tasks(self) -> int:
        return self.done["explain"] + self.done["flip"]

    def _record(self, timing: Any) -> None:
        if timing is None or timing.task in self._seen:
            return
        self._seen.add(timing.task)
        self.timings.append(timing)
        self.seconds[timing.kind] += timing.wall
        self.measured_units[timing.kind] += timing.units

    def finished(self, task: Any, result: Any = None) -> None:
        """A task finished; ``result`` (an explain part or flip outcome, if at hand) carries its timing."""
        kind = "flip" if hasattr(task, "images") else "explain"
        self.done[kind] += 1
        self.done_units[kind] += task.units
        self._record(getattr(result, "timing", None))
        for timing in getattr(result, "explain_timings", ()):  # Dask: explanations never come here, their timings do
            self._record(timing)
        if self._bar is not None:
            self._bar.update(1)

    # --- the estimate -------------------------------------------------------------------------------------
    def seconds_left(self) -> float | None:
        """Estimated seconds until every task is done, or None before anything has finished."""
        rates = {kind: self.seconds[kind] / self.measured_units[kind]
                 for kind in self.seconds if self.measured_units[kind]}
        left_units = {kind: self.units[kind] - self.done_units[kind] for kind in self.units}
        if not rates:
            finished = sum(self.done_units.values())
            if not finished or self._started is None:
                return None
            return (self.clock() - self._started) * sum(left_units.values()) / finished
        fallback = sum(rates.values()) / len(rates)
        work = sum(left_units[kind] * rates.get(kind, fallback) for kind in left_units)
        return work / max(1, self.workers)

    def line(self) -> str:
        """``12/29 tasks done, 2 running, ~38 s left``."""
        left = self.seconds_left()
        estimate = "time left unknown" if left is None else f"~{format_seconds(left)} left"
        return f"{self.done_tasks}/{self.total_tasks} tasks done, {self.running} running, {estimate}"

    # --- display ------------------------------------------------------------------------------------------
    def show(self, running: int, workers: int) -> None:
        self.running, self.workers = int(running), max(1, int(workers))
        if self._bar is None:
            return
        now = self.clock()
        if self._drawn is not None and now - self._drawn < self.refresh:
            return
        self._drawn = now
        left = self.seconds_left()
        estimate = "time left unknown" if left is None else f"~{format_seconds(left)} left"
        self._bar.bar_format = self._format(f"{self.running} running, {estimate}")
        self._bar.refresh()

    @staticmethod
    def _format(text: str) -> str:
        """tqdm's line: ``sweep: 12/29 tasks |█████▌     | 2 running, ~38 s left``."""
        return "{desc}: {n}/{total} tasks |{bar}| " + text.replace("{", "{{").replace("}", "}}")

    def close(self) -> None:
        if self._bar is not None:
            self.running = 0
            elapsed = self.clock() - (self._started or self.clock())
            self._bar.bar_format = self._format(f"done in {format_seconds(elapsed)}")
            self._bar.refresh()
            self._bar.close()
            self._bar = None
