"""``SweepResult``: the tidy table of a sweep, with means over images and the best configuration per sort.

Which AUC is better (Samek et al. 2017): MoRF — lower (the score falls fast when the most
relevant patches go first); LRF — higher (the score survives when the least relevant go
first); random — neither (the baseline; its curve ignores the heatmap).
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import numpy as np

__all__ = ["SweepResult", "BETTER"]

BETTER = {"morf": "lower", "lrf": "higher"}


@dataclasses.dataclass
class SweepResult:
    """One row per configuration × image × sort.

    ``table``: columns ``config``, one per parameter, ``image``, ``target``, ``sort``, ``auc``,
    ``auc_normalised`` (NaN where the unperturbed score ≤ 0), ``score`` (the explained target
    score); ``params``: parameter name → the grid's values (configuration ``config`` is the
    ``config``-th element of their Cartesian product, last parameter fastest); ``directory``:
    where it is stored, if anywhere; ``timings``: one :class:`~lrpcore.sweep.tasks.TaskTiming` per
    task computed by this call (kind, task, heatmaps, wall and CPU seconds, worker), empty for a
    table that was only loaded; ``baselines``: the rows of the methods compared with the grid
    (``grid(..., baselines=...)``: columns ``method``, ``image``, ``target``, ``sort``, ``auc``,
    ``auc_normalised``, ``score``), or None.
    """

    table: dict[str, np.ndarray]
    params: dict[str, tuple[float, ...]]
    directory: str | None = None
    timings: tuple[Any, ...] = ()
    baselines: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return int(len(self.table["config"]))

    @property
    def shape(self) -> tuple[int, ...]:
        """Grid shape: the number of values of each parameter."""
        return tuple(len(values) for values in self.params.values())

    @property
    def configs(self) -> list[dict[str, float]]:
        """Every configuration, in ``config`` order."""
        names = list(self.params)
        return [dict(zip(names, values)) for values in itertools.product(*self.params.values())]

    @property
    def sorts(self) -> list[str]:
        present = set(self.table["sort"].tolist())
        return [sort for sort in ("morf", "lrf", "random") if sort in present]

    def select(self, sort: str) -> dict[str, np.ndarray]:
        """The rows of one sort."""
        if sort not in self.sorts:
            raise ValueError(f"sort {sort!r} is not in this sweep (it has {self.sorts})")
        keep = self.table["sort"] == sort
        return {name: column[keep] for name, column in self.table.items()}

    def per_image(self, sort: str, normalised: bool = False) -> np.ndarray:
        """(configs, images) AUCs; NaN where a pair is missing (or undefined when normalised)."""
        rows = self.select(sort)
        images = np.unique(rows["image"])
        values = np.full((int(np.prod(self.shape)), len(images)), np.nan)
        values[rows["config"], np.searchsorted(images, rows["image"])] = \
            rows["auc_normalised" if normalised else "auc"]
        return values

    def mean_auc(self, sort: str, normalised: bool = False) -> np.ndarray:
        """Mean AUC over the images, shaped like the grid (one axis per parameter, in ``params`` order).

        Normalised AUCs skip images whose unperturbed score is ≤ 0; a configuration with no
        defined value is NaN.
        """
        values = self.per_image(sort, normalised)
        counts = np.sum(~np.isnan(values), axis=1)
        sums = np.nansum(values, axis=1)
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        return means.reshape(self.shape)

    def best(self, sort: str, normalised: bool = False) -> dict[str, Any]:
        """The configuration with the best mean AUC for ``sort`` (lowest for MoRF, highest for LRF).

        Returns the parameter values, ``config`` (its index) and ``auc`` (its mean). The random
        sort has no best configuration (it is the baseline) and raises ``ValueError``.
        """
        if sort not in BETTER:
            raise ValueError(f"sort {sort!r} has no best configuration; 'morf' (lower AUC is better) and "
                             "'lrf' (higher is better) do")
        means = self.mean_auc(sort, normalised).reshape(-1)
        if np.all(np.isnan(means)):
            raise ValueError(f"no {sort} AUCs are defined in this sweep")
        index = int(np.nanargmin(means) if BETTER[sort] == "lower" else np.nanargmax(means))
        return {**self.configs[index], "config": index, "auc": float(means[index])}

    def baseline_auc(self, sort: str, normalised: bool = False) -> dict[str, float]:
        """Mean AUC over the images of each compared method (``grid(..., baselines=...)``), in the order
        given; comparable with :meth:`mean_auc` and :meth:`best` (same images, targets and flipping).
        Normalised AUCs skip images whose unperturbed score is ≤ 0, as :meth:`mean_auc` does."""
        if self.baselines is None:
            raise ValueError("this sweep compared no baselines; pass grid(..., baselines=['gradient', ...])")
        rows = self.baselines
        keep = rows["sort"] == sort
        if not np.any(keep):
            raise ValueError(f"sort {sort!r} is not in this sweep (it has {self.sorts})")
        values = np.asarray(rows["auc_normalised" if normalised else "auc"], dtype=np.float64)
        means = {}
        for method in dict.fromkeys(rows["method"].tolist()):
            chosen = values[keep & (rows["method"] == method)]
            means[method] = float(np.nanmean(chosen)) if np.any(~np.isnan(chosen)) else float("nan")
        return means

    def to_pandas(self) -> Any:
        """The table as a pandas DataFrame (needs pandas)."""
        import pandas
        return pandas.DataFrame(self.table)
