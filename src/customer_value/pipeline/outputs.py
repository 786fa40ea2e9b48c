"""Writing results safely: a reader never sees a partial file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd


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
