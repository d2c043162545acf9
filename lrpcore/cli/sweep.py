"""``lrpcore sweep CONFIG``: grid search of LRP hyperparameters scored by pixel-flipping AUC.

CONFIG is a JSON (or, with PyYAML installed, YAML) file; see ``tools/sweep_example.json``::

    {
      "model": "shapes_cnn",                       # a shipped model's name, or a file in any format
                                                   # 'lrpcore inspect' reads, e.g. "../models/shapes_cnn.h5"
      "data": {"dataset": "shapes", "count": 16, "seed": 1},   # or {"npy": "x.npy", "targets": "y.npy"}
      "target": "label",                           # "label" (default when labels exist), "pred",
                                                   # or one class for all images, by index or name
      "composite": "tutorial",                     # preset: "tutorial" (gamma × epsilon) or "decreasing_gamma"
      "grid": "thesis",                            # {0} ∪ logspace(-4, 0, 15) on both axes; or
                                                   # {"values": [...]} for both, or {"gamma": [...], ...}
      "evaluation": {"sorts": ["morf", "lrf", "random"], "mode": "inpaint", "patch_size": 8},
      "executor": null,                            # null, "processes" or "dask"
      "scheduler": null, "workers": 2,             # Dask scheduler address ("tcp://host:8786"), pool size
      "config_block": 16, "image_block": 16,
      "out": "sweep_results",
      "dtype": "float32",                          # or "float64"
      "model_options": {"arch": "vgg16"}           # optional: how to read a Keras weights-only file
    }                                              # ("config", "input_shape") or a PyTorch state
                                                   # dict ("arch", "input_size"), as lrpcore inspect

Paths in the config (``model``, ``out``, ``data.npy``, ``data.targets``, ``model_options.config``) follow one rule: a
relative path is relative to the folder of the config file, wherever the command is run from
(``out`` defaults to ``sweep_results`` there). Paths given on the command line (``--out``) are
relative to the working folder, as usual.

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
from ._common import DTYPES, cast_model, dtype_name, load_model, target_from_text

CONFIG_KEYS = {"model", "data", "target", "composite", "grid", "evaluation", "executor", "scheduler", "workers",
               "config_block", "image_block", "out", "overwrite", "dtype", "model_options"}
#: Keys of "model_options": how to read a Keras or PyTorch file (as lrpcore inspect's options).
MODEL_OPTION_KEYS = {"config", "arch", "input_shape", "input_size"}

EPILOG = """example: lrpcore sweep tools/sweep_example.json --executor dask

Relative paths inside CONFIG (model, out, data.npy, data.targets) are relative to the folder of
the config file, wherever the command runs; --out on the command line is relative to the working
folder. The model may also be the name of a shipped model (shapes_cnn, ...)."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "sweep",
        help="grid search of LRP hyperparameters scored by pixel-flipping AUC",
        description="Sweep a composite preset's hyperparameters over a grid, score each configuration by "
                    "pixel-flipping AUC (MoRF, LRF, random) on a set of images, store the tidy table "
                    "(resumable), draw contour plots and print the best configuration per sort.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", metavar="CONFIG", help="sweep configuration (.json, or .yaml with PyYAML)")
    parser.add_argument("--out", metavar="DIR", help="output directory (overrides the config's 'out'; relative to "
                                                     "the working folder)")
    parser.add_argument("--executor", choices=("serial", "processes", "dask"), help="where tasks run")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="address of an existing Dask scheduler, e.g. tcp://10.0.0.5:8786 (implies dask)")
    parser.add_argument("--workers", type=int, metavar="N", help="process-pool or LocalCluster size")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a different sweep stored in the output directory")
    parser.add_argument("--no-plots", dest="plots", action="store_false", help="write the table only")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bar (bars are drawn only on a terminal anyway)")
    parser.add_argument("--dtype", choices=DTYPES, default=None,
                        help="precision of the model and the computation (overrides the config's 'dtype'; "
                             "default float32)")
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
    """A path from the config: relative paths are relative to the config file's folder ``base``."""
    candidate = Path(path)
    return str(candidate if candidate.is_absolute() else base / candidate)


def _model_options(config: dict[str, Any], base: Path) -> argparse.Namespace:
    """The config's ``model_options`` as the source options of :func:`lrpcore.cli._models.read_model`."""
    options = config.get("model_options") or {}
    if not isinstance(options, dict) or set(options) - MODEL_OPTION_KEYS:
        raise InputValueError(f"'model_options' must be a mapping with keys from {sorted(MODEL_OPTION_KEYS)}, "
                              f"got {options!r}")
    keras_config = options.get("config")
    shape = options.get("input_shape")
    return argparse.Namespace(config=_resolve(keras_config, base) if keras_config else None, arch=options.get("arch"),
                              input_shape=list(shape) if shape else None, input_size=options.get("input_size"))


def _model(spec: Any, base: Path, args: argparse.Namespace) -> tuple[Any, str]:
    """The config's model: a file (relative to the config's folder) in any format, or a shipped model's name."""
    if not isinstance(spec, str) or not spec:
        raise InputValueError(f"'model' must be a file name or a shipped model's name, got {spec!r}")
    path = _resolve(spec, base)
    if not Path(path).is_file() and "/" not in spec and os.sep not in spec and Path(spec).suffix in ("", ".h5"):
        return load_model(spec, args)           # a shipped model's name
    if not Path(path).is_file():
        raise FileNotFoundError(f"model file {path} does not exist (the config's 'model' {spec!r} is relative to "
                                f"the config's folder {base})")
    return load_model(path, args)


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
    from ..sweep import get_preset, grid

    config = read_config(args.config)
    base = Path(args.config).resolve().parent
    model, _ = _model(config["model"], base, _model_options(config, base))
    dtype = args.dtype or config.get("dtype", "float32")
    if dtype not in DTYPES:
        raise InputValueError(f"'dtype' must be one of {', '.join(DTYPES)}, got {dtype!r}")
    model = cast_model(model, dtype)
    inputs, labels = load_data(config["data"], model, base)
    target = config.get("target", "label" if labels is not None else "pred")
    if target not in ("label", "pred"):
        target = target_from_text(str(target), model, keywords=("label", "pred"))
    if target == "label" and labels is None:
        raise InputValueError("'target': 'label' needs labels; the data has none (give data.targets or use 'pred')")
    preset = get_preset(config["composite"])
    params = build_params(preset, config.get("grid"))
    executor = args.executor or config.get("executor")
    scheduler = args.scheduler or config.get("scheduler")
    if scheduler and executor in (None, "serial"):
        executor = "dask"
    out = args.out or _resolve(config.get("out") or "sweep_results", base)
    chosen = labels.astype(numpy.int64) if target == "label" else (None if target == "pred" else int(target))
    result = grid(model, inputs, chosen,
                  composite=preset.composite, params=params, evaluation=config.get("evaluation") or {},
                  executor=None if executor == "serial" else executor, scheduler=scheduler,
                  workers=args.workers or config.get("workers"), out=out,
                  config_block=int(config.get("config_block", 16)), image_block=int(config.get("image_block", 16)),
                  overwrite=bool(args.overwrite or config.get("overwrite", False)), progress=args.progress)
    lines = [f"{len(result)} rows in {os.path.join(out, 'results.csv')} ({dtype_name(model)})"]
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
        _write_plots(result, model, inputs, preset, out, labels if target == "label" else
                     (None if target == "pred" else numpy.full(len(inputs), int(target))))
        lines.append(f"plots in {out}/")
    print("\n".join(lines))
    return 0


def _write_plots(result: Any, model: Any, inputs: numpy.ndarray, preset: Any, out: str, labels: Any) -> None:
    from ..plot import auc_distribution, best_heatmaps, sweep_contour
    default = {name: value for name, value in preset.default.items() if name in result.params}
    for sort in result.sorts:
        ax = sweep_contour(result, sort, default=default if len(result.params) == 2 else None)
        ax.figure.savefig(os.path.join(out, f"contour_{sort}.png"), dpi=110, bbox_inches="tight")
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
    sorts = [sort for sort in result.sorts if sort != "random"]
    if sorts:
        figure = best_heatmaps(model, inputs, result, preset.composite, sorts=sorts,
                               targets=None if labels is None else labels[:4])
        figure.savefig(os.path.join(out, "best_heatmaps.png"), dpi=110, bbox_inches="tight")
