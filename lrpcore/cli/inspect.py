"""``lrpcore inspect MODEL``: what a model file holds and which LRP rule each layer would get.

Prints the layer table (index, layer, output shape, parameter count), the metadata (input
shape, raw value range and the model-input bounds z^B uses, preprocessing, class names,
description) and the rule table of a composite (``--composite``, default
``epsilon_gamma_box``). MODEL may be an lrpcore file or anything ``lrpcore convert`` reads;
non-lrpcore files are converted in memory only.
"""
from __future__ import annotations

import argparse
from typing import Any

import numpy

from ..backend import to_numpy
from ..graph import Graph
from ._models import add_source_arguments, read_model, source_options

DEFAULT_COMPOSITE = "epsilon_gamma_box"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    from ..composites import PRESETS

    parser = subparsers.add_parser(
        "inspect",
        help="show a model's layers, shapes, parameters, metadata and LRP rules",
        description="Show what a model file holds: layers with output shapes and parameter counts, the input "
                    "value range and the bounds z^B uses, preprocessing, class names, and the LRP rule each "
                    "layer gets under a composite. Reads lrpcore files and, converting in memory, Keras and "
                    "PyTorch files (see 'lrpcore convert --help').",
        epilog="example: lrpcore inspect models/shapes_cnn.h5 --composite tutorial",
    )
    parser.add_argument("model", metavar="MODEL", help="model file (lrpcore .h5, Keras .h5/.keras/.weights.h5, "
                                                       "PyTorch .pt/.pth with --arch)")
    parser.add_argument("--composite", metavar="NAME", default=DEFAULT_COMPOSITE, choices=sorted(PRESETS),
                        help=f"composite whose rules are listed (default {DEFAULT_COMPOSITE}); one of "
                             f"{', '.join(sorted(PRESETS))}")
    add_source_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def _numbers(values: Any) -> str:
    flat = numpy.asarray(to_numpy(values), dtype=numpy.float64).ravel()
    if flat.size and numpy.all(flat == flat[0]):
        return f"{flat[0]:.6g}"
    return "(" + ", ".join(f"{value:.6g}" for value in flat) + ")"


def describe_metadata(model: Graph) -> str:
    """The metadata block of the report."""
    metadata = model.metadata
    low, high = metadata.value_range
    lines = [f"name:         {metadata.name}"]
    shape = tuple(metadata.input_shape) if metadata.input_shape else None
    lines.append(f"input shape:  {shape if shape else 'not stored'}"
                 + (f" (per sample; batches are (N, {', '.join(map(str, shape))}))" if shape else ""))
    lines.append(f"value range:  [{low:g}, {high:g}] (raw inputs, before preprocessing)")
    if metadata.mean is not None or metadata.std is not None:
        lines.append(f"preprocess:   (raw - mean) / std, mean={_numbers(metadata.mean or (0.0,))}, "
                     f"std={_numbers(metadata.std or (1.0,))}")
    else:
        lines.append("preprocess:   none (model input = raw input)")
    bound_low, bound_high = metadata.input_bounds()
    lines.append(f"z^B bounds:   low={_numbers(bound_low)}, high={_numbers(bound_high)} (model-input units)")
    names = metadata.class_names
    if names is None:
        lines.append("classes:      not named")
    else:
        shown = ", ".join(names[:10]) + (f", ... ({len(names)} in all)" if len(names) > 10 else "")
        lines.append(f"classes:      {len(names)}: {shown}")
    if metadata.description:
        lines.append(f"description:  {metadata.description}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..composites import get_composite

    model, kind = read_model(args.model, **source_options(args))
    origin = "lrpcore model file" if kind == "lrpcore" else f"{kind} file, converted in memory"
    print(f"{args.model} ({origin})")
    print()
    print(model.summary())
    print()
    print(describe_metadata(model))
    print()
    print(get_composite(args.composite).describe(model))
    return 0
