"""Pieces every subcommand shares: reading MODEL in any format, --dtype, --target by name, output names.

- :func:`load_model`: MODEL is a file in any format ``lrpcore inspect`` reads (lrpcore HDF5,
  Keras ``.h5``/``.keras``/``.weights.h5``, PyTorch state dicts with ``--arch``) or the name of a
  shipped model (``shapes_cnn``, ...); None means the default shipped model.
- :func:`add_dtype_argument` / :func:`cast_model`: ``--dtype float32|float64`` (float32, the
  fast default; float64 for studies of rounding); the dtype is printed with the results.
- :func:`target_from_text`: ``--target`` as ``pred``, a class index or a class name.
- :func:`fresh_output`: where outputs go when no ``--out`` is given: a folder ``lrpcore_out``
  in the working folder, and a file name not used yet (``heatmap.png``, then ``heatmap-2.png``,
  ...), so running the same command again never fails and never replaces a file.
- :func:`write_figure`: every PNG a command writes goes through this one function.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Callable, Sequence

#: Folder (in the working folder) that receives outputs when no --out is given.
OUTPUT_FOLDER = "lrpcore_out"
#: Precisions the commands accept with --dtype.
DTYPES = ("float32", "float64")


# --- models -------------------------------------------------------------------------------------------
def load_model(argument: str | None, args: argparse.Namespace | None = None,
               default: str = "shapes_cnn") -> tuple[Any, str]:
    """(model, description of where it came from) for a MODEL argument; see the module docstring."""
    from ._models import read_model, source_options
    from .explain import find_shipped_model, models_folders

    options = source_options(args) if args is not None and hasattr(args, "arch") else {}
    shipped = argument is None
    if argument is None:
        path = find_shipped_model(default)
    else:
        path = Path(argument)
        if path.exists() and not path.is_file():
            from ._inputs import input_file

            input_file(path, "model file")  # says what it is instead: a directory, a FIFO, a device
        if not path.is_file():
            if os.sep in argument or "/" in argument or path.suffix.lower() not in ("", ".h5"):
                raise FileNotFoundError(f"model file {argument} does not exist")
            try:
                path, shipped = find_shipped_model(argument), True
            except FileNotFoundError:
                raise FileNotFoundError(f"model file {argument} does not exist (nor is it the name of a shipped "
                                        f"model in {', '.join(str(folder) for folder in models_folders())})") from None
    model, kind = read_model(str(path), **options)
    if shipped:     # named by what the user typed, not by where the package happens to be installed
        return model, f"shipped with lrpcore as {path.name}"
    origin = str(path) if kind == "lrpcore" else f"{path}, {kind} file converted in memory"
    return model, origin


# --- precision ----------------------------------------------------------------------------------------
def add_dtype_argument(parser: argparse.ArgumentParser, choices: Sequence[str] = DTYPES,
                       default: str = "float32") -> None:
    parser.add_argument("--dtype", choices=tuple(choices), default=default,
                        help=f"precision of the model and the computation (default {default}; float64 for "
                             "studies of rounding, about twice as slow). Printed with the results")


def cast_model(model: Any, dtype: str) -> Any:
    """``model`` in ``dtype`` (the same object when it already is)."""
    if model.dtype is not None and str(model.dtype) == dtype:
        return model
    return model.astype(dtype)


def dtype_name(model: Any) -> str:
    return str(model.dtype) if model.dtype is not None else "unknown"


# --- targets ------------------------------------------------------------------------------------------
TARGET_HELP = ("class to explain: 'pred' (the predicted class, default), a class index, or a class name "
               "such as 'circle' (lrpcore inspect MODEL lists them)")


def target_from_text(text: str, model: Any, keywords: Sequence[str] = ("pred",)) -> Any:
    from ..class_names import parse_target

    metadata = model.metadata
    return parse_target(text, tuple(metadata.class_names or ()), metadata.name, keywords)


def class_label(model: Any, index: int) -> str:
    """The class name of ``index`` where the model has names, else the index."""
    names = tuple(model.metadata.class_names or ())
    return names[index] if 0 <= index < len(names) else str(index)


# --- outputs ------------------------------------------------------------------------------------------
def fresh_output(file_name: str, taken: Callable[[Path], Sequence[Path]] | None = None,
                 folder: str | os.PathLike = OUTPUT_FOLDER) -> Path:
    """``folder/file_name``, or ``stem-2``, ``stem-3``, ... until no file it would write exists.

    ``taken(candidate)`` lists every path a run with that name would write (default: the name
    itself), so a batch that writes ``heatmap_000.png ...`` moves on as a whole. The folder is
    created. Nothing existing is ever chosen, so nothing a user made is replaced.
    """
    directory = Path(folder)
    directory.mkdir(parents=True, exist_ok=True)
    stem, suffix = os.path.splitext(file_name)
    number = 1
    while True:
        candidate = directory / (file_name if number == 1 else f"{stem}-{number}{suffix}")
        paths = list(taken(candidate)) if taken is not None else [candidate]
        if not any(path.exists() for path in paths):
            return candidate
        number += 1


def write_figure(figure: Any, path: str | os.PathLike, overwrite: bool = False, dpi: int = 150) -> None:
    """Write ``figure`` as PNG (the one place commands write pictures; never replaces without ``overwrite``)."""
    from ..plot.heatmap import save_figure

    save_figure(figure, path, overwrite=overwrite, dpi=dpi)
