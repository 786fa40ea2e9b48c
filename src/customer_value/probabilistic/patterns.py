"""Pattern compression for the probabilistic models.

Customers with the same ``(frequency, recency, T)`` have the same likelihood and the same
predictions, so the fits run over the unique patterns with a count per pattern, and scoring
evaluates each expensive term once per unique pattern and broadcasts it back to the rows.

Everything here is sort- or table-based and O(n) or O(n log n) in numpy; nothing calls
``np.unique`` on large arrays (on numpy 2.4 it hashes and is an order of magnitude slower than
sorting for ten million int64 keys).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A dense lookup table is used to factorise integer-valued columns whose range is at most this.
_DENSE_RANGE = 1 << 24


def _is_integer_valued(values: np.ndarray) -> bool:
    if values.dtype.kind in "iub":
        return True
    return bool(np.array_equal(values, np.floor(values)))


def factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique values of a 1-d array and each element's code (index into them).

    Integer-valued data with a small range (counts, whole days) take a dense O(n) table;
    anything else is sorted.
    """
    values = np.asarray(values)
    n = values.shape[0]
    if n == 0:
        return values.astype(np.float64), np.zeros(0, dtype=np.int64)
    vmin = values.min()
    vmax = values.max()
    if _is_integer_valued(values) and (vmax - vmin) < _DENSE_RANGE:
        offset = (values - vmin).astype(np.int64)
        present = np.zeros(int(vmax - vmin) + 1, dtype=bool)
        present[offset] = True
        uniques = np.flatnonzero(present)
        lookup = np.cumsum(present, dtype=np.int64) - 1
        return (uniques + vmin).astype(np.float64), lookup[offset]
    order = np.argsort(values)
    ordered = values[order]
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    codes = np.empty(n, dtype=np.int64)
    codes[order] = np.cumsum(starts) - 1
    return ordered[starts].astype(np.float64), codes


def unique_keys(
    keys: np.ndarray, *, return_inverse: bool = False, key_space: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Unique int64 keys, their counts and (optionally) each row's index into them.

    ``key_space`` (an exclusive upper bound of the keys) lets small key spaces use a dense table.
    """
    n = keys.shape[0]
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, (empty if return_inverse else None)
    if key_space is not None and key_space <= max(4 * n, 1 << 16) and key_space <= _DENSE_RANGE:
        counts_dense = np.bincount(keys, minlength=key_space)
        uniques = np.flatnonzero(counts_dense)
        inverse = None
        if return_inverse:
            lookup = np.cumsum(counts_dense > 0, dtype=np.int64) - 1
            inverse = lookup[keys]
        return uniques.astype(np.int64), counts_dense[uniques], inverse
    if return_inverse:
        order = np.argsort(keys)
        ordered = keys[order]
    else:
        order = None
        ordered = np.sort(keys)
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    start_idx = np.flatnonzero(starts)
    counts = np.diff(np.append(start_idx, n))
    uniques = ordered[start_idx]
    inverse = None
    if return_inverse:
        inverse = np.empty(n, dtype=np.int64)
        inverse[order] = np.cumsum(starts) - 1
    return uniques, counts, inverse


@dataclass(frozen=True)
class Patterns:
    """Unique (frequency, recency, T) patterns with their counts.

    ``x``, ``t_x`` and ``T`` hold one value per pattern; ``x_index``/``r_index``/``T_index``
    point each pattern into the sorted unique values ``x_values``/``r_values``/``T_values``, so
    functions of a single column are evaluated once per unique value. ``inverse`` (when asked
    for) maps every input row to its pattern.
    """

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    weights: np.ndarray
    x_values: np.ndarray
    x_index: np.ndarray
    r_values: np.ndarray
    r_index: np.ndarray
    T_values: np.ndarray
    T_index: np.ndarray
    inverse: np.ndarray | None
    n_rows: int

    @property
    def n_patterns(self) -> int:
        return int(self.weights.shape[0])

    def x_weights(self) -> np.ndarray:
        """Total weight per unique frequency value."""
        return np.bincount(self.x_index, weights=self.weights, minlength=self.x_values.shape[0])

    def scaled(self, factor: float) -> "Patterns":
        """The same patterns with recency and T multiplied by ``factor`` (time rescaling)."""
        return Patterns(
            x=self.x,
            t_x=self.t_x * factor,
            T=self.T * factor,
            weights=self.weights,
            x_values=self.x_values,
            x_index=self.x_index,
            r_values=self.r_values * factor,
            r_index=self.r_index,
            T_values=self.T_values * factor,
            T_index=self.T_index,
            inverse=self.inverse,
            n_rows=self.n_rows,
        )


def _pack(codes: list[np.ndarray], sizes: list[int]) -> tuple[np.ndarray, int] | None:
    """Mixed-radix int64 key of several code columns, or None if it would overflow."""
    space = 1
    for size in sizes:
        space *= max(size, 1)
    if space >= (1 << 62):
        return None
    key = codes[0].astype(np.int64, copy=True)
    for code, size in zip(codes[1:], sizes[1:]):
        key *= size
        key += code
    return key, space


def _group(codes: list[np.ndarray], sizes: list[int], return_inverse: bool):
    """Unique rows of several code columns: (first-column codes..., counts, inverse)."""
    packed = _pack(codes, sizes)
    if packed is not None:
        key, space = packed
        uniques, counts, inverse = unique_keys(key, return_inverse=return_inverse, key_space=space)
        out = []
        rest = uniques
        for size in reversed(sizes[1:]):
            out.append(rest % size)
            rest = rest // size
        out.append(rest)
        return list(reversed(out)), counts, inverse
    # Key space too large for one int64: sort lexicographically.
    order = np.lexsort(tuple(reversed(codes)))
    n = codes[0].shape[0]
    starts = np.zeros(n, dtype=bool)
    if n:
        starts[0] = True
    for code in codes:
        ordered = code[order]
        starts[1:] |= ordered[1:] != ordered[:-1]
    start_idx = np.flatnonzero(starts)
    counts = np.diff(np.append(start_idx, n))
    inverse = None
    if return_inverse:
        inverse = np.empty(n, dtype=np.int64)
        inverse[order] = np.cumsum(starts) - 1
    return [code[order][start_idx] for code in codes], counts, inverse


def compress(
    frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, *, return_inverse: bool = False
) -> Patterns:
    """Compress RFM rows into unique (frequency, recency, T) patterns with counts."""
    x_values, x_codes = factorize(frequency)
    r_values, r_codes = factorize(recency)
    T_values, T_codes = factorize(T)
    sizes = [x_values.shape[0], r_values.shape[0], T_values.shape[0]]
    (xi, ri, ti), counts, inverse = _group([x_codes, r_codes, T_codes], sizes, return_inverse)
    return Patterns(
        x=x_values[xi],
        t_x=r_values[ri],
        T=T_values[ti],
        weights=counts.astype(np.float64),
        x_values=x_values,
        x_index=xi,
        r_values=r_values,
        r_index=ri,
        T_values=T_values,
        T_index=ti,
        inverse=inverse,
        n_rows=int(frequency.shape[0]),
    )


def from_weighted(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, weights: np.ndarray) -> Patterns:
    """Patterns from rows that are already unique (or weighted), keeping them as they are."""
    x_values, xi = factorize(frequency)
    r_values, ri = factorize(recency)
    T_values, ti = factorize(T)
    return Patterns(
        x=np.asarray(frequency, dtype=np.float64),
        t_x=np.asarray(recency, dtype=np.float64),
        T=np.asarray(T, dtype=np.float64),
        weights=np.asarray(weights, dtype=np.float64),
        x_values=x_values,
        x_index=xi,
        r_values=r_values,
        r_index=ri,
        T_values=T_values,
        T_index=ti,
        inverse=None,
        n_rows=int(frequency.shape[0]),
    )


def count_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique (a, b) pairs and how many rows have each: returns (a_unique, b_unique, counts)."""
    a_values, a_codes = factorize(a)
    b_values, b_codes = factorize(b)
    (ai, bi), counts, _ = _group([a_codes, b_codes], [a_values.shape[0], b_values.shape[0]], False)
    return a_values[ai], b_values[bi], counts


def group_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique (a, b) pairs and each row's pair index: returns (a_unique, b_unique, inverse)."""
    a_values, a_codes = factorize(a)
    b_values, b_codes = factorize(b)
    (ai, bi), _, inverse = _group([a_codes, b_codes], [a_values.shape[0], b_values.shape[0]], True)
    return a_values[ai], b_values[bi], inverse
