"""All file writing: tables written deterministically (same frame, same bytes) and results written
atomically (a reader never sees a partial file)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from customer_value.data.tables import Tables


def write_parquet_atomically(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write to a temporary file beside ``path``, fsync, then rename over it (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide the scores from other readers
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
