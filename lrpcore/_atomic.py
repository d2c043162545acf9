"""Atomic file output: a file is either the complete new version or untouched, never half written.

Every file lrpcore writes goes through here. The bytes go to a temporary file in the target's own
folder (same file system, so the final rename is atomic), are flushed and ``fsync``-ed, and only then
the temporary file is renamed onto the target; the folder is ``fsync``-ed after the rename so the new
name is durable too. If anything fails before the rename — a full disk, a quota, an interrupted
process — the temporary file is removed and the previous file (if any) is left exactly as it was.

Errors are :class:`OutputError`, an ``OSError`` whose ``errno`` is the system's (``ENOSPC`` for a full
disk) and whose message names the file: ``cannot write out/heat.png: No space left on device (the
previous out/heat.png is unchanged)``. Without ``overwrite`` an existing file is never replaced, even
if it appears while the new one is being written (the rename is then a hard link, which fails if the
name exists).

Bytes are written with ``os.write`` on a raw descriptor, so a short write is retried and an error
surfaces at once (no buffered data lost at ``close``); tests simulate a full disk by patching it.
"""
from __future__ import annotations

import contextlib
import errno
import io
import os
import tempfile
from typing import Any

__all__ = ["OutputError", "write_bytes", "write_text", "save_figure", "figure_bytes", "temporary_copy",
           "publish", "discard", "fsync_folder", "write_all"]

#: Suffix of the temporary files (``.<name>.<random>.tmp`` next to the target).
TEMPORARY_SUFFIX = ".tmp"


class OutputError(OSError):
    """Writing an output failed; the message names the file and says what was kept."""

    def __init__(self, code: int | None, path: str, reason: str, kept: bool):
        self.path = path
        detail = f" (the previous {path} is unchanged)" if kept else " (nothing was written)"
        super().__init__(code, f"cannot write {path}: {reason}{detail}")
        self.filename = path

    def __str__(self) -> str:
        return str(self.strerror)


def write_all(descriptor: int, data: bytes | bytearray | memoryview) -> None:
    """``os.write`` until every byte is written (a short write is retried; errors propagate)."""
    view = memoryview(data).cast("B")
    while len(view):
        written = os.write(descriptor, view)
        if written <= 0:  # pragma: no cover - POSIX raises rather than returning 0 for regular files
            raise OSError(errno.EIO, "write returned 0 bytes")
        view = view[written:]


def fsync_folder(folder: str) -> None:
    """``fsync`` a folder so renames and removals in it are durable (ignored where not supported)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _default_mode() -> int:
    """Permissions a plainly created file gets (0666 less the umask); mkstemp makes 0600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _failure(error: OSError, path: str) -> OutputError:
    reason = error.strerror or str(error)
    return OutputError(error.errno, path, reason, kept=os.path.exists(path))


def temporary_copy(path: str | os.PathLike, data: bytes | bytearray | memoryview) -> str:
    """Write ``data`` to a new temporary file next to ``path``, flushed and fsync-ed; returns its name.

    On failure the temporary file is removed and :class:`OutputError` names ``path``.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, f"cannot write {path}: folder {folder} does not exist", folder)
    try:
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.",
                                                 suffix=TEMPORARY_SUFFIX)
    except OSError as error:
        raise _failure(error, path) from None
    try:
        try:
            write_all(descriptor, data)
            os.fsync(descriptor)
            os.fchmod(descriptor, _default_mode())
        finally:
            os.close(descriptor)
    except OSError as error:
        discard(temporary)
        raise _failure(error, path) from None
    except BaseException:
        discard(temporary)
        raise
    return temporary


def discard(temporary: str) -> None:
    """Remove a temporary file if it is still there."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)


def publish(temporary: str, path: str | os.PathLike, overwrite: bool) -> None:
    """Move the finished ``temporary`` onto ``path``; without ``overwrite`` never replace an existing file.

    The temporary file is gone afterwards whatever happens.
    """
    path = os.fspath(path)
    try:
        if overwrite:
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path)  # atomic, and fails if ``path`` exists (even if it appeared just now)
            except FileExistsError:
                raise FileExistsError(errno.EEXIST, f"{path} exists; pass overwrite=True (--overwrite) to replace "
                                                    "it", path) from None
            except OSError:  # a file system without hard links
                if os.path.exists(path):
                    raise FileExistsError(errno.EEXIST, f"{path} exists; pass overwrite=True (--overwrite) to "
                                                        "replace it", path) from None
                os.replace(temporary, path)
    except FileExistsError:
        discard(temporary)
        raise
    except OSError as error:
        discard(temporary)
        raise _failure(error, path) from None
    discard(temporary)
    fsync_folder(os.path.dirname(os.path.abspath(path)))


def write_bytes(path: str | os.PathLike, data: bytes | bytearray | memoryview, *, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    path = os.fspath(path)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(errno.EEXIST, f"{path} exists; pass overwrite=True (--overwrite) to replace it", path)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, f"cannot write {path}: it is a directory", path)
    publish(temporary_copy(path, data), path, overwrite)


def write_text(path: str | os.PathLike, text: str, *, overwrite: bool = False, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    write_bytes(path, text.encode(encoding), overwrite=overwrite)


def figure_bytes(figure: Any, **savefig: Any) -> bytes:
    """A matplotlib figure rendered in memory (PNG unless ``format=`` says otherwise)."""
    savefig.setdefault("format", "png")
    buffer = io.BytesIO()
    figure.savefig(buffer, **savefig)
    return buffer.getvalue()


def save_figure(figure: Any, path: str | os.PathLike, *, overwrite: bool = False, **savefig: Any) -> None:
    """Render ``figure`` in memory (format from ``format=`` or the file suffix) and write it to ``path`` atomically."""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    if "format" not in savefig and suffix in ("png", "pdf", "svg", "jpg", "jpeg", "eps", "ps", "tif", "tiff"):
        savefig["format"] = suffix
    if not overwrite and os.path.exists(path):
        raise FileExistsError(errno.EEXIST, f"{path} exists; pass overwrite=True (--overwrite) to replace it", path)
    write_bytes(path, figure_bytes(figure, **savefig), overwrite=overwrite)
