"""lrpcore's native model file: one HDF5 file per :class:`~lrpcore.Sequential` or :class:`~lrpcore.Graph`
(layout in ``models/FORMAT.md``).

A ``Sequential`` is written as format version 1 (readable by every lrpcore); any other ``Graph``
as version 2, which adds the group ``graph`` with each node's name and inputs
(:func:`_write_graph` / :meth:`_Reader.graph`). Version-1 files load as ``Sequential``,
version-2 files as ``Graph``.

``save`` builds the file in memory, writes it to a temporary file in the destination
folder, checks it and renames it into place (:mod:`lrpcore._atomic`), so a crash or a
full disk never leaves a half-written model, and never replaces an existing file unless
``overwrite=True``. ``load`` first refuses what could hang, allocate without bound or
reach outside the file (:meth:`_Reader.check_safety`, :mod:`lrpcore.io.limits`), then
checks every attribute, dataset, shape and dtype, builds every layer, and runs
:func:`lrpcore.io.validate.check_model` before it returns: it gives a complete,
consistent model or raises :class:`~lrpcore.errors.ModelFormatError`
(``FileNotFoundError`` for a missing file).
Round trips are exact: the same arrays bit for bit, layer types, hyperparameters,
metadata and dtype.
"""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import inspect
import os
import uuid
from typing import Any

import h5py
import numpy

from .. import _atomic
from ..errors import LRPError, ModelFormatError
from ..graph import Graph, GraphError, Node
from ..layers import Layer
from ..backend import to_numpy
from ..model import ModelMetadata, Sequential
from . import limits, registry
from .validate import check_model

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "save", "load", "is_lrpcore_file"]

#: Value of the root attribute ``format``.
FORMAT_NAME = "lrpcore-model"
#: The newest ``format_version`` this code writes (for graphs); it reads versions 1..FORMAT_VERSION.
FORMAT_VERSION = 2
#: The version written for a :class:`~lrpcore.Sequential` (no ``graph`` group): older readers load it.
CHAIN_FORMAT_VERSION = 1

_ROOT_ATTRIBUTES = {"format", "format_version", "dtype", "lrpcore_version"}
_METADATA_FIELDS = ("input_shape", "value_range", "mean", "std", "class_names", "name", "description")
_TYPE_ATTRIBUTE = "type"
# Any failure h5py or NumPy can raise while reading a damaged file; turned into ModelFormatError.
_READ_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError, AttributeError,
                UnicodeError, OverflowError, MemoryError)


# --- writing ------------------------------------------------------------------------------------
def _text(values: str | list[str], where: str = "text") -> numpy.ndarray:
    """UTF-8 text as a *fixed-length* HDF5 string (scalar or 1-D array).

    Fixed-length strings live inside the checksummed object headers; h5py's default
    variable-length strings live in HDF5's global heap, which has no checksum (a flipped
    byte there can send the HDF5 library into an endless loop while reading).
    """
    items = [values] if isinstance(values, str) else list(values)
    encoded = [item.encode("utf-8") for item in items]
    if any(b"\0" in item for item in encoded):
        raise ModelFormatError(f"{where}: text containing NUL characters cannot be stored")
    dtype = h5py.string_dtype("utf-8", max([1] + [len(item) for item in encoded]))
    array = numpy.array(encoded, dtype=dtype)
    return array[0] if isinstance(values, str) else array


def _encode_value(value: Any, where: str) -> Any:
    """A hyperparameter or metadata value as an HDF5 attribute: scalars as such, sequences as 1-D arrays."""
    if isinstance(value, (bool, numpy.bool_)):
        return numpy.bool_(value)
    if isinstance(value, (int, numpy.integer)):
        return numpy.int64(value)
    if isinstance(value, (float, numpy.floating)):
        return numpy.float64(value)
    if isinstance(value, str):
        return _text(value, where)
    if isinstance(value, (list, tuple)):
        if all(isinstance(item, (int, numpy.integer)) and not isinstance(item, bool) for item in value):
            return numpy.asarray(value, dtype=numpy.int64)
        if all(isinstance(item, (int, float, numpy.integer, numpy.floating)) and not isinstance(item, bool)
               for item in value):
            return numpy.asarray(value, dtype=numpy.float64)
        if all(isinstance(item, str) for item in value):
            return _text(list(value), where)
    raise ModelFormatError(f"{where}: value {value!r} cannot be stored "
                           "(use int, float, bool, str or a list of one kind)")


def _layer_record(index: int, layer: Layer) -> tuple[str, dict[str, Any], dict[str, numpy.ndarray]]:
    """(type name, encoded hyperparameters, NumPy parameters) of one layer; checks it can be read back."""
    type_name = registry.layer_type_name(layer)
    where = f"layer {index} ({layer.describe()})"
    arguments = set(inspect.signature(type(layer)).parameters)
    parameters = {name: to_numpy(value) for name, value in layer.parameters().items()}
    hyperparameters = {}
    for name, value in layer.hyperparameters().items():
        if name == _TYPE_ATTRIBUTE or name in parameters:
            raise ModelFormatError(f"{where}: hyperparameter name {name!r} clashes with the format's own names")
        hyperparameters[name] = _encode_value(value, f"{where} hyperparameter {name!r}")
    missing = [name for name in parameters if name not in arguments]
    if missing:
        raise ModelFormatError(f"{where}: {type(layer).__name__}.__init__ takes no argument named {missing}, "
                               "so the layer could not be rebuilt from the file")
    return type_name, hyperparameters, parameters


def _write_metadata(group: h5py.Group, metadata: ModelMetadata) -> None:
    known = set(_METADATA_FIELDS)
    for field in dataclasses.fields(ModelMetadata):
        if field.name not in known and getattr(metadata, field.name) != field.default:
            raise ModelFormatError(f"metadata field {field.name!r} is not part of format version {FORMAT_VERSION}")
    group.attrs["name"] = _text(metadata.name, "metadata name")
    group.attrs["description"] = _text(metadata.description, "metadata description")
    group.attrs["value_range"] = numpy.asarray(metadata.value_range, dtype=numpy.float64)
    if metadata.input_shape is not None:
        group.attrs["input_shape"] = numpy.asarray(metadata.input_shape, dtype=numpy.int64)
    for name in ("mean", "std"):
        values = getattr(metadata, name)
        if values is not None:
            group.attrs[name] = numpy.asarray(values, dtype=numpy.float64)
    if metadata.class_names is not None:
        group.attrs["class_names"] = _text(list(metadata.class_names), "metadata class_names")


def _write(handle: h5py.File, model: Graph, records: list, dtype: numpy.dtype | None) -> None:
    from .. import __version__

    handle.attrs["format"] = _text(FORMAT_NAME)
    handle.attrs["format_version"] = numpy.int64(_format_version(model))
    handle.attrs["lrpcore_version"] = _text(__version__)
    handle.attrs["dtype"] = _text(dtype.name if dtype is not None else "none")
    _write_metadata(handle.create_group("metadata"), model.metadata)
    layers = handle.create_group("layers")
    layers.attrs["count"] = numpy.int64(len(records))
    for index, (type_name, hyperparameters, parameters) in enumerate(records):
        group = layers.create_group(str(index))
        group.attrs[_TYPE_ATTRIBUTE] = _text(type_name)
        for name, value in hyperparameters.items():
            group.attrs[name] = value
        for name, array in parameters.items():
            array = numpy.ascontiguousarray(array)
            if array.size and array.ndim:  # Fletcher-32 checksums let a reader detect flipped bytes in the weights
                group.create_dataset(name, data=array, chunks=_chunks(array), fletcher32=True)
            else:
                group.create_dataset(name, data=array)
    if _format_version(model) >= 2:
        _write_graph(handle, model)


# --- format version 2: the graph ------------------------------------------------------------------
#: Attributes of the ``graph`` group (format version 2).
_GRAPH_ATTRIBUTES = {"names", "input_counts", "inputs", "input_name"}


def _format_version(model: Graph) -> int:
    """Version 1 for a Sequential (a chain of layers needs no graph), 2 for any other Graph."""
    return CHAIN_FORMAT_VERSION if isinstance(model, Sequential) else FORMAT_VERSION


def _write_graph(handle: h5py.File, model: Graph) -> None:
    """The ``graph`` group: node p's name and input names, for the layer stored in ``layers/p``.

    ``names`` [L] (string), ``input_counts`` [L] (int64: how many inputs each node reads) and
    ``inputs`` (string, Σ input_counts: node 0's inputs, then node 1's, ...), ``input_name`` (the
    name nodes use for the graph input). Layers are stored in the graph's topological order.
    """
    group = handle.create_group("graph")
    group.attrs["names"] = _text([node.name for node in model.nodes], "graph node names")
    group.attrs["input_counts"] = numpy.asarray([len(node.inputs) for node in model.nodes], dtype=numpy.int64)
    group.attrs["inputs"] = _text([name for node in model.nodes for name in node.inputs], "graph node inputs")
    group.attrs["input_name"] = _text(model.input_name, "graph input name")


def _chunks(array: numpy.ndarray, target_bytes: int = 2**20) -> tuple[int, ...]:
    """Chunks of whole rows (first axis) of about ``target_bytes``: few chunks, fast to read and checksum."""
    row_bytes = max(1, array.nbytes // array.shape[0])
    rows = max(1, min(array.shape[0], target_bytes // row_bytes))
    return (rows, *array.shape[1:])


def file_image(model: Graph, records: list, dtype: numpy.dtype | None) -> bytes:
    """The complete HDF5 file of ``model`` as bytes, built in memory.

    HDF5's ``core`` driver without a backing store keeps the whole file in memory, so the HDF5
    library never writes to disk itself. Writing through HDF5 onto a full disk made h5py fail while
    closing the file and crash the process (a segfault in its object deallocator); with the file
    built in memory, the only disk write is the plain atomic write of these bytes. Costs one copy
    of the model's arrays in memory while saving.
    """
    name = f"lrpcore-save-{uuid.uuid4().hex}.h5"  # a label only: nothing is created under this name
    with h5py.File(name, "w", driver="core", backing_store=False, libver=("v110", "v110")) as h5:
        _write(h5, model, records, dtype)
        h5.flush()
        return bytes(h5.id.get_file_image())


def _check_written(temporary: str, image: bytes, path: str) -> None:
    """The temporary file holds exactly ``image`` and opens as an lrpcore file (checked before the rename)."""
    digest = hashlib.sha256()
    with open(temporary, "rb") as written:
        for block in iter(lambda: written.read(2**24), b""):
            digest.update(block)
    if digest.digest() != hashlib.sha256(image).digest():
        raise OSError(errno.EIO, f"cannot write {path}: the bytes read back differ from the bytes written")
    try:
        with h5py.File(temporary, "r") as handle:
            ok = handle.attrs.get("format") in (FORMAT_NAME, FORMAT_NAME.encode())
    except (OSError, ValueError) as error:
        raise OSError(errno.EIO, f"cannot write {path}: the written file does not open as HDF5 ({error})") from None
    if not ok:
        raise OSError(errno.EIO, f"cannot write {path}: the written file lacks the lrpcore format attribute")


def save(model: Graph, path: str | os.PathLike, overwrite: bool = False) -> None:
    """Write ``model`` to ``path`` in lrpcore's HDF5 format (``models/FORMAT.md``): a Sequential as
    format version 1, any other Graph as version 2 (with the nodes' names and inputs).

    An existing file is replaced only with ``overwrite=True`` (``FileExistsError`` otherwise).
    The model is checked first (:func:`~lrpcore.io.validate.check_model`), the file is built in
    memory (:func:`file_image`), written to a temporary file in the same folder, flushed, read
    back and checked, and only then renamed into place (:mod:`lrpcore._atomic`): readers see
    either the old file or the complete new one. A failed write (a full disk) raises an
    ``OSError`` naming ``path`` (``errno`` ``ENOSPC`` for a full disk), leaves the previous file
    untouched and no temporary file behind.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "cannot save a model onto a directory", path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(errno.EEXIST, "file exists; pass overwrite=True (--overwrite) to replace it", path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, "folder does not exist", folder)
    source = f"model {model.metadata.name!r}" if isinstance(model, Graph) else "model"
    dtype = check_model(model, source)
    records = [_layer_record(index, layer) for index, layer in enumerate(model.layers)]
    image = file_image(model, records, dtype)
    temporary = _atomic.temporary_copy(path, image)
    try:
        _check_written(temporary, image, path)
    except BaseException:
        _atomic.discard(temporary)
        raise
    del image
    try:
        _atomic.publish(temporary, path, overwrite)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "file exists; pass overwrite=True (--overwrite) to replace it",
                              path) from None


# --- reading ------------------------------------------------------------------------------------
class _Reader:
    """Reads one open file; every method raises ModelFormatError naming the file and the place."""

    def __init__(self, handle: h5py.File, path: str):
        self.handle = handle
        self.path = path
        self.file_size = os.path.getsize(path)

    def fail(self, where: str, message: str) -> ModelFormatError:
        return ModelFormatError(f"{self.path}: {where}: {message}")

    def text(self, attrs: Any, key: str, where: str, required: bool = True) -> str | None:
        if key not in attrs:
            if required:
                raise self.fail(where, f"attribute {key!r} is missing")
            return None
        value = attrs[key]
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        if not isinstance(value, str):
            raise self.fail(where, f"attribute {key!r} must be a string, found {type(value).__name__} {value!r}")
        return value

    def integer(self, attrs: Any, key: str, where: str) -> int:
        if key not in attrs:
            raise self.fail(where, f"attribute {key!r} is missing")
        value = attrs[key]
        if not (isinstance(value, (int, numpy.integer)) and not isinstance(value, (bool, numpy.bool_))):
            raise self.fail(where, f"attribute {key!r} must be an integer, found {value!r}")
        return int(value)

    def vector(self, attrs: Any, key: str, where: str, kind: str) -> tuple | None:
        """A 1-D numeric or string attribute as a tuple of Python values; None when absent."""
        if key not in attrs:
            return None
        value = numpy.asarray(attrs[key])
        if value.ndim != 1:
            raise self.fail(where, f"attribute {key!r} must be a 1-D array, found shape {value.shape}")
        if kind == "int" and value.dtype.kind in "iu":
            return tuple(int(item) for item in value)
        if kind == "float" and value.dtype.kind in "iuf":
            return tuple(float(item) for item in value)
        if kind == "str" and value.dtype.kind in "OSU":
            items = [item.decode("utf-8") if isinstance(item, bytes) else item for item in value.tolist()]
            if all(isinstance(item, str) for item in items):
                return tuple(items)
        raise self.fail(where, f"attribute {key!r} must hold {kind} values, found dtype {value.dtype}")

    # --- safety: before any value is read (lrpcore.io.limits) ---------------------------------------
    def check_safety(self) -> None:
        """Refuse what could hang, blow up or reach outside the file, before reading any value.

        The root ``format`` attribute is read only once its type is known to be fixed-length; a file
        that says it is an lrpcore file then has its whole structure scanned (links, attribute and
        dataset types, storage, filters) by :func:`lrpcore.io.limits.scan_hdf5`. Files without the
        lrpcore ``format`` are left to :meth:`header`, which names what they are.
        """
        attrs = self.handle.attrs
        if "format" not in attrs:
            return
        problem = limits.type_problem(attrs.get_id("format").dtype)
        if problem:
            raise self.fail("root", f"attribute 'format' {problem}")
        if self.text(attrs, "format", "root") == FORMAT_NAME:
            limits.scan_hdf5(self.handle, self.file_size, self.fail, _native_dataset_rule)

    def header(self) -> tuple[int, str]:
        attrs = self.handle.attrs
        found = self.text(attrs, "format", "root", required=False)
        if found is None:
            raise self.fail("root", f"not an lrpcore model file (no 'format' attribute); expected {FORMAT_NAME!r}. "
                                    "Keras files are read by lrpcore.io.load_keras or 'lrpcore convert'")
        if found != FORMAT_NAME:
            raise self.fail("root", f"format is {found!r}, expected {FORMAT_NAME!r}")
        version = self.integer(attrs, "format_version", "root")
        if not 1 <= version <= FORMAT_VERSION:
            raise self.fail("root", f"format_version is {version}; this lrpcore reads versions 1 to {FORMAT_VERSION}"
                                    + (" (the file is from a newer lrpcore: upgrade)" if version > FORMAT_VERSION
                                       else ""))
        dtype = self.text(attrs, "dtype", "root")
        if dtype not in ("float32", "float64", "none"):
            raise self.fail("root", f"dtype is {dtype!r}, expected 'float32', 'float64' or 'none'")
        unknown = set(attrs) - _ROOT_ATTRIBUTES
        if unknown:
            raise self.fail("root", f"unexpected attributes {sorted(unknown)}")
        return version, dtype

    def metadata(self) -> ModelMetadata:
        group = self.handle.get("metadata")
        if not isinstance(group, h5py.Group):
            raise self.fail("metadata", "group 'metadata' is missing")
        attrs = group.attrs
        unknown = set(attrs) - set(_METADATA_FIELDS)
        if unknown:
            raise self.fail("metadata", f"unexpected attributes {sorted(unknown)}")
        value_range = self.vector(attrs, "value_range", "metadata", "float")
        if value_range is None or len(value_range) != 2:
            raise self.fail("metadata", f"value_range must be 2 numbers (low, high), found {value_range}")
        return ModelMetadata(
            input_shape=self.vector(attrs, "input_shape", "metadata", "int"),
            value_range=value_range,
            mean=self.vector(attrs, "mean", "metadata", "float"),
            std=self.vector(attrs, "std", "metadata", "float"),
            class_names=self.vector(attrs, "class_names", "metadata", "str"),
            name=self.text(attrs, "name", "metadata"),
            description=self.text(attrs, "description", "metadata"),
        )

    def array(self, dataset: Any, where: str, dtype: str) -> numpy.ndarray:
        if not isinstance(dataset, h5py.Dataset):
            raise self.fail(where, f"expected a dataset, found {type(dataset).__name__}")
        if dataset.dtype.kind != "f" or dataset.dtype.itemsize not in (4, 8):
            raise self.fail(where, f"dtype is {dataset.dtype}, expected float32 or float64")
        if dataset.dtype.itemsize != numpy.dtype(dtype).itemsize:
            raise self.fail(where, f"dtype is {dataset.dtype}, but the file says the model is {dtype}")
        if dataset.nbytes > self.file_size or dataset.id.get_storage_size() < dataset.nbytes:
            raise self.fail(where, f"shape {dataset.shape} needs {dataset.nbytes} bytes, but only "
                                   f"{dataset.id.get_storage_size()} are stored (truncated file?)")
        value = numpy.asarray(dataset[()], dtype=dtype)
        if not bool(numpy.all(numpy.isfinite(value))):
            raise self.fail(where, f"array of shape {value.shape} contains NaN or inf values")
        return value

    def hyperparameter(self, value: Any, where: str) -> Any:
        if isinstance(value, bytes):
            return value.decode("utf-8")
        if isinstance(value, (str, bool, int, float)):
            return value
        if isinstance(value, numpy.bool_):
            return bool(value)
        if isinstance(value, numpy.integer):
            return int(value)
        if isinstance(value, numpy.floating):
            if not numpy.isfinite(value):
                raise self.fail(where, f"value {value!r} is not finite")
            return float(value)
        if isinstance(value, numpy.ndarray) and value.ndim == 1 and value.dtype.kind in "iufOSU":
            return [self.hyperparameter(item, where) for item in value.tolist()]
        raise self.fail(where, f"value {value!r} is not a scalar or a 1-D array")

    def layer(self, group: Any, index: int, dtype: str) -> Layer:
        where = f"layer {index}"
        if not isinstance(group, h5py.Group):
            raise self.fail(where, f"'layers/{index}' must be a group, found {type(group).__name__}")
        type_name = self.text(group.attrs, _TYPE_ATTRIBUTE, where)
        try:
            cls = registry.layer_class(type_name)
        except ModelFormatError as error:
            raise self.fail(where, str(error)) from None
        where = f"layer {index} ({type_name})"
        stored = {key: self.hyperparameter(group.attrs[key], f"{where} attribute {key!r}")
                  for key in group.attrs if key != _TYPE_ATTRIBUTE}
        arrays = {key: self.array(group[key], f"{where} dataset {key!r}", dtype) for key in group}
        arguments = [parameter for parameter in inspect.signature(cls).parameters.values()
                     if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)]
        keywords = {}
        for parameter in arguments:
            if parameter.name in arrays:
                keywords[parameter.name] = arrays[parameter.name]
            elif parameter.name in stored:
                keywords[parameter.name] = stored[parameter.name]
            elif parameter.default is parameter.empty:
                raise self.fail(where, f"needs {parameter.name!r}, which is neither a dataset nor an attribute")
        try:
            layer = cls(**keywords)
        except (LRPError, ValueError, TypeError) as error:
            raise self.fail(where, f"cannot build the layer: {error}") from None
        self.check_layer(layer, arrays, stored, where)
        return layer

    def check_layer(self, layer: Layer, arrays: dict, stored: dict, where: str) -> None:
        """The rebuilt layer holds exactly the stored arrays and reports exactly the stored hyperparameters."""
        parameters = layer.parameters()
        if set(parameters) != set(arrays):
            missing, extra = sorted(set(parameters) - set(arrays)), sorted(set(arrays) - set(parameters))
            raise self.fail(where, f"datasets {sorted(arrays)} found, expected {sorted(parameters)}"
                                   + (f" (missing {missing})" if missing else "")
                                   + (f" (unexpected {extra})" if extra else ""))
        for name, value in parameters.items():
            if value is not arrays[name] and tuple(value.shape) != arrays[name].shape:
                raise self.fail(where, f"dataset {name!r} has shape {arrays[name].shape}, "
                                       f"the layer expects {tuple(value.shape)}")
        expected = {key: self.hyperparameter(_encode_value(value, where), where)
                    for key, value in layer.hyperparameters().items()}
        for key in sorted(set(expected) | set(stored)):
            if key not in stored:
                raise self.fail(where, f"attribute {key!r} is missing (expected {expected[key]!r})")
            if key not in expected:
                raise self.fail(where, f"unexpected attribute {key!r} = {stored[key]!r}")
            if type(stored[key]) is not type(expected[key]) or stored[key] != expected[key]:
                raise self.fail(where, f"attribute {key!r} is {stored[key]!r}, but the layer built from the "
                                       f"file's arrays has {expected[key]!r}")

    def layers(self, dtype: str) -> list[Layer]:
        group = self.handle.get("layers")
        if not isinstance(group, h5py.Group):
            raise self.fail("layers", "group 'layers' is missing")
        count = self.integer(group.attrs, "count", "layers")
        if count < 1:
            raise self.fail("layers", f"count is {count}; a model has at least one layer")
        limits.check_layer_count(count, lambda message: self.fail("layers", message))
        names = set(group)
        expected = {str(index) for index in range(count)}
        if names != expected:
            raise self.fail("layers", f"count is {count}, so groups 0..{count - 1} are expected; found "
                                      f"{sorted(names, key=lambda name: (len(name), name))}")
        if set(group.attrs) != {"count"}:
            raise self.fail("layers", f"unexpected attributes {sorted(set(group.attrs) - {'count'})}")
        return [self.layer(group[str(index)], index, dtype) for index in range(count)]

    def model(self) -> Graph:
        self.check_safety()
        version, dtype = self.header()
        unknown = set(self.handle) - {"metadata", "layers"} - ({"graph"} if version >= 2 else set())
        if unknown:
            raise self.fail("root", f"unexpected entries {sorted(unknown)}")
        metadata = self.metadata()
        layers = self.layers("float32" if dtype == "none" else dtype)
        model = Sequential(layers, metadata) if version == 1 else self.graph(layers, metadata)
        has_parameters = any(layer.parameters() for layer in layers)
        if has_parameters == (dtype == "none"):
            raise self.fail("root", f"dtype is {dtype!r}, but the layers "
                                    f"{'have' if has_parameters else 'have no'} parameters")
        check_model(model, self.path)
        return model

    def graph(self, layers: list[Layer], metadata: ModelMetadata) -> Graph:
        """The graph of format version 2 (see :func:`_write_graph`); a malformed graph (a cycle, a
        missing, dangling or duplicate name, a wrong number of inputs) is a ModelFormatError."""
        group = self.handle.get("graph")
        if not isinstance(group, h5py.Group):
            raise self.fail("graph", "group 'graph' is missing; format_version 2 stores the nodes' names and "
                                     "inputs there")
        if len(group):
            raise self.fail("graph", f"unexpected entries {sorted(group)}")
        if set(group.attrs) != _GRAPH_ATTRIBUTES:
            missing, extra = _GRAPH_ATTRIBUTES - set(group.attrs), set(group.attrs) - _GRAPH_ATTRIBUTES
            raise self.fail("graph", (f"attributes {sorted(missing)} are missing" if missing else "")
                            + ("; " if missing and extra else "")
                            + (f"unexpected attributes {sorted(extra)}" if extra else ""))
        names = self.vector(group.attrs, "names", "graph", "str")
        counts = self.vector(group.attrs, "input_counts", "graph", "int")
        inputs = self.vector(group.attrs, "inputs", "graph", "str")
        input_name = self.text(group.attrs, "input_name", "graph")
        if len(names) != len(layers) or len(counts) != len(layers):
            raise self.fail("graph", f"{len(layers)} layers, but {len(names)} names and {len(counts)} input counts")
        if min(counts) < 1 or sum(counts) != len(inputs):
            shown = f"{list(counts[:12])}{'...' if len(counts) > 12 else ''}"
            raise self.fail("graph", f"input_counts {shown} must be ≥ 1 and add up to the {len(inputs)} "
                                     "entries of 'inputs'")
        starts = numpy.cumsum((0,) + counts)
        try:
            nodes = [Node(name, layer, inputs[starts[index]:starts[index + 1]])
                     for index, (name, layer) in enumerate(zip(names, layers))]
            return Graph(nodes, metadata, input_name)
        except GraphError as error:
            raise self.fail("graph", str(error)) from None


def _native_dataset_rule(dataset: h5py.Dataset, where: str) -> str | None:
    """Arrays of lrpcore files: no filter but Fletcher-32, which every non-empty, non-scalar array carries.

    Version-1 files written by :func:`save` have always checksummed their arrays; an array without
    a checksum (rewritten by another tool) could hold flipped bytes nobody can detect, so it is refused.
    """
    plist = dataset.id.get_create_plist()
    filters = [plist.get_filter(index)[0] for index in range(plist.get_nfilters())]
    others = [code for code in filters if code != h5py.h5z.FILTER_FLETCHER32]
    if others:
        return (f"uses HDF5 filter(s) {others}; lrpcore files store arrays uncompressed with Fletcher-32 checksums "
                "only")
    if dataset.size and dataset.ndim and h5py.h5z.FILTER_FLETCHER32 not in filters:
        return ("has no Fletcher-32 checksum; lrpcore files checksum every non-empty array so damaged bytes are "
                "detected (re-save the model with lrpcore.save)")
    return None


def root_format(handle: h5py.File) -> str | None:
    """The root ``format`` attribute, read only when its type is safe to read.

    None when absent or not text; :data:`FORMAT_NAME` when it is a variable-length string (not read:
    such a file claims to be lrpcore's, and :func:`load` refuses it with the reason).
    """
    if "format" not in handle.attrs:
        return None
    dtype = handle.attrs.get_id("format").dtype
    string = h5py.check_string_dtype(dtype)
    if string is None:
        return None
    if string.length is None:
        return FORMAT_NAME
    value = handle.attrs["format"]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def is_lrpcore_file(path: str | os.PathLike) -> bool:
    """True when ``path`` is an HDF5 file whose root says it is an lrpcore model (any version)."""
    try:
        limits.check_regular_file(path, "model file")
        with h5py.File(os.fspath(path), "r") as handle:
            return root_format(handle) == FORMAT_NAME
    except (ModelFormatError, *_READ_ERRORS):
        return False


def open_hdf5(path: str, what: str) -> h5py.File:
    """Open ``path`` read-only; FileNotFoundError if absent, ModelFormatError if it is not readable HDF5."""
    limits.check_regular_file(path, what)  # FileNotFoundError, or ModelFormatError for a FIFO, device, folder
    try:
        return h5py.File(path, "r")
    except _READ_ERRORS as error:
        raise ModelFormatError(f"{path}: not a readable HDF5 file: not HDF5, truncated or damaged "
                               f"({type(error).__name__}: {error}); a {what} must be HDF5") from None


def load(path: str | os.PathLike, dtype: str | None = None, backend: Any = "numpy") -> Graph:
    """Read a model written by :func:`save`; every part is validated before the model is returned.

    A version-1 file gives a :class:`~lrpcore.Sequential`, a version-2 file a :class:`~lrpcore.Graph`.

    ``dtype``: None keeps the stored precision, "float32"/"float64" converts after loading.
    ``backend``: "numpy" (default), "cupy" or an array namespace the arrays are moved to.
    Raises ``FileNotFoundError`` for a missing file and :class:`~lrpcore.errors.ModelFormatError`
    for anything else wrong with it, naming the file, the layer and what was expected.
    """
    if dtype not in (None, "float32", "float64"):
        raise ValueError(f"dtype must be None, 'float32' or 'float64', got {dtype!r}")
    path = os.fspath(path)
    with open_hdf5(path, "model file") as handle:
        try:
            model = _Reader(handle, path).model()
        except ModelFormatError:
            raise
        except _READ_ERRORS as error:
            raise ModelFormatError(f"{path}: damaged or malformed model file ({type(error).__name__}: "
                                   f"{error})") from None
    if dtype is not None and model.dtype is not None and numpy.dtype(dtype) != numpy.dtype(str(model.dtype)):
        model = model.astype(dtype)
    if backend != "numpy":
        model = model.to(backend)
    return model
