"""The RFM summary in one linear pass when transactions arrive sorted by customer and time.

Why a second path: the Ibis summary (:mod:`.rfm`) merges purchases per customer-day with a hash
aggregation whose groups are almost all distinct (most customer-days hold one transaction); on
millions of rows that grouping is most of its cost. Exports are usually written per customer in
time order (the simulator's are), and on such input every group — customer and customer-day — is
a contiguous run of rows, so run boundaries and ``reduceat`` sums replace hashing entirely.

Same conventions and results as :func:`customer_value.features.rfm.rfm_table` (see there), checked
against it in the tests. :func:`sorted_rfm_summary` returns ``None`` when the input is not sorted
by ``(customer_id, occurred_at)``, and the caller falls back to the Ibis expression.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from customer_value.config import Settings
from customer_value.data.tables import Tables
from customer_value.features.rfm import SUMMARY_COLUMNS

_DAY_US = 86_400 * 1_000_000


def _microseconds(values: pd.Series) -> np.ndarray:
    return values.to_numpy(dtype="datetime64[us]").view(np.int64)


def _run_starts(ids: pa.Array | pa.ChunkedArray, times: np.ndarray) -> np.ndarray | None:
    """Boolean mask of the rows that start a new id, or ``None`` unless rows are sorted by
    ``(id, time)`` (ids ascending, times non-decreasing within an id)."""
    new = np.ones(len(times), dtype=bool)
    if len(times) < 2:
        return new
    head, tail = ids.slice(0, len(times) - 1), ids.slice(1)
    if not pc.all(pc.greater_equal(tail, head)).as_py():
        return None
    new[1:] = pc.not_equal(tail, head).to_numpy(zero_copy_only=False)
    if np.any((times[1:] < times[:-1]) & ~new[1:]):
        return None
    return new


def _first_and_last(groups: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Of the selected ``rows`` (ascending, with their ``groups``), the first and last per group."""
    g = groups[rows]
    boundary = np.flatnonzero(g[1:] != g[:-1])
    first = rows[np.r_[0, boundary + 1]] if len(rows) else rows
    last = rows[np.r_[boundary, len(rows) - 1]] if len(rows) else rows
    return first, last


def sorted_rfm_summary(tables: Tables, as_of: dt.datetime, settings: Settings) -> pd.DataFrame | None:
    """The summary of :func:`customer_value.features.rfm_summary` (indexed by ``customer_id``,
    ``SUMMARY_COLUMNS``), or ``None`` when the transactions are not sorted by customer and time."""
    tx = tables.transactions
    times = _microseconds(tx["occurred_at"])
    ids = pa.array(tx["customer_id"])
    new_customer = _run_starts(ids, times)
    if new_customer is None:
        return None

    cut = np.datetime64(as_of, "us").astype(np.int64)
    keep = times < cut
    amount = tx["amount"].to_numpy(dtype=float)
    margin = tx["gross_margin"].to_numpy(dtype=float)
    margin = np.where(np.isnan(margin), amount * settings.margin_rate, margin)
    if not keep.all():  # within a customer, the kept rows are a prefix: run starts move to the next kept row
        run = np.cumsum(new_customer)
        ids = ids.filter(pa.array(keep))
        times, amount, margin, run = times[keep], amount[keep], margin[keep], run[keep]
        new_customer = np.r_[True, run[1:] != run[:-1]] if len(run) else run.astype(bool)

    group = np.cumsum(new_customer) - 1
    n_groups = int(group[-1]) + 1 if len(group) else 0
    day = times // _DAY_US
    new_day = new_customer.copy()
    new_day[1:] |= day[1:] != day[:-1]
    day_start = np.flatnonzero(new_day)
    bought = amount > 0
    day_net = np.add.reduceat(amount, day_start) if len(day_start) else amount[:0]
    day_bought = np.logical_or.reduceat(bought, day_start) if len(day_start) else bought[:0]
    day_group = group[day_start]

    purchase_days = np.bincount(day_group, weights=day_bought, minlength=n_groups)
    first_day = np.full(n_groups, -1, dtype=np.int64)
    last_day = np.full(n_groups, -1, dtype=np.int64)
    first_day_net = np.zeros(n_groups)
    first, last = _first_and_last(day_group, np.flatnonzero(day_bought))
    first_day[day_group[first]] = day[day_start[first]]
    last_day[day_group[last]] = day[day_start[last]]
    first_day_net[day_group[first]] = day_net[first]
    first_at = np.full(n_groups, np.iinfo(np.int64).min, dtype=np.int64)  # NaT
    last_at = first_at.copy()
    first_row, last_row = _first_and_last(group, np.flatnonzero(bought))
    first_at[group[first_row]] = times[first_row]
    last_at[group[last_row]] = times[last_row]
    revenue = np.bincount(group, weights=amount, minlength=n_groups)
    margin_sum = np.bincount(group, weights=margin, minlength=n_groups)

    # the population (signup before as_of), ordered by customer_id like the Ibis output
    customers = tables.customers
    signup = _microseconds(customers["signup_at"])
    in_population = signup < cut
    pop_ids = pa.array(customers["customer_id"]).filter(pa.array(in_population))
    signup_day = signup[in_population] // _DAY_US
    order = pc.sort_indices(pop_ids).to_numpy()
    pop_ids, signup_day = pop_ids.take(pa.array(order)), signup_day[order]
    position = pc.index_in(pop_ids, value_set=ids.take(pa.array(np.flatnonzero(new_customer))))
    has_rows = position.is_valid().to_numpy(zero_copy_only=False)
    at = position.fill_null(0).to_numpy()

    def gather(values: np.ndarray, missing: float | int) -> np.ndarray:
        return np.where(has_rows, values[at] if n_groups else missing, missing)

    unit = 7.0 if settings.time_unit == "weeks" else 1.0
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
            "first_purchase_at": gather(first_at, np.iinfo(np.int64).min).view("datetime64[us]"),
            "last_purchase_at": gather(last_at, np.iinfo(np.int64).min).view("datetime64[us]"),
            "revenue": revenue_p,
            "margin": gather(margin_sum, 0.0),
        },
        index=pd.Index(pop_ids.to_pandas(), name="customer_id"),
    )
    return out[list(SUMMARY_COLUMNS)]
