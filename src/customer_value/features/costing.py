"""Activity-based cost-to-serve (contract section 3), for any window ``[start, end)``.

Shared by the targets (the future window ``[as_of, as_of + H)``) and the historical cost
features (the trailing window ``[as_of − H, as_of)``)::

    cost_support           = Σ tickets opened in window   handle_minutes × minute_rate[channel]
                                                           + escalation_cost × escalated
    cost_orders_and_fees   = Σ transactions in window with amount > 0   order_cost + payment_fee_rate × amount
    cost_invoices_and_late = Σ invoices issued in window   invoice_cost + late_payment_cost × late
    cost_pool_<p>          = rate_p × driver_units_p(customer, window)
    cost_to_serve          = the sum of the above

Refunds (``amount <= 0``) are not orders: they carry neither order cost nor payment fee.

``late`` is judged at the window's end: paid inside the window after ``due_at``, or still
unpaid at the end (``paid_at`` null or ``>= end``) although ``due_at < end``. Both cases are
``due_at < end and (paid_at is null or paid_at > due_at)``, which only looks at ``paid_at``
values before ``end`` in effect, so the rule gives the same answer on data cut at ``end``.

Indirect pools: ``rate_p = annual_amount_p / (driver volume of all customers in the 365 days
before as_of)``, i.e. the cost per driver unit (per support minute, per transaction, per invoice
or per active customer-month) over the last year. The rate is per unit, so for any horizon the
pool cost of a window is ``rate_p × units in the window``: ``annual_amount`` is read as the
pool's cost per year *at last year's activity level*, and a 90-day window with a quarter of a
year's activity gets about a quarter of it. A driver with no volume in the year has rate 0
(nothing to spread the pool over). Rates use only data before ``as_of``, so targets and
features built as of a date never see later rows through them.

Drivers: ``support_minutes`` (Σ handle_minutes of tickets opened), ``transactions`` (count with
``amount > 0``), ``invoices`` (count issued), ``active_customer_months`` (distinct UTC calendar
months in the window with a transaction or an engagement event).
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from customer_value.config import POOL_DRIVERS, TICKET_CHANNELS, Settings
from customer_value.features.engine import Sources, execute
from customer_value.features.history import count_if, month_of, ticket_channel, with_margin

COMPONENTS: tuple[str, ...] = ("cost_support", "cost_orders_and_fees", "cost_invoices_and_late")
RATE_LOOKBACK_DAYS = 365


def pool_column(name: str) -> str:
    return f"cost_pool_{name}"


def cost_columns(settings: Settings) -> list[str]:
    """The cost component columns, in order, for ``settings``' pools (without the total)."""
    return [*COMPONENTS, *(pool_column(p.name) for p in settings.costs.indirect_pools)]


def _check_pools(settings: Settings) -> None:
    names = [p.name for p in settings.costs.indirect_pools]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"indirect pool names must be unique, repeated: {dupes}")


def needs_active_months(settings: Settings) -> bool:
    return any(p.driver == "active_customer_months" for p in settings.costs.indirect_pools)


def window_activity(src: Sources, start: dt.datetime, end: dt.datetime, settings: Settings) -> ir.Table:
    """Per customer with any activity in ``[start, end)``: revenue, margin, transactions, the
    three direct cost components and the four driver unit counts (customers without activity
    are absent; join onto a population and fill with 0). ``active_customer_months`` is counted
    only when a pool uses it (it is the one driver that reads the engagement events), else 0."""
    costs = settings.costs
    lo, hi = ibis.timestamp(start), ibis.timestamp(end)

    tx = src.transactions.filter((src.transactions.occurred_at >= lo) & (src.transactions.occurred_at < hi))
    tx = with_margin(tx, settings)
    orders = tx.amount > 0
    tx_agg = tx.group_by("customer_id").aggregate(
        revenue=tx.amount.sum(),
        margin=tx.margin.sum(),
        transactions=count_if(orders),
        purchase_amount=tx.amount.sum(where=orders),
    )

    tk = src.support_tickets.filter((src.support_tickets.opened_at >= lo) & (src.support_tickets.opened_at < hi))
    channel = ticket_channel(tk.channel)
    minute_rate = ibis.cases(
        *[(channel == c, ibis.literal(float(costs.minute_rate[c]))) for c in TICKET_CHANNELS if c != "other"],
        else_=ibis.literal(float(costs.minute_rate["other"])),
    )
    ticket_cost = tk.handle_minutes * minute_rate + tk.escalated.ifelse(float(costs.escalation_cost), 0.0)
    tk_agg = tk.group_by("customer_id").aggregate(cost_support=ticket_cost.sum(), support_minutes=tk.handle_minutes.sum())

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

    # stack the four per-customer aggregates (each with the full column set) and add them up
    parts = {
        "revenue": "float64",
        "margin": "float64",
        "transactions": "int64",
        "purchase_amount": "float64",
        "cost_support": "float64",
        "support_minutes": "float64",
        "invoices": "int64",
        "late_invoices": "int64",
        "active_customer_months": "int64",
    }

    def widen(t: ir.Table) -> ir.Table:
        return t.select(
            "customer_id",
            **{c: (t[c].fill_null(0) if c in t.columns else ibis.literal(0)).cast(d) for c, d in parts.items()},
        )

    stacked = ibis.union(*[widen(a) for a in aggregates])
    totals = stacked.group_by("customer_id").aggregate(**{c: stacked[c].sum() for c in parts})
    return totals.mutate(
        cost_orders_and_fees=totals.transactions.cast("float64") * float(costs.order_cost)
        + totals.purchase_amount * float(costs.payment_fee_rate),
        cost_invoices_and_late=totals.invoices.cast("float64") * float(costs.invoice_cost)
        + totals.late_invoices.cast("float64") * float(costs.late_payment_cost),
    )


def pool_rates(src: Sources, as_of: dt.datetime, settings: Settings) -> dict[str, float]:
    """``rate_p`` per pool name: annual amount / all customers' driver volume in the 365 days
    before ``as_of`` (0 when that volume is 0). Runs one small query when pools are configured."""
    _check_pools(settings)
    pools = settings.costs.indirect_pools
    if not pools:
        return {}
    start = as_of - dt.timedelta(days=RATE_LOOKBACK_DAYS)
    activity = window_activity(src, start, as_of, settings)
    volume = execute(activity.aggregate(**{d: activity[d].sum().cast("float64") for d in POOL_DRIVERS}))
    totals = {d: float(volume[d].iloc[0]) if volume[d].notna().iloc[0] else 0.0 for d in POOL_DRIVERS}
    return {p.name: (p.annual_amount / totals[p.driver] if totals[p.driver] > 0 else 0.0) for p in pools}


def window_costs(activity: ir.Table, settings: Settings, rates: dict[str, float]) -> dict[str, ir.Value]:
    """Cost component expressions (``cost_columns`` order, then ``cost_to_serve``) over a table
    holding :func:`window_activity`'s columns (nulls already filled)."""
    columns: dict[str, ir.Value] = {c: activity[c] for c in COMPONENTS}
    for pool in settings.costs.indirect_pools:
        units = activity[pool.driver].cast("float64")
        columns[pool_column(pool.name)] = units * float(rates.get(pool.name, 0.0))
    total = ibis.literal(0.0)
    for value in columns.values():
        total = total + value
    columns["cost_to_serve"] = total
    return columns
