"""Historical value: the targets measured over the trailing window ``[as_of − H, as_of)``.

The backward-looking baseline of the score file (contract section 5): the same revenue, margin,
transactions and cost-to-serve breakdown as the targets, over the ``horizon_days`` before
``as_of``, with pool rates as of ``as_of``; ``historical_value = margin − cost_to_serve``.
Columns are the targets' names prefixed ``hist_`` (``hist_revenue``, ``hist_cost_support``, …)
and ``historical_value``.
"""

from __future__ import annotations

import datetime as dt

import ibis.expr.types as ir

from customer_value.config import Settings
from customer_value.features.engine import Sources
from customer_value.features.history import History
from customer_value.features.targets import window_outcomes


def historical_features(src: Sources, h: History, settings: Settings, rates: dict[str, float]) -> ir.Table:
    start = h.as_of - dt.timedelta(days=settings.horizon_days)
    t = window_outcomes(src, h.population(), start, h.as_of, settings, rates)
    renamed = {f"hist_{c}": t[c] for c in t.columns if c not in ("customer_id", "net_value")}
    return t.select("customer_id", **renamed, historical_value=t.net_value)
