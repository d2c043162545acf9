"""``lrpcore stability [MODEL] [INPUT]``: compare denominator stabilizers on one model and input.

Runs :func:`lrpcore.stability.compare_stabilizers` (stabilizers × ε values × dtypes) and writes to
DIR (``--out``; default a fresh folder ``lrpcore_out/stability``, ``stability-2``, ...):
``comparison.txt`` (one table per input: verdict, instability statistic, worst conservation
error and smallest |z| with their layers, near-zero/zero denominator counts, difference between
dtypes, and what each column means), ``comparison.csv`` (every per-layer number),
``profiles_sample<n>.png`` (per-layer conservation error and |z| profiles) and
``heatmaps_sample<n>.png`` (the input and the heatmaps, unstable ones framed, with a colour bar
and a title), and for every unstable heatmap ``diagnosis.txt`` (layer and neurons, see
:func:`lrpcore.stability.locate_instability`). The files are written together (all or none) and
recorded in ``DIR/.lrpcore-outputs.json``: ``--overwrite`` replaces the files of the previous
``lrpcore stability`` there and removes those it does not write again (the PNGs of samples no
longer given, a ``diagnosis.txt`` with nothing to diagnose), so DIR never mixes two runs; a file it
did not write is never replaced or removed.

MODEL: a model file (anything ``lrpcore inspect`` reads), the name of a shipped model
(default ``shapes_cnn``) or a built-in name: ``vgg16`` (random torchvision-style weights,
``--input-size``, default 32) or ``linear_bottleneck`` (the small network of
:func:`lrpcore.stability.linear_bottleneck_network`). INPUT: a ``.npy`` array (N, C, H, W) or one
sample (C, H, W) of raw values in the model's value range (``--preprocessed`` if it already is the
model input; values outside the range are refused unless ``--allow-out-of-range``; ``uint8`` and
``uint16`` arrays are scaled into the range), or an image file (PNG/JPEG; 8-bit images scaled by
1/255, 16-bit ones by 1/65535, into the model's value range, and resized to the model's input).
Every automatic rescaling and resizing is announced on stderr. Without INPUT, one is generated as
``lrpcore explain`` does (a shapes or digits image; for the built-in random networks, uniform noise
in the value range), seeded by ``--seed``.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy

from ..errors import InputValueError, ShapeError
from ._common import fresh_output, target_from_text
from ._inputs import announce, as_raw_values, check_not_empty, check_value_range, input_file, read_image, scale_note

OUTPUTS = ("comparison.txt", "comparison.csv")
BUILT_IN = ("vgg16", "linear_bottleneck")

EPILOG = """examples:
  lrpcore stability                                   the shipped shapes_cnn on a generated image
  lrpcore stability linear_bottleneck --composite tutorial --dtypes float16 float32 float64
  lrpcore stability models/shapes_cnn.h5 x.npy --target cross --out stability/

The table has one line per setting (stabilizer, epsilon, dtype). Its columns: verdict (UNSTABLE
when the statistic exceeds 2, the heatmap holds NaN/inf, or relevance met an exactly zero
denominator); statistic = log10(max pixel |R| / 95th percentile of pixel |R|), the orders of
magnitude by which the strongest pixel exceeds a typical strong one (natural heatmaps 0.3-1.5,
collapsed "patches" 2 and more); the largest conservation error and the smallest denominator
|z| with their layers; counts of near-zero and zero denominators; and "Δ dtype" = ||R - R_ref||
/ ||R_ref||, the heatmap's relative difference to the same setting in the most precise dtype
compared (0 for that dtype itself)."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from ..composites import PRESETS
    from ..stabilizers import STABILIZERS
    from ._models import add_source_arguments

    parser = subparsers.add_parser(
        "stability",
        help="compare LRP denominator stabilizers, epsilon values and precisions on a model and input",
        description="Explain INPUT with MODEL once per stabilizer, epsilon and dtype and report where relevance "
                    "is not conserved, which denominators came close to zero and which heatmaps collapsed "
                    "into patches. Without arguments: the shipped shapes_cnn on a generated image.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", nargs="?", metavar="MODEL", default=None,
                        help="model file (any format 'lrpcore inspect' reads), a shipped model name (default "
                             "shapes_cnn), or 'vgg16' / 'linear_bottleneck' (built-in random networks)")
    parser.add_argument("input", nargs="?", metavar="INPUT", default=None,
                        help=".npy array or image file (default: a generated input, as 'lrpcore explain' makes)")
    parser.add_argument("--composite", metavar="NAME", default="tutorial", choices=sorted(PRESETS),
                        help="composite preset (default tutorial)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="output directory (created if missing; default: a new lrpcore_out/stability, "
                             "stability-2, ...)")
    parser.add_argument("--stabilizers", metavar="NAME", nargs="+", default=["vanilla", "zennit", "quadratic_mean"],
                        choices=sorted(STABILIZERS), help="stabilizers to compare (default vanilla zennit "
                                                          "quadratic_mean)")
    parser.add_argument("--epsilons", metavar="EPS", nargs="+", type=float, default=None,
                        help="epsilon values replacing every rule's epsilon (default: keep each rule's own)")
    parser.add_argument("--dtypes", metavar="DTYPE", nargs="+", default=["float32", "float64"],
                        choices=["float16", "float32", "float64"],
                        help="precisions compared (default float32 float64; float16 runs in a slow loop)")
    parser.add_argument("--target", metavar="CLASS", default="pred",
                        help="class to explain: 'pred' (the predicted class of each input, default), a class "
                             "index or a class name such as 'cross'")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the generated input and of the built-in models' random weights (default 0)")
    parser.add_argument("--samples", type=int, default=1, metavar="N",
                        help="number of generated inputs when no INPUT is given (default 1)")
    parser.add_argument("--preprocessed", action="store_true",
                        help="INPUT already holds model inputs (skip the model's mean/std preprocessing)")
    parser.add_argument("--allow-out-of-range", action="store_true",
                        help="accept raw values outside the model's value range (refused by default)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the files of an earlier 'lrpcore stability' in DIR (and remove those it does "
                             "not write again); files it did not write are never touched")
    add_source_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def _model(name: str | None, args: argparse.Namespace) -> tuple[Any, str]:
    """(model, where it came from): a built-in network, a shipped model or a model file."""
    if name == "vgg16":
        from ..models import vgg16

        size = args.input_size or 32          # --input-size: the image side of a VGG (default 32 here)
        origin = f"built-in vgg16 {size}x{size} (random weights, seed {args.seed})"
        return vgg16(input_size=size, seed=args.seed), origin
    if name == "linear_bottleneck":
        from ..stability import linear_bottleneck_network

        return linear_bottleneck_network(seed=args.seed, size=32), f"built-in linear_bottleneck (seed {args.seed})"
    from ._common import load_model

    try:
        return load_model(name, args)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{error} (built-in names: {', '.join(BUILT_IN)})") from None


def _generated(model: Any, seed: int, count: int) -> tuple[numpy.ndarray, str, numpy.ndarray | None]:
    """Raw inputs like ``lrpcore explain`` generates them; uniform noise in the value range for other models."""
    from .explain import _generated_inputs

    try:
        generated = _generated_inputs(model, seed, count)
        return numpy.asarray(generated.raw, dtype=numpy.float64), generated.description, generated.labels
    except InputValueError:
        shape = tuple(model.metadata.input_shape or ())
        if not shape:
            raise InputValueError(f"no INPUT given and model {model.metadata.name!r} does not state its input "
                                  "shape; pass an INPUT file") from None
        low, high = model.metadata.value_range
        values = numpy.random.default_rng(seed).uniform(low, high, size=(count, *shape))
        return values, f"{count} uniform random input(s) in [{low:g}, {high:g}] (seed {seed})", None


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


def _output_set(args: argparse.Namespace, count: int) -> Any:
    """The output folder's files as one recorded set (lrpcore._outputs), checked before any work: only this
    command's files of an earlier run are replaced, and only with --overwrite. Without --out, a fresh folder."""
    from .._outputs import OutputSet

    names = list(OUTPUTS) + ["diagnosis.txt"] + [f"{kind}_sample{n}.png" for n in range(count)
                                                   for kind in ("profiles", "heatmaps")]
    out = args.out
    if out is None:   # a fresh folder: a rerun never fails and never replaces a file
        from pathlib import Path

        out = str(fresh_output("stability", lambda candidate: [candidate]))
        Path(out).mkdir()
    if os.path.exists(out) and not os.path.isdir(out):
        raise FileExistsError(f"--out {out!r} exists and is not a folder")
    outputs = OutputSet(out, "stability", overwrite=args.overwrite)
    outputs.check(names)
    return outputs, out


def run(args: argparse.Namespace) -> int:
    from .._progress import progress_bar
    from ..plot.stability import plot_heatmap_row, plot_layer_profiles
    from ..stability import compare_stabilizers, locate_instability
    from ._common import class_label

    model, origin = _model(args.model, args)
    if args.samples < 1:
        raise InputValueError(f"--samples must be at least 1, got {args.samples}")
    if args.input is None:
        if args.preprocessed:
            raise InputValueError("--preprocessed applies to an INPUT file only; generated inputs are raw")
        raw, description, labels = _generated(model, args.seed, args.samples)
        x = numpy.asarray(model.metadata.preprocess(raw), dtype=numpy.float64)
    else:
        if args.samples != 1:
            raise InputValueError("--samples applies to generated inputs only, not to an INPUT file")
        x = _read_input(args.input, model, args.preprocessed, args.allow_out_of_range)
        raw, description, labels = numpy.asarray(model.metadata.deprocess(x)), args.input, None
    target = target_from_text(args.target, model)
    outputs, out = _output_set(args, x.shape[0])
    epsilons = tuple(args.epsilons) if args.epsilons else (None,)
    runs = len(args.stabilizers) * len(epsilons) * len(args.dtypes)
    with progress_bar(runs, "explaining", unit="setting") as bar:
        comparison = compare_stabilizers(model, x, args.composite, stabilizers=tuple(args.stabilizers),
                                         epsilons=epsilons, dtypes=tuple(args.dtypes), target=target,
                                         progress=bar.update)
    header = (f"model: {model.metadata.name} ({origin})\ninput: {description}\ncomposite: {args.composite}; "
              f"precisions compared: {', '.join(args.dtypes)}")
    text = header + "\n\n" + str(comparison)
    diagnoses = []
    name = model.metadata.name or "model"
    explained = numpy.asarray(next(iter(comparison.explanations.values())).target)
    image_shaped = raw.ndim == 4 and raw.shape[1] in (1, 3)
    with outputs:  # all files or none; the previous run's files not written again are removed
        outputs.add_text("comparison.txt", text + "\n")
        outputs.add_text("comparison.csv", comparison.to_csv())
        for sample in comparison.samples:
            outputs.add_figure(f"profiles_sample{sample}.png", plot_layer_profiles(comparison, sample), dpi=110)
            rows = comparison.rows_for(sample)
            heatmaps = {row.label: comparison.heatmaps[(row.stabilizer, row.epsilon, row.dtype)][sample]
                        for row in rows}
            flags = {row.label: row.unstable for row in rows}
            truth = f", true class {class_label(model, int(labels[sample]))}" if labels is not None else ""
            title = (f"{name}: sample {sample}, explaining '{class_label(model, int(explained[sample]))}'{truth}; "
                     f"composite {args.composite}; red frame = unstable")
            figure = plot_heatmap_row(heatmaps, flags, image=raw[sample] if image_shaped else None,
                                      value_range=model.metadata.value_range, title=title)
            outputs.add_figure(f"heatmaps_sample{sample}.png", figure, dpi=110)
            for row in rows:
                if row.unstable:
                    key = (row.stabilizer, row.epsilon, row.dtype)
                    diagnoses.append(f"[{row.label}] {row.reason}\n"
                                     + str(locate_instability(comparison.explanations[key], sample)))
        if diagnoses:
            outputs.add_text("diagnosis.txt", "\n\n".join(diagnoses) + "\n")
    print(text)
    print(f"\n{len(diagnoses)} unstable heatmap(s); wrote {out}")
    return 0
