"""Convert a PyTorch network to an lrpcore HDF5 model file.

    # a torchvision-style state dict of a known architecture (no torchvision needed)
    python tools/export_torch.py vgg16.pth vgg16.h5 --arch vgg16
    # any nn.Sequential (or torchvision-style VGG) built by your own function, then its state dict loaded
    python tools/export_torch.py net.pt net.h5 --factory mypackage.models:build_net --input-shape 3 64 64 \\
        --mean 0.5 0.5 0.5 --std 0.25 0.25 0.25 --class-names cat dog

The conversion is :func:`lrpcore.models.state_dict_to_model` (``--arch``) or
:func:`lrpcore.io.torch.from_torch` on the module ``--factory`` returns (with the state dict
loaded strictly, so every parameter must match). The result is written with
:func:`lrpcore.save`; an existing DEST is replaced only with ``--overwrite``. State dicts are
read with ``torch.load(weights_only=True)``: no code in the file is executed.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import pathlib
import sys
from typing import Any, Sequence

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))


def _factory(spec: str) -> Any:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise SystemExit(f"--factory must look like 'package.module:function', got {spec!r}")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise SystemExit(f"--factory {spec!r}: {error}") from None


def _from_factory(args: argparse.Namespace) -> Any:
    import torch

    from lrpcore.io.torch import from_torch
    from lrpcore.model import ModelMetadata

    network = _factory(args.factory)()
    if not isinstance(network, torch.nn.Module):
        raise SystemExit(f"--factory {args.factory!r} returned a {type(network).__name__}, not a torch.nn.Module")
    state = torch.load(args.source, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    try:
        network.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as error:
        raise SystemExit(f"{args.source}: does not fit the module from {args.factory}: {error}") from None
    metadata = ModelMetadata(input_shape=tuple(args.input_shape) if args.input_shape else None,
                             name=args.name or type(network).__name__)
    return from_torch(network.eval(), input_shape=metadata.input_shape, metadata=metadata, dtype=args.dtype)


def convert(args: argparse.Namespace) -> Any:
    """The lrpcore model described by the parsed arguments, metadata options applied."""
    if args.arch:
        from lrpcore.models import state_dict_to_model

        model = state_dict_to_model(args.source, args.arch, input_size=args.input_size, dtype=args.dtype)
    else:
        model = _from_factory(args)
    changes = {key: tuple(value) for key, value in (("mean", args.mean), ("std", args.std),
                                                     ("value_range", args.value_range),
                                                     ("class_names", args.class_names)) if value}
    if args.name:
        changes["name"] = args.name
    model.metadata = dataclasses.replace(model.metadata, **changes)
    return model


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python tools/export_torch.py", description=__doc__.split("\n")[0],
                                     epilog=__doc__.split("\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="the torch.save'd state dict (.pt / .pth)")
    parser.add_argument("dest", help="the lrpcore HDF5 file to write (.h5)")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--arch", help="architecture of the state dict: vgg11, vgg13, vgg16, vgg19 (optionally _bn), "
                                          "resnet18, resnet34, resnet50")
    how.add_argument("--factory", help="'package.module:function' returning the nn.Module the state dict fits")
    parser.add_argument("--input-size", type=int, help="with --arch: image side (default: read from the weights)")
    parser.add_argument("--input-shape", type=int, nargs="+", metavar="N",
                        help="with --factory: one sample's shape, e.g. 3 64 64 (needed for AdaptiveAvgPool2d)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--mean", type=float, nargs="+", help="per-channel preprocessing mean")
    parser.add_argument("--std", type=float, nargs="+", help="per-channel preprocessing std")
    parser.add_argument("--value-range", type=float, nargs=2, metavar=("LOW", "HIGH"),
                        help="raw input range before preprocessing (default 0 1)")
    parser.add_argument("--class-names", nargs="+", help="one name per output")
    parser.add_argument("--name", help="model name stored in the file")
    parser.add_argument("--overwrite", action="store_true", help="replace DEST if it exists")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.input_size is not None and not args.arch:
        raise SystemExit("--input-size goes with --arch; use --input-shape with --factory")
    destination = pathlib.Path(args.dest)
    if destination.exists() and not args.overwrite:
        raise SystemExit(f"{destination} exists; pass --overwrite to replace it")
    from lrpcore import save
    from lrpcore.errors import LRPError

    try:
        model = convert(args)
        save(model, destination, overwrite=args.overwrite)
    except (LRPError, OSError) as error:
        raise SystemExit(f"error: {error}") from None
    print(model.summary())
    print(f"wrote {destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
