"""All file writing: tables written deterministically (same frame, same bytes) and results written
atomically (a reader never sees a partial file).

A result goes to ``.NAME.<pid>.<random>.tmp`` beside ``NAME``, is fsynced and renamed over it, so a
crash at any moment leaves either the previous file or the new one, never a mix. Only a kill that
gives no chance to clean up (SIGKILL, power loss) can leave that temporary file behind; the next
write to the same name removes it once its process is gone. Where a result cannot be written
(a directory, under a file, read-only, full) is an :class:`OutputError` naming the path, and
:func:`check_output` says so before a job does its long work.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from customer_value.data.tables import Tables
from customer_value.errors import OutputError

TEMP_SUFFIX = ".tmp"


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def check_output(path: str | Path, what: str = "output") -> Path:
    """``path`` if a file can be written there, else :class:`OutputError` (one line naming it): an
    existing directory, a parent that is a file, a folder this process cannot write."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write the {what} to {path}: it is a directory; name a file in it, "
                          f"e.g. {path / 'scores.parquet'}")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        blocker = next((p for p in [path.parent, *path.parent.parents] if p.exists()), ancestor)
        raise OutputError(f"cannot write the {what} to {path}: {blocker} is a file, not a directory")
    try:  # os.access is not enough (root, ACLs, read-only mounts): try it
        fd, probe = tempfile.mkstemp(prefix=f"{_temp_prefix(path)}{os.getpid()}.", suffix=TEMP_SUFFIX, dir=ancestor)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"cannot write the {what} to {path}: {_reason(exc)} ({ancestor})") from exc
    return path


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return exc.strerror or str(exc) or type(exc).__name__


def remove_stale_temp_files(path: str | Path) -> list[Path]:
    """Remove ``.NAME.<pid>.*.tmp`` files beside ``path`` whose writing process is gone (left by a
    kill that allowed no cleanup); a live writer's file stays. Returns what was removed."""
    path = Path(path)
    prefix = _temp_prefix(path)
    removed = []
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(TEMP_SUFFIX)]
    except OSError:
        return removed
    for candidate in candidates:
        owner = candidate.name[len(prefix):].split(".", 1)[0]
        if owner.isdigit() and process_alive(int(owner)):
            continue
        try:
            candidate.unlink()
            removed.append(candidate)
        except OSError:
            pass
    return removed


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still exists on this machine (a zombie counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_parquet_atomically(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write to ``.NAME.<pid>.<random>.tmp`` beside ``path``, fsync, then rename over it (atomic on
    POSIX); stale temporary files of killed writers go first. :class:`OutputError` when it fails."""
    path = Path(path)
    return _write_atomically(path, lambda tmp: frame.to_parquet(tmp, index=False))


def write_text_atomically(text: str, path: str | Path) -> Path:
    """The same for a text file (e.g. an HTML report)."""
    path = Path(path)
    return _write_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _write_atomically(path: Path, write) -> Path:
    if path.is_dir() or not path.parent.is_dir():
        check_output(path)  # a directory, or a parent that is a file, named as such
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(path)
        fd, tmp = tempfile.mkstemp(prefix=f"{_temp_prefix(path)}{os.getpid()}.", suffix=TEMP_SUFFIX, dir=path.parent)
        os.close(fd)
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from exc
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide the results from other readers
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError(f"cannot write {path}: {_reason(exc)}") from exc
        raise
    _sync_directory(path.parent)
    return path


def _sync_directory(directory: Path) -> None:
    """Make the rename itself durable (best effort: not every file system allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """Write one frame deterministically (no index, fixed options): same frame, same bytes."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path, compression="zstd")
    return path


def write_tables(tables: Tables, out_dir: str | Path, skip_empty: bool = False) -> dict[str, Path]:
    """Write each contract table as ``NAME.parquet``; ``skip_empty`` leaves empty optional ones out."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {name: write_parquet(frame, out_dir / f"{name}.parquet")
            for name, frame in tables.items() if not (skip_empty and frame.empty)}


class ParquetBatchWriter:
    """Frames appended to one Parquet file, atomically: the rows go to a temporary file beside
    ``path`` (named as :func:`write_parquet_atomically`'s, so a killed writer's is cleaned up
    alike) that replaces ``path`` only when the ``with`` block ends without an error; otherwise
    it is removed and ``path`` is untouched. For results too large to hold at once (scoring in
    batches). One frame is written exactly as :func:`write_parquet_atomically` writes it; with
    more, the first fixes the schema and its pandas metadata (which carries ``attrs``). The same
    frames give the same bytes. ``path=None`` writes nothing."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = None if path is None else Path(path)
        self.rows = 0
        self._first: pd.DataFrame | None = None
        self._writer: pq.ParquetWriter | None = None
        self._tmp: Path | None = None
        self._schema: pa.Schema | None = None

    def __enter__(self) -> "ParquetBatchWriter":
        return self

    def append(self, frame: pd.DataFrame) -> None:
        if self.path is None:
            return
        self.rows += len(frame)
        if self._first is None and self._writer is None:  # held until a second frame comes
            self._first = frame
            return
        if self._writer is None:
            self._open(self._first)
            self._first = None
        self._write(frame)

    def _open(self, first: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(first, preserve_index=False)
        if first.attrs:  # where pandas' to_parquet keeps them, so read_parquet gives them back
            table = table.replace_schema_metadata({**table.schema.metadata, "PANDAS_ATTRS": json.dumps(first.attrs)})
        check_output(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{_temp_prefix(self.path)}{os.getpid()}.", suffix=TEMP_SUFFIX,
                                   dir=self.path.parent)
        os.close(fd)
        self._tmp, self._schema = Path(tmp), table.schema
        self._writer = pq.ParquetWriter(self._tmp, self._schema)
        self._writer.write_table(table)

    def _write(self, frame: pd.DataFrame) -> None:
        self._writer.write_table(pa.Table.from_pandas(frame, preserve_index=False).cast(self._schema))

    def __exit__(self, kind: object, *_: object) -> None:
        if self._writer is None:
            if self._first is not None and kind is None:
                write_parquet_atomically(self._first, self.path)
            self._first = None
            return
        try:
            self._writer.close()
            if kind is None:  # the finished file moves in under the atomic writer's own temporary name
                _write_atomically(self.path, lambda tmp: os.replace(self._tmp, tmp))
        finally:
            if self._tmp is not None:
                self._tmp.unlink(missing_ok=True)
