"""The RFM summary in one linear pass when transactions arrive sorted by customer and time.

Why a second path: the Ibis summary (:mod:`.rfm`) merges purchases per customer-day with a hash
aggregation whose groups are almost all distinct (most customer-days hold one transaction); on
millions of rows that grouping is most of its cost. Exports are usually written per customer in
time order (the simulator's are), and on such input every group — customer and customer-day — is
a contiguous run of rows, so run boundaries and ``reduceat`` sums replace hashing entirely. The
rows are cut into one slice per core at customer boundaries and the slices run in threads (numpy
and Arrow release the GIL), like DuckDB's own parallelism.

Same conventions and results as :func:`customer_value.features.rfm.rfm_table` (see there), checked
against it in the tests. :func:`sorted_rfm_summary` returns ``None`` when the input is not sorted
by ``(customer_id, occurred_at)``, and the caller falls back to the Ibis expression.
"""

from __future__ import annotations

import datetime as dt
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from customer_value.units import unit_days
from customer_value.config import Settings
from customer_value.data.tables import Tables
from customer_value.features.rfm import SUMMARY_COLUMNS

_DAY_US = 86_400 * 1_000_000


def _microseconds(values: pd.Series) -> np.ndarray:
    return values.to_numpy(dtype="datetime64[us]").view(np.int64)


def _is_ascending(values: pa.Array | pa.ChunkedArray) -> bool:
    n = len(values)
    return n < 2 or pc.all(pc.greater_equal(values.slice(1), values.slice(0, n - 1))).as_py()


def _runs(ids: pa.Array | pa.ChunkedArray, times: np.ndarray) -> tuple[np.ndarray, pa.Array] | None:
    """Where each id's run of rows starts, and the ids in run order; ``None`` unless the rows
    are sorted by ``(id, time)`` (ids ascending, times non-decreasing within an id)."""
    n = len(times)
    new = np.ones(n, dtype=bool)
    if n > 1:
        new[1:] = pc.not_equal(ids.slice(1), ids.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(new)
    run_ids = ids.take(pa.array(starts))
    if not _is_ascending(run_ids):  # ids ascend iff they do from one run to the next
        return None
    if n > 1 and np.any((times[1:] < times[:-1]) & ~new[1:]):
        return None
    return starts, run_ids


def _first_and_last(rows: np.ndarray, starts: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For runs starting at ``starts`` (over ``n`` rows) and selected ``rows`` (ascending): the
    runs holding any selected row, and their first and last selected row."""
    ends = np.r_[starts[1:], n]
    first, last = np.searchsorted(rows, starts), np.searchsorted(rows, ends) - 1
    holding = np.flatnonzero(first <= last)
    return holding, rows[first[holding]], rows[last[holding]]


def _sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sum of each contiguous run of ``values`` starting at ``starts`` (ascending, first at 0)."""
    return np.add.reduceat(values, starts) if len(starts) else values[:0]


@dataclass(frozen=True)
class _Slice:
    """Per-customer results of one slice of rows (customers in row order)."""

    ids: pa.Array | pa.ChunkedArray
    purchase_days: np.ndarray
    first_at: np.ndarray  # first purchase time (µs), NaT sentinel when none
    last_at: np.ndarray
    first_day_net: np.ndarray
    revenue: np.ndarray
    margin: np.ndarray


_NAT = np.iinfo(np.int64).min


def _summarise(ids: pa.Array | pa.ChunkedArray, times: np.ndarray, amount: np.ndarray, margin: np.ndarray,
               cut: int) -> _Slice | None:
    """The per-customer sums of rows that start at a customer boundary; ``None`` if not sorted."""
    runs = _runs(ids, times)
    if runs is None:
        return None
    starts, run_ids = runs
    keep = times < cut
    if not keep.all():  # within a customer the kept rows are a prefix: keep the runs that remain
        lengths = np.add.reduceat(keep, starts, dtype=np.int64)
        has_rows = lengths > 0
        starts = np.cumsum(lengths[has_rows]) - lengths[has_rows]
        run_ids = run_ids.filter(pa.array(has_rows))
        times, amount, margin = times[keep], amount[keep], margin[keep]
    n_runs = len(starts)
    new_day = np.zeros(len(times), dtype=bool)
    new_day[starts] = True

    # customer-days are runs too: purchase days counted, refunds kept in the day's net
    day = times // _DAY_US
    new_day[1:] |= day[1:] != day[:-1]
    day_start = np.flatnonzero(new_day)
    bought = amount > 0
    day_bought = np.logical_or.reduceat(bought, day_start) if len(day_start) else bought[:0]
    purchase_days = np.add.reduceat(day_bought, np.searchsorted(day_start, starts), dtype=np.int64) if n_runs else starts

    # rows are in time order: the first / last purchase row of a run gives the first / last
    # purchase time and day; the first purchase day's net is the sum over that day's rows
    first_at = np.full(n_runs, _NAT, dtype=np.int64)
    last_at = first_at.copy()
    first_day_net = np.zeros(n_runs)
    with_purchase, first_row, last_row = _first_and_last(np.flatnonzero(bought), starts, len(times))
    first_at[with_purchase] = times[first_row]
    last_at[with_purchase] = times[last_row]
    first_day_net[with_purchase] = _sums(amount, day_start)[np.searchsorted(day_start, first_row, side="right") - 1]
    return _Slice(run_ids, purchase_days, first_at, last_at, first_day_net, _sums(amount, starts), _sums(margin, starts))


MIN_ROWS_PER_SLICE = 500_000
"""Below this many rows per slice, threads cost more than they save."""


def _slice_count(rows: int) -> int:
    return max(1, min(os.cpu_count() or 1, rows // MIN_ROWS_PER_SLICE))


def _slice_bounds(ids: pa.Array | pa.ChunkedArray, parts: int) -> list[int]:
    """Row positions cutting ``ids`` into about ``parts`` slices, each cut where the id changes."""
    n, bounds = len(ids), [0]
    if n == 0:
        return [0, 0]
    for k in range(1, parts):
        at = max(bounds[-1] + 1, n * k // parts)
        while at < n:
            window = ids.slice(at - 1, 4097)
            change = np.flatnonzero(pc.not_equal(window.slice(1), window.slice(0, len(window) - 1))
                                    .to_numpy(zero_copy_only=False))
            if len(change):
                bounds.append(at + int(change[0]))
                break
            at += 4096
    return [b for b in bounds if b < n] + [n]


def sorted_rfm_summary(tables: Tables, as_of: dt.datetime, settings: Settings) -> pd.DataFrame | None:
    """The summary of :func:`customer_value.features.rfm_summary` (indexed by ``customer_id``,
    ``SUMMARY_COLUMNS``), or ``None`` when the transactions are not sorted by customer and time."""
    tx = tables.transactions
    times = _microseconds(tx["occurred_at"])
    ids = pa.array(tx["customer_id"])
    amount = tx["amount"].to_numpy(dtype=float)
    margin = tx["gross_margin"].to_numpy(dtype=float)
    missing = np.isnan(margin)
    if missing.any():
        margin = np.where(missing, amount * settings.margin_rate, margin)
    cut = int(np.datetime64(as_of, "us").astype(np.int64))

    bounds = _slice_bounds(ids, _slice_count(len(times)))
    spans = list(zip(bounds[:-1], bounds[1:]))
    with ThreadPoolExecutor(max_workers=len(spans)) as pool:
        slices = list(pool.map(lambda span: _summarise(ids.slice(span[0], span[1] - span[0]), times[span[0]:span[1]],
                                                       amount[span[0]:span[1]], margin[span[0]:span[1]], cut), spans))
    if any(part is None for part in slices):
        return None
    edges = [(a.ids[-1], b.ids[0]) for a, b in zip(slices, slices[1:]) if len(a.ids) and len(b.ids)]
    if not all(pc.less(left, right).as_py() for left, right in edges):  # each customer in one slice, ascending
        return None
    run_ids = pa.chunked_array([c for part in slices for c in _chunks(part.ids)], type=ids.type)

    def joined(field: str) -> np.ndarray:
        return np.concatenate([getattr(part, field) for part in slices]) if slices else np.zeros(0)

    purchase_days, first_at, last_at = joined("purchase_days"), joined("first_at"), joined("last_at")
    first_day_net, revenue, margin_sum = joined("first_day_net"), joined("revenue"), joined("margin")
    n_runs = len(run_ids)
    first_day = np.where(first_at != _NAT, first_at // _DAY_US, -1)
    last_day = np.where(last_at != _NAT, last_at // _DAY_US, -1)

    # the population (signup before as_of), ordered by customer_id like the Ibis output
    customers = tables.customers
    signup = _microseconds(customers["signup_at"])
    in_population = signup < cut
    pop_ids = pa.array(customers["customer_id"]).filter(pa.array(in_population))
    signup_day = signup[in_population] // _DAY_US
    if not _is_ascending(pop_ids):
        order = pc.sort_indices(pop_ids).to_numpy()
        pop_ids, signup_day = pop_ids.take(pa.array(order)), signup_day[order]
    # each slice's customers lie in one range of the sorted population: look them up in parallel
    parts = [part for part in slices if len(part.ids)]
    cuts = [0] + [int(pc.sum(pc.less(pop_ids, part.ids[0])).as_py() or 0) for part in parts[1:]] + [len(pop_ids)]
    offsets = np.cumsum([0] + [len(part.ids) for part in parts])

    def look_up(k: int) -> np.ndarray:
        found = pc.index_in(pop_ids.slice(cuts[k], cuts[k + 1] - cuts[k]), value_set=parts[k].ids)
        return pc.add(found, int(offsets[k])).fill_null(-1).to_numpy()

    at = np.full(len(pop_ids), -1, dtype=np.int64)
    if parts:
        with ThreadPoolExecutor(max_workers=len(parts)) as pool:
            at = np.concatenate(list(pool.map(look_up, range(len(parts)))))
    has_rows = at >= 0
    at = np.where(has_rows, at, 0)

    def gather(values: np.ndarray, missing: float | int) -> np.ndarray:
        return np.where(has_rows, values[at], missing) if n_runs else np.full(len(at), missing)

    unit = unit_days(settings.time_unit)
    days = gather(purchase_days, 0).astype(np.int64)
    first_d, last_d = gather(first_day, -1), gather(last_day, -1)
    has_purchase = first_d >= 0
    frequency = np.clip(days - 1, 0, None)
    revenue_p, first_net = gather(revenue, 0.0), gather(first_day_net, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        monetary = np.where(frequency > 0, np.clip((revenue_p - first_net) / frequency, 0.0, None), 0.0)
    origin = np.where(has_purchase, first_d, signup_day)
    as_of_day = int(cut // _DAY_US)
    out = pd.DataFrame(
        {
            "frequency": frequency,
            "recency": np.where(has_purchase, last_d - first_d, 0).astype(float) / unit,
            "T": (as_of_day - 1 - origin).astype(float) / unit,
            "monetary_value": monetary,
            "first_purchase_at": gather(first_at, _NAT).view("datetime64[us]"),
            "last_purchase_at": gather(last_at, _NAT).view("datetime64[us]"),
            "revenue": revenue_p,
            "margin": gather(margin_sum, 0.0),
        },
        index=pd.Index(pop_ids.to_pandas(), name="customer_id"),
    )
    return out[list(SUMMARY_COLUMNS)]


def _chunks(values: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return values.chunks if isinstance(values, pa.ChunkedArray) else [values]
