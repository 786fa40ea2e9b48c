"""Activity-based cost-to-serve (contract sections 3 and 8), realised over a window ``[start, end)``.

Shared by the targets (the future window ``[as_of, as_of + H)``) and the historical cost
features (the trailing window ``[as_of − H, as_of)``).

**Activities.** Each term of the cost formula is one activity (contract section 8 names them),
priced from one volume column::

    activity        cost column             volume column            rate
    support_<ch>    cost_support_<ch>       support_minutes_<ch>     minute_rate[ch]   (ch: email, chat, phone, other)
    escalations     cost_escalations        escalations              escalation_cost
    orders          cost_orders             orders                   order_cost
    payment_fees    cost_payment_fees       order_amount             payment_fee_rate
    invoices        cost_invoices           invoices                 invoice_cost
    late_payments   cost_late_payments      late_invoices            late_payment_cost
    pool_<p>        cost_pool_<p>           pool_units_<p>           see "Indirect pools" below

Volumes: ``support_minutes_<ch>`` Σ handle_minutes of tickets opened in the window on that
channel (any channel outside the contract's four is ``other``); ``escalations`` the count of those
tickets escalated; ``orders`` the count of transactions with ``amount > 0`` (the same count as
the targets' ``transactions``) and ``order_amount`` their Σ amount (refunds, ``amount <= 0``, are
not orders: no order cost, no payment fee); ``invoices`` the count issued in the window and
``late_invoices`` those of them late; ``pool_units_<p>`` the customer's units of pool ``p``'s
driver. No volume column starts with ``cost_``: every ``cost_*`` column is money.

**Components** (kept as before; each is the sum of its activities, to the float)::

    cost_support           = Σ cost_support_<ch> + cost_escalations
    cost_orders_and_fees   = cost_orders + cost_payment_fees
    cost_invoices_and_late = cost_invoices + cost_late_payments
    cost_pool_<p>          (a component and an activity at once)
    cost_to_serve          = the sum of the components

``late`` is judged at the window's end: paid inside the window after ``due_at``, or still
unpaid at the end (``paid_at`` null or ``>= end``) although ``due_at < end``. Both cases are
``due_at < end and (paid_at is null or paid_at > due_at)``, which only looks at ``paid_at``
values before ``end`` in effect, so the rule gives the same answer on data cut at ``end``.

**Indirect pools allocate the pool, never more** (contract section 8). Over ``[start, end)`` a
customer's pool cost is::

    cost_pool_<p> = annual_amount_p × (end − start).days / 365 × units / window_total

where ``units`` is the customer's driver units in the window and ``window_total`` is the sum of
``units`` over *the rows the computation returns*: the population it is given, which is the
scored population (``signup_at < as_of``) for the targets and the historical features alike. So
the pool total over those rows is exactly the pool's amount for the window. Consequences:

- targets as of ``D`` over ``[D, D + H)``: customers who sign up inside the window are not scored,
  so their driver units count neither in a numerator nor in the denominator; the scored
  customers carry the whole window's amount between them;
- historical features as of ``D`` over ``[D − H, D)``: every customer with ``signup_at < D`` is in
  the rows, including those who signed up inside the trailing window, and all their units count;
- when the population's units in the window are 0 (nobody active, no support minute, …) the
  pool allocates nothing for that window: every customer's ``cost_pool_<p>`` is 0;
- for the 365 days before ``as_of`` this is section 3's ``rate_p × units`` with ``rate_p =
  annual_amount_p / (driver volume in those 365 days)`` (:func:`pool_rates`); a per-unit rate
  taken from one year and applied to another window would allocate last year's rate times this
  window's volume, more than the pool in a growing base.

The totals are an aggregate of the same Ibis expression cross-joined back onto it (one row), so
everything runs on DuckDB and Spark alike, and a window uses only rows inside it: targets and
features of a window ending on or before a date need no row at or after that date.

Drivers: ``support_minutes`` (Σ handle_minutes of tickets opened), ``transactions`` (count with
``amount > 0``), ``invoices`` (count issued), ``active_customer_months`` (distinct UTC calendar
months in the window with a transaction or an engagement event).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir

from customer_value.config import POOL_DRIVERS, TICKET_CHANNELS, CostRates, IndirectPool, Settings
from customer_value.features.engine import Sources, execute
from customer_value.features.history import complete, count_if, month_of, ticket_channel, with_margin

COMPONENTS: tuple[str, ...] = ("cost_support", "cost_orders_and_fees", "cost_invoices_and_late")
RATE_LOOKBACK_DAYS = 365
DAYS_PER_YEAR = 365


@dataclass(frozen=True)
class Activity:
    """One term of the cost formula: ``cost_<name>`` = rate × ``volume`` (pools: see the module)."""

    name: str
    """Contract section 8's activity name (``support_email``, …, ``pool_<name>``)."""
    component: str
    """The cost component column it adds up into (a pool is its own component)."""
    volume: str
    """The column of units it is priced from."""

    @property
    def column(self) -> str:
        return f"cost_{self.name}"


DIRECT_ACTIVITIES: tuple[Activity, ...] = (
    *(Activity(f"support_{c}", "cost_support", f"support_minutes_{c}") for c in TICKET_CHANNELS),
    Activity("escalations", "cost_support", "escalations"),
    Activity("orders", "cost_orders_and_fees", "orders"),
    Activity("payment_fees", "cost_orders_and_fees", "order_amount"),
    Activity("invoices", "cost_invoices_and_late", "invoices"),
    Activity("late_payments", "cost_invoices_and_late", "late_invoices"),
)

DRIVER_VOLUME: dict[str, str] = {
    "support_minutes": "support_minutes",
    "transactions": "orders",
    "invoices": "invoices",
    "active_customer_months": "active_customer_months",
}
"""The :func:`window_activity` column holding each pool driver's units."""

VOLUME_TYPES: dict[str, str] = {
    **{f"support_minutes_{c}": "float64" for c in TICKET_CHANNELS},
    "escalations": "int64",
    "orders": "int64",
    "order_amount": "float64",
    "invoices": "int64",
    "late_invoices": "int64",
    "support_minutes": "float64",
    "active_customer_months": "int64",
}
"""The per-customer volumes of :func:`window_activity` (besides revenue and margin)."""


def pool_column(name: str) -> str:
    return f"cost_pool_{name}"


def pool_units_column(name: str) -> str:
    return f"pool_units_{name}"


def rate_of(activity: Activity, costs: CostRates) -> float:
    """The price of one unit of a direct activity's volume under ``costs``."""
    if activity.name.startswith("support_"):
        return float(costs.minute_rate[activity.name.removeprefix("support_")])
    return float({
        "escalations": costs.escalation_cost,
        "orders": costs.order_cost,
        "payment_fees": costs.payment_fee_rate,
        "invoices": costs.invoice_cost,
        "late_payments": costs.late_payment_cost,
    }[activity.name])


def _check_pools(settings: Settings) -> None:
    names = [p.name for p in settings.costs.indirect_pools]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"indirect pool names must be unique, repeated: {dupes}")


def activities(settings: Settings) -> tuple[Activity, ...]:
    """Every activity, in order: the direct ones, then one ``pool_<name>`` per indirect pool."""
    _check_pools(settings)
    pools = (Activity(f"pool_{p.name}", pool_column(p.name), pool_units_column(p.name))
             for p in settings.costs.indirect_pools)
    return (*DIRECT_ACTIVITIES, *pools)


def cost_columns(settings: Settings) -> list[str]:
    """The cost component columns, in order, for ``settings``' pools (without the total)."""
    return [*COMPONENTS, *(pool_column(p.name) for p in settings.costs.indirect_pools)]


def activity_cost_columns(settings: Settings) -> list[str]:
    """``cost_<activity>`` for every activity (pools included), in order; they sum to ``cost_to_serve``."""
    return [a.column for a in activities(settings)]


def volume_columns(settings: Settings) -> list[str]:
    """The activity volume columns, in order (one per activity; ``order_amount`` prices the fees)."""
    return [a.volume for a in activities(settings)]


def forecast_volume_columns(settings: Settings) -> list[str]:
    """The volumes a forecast needs to price every activity: the direct activities' volumes, and
    ``pool_units_<p>`` for a pool driven by ``active_customer_months`` (the other drivers are sums
    of direct volumes, :func:`pool_driver_units`)."""
    pools = [pool_units_column(p.name) for p in settings.costs.indirect_pools if p.driver == "active_customer_months"]
    return [*dict.fromkeys(a.volume for a in DIRECT_ACTIVITIES), *pools]


def pool_driver_units(volumes: Any, pool: IndirectPool) -> Any:
    """A pool's driver units from a frame of :func:`forecast_volume_columns` (or realised volumes)."""
    if pool.driver == "support_minutes":
        return sum(volumes[f"support_minutes_{c}"] for c in TICKET_CHANNELS)
    if pool.driver == "active_customer_months":
        return volumes[pool_units_column(pool.name)]
    return volumes[DRIVER_VOLUME[pool.driver]]


def needs_active_months(settings: Settings) -> bool:
    return any(p.driver == "active_customer_months" for p in settings.costs.indirect_pools)


def window_activity(src: Sources, start: dt.datetime, end: dt.datetime, settings: Settings) -> ir.Table:
    """Per customer with any activity in ``[start, end)``: ``revenue``, ``margin`` and the
    :data:`VOLUME_TYPES` volumes (customers without activity are absent; join onto a population
    and fill with 0). ``active_customer_months`` is counted only when a pool uses it (it is the
    one driver that reads the engagement events), else 0."""
    lo, hi = ibis.timestamp(start), ibis.timestamp(end)

    tx = src.transactions.filter((src.transactions.occurred_at >= lo) & (src.transactions.occurred_at < hi))
    tx = with_margin(tx, settings)
    orders = tx.amount > 0
    tx_agg = tx.group_by("customer_id").aggregate(
        revenue=tx.amount.sum(),
        margin=tx.margin.sum(),
        orders=count_if(orders),
        order_amount=tx.amount.sum(where=orders),
    )

    tk = src.support_tickets.filter((src.support_tickets.opened_at >= lo) & (src.support_tickets.opened_at < hi))
    channel = ticket_channel(tk.channel)
    tk_agg = tk.group_by("customer_id").aggregate(
        **{f"support_minutes_{c}": tk.handle_minutes.sum(where=channel == c) for c in TICKET_CHANNELS},
        escalations=count_if(tk.escalated),
        support_minutes=tk.handle_minutes.sum(),
    )

    inv = src.invoices.filter((src.invoices.issued_at >= lo) & (src.invoices.issued_at < hi))
    late = (inv.due_at < hi) & (inv.paid_at.isnull() | (inv.paid_at > inv.due_at))
    inv_agg = inv.group_by("customer_id").aggregate(invoices=inv.count(), late_invoices=count_if(late))

    aggregates = [tx_agg, tk_agg, inv_agg]
    if needs_active_months(settings):
        ev = src.engagement_events.filter(
            (src.engagement_events.occurred_at >= lo) & (src.engagement_events.occurred_at < hi)
        )
        months = ibis.union(
            tx.select("customer_id", month=month_of(tx.occurred_at)),
            ev.select("customer_id", month=month_of(ev.occurred_at)),
            distinct=True,
        )
        aggregates.append(months.group_by("customer_id").aggregate(active_customer_months=months.count()))

    # stack the per-customer aggregates (each widened to the full column set) and add them up
    parts = {"revenue": "float64", "margin": "float64", **VOLUME_TYPES}

    def widen(t: ir.Table) -> ir.Table:
        return t.select(
            "customer_id",
            **{c: (t[c].fill_null(0) if c in t.columns else ibis.literal(0)).cast(d) for c, d in parts.items()},
        )

    stacked = ibis.union(*[widen(a) for a in aggregates])
    return stacked.group_by("customer_id").aggregate(**{c: stacked[c].sum() for c in parts})


ACTIVITY_FILL: dict[str, object] = {
    "revenue": 0.0,
    "margin": 0.0,
    **{c: (0.0 if d == "float64" else 0) for c, d in VOLUME_TYPES.items()},
}


def population_activity(
    src: Sources, population: ir.Table, start: dt.datetime, end: dt.datetime, settings: Settings
) -> ir.Table:
    """:func:`window_activity` for every customer of ``population`` (zeros for the inactive)."""
    return complete(population, window_activity(src, start, end, settings), ACTIVITY_FILL)


def _window_years(start: dt.datetime, end: dt.datetime) -> float:
    return (end - start) / dt.timedelta(days=DAYS_PER_YEAR)


def _with_driver_totals(t: ir.Table, settings: Settings) -> tuple[ir.Table, dict[str, ir.FloatingValue]]:
    """``t`` cross-joined with its own driver totals (one row): the table and, per driver used by a
    pool, the total column (0 for an empty sum)."""
    drivers = [d for d in POOL_DRIVERS if any(p.driver == d for p in settings.costs.indirect_pools)]
    if not drivers:
        return t, {}
    totals = t.aggregate(**{f"_total_{d}": t[DRIVER_VOLUME[d]].cast("float64").sum() for d in drivers})
    joined = t.cross_join(totals)
    return joined, {d: joined[f"_total_{d}"].fill_null(0.0) for d in drivers}


def window_costs(
    activity: ir.Table, settings: Settings, start: dt.datetime, end: dt.datetime
) -> tuple[ir.Table, dict[str, ir.Value]]:
    """The cost expressions over ``activity`` (:func:`population_activity`'s columns, one row per
    customer of the population the pools are spread over, nulls filled) for ``[start, end)``.

    Returns the table the expressions refer to (``activity`` with the pool totals joined on) and
    ``{column: expression}``: the :func:`cost_columns` components, ``cost_to_serve``, the
    :func:`activity_cost_columns` not already among the components (the direct activities), then
    the :func:`volume_columns`, ``pool_units_<p>`` included."""
    acts = activities(settings)
    t, totals = _with_driver_totals(activity, settings)
    years = _window_years(start, end)

    money: dict[str, ir.Value] = {}
    units: dict[str, ir.Value] = {}
    for a in DIRECT_ACTIVITIES:
        money[a.column] = t[a.volume].cast("float64") * rate_of(a, settings.costs)
        units[a.volume] = t[a.volume].cast(VOLUME_TYPES[a.volume])
    for pool in settings.costs.indirect_pools:
        driver = DRIVER_VOLUME[pool.driver]
        # units / window total × the window's amount; a zero total allocates nothing (the
        # division by a null total gives null, filled with 0: no division by zero on any backend)
        share = t[driver].cast("float64") / totals[pool.driver].nullif(0.0)
        money[pool_column(pool.name)] = (share * (float(pool.annual_amount) * years)).fill_null(0.0)
        units[pool_units_column(pool.name)] = t[driver].cast(VOLUME_TYPES[driver])

    components: dict[str, ir.Value] = {}
    for a in acts:
        previous = components.get(a.component)
        components[a.component] = money[a.column] if previous is None else previous + money[a.column]
    total = ibis.literal(0.0)
    for value in components.values():
        total = total + value
    columns: dict[str, ir.Value] = {c: components[c] for c in cost_columns(settings)}
    columns["cost_to_serve"] = total
    columns.update({a.column: money[a.column] for a in acts if a.column not in columns})
    columns.update(units)
    return t, columns


def pool_rates(src: Sources, as_of: dt.datetime, settings: Settings) -> dict[str, float]:
    """Section 3's ``rate_p`` per pool name: annual amount / the scored population's
    (``signup_at < as_of``) driver volume in the 365 days before ``as_of`` (0 when that volume is
    0). Over exactly that window the realised allocation of :func:`window_costs` is
    ``rate_p × units``; targets and features do not use these rates (a rate applied to another
    window would not allocate that window's amount). Runs one small query when pools are configured."""
    _check_pools(settings)
    pools = settings.costs.indirect_pools
    if not pools:
        return {}
    start = as_of - dt.timedelta(days=RATE_LOOKBACK_DAYS)
    customers = src.customers
    population = customers.filter(customers.signup_at < ibis.timestamp(as_of)).select("customer_id")
    t = population_activity(src, population, start, as_of, settings)
    volume = execute(t.aggregate(**{d: t[DRIVER_VOLUME[d]].sum().cast("float64") for d in POOL_DRIVERS}))
    totals = {d: float(volume[d].iloc[0]) if volume[d].notna().iloc[0] else 0.0 for d in POOL_DRIVERS}
    return {p.name: (p.annual_amount / totals[p.driver] if totals[p.driver] > 0 else 0.0) for p in pools}
