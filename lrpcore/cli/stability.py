"""``lrpcore stability MODEL INPUT --out DIR``: compare denominator stabilizers on one model and input.

Runs :func:`lrpcore.stability.compare_stabilizers` (stabilizers × ε values × dtypes) and writes to
DIR: ``comparison.txt`` (one table per input: verdict, instability statistic, worst conservation
error and smallest |z| with their layers, near-zero/zero denominator counts, difference between
dtypes), ``comparison.csv`` (every per-layer number), ``profiles_sample<n>.png`` (per-layer
conservation error and |z| profiles) and ``heatmaps_sample<n>.png`` (the heatmaps, unstable ones
framed), and for every unstable heatmap ``diagnosis.txt`` (layer and neurons, see
:func:`lrpcore.stability.locate_instability`). Existing files are never replaced without
``--overwrite``.

MODEL: a model file (anything ``lrpcore inspect`` reads) or a built-in name: ``vgg16`` (random
torchvision-style weights, ``--input-size``) or ``linear_bottleneck`` (the small network of
:func:`lrpcore.stability.linear_bottleneck_network`). INPUT: a ``.npy`` array (N, C, H, W) or one
sample (C, H, W) of raw values in the model's value range (``--preprocessed`` if it already is the
model input), or an image file (PNG/JPEG, scaled to [0, 1] and resized to the model's input).
"""
from __future__ import annotations

import argparse
import os
from typing import Any

import numpy

from ..errors import InputValueError, ShapeError

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
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
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


def run(args: argparse.Namespace) -> int:
    from ..plot.stability import plot_heatmap_row, plot_layer_profiles
    from ..stability import compare_stabilizers, locate_instability

    model = _model(args.model, args.input_size, args.seed)
    x = _read_input(args.input, model, args.preprocessed)
    names = list(OUTPUTS) + ["diagnosis.txt"] + [f"{kind}_sample{n}.png" for n in range(x.shape[0])
                                                   for kind in ("profiles", "heatmaps")]
    existing = [name for name in names if os.path.exists(os.path.join(args.out, name))]
    if existing and not args.overwrite:
        raise FileExistsError(f"{args.out} already holds {', '.join(existing)}; pass --overwrite to replace them")
    os.makedirs(args.out, exist_ok=True)
    epsilons = tuple(args.epsilons) if args.epsilons else (None,)
    comparison = compare_stabilizers(model, x, args.composite, stabilizers=tuple(args.stabilizers),
                                     epsilons=epsilons, dtypes=tuple(args.dtypes), target=args.target)
    text = str(comparison)
    with open(os.path.join(args.out, "comparison.txt"), "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    with open(os.path.join(args.out, "comparison.csv"), "w", encoding="utf-8", newline="") as handle:
        handle.write(comparison.to_csv())
    diagnoses = []
    for sample in comparison.samples:
        plot_layer_profiles(comparison, sample, path=os.path.join(args.out, f"profiles_sample{sample}.png"),
                            overwrite=True)    # existing files were refused above unless --overwrite
        rows = comparison.rows_for(sample)
        heatmaps = {row.label: comparison.heatmaps[(row.stabilizer, row.epsilon, row.dtype)][sample] for row in rows}
        flags = {row.label: row.unstable for row in rows}
        plot_heatmap_row(heatmaps, flags, path=os.path.join(args.out, f"heatmaps_sample{sample}.png"), overwrite=True)
        for row in rows:
            if row.unstable:
                key = (row.stabilizer, row.epsilon, row.dtype)
                diagnoses.append(f"[{row.label}] {row.reason}\n"
                                 + str(locate_instability(comparison.explanations[key], sample)))
    if diagnoses:
        with open(os.path.join(args.out, "diagnosis.txt"), "w", encoding="utf-8") as handle:
            handle.write("\n\n".join(diagnoses) + "\n")
    print(text)
    print(f"\n{len(diagnoses)} unstable heatmap(s); wrote {args.out}")
    return 0
