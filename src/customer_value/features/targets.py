"""Targets: what a customer brought and cost over a window (contract sections 3 and 8).

For ``as_of = D`` and horizon ``H`` the window is ``[D, D + H)``; the population is the same as
the features' (``signup_at < D``), so feature and target frames line up row by row.

Columns, in order: ``revenue``, ``margin``, ``transactions`` (``amount > 0``), ``churned`` (1 when
there is no transaction with ``amount > 0`` in ``[D, D + churn_window_days)``, else 0), the cost
components of :mod:`customer_value.features.costing` (``cost_support``,
``cost_orders_and_fees``, ``cost_invoices_and_late``, one ``cost_pool_<name>`` per indirect
pool), ``cost_to_serve``, ``net_value = margin − cost_to_serve``; then the cost per activity
(``cost_support_email``, ``cost_support_chat``, ``cost_support_phone``, ``cost_support_other``,
``cost_escalations``, ``cost_orders``, ``cost_payment_fees``, ``cost_invoices``,
``cost_late_payments``; the pools' ``cost_pool_<name>`` are already there) and the volumes they
are priced from (``support_minutes_<channel>``, ``escalations``, ``orders``, ``order_amount``,
``invoices``, ``late_invoices``, ``pool_units_<name>``). The activity costs add up to the
components and to ``cost_to_serve``; no volume column starts with ``cost_``. Last, ``referrals``:
the referred sign-ups in the window (customers whose ``referred_by`` names this customer and whose
``signup_at`` lies in ``[D, D + H)``), what ``expected_referrals`` forecasts.

Indirect pools allocate the window's amount (``annual_amount × H / 365``) over the scored
population's driver units in the window (contract section 8; customers signing up inside the
window are not scored and take no share). Targets for a window that ends on or before a date use
only rows before that date (the pool totals come from the window itself; the late rule is judged
at the window's end), so they can be computed from data cut at the window's end — provided
``churn_window_days <= H``.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from customer_value.config import Settings
from customer_value.features.costing import cost_columns, population_activity, window_costs
from customer_value.features.engine import Sources


def window_outcomes(
    src: Sources,
    population: ir.Table,
    start: dt.datetime,
    end: dt.datetime,
    settings: Settings,
) -> ir.Table:
    """revenue, margin, transactions, the cost components, cost_to_serve, net_value, the cost
    per activity and the activity volumes over ``[start, end)`` for every customer of
    ``population`` (the pools are spread over exactly these customers)."""
    t, costs = window_costs(population_activity(src, population, start, end, settings), settings, start, end)
    totals = [*cost_columns(settings), "cost_to_serve"]
    return t.select(
        "customer_id",
        revenue=t.revenue,
        margin=t.margin,
        transactions=t.orders.cast("int64"),
        **{c: costs[c] for c in totals},
        net_value=t.margin - costs["cost_to_serve"],
        **{c: v for c, v in costs.items() if c not in totals},
    )


def target_table(
    src: Sources,
    population: ir.Table,
    as_of: dt.datetime,
    settings: Settings,
    horizon_days: int | None = None,
) -> ir.Table:
    horizon = settings.horizon_days if horizon_days is None else int(horizon_days)
    if horizon <= 0:
        raise ValueError(f"horizon_days must be positive, got {horizon}")
    out = window_outcomes(src, population, as_of, as_of + dt.timedelta(days=horizon), settings)
    churn_end = as_of + dt.timedelta(days=settings.churn_window_days)
    tx = src.transactions
    active = tx.filter(
        (tx.amount > 0) & (tx.occurred_at >= ibis.timestamp(as_of)) & (tx.occurred_at < ibis.timestamp(churn_end))
    )
    active = active.group_by("customer_id").aggregate(purchases=active.count())
    j = out.left_join(active, "customer_id").left_join(
        referred_signups(src, as_of, as_of + dt.timedelta(days=horizon)), "customer_id")
    leading = ["revenue", "margin", "transactions"]
    return j.select(
        j.customer_id,
        *leading,
        churned=j.purchases.isnull().cast("int64"),
        **{c: j[c] for c in out.columns if c not in ("customer_id", *leading)},
        referrals=j.referred.fill_null(0).cast("int64"),
    )


def referred_signups(src: Sources, start: dt.datetime, end: dt.datetime) -> ir.Table:
    """``customer_id`` (the referrer) and ``referred``: how many customers naming it in
    ``referred_by`` signed up in ``[start, end)`` (only rows before ``end`` are read)."""
    c = src.customers
    new = c.filter(c.referred_by.notnull() & (c.signup_at >= ibis.timestamp(start))
                   & (c.signup_at < ibis.timestamp(end)))
    return new.group_by(customer_id=new.referred_by).aggregate(referred=new.count())
