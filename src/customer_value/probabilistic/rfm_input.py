"""The RFM summary the purchase models read, checked once for every path that reads it.

lifetimes' convention: ``frequency`` = repeat purchases (a whole number), ``recency`` = time from
the first to the last purchase, ``T`` = time from the first purchase to the end of the history,
all finite and ``>= 0``, ``recency <= T``, and ``recency = 0`` when ``frequency = 0``. A breach
is an error that names the column and example customers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

RFM_COLUMNS: tuple[str, ...] = ("frequency", "recency", "T")


def offenders(index: Any, mask: np.ndarray, k: int = 5) -> list[Any]:
    """Up to ``k`` index labels where ``mask`` holds."""
    return [index[i] for i in np.flatnonzero(mask)[:k]]


def check_rfm(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, index: Any) -> None:
    """Raise on the first broken rule (see the module docstring); ``index`` labels the rows."""
    for name, values in (("frequency", x), ("recency", t_x), ("T", T)):
        bad = ~(values >= 0) | ~(values < np.inf)
        if bad.any():
            raise ValueError(f"RFM column {name!r} must be finite and >= 0; {int(bad.sum())} bad row(s), "
                             f"e.g. customers {offenders(index, bad)}")
    if x.dtype.kind == "f":
        bad = x != np.floor(x)
        if bad.any():
            raise ValueError(f"RFM column 'frequency' must hold whole numbers; e.g. customers {offenders(index, bad)}")
    bad = t_x > T * (1 + 1e-12) + 1e-12
    if bad.any():
        raise ValueError(f"RFM 'recency' must not exceed 'T'; {int(bad.sum())} row(s), e.g. customers "
                         f"{offenders(index, bad)}")
    bad = (x == 0) & (t_x != 0)
    if bad.any():
        raise ValueError(f"RFM 'recency' must be 0 when 'frequency' is 0; e.g. customers {offenders(index, bad)}")


def rfm_arrays(rfm: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked ``(frequency, recency, T)`` float arrays (recency capped at T)."""
    if not isinstance(rfm, pd.DataFrame):
        raise TypeError(f"expected an RFM summary DataFrame, got {type(rfm).__name__}")
    missing = [c for c in RFM_COLUMNS if c not in rfm.columns]
    if missing:
        raise ValueError(f"RFM summary is missing column(s) {missing}; it has {list(rfm.columns)}")
    arrays = []
    for col in RFM_COLUMNS:
        try:
            arrays.append(rfm[col].to_numpy(dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"RFM column {col!r} must be numeric: {exc}") from exc
    x, t_x, T = arrays
    check_rfm(x, t_x, T, rfm.index)
    return x, np.minimum(t_x, T), T
