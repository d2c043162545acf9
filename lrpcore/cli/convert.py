"""``lrpcore convert SRC DST``: Keras, PyTorch or LRP Toolbox model files → lrpcore's HDF5 format.

Sources: Keras legacy ``.h5`` (full model; weights-only needs ``--config``), Keras 3
``.weights.h5`` with ``--config``, ``.keras`` archives, PyTorch state dicts (``.pt``/``.pth``)
with ``--arch``, LRP Toolbox plain-text models (``.txt``; convolutional ones with
``--input-shape H W D``), and lrpcore files (to change the dtype or the metadata). The metadata
options set what the source file cannot know (value range, preprocessing, class names).
DST is never replaced unless ``--overwrite`` is given; it is written to a temporary file
and renamed, so an interrupted run leaves no partial file.
"""
from __future__ import annotations

import argparse
import os
from typing import Any

from ..errors import ModelFormatError
from ..graph import Graph
from ._models import add_source_arguments, read_model, source_options


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "convert",
        help="convert a Keras, PyTorch or LRP Toolbox model file to lrpcore's HDF5 format",
        description="Convert SRC to an lrpcore model file DST (format: models/FORMAT.md). SRC is a Keras file "
                    "(.h5 with the architecture, .keras, or .weights.h5 / weights-only .h5 with --config), a "
                    "PyTorch state dict (.pt/.pth) with --arch, an LRP Toolbox text model (.txt; pickled .nn files are "
                    "refused), or an lrpcore file. Keras and Toolbox models become NCHW "
                    "models: kernels and the flatten order are converted exactly, a final softmax is dropped "
                    "(LRP explains logits). The converted model is checked before it is written.",
        epilog="examples:\n"
               "  lrpcore convert net.h5 net.lrp.h5\n"
               "  lrpcore convert net.weights.h5 net.lrp.h5 --config net.json --value-range 0 255\n"
               "  lrpcore convert vgg16.pth vgg16.h5 --arch vgg16 --class-names imagenet_classes.txt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", metavar="SRC", help="model file to convert")
    parser.add_argument("destination", metavar="DST", help="lrpcore model file to write (.h5)")
    parser.add_argument("--overwrite", action="store_true", help="replace DST if it exists (default: refuse)")
    add_source_arguments(parser)
    meta = parser.add_argument_group("metadata stored with the model (default: what SRC says)")
    meta.add_argument("--dtype", choices=("float32", "float64"), help="precision of the written arrays")
    meta.add_argument("--name", help="model name")
    meta.add_argument("--value-range", metavar=("LOW", "HIGH"), type=float, nargs=2,
                      help="range of raw input values, e.g. 0 1 or 0 255 (sets the z^B bounds)")
    meta.add_argument("--mean", type=float, nargs="+", metavar="M",
                      help="preprocessing mean, one value or one per channel: model input = (raw - mean) / std")
    meta.add_argument("--std", type=float, nargs="+", metavar="S", help="preprocessing standard deviation")
    meta.add_argument("--class-names", metavar="NAMES",
                      help="comma-separated class names, or a text file with one name per line")
    parser.set_defaults(run=run)
    return parser


def _class_names(value: str) -> tuple[str, ...]:
    if os.path.isfile(value):
        with open(value, encoding="utf-8") as handle:
            names = [line.strip() for line in handle if line.strip()]
        if not names:
            raise ModelFormatError(f"{value}: no class names in the file")
        return tuple(names)
    return tuple(name.strip() for name in value.split(","))


def apply_metadata_options(model: Graph, args: argparse.Namespace) -> Graph:
    """``model`` with the metadata and dtype the command line asks for."""
    changes: dict[str, Any] = {}
    if args.name is not None:
        changes["name"] = args.name
    if args.value_range is not None:
        changes["value_range"] = tuple(args.value_range)
    if args.mean is not None:
        changes["mean"] = tuple(args.mean)
    if args.std is not None:
        changes["std"] = tuple(args.std)
    if args.class_names is not None:
        changes["class_names"] = _class_names(args.class_names)
    if changes:
        model = model.with_metadata(**changes)
    if args.dtype is not None and model.dtype is not None and str(model.dtype) != args.dtype:
        model = model.astype(args.dtype)
    return model


def run(args: argparse.Namespace) -> int:
    from ..io import save

    if os.path.exists(args.destination) and not args.overwrite:
        raise FileExistsError(f"{args.destination} exists; pass --overwrite to replace it")
    model, kind = read_model(args.source, **source_options(args))
    model = apply_metadata_options(model, args)
    save(model, args.destination, overwrite=args.overwrite)
    parameters = sum(int(value.size) for layer in model.layers for value in layer.parameters().values())
    shape = tuple(model.metadata.input_shape) if model.metadata.input_shape else "unknown"
    print(f"wrote {args.destination}: {len(model)} layers, {parameters:,} parameters, {model.dtype}, "
          f"input {shape} (from {kind} file {args.source})")
    if model.metadata.description:
        print(f"notes: {model.metadata.description}")
    return 0
