"""Reading the architecture and the weight arrays out of Keras files (no Keras needed).

Keras writes three containers; all hold HDF5:

- legacy ``.h5`` (Keras 2, and Keras 3's ``model.save("x.h5")``): group ``model_weights``
  (or the root, for weights-only files) with attribute ``layer_names``; each layer's
  group lists its arrays in attribute ``weight_names`` (paths inside that group, e.g.
  ``conv2d/kernel:0`` or ``sequential/conv2d/kernel``). A full model file carries the
  architecture as JSON in the root attribute ``model_config``.
- Keras 3 ``.weights.h5``: ``layers/<path>/vars/0, 1, ...`` in the order the layer created
  its variables; ``vars`` has attribute ``name`` (the layer's name). No architecture.
- Keras 3 ``.keras``: a zip archive of ``config.json`` (architecture) and ``model.weights.h5``.

:class:`KerasFile` gives, for a layer name, its arrays in creation order with their short
names where the file has them (``kernel``, ``bias``, ``gamma``, ``beta``, ``moving_mean``,
``moving_variance``).
"""
from __future__ import annotations

import io
import json
import os
import re
import zipfile
from typing import Any

import h5py
import numpy

from ..errors import ModelFormatError
from . import limits
from .hdf5 import open_hdf5

__all__ = ["KerasFile", "parse_config", "snake_case"]

#: Keras 3 group holding one group per layer (the second name was used by Keras 3.0).
_KERAS3_LAYER_GROUPS = ("layers", "_layer_checkpoint_dependencies")


def snake_case(name: str) -> str:
    """Keras' path name for a class name: "BatchNormalization" → "batch_normalization", "ReLU" → "re_lu"."""
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _looks_like_json(text: str) -> bool:
    """JSON text rather than a file name: it starts with an object, an array or a string."""
    return text.lstrip()[:1] in ("{", "[", '"')


def parse_config(config: Any, source: str) -> dict:
    """A model config as a dict, from a dict, a JSON string, or the path of a JSON file (or ``.keras`` archive).

    A file is read only if it is a regular file of at most :data:`lrpcore.io.limits.MAX_CONFIG_BYTES`;
    text starting like JSON (``{``, ``[``) is parsed as JSON, never taken for a file name.
    """
    if isinstance(config, dict):
        return config
    if isinstance(config, (bytes, bytearray)):
        config = config.decode("utf-8")
    if isinstance(config, os.PathLike) or (isinstance(config, str) and not _looks_like_json(config)):
        config_path = os.fspath(config)
        size = limits.check_regular_file(config_path, "Keras config file")
        try:
            if zipfile.is_zipfile(config_path):
                with zipfile.ZipFile(config_path) as archive:
                    raw = limits.read_archive_member(archive, "config.json", limits.MAX_CONFIG_BYTES, config_path)
            else:
                if size > limits.MAX_CONFIG_BYTES:
                    raise ModelFormatError(f"{config_path}: {size:,} bytes, more than a Keras model config may have "
                                           f"(lrpcore.io.limits.MAX_CONFIG_BYTES = {limits.MAX_CONFIG_BYTES:,})")
                with open(config_path, "rb") as handle:
                    raw = handle.read(limits.MAX_CONFIG_BYTES + 1)
            config = raw.decode("utf-8")
        except (OSError, KeyError, UnicodeDecodeError, zipfile.BadZipFile) as error:
            raise ModelFormatError(f"{config_path}: cannot read a Keras model config ({error})") from None
        source = config_path
    try:
        parsed = json.loads(config)
    except (TypeError, ValueError) as error:
        raise ModelFormatError(f"{source}: the Keras model config is not valid JSON ({error})") from None
    if not isinstance(parsed, dict):
        raise ModelFormatError(f"{source}: the Keras model config must be a JSON object, found {type(parsed).__name__}")
    return parsed


class KerasFile:
    """An open Keras weight file: its kind, its architecture (if stored) and per-layer arrays."""

    def __init__(self, path: str):
        self.path = path
        self.config: dict | None = None
        self._archive_bytes: bytes | None = None
        self.file_size = limits.check_regular_file(path, "Keras weight file")  # before anything opens it
        if zipfile.is_zipfile(path):
            self._open_archive(path)
        else:
            self.handle = open_hdf5(path, "Keras weight file")
        try:
            self._classify()
        except BaseException:
            self.handle.close()
            raise

    def _open_archive(self, path: str) -> None:
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
                if "config.json" not in names or "model.weights.h5" not in names:
                    raise ModelFormatError(f"{path}: a .keras archive must hold config.json and model.weights.h5, "
                                           f"found {sorted(names)}")
                config = limits.read_archive_member(archive, "config.json", limits.MAX_CONFIG_BYTES, path)
                self._archive_bytes = limits.read_archive_member(
                    archive, "model.weights.h5", limits.archive_member_limit(self.file_size), path)
        except (OSError, zipfile.BadZipFile, RuntimeError, ValueError, EOFError) as error:
            if isinstance(error, ModelFormatError):
                raise
            raise ModelFormatError(f"{path}: damaged .keras archive ({type(error).__name__}: {error})") from None
        self.config = parse_config(config, f"{path} (config.json)")
        self.file_size = len(self._archive_bytes)
        try:
            self.handle = h5py.File(io.BytesIO(self._archive_bytes), "r")
        except (OSError, ValueError) as error:
            raise ModelFormatError(f"{path}: model.weights.h5 in the archive is not readable HDF5 ({error})") from None
        self.kind = "keras"

    def _classify(self) -> None:
        handle = self.handle
        limits.scan_links(handle, lambda where, problem: ModelFormatError(f"{self.path}: {where} {problem}"))
        if self._archive_bytes is None:
            if isinstance(handle.get("model_weights"), h5py.Group):
                self.kind = "legacy-h5"
                if "model_config" in handle.attrs:
                    self.config = parse_config(_text(handle.attrs["model_config"]), f"{self.path} (model_config)")
            elif "layer_names" in handle.attrs:
                self.kind = "legacy-weights-h5"
            elif any(isinstance(handle.get(name), h5py.Group) for name in _KERAS3_LAYER_GROUPS):
                self.kind = "weights.h5"
            else:
                raise ModelFormatError(
                    f"{self.path}: not a Keras weight file: found neither 'model_weights' / 'layer_names' (legacy "
                    f"HDF5) nor a 'layers' group (Keras 3); root entries are {sorted(handle)[:10]}")
        if self.kind in ("legacy-h5", "legacy-weights-h5"):
            root = handle["model_weights"] if self.kind == "legacy-h5" else handle
            if "layer_names" not in root.attrs:
                raise ModelFormatError(f"{self.path}: legacy Keras file without the 'layer_names' attribute")
            self._legacy_root = root
            self.layer_names = [_text(name) for name in numpy.asarray(root.attrs["layer_names"]).ravel()]
        else:
            self._keras3_groups = self._keras3_index()

    def _keras3_index(self) -> dict[str, h5py.Group]:
        """Layer name → its ``vars`` group, from the ``name`` attribute Keras writes on each ``vars``."""
        index: dict[str, h5py.Group] = {}
        for group_name in _KERAS3_LAYER_GROUPS:
            layers = self.handle.get(group_name)
            if not isinstance(layers, h5py.Group):
                continue
            for path in layers:
                holder = layers[path]
                variables = holder.get("vars") if isinstance(holder, h5py.Group) else None
                if isinstance(variables, h5py.Group):
                    index[f"path:{path}"] = variables
                    if "name" in variables.attrs:
                        index.setdefault(_text(variables.attrs["name"]), variables)
        return index

    def close(self) -> None:
        self.handle.close()

    def __enter__(self) -> "KerasFile":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def arrays(self, layer_name: str, path_name: str, where: str) -> list[tuple[str | None, numpy.ndarray]]:
        """The arrays of one layer in creation order, each with its short name (None where unknown).

        ``path_name`` is the name Keras 3 gives the layer's group when the file does not record
        layer names (``conv2d``, ``conv2d_1``...).
        """
        if self.kind in ("legacy-h5", "legacy-weights-h5"):
            return self._legacy_arrays(layer_name, where)
        variables = self._keras3_groups.get(layer_name)
        if variables is None:
            variables = self._keras3_groups.get(f"path:{path_name}")
        if variables is None:
            raise ModelFormatError(f"{self.path}: {where}: no weights for this layer in the file (looked for a "
                                   f"'vars' group named {layer_name!r} or at layers/{path_name})")
        keys = sorted(variables, key=lambda key: (len(key), key))
        if keys != [str(number) for number in range(len(keys))]:
            raise ModelFormatError(f"{self.path}: {where}: variables must be numbered 0..{len(keys) - 1}, "
                                   f"found {keys}")
        return [(None, self._read(variables[key], f"{where} variable {key}")) for key in keys]

    def _legacy_arrays(self, layer_name: str, where: str) -> list[tuple[str | None, numpy.ndarray]]:
        if layer_name not in self.layer_names:
            raise ModelFormatError(f"{self.path}: {where}: layer {layer_name!r} is not in the file's layer_names "
                                   f"{self.layer_names}")
        group = self._legacy_root.get(layer_name)
        if not isinstance(group, h5py.Group):
            raise ModelFormatError(f"{self.path}: {where}: group {layer_name!r} is missing")
        names = [_text(name) for name in numpy.asarray(group.attrs.get("weight_names", [])).ravel()]
        arrays = []
        for name in names:
            dataset = group.get(name)
            if dataset is None:
                raise ModelFormatError(f"{self.path}: {where}: weight {name!r} listed in weight_names is missing")
            short = name.split("/")[-1].split(":")[0]
            arrays.append((short, self._read(dataset, f"{where} weight {name!r}")))
        return arrays

    def _read(self, dataset: Any, where: str) -> numpy.ndarray:
        if not isinstance(dataset, h5py.Dataset):
            raise ModelFormatError(f"{self.path}: {where}: expected a dataset, found {type(dataset).__name__}")
        if dataset.dtype.kind != "f":
            raise ModelFormatError(f"{self.path}: {where}: dtype {dataset.dtype} is not floating point")
        problem = limits.storage_problem(dataset, self.file_size, allow_compression=True)
        if problem:  # checked before reading: no external data, and every declared byte backed by stored bytes
            raise ModelFormatError(f"{self.path}: {where}: dataset {dataset.name} {problem}")
        try:
            value = numpy.asarray(dataset[()])
        except (OSError, ValueError, TypeError) as error:
            raise ModelFormatError(f"{self.path}: {where}: cannot read ({error}); truncated file?") from None
        if not bool(numpy.all(numpy.isfinite(value))):
            raise ModelFormatError(f"{self.path}: {where}: array of shape {value.shape} contains NaN or inf")
        return value
