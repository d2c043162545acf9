"""``lrpcore stability [MODEL] [INPUT]``: compare denominator stabilizers on one model and input.

Runs :func:`lrpcore.stability.compare_stabilizers` (stabilizers × ε values × dtypes) and writes to
DIR (``--out``; default a fresh folder ``lrpcore_out/stability``, ``stability-2``, ...):
``comparison.txt`` (one table per input: verdict, instability statistic, worst conservation
error and smallest |z| with their layers, near-zero/zero denominator counts, difference between
dtypes, and what each column means), ``comparison.csv`` (every per-layer number),
``profiles_sample<n>.png`` (per-layer conservation error and |z| profiles) and
``heatmaps_sample<n>.png`` (the input and the heatmaps, unstable ones framed, with a colour bar
and a title), and for every unstable heatmap ``diagnosis.txt`` (layer and neurons, see
:func:`lrpcore.stability.locate_instability`). Existing files are never replaced without
``--overwrite``.

MODEL: a model file (anything ``lrpcore inspect`` reads), the name of a shipped model
(default ``shapes_cnn``) or a built-in name: ``vgg16`` (random torchvision-style weights,
``--input-size``, default 32) or ``linear_bottleneck`` (the small network of
:func:`lrpcore.stability.linear_bottleneck_network`). INPUT: a ``.npy`` array (N, C, H, W) or one
sample (C, H, W) of raw values in the model's value range (``--preprocessed`` if it already is the
model input), or an image file (PNG/JPEG, scaled to [0, 1] and resized to the model's input).
Without INPUT, one is generated as ``lrpcore explain`` does (a shapes or digits image; for the
built-in random networks, uniform noise in the value range), seeded by ``--seed``.
"""
from __future__ import annotations

import argparse
import os
from typing import Any

import numpy

from ..errors import InputValueError, ShapeError
from ._common import fresh_output, target_from_text, write_figure

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
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
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


def _read_input(path: str, model: Any, preprocessed: bool) -> numpy.ndarray:
    if not os.path.exists(path):
        raise FileNotFoundError(f"input file {path!r} does not exist")
    shape = tuple(model.metadata.input_shape) if model.metadata.input_shape else None
    if path.lower().endswith(".npy"):
        values = numpy.load(path, allow_pickle=False)
        if values.dtype.kind not in "fiu":
            raise InputValueError(f"{path}: array dtype {values.dtype} is not numeric")
        values = values.astype(numpy.float64)
    else:
        from PIL import Image

        if shape is None or len(shape) != 3:
            raise ShapeError(f"{path}: images need a model with a (C, H, W) input shape, got {shape}")
        image = Image.open(path).convert("RGB" if shape[0] == 3 else "L").resize((shape[2], shape[1]))
        values = numpy.asarray(image, dtype=numpy.float64) / 255.0
        values = values.transpose(2, 0, 1) if values.ndim == 3 else values[None]
    if shape is not None and values.shape == shape:
        values = values[None]
    if shape is not None and values.shape[1:] != shape:
        raise ShapeError(f"{path}: input of shape {values.shape} does not fit the model's input (N, "
                         f"{', '.join(map(str, shape))})")
    if not numpy.isfinite(values).all():
        raise InputValueError(f"{path}: input contains NaN or inf")
    return values if preprocessed else numpy.asarray(model.metadata.preprocess(values), dtype=numpy.float64)


def _output_folder(args: argparse.Namespace, count: int) -> str:
    names = list(OUTPUTS) + ["diagnosis.txt"] + [f"{kind}_sample{n}.png" for n in range(count)
                                                   for kind in ("profiles", "heatmaps")]
    if args.out is None:   # a fresh folder: a rerun never fails and never replaces a file
        from pathlib import Path

        folder = fresh_output("stability", lambda candidate: [candidate])
        Path(folder).mkdir()
        return str(folder)
    existing = [name for name in names if os.path.exists(os.path.join(args.out, name))]
    if existing and not args.overwrite:
        raise FileExistsError(f"{args.out} already holds {', '.join(existing)}; pass --overwrite to replace them")
    os.makedirs(args.out, exist_ok=True)
    return args.out


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
        x = _read_input(args.input, model, args.preprocessed)
        raw, description, labels = numpy.asarray(model.metadata.deprocess(x)), args.input, None
    target = target_from_text(args.target, model)
    out = _output_folder(args, x.shape[0])
    epsilons = tuple(args.epsilons) if args.epsilons else (None,)
    runs = len(args.stabilizers) * len(epsilons) * len(args.dtypes)
    with progress_bar(runs, "explaining", unit="setting") as bar:
        comparison = compare_stabilizers(model, x, args.composite, stabilizers=tuple(args.stabilizers),
                                         epsilons=epsilons, dtypes=tuple(args.dtypes), target=target,
                                         progress=bar.update)
    header = (f"model: {model.metadata.name} ({origin})\ninput: {description}\ncomposite: {args.composite}; "
              f"precisions compared: {', '.join(args.dtypes)}")
    text = header + "\n\n" + str(comparison)
    with open(os.path.join(out, "comparison.txt"), "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    with open(os.path.join(out, "comparison.csv"), "w", encoding="utf-8", newline="") as handle:
        handle.write(comparison.to_csv())
    diagnoses = []
    name = model.metadata.name or "model"
    explained = numpy.asarray(next(iter(comparison.explanations.values())).target)
    image_shaped = raw.ndim == 4 and raw.shape[1] in (1, 3)
    for sample in comparison.samples:
        figure = plot_layer_profiles(comparison, sample)
        write_figure(figure, os.path.join(out, f"profiles_sample{sample}.png"), overwrite=True, dpi=110)
        rows = comparison.rows_for(sample)
        heatmaps = {row.label: comparison.heatmaps[(row.stabilizer, row.epsilon, row.dtype)][sample] for row in rows}
        flags = {row.label: row.unstable for row in rows}
        truth = f", true class {class_label(model, int(labels[sample]))}" if labels is not None else ""
        title = (f"{name}: sample {sample}, explaining '{class_label(model, int(explained[sample]))}'{truth}; "
                 f"composite {args.composite}; red frame = unstable")
        figure = plot_heatmap_row(heatmaps, flags, image=raw[sample] if image_shaped else None,
                                  value_range=model.metadata.value_range, title=title)
        # existing files were refused above unless --overwrite
        write_figure(figure, os.path.join(out, f"heatmaps_sample{sample}.png"), overwrite=True, dpi=110)
        for row in rows:
            if row.unstable:
                key = (row.stabilizer, row.epsilon, row.dtype)
                diagnoses.append(f"[{row.label}] {row.reason}\n"
                                 + str(locate_instability(comparison.explanations[key], sample)))
    if diagnoses:
        with open(os.path.join(out, "diagnosis.txt"), "w", encoding="utf-8") as handle:
            handle.write("\n\n".join(diagnoses) + "\n")
    print(text)
    print(f"\n{len(diagnoses)} unstable heatmap(s); wrote {out}")
    return 0
