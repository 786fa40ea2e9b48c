"""Historical value: the targets measured over the trailing window ``[as_of − H, as_of)``.

The backward-looking baseline of the score file (contract section 5): the same revenue, margin,
transactions and cost-to-serve breakdown as the targets, over the ``horizon_days`` before
``as_of``; ``historical_value = margin − cost_to_serve``. Each indirect pool allocates its amount
for that window (``annual_amount × horizon_days / 365``) over the driver units of every customer
with ``signup_at < as_of`` (contract section 8; with ``horizon_days = 365`` this is section 3's
``rate_p × units``). Only rows before ``as_of`` are read.

Columns are the targets' names prefixed ``hist_``: ``hist_revenue``, ``hist_margin``,
``hist_transactions``, the components ``hist_cost_support``, …, ``hist_cost_pool_<name>``,
``hist_cost_to_serve``, then ``historical_value`` and each pool's driver units
``hist_pool_units_<name>``. The per-activity costs and volumes of the targets are not features:
the support, payment and RFM builders already describe the same activity (on a 20k simulated
world, 2 trials, adding them moved the value Spearman 0.6245 -> 0.6215 and drain AUC
0.8646 -> 0.8629, and made fitting slower).
"""

from __future__ import annotations

import datetime as dt

import ibis.expr.types as ir

from customer_value.config import Settings
from customer_value.features.costing import cost_columns, pool_units_column
from customer_value.features.engine import Sources
from customer_value.features.history import History
from customer_value.features.targets import window_outcomes


def historical_features(src: Sources, h: History, settings: Settings) -> ir.Table:
    start = h.as_of - dt.timedelta(days=settings.horizon_days)
    t = window_outcomes(src, h.population(), start, h.as_of, settings)
    leading = ["revenue", "margin", "transactions", *cost_columns(settings), "cost_to_serve"]
    units = [pool_units_column(p.name) for p in settings.costs.indirect_pools]
    return t.select(
        "customer_id",
        **{f"hist_{c}": t[c] for c in leading},
        historical_value=t.net_value,
        **{f"hist_{c}": t[c] for c in units},
    )
