"""``lrpcore stability MODEL INPUT --out DIR``: compare denominator stabilizers on one model and input.

Runs :func:`lrpcore.stability.compare_stabilizers` (stabilizers × ε values × dtypes) and writes to
DIR: ``comparison.txt`` (one table per input: verdict, instability statistic, worst conservation
error and smallest |z| with their layers, near-zero/zero denominator counts, difference between
dtypes), ``comparison.csv`` (every per-layer number), ``profiles_sample<n>.png`` (per-layer
conservation error and |z| profiles) and ``heatmaps_sample<n>.png`` (the heatmaps, unstable ones
framed), and for every unstable heatmap ``diagnosis.txt`` (layer and neurons, see
:func:`lrpcore.stability.locate_instability`). The files are written together (all or none) and
recorded in ``DIR/.lrpcore-outputs.json``: ``--overwrite`` replaces the files of the previous
``lrpcore stability`` there and removes those it does not write again (the PNGs of samples no
longer given, a ``diagnosis.txt`` with nothing to diagnose), so DIR never mixes two runs; a file it
did not write is never replaced or removed.

MODEL: a model file (anything ``lrpcore inspect`` reads) or a built-in name: ``vgg16`` (random
torchvision-style weights, ``--input-size``) or ``linear_bottleneck`` (the small network of
:func:`lrpcore.stability.linear_bottleneck_network`). INPUT: a ``.npy`` array (N, C, H, W) or one
sample (C, H, W) of raw values in the model's value range (``--preprocessed`` if it already is the
model input; values outside the range are refused unless ``--allow-out-of-range``; ``uint8`` and
``uint16`` arrays are scaled into the range), or an image file (PNG/JPEG; 8-bit images scaled by
1/255, 16-bit ones by 1/65535, into the model's value range, and resized to the model's input).
Every automatic rescaling and resizing is announced on stderr.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy

from ..errors import InputValueError, ShapeError
from ._inputs import announce, as_raw_values, check_not_empty, check_value_range, input_file, read_image, scale_note

OUTPUTS = ("comparison.txt", "comparison.csv")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from ..composites import PRESETS
    from ..stabilizers import STABILIZERS

    parser = subparsers.add_parser(
        "stability",
        help="compare LRP denominator stabilizers, ε values and precisions on a model and input",
        description="Explain INPUT with MODEL once per stabilizer, ε and dtype and report where relevance "
                    "is not conserved, which denominators came close to zero and which heatmaps collapsed "
                    "into patches.",
        epilog="example: lrpcore stability linear_bottleneck x.npy --composite tutorial --out stability/",
    )
    parser.add_argument("model", metavar="MODEL", help="model file, or 'vgg16' / 'linear_bottleneck'")
    parser.add_argument("input", metavar="INPUT", help=".npy array or image file")
    parser.add_argument("--composite", metavar="NAME", default="tutorial", choices=sorted(PRESETS),
                        help="composite preset (default tutorial)")
    parser.add_argument("--out", metavar="DIR", required=True, help="output directory (created if missing)")
    parser.add_argument("--stabilizers", metavar="NAME", nargs="+", default=["vanilla", "zennit", "quadratic_mean"],
                        choices=sorted(STABILIZERS), help="stabilizers to compare")
    parser.add_argument("--epsilons", metavar="EPS", nargs="+", type=float, default=None,
                        help="ε values replacing every rule's ε (default: keep each rule's own)")
    parser.add_argument("--dtypes", metavar="DTYPE", nargs="+", default=["float32", "float64"],
                        choices=["float16", "float32", "float64"], help="precisions (default float32 float64)")
    parser.add_argument("--target", metavar="CLASS", type=int, default=None,
                        help="class to explain (default: the predicted class of each input)")
    parser.add_argument("--input-size", metavar="PIXELS", type=int, default=32,
                        help="image side for the built-in vgg16 (default 32)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the built-in models' random weights")
    parser.add_argument("--preprocessed", action="store_true",
                        help="INPUT already holds model inputs (skip the model's mean/std preprocessing)")
    parser.add_argument("--allow-out-of-range", action="store_true",
                        help="accept raw values outside the model's value range (refused by default)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the files of an earlier 'lrpcore stability' in DIR (and remove those it does "
                             "not write again); files it did not write are never touched")
    parser.set_defaults(run=run)
    return parser


def _model(name: str, input_size: int, seed: int) -> Any:
    if name == "vgg16":
        from ..models import vgg16

        return vgg16(input_size=input_size, seed=seed)
    if name == "linear_bottleneck":
        from ..stability import linear_bottleneck_network

        return linear_bottleneck_network(seed=seed, size=32)
    if not os.path.exists(name):
        raise FileNotFoundError(f"model file {name!r} does not exist (built-in names: vgg16, linear_bottleneck)")
    from ._models import read_model

    return read_model(name)[0]


def _read_image_resized(path: str, model: Any, shape: tuple[int, ...] | None) -> numpy.ndarray:
    """An image as raw values (1, C, H, W): scaled by its bit depth into the value range, resized to the model."""
    from PIL import Image

    if shape is None or len(shape) != 3:
        raise ShapeError(f"{path}: images need a model with a (C, H, W) input shape, got {shape}")
    values, bits = read_image(Path(path), shape[0])
    announce(scale_note(path, f"{bits}-bit image", 255 if bits == 8 else 65535, model.metadata.value_range))
    if values.shape[1:] != shape[1:]:
        announce(f"{path}: image resized from {values.shape[2]}x{values.shape[1]} to {shape[2]}x{shape[1]} "
                 "(width x height, bilinear)")
        values = numpy.stack([numpy.asarray(Image.fromarray(channel, mode="F").resize((shape[2], shape[1]),
                                                                                       Image.BILINEAR))
                              for channel in values.astype(numpy.float32)])
    low, high = (float(bound) for bound in model.metadata.value_range)
    return (low + (high - low) * values.astype(numpy.float64))[None]


def _read_input(path: str, model: Any, preprocessed: bool, allow_out_of_range: bool = False) -> numpy.ndarray:
    if not os.path.lexists(path):
        raise FileNotFoundError(f"input file {path!r} does not exist")
    input_file(path)  # a directory or a FIFO is named as such
    shape = tuple(model.metadata.input_shape) if model.metadata.input_shape else None
    if path.lower().endswith(".npy"):
        try:
            values = numpy.load(path, allow_pickle=False)
        except ValueError as error:
            raise InputValueError(f"{path}: not a plain .npy array ({error})") from None
        check_not_empty(values, path)
        if preprocessed:
            if values.dtype.kind not in "fiu":
                raise InputValueError(f"{path}: array dtype {values.dtype} is not numeric")
            values = values.astype(numpy.float64)
        else:
            values = as_raw_values(values, model.metadata.value_range, path, dtype=numpy.float64)
    else:
        values = _read_image_resized(path, model, shape)
    if shape is not None and values.shape == shape:
        values = values[None]
    if shape is not None and values.shape[1:] != shape:
        raise ShapeError(f"{path}: input of shape {values.shape} does not fit the model's input (N, "
                         f"{', '.join(map(str, shape))})")
    check_not_empty(values, path)
    check_value_range(values, None if (preprocessed or allow_out_of_range) else model.metadata.value_range, path,
                      "--allow-out-of-range")
    return values if preprocessed else numpy.asarray(model.metadata.preprocess(values), dtype=numpy.float64)


def run(args: argparse.Namespace) -> int:
    from ..plot.stability import plot_heatmap_row, plot_layer_profiles
    from ..stability import compare_stabilizers, locate_instability

    from .._outputs import OutputSet

    model = _model(args.model, args.input_size, args.seed)
    x = _read_input(args.input, model, args.preprocessed, args.allow_out_of_range)
    names = list(OUTPUTS) + ["diagnosis.txt"] + [f"{kind}_sample{n}.png" for n in range(x.shape[0])
                                                   for kind in ("profiles", "heatmaps")]
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise FileExistsError(f"--out {args.out!r} exists and is not a folder")
    outputs = OutputSet(args.out, "stability", overwrite=args.overwrite)
    outputs.check(names)  # before any work; only this command's files of an earlier run, and only with --overwrite
    epsilons = tuple(args.epsilons) if args.epsilons else (None,)
    comparison = compare_stabilizers(model, x, args.composite, stabilizers=tuple(args.stabilizers),
                                     epsilons=epsilons, dtypes=tuple(args.dtypes), target=args.target)
    text = str(comparison)
    diagnoses = []
    with outputs:  # all files or none; the previous run's files not written again are removed
        outputs.add_text("comparison.txt", text + "\n")
        outputs.add_text("comparison.csv", comparison.to_csv())
        for sample in comparison.samples:
            outputs.add_figure(f"profiles_sample{sample}.png", plot_layer_profiles(comparison, sample), dpi=110)
            rows = comparison.rows_for(sample)
            heatmaps = {row.label: comparison.heatmaps[(row.stabilizer, row.epsilon, row.dtype)][sample]
                        for row in rows}
            flags = {row.label: row.unstable for row in rows}
            outputs.add_figure(f"heatmaps_sample{sample}.png", plot_heatmap_row(heatmaps, flags), dpi=110)
            for row in rows:
                if row.unstable:
                    key = (row.stabilizer, row.epsilon, row.dtype)
                    diagnoses.append(f"[{row.label}] {row.reason}\n"
                                     + str(locate_instability(comparison.explanations[key], sample)))
        if diagnoses:
            outputs.add_text("diagnosis.txt", "\n\n".join(diagnoses) + "\n")
    print(text)
    print(f"\n{len(diagnoses)} unstable heatmap(s); wrote {args.out}")
    return 0
