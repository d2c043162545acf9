"""A folder of outputs written as one set: all new files or none, recorded, and never a file lrpcore did not write.

Commands that write several files into a folder (``lrpcore evaluate``, ``stability``, ``sweep``'s plots,
``explain`` of a batch) write them through an :class:`OutputSet`:

1. :meth:`OutputSet.check` runs before any work and refuses names that exist in the folder and were
   not written by this command there (always, ``--overwrite`` or not), and names this command wrote
   before unless replacing them is allowed (``--overwrite``, or a resumed sweep redrawing its plots);
2. each output is rendered and written to a temporary file in the folder (:mod:`lrpcore._atomic`):
   a full disk stops the set here, the temporary files are removed and the folder is as before;
3. :meth:`OutputSet.commit` renames all temporary files into place, removes the files this command
   wrote *last time* that this run did not write again (so a folder never mixes two runs), and
   records the new list.

The record is the folder's manifest ``.lrpcore-outputs.json``: for each command ("owner") the names
it wrote, when, and nothing else. A file not listed there is the user's and is never replaced or
removed. Updating the manifest and renaming happen under an exclusive ``flock`` of the folder, so
two commands writing into one folder do not lose each other's records.
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

from . import _atomic

try:  # POSIX; elsewhere the manifest is updated without a lock
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = ["OutputSet", "MANIFEST_NAME", "read_manifest"]

#: File name of the record of what lrpcore wrote into a folder.
MANIFEST_NAME = ".lrpcore-outputs.json"
_FORMAT = "lrpcore-outputs"


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """The folder's record ``{owner: {"files": [...], "written": time}}``; empty when there is none."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FileExistsError(errno.EEXIST, f"{path} is not a readable lrpcore output record ({error}); move it "
                                            "away or choose another output folder", str(path)) from None
    if not isinstance(stored, dict) or stored.get("format") != _FORMAT or not isinstance(stored.get("owners"), dict):
        raise FileExistsError(errno.EEXIST, f"{path} is not an lrpcore output record; move it away or choose "
                                            "another output folder", str(path))
    owners = {}
    for owner, record in stored["owners"].items():
        files = record.get("files") if isinstance(record, dict) else None
        if isinstance(files, list) and all(isinstance(name, str) for name in files):
            owners[owner] = {**record, "files": [name for name in files if _plain_name(name)]}
    return owners


def _plain_name(name: str) -> bool:
    """A file name inside the folder (no separators, no '..'): what a record may list."""
    return bool(name) and name not in (".", "..") and os.sep not in name and (os.altsep or "/") not in name


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Exclusive ``flock`` on the folder itself (released when the block ends)."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


class OutputSet:
    """The files one run of command ``owner`` writes into ``folder``, published together by :meth:`commit`.

    ``overwrite``: files this command wrote there before may be replaced (its ``--overwrite``);
    ``replace_own``: the same without asking (a resumed sweep redraws its own plots), default
    ``overwrite``. Files the folder's manifest does not list as this command's are never touched.
    """

    def __init__(self, folder: str | os.PathLike, owner: str, *, overwrite: bool = False,
                 replace_own: bool | None = None, command: str | None = None):
        self.folder = Path(folder)
        self.owner = owner
        self.command = command or f"lrpcore {owner.split(':')[0]}"
        self.replace_own = overwrite if replace_own is None else replace_own
        self._pending: dict[str, str] = {}   # name → temporary file
        self.written: list[Path] = []

    # --- before any work --------------------------------------------------------------------------
    def own_files(self) -> set[str]:
        """Names this owner recorded in the folder last time."""
        return set(read_manifest(self.folder).get(self.owner, {}).get("files", [])) if self.folder.is_dir() else set()

    def check(self, names: Iterable[str]) -> None:
        """Refuse (``FileExistsError`` naming them) the ``names`` this run must not write."""
        if self.folder.exists() and not self.folder.is_dir():
            raise FileExistsError(errno.EEXIST, f"{self.folder} exists and is not a folder", str(self.folder))
        if not self.folder.is_dir():
            return
        own = self.own_files()
        existing = [name for name in names if os.path.lexists(self.folder / name)]
        foreign = [name for name in existing if name not in own]
        if foreign:
            listed = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise FileExistsError(errno.EEXIST,
                                  f"{self.folder} holds {listed}, not written by {self.command} there (not in its "
                                  f"record {MANIFEST_NAME}); lrpcore never replaces files it did not write, even "
                                  "with --overwrite: move them away or choose another output folder",
                                  str(self.folder / foreign[0]))
        if existing and not self.replace_own:
            listed = ", ".join(existing[:5]) + (f" and {len(existing) - 5} more" if len(existing) > 5 else "")
            raise FileExistsError(errno.EEXIST, f"{self.folder} already holds {listed} from an earlier run of "
                                                f"{self.command}; pass --overwrite to replace them, or choose "
                                                "another output folder", str(self.folder / existing[0]))

    # --- writing ------------------------------------------------------------------------------------
    def add_bytes(self, name: str, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` as output ``name`` (to a temporary file now; published by :meth:`commit`)."""
        if not _plain_name(name):
            raise ValueError(f"output name {name!r} must be a plain file name")
        if name in self._pending:
            raise ValueError(f"output {name!r} written twice in one set")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._pending[name] = _atomic.temporary_copy(self.folder / name, data)

    def add_text(self, name: str, text: str, encoding: str = "utf-8") -> None:
        self.add_bytes(name, text.encode(encoding))

    def add_figure(self, name: str, figure: Any, **savefig: Any) -> None:
        """Render a matplotlib figure in memory and add it (PNG unless ``format=``)."""
        self.add_bytes(name, _atomic.figure_bytes(figure, **savefig))

    def abort(self) -> None:
        """Remove every temporary file; the folder is as it was."""
        for temporary in self._pending.values():
            _atomic.discard(temporary)
        self._pending.clear()

    def commit(self) -> list[Path]:
        """Publish the written outputs, remove this owner's files of the previous run that were not rewritten,
        and record the new list. Returns the published paths."""
        names = list(self._pending)
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            with _folder_lock(self.folder):
                self.check(names)  # again: a file may have appeared while the outputs were computed
                owners = read_manifest(self.folder)
                previous = set(owners.get(self.owner, {}).get("files", []))
                # record first (old ∪ new), so a crash while renaming never leaves files of ours unrecorded
                self._record(owners, sorted(previous | set(names)))
                for name in names:
                    _atomic.publish(self._pending.pop(name), self.folder / name, overwrite=True)
                for name in sorted(previous - set(names)):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.folder / name)
                self._record(owners, sorted(names))
        finally:
            self.abort()
        _atomic.fsync_folder(str(self.folder))
        self.written = [self.folder / name for name in names]
        return self.written

    def _record(self, owners: dict[str, Any], names: list[str]) -> None:
        owners = dict(owners)
        owners[self.owner] = {"files": names, "command": self.command,
                              "written": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        text = json.dumps({"format": _FORMAT, "version": 1, "owners": owners}, indent=1, sort_keys=True) + "\n"
        _atomic.write_text(self.folder / MANIFEST_NAME, text, overwrite=True)

    # --- as a context: commit on success, abort on any error ----------------------------------------------
    def __enter__(self) -> "OutputSet":
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()
