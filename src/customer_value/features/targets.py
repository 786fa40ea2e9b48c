"""Targets: what a customer brought and cost over a window (contract section 3).

For ``as_of = D`` and horizon ``H`` the window is ``[D, D + H)``; the population is the same as
the features' (``signup_at < D``), so feature and target frames line up row by row.

Columns: ``revenue``, ``margin``, ``transactions`` (``amount > 0``), ``churned`` (1 when there is
no transaction with ``amount > 0`` in ``[D, D + churn_window_days)``, else 0), the cost components
of :mod:`customer_value.features.costing` (``cost_support``, ``cost_orders_and_fees``,
``cost_invoices_and_late``, one ``cost_pool_<name>`` per indirect pool), ``cost_to_serve`` and
``net_value = margin − cost_to_serve``.

Targets for a window that ends on or before a date use only rows before that date (pool rates
come from the year before ``D``; the late rule is judged at the window's end), so they can be
computed from data cut at the window's end — provided ``churn_window_days <= H``.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from customer_value.config import Settings
from customer_value.features.costing import cost_columns, window_activity, window_costs
from customer_value.features.engine import Sources
from customer_value.features.history import complete

OUTCOME_FILL: dict[str, object] = {
    "revenue": 0.0,
    "margin": 0.0,
    "transactions": 0,
    "purchase_amount": 0.0,
    "cost_support": 0.0,
    "support_minutes": 0.0,
    "invoices": 0,
    "late_invoices": 0,
    "active_customer_months": 0,
    "cost_orders_and_fees": 0.0,
    "cost_invoices_and_late": 0.0,
}


def window_outcomes(
    src: Sources,
    population: ir.Table,
    start: dt.datetime,
    end: dt.datetime,
    settings: Settings,
    rates: dict[str, float],
) -> ir.Table:
    """revenue, margin, transactions, the cost columns, cost_to_serve and net_value over
    ``[start, end)`` for every customer of ``population``."""
    t = complete(population, window_activity(src, start, end, settings), OUTCOME_FILL)
    costs = window_costs(t, settings, rates)
    return t.select(
        "customer_id",
        revenue=t.revenue,
        margin=t.margin,
        transactions=t.transactions.cast("int64"),
        **costs,
        net_value=t.margin - costs["cost_to_serve"],
    )


def target_table(
    src: Sources,
    population: ir.Table,
    as_of: dt.datetime,
    settings: Settings,
    rates: dict[str, float],
    horizon_days: int | None = None,
) -> ir.Table:
    horizon = settings.horizon_days if horizon_days is None else int(horizon_days)
    if horizon <= 0:
        raise ValueError(f"horizon_days must be positive, got {horizon}")
    out = window_outcomes(src, population, as_of, as_of + dt.timedelta(days=horizon), settings, rates)
    churn_end = as_of + dt.timedelta(days=settings.churn_window_days)
    tx = src.transactions
    active = tx.filter(
        (tx.amount > 0) & (tx.occurred_at >= ibis.timestamp(as_of)) & (tx.occurred_at < ibis.timestamp(churn_end))
    )
    active = active.group_by("customer_id").aggregate(purchases=active.count())
    j = out.left_join(active, "customer_id")
    columns = ["revenue", "margin", "transactions"]
    return j.select(
        j.customer_id,
        *columns,
        churned=j.purchases.isnull().cast("int64"),
        **{c: j[c] for c in [*cost_columns(settings), "cost_to_serve", "net_value"]},
    )
