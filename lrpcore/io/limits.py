"""Bounds and safety checks for reading model files: nothing is opened, read or allocated unchecked.

A model file is untrusted input. Before any value is read, lrpcore checks that

- the path is a *regular file* (a FIFO would block ``open`` for ever, ``/dev/zero`` never ends);
- every object in an HDF5 file is reached by a plain (hard) link inside the file: soft and
  external links, external storage (raw data in another file) and virtual datasets (data mapped
  from other files) are refused, so a model never pulls data from outside itself;
- attribute and dataset types are fixed-size: variable-length strings and sequences live in HDF5's
  global heap, which has no checksum, and reading a damaged one can loop for ever inside HDF5;
- every declared size is backed by stored bytes: an uncompressed array must have all its bytes in
  the file, a compressed one may expand at most :data:`MAX_COMPRESSION_RATIO` times (plus
  :data:`COMPRESSION_ALLOWANCE`), a member of a ``.keras`` zip archive at most
  ``max(MAX_COMPRESSION_RATIO × archive size, MAX_ARCHIVE_MEMBER_FLOOR)`` bytes;
- declared counts are bounded: at most :data:`MAX_LAYERS` layers (and the reader then checks that
  exactly that many layer groups are stored).

The limits are module attributes a caller may raise for an exceptional, trusted file. Each check
raises :class:`~lrpcore.errors.ModelFormatError` naming the file, the place and the limit.
"""
from __future__ import annotations

import errno
import os
import stat
import zipfile
from typing import Any, Callable

import h5py

from ..errors import ModelFormatError

__all__ = ["MAX_LAYERS", "MAX_COMPRESSION_RATIO", "COMPRESSION_ALLOWANCE", "MAX_ARCHIVE_MEMBER_FLOOR",
           "MAX_CONFIG_BYTES", "MAX_HDF5_OBJECTS", "check_regular_file", "link_problem", "type_problem",
           "storage_problem", "check_layer_count", "read_archive_member", "archive_member_limit", "scan_hdf5",
           "scan_links"]

#: Most layers a model file may declare.
MAX_LAYERS = 100_000
#: Most objects (groups and datasets) the structure scan of an HDF5 model file visits.
MAX_HDF5_OBJECTS = 1_000_000
#: A compressed array may declare at most this many times its stored bytes (plus the allowance below).
#: Real weights hardly compress (random floats: about 1.1×); a ratio of 1000 is a decompression bomb.
MAX_COMPRESSION_RATIO = 64
#: Bytes a compressed array may always declare, whatever its ratio (small all-zero biases compress well).
COMPRESSION_ALLOWANCE = 2**20
#: Least size a member of a ``.keras`` archive may always inflate to.
MAX_ARCHIVE_MEMBER_FLOOR = 2**26
#: Largest Keras ``config.json`` / model config file read.
MAX_CONFIG_BYTES = 2**26

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def check_regular_file(path: str | os.PathLike, what: str) -> int:
    """Size of the regular file at ``path``; ``FileNotFoundError`` if absent, ModelFormatError if it is not a
    regular file (checked with ``stat``, before anything opens it)."""
    path = os.fspath(path)
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, f"{what} not found", path) from None
    if stat.S_ISREG(status.st_mode):
        return int(status.st_size)
    kind = next((name for test, name in _KINDS if test(status.st_mode)), "not a plain file")
    if stat.S_ISDIR(status.st_mode):
        raise ModelFormatError(f"{path}: is a directory, not a {what}")
    raise ModelFormatError(f"{path}: not a regular file ({kind}); a {what} must be a regular file")


def link_problem(group: h5py.Group, name: str) -> str | None:
    """Why the link ``name`` in ``group`` may not be followed (None for a hard link inside the file)."""
    link = group.get(name, getlink=True)
    if isinstance(link, h5py.HardLink):
        return None
    if isinstance(link, h5py.ExternalLink):
        return (f"is an external link to {link.filename}:{link.path}; a model file must hold all its data "
                "itself (external links are refused)")
    if isinstance(link, h5py.SoftLink):
        return f"is a soft link to {link.path}; only plain (hard) links are allowed"
    return f"is a link of an unknown kind ({type(link).__name__}); only plain (hard) links are allowed"


def type_problem(dtype: Any) -> str | None:
    """Why values of ``dtype`` may not be read (None for fixed-size numbers, booleans and fixed-length strings)."""
    string = h5py.check_string_dtype(dtype)
    if string is not None and string.length is None:
        return ("is a variable-length string, kept in HDF5's global heap, which has no checksum (a damaged heap "
                "can make reading loop for ever); lrpcore files store fixed-length strings")
    if h5py.check_vlen_dtype(dtype) is not None:
        return "is a variable-length sequence (HDF5 global heap, no checksum); not allowed"
    if h5py.check_ref_dtype(dtype) is not None:
        return "holds object or region references; not allowed"
    if dtype.kind not in "biufS" or dtype.fields is not None or dtype.subdtype is not None:
        return f"has type {dtype}; only numbers, booleans and fixed-length strings are allowed"
    return None


def _filters(dataset: h5py.Dataset) -> list[int]:
    plist = dataset.id.get_create_plist()
    return [plist.get_filter(index)[0] for index in range(plist.get_nfilters())]


def storage_problem(dataset: h5py.Dataset, file_size: int, allow_compression: bool) -> str | None:
    """Why the array ``dataset`` may not be read: data outside the file, or a declared size its stored
    bytes cannot back (a sparse or truncated array, a decompression bomb). None when it is safe."""
    plist = dataset.id.get_create_plist()
    if plist.get_external_count() > 0:
        names = ", ".join(plist.get_external(index)[0].decode("utf-8", "replace")
                          for index in range(min(plist.get_external_count(), 3)))
        return f"uses external storage (raw data in {names}); a model file must hold all its data itself"
    if dataset.is_virtual:
        return "is a virtual dataset (data mapped from other files); a model file must hold all its data itself"
    declared = int(dataset.size) * int(dataset.dtype.itemsize)
    stored = int(dataset.id.get_storage_size())
    compressing = [code for code in _filters(dataset)
                   if code not in (h5py.h5z.FILTER_FLETCHER32, h5py.h5z.FILTER_SHUFFLE)]
    if compressing:
        if not allow_compression:
            return "is compressed; lrpcore files store arrays uncompressed"
        limit = MAX_COMPRESSION_RATIO * stored + COMPRESSION_ALLOWANCE
        if declared > limit:
            return (f"is compressed and declares shape {dataset.shape} ({declared:,} bytes) from {stored:,} stored "
                    f"bytes, more than lrpcore.io.limits.MAX_COMPRESSION_RATIO = {MAX_COMPRESSION_RATIO}× its "
                    f"stored size plus {COMPRESSION_ALLOWANCE:,} bytes (a decompression bomb?)")
        return None
    if declared > file_size or stored < declared:
        return (f"declares shape {dataset.shape} ({declared:,} bytes) but only {stored:,} bytes are stored in the "
                f"{file_size:,}-byte file (truncated, or a sparse array HDF5 would fill with zeros)")
    return None


def check_layer_count(count: int, fail: Callable[[str], Exception]) -> None:
    """A declared layer count is at most :data:`MAX_LAYERS` (checked before anything is sized by it)."""
    if count > MAX_LAYERS:
        raise fail(f"count is {count}, more than lrpcore.io.limits.MAX_LAYERS = {MAX_LAYERS:,}")


def read_archive_member(archive: zipfile.ZipFile, name: str, limit: int, source: str) -> bytes:
    """The bytes of member ``name``, refusing more than ``limit`` (checked on the declared size and while
    inflating, so a member whose header lies is stopped too)."""
    info = archive.getinfo(name)
    if info.file_size > limit:
        raise ModelFormatError(f"{source}: {name} declares {info.file_size:,} bytes inflated from "
                               f"{info.compress_size:,}, over the limit of {limit:,} bytes "
                               "(lrpcore.io.limits: a decompression bomb?)")
    with archive.open(info) as member:
        data = member.read(limit + 1)
    if len(data) > limit:
        raise ModelFormatError(f"{source}: {name} inflates to more than the limit of {limit:,} bytes "
                               "(lrpcore.io.limits: a decompression bomb?)")
    return data


def archive_member_limit(archive_size: int) -> int:
    """Most bytes a member of a zip archive of ``archive_size`` bytes may inflate to."""
    return max(MAX_COMPRESSION_RATIO * archive_size, MAX_ARCHIVE_MEMBER_FLOOR)


def scan_hdf5(handle: h5py.File, file_size: int, fail: Callable[[str, str], Exception],
              dataset_rule: Callable[[h5py.Dataset, str], str | None] | None = None) -> None:
    """Walk every group and dataset of ``handle`` before anything is read, following hard links only.

    Refuses (``fail(where, message)``) soft and external links, attributes and datasets whose type
    :func:`type_problem` rejects, datasets :func:`storage_problem` rejects (without compression), and
    whatever ``dataset_rule(dataset, where)`` returns. Objects reached twice (hard-linked cycles) are
    visited once; at most :data:`MAX_HDF5_OBJECTS` objects are visited.
    """
    seen: set[tuple[int, int]] = set()
    pending: list[tuple[str, h5py.Group]] = [("/", handle)]
    visited = 0
    while pending:
        where, group = pending.pop()
        _check_attributes(group, where, fail)
        for name in group:
            path = f"{where.rstrip('/')}/{name}"
            problem = link_problem(group, name)
            if problem:
                raise fail(path, problem)
            item = group.get(name)
            info = h5py.h5o.get_info(item.id)
            key = (int(info.fileno), int(info.addr))
            if key in seen:
                continue
            seen.add(key)
            visited += 1
            if visited > MAX_HDF5_OBJECTS:
                raise fail(where, f"more than lrpcore.io.limits.MAX_HDF5_OBJECTS = {MAX_HDF5_OBJECTS:,} objects")
            if isinstance(item, h5py.Group):
                pending.append((path, item))
            elif isinstance(item, h5py.Dataset):
                _check_attributes(item, path, fail)
                problem = type_problem(item.dtype) or storage_problem(item, file_size, allow_compression=False)
                if problem is None and dataset_rule is not None:
                    problem = dataset_rule(item, path)
                if problem:
                    raise fail(path, f"dataset {problem}")
            else:
                raise fail(path, f"is a {type(item).__name__}; only groups and datasets are allowed")


def scan_links(handle: h5py.File, fail: Callable[[str, str], Exception]) -> None:
    """Refuse soft and external links anywhere in ``handle`` (for files whose types are checked elsewhere,
    such as Keras weight files). Visits each object once, at most :data:`MAX_HDF5_OBJECTS`."""
    seen: set[tuple[int, int]] = set()
    pending: list[tuple[str, h5py.Group]] = [("/", handle)]
    while pending:
        where, group = pending.pop()
        for name in group:
            path = f"{where.rstrip('/')}/{name}"
            problem = link_problem(group, name)
            if problem:
                raise fail(path, problem)
            item = group.get(name)
            if isinstance(item, h5py.Group):
                info = h5py.h5o.get_info(item.id)
                key = (int(info.fileno), int(info.addr))
                if key not in seen:
                    seen.add(key)
                    if len(seen) > MAX_HDF5_OBJECTS:
                        raise fail(where, f"more than lrpcore.io.limits.MAX_HDF5_OBJECTS = {MAX_HDF5_OBJECTS:,} groups")
                    pending.append((path, item))


def _check_attributes(item: Any, where: str, fail: Callable[[str, str], Exception]) -> None:
    for key in item.attrs:
        problem = type_problem(item.attrs.get_id(key).dtype)
        if problem:
            raise fail(where, f"attribute {key!r} {problem}")
