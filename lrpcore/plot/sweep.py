"""Pictures of a hyperparameter sweep: the AUC landscape, per-image AUC spread, and the optima's heatmaps.

- :func:`sweep_contour`: mean AUC over two swept parameters on logarithmic axes (the thesis'
  Figures 4.1–4.2). The grid holds 0 next to log-spaced values, so both axes are *symlog*:
  logarithmic above the smallest positive grid value v_min and linear in [0, v_min], where 0
  sits one half-decade to the left of v_min and is labelled "0".
- :func:`auc_distribution`: box plots of the per-image AUCs of chosen configurations (Figure 4.6).
- :func:`best_heatmaps`: heatmaps of the best configuration of each sort on a few images (Figure 4.3).

Heatmaps sum relevance over channels and use a symmetric colour scale per image,
b = min(10 · mean(|R|³)^{1/3}, max |R|) (Montavon et al.'s tutorial scale, capped at the largest
value so that small images with spread-out relevance are not washed out), red positive, blue negative.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..backend import to_numpy

__all__ = ["sweep_contour", "auc_distribution", "best_heatmaps"]

_BETTER_TEXT = {"morf": "lower is better", "lrf": "higher is better", "random": "baseline"}


def _axes(ax: Any, figsize: tuple[float, float] = (5.0, 4.2)) -> Any:
    if ax is None:
        from ._figure import new_figure

        ax = new_figure(figsize, layout=None).add_subplot()
    return ax


def _symlog(ax: Any, axis: str, values: np.ndarray) -> None:
    positive = values[values > 0]
    if not len(positive) or not np.any(values == 0):
        getattr(ax, f"set_{axis}scale")("log" if np.all(values > 0) else "linear")
        return
    getattr(ax, f"set_{axis}scale")("symlog", linthresh=float(positive.min()), linscale=0.5)
    ticks = [0.0] + [10.0 ** power for power in range(int(np.floor(np.log10(positive.min()))),
                                                      int(np.ceil(np.log10(positive.max()))) + 1)]
    labels = ["0"] + [f"$10^{{{int(np.log10(tick))}}}$" for tick in ticks[1:]]
    getattr(ax, f"set_{axis}ticks")(ticks, labels)
    getattr(ax, f"set_{axis}lim")(0.0, float(values.max()))


def sweep_contour(result: Any, sort: str = "morf", x: str | None = None, y: str | None = None,
                  normalised: bool = False, default: dict[str, float] | None = None, ax: Any = None,
                  levels: int = 15, cmap: str = "viridis") -> Any:
    """Filled contour of the mean AUC of ``sort`` over parameters ``x`` and ``y`` (the sweep's two parameters
    by default; more than two: give them, the others are averaged out). The optimum (lowest MoRF / highest
    LRF mean) is a white star; ``default`` (e.g. ``{"gamma": 0.25, "epsilon": 0.25}``) a red cross. Returns the axes.
    """
    names = list(result.params)
    x = names[0] if x is None else x
    y = (names[1] if len(names) > 1 else None) if y is None else y
    if y is None or x not in names or y not in names or x == y:
        raise ValueError(f"sweep_contour needs two different swept parameters among {names}, got x={x!r}, y={y!r}")
    means = result.mean_auc(sort, normalised)
    other = tuple(axis for axis, name in enumerate(names) if name not in (x, y))
    if other:
        means = np.nanmean(means, axis=other)
    if names.index(x) < names.index(y):
        means = means.T  # rows follow y, columns follow x
    x_values, y_values = np.asarray(result.params[x]), np.asarray(result.params[y])
    ax = _axes(ax)
    low, high = float(np.nanmin(means)), float(np.nanmax(means))
    flat = high - low <= 1e-9 * max(abs(low), abs(high), 1e-300)
    if flat:  # e.g. the random sort, which ignores the heatmap: one colour band around the value
        spread = max(abs(low) * 1e-3, 1e-12)
        levels = [low - spread, high + spread]
    filled = ax.contourf(x_values, y_values, means, levels=levels, cmap=cmap)
    colorbar = ax.figure.colorbar(filled, ax=ax, format="%.4g",
                                  label=f"mean {'normalised ' if normalised else ''}AUC "
                                        f"({sort}, {_BETTER_TEXT.get(sort, '')})")
    if flat:
        colorbar.set_ticks([low])
        ax.text(0.5, 0.5, f"flat: {low:.4g} for every configuration", transform=ax.transAxes, ha="center",
                fontsize=9, bbox={"facecolor": "white", "alpha": 0.8})
    _symlog(ax, "x", x_values)
    _symlog(ax, "y", y_values)
    if sort in ("morf", "lrf"):
        best = result.best(sort, normalised) if not other else None
        if best is None:
            row, column = np.unravel_index(np.nanargmin(means) if sort == "morf" else np.nanargmax(means), means.shape)
            best = {x: x_values[column], y: y_values[row]}
        ax.plot(best[x], best[y], marker="*", markersize=16, color="white", markeredgecolor="black",
                linestyle="none", clip_on=False, zorder=5, label=f"optimum ({x}={best[x]:.2g}, {y}={best[y]:.2g})")
    if default is not None:
        ax.plot(default[x], default[y], marker="X", markersize=11, color="red", markeredgecolor="white",
                linestyle="none", clip_on=False, zorder=4, label=f"default ({x}={default[x]:g}, {y}={default[y]:g})")
    if sort in ("morf", "lrf") or default is not None:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=8, frameon=False)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(f"{sort.upper() if sort != 'random' else 'random'} sort")
    return ax


def _config_index(result: Any, config: int | dict[str, float]) -> int:
    if isinstance(config, dict):
        for index, candidate in enumerate(result.configs):
            if all(np.isclose(candidate[name], float(config[name])) for name in candidate):
                return index
        raise ValueError(f"configuration {config} is not in the sweep's grid {result.params}")
    return int(config)


def auc_distribution(result: Any, configs: Sequence[int | dict[str, float]], sort: str = "morf",
                     normalised: bool = False, labels: Sequence[str] | None = None, ax: Any = None) -> Any:
    """Box plots (with the individual images as dots) of the per-image AUCs of ``configs``
    (indices or parameter dicts) for ``sort``. Returns the axes."""
    indices = [_config_index(result, config) for config in configs]
    per_image = result.per_image(sort, normalised)
    data = [per_image[index][~np.isnan(per_image[index])] for index in indices]
    if labels is None:
        labels = ["\n".join(f"{name}={value:.2g}" for name, value in result.configs[index].items())
                  for index in indices]
    ax = _axes(ax, (1.6 + 1.3 * len(indices), 4.0))
    ax.boxplot(data, showfliers=False)
    ax.set_xticks(range(1, len(indices) + 1), labels, fontsize=8)
    jitter = np.random.default_rng(0)
    for position, values in enumerate(data, start=1):
        ax.plot(position + jitter.uniform(-0.12, 0.12, len(values)), values, ".", alpha=0.6, color="tab:blue")
    ax.set_ylabel(f"{'normalised ' if normalised else ''}AUC per image")
    ax.set_title(f"{sort} ({_BETTER_TEXT.get(sort, '')}), {len(data[0]) if data else 0} images", fontsize=10)
    ax.figure.tight_layout()
    return ax


def _heatmap_image(relevance: np.ndarray) -> tuple[np.ndarray, float]:
    heat = relevance.sum(axis=0)
    bound = min(10 * float(np.mean(np.abs(heat) ** 3)) ** (1 / 3), float(np.abs(heat).max()))
    return heat, bound if bound > 0 else 1.0


def _display_image(model: Any, image: np.ndarray) -> np.ndarray:
    raw = np.asarray(to_numpy(model.metadata.deprocess(image[None].astype(np.float64))))[0]
    low, high = model.metadata.value_range
    raw = np.clip((raw - low) / (high - low), 0, 1)
    return raw[0] if raw.shape[0] == 1 else np.moveaxis(raw[:3], 0, -1)


def best_heatmaps(model: Any, images: Any, result: Any, composite: Callable[..., Any],
                  sorts: Sequence[str] = ("morf", "lrf"), count: int = 4, targets: Any = None,
                  normalised: bool = False, default: dict[str, float] | None = None, figsize: Any = None) -> Any:
    """A figure: the first ``count`` images, then one row of heatmaps per sort from that sort's best
    configuration (``composite`` is the sweep's factory), and one row for ``default`` if given.
    ``images`` are model inputs; ``targets`` default to the predicted class. Returns the figure."""
    from ..explain import explain
    from ._figure import new_figure

    inputs = np.asarray(to_numpy(images))[:count]
    rows = [("input", None)] + [(f"best {sort}", result.best(sort, normalised)) for sort in sorts]
    if default is not None:
        rows.append(("default", dict(default)))
    figure = new_figure(figsize or (1.9 * len(inputs), 2.0 * len(rows)), layout=None)
    axes = figure.subplots(len(rows), len(inputs), squeeze=False)
    for row, (title, config) in enumerate(rows):
        if config is None:
            for column, image in enumerate(inputs):
                axes[row, column].imshow(_display_image(model, image), cmap="gray", interpolation="nearest")
        else:
            params = {name: config[name] for name in result.params}
            relevance = np.asarray(to_numpy(explain(model, inputs, target=targets, composite=composite(**params))
                                            .relevance))
            for column in range(len(inputs)):
                heat, bound = _heatmap_image(relevance[column])
                axes[row, column].imshow(heat, cmap="bwr", vmin=-bound, vmax=bound, interpolation="nearest")
            title = f"{title}\n" + ", ".join(f"{name}={value:.2g}" for name, value in params.items())
        axes[row, 0].set_ylabel(title, fontsize=8)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    figure.tight_layout()
    return figure
