"""What was known before ``as_of``: the one place that enforces the contract's time semantics.

Every feature builder reads the tables through :class:`History`, never directly, so the rules of
contract section 1 live here once:

- history is every row whose event time is ``< as_of 00:00`` (a row at exactly ``as_of`` is future);
- the population is every customer with ``signup_at < as_of``;
- an invoice with ``paid_at >= as_of`` is unpaid (``paid_at`` becomes null), and its
  ``failed_payment_attempts`` are used only when it was paid before ``as_of``;
- a ticket with ``resolved_at >= as_of`` is unresolved and its ``satisfaction`` unknown; a
  satisfaction score counts only for tickets resolved before ``as_of``.

Times are compared as timestamps against literals; day arithmetic uses UTC calendar day numbers
(days since 1970-01-01) and fractional days from whole epoch seconds, which compile the same way on
DuckDB and Spark.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

import pandas as pd

from customer_value.config import TICKET_CHANNELS, Settings
from customer_value.data.tables import EVENT_TIME, KNOWN_AFTER, Tables
from customer_value.features.engine import Sources
from customer_value.units import DAYS_PER_YEAR, as_of_datetime

EVENT_TYPES: tuple[str, ...] = ("login", "feature_use", "email_open", "email_click", "referral", "other")
"""Engagement event kinds; any other free-text ``event_type`` counts as ``other``."""

_EPOCH = dt.date(1970, 1, 1)
SECONDS_PER_DAY = 86400.0


def day_number(value: dt.datetime | dt.date) -> int:
    """UTC calendar day number (days since 1970-01-01) of a Python date or datetime."""
    day = value.date() if isinstance(value, dt.datetime) else value
    return (day - _EPOCH).days


def epoch_seconds(value: dt.datetime) -> float:
    return (value - dt.datetime(1970, 1, 1)).total_seconds()


def day_of(ts: ir.TimestampValue) -> ir.IntegerValue:
    """UTC calendar day number of a timestamp column (integer arithmetic on epoch seconds,
    cheaper than casting to DATE and taking a date difference)."""
    return (seconds_of(ts) // 86400).cast("int32")


def seconds_of(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Whole epoch seconds of a timestamp column (Spark's ``unix_timestamp`` drops fractions,
    so DuckDB's are dropped too: day-level features at one-second resolution, equal on both)."""
    return ts.epoch_seconds().floor().cast("int64")


def days_between(start: ir.TimestampValue, end: ir.TimestampValue) -> ir.FloatingValue:
    """Fractional days from ``start`` to ``end`` (both columns), to the second."""
    return (seconds_of(end) - seconds_of(start)).cast("float64") / SECONDS_PER_DAY


def days_before(moment: dt.datetime, ts: ir.TimestampValue) -> ir.FloatingValue:
    """Fractional days from ``ts`` to the Python datetime ``moment``, to the second."""
    return (ibis.literal(int(epoch_seconds(moment))) - seconds_of(ts)).cast("float64") / SECONDS_PER_DAY


def month_of(ts: ir.TimestampValue) -> ir.IntegerValue:
    """A UTC calendar month key (year * 12 + month)."""
    return ts.year() * 12 + ts.month()


@ibis.udf.agg.builtin(name="arg_min")
def _duckdb_arg_min(arg: float, val: int) -> float:  # type: ignore[empty-body]
    """DuckDB's ``arg_min(arg, val)``."""


def count_if(condition: ir.BooleanValue) -> ir.IntegerValue:
    """Rows where ``condition`` holds (null counts as false), as a plain SUM: on DuckDB many
    ``COUNT(*) FILTER (WHERE ...)`` aggregates over Arrow scans are about twice as slow."""
    return condition.ifelse(1, 0).sum()


def with_margin(transactions: ir.Table, settings: Settings) -> ir.Table:
    """Add ``margin``: ``gross_margin``, or ``amount * margin_rate`` where it is missing."""
    margin = transactions.gross_margin.fill_null(transactions.amount * settings.margin_rate)
    return transactions.mutate(margin=margin)


def ticket_channel(channel: ir.StringValue) -> ir.StringValue:
    """The ticket channel, any value outside the contract's set read as ``other``."""
    known = [c for c in TICKET_CHANNELS if c != "other"]
    return channel.isin(known).ifelse(channel, "other")


RATE_SUFFIX = "_per_year"
"""What :meth:`History.with_rates` appends to a total's name."""


def without_rate_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without the columns :meth:`History.with_rates` added (what the classifiers read)."""
    return frame.drop(columns=[c for c in frame.columns if c.endswith(RATE_SUFFIX)])


RATE_MIN_DAYS = 30.0
"""Rates per year of tenure divide by at least this many days: a week-old customer's first ticket
is not read as 52 a year."""


@dataclass(frozen=True)
class History:
    """The tables restricted to what was known before ``as_of`` (see the module docstring)."""

    as_of: dt.datetime
    day: int
    """``as_of``'s day number; the last day of history is ``day - 1``."""
    customers: ir.Table
    """The population: customers with ``signup_at < as_of``."""
    transactions: ir.Table
    """Transactions before ``as_of`` with ``margin`` and the UTC ``day`` number."""
    events: ir.Table
    """Engagement events before ``as_of`` with the UTC ``day`` number."""
    invoices: ir.Table
    """Invoices issued before ``as_of``; ``paid_at`` and ``failed_payment_attempts`` masked."""
    tickets: ir.Table
    """Tickets opened before ``as_of``; ``resolved_at`` and ``satisfaction`` masked; ``channel``
    normalised to the contract's four."""
    backend_name: str = "duckdb"

    def arg_min(self, value: ir.Value, key: ir.Value, where: ir.BooleanValue | None = None) -> ir.Value:
        """``value`` at the row with the smallest ``key`` (keys unique within a group).

        Ibis compiles ``argmin`` to an ordered ``FIRST(... ORDER BY ...)`` on DuckDB, which sorts
        every group; DuckDB's own ``arg_min`` is a plain hash aggregate, so it is used there."""
        if self.backend_name == "duckdb":
            return _duckdb_arg_min(value, key, where=where)
        return value.argmin(key, where=where)

    @classmethod
    def of(cls, sources: Sources, as_of: dt.date | dt.datetime | str, settings: Settings) -> "History":
        moment = as_of_datetime(as_of)
        cut = ibis.timestamp(moment)
        known = {name: known_before(getattr(sources, name), name, cut) for name in EVENT_TIME}
        tx = known["transactions"]
        tx = with_margin(tx, settings).mutate(day=day_of(tx.occurred_at))
        ev = known["engagement_events"]
        tk = known["support_tickets"]
        return cls(
            backend_name=sources.backend.name,
            as_of=moment,
            day=day_number(moment),
            customers=known["customers"],
            transactions=tx,
            events=ev.mutate(day=day_of(ev.occurred_at)),
            invoices=known["invoices"],
            tickets=tk.mutate(channel=ticket_channel(tk.channel)),
        )

    def population(self) -> ir.Table:
        """One column, ``customer_id``, one row per scored customer."""
        return self.customers.select("customer_id")

    def complete(self, aggregates: ir.Table, fill: dict[str, object]) -> ir.Table:
        """``aggregates`` (keyed by ``customer_id``) for every customer of the population, with
        ``fill`` replacing the nulls of customers without rows (counts and sums become 0)."""
        return complete(self.population(), aggregates, fill)

    def with_rates(self, table: ir.Table, columns: tuple[str, ...]) -> ir.Table:
        """``table`` (one row per customer of the population) followed by ``<column>_per_year`` for
        each of ``columns``: its total to date over the customer's tenure in years (at least
        :data:`RATE_MIN_DAYS`).

        Why: a tree cannot divide, so a total to date means something else at every tenure, and
        beyond the oldest tenure it was trained on a tree carries its last leaf on. A model trained
        a horizon before its date has never seen the oldest customers it scores: on worlds that
        started 2.5 years earlier, the cost model trained on totals alone over-forecast those over
        two years old by 10–20%, with these rates by 3% at most (``benchmarks/tenure.py``)."""
        c = self.customers
        tenure = c.select("customer_id", rate_years_=ibis.greatest(days_before(self.as_of, c.signup_at),
                                                                   RATE_MIN_DAYS) / DAYS_PER_YEAR)
        j = table.inner_join(tenure, "customer_id")
        return j.select(*[j[name] for name in table.columns],
                        **{f"{name}{RATE_SUFFIX}": j[name].cast("float64") / j.rate_years_ for name in columns})


def complete(population: ir.Table, aggregates: ir.Table, fill: dict[str, object]) -> ir.Table:
    """Left-join ``aggregates`` onto ``population`` by ``customer_id`` and fill the given nulls."""
    joined = population.left_join(aggregates, "customer_id")
    columns = {
        c: (joined[c].fill_null(fill[c]) if c in fill else joined[c]) for c in aggregates.columns if c != "customer_id"
    }
    return joined.select(joined.customer_id, **columns)


# ---------------------------------------------------------------------------------------------
# the masking rule, applied by the engines (Ibis for features and targets, pandas for the cut
# tables a training run starts from); what is masked is declared once in data.tables
# ---------------------------------------------------------------------------------------------


def known_before(table: ir.Table, name: str, cut: ir.TimestampScalar) -> ir.Table:
    """``table``'s rows timed before ``cut``, later facts (``KNOWN_AFTER``) set to null."""
    rows = table.filter(table[EVENT_TIME[name]] < cut)
    if name not in KNOWN_AFTER:
        return rows
    moment, facts = KNOWN_AFTER[name]
    happened = rows[moment].notnull() & (rows[moment] < cut)
    return rows.mutate(**{
        column: happened.ifelse(rows[column], ibis.null(rows[column].type())) for column in (moment, *facts)
    })


def tables_before(tables: Tables, as_of: dt.date | dt.datetime | str) -> Tables:
    """The tables as known just before ``as_of`` 00:00 UTC (the same rule as :class:`History`):
    later rows dropped, later ``paid_at`` / ``resolved_at`` and the facts that come with them null."""
    cut = pd.Timestamp(as_of_datetime(as_of))
    frames = {}
    for name, frame in tables.items():
        rows = frame.loc[frame[EVENT_TIME[name]] < cut]
        if name in KNOWN_AFTER:
            moment, facts = KNOWN_AFTER[name]
            unknown = ~(rows[moment].notna() & (rows[moment] < cut))
            rows = rows.assign(**{c: rows[c].mask(unknown) for c in (moment, *facts) if c in rows})
        frames[name] = rows
    return Tables(**frames)
