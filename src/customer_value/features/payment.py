"""Payment behaviour from invoices, as known before ``as_of``.

An invoice is *settled* when it was paid before ``as_of``; one paid later is open (contract
section 1), and its failed payment attempts are not known yet. Days late are fractional days
``paid_at − due_at``, floored at 0.

Columns: ``pay_invoices`` (issued to date), ``pay_invoices_90d``/``_365d``, ``pay_invoiced_amount``;
``pay_settled``, ``pay_settled_late``, ``pay_share_paid_late`` (of settled), ``pay_days_late_mean``
and ``pay_days_late_max`` (over settled invoices); ``pay_open``/``pay_open_amount`` (unpaid as of
``as_of``), ``pay_overdue``/``pay_overdue_amount`` (unpaid and past due); ``pay_failed_attempts``
and ``pay_failed_attempts_mean`` (settled invoices only); ``pay_share_paid_by_invoice`` = invoiced
amount / purchase amount to date; ``pay_days_since_last_invoice``; ``pay_invoices_per_year``,
``pay_settled_late_per_year``, ``pay_failed_attempts_per_year`` (over the years of tenure, at least
30 days' worth). Shares and means are NaN when there is nothing to divide by.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from customer_value.config import Settings
from customer_value.features.history import History, count_if, days_before, days_between

INVOICE_WINDOWS: tuple[int, ...] = (90, 365)
RATE_COLUMNS = ("pay_invoices", "pay_settled_late", "pay_failed_attempts")
"""Totals also given per year of tenure (:meth:`~customer_value.features.history.History.with_rates`)."""

def payment_features(h: History, settings: Settings) -> ir.Table:
    inv = h.invoices
    cut = ibis.timestamp(h.as_of)
    settled = inv.paid_at.notnull()
    days_late = days_between(inv.due_at, inv.paid_at).clip(lower=0)
    aggs: dict[str, ir.Value] = {
        "pay_invoices": inv.count(),
        "pay_invoiced_amount": inv.amount.sum(),
        "pay_settled": count_if(settled),
        "pay_settled_late": count_if(settled & (inv.paid_at > inv.due_at)),
        "pay_days_late_mean": days_late.mean(),
        "pay_days_late_max": days_late.max(),
        "pay_open": count_if(~settled),
        "pay_open_amount": inv.amount.sum(where=~settled),
        "pay_overdue": count_if(~settled & (inv.due_at < cut)),
        "pay_overdue_amount": inv.amount.sum(where=~settled & (inv.due_at < cut)),
        "pay_failed_attempts": inv.failed_payment_attempts.fill_null(0).sum(where=settled),
        "last_issued_at": inv.issued_at.max(),
    }
    for w in INVOICE_WINDOWS:
        aggs[f"pay_invoices_{w}d"] = count_if(inv.issued_at >= ibis.timestamp(h.as_of - dt.timedelta(days=w)))
    agg = inv.group_by("customer_id").aggregate(**aggs)

    tx = h.transactions
    purchases = tx.filter(tx.amount > 0).group_by("customer_id").aggregate(purchase_amount=tx.amount.sum())

    counts = [c for c in aggs if c.startswith("pay_invoices") or c in ("pay_settled", "pay_settled_late", "pay_open", "pay_overdue", "pay_failed_attempts")]
    amounts = ["pay_invoiced_amount", "pay_open_amount", "pay_overdue_amount"]
    t = h.complete(agg, {c: 0 for c in counts} | {c: 0.0 for c in amounts})
    t = t.left_join(purchases, "customer_id")
    settled_n = t.pay_settled.cast("float64")
    per_settled = lambda x: (t.pay_settled > 0).ifelse(x / settled_n, ibis.null("float64"))  # noqa: E731
    return h.with_rates(t.select(
        "customer_id",
        *[t[c].cast("int64").name(c) for c in counts],
        *amounts,
        pay_share_paid_late=per_settled(t.pay_settled_late.cast("float64")),
        pay_days_late_mean=t.pay_days_late_mean,
        pay_days_late_max=t.pay_days_late_max,
        pay_failed_attempts_mean=per_settled(t.pay_failed_attempts.cast("float64")),
        pay_share_paid_by_invoice=(t.purchase_amount > 0).ifelse(
            t.pay_invoiced_amount / t.purchase_amount, ibis.null("float64")
        ),
        pay_days_since_last_invoice=days_before(h.as_of, t.last_issued_at),
    ), RATE_COLUMNS)
