"""Methods a sweep is compared with: attribution baselines (and fixed composites) scored exactly like its configurations.

A sweep's table answers "which γ and ε are best?"; a reader also asks "better than what?". Every
method named in ``grid(..., baselines=[...])`` — a baseline of :mod:`lrpcore.baselines`
(``"gradient"``, ``"integrated_gradients"``, ``"occlusion"``, …) or a composite preset
(``"epsilon_plus"``) — explains the same images for the same targets, and its heatmaps go through
the same pixel flipping (:func:`lrpcore.sweep.flipping.flip_scores`, same patches, orders, random
seeds per image id and perturbations), so its AUCs stand beside the configurations' as equals.

Baselines are cheap next to a grid (one attribution per image instead of one per configuration),
so they are computed again on every run, also on a resumed one, and stored whole in
``out/baselines.csv`` (atomically; a ``baselines.csv`` that a sweep did not write is never
replaced).
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import _atomic
from ..backend import to_numpy
from ..errors import InputValueError
from .flipping import FlipSettings, flip_scores, patch_scores
from .store import format_value

__all__ = ["BASELINES_FILE", "COLUMNS", "check_methods", "check_writable", "remove_stale", "score_methods",
           "write_table"]

BASELINES_FILE = "baselines.csv"
COLUMNS = ("method", "image", "target", "sort", "auc", "auc_normalised", "score")


def check_methods(methods: Sequence[str]) -> tuple[str, ...]:
    """The method names, each a baseline or a composite preset, none twice."""
    from ..baselines import BASELINES
    from ..composites import PRESETS

    if isinstance(methods, str):
        methods = (methods,)
    names = tuple(methods)
    for name in names:
        if not isinstance(name, str) or (name not in BASELINES and name not in PRESETS):
            raise InputValueError(f"unknown baseline {name!r}: name a baseline ({', '.join(BASELINES)}) or a "
                                  f"composite preset ({', '.join(sorted(PRESETS))})")
    if len(set(names)) != len(names):
        raise InputValueError(f"baselines repeat a method: {list(names)}")
    return names


def _attribution(model: Any, x: Any, targets: np.ndarray | None, method: str, image_ids: np.ndarray) -> Any:
    """The method's :class:`~lrpcore.baselines.Attribution` of ``x`` (``targets`` None: the predicted classes,
    which it resolves from the unperturbed logits as the sweep does); random draws (SmoothGrad's noise, the
    random attributions) are seeded per image id, as the random sort is, so a block of a sweep gives the
    heatmaps of one big run."""
    import inspect

    from ..baselines import BASELINES, attribute

    parameters = inspect.signature(BASELINES[method]).parameters.values() if method in BASELINES else ()
    seeded = any(parameter.name == "image_ids" or parameter.kind is parameter.VAR_KEYWORD for parameter in parameters)
    options = {"image_ids": image_ids.tolist()} if seeded else {}
    attribution = attribute(model, x, targets, method, **options)
    if not np.all(np.isfinite(to_numpy(attribution.relevance))):
        raise InputValueError(f"baseline {method!r} gave NaN or inf relevance on image ids {image_ids[:10].tolist()}")
    return attribution


def score_methods(model: Any, images: np.ndarray, targets: np.ndarray | None, image_ids: np.ndarray,
                  methods: Sequence[str], settings: FlipSettings, image_block: int) -> dict[str, np.ndarray]:
    """Rows (columns :data:`COLUMNS`) of every method × sort × image (in that order), computed in blocks of
    ``image_block`` images.

    ``targets``: one class per image, or None for the predicted class (as the sweep decides it, from
    the block's logits).
    """
    methods = list(methods)
    rows: list[list[Any]] = []
    for start in range(0, images.shape[0], image_block):
        stop = min(images.shape[0], start + image_block)
        x = model.prepare_input(images[start:stop])
        ids = image_ids[start:stop]
        for method in methods:
            attribution = _attribution(model, x, None if targets is None else targets[start:stop], method, ids)
            chosen = np.asarray(attribution.target, dtype=np.int64)
            explained = np.asarray(to_numpy(attribution.output), dtype=np.float64)
            relevance = np.asarray(to_numpy(attribution.relevance), dtype=np.float64)
            scores = patch_scores(relevance[None], settings)
            results = flip_scores(model, images[start:stop], scores, chosen, ids, settings, settings.sorts)
            for sort in settings.sorts:
                for column, image_id in enumerate(ids):
                    rows.append([method, int(image_id), int(chosen[column]), sort,
                                 float(results[sort].auc[0, column]), float(results[sort].auc_normalised[0, column]),
                                 float(explained[column])])
    # one order however the images were cut into blocks: method (as given), sort, image
    rows.sort(key=lambda row: (methods.index(row[0]), settings.sorts.index(row[3]), row[1]))
    return {name: np.asarray([row[position] for row in rows], dtype=object if name in ("method", "sort") else None)
            for position, name in enumerate(COLUMNS)}


def _header() -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(COLUMNS)
    return buffer.getvalue().encode()


def check_writable(out: str | os.PathLike) -> None:
    """Refuse before the sweep runs if ``out/baselines.csv`` exists and was not written by a sweep."""
    path = Path(out) / BASELINES_FILE
    if not path.exists():
        return
    with open(path, "rb") as file:
        first = file.readline()
    if first != _header():
        raise InputValueError(f"{path} exists and was not written by a sweep (its header is not "
                              f"{','.join(COLUMNS)}); move it or choose another output directory")


def write_table(out: str | os.PathLike, table: dict[str, np.ndarray]) -> None:
    """``out/baselines.csv``, all or nothing."""
    check_writable(out)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for index in range(len(table["method"])):     # values written as results.csv writes them (NaN: empty)
        writer.writerow([format_value(table[name][index]) for name in COLUMNS])
    _atomic.write_text(Path(out) / BASELINES_FILE, buffer.getvalue(), overwrite=True)


def remove_stale(out: str | os.PathLike) -> None:
    """Remove a sweep-written ``out/baselines.csv`` when the sweep stored there starts afresh without
    baselines (it would describe another sweep); any other file of that name is left alone."""
    path = Path(out) / BASELINES_FILE
    try:
        check_writable(out)
    except InputValueError:
        return
    if path.exists():
        path.unlink()
