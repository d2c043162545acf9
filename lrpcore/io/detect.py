"""Which kind of model file a path holds, judged by its content first and its name second.

lrpcore and Keras files are both HDF5 and often both named ``.h5``; ``.keras`` archives and
PyTorch's ``torch.save`` files are both zip archives. The content decides:

- HDF5 whose root attribute ``format`` is ``"lrpcore-model"`` → ``"lrpcore"``;
- other HDF5 → ``"keras"`` (the Keras reader says precisely if it is not);
- a zip holding ``config.json`` → ``"keras"``; a zip holding ``*/data.pkl`` → ``"torch"``;
- a file named ``.pt``/``.pth``/``.bin`` that is neither (old pickle-based ``torch.save``) → ``"torch"``;
- text starting with an LRP Toolbox layer name (``Linear 784 10``...), or a pickled Toolbox ``.nn``
  file (which :func:`lrpcore.io.load_toolbox` then refuses, naming why) → ``"toolbox"``.
"""
from __future__ import annotations

import os
import zipfile

import h5py

from ..errors import ModelFormatError
from .hdf5 import FORMAT_NAME, root_format
from .limits import check_regular_file

__all__ = ["detect_format", "FORMATS"]

FORMATS = ("lrpcore", "keras", "torch", "toolbox")
_TORCH_SUFFIXES = (".pt", ".pth", ".bin")


def _is_hdf5(path: str) -> bool:
    try:
        return bool(h5py.is_hdf5(path))
    except (OSError, ValueError):
        return False


def detect_format(path: str | os.PathLike) -> str:
    """``"lrpcore"``, ``"keras"`` or ``"torch"`` for the model file at ``path``; ModelFormatError if none."""
    path = os.fspath(path)
    check_regular_file(path, "model file")  # before anything opens it: a FIFO would block, /dev/zero never ends
    if _is_hdf5(path):
        try:
            with h5py.File(path, "r") as handle:
                found = root_format(handle)
        except (OSError, ValueError, KeyError, TypeError):
            found = None
        return "lrpcore" if found == FORMAT_NAME else "keras"
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (OSError, zipfile.BadZipFile) as error:
            raise ModelFormatError(f"{path}: damaged zip archive ({error})") from None
        if "config.json" in names:
            return "keras"
        if any(name.endswith("data.pkl") for name in names):
            return "torch"
    if path.lower().endswith(_TORCH_SUFFIXES):
        return "torch"
    from .toolbox import is_toolbox_text

    if path.lower().endswith(".nn") or is_toolbox_text(path):
        return "toolbox"
    raise ModelFormatError(f"{path}: not a model file lrpcore reads: expected lrpcore or Keras HDF5, a .keras "
                           "archive, a PyTorch state dict (.pt/.pth), or an LRP Toolbox text model")
