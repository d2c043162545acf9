"""``lrpcore evaluate MODEL DATA``: pixel flipping of LRP heatmaps, with curves, AUCs and a summary line.

MODEL: an lrpcore model file (or anything ``lrpcore convert`` reads). DATA: either

- a ``.npy`` file of *raw* inputs (N, C, H, W) in the model's value range (``--preprocessed``
  if they are already model inputs), with ``--targets FILE.npy`` (N,) class labels, or
- a generator spec ``NAME:N[:key=value...]`` for the shipped data sets, e.g. ``shapes:32:seed=1``
  or ``shapes:16:seed=2:watermark=true``: ``lrpcore.data.NAME(N, **options)`` (``shapes``,
  ``motifs``); the labels are the targets, and for ``shapes`` the image size defaults to the
  model's input size.

Heatmaps come from ``lrpcore.baselines.attribute`` with ``--method`` (alias ``--composite``): an LRP
composite preset, or a baseline of :mod:`lrpcore.baselines` (``gradient``, ``gradient_x_input``,
``smoothgrad``, ``integrated_gradients``, ``occlusion``, ``guided_backprop``, ``deconvnet``, ``uniform``,
and ``random``, the thesis' seeded uniform [0, 1) noise heatmap, or ``random_normal``). Each
``--sort`` gives one curve. Written to ``--out DIR``
(created if missing; existing result files are never replaced without ``--overwrite``):
``curve.png`` (mean normalised curves, AUC in the legend), ``steps.png`` (image 0 step by step),
``per_image.csv`` (one row per image and sort), ``results.json`` (settings, summaries, mean
curves, per-image AUCs). One summary line goes to stdout.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import time
from typing import Any

import numpy

from ..errors import InputValueError, ShapeError
from ._models import add_source_arguments, read_model, source_options

OUTPUT_FILES = ("curve.png", "steps.png", "per_image.csv", "results.json")
GENERATORS = ("shapes", "motifs")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from ..baselines import BASELINES
    from ..composites import PRESETS

    methods = sorted(PRESETS) + list(BASELINES)
    parser = subparsers.add_parser(
        "evaluate",
        help="pixel flipping of LRP (or baseline) heatmaps: perturbation curves, AUC, AOPC",
        description="Explain DATA with MODEL under a composite or a baseline method, perturb the most (or least) "
                    "relevant patches step by step, and record the target score: curve PNG, per-image CSV/JSON "
                    "with AUCs, and a summary line. DATA is a .npy file of raw inputs (with --targets) or a "
                    "generator spec "
                    "NAME:N[:key=value...] such as shapes:32:seed=1.",
        epilog="example: lrpcore evaluate models/shapes_cnn.h5 shapes:32:seed=1 --method epsilon_plus "
               "--sort morf lrf random --mode inpaint --out pf_results",
    )
    parser.add_argument("model", metavar="MODEL", help="model file (lrpcore .h5, or what 'lrpcore convert' reads)")
    parser.add_argument("data", metavar="DATA", help="raw inputs .npy, or NAME:N[:key=value...] with NAME in "
                                                     f"{', '.join(GENERATORS)}")
    parser.add_argument("--targets", metavar="FILE", help="(N,) integer class labels (.npy) for .npy DATA")
    parser.add_argument("--target", choices=("label", "pred"), default=None,
                        help="explain and score the label (default when labels are known) or the predicted class")
    parser.add_argument("--preprocessed", action="store_true",
                        help=".npy DATA already holds model inputs (do not apply the model's preprocessing)")
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
    parser.add_argument("--batch-size", type=int, default=32, help="inputs per model call (default 32)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of random sorts, random mode, noise heatmaps and SmoothGrad")
    parser.add_argument("--out", metavar="DIR", required=True, help="output folder (created if missing)")
    parser.add_argument("--overwrite", action="store_true", help="replace result files already in DIR")
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
        if not os.path.isfile(args.data):
            raise FileNotFoundError(f"DATA {args.data!r} is neither a file nor a generator spec "
                                    f"NAME:N[:key=value...] ({', '.join(GENERATORS)})")
        try:
            raw = numpy.load(args.data, allow_pickle=False)
        except ValueError as error:
            raise InputValueError(f"{args.data}: not a plain .npy array ({error})") from None
        if raw.dtype.kind != "f":
            raise InputValueError(f"{args.data}: inputs must be floating point (raw values in the model's value "
                                  f"range), got dtype {raw.dtype}")
        labels = None
        if args.targets is not None:
            labels = numpy.load(args.targets, allow_pickle=False)
            if labels.dtype.kind not in "iu" or labels.shape != (raw.shape[0],):
                raise ShapeError(f"{args.targets}: targets must be {raw.shape[0]} integers (one per input), "
                                 f"got {labels.dtype} array of shape {labels.shape}")
        description = {"file": os.path.abspath(args.data), "targets": args.targets}
    inputs = raw if args.preprocessed else model.metadata.preprocess(numpy.asarray(raw, dtype=numpy.float64))
    return numpy.asarray(inputs, dtype=numpy.float32), labels, description


def _targets(args: Any, labels: numpy.ndarray | None) -> Any:
    choice = args.target or ("label" if labels is not None else "pred")
    if choice == "label":
        if labels is None:
            raise InputValueError("--target label needs labels: give --targets FILE.npy (or use --target pred)")
        return labels
    return "pred"


def _heatmaps(model: Any, inputs: numpy.ndarray, target: Any, method: str, batch_size: int,
              seed: int) -> tuple[numpy.ndarray, numpy.ndarray]:
    """(relevance, explained targets), attributed in chunks of ``batch_size``; seeded methods draw per
    image (by its index in DATA), so the chunking does not change them."""
    from ..backend import to_numpy
    from ..baselines import attribute

    seeded = method in ("random", "random_normal", "smoothgrad")
    relevances, targets = [], []
    for start in range(0, len(inputs), batch_size):
        stop = min(start + batch_size, len(inputs))
        part = target if isinstance(target, str) else target[start:stop]
        options = {"seed": seed, "image_ids": range(start, stop)} if seeded else {}
        attribution = attribute(model, inputs[start:stop], part, method, **options)
        relevances.append(to_numpy(attribution.relevance))
        targets.append(to_numpy(attribution.target))
    return numpy.concatenate(relevances), numpy.concatenate(targets)


def _check_output(folder: str, overwrite: bool) -> None:
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise FileExistsError(f"--out {folder!r} exists and is not a folder")
    existing = [name for name in OUTPUT_FILES if os.path.exists(os.path.join(folder, name))]
    if existing and not overwrite:
        raise FileExistsError(f"{folder} already holds {', '.join(existing)}; pass --overwrite to replace them "
                              "or choose another --out")


def _number(value: Any) -> Any:
    return None if value is None else float(value)


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..evaluate import pixel_flipping
    from ..plot.perturbation import perturbation_curve, perturbation_steps

    _check_output(args.out, args.overwrite)
    start = time.perf_counter()
    model, _ = read_model(args.model, **source_options(args))
    inputs, labels, data_description = load_data(args, model)
    target = _targets(args, labels)
    relevance, targets = _heatmaps(model, inputs, target, args.method, args.batch_size, args.seed)
    options = dict(mode=args.mode, patch_size=args.patch_size, schedule=args.schedule, steps=args.steps,
                   final_gray=args.final_gray, reperturb=args.reperturb, channel_reduce=args.channel_reduce,
                   score=args.score, seed=args.seed, batch_size=args.batch_size, constant=args.constant)
    curves = {sort: pixel_flipping(model, inputs, relevance, targets, sort=sort, **options) for sort in args.sort}
    first = args.sort[0]
    example = pixel_flipping(model, inputs[:1], relevance[:1], targets[:1], sort=first, keep_images=True, **options)

    os.makedirs(args.out, exist_ok=True)
    _check_output(args.out, args.overwrite)  # again: another process may have written meanwhile
    name = model.metadata.name or os.path.basename(args.model)
    figure = perturbation_curve(curves, normalised=any(curve.valid.any() for curve in curves.values()),
                                title=f"{name}, {args.method}, {args.mode}, {len(inputs)} images")
    figure.savefig(os.path.join(args.out, "curve.png"), dpi=120, bbox_inches="tight")
    plt.close(figure)
    figure = perturbation_steps(example, relevance=relevance[0], metadata=model.metadata)
    figure.savefig(os.path.join(args.out, "steps.png"), dpi=120, bbox_inches="tight")
    plt.close(figure)

    with open(os.path.join(args.out, "per_image.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
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
        "method": args.method, "composite": args.method, "target": target if isinstance(target, str) else "label",
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
    with open(os.path.join(args.out, "results.json"), "w") as handle:
        json.dump(results, handle, indent=2)

    parts = []
    for sort, curve in curves.items():
        summary = curve.summary()
        normalised = summary["auc_normalised"]
        better = f", {curve.better} is better" if curve.better else ""
        parts.append(f"{sort} AUC {summary['auc']:.4g}"
                     + (f" (normalised {normalised:.4g}{better})" if normalised is not None else better)
                     + f", AOPC {summary['aopc']:.4g}")
    calls = sum(curve.model_calls for curve in curves.values())
    print(f"{name}: {len(inputs)} images, {args.method}, {args.mode}: " + "; ".join(parts)
          + f"; {calls} model calls, {time.perf_counter() - start:.1f} s; wrote {args.out}/")
    return 0
