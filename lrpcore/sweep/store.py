"""Where a sweep keeps its results: ``out/manifest.json``, ``out/results.csv`` and its journal, task by task.

Layout of the output directory:

- ``manifest.json``: what is being swept — parameter names and values, composite, pixel-flipping
  settings, image ids, block sizes and fingerprints of the model weights and the images. A
  sweep resumes only into a directory whose manifest matches; a different sweep there is an
  error (nothing a user wrote is overwritten unless ``overwrite=True``).
- ``results.csv``: the tidy table, one row per configuration × image × sort, columns
  ``config, <param names...>, image, target, sort, auc, auc_normalised, score``
  (``score``: the explained target score s_0 of the unperturbed image; ``auc_normalised`` is
  empty where s_0 ≤ 0).
- ``results.journal``: one line ``<end offset> <task key>`` per task whose rows are complete in
  ``results.csv`` (the first line, ``<offset> header``, covers the header row).
- ``sweep.lock``: held (``fcntl.flock``) by the sweep writing here; it names that sweep's process,
  host and start time.

How a task's rows become durable, all or nothing: they are written at the committed end of
``results.csv`` in one ``write`` and ``fsync``-ed; only then the task's journal line is appended
and ``fsync``-ed. Whatever stops a sweep — a kill, a full disk, a power cut — the journal's last
complete line says where the complete tasks end. A failed write is undone at once (the file is
cut back to that point), and opening the store again cuts off anything after it (rows of a task
whose journal line is missing, a torn journal line). Resuming therefore never stores a task twice:
a task is computed again only when it is not in the journal, and a task already in the journal is
never appended again (deduplication by the task key). A second sweep into the same folder is
refused while the first holds the lock, naming the holder.

``overwrite=True`` replaces a *different* sweep's results; on the same sweep it resumes (the
manifest matches, so there is nothing of another sweep to replace). ``restart=True`` discards
whatever the folder holds and starts from zero.
"""
from __future__ import annotations

import contextlib
import csv
import datetime
import errno
import hashlib
import io
import json
import math
import os
import socket
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .. import _atomic
from ..backend import to_numpy
from ..errors import InputValueError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock
    fcntl = None  # type: ignore[assignment]

__all__ = ["SweepStore", "fingerprint", "task_key", "FIXED_COLUMNS"]

MANIFEST = "manifest.json"
RESULTS = "results.csv"
JOURNAL = "results.journal"
LOCK = "sweep.lock"
FIXED_COLUMNS = ("image", "target", "sort", "auc", "auc_normalised", "score")
_HEADER_KEY = "header"
_LEGACY_KEY = "rows written before the journal"


def fingerprint(arrays: Iterable[Any]) -> str:
    """SHA-1 over the shapes, dtypes and bytes of ``arrays`` (model weights, images)."""
    digest = hashlib.sha1()
    for array in arrays:
        host = np.ascontiguousarray(np.asarray(to_numpy(array)))
        digest.update(f"{host.shape}{host.dtype}".encode())
        digest.update(host.tobytes())
    return digest.hexdigest()


def format_value(value: Any) -> str:
    """A table value as the CSV files store it: floats exactly (repr), NaN as an empty field."""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(float(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def _span(values: Sequence[int]) -> str:
    values = [int(value) for value in values]
    if values and values == list(range(values[0], values[0] + len(values))):
        return f"{values[0]}-{values[-1]}"
    return ",".join(map(str, values))


def task_key(task: Any) -> str:
    """The journal's name of a task ``(configs, (start, stop))``: "configs 0-4 images 0-3"."""
    configs, (start, stop) = task
    return f"configs {_span(configs)} images {start}-{stop - 1}"


def images_key(image_ids: Sequence[int]) -> str:
    """The journal's name of a flip task: the ids of the images it flipped under every configuration."""
    return f"images {_span(sorted(int(value) for value in image_ids))}"


def _rows_key(rows: Sequence[Sequence[Any]]) -> str:
    """A task key derived from its rows (for :meth:`SweepStore.append` without a task): the configurations
    and a digest of every row's (config, image, sort)."""
    configs = sorted({int(row[0]) for row in rows})
    keys = sorted((format_value(row[0]), format_value(row[-6]), format_value(row[-4])) for row in rows)
    return f"rows of configs {_span(configs)} {hashlib.sha1(repr(keys).encode()).hexdigest()[:12]}"


class SweepStore:
    """The output directory of one sweep (use :meth:`open` … :meth:`close`, or ``with``)."""

    def __init__(self, directory: str | os.PathLike, param_names: Sequence[str]):
        self.directory = Path(directory)
        self.param_names = list(param_names)
        self.columns = ["config"] + self.param_names + list(FIXED_COLUMNS)
        self._lock_descriptor: int | None = None
        self._end = 0                     # committed end of results.csv
        self._journal_end = 0             # bytes of valid journal lines
        self._committed: set[str] = set()
        self.started_afresh = False       # set by open(): nothing of an earlier sweep was kept

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST

    @property
    def results_path(self) -> Path:
        return self.directory / RESULTS

    @property
    def journal_path(self) -> Path:
        return self.directory / JOURNAL

    @property
    def lock_path(self) -> Path:
        return self.directory / LOCK

    # --- the lock ---------------------------------------------------------------------------------
    def _acquire(self) -> None:
        if fcntl is None or self._lock_descriptor is not None:  # pragma: no cover
            return
        descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = b""
            with contextlib.suppress(OSError):
                holder = os.pread(descriptor, 4096, 0)
            os.close(descriptor)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            described = holder.decode("utf-8", "replace").strip() or "a process that did not say who it is"
            raise InputValueError(f"{self.directory} is in use by another sweep ({described}); wait for it to "
                                  "finish or choose another output directory") from None
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        with contextlib.suppress(OSError):  # who holds it, for the message of a second sweep
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n".encode(), 0)
        self._lock_descriptor = descriptor

    def close(self) -> None:
        """Release the folder's lock (the process exiting releases it too)."""
        if self._lock_descriptor is not None:
            os.close(self._lock_descriptor)
            self._lock_descriptor = None

    def __del__(self) -> None:  # a store dropped without close() (an error before the sweep ran) unlocks too
        with contextlib.suppress(Exception):
            self.close()

    def __enter__(self) -> "SweepStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- opening ------------------------------------------------------------------------------------
    def open(self, manifest: dict[str, Any], overwrite: bool = False, restart: bool = False) -> None:
        """Lock the folder, then start a new sweep here, resume the same sweep, or refuse a different one.

        ``overwrite``: replace a different sweep's results (the same sweep resumes). ``restart``:
        discard whatever is stored and start from zero.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        self._acquire()
        try:
            self._open(json.loads(json.dumps(manifest)), overwrite, restart)
        except BaseException:
            self.close()
            raise

    def _open(self, canonical: dict[str, Any], overwrite: bool, restart: bool) -> None:
        discard = restart
        if self.manifest_path.exists():
            try:
                stored = json.loads(self.manifest_path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                if not (overwrite or restart):
                    raise InputValueError(f"{self.manifest_path} is not valid JSON ({error}); choose another "
                                          "output directory or pass overwrite=True") from None
                stored, discard = None, True
            if stored is not None and stored != canonical:
                if not (overwrite or restart):
                    changed = sorted(key for key in set(stored) | set(canonical)
                                     if stored.get(key) != canonical.get(key)) if isinstance(stored, dict) else []
                    raise InputValueError(f"{self.manifest_path} describes a different sweep (differs in {changed}); "
                                          "choose another output directory or pass overwrite=True")
                discard = True
        elif self.results_path.exists():
            if not (overwrite or restart):
                raise InputValueError(f"{self.results_path} exists without {MANIFEST}; it was not written by this "
                                      "sweep. Choose another output directory or pass overwrite=True")
            discard = True
        else:
            discard = True  # nothing stored yet: a new sweep
        self.started_afresh = discard     # (a sweep's other files in ``out``, such as baselines.csv, are stale)
        if discard:
            for path in (self.journal_path, self.results_path):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            _atomic.write_text(self.manifest_path, json.dumps(canonical, indent=1), overwrite=True)
        if not self.results_path.exists():
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerow(self.columns)
            header = buffer.getvalue().encode()
            _atomic.write_bytes(self.results_path, header, overwrite=True)
            _atomic.write_text(self.journal_path, f"{len(header)} {_HEADER_KEY}\n", overwrite=True)
        self._recover()

    def _read_journal(self, size: int) -> tuple[list[tuple[int, str]], int]:
        """Valid journal records (offsets increasing and within ``size``) and the bytes they take."""
        try:
            data = self.journal_path.read_bytes()
        except FileNotFoundError:
            return [], -1
        records: list[tuple[int, str]] = []
        used = 0
        previous = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            offset, _, key = line.decode("utf-8", "replace").rstrip("\n").partition(" ")
            if not offset.isdigit() or not key or int(offset) < previous or int(offset) > size:
                break
            previous = int(offset)
            records.append((previous, key))
            used += len(line)
        return records, used

    def _recover(self) -> None:
        """Cut ``results.csv`` back to its last complete task, and the journal to its valid lines."""
        size = self.results_path.stat().st_size
        records, used = self._read_journal(size)
        if used < 0:  # a folder of a sweep written before the journal: keep its whole lines
            data = self.results_path.read_bytes()
            records = [(data.rfind(b"\n") + 1, _LEGACY_KEY)]
        if not records:
            raise InputValueError(f"{self.journal_path} does not describe {self.results_path}; pass restart=True "
                                  "(--restart) to start this sweep again")
        end = records[-1][0]
        if size > end:
            with open(self.results_path, "r+b") as handle:
                handle.truncate(end)
                handle.flush()
                os.fsync(handle.fileno())
        journal = "".join(f"{offset} {key}\n" for offset, key in records).encode()
        if used < 0 or self.journal_path.read_bytes() != journal:  # drop a torn or stale tail, atomically
            _atomic.write_bytes(self.journal_path, journal, overwrite=True)
        self._end = end
        self._journal_end = len(journal)
        self._committed = {key for _, key in records}

    # --- writing ------------------------------------------------------------------------------------
    def commit(self, key: str, rows: Sequence[Sequence[Any]]) -> bool:
        """Store one task's rows durably, all or nothing; False (nothing written) if task ``key`` is stored."""
        if key in self._committed:
            return False
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for row in rows:
            writer.writerow([format_value(value) for value in row])
        data = buffer.getvalue().encode()
        self._write_at_end(self.results_path, self._end, data)
        line = f"{self._end + len(data)} {key}\n".encode()
        try:
            self._write_at_end(self.journal_path, self._journal_end, line)
        except BaseException:
            with contextlib.suppress(OSError):
                os.truncate(self.results_path, self._end)
            raise
        self._end += len(data)
        self._journal_end += len(line)
        self._committed.add(key)
        return True

    def append(self, rows: Sequence[Sequence[Any]]) -> None:
        """Store rows as one task (keyed by the rows themselves); see :meth:`commit`."""
        self.commit(_rows_key(rows), rows)

    @staticmethod
    def _write_at_end(path: Path, end: int, data: bytes) -> None:
        """Write ``data`` at offset ``end`` of ``path`` and fsync; on failure cut the file back to ``end``."""
        descriptor = os.open(path, os.O_WRONLY)
        try:
            try:
                os.lseek(descriptor, end, os.SEEK_SET)
                _atomic.write_all(descriptor, data)
                os.fsync(descriptor)
            except OSError as error:
                with contextlib.suppress(OSError):
                    os.ftruncate(descriptor, end)
                raise _atomic.OutputError(error.errno, str(path), error.strerror or str(error), kept=True) from None
        finally:
            os.close(descriptor)

    # --- reading --------------------------------------------------------------------------------------
    def _committed_end(self) -> int:
        if self._lock_descriptor is not None:
            return self._end
        size = self.results_path.stat().st_size
        records, used = self._read_journal(size)
        return records[-1][0] if used >= 0 and records else size

    def load(self) -> dict[str, np.ndarray]:
        """The stored table as columns (NumPy arrays); empty columns when nothing is stored.

        Only complete tasks are read (up to the journal's last line).
        """
        end = self._committed_end()
        with open(self.results_path, "rb") as handle:
            data = handle.read(end)
        reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
        header = next(reader, None)
        if header != self.columns:
            raise InputValueError(f"{self.results_path} has columns {header}, expected {self.columns}")
        rows = [row for row in reader if len(row) == len(self.columns)]
        # folders written before the journal may hold a task twice: keep the last copy of each row
        key_positions = [self.columns.index(name) for name in ("config", "image", "sort")]
        latest = {tuple(row[position] for position in key_positions): row for row in rows}
        rows = list(latest.values())
        table: dict[str, np.ndarray] = {}
        for position, name in enumerate(self.columns):
            values = [row[position] for row in rows]
            if name in ("config", "image", "target"):
                table[name] = np.asarray(values, dtype=np.int64)
            elif name == "sort":
                table[name] = np.asarray(values, dtype=object)
            else:
                table[name] = np.asarray([float(value) if value else math.nan for value in values], dtype=np.float64)
        return table

    def done(self, sorts: Sequence[str]) -> set[tuple[int, int]]:
        """(config, image) pairs stored for every sort."""
        table = self.load()
        seen: dict[tuple[int, int], set[str]] = {}
        for config, image, sort in zip(table["config"].tolist(), table["image"].tolist(), table["sort"].tolist()):
            seen.setdefault((config, image), set()).add(sort)
        return {pair for pair, found in seen.items() if set(sorts) <= found}
