"""Reading any supported model file for the ``inspect`` and ``convert`` subcommands.

The kind of file is decided by :func:`lrpcore.io.detect.detect_format` (content first, then
name); lrpcore files load directly, Keras files through :func:`lrpcore.io.load_keras`,
PyTorch state dicts through :func:`lrpcore.models.state_dict_to_model` with an ``--arch``.
"""
from __future__ import annotations

import argparse
import os
from typing import Any

from ..errors import ModelFormatError
from ..graph import Graph


def torch_architectures() -> list[str]:
    """Architecture names ``--arch`` accepts (empty when lrpcore.models is not available)."""
    try:
        from ..models.state_dict import ARCHITECTURES
    except ImportError:
        return []
    return sorted(ARCHITECTURES)


def read_model(path: str, config: str | None = None, arch: str | None = None,
               input_shape: tuple[int, ...] | None = None, input_size: int | None = None) -> tuple[Graph, str]:
    """(model, kind) for the file at ``path``; ``kind`` is "lrpcore", "keras", "torch" or "toolbox"."""
    from ..io import load, load_keras, load_toolbox
    from ..io.detect import detect_format

    kind = detect_format(path)
    if kind == "toolbox" and config is None:
        return load_toolbox(path, input_shape=input_shape), kind
    if kind != "keras" and (config is not None or input_shape is not None):
        raise ModelFormatError(f"{path}: --config applies to Keras files, --input-shape to Keras and LRP Toolbox "
                               f"files only; this is a {kind} file")
    if kind != "torch" and (arch is not None or input_size is not None):
        raise ModelFormatError(f"{path}: --arch and --input-size apply to PyTorch state dicts only; this is a "
                               f"{kind} file")
    if kind == "lrpcore":
        return load(path), kind
    if kind == "keras":
        return load_keras(path, config=config, input_shape=input_shape), kind
    if arch is None:
        known = ", ".join(torch_architectures()) or "none available"
        raise ModelFormatError(f"{path}: a PyTorch state dict holds weights only; name the architecture with "
                               f"--arch ({known})")
    try:
        from ..models import state_dict_to_model
    except ImportError as error:
        raise ModelFormatError(f"{path}: PyTorch conversion is not available: {error}") from None
    model = state_dict_to_model(path, arch, input_size=input_size)
    description = f"{model.metadata.description}; converted from PyTorch state dict {os.path.basename(path)}"
    return model.with_metadata(description=description.lstrip("; ")), kind


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say how to read a Keras or PyTorch source file."""
    group = parser.add_argument_group("Keras and PyTorch sources")
    group.add_argument("--config", metavar="FILE",
                       help="Keras architecture for weights-only files (.weights.h5, legacy weights .h5): "
                            "a JSON file with model.to_json(), or a .keras archive")
    group.add_argument("--input-shape", metavar="N", type=int, nargs="+",
                       help="Keras or LRP Toolbox input shape without the batch axis, channels last (H W C), "
                            "when the file does not state it (Toolbox convolutional models always need it)")
    archs = torch_architectures()
    group.add_argument("--arch", metavar="NAME",
                       help="architecture of a PyTorch state dict (.pt/.pth)"
                            + (f": one of {', '.join(archs)}" if archs else ""))
    group.add_argument("--input-size", metavar="PIXELS", type=int,
                       help="image side of a PyTorch VGG (default: inferred from the first classifier layer) "
                            "or ResNet (default 224)")


def source_options(args: Any) -> dict[str, Any]:
    """Keyword arguments of :func:`read_model` from parsed ``args``."""
    return {"config": args.config, "arch": args.arch, "input_size": args.input_size,
            "input_shape": tuple(args.input_shape) if args.input_shape else None}
