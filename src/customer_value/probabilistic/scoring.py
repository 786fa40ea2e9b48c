"""Cache-friendly scoring of (M)BG/NBD for large customer bases.

Scoring ten million customers is memory-bound: every whole-array numpy operation streams 80 MB
through the CPU, and a straightforward implementation makes about a hundred such passes. Here the
rows are processed in blocks that fit in cache, and main memory is read a handful of times:

1. one pass finds the range of ``frequency`` and ``T`` and checks that both are whole numbers
   (daily data);
2. one pass marks which ``(frequency, T)`` pairs occur, in a dense table;
3. the expensive terms (hypergeometric closed form, discounting quadrature, the pair part of
   ``p_alive``) are evaluated once per occurring pair;
4. one pass validates each block, looks up its pairs and writes ``p_alive``, expected and
   discounted expected transactions.

When the data are not whole numbers or the pair table would be too large, :func:`score` returns
``None`` and the caller uses the general sort-based path.

:func:`compress_whole_numbers` does the same for fitting: one blocked pass validates the rows and
packs each whole-number ``(frequency, recency, T)`` into one int64 key, and a single in-place sort
of the keys yields the unique patterns and their counts.
"""

from __future__ import annotations

import numpy as np

from customer_value.probabilistic import nbd
from customer_value.probabilistic.patterns import Patterns, from_weighted
from customer_value.probabilistic.rfm_input import check_rfm

BLOCK = 1 << 16
MAX_PAIRS_TABLE = 1 << 24


def _blocks(n: int, size: int = BLOCK):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def score(
    model: str,
    theta: np.ndarray,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    index,
    horizon: float,
    delta: float,
    out: np.ndarray | None = None,
) -> np.ndarray | None:
    """``(3, n)`` array of p_alive, expected and discounted expected transactions, or None.

    ``out`` (shape ``(3, n)`` or larger in the first axis) receives the result when given.
    """
    n = x.shape[0]
    if n == 0 or model == "pareto_nbd":
        return None
    # 1. ranges and whole numbers
    x_min = T_min = np.inf
    x_max = T_max = -np.inf
    for sl in _blocks(n, 1 << 18):
        xb, Tb = x[sl], T[sl]
        x_min, x_max = min(x_min, xb.min()), max(x_max, xb.max())
        T_min, T_max = min(T_min, Tb.min()), max(T_max, Tb.max())
        if not (np.array_equal(Tb, np.floor(Tb)) and (x.dtype.kind in "iu" or np.array_equal(xb, np.floor(xb)))):
            return None
    if not (np.isfinite([x_min, x_max, T_min, T_max]).all() and x_min >= 0 and T_min >= 0):
        return None  # let the general path report the bad rows
    span_T = int(T_max - T_min) + 1
    space = (int(x_max - x_min) + 1) * span_T
    if space > MAX_PAIRS_TABLE:
        return None
    x_min_i, T_min_i = int(x_min), int(T_min)

    def keys(sl: slice) -> np.ndarray:
        key = x[sl].astype(np.int64)
        key -= x_min_i
        key *= span_T
        key += T[sl].astype(np.int64)
        key -= T_min_i
        return key

    # 2. occurring pairs
    present = np.zeros(space, dtype=bool)
    for sl in _blocks(n, 1 << 18):
        present[keys(sl)] = True
    pairs = np.flatnonzero(present)
    lookup = np.zeros(space, dtype=np.int32 if pairs.shape[0] < 2**31 else np.int64)
    lookup[pairs] = np.arange(pairs.shape[0], dtype=lookup.dtype)
    x_u = (pairs // span_T + x_min_i).astype(np.float64)
    T_u = (pairs % span_T + T_min_i).astype(np.float64)

    # 3. per-pair terms
    given = nbd.expected_given_alive(model, theta, x_u, T_u, horizon)
    given = np.where(np.isfinite(given) & (given >= 0), given, 0.0)
    if delta > 0 and horizon > 0:
        discounted = nbd.discounted_given_alive(model, theta, x_u, T_u, horizon, delta)
        discounted = np.clip(np.nan_to_num(discounted, nan=0.0, posinf=0.0), 0.0, given)
    else:
        discounted = given
    alpha = theta[1]
    k, pair_part = nbd.alive_pair_terms(model, theta, x_u, T_u)

    # 4. rows
    if out is None:
        out = np.empty((3, n))
    with np.errstate(all="ignore"):
        for sl in _blocks(n):
            xb, rb, Tb = x[sl], t_x[sl], T[sl]
            check_rfm(xb, rb, Tb, index[sl.start:])
            pi = lookup[keys(sl)]
            z = np.log(alpha + rb)
            z *= k[pi]
            np.subtract(pair_part[pi], z, out=z)
            np.exp(z, out=z)
            z += 1.0
            alive = np.reciprocal(z, out=out[0, sl])
            np.multiply(alive, given[pi], out=out[1, sl])
            np.multiply(alive, discounted[pi], out=out[2, sl])
    return out


def compress_whole_numbers(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, index) -> Patterns | None:
    """Validated unique (frequency, recency, T) patterns with counts, or None if not whole numbers."""
    n = x.shape[0]
    if n == 0:
        return None
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    for sl in _blocks(n, 1 << 18):
        xb, rb, Tb = x[sl], t_x[sl], T[sl]
        check_rfm(xb, rb, Tb, index[sl.start:])
        if not (np.array_equal(rb, np.floor(rb)) and np.array_equal(Tb, np.floor(Tb))):
            return None
        for i, col in enumerate((xb, rb, Tb)):
            lo[i] = min(lo[i], col.min())
            hi[i] = max(hi[i], col.max())
    lo_i = lo.astype(np.int64)
    spans = (hi - lo).astype(np.int64) + 1
    if float(spans[0]) * float(spans[1]) * float(spans[2]) >= 2.0**62:
        return None
    keys = np.empty(n, dtype=np.int64)
    for sl in _blocks(n, 1 << 18):
        kb = keys[sl]
        kb[:] = x[sl]
        kb -= lo_i[0]
        kb *= spans[1]
        kb += t_x[sl].astype(np.int64)
        kb -= lo_i[1]
        kb *= spans[2]
        kb += T[sl].astype(np.int64)
        kb -= lo_i[2]
    keys.sort()
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    np.not_equal(keys[1:], keys[:-1], out=starts[1:])
    first = np.flatnonzero(starts)
    del starts
    counts = np.diff(np.append(first, n)).astype(np.float64)
    unique = keys[first]
    del keys
    T_u = unique % spans[2] + lo_i[2]
    rest = unique // spans[2]
    r_u = rest % spans[1] + lo_i[1]
    x_u = rest // spans[1] + lo_i[0]
    patterns = from_weighted(x_u.astype(np.float64), r_u.astype(np.float64), T_u.astype(np.float64), counts)
    return Patterns(**{**patterns.__dict__, "n_rows": n})
