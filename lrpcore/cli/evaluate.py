"""``lrpcore evaluate MODEL DATA``: pixel flipping of LRP heatmaps, with curves, AUCs and a summary line.

MODEL: a model file in any format ``lrpcore inspect`` reads, or the name of a shipped model. DATA: either

- a ``.npy`` file of *raw* inputs (N, C, H, W) in the model's value range (``--preprocessed``
  if they are already model inputs), with ``--targets FILE.npy`` (N,) class labels, or
- a generator spec ``NAME:N[:key=value...]`` for the shipped data sets, e.g. ``shapes:32:seed=1``
  or ``shapes:16:seed=2:watermark=true``: ``lrpcore.data.NAME(N, **options)`` (``shapes``,
  ``motifs``); the labels are the targets, and for ``shapes`` the image size defaults to the
  model's input size.

Raw ``.npy`` inputs are checked against the model's value range (``model.metadata.value_range``):
values outside it are refused, naming the range (``--allow-out-of-range`` accepts them); ``uint8``
and ``uint16`` arrays are scaled into the range by 1/255 and 1/65535, announced on stderr.

Heatmaps come from ``lrpcore.baselines.attribute`` with ``--method`` (alias ``--composite``): an LRP
composite preset, or a baseline of :mod:`lrpcore.baselines` (``gradient``, ``gradient_x_input``,
``smoothgrad``, ``integrated_gradients``, ``occlusion``, ``guided_backprop``, ``deconvnet``, ``uniform``,
and ``random``, the thesis' seeded uniform [0, 1) noise heatmap, or ``random_normal``). Each
``--sort`` gives one curve. Written to ``--out DIR``
(created if missing): ``curve.png`` (mean normalised curves, AUC in the legend), ``steps.png``
(image 0 step by step), ``per_image.csv`` (one row per image and sort), ``results.json``
(settings, summaries, mean curves, per-image AUCs). One summary line goes to stdout. The four
files are written together (all or none: a full disk leaves the previous results as they were)
and recorded in ``DIR/.lrpcore-outputs.json``; ``--overwrite`` replaces the files of an earlier
``lrpcore evaluate`` there, never a file of the same name it did not write.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import time
from typing import Any

import numpy

from ..errors import InputValueError, ShapeError
from ._common import add_dtype_argument, cast_model, class_label, dtype_name, load_model, target_from_text
from ._inputs import as_raw_values, check_not_empty, check_value_range, input_file, positive_int
from ._models import add_source_arguments

OUTPUT_FILES = ("curve.png", "steps.png", "per_image.csv", "results.json")
GENERATORS = ("shapes", "motifs")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from ..composites import PRESETS

    from ..baselines import BASELINES

    methods = sorted(PRESETS) + list(BASELINES)
    parser = subparsers.add_parser(
        "evaluate",
        help="pixel flipping of LRP heatmaps: perturbation curves, AUC, AOPC",
        description="Explain DATA with MODEL under a composite, perturb the most (or least) relevant patches "
                    "step by step, and record the target score: curve PNG, per-image CSV/JSON with AUCs, and "
                    "a summary line. DATA is a .npy file of raw inputs (with --targets) or a generator spec "
                    "NAME:N[:key=value...] such as shapes:32:seed=1.",
        epilog="example: lrpcore evaluate models/shapes_cnn.h5 shapes:32:seed=1 --composite epsilon_plus "
               "--sort morf lrf random --mode inpaint --out pf_results",
    )
    parser.add_argument("model", metavar="MODEL", help="model file (any format 'lrpcore inspect' reads) or the name "
                                                       "of a shipped model (shapes_cnn, ...)")
    parser.add_argument("data", metavar="DATA", help="raw inputs .npy, or NAME:N[:key=value...] with NAME in "
                                                     f"{', '.join(GENERATORS)}")
    parser.add_argument("--targets", metavar="FILE", help="(N,) integer class labels (.npy) for .npy DATA")
    parser.add_argument("--target", default=None, metavar="T",
                        help="what to explain and score: 'label' (default when labels are known), 'pred' (the "
                             "predicted class), or one class for every input, by index or name (e.g. 'ring')")
    add_dtype_argument(parser)
    parser.add_argument("--preprocessed", action="store_true",
                        help=".npy DATA already holds model inputs (do not apply the model's preprocessing)")
    parser.add_argument("--allow-out-of-range", action="store_true",
                        help="accept raw .npy values outside the model's value range (refused by default: "
                             "unscaled 0..255 data fed to a [0, 1] model gives meaningless AUCs)")
    parser.add_argument("--method", "--composite", dest="method", metavar="NAME", default="epsilon_plus",
                        choices=methods,
                        help="LRP composite preset (default epsilon_plus) or baseline attribution "
                             "('random': the thesis' uniform [0, 1) noise heatmap); one of " + ", ".join(methods))
    parser.add_argument("--sort", nargs="+", default=["morf"], choices=("morf", "lrf", "random"),
                        help="patch order(s), one curve each (default morf)")
    parser.add_argument("--mode", default="inpaint", choices=("inpaint", "random", "random_channels", "constant"),
                        help="perturbation (default inpaint: OpenCV Telea; random: one gray per patch, as the "
                             "thesis; random_channels: one value per patch and channel)")
    parser.add_argument("--patch-size", type=int, default=8, metavar="PIXELS", help="patch side (default 8)")
    parser.add_argument("--schedule", default="quadratic", choices=("quadratic", "linear", "log"),
                        help="patches per step (default quadratic: 1, 3, 5, ...)")
    parser.add_argument("--steps", type=int, default=None, help="number of steps of the linear/log schedules")
    parser.add_argument("--channel-reduce", default="sum", choices=("sum", "luminance"),
                        help="heatmap channels → one value per pixel (default sum)")
    parser.add_argument("--score", default="logit", choices=("logit", "probability"), help="score recorded")
    parser.add_argument("--constant", type=float, default=None,
                        help="raw value for --mode constant (default: middle of the value range)")
    parser.add_argument("--no-final-gray", dest="final_gray", action="store_false",
                        help="do not append the all-gray step")
    parser.add_argument("--no-reperturb", dest="reperturb", action="store_false",
                        help="perturb only the new patches at each step (default: the whole mask again)")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="inputs per model call (default 32)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of random sorts, random mode, noise heatmaps and SmoothGrad")
    parser.add_argument("--out", metavar="DIR", required=True, help="output folder (created if missing)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the result files of an earlier 'lrpcore evaluate' in DIR (files it did not "
                             "write are never replaced)")
    add_source_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def _parse_value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "yes"):
        return True
    if lowered in ("false", "no"):
        return False
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_generator(spec: str) -> tuple[str, int, dict[str, Any]] | None:
    """``"shapes:32:seed=1"`` → ("shapes", 32, {"seed": 1}); None when ``spec`` is not a generator spec."""
    match = re.fullmatch(r"([a-z_]+):(\d+)((?::[A-Za-z_]+=[^:]+)*)", spec)
    if match is None:
        if spec.split(":", 1)[0] in GENERATORS:
            raise InputValueError(f"cannot read data spec {spec!r}; expected NAME:N[:key=value...], "
                                  "e.g. shapes:32:seed=1")
        return None
    name, count, rest = match.group(1), int(match.group(2)), match.group(3)
    if name not in GENERATORS:
        raise InputValueError(f"unknown data generator {name!r} in {spec!r}; known: {', '.join(GENERATORS)}")
    options = {}
    for item in filter(None, rest.split(":")):
        key, value = item.split("=", 1)
        options[key] = _parse_value(value)
    return name, count, options


def load_data(args: Any, model: Any) -> tuple[numpy.ndarray, numpy.ndarray | None, dict[str, Any]]:
    """(model inputs, labels or None, description) for DATA."""
    generator = parse_generator(args.data)
    if generator is not None:
        from .. import data

        name, count, options = generator
        shape = model.metadata.input_shape
        if name == "shapes" and "size" not in options and shape and len(shape) == 3:
            options["size"] = int(shape[-1])
        if args.targets is not None or args.preprocessed:
            raise InputValueError("--targets and --preprocessed apply to .npy DATA only")
        try:
            dataset = getattr(data, name)(count, **options)
        except TypeError as error:
            raise InputValueError(f"data generator {name}: {error}") from None
        raw = dataset.x
        labels = dataset.y
        description = {"generator": name, "count": count, "options": options}
    else:
        if not os.path.lexists(args.data):
            raise FileNotFoundError(f"DATA {args.data!r} is neither a file nor a generator spec "
                                    f"NAME:N[:key=value...] ({', '.join(GENERATORS)})")
        input_file(args.data, "DATA")  # a directory or a FIFO is named as such
        try:
            raw = numpy.load(args.data, allow_pickle=False)
        except ValueError as error:
            raise InputValueError(f"{args.data}: not a plain .npy array ({error})") from None
        check_not_empty(raw, args.data)
        if args.preprocessed:
            if raw.dtype.kind != "f":
                raise InputValueError(f"{args.data}: preprocessed inputs must be floating point, got dtype {raw.dtype}")
            check_value_range(raw, None, args.data)
        else:
            raw = as_raw_values(raw, model.metadata.value_range, args.data, dtype=numpy.float64)
            check_value_range(raw, None if args.allow_out_of_range else model.metadata.value_range, args.data,
                              "--allow-out-of-range")
        labels = None
        if args.targets is not None:
            labels = numpy.load(input_file(args.targets, "--targets file"), allow_pickle=False)
            if labels.dtype.kind not in "iu" or labels.shape != (raw.shape[0],):
                raise ShapeError(f"{args.targets}: targets must be {raw.shape[0]} integers (one per input), "
                                 f"got {labels.dtype} array of shape {labels.shape}")
        description = {"file": os.path.abspath(args.data), "targets": args.targets}
    inputs = raw if args.preprocessed else model.metadata.preprocess(numpy.asarray(raw, dtype=numpy.float64))
    return numpy.asarray(inputs, dtype=numpy.float32), labels, description


def _targets(args: Any, labels: numpy.ndarray | None, model: Any = None) -> Any:
    choice = args.target or ("label" if labels is not None else "pred")
    if model is not None and choice not in ("label", "pred"):
        chosen = target_from_text(choice, model, keywords=("label", "pred"))
        if isinstance(chosen, int):
            return chosen
    if choice not in ("label", "pred"):
        raise InputValueError(f"--target {choice!r} must be 'label', 'pred', a class index or a class name")
    if choice == "label":
        if labels is None:
            raise InputValueError("--target label needs labels: give --targets FILE.npy (or use --target pred)")
        return labels
    return "pred"


def _heatmaps(model: Any, inputs: numpy.ndarray, target: Any, method: str, batch_size: int,
              seed: int, progress: Any = None) -> tuple[numpy.ndarray, numpy.ndarray]:
    """(relevance, explained targets), attributed in chunks of ``batch_size`` (``progress(n)`` after each);
    seeded methods draw per image (by its index in DATA), so the chunking does not change them."""
    from ..backend import to_numpy
    from ..baselines import attribute

    seeded = method in ("random", "random_normal", "smoothgrad")
    relevances, targets = [], []
    for start in range(0, len(inputs), batch_size):
        stop = min(start + batch_size, len(inputs))
        part = target if isinstance(target, (str, int)) else target[start:stop]
        options = {"seed": seed, "image_ids": range(start, stop)} if seeded else {}
        attribution = attribute(model, inputs[start:stop], part, method, **options)
        relevances.append(to_numpy(attribution.relevance))
        targets.append(to_numpy(attribution.target))
        if progress is not None:
            progress(stop - start)
    return numpy.concatenate(relevances), numpy.concatenate(targets)


def _outputs(folder: str, overwrite: bool) -> Any:
    """The result files as one recorded set (lrpcore._outputs), checked before any work."""
    from .._outputs import OutputSet

    if os.path.exists(folder) and not os.path.isdir(folder):
        raise FileExistsError(f"--out {folder!r} exists and is not a folder")
    outputs = OutputSet(folder, "evaluate", overwrite=overwrite)
    outputs.check(OUTPUT_FILES)
    return outputs


def _number(value: Any) -> Any:
    return None if value is None else float(value)


def _target_text(model: Any, target: Any) -> str:
    """How the explained classes are named in titles: 'label', 'pred' or the class name."""
    if isinstance(target, int):
        return f"class '{class_label(model, target)}'"
    return "true class" if not isinstance(target, str) else "predicted class"


def run(args: argparse.Namespace) -> int:
    from .._progress import progress_bar
    from ..evaluate import pixel_flipping

    outputs = _outputs(args.out, args.overwrite)  # before any work: refuse what would be replaced
    start = time.perf_counter()
    model, _ = load_model(args.model, args)
    model = cast_model(model, args.dtype)
    inputs, labels, data_description = load_data(args, model)
    target = _targets(args, labels, model)
    options = dict(mode=args.mode, patch_size=args.patch_size, schedule=args.schedule, steps=args.steps,
                   final_gray=args.final_gray, reperturb=args.reperturb, channel_reduce=args.channel_reduce,
                   score=args.score, seed=args.seed, batch_size=args.batch_size, constant=args.constant)
    count = len(inputs)
    # one bar for the whole run, in images: explaining them, then flipping them once per sort (and one example)
    with progress_bar(count * (1 + len(args.sort)) + 1, "evaluating", unit="image") as bar:
        relevance, targets = _heatmaps(model, inputs, target, args.method, args.batch_size, args.seed,
                                       progress=bar.update)
        curves = {}
        for sort in args.sort:
            bar.set_postfix_str(f"pixel flipping, {sort}")
            curves[sort] = pixel_flipping(model, inputs, relevance, targets, sort=sort, progress=bar.update,
                                          **options)
        first = args.sort[0]
        example = pixel_flipping(model, inputs[:1], relevance[:1], targets[:1], sort=first, keep_images=True,
                                 progress=bar.update, **options)

    try:
        _write_results(outputs, args, model, inputs, curves, example, relevance, target, options, data_description)
    except BaseException:
        outputs.abort()  # the previous results stay as they were
        raise
    outputs.commit()  # checks again: another process may have written meanwhile

    parts = []
    for sort, curve in curves.items():
        summary = curve.summary()
        normalised = summary["auc_normalised"]
        better = f", {curve.better} is better" if curve.better else ""
        parts.append(f"{sort} AUC {summary['auc']:.4g}"
                     + (f" (normalised {normalised:.4g}{better})" if normalised is not None else better)
                     + f", AOPC {summary['aopc']:.4g}")
    calls = sum(curve.model_calls for curve in curves.values())
    name = model.metadata.name or os.path.basename(args.model)
    print(f"{name}: {len(inputs)} images, {args.method}, {args.mode}, {dtype_name(model)}: " + "; ".join(parts)
          + f"; {calls} model calls, {time.perf_counter() - start:.1f} s; wrote {args.out}/")
    return 0


def _write_results(outputs: Any, args: argparse.Namespace, model: Any, inputs: numpy.ndarray, curves: dict,
                   example: Any, relevance: numpy.ndarray, target: Any, options: dict, data_description: dict) -> None:
    """The four result files, each rendered in memory and written to a temporary file of ``outputs``."""
    from ..plot.perturbation import perturbation_curve, perturbation_steps

    name = model.metadata.name or os.path.basename(args.model)
    figure = perturbation_curve(curves, normalised=any(curve.valid.any() for curve in curves.values()),
                                title=f"{name}, {args.method}, {args.mode}, {len(inputs)} images, "
                                      f"{_target_text(model, target)}, {dtype_name(model)}")
    outputs.add_figure("curve.png", figure, dpi=120)
    figure = perturbation_steps(example, relevance=relevance[0], metadata=model.metadata)
    outputs.add_figure("steps.png", figure, dpi=120)

    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(["image", "target", "sort", "auc", "auc_normalised", "aopc", "score_unperturbed",
                     "score_last"])
    for sort, curve in curves.items():
        auc, aopc, valid = curve.auc(), curve.aopc(), curve.valid
        normalised = numpy.full(curve.n_images, numpy.nan)
        if valid.any():
            normalised[valid] = curve.subset(valid).auc(normalised=True)
        for image in range(curve.n_images):
            writer.writerow([image, int(curve.targets[image]), sort, f"{auc[image]:.8g}",
                             f"{normalised[image]:.8g}" if valid[image] else "", f"{aopc[image]:.8g}",
                             f"{curve.scores[image, 0]:.8g}", f"{curve.scores[image, -1]:.8g}"])
    results = {
        "model": os.path.abspath(args.model), "model_name": name, "data": data_description,
        "method": args.method, "composite": args.method, "dtype": dtype_name(model),
        "target": target if isinstance(target, str) else (int(target) if isinstance(target, int) else "label"),
        "settings": {key: (list(value) if isinstance(value, tuple) else value) for key, value in options.items()},
        "curves": {},
    }
    for sort, curve in curves.items():
        valid = curve.valid
        results["curves"][sort] = {
            "summary": curve.summary(),
            "fractions": curve.fractions.tolist(),
            "mean_scores": curve.mean_scores().tolist(),
            "mean_normalised_scores": curve.subset(valid).mean_scores(True).tolist() if valid.any() else None,
            "auc": curve.auc().tolist(),
            "aopc": curve.aopc().tolist(),
            "targets": curve.targets.tolist(),
        }
    outputs.add_text("per_image.csv", table.getvalue())
    outputs.add_text("results.json", json.dumps(results, indent=2))
