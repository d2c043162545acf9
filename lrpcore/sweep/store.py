"""Where a sweep keeps its results: ``out/manifest.json`` and ``out/results.csv``, appended task by task.

Layout of the output directory:

- ``manifest.json``: what is being swept — parameter names and values, composite, pixel-flipping
  settings, image ids, block sizes and fingerprints of the model weights and the images. A
  sweep resumes only into a directory whose manifest matches; a different sweep there is an
  error (nothing a user wrote is overwritten unless ``overwrite=True``).
- ``results.csv``: the tidy table, one row per configuration × image × sort, columns
  ``config, <param names...>, image, target, sort, auc, auc_normalised, score``
  (``score``: the explained target score s_0 of the unperturbed image; ``auc_normalised`` is
  empty where s_0 ≤ 0). Each finished task's rows are written with one ``write`` and flushed
  to disk, so an interrupted sweep leaves whole tasks; a torn last line (killed mid-write) is
  cut off when the sweep resumes.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..backend import to_numpy
from ..errors import InputValueError

__all__ = ["SweepStore", "fingerprint", "FIXED_COLUMNS"]

MANIFEST = "manifest.json"
RESULTS = "results.csv"
FIXED_COLUMNS = ("image", "target", "sort", "auc", "auc_normalised", "score")


def fingerprint(arrays: Iterable[Any]) -> str:
    """SHA-1 over the shapes, dtypes and bytes of ``arrays`` (model weights, images)."""
    digest = hashlib.sha1()
    for array in arrays:
        host = np.ascontiguousarray(np.asarray(to_numpy(array)))
        digest.update(f"{host.shape}{host.dtype}".encode())
        digest.update(host.tobytes())
    return digest.hexdigest()


def _format(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(float(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


class SweepStore:
    """The output directory of one sweep."""

    def __init__(self, directory: str | os.PathLike, param_names: Sequence[str]):
        self.directory = Path(directory)
        self.param_names = list(param_names)
        self.columns = ["config"] + self.param_names + list(FIXED_COLUMNS)

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST

    @property
    def results_path(self) -> Path:
        return self.directory / RESULTS

    def open(self, manifest: dict[str, Any], overwrite: bool = False) -> None:
        """Start a new sweep here, or resume the same sweep; refuse a different one."""
        self.directory.mkdir(parents=True, exist_ok=True)
        canonical = json.loads(json.dumps(manifest))
        if self.manifest_path.exists() and not overwrite:
            try:
                stored = json.loads(self.manifest_path.read_text())
            except json.JSONDecodeError as error:
                raise InputValueError(f"{self.manifest_path} is not valid JSON ({error}); "
                                      "choose another output directory or pass overwrite=True") from None
            if stored != canonical:
                changed = sorted(key for key in set(stored) | set(canonical) if stored.get(key) != canonical.get(key))
                raise InputValueError(f"{self.manifest_path} describes a different sweep (differs in {changed}); "
                                      "choose another output directory or pass overwrite=True")
        elif self.results_path.exists() and not overwrite:
            raise InputValueError(f"{self.results_path} exists without {MANIFEST}; it was not written by this "
                                  "sweep. Choose another output directory or pass overwrite=True")
        else:
            if self.results_path.exists():
                self.results_path.unlink()
            self.manifest_path.write_text(json.dumps(canonical, indent=1))
        if not self.results_path.exists():
            with open(self.results_path, "w", newline="") as handle:
                csv.writer(handle).writerow(self.columns)
        self._cut_torn_line()

    def _cut_torn_line(self) -> None:
        data = self.results_path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.results_path, "r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)

    def append(self, rows: Sequence[Sequence[Any]]) -> None:
        """Append one task's rows in a single write, flushed to disk."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for row in rows:
            writer.writerow([_format(value) for value in row])
        with open(self.results_path, "a", newline="") as handle:
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())

    def load(self) -> dict[str, np.ndarray]:
        """The stored table as columns (NumPy arrays); empty columns when nothing is stored."""
        with open(self.results_path, newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header != self.columns:
                raise InputValueError(f"{self.results_path} has columns {header}, expected {self.columns}")
            rows = [row for row in reader if len(row) == len(self.columns)]
        # a task recomputed after a torn write appends its rows again: keep the last copy of each
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
