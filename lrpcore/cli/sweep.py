"""``lrpcore sweep CONFIG``: grid search of LRP hyperparameters scored by pixel-flipping AUC.

CONFIG is a JSON (or, with PyYAML installed, YAML) file; see ``tools/sweep_example.json``::

    {
      "model": "shapes_cnn",                       # a shipped model's name, or a file in any format
                                                   # 'lrpcore inspect' reads, e.g. "../models/shapes_cnn.h5"
      "data": {"dataset": "shapes", "count": 16, "seed": 1},   # or {"npy": "x.npy", "targets": "y.npy"} (raw
                                                   # values in the model's value range; "preprocessed": true or
                                                   # "allow_out_of_range": true to say otherwise),
                                                   # or {"dataset": "digits", "split": "test", "count": 16}
      "target": "label",                           # "label" (default when labels exist), "pred",
                                                   # or one class for all images, by index or name
      "composite": "tutorial",                     # preset: "tutorial" (gamma × epsilon) or "decreasing_gamma"
      "grid": "thesis",                            # {0} ∪ logspace(-4, 0, 15) on both axes; or
                                                   # {"values": [...]} for both, or {"gamma": [...], ...}
      "evaluation": {"sorts": ["morf", "lrf", "random"], "mode": "inpaint", "patch_size": 8},
      "executor": null,                            # null, "processes" or "dask"
      "scheduler": null, "workers": 2,             # Dask scheduler address ("tcp://host:8786"), pool size
      "image_block": 16,                           # images per batch; "config_block" (optional): configs
                                                   # per explain task, chosen from the grid and workers
      "out": "sweep_results",
      "dtype": "float32",                          # or "float64"
      "model_options": {"arch": "vgg16"},          # optional: how to read a Keras weights-only file
                                                   # ("config", "input_shape") or a PyTorch state
                                                   # dict ("arch", "input_size"), as lrpcore inspect
      "baselines": ["gradient", "integrated_gradients"],   # optional: methods scored beside the grid on
                                                   # the same images and flipping (attribution baselines
                                                   # or composite presets such as "epsilon_plus")
      "overwrite": false, "restart": false         # JSON true/false only
    }

Paths in the config (``model``, ``out``, ``data.npy``, ``data.targets``, ``model_options.config``) follow one rule: a
relative path is relative to the folder of the config file, wherever the command is run from
(``out`` defaults to ``sweep_results`` there). Paths given on the command line (``--out``) are
relative to the working folder, as usual.

Values are checked strictly: ``"workers": "two"`` or ``"overwrite": "false"`` (a string, not a
boolean) is an error naming the setting.

Writes into ``out``: ``manifest.json`` and ``results.csv`` (the tidy table, resumable: run
the same command again after an interruption; see :mod:`lrpcore.sweep.store`), ``contour_<sort>.png``
for each sort, ``auc_distribution_<sort>.png`` (best configurations and the literature default),
``best_heatmaps.png``, ``baselines.csv`` (with ``baselines``: their rows, same columns as the grid's but
``method`` for the configuration); prints the best configuration per sort and each baseline's mean AUC. Command-line options override
``out``, ``executor``, ``scheduler`` and ``workers``.

``--overwrite`` replaces a *different* sweep stored in ``out``; on the same sweep it resumes.
``--restart`` discards what ``out`` holds of a sweep and starts from zero. The plots are recorded
in ``out/.lrpcore-outputs.json``: a rerun redraws its own plots, but a file of the same name that
the sweep did not write (your own ``contour_morf.png``) is never replaced, with or without
``--overwrite``. A sweep locks ``out`` while it runs; a second sweep there is refused.
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
from ._inputs import as_raw_values, check_not_empty, check_value_range, input_file, positive_int

CONFIG_KEYS = {"model", "data", "target", "composite", "grid", "evaluation", "executor", "scheduler", "workers",
               "config_block", "image_block", "out", "overwrite", "restart", "dtype", "model_options", "baselines"}
#: Keys of "model_options": how to read a Keras or PyTorch file (as lrpcore inspect's options).
MODEL_OPTION_KEYS = {"config", "arch", "input_shape", "input_size"}
EXECUTOR_NAMES = (None, "serial", "processes", "dask")
#: Data sets a config can name in ``data.dataset``.
DATASETS = ("shapes", "digits", "motifs")

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
    parser.add_argument("--workers", type=positive_int, metavar="N", help="process-pool or LocalCluster size")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a different sweep stored in the output directory (the same sweep resumes)")
    parser.add_argument("--restart", action="store_true",
                        help="discard the results stored in the output directory and start the sweep from zero")
    parser.add_argument("--no-plots", dest="plots", action="store_false", help="write the table only")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bar (bars are drawn only on a terminal anyway)")
    parser.add_argument("--dtype", choices=DTYPES, default=None,
                        help="precision of the model and the computation (overrides the config's 'dtype'; "
                             "default float32)")
    parser.set_defaults(run=run)
    return parser


def _describe(value: Any) -> str:
    return f"the string {value!r}" if isinstance(value, str) else repr(value)


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def check_config_types(config: dict[str, Any], path: str) -> None:
    """Each setting has its documented JSON type; a string is not a boolean, "two" is not a number."""
    def fail(key: str, expected: str) -> InputValueError:
        return InputValueError(f"{path}: {key!r} must be {expected}, got {_describe(config[key])}")

    for key in ("model", "composite"):
        if key in config and not isinstance(config[key], str):
            raise fail(key, "a string")
    for key in ("out", "scheduler"):
        if config.get(key) is not None and not isinstance(config[key], str):
            raise fail(key, "a string")
    for key in ("overwrite", "restart"):
        if key in config and not isinstance(config[key], bool):
            raise fail(key, "true or false (a JSON boolean)")
    for key in ("config_block", "image_block"):
        if key in config and not _is_positive_int(config[key]):
            raise fail(key, "a positive integer")
    if config.get("workers") is not None and not _is_positive_int(config["workers"]):
        raise fail("workers", "a positive integer (or null)")
    if config.get("executor") not in EXECUTOR_NAMES:
        raise fail("executor", 'null, "serial", "processes" or "dask"')
    if "target" in config and not (isinstance(config["target"], str)
                                   or (isinstance(config["target"], int) and not isinstance(config["target"], bool))):
        raise fail("target", '"label", "pred", a class index or a class name')
    if "dtype" in config and config["dtype"] not in DTYPES:
        raise fail("dtype", " or ".join(f'"{name}"' for name in DTYPES))
    if config.get("model_options") is not None and not isinstance(config["model_options"], dict):
        raise fail("model_options", 'a mapping such as {"arch": "vgg16"}')
    if "data" in config and not isinstance(config["data"], dict):
        raise fail("data", 'a mapping such as {"dataset": "shapes", "count": 16}')
    if config.get("evaluation") is not None and not isinstance(config["evaluation"], dict):
        raise fail("evaluation", 'a mapping of pixel-flipping settings such as {"patch_size": 8}')
    if "baselines" in config and not (isinstance(config["baselines"], list)
                                      and all(isinstance(name, str) for name in config["baselines"])):
        raise fail("baselines", 'a list of method names such as ["gradient", "integrated_gradients"]')


def read_config(path: str) -> dict[str, Any]:
    """The configuration dict of a JSON or YAML file, with unknown keys and mistyped values refused."""
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
    check_config_types(config, path)
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
        source = _resolve(options.pop("npy"), base)
        try:
            inputs = numpy.load(input_file(source, "'data.npy' file"), allow_pickle=False)
            labels = (numpy.load(input_file(_resolve(options.pop("targets"), base), "'data.targets' file"),
                                 allow_pickle=False) if "targets" in options else None)
        except ValueError as error:
            raise InputValueError(f"'data': not a plain .npy array ({error})") from None
        flags = {key: options.pop(key, False) for key in ("preprocessed", "allow_out_of_range")}
        for key, value in flags.items():
            if not isinstance(value, bool):
                raise InputValueError(f"'data.{key}' must be true or false, got {_describe(value)}")
        if options:
            raise InputValueError(f"'data' for a .npy file takes npy, targets, preprocessed, allow_out_of_range; "
                                  f"got also {sorted(options)}")
        check_not_empty(inputs, source)
        if flags["preprocessed"]:
            check_value_range(inputs, None, source)
        else:  # raw values: uint8/uint16 scaled (announced), the value range checked as by 'lrpcore evaluate'
            inputs = as_raw_values(inputs, model.metadata.value_range, source, dtype=numpy.float64)
            check_value_range(inputs, None if flags["allow_out_of_range"] else model.metadata.value_range, source,
                              "'allow_out_of_range': true in 'data'")
            inputs = numpy.asarray(model.metadata.preprocess(inputs))
        return inputs.astype(numpy.float32), labels
    from .. import data as datasets
    name = options.pop("dataset", None)
    if name not in DATASETS:
        raise InputValueError(f"'data.dataset' must be shapes, digits or motifs (or give 'npy'), got {name!r}")
    count = options.pop("count", 16)
    if not _is_positive_int(count):
        raise InputValueError(f"'data.count' must be a positive integer, got {_describe(count)}")
    if name == "shapes" and "size" not in options and model.metadata.input_shape:
        options["size"] = int(model.metadata.input_shape[-1])
    try:
        if name == "digits":  # a fixed set split in two: take the first ``count`` images of ``split``
            split = options.pop("split", "test")
            dataset = datasets.digits(split, **options)
            if count > len(dataset):
                raise InputValueError(f"'data.count' is {count}, but the digits {split!r} split has "
                                      f"{len(dataset)} images")
            dataset = dataset[numpy.arange(count)]
        else:
            dataset = getattr(datasets, name)(count, **options)
    except TypeError as error:
        raise InputValueError(f"'data' for the {name} data set: {error}") from None
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
    plots = _plot_outputs(out, config.get("evaluation") or {}) if args.plots else None
    if plots is not None:
        plots.check(plots.planned)  # before the sweep: never replace a file the sweep did not write
    chosen = labels.astype(numpy.int64) if target == "label" else (None if target == "pred" else int(target))
    result = grid(model, inputs, chosen,
                  composite=preset.composite, params=params, evaluation=config.get("evaluation") or {},
                  executor=None if executor == "serial" else executor, scheduler=scheduler,
                  workers=args.workers or config.get("workers"), out=out,
                  config_block=config.get("config_block"), image_block=config.get("image_block", 16),
                  overwrite=args.overwrite or config.get("overwrite", False),
                  restart=args.restart or config.get("restart", False), progress=args.progress,
                  baselines=config.get("baselines", ()))
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
    if result.baselines is not None:
        for sort in result.sorts:
            means = ", ".join(f"{method} {auc:.4g}" for method, auc in result.baseline_auc(sort).items())
            lines.append(f"baselines {sort}: mean AUC {means} (in {os.path.join(out, 'baselines.csv')})")
    if plots is not None:
        with plots:  # all plots or none; the previous run's plots that were not redrawn are removed
            _write_plots(plots, result, model, inputs, preset, labels if target == "label" else
                         (None if target == "pred" else numpy.full(len(inputs), int(target))))
        lines.append(f"plots in {out}/")
    print("\n".join(lines))
    return 0


def _plot_outputs(out: str, evaluation: dict[str, Any]) -> Any:
    """The sweep's plots as an :class:`~lrpcore._outputs.OutputSet`, with ``planned``: every name it may write."""
    from .._outputs import OutputSet
    from ..sweep.flipping import SORTS, FlipSettings

    try:
        sorts = FlipSettings(**evaluation).sorts
    except (TypeError, ValueError):
        sorts = SORTS  # grid() reports the bad settings
    plots = OutputSet(out, "sweep", replace_own=True)
    plots.planned = ([f"contour_{sort}.png" for sort in sorts] + [f"auc_distribution_{sort}.png" for sort in sorts]
                     + ["best_heatmaps.png"])
    return plots


def _write_plots(plots: Any, result: Any, model: Any, inputs: numpy.ndarray, preset: Any, labels: Any) -> None:
    from ..plot import auc_distribution, best_heatmaps, sweep_contour

    default = {name: value for name, value in preset.default.items() if name in result.params}
    for sort in result.sorts:
        ax = sweep_contour(result, sort, default=default if len(result.params) == 2 else None)
        plots.add_figure(f"contour_{sort}.png", ax.figure, dpi=110, bbox_inches="tight")
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
            plots.add_figure(f"auc_distribution_{sort}.png", ax.figure, dpi=110, bbox_inches="tight")
    sorts = [sort for sort in result.sorts if sort != "random"]
    if sorts:
        figure = best_heatmaps(model, inputs, result, preset.composite, sorts=sorts,
                               targets=None if labels is None else labels[:4])
        plots.add_figure("best_heatmaps.png", figure, dpi=110, bbox_inches="tight")
