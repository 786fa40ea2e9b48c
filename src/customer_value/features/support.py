"""Support features from tickets opened before ``as_of``.

A ticket resolved at or after ``as_of`` is open, and its satisfaction unknown: satisfaction
statistics use only tickets resolved before ``as_of``. Channels outside email/chat/phone count
as ``other``; a score of 1 or 2 (of 5) is *low*.

Columns (``C`` a channel, ``W`` in 30/90/365): ``sup_tickets``, ``sup_tickets_Wd``,
``sup_tickets_C``; ``sup_minutes``, ``sup_minutes_Wd``, ``sup_minutes_C``; ``sup_escalations``,
``sup_escalations_Wd``; ``sup_rated`` (tickets with a known score), ``sup_satisfaction_mean``,
``sup_low_satisfaction_share``; ``sup_open_tickets``; ``sup_resolution_days_mean`` (resolved
tickets); ``sup_days_since_last_ticket``; ``sup_tickets_per_year``, ``sup_minutes_per_year``,
``sup_escalations_per_year`` (totals over the years of tenure, at least 30 days' worth).
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from customer_value.config import TICKET_CHANNELS, Settings
from customer_value.features.history import History, count_if, days_before, days_between

SUPPORT_WINDOWS: tuple[int, ...] = (30, 90, 365)
RATE_COLUMNS = ("sup_tickets", "sup_minutes", "sup_escalations")
"""Totals also given per year of tenure (:meth:`History.with_rates`)."""
LOW_SATISFACTION = 2


def support_features(h: History, settings: Settings) -> ir.Table:
    tk = h.tickets
    rated = tk.satisfaction.notnull()
    resolution_days = days_between(tk.opened_at, tk.resolved_at)
    aggs: dict[str, ir.Value] = {
        "sup_tickets": tk.count(),
        "sup_minutes": tk.handle_minutes.sum(),
        "sup_escalations": count_if(tk.escalated),
        "sup_rated": count_if(rated),
        "sup_low_rated": count_if(rated & (tk.satisfaction <= LOW_SATISFACTION)),
        "sup_open_tickets": count_if(tk.resolved_at.isnull()),
        "sup_satisfaction_mean": tk.satisfaction.cast("float64").mean(),
        "sup_resolution_days_mean": resolution_days.mean(),
        "last_opened_at": tk.opened_at.max(),
    }
    for w in SUPPORT_WINDOWS:
        recent = tk.opened_at >= ibis.timestamp(h.as_of - dt.timedelta(days=w))
        aggs[f"sup_tickets_{w}d"] = count_if(recent)
        aggs[f"sup_minutes_{w}d"] = tk.handle_minutes.sum(where=recent)
        aggs[f"sup_escalations_{w}d"] = count_if(recent & tk.escalated)
    for c in TICKET_CHANNELS:
        aggs[f"sup_tickets_{c}"] = count_if(tk.channel == c)
        aggs[f"sup_minutes_{c}"] = tk.handle_minutes.sum(where=tk.channel == c)
    agg = tk.group_by("customer_id").aggregate(**aggs)

    counts = [c for c in aggs if c.startswith(("sup_tickets", "sup_escalations")) or c in ("sup_rated", "sup_low_rated", "sup_open_tickets")]
    minutes = [c for c in aggs if c.startswith("sup_minutes")]
    t = h.complete(agg, {c: 0 for c in counts} | {c: 0.0 for c in minutes})
    return h.with_rates(t.select(
        "customer_id",
        *[t[c].cast("int64").name(c) for c in counts if c != "sup_low_rated"],
        *minutes,
        sup_satisfaction_mean=t.sup_satisfaction_mean,
        sup_low_satisfaction_share=(t.sup_rated > 0).ifelse(
            t.sup_low_rated.cast("float64") / t.sup_rated.cast("float64"), ibis.null("float64")
        ),
        sup_resolution_days_mean=t.sup_resolution_days_mean,
        sup_days_since_last_ticket=days_before(h.as_of, t.last_opened_at),
    ), RATE_COLUMNS)
