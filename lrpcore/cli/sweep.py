"""``lrpcore sweep CONFIG``: grid search of LRP hyperparameters scored by pixel-flipping AUC.

CONFIG is a JSON (or, with PyYAML installed, YAML) file; see ``tools/sweep_example.json``::

    {
      "model": "models/shapes_cnn.h5",             # relative paths: to the config file's folder first
      "data": {"dataset": "shapes", "count": 16, "seed": 1},   # or {"npy": "x.npy", "targets": "y.npy"}
      "target": "label",                           # "label" (default when labels exist) or "pred"
      "composite": "tutorial",                     # preset: "tutorial" (gamma × epsilon) or "decreasing_gamma"
      "grid": "thesis",                            # {0} ∪ logspace(-4, 0, 15) on both axes; or
                                                   # {"values": [...]} for both, or {"gamma": [...], ...}
      "evaluation": {"sorts": ["morf", "lrf", "random"], "mode": "inpaint", "patch_size": 8},
      "executor": null,                            # null, "processes" or "dask"
      "scheduler": null, "workers": 2,             # Dask scheduler address ("tcp://host:8786"), pool size
      "config_block": 16, "image_block": 16,
      "out": "sweep_results"
    }

Writes into ``out``: ``manifest.json`` and ``results.csv`` (the tidy table, resumable: run
the same command again after an interruption), ``contour_<sort>.png`` for each sort,
``auc_distribution_<sort>.png`` (best configurations and the literature default),
``best_heatmaps.png``; prints the best configuration per sort. Command-line options override
``out``, ``executor``, ``scheduler`` and ``workers``.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy

from ..errors import InputValueError

CONFIG_KEYS = {"model", "data", "target", "composite", "grid", "evaluation", "executor", "scheduler", "workers",
               "config_block", "image_block", "out", "overwrite"}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "sweep",
        help="grid search of LRP hyperparameters scored by pixel-flipping AUC",
        description="Sweep a composite preset's hyperparameters over a grid, score each configuration by "
                    "pixel-flipping AUC (MoRF, LRF, random) on a set of images, store the tidy table "
                    "(resumable), draw contour plots and print the best configuration per sort.",
        epilog="example: lrpcore sweep tools/sweep_example.json --executor dask",
    )
    parser.add_argument("config", metavar="CONFIG", help="sweep configuration (.json, or .yaml with PyYAML)")
    parser.add_argument("--out", metavar="DIR", help="output directory (overrides the config's 'out')")
    parser.add_argument("--executor", choices=("serial", "processes", "dask"), help="where tasks run")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="address of an existing Dask scheduler, e.g. tcp://10.0.0.5:8786 (implies dask)")
    parser.add_argument("--workers", type=int, metavar="N", help="process-pool or LocalCluster size")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a different sweep stored in the output directory")
    parser.add_argument("--no-plots", dest="plots", action="store_false", help="write the table only")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.set_defaults(run=run)
    return parser


def read_config(path: str) -> dict[str, Any]:
    """The configuration dict of a JSON or YAML file, with unknown keys refused."""
    file = Path(path)
    if not file.is_file():
        raise InputValueError(f"sweep config {path} does not exist")
    text = file.read_text()
    if file.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise InputValueError(f"{path}: reading YAML needs PyYAML (pip install pyyaml), or write JSON") from None
        config = yaml.safe_load(text)
    else:
        try:
            config = json.loads(text)
        except json.JSONDecodeError as error:
            raise InputValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise InputValueError(f"{path}: the config must be a mapping of settings, got {type(config).__name__}")
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        raise InputValueError(f"{path}: unknown setting(s) {unknown}; known: {sorted(CONFIG_KEYS)}")
    for key in ("model", "data", "composite"):
        if key not in config:
            raise InputValueError(f"{path}: missing setting {key!r}")
    return config


def _resolve(path: str, base: Path) -> str:
    candidate = Path(path)
    if not candidate.is_absolute() and (base / candidate).exists():
        return str(base / candidate)
    return str(candidate)


def load_data(spec: Any, model: Any, base: Path) -> tuple[numpy.ndarray, numpy.ndarray | None]:
    """(model inputs, labels or None) for the config's ``data``."""
    if not isinstance(spec, dict):
        raise InputValueError(f"'data' must be a mapping such as {{'dataset': 'shapes', 'count': 16}}, got {spec!r}")
    options = dict(spec)
    if "npy" in options:
        inputs = numpy.load(_resolve(options.pop("npy"), base))
        labels = numpy.load(_resolve(options.pop("targets"), base)) if "targets" in options else None
        preprocessed = bool(options.pop("preprocessed", False))
        if options:
            raise InputValueError(f"'data' for a .npy file takes npy, targets, preprocessed; "
                                  f"got also {sorted(options)}")
        if not preprocessed:
            inputs = numpy.asarray(model.metadata.preprocess(inputs.astype(numpy.float64)))
        return inputs.astype(numpy.float32), labels
    from .. import data as datasets
    name = options.pop("dataset", None)
    if name not in ("shapes", "digits", "motifs"):
        raise InputValueError(f"'data.dataset' must be shapes, digits or motifs (or give 'npy'), got {name!r}")
    count = int(options.pop("count", 16))
    if name == "shapes" and "size" not in options and model.metadata.input_shape:
        options["size"] = int(model.metadata.input_shape[-1])
    dataset = getattr(datasets, name)(count, **options)
    inputs = numpy.asarray(model.metadata.preprocess(numpy.asarray(dataset.x, dtype=numpy.float64)))
    return inputs.astype(numpy.float32), numpy.asarray(dataset.y)


def build_params(preset: Any, grid_spec: Any) -> dict[str, tuple[float, ...]]:
    """The parameter grid from the config's ``grid``."""
    if grid_spec in (None, "thesis"):
        return dict(preset.params)
    if isinstance(grid_spec, dict) and set(grid_spec) == {"values"}:
        return {name: tuple(grid_spec["values"]) for name in preset.params}
    if isinstance(grid_spec, dict) and set(grid_spec) == set(preset.params):
        return {name: tuple(grid_spec[name]) for name in preset.params}
    raise InputValueError(f"'grid' must be 'thesis', {{'values': [...]}} or values for each of "
                          f"{list(preset.params)}, got {grid_spec!r}")


def run(args: argparse.Namespace) -> int:
    from ..io import load
    from ..sweep import get_preset, grid

    config = read_config(args.config)
    base = Path(args.config).resolve().parent
    model = load(_resolve(config["model"], base))
    inputs, labels = load_data(config["data"], model, base)
    target = config.get("target", "label" if labels is not None else "pred")
    if target not in ("label", "pred"):
        raise InputValueError(f"'target' must be 'label' or 'pred', got {target!r}")
    if target == "label" and labels is None:
        raise InputValueError("'target': 'label' needs labels; the data has none (give data.targets or use 'pred')")
    preset = get_preset(config["composite"])
    params = build_params(preset, config.get("grid"))
    executor = args.executor or config.get("executor")
    scheduler = args.scheduler or config.get("scheduler")
    if scheduler and executor in (None, "serial"):
        executor = "dask"
    out = args.out or config.get("out") or "sweep_results"
    result = grid(model, inputs, labels.astype(numpy.int64) if target == "label" else None,
                  composite=preset.composite, params=params, evaluation=config.get("evaluation") or {},
                  executor=None if executor == "serial" else executor, scheduler=scheduler,
                  workers=args.workers or config.get("workers"), out=out,
                  config_block=int(config.get("config_block", 16)), image_block=int(config.get("image_block", 16)),
                  overwrite=bool(args.overwrite or config.get("overwrite", False)), progress=args.progress)
    lines = [f"{len(result)} rows in {os.path.join(out, 'results.csv')}"]
    for sort in result.sorts:
        if sort == "random":
            lines.append(f"random: mean AUC {float(numpy.nanmean(result.mean_auc(sort))):.4g} (baseline, same "
                         "for every configuration)")
            continue
        best = result.best(sort)
        values = ", ".join(f"{name}={best[name]:.4g}" for name in params)
        lines.append(f"best {sort}: {values} (config {best['config']}, mean AUC {best['auc']:.4g}, "
                     f"{'lower' if sort == 'morf' else 'higher'} is better)")
    if args.plots:
        _write_plots(result, model, inputs, preset, out, labels if target == "label" else None)
        lines.append(f"plots in {out}/")
    print("\n".join(lines))
    return 0


def _write_plots(result: Any, model: Any, inputs: numpy.ndarray, preset: Any, out: str, labels: Any) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plot import auc_distribution, best_heatmaps, sweep_contour
    default = {name: value for name, value in preset.default.items() if name in result.params}
    for sort in result.sorts:
        ax = sweep_contour(result, sort, default=default if len(result.params) == 2 else None)
        ax.figure.savefig(os.path.join(out, f"contour_{sort}.png"), dpi=110, bbox_inches="tight")
        plt.close(ax.figure)
    chosen = [result.best(sort) for sort in result.sorts if sort != "random"]
    labels_text = [f"best {sort}" for sort in result.sorts if sort != "random"]
    try:
        chosen.append(result.configs.index(default))
        labels_text.append("default")
    except ValueError:
        pass
    for sort in result.sorts:
        if chosen:
            ax = auc_distribution(result, chosen, sort, labels=labels_text)
            ax.figure.savefig(os.path.join(out, f"auc_distribution_{sort}.png"), dpi=110, bbox_inches="tight")
            plt.close(ax.figure)
    sorts = [sort for sort in result.sorts if sort != "random"]
    if sorts:
        figure = best_heatmaps(model, inputs, result, preset.composite, sorts=sorts,
                               targets=None if labels is None else labels[:4])
        figure.savefig(os.path.join(out, "best_heatmaps.png"), dpi=110, bbox_inches="tight")
        plt.close(figure)
