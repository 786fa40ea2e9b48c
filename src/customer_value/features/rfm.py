"""Recency-frequency-monetary summary in lifetimes' convention, plus spend features to date.

Conventions (those of ``lifetimes.utils.summary_data_from_transaction_data`` with daily periods):

- a *purchase* is a transaction with ``amount > 0``; purchases are merged per UTC calendar day,
  and a purchase day is a day with at least one purchase;
- ``frequency`` = purchase days − 1 (repeat purchases); ``recency`` = last − first purchase day;
  ``T`` = last day of history (``as_of − 1 day``) − first purchase day; so an ``as_of`` of
  1997-10-01 reproduces lifetimes' ``observation_period_end="1997-09-30"``;
- a customer without any purchase has ``frequency = recency = 0`` and ``T`` counted from the
  signup day instead (lifetimes has no such customer; this keeps them in the population with
  the exposure they really had);
- ``monetary_value`` = net spend of all days but the first purchase day, divided by
  ``frequency``: refunds are not purchases, but they lower the spend (a refund on the first
  purchase day lowers the first purchase, which is excluded as in lifetimes; refunds on later
  days lower the repeat spend); floored at 0, and 0 for customers without repeat purchases;
- ``time_unit="weeks"`` divides the day counts by 7 (lifetimes' ``freq="D", freq_multiplier=7``).
"""

from __future__ import annotations

import ibis.expr.types as ir

from customer_value.units import unit_days
from customer_value.config import Settings
from customer_value.features.history import History, count_if, day_of, days_before

SPEND_WINDOWS: tuple[int, ...] = (30, 90, 365)
RATE_COLUMNS = ("purchases_to_date", "revenue_to_date")
"""Totals also given per year of tenure (:meth:`~customer_value.features.history.History.with_rates`)."""
SUMMARY_COLUMNS: tuple[str, ...] = (
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "first_purchase_at",
    "last_purchase_at",
    "revenue",
    "margin",
)


def _customer_spend(h: History, features: bool) -> ir.Table:
    """Per customer with any transaction before ``as_of``: purchase-day statistics and sums
    (one aggregation to customer-days, one to customers; no window functions or joins)."""
    tx = h.transactions
    is_purchase = tx.amount > 0
    per_day: dict[str, ir.Value] = {
        "net": tx.amount.sum(),
        "margin": tx.margin.sum(),
        "purchases": count_if(is_purchase),
        "first_ts": tx.occurred_at.min(where=is_purchase),
        "last_ts": tx.occurred_at.max(where=is_purchase),
    }
    if features:
        per_day.update(refunds=count_if(tx.amount < 0), refund_amount=(-tx.amount).sum(where=tx.amount < 0))
    daily = tx.group_by("customer_id", "day").aggregate(**per_day)

    bought = daily.purchases > 0
    per_customer: dict[str, ir.Value] = {
        "purchase_days": count_if(bought),
        "first_day": daily.day.min(where=bought),
        "last_day": daily.day.max(where=bought),
        "first_day_net": h.arg_min(daily.net, daily.day, where=bought),
        "revenue": daily.net.sum(),
        "margin": daily.margin.sum(),
        "first_purchase_at": daily.first_ts.min(),
        "last_purchase_at": daily.last_ts.max(),
    }
    if features:
        per_customer.update(
            purchases=daily.purchases.sum(), refunds=daily.refunds.sum(), refund_amount=daily.refund_amount.sum()
        )
        for w in SPEND_WINDOWS:
            recent = daily.day >= h.day - w
            per_customer[f"revenue_{w}d"] = daily.net.sum(where=recent)
            per_customer[f"purchases_{w}d"] = daily.purchases.sum(where=recent)
    return daily.group_by("customer_id").aggregate(**per_customer)


def rfm_table(h: History, settings: Settings, *, features: bool = False) -> ir.Table:
    """The RFM summary for the whole population (``SUMMARY_COLUMNS``); with ``features=True``
    also counts, refunds, windowed spend and days since first / last purchase."""
    unit = unit_days(settings.time_unit)
    spend = _customer_spend(h, features)
    pop = h.customers.select("customer_id", signup_day=day_of(h.customers.signup_at))
    j = pop.left_join(spend, "customer_id")
    has_purchase = j.first_day.notnull()
    frequency = (j.purchase_days.fill_null(0) - 1).clip(lower=0)
    last_day_of_history = h.day - 1
    origin = has_purchase.ifelse(j.first_day, j.signup_day)
    repeat_net = j.revenue - j.first_day_net  # everything but the first purchase day
    monetary = (frequency > 0).ifelse((repeat_net / frequency.cast("float64")).clip(lower=0), 0.0)
    columns: dict[str, ir.Value] = {
        "frequency": frequency.cast("int64"),
        "recency": has_purchase.ifelse(j.last_day - j.first_day, 0).cast("float64") / unit,
        "T": (last_day_of_history - origin).cast("float64") / unit,
        "monetary_value": monetary.cast("float64"),
        "first_purchase_at": j.first_purchase_at,
        "last_purchase_at": j.last_purchase_at,
        "revenue": j.revenue.fill_null(0.0),
        "margin": j.margin.fill_null(0.0),
    }
    if features:
        columns.update(
            purchases_to_date=j.purchases.fill_null(0).cast("int64"),
            refunds_to_date=j.refunds.fill_null(0).cast("int64"),
            refund_amount_to_date=j.refund_amount.fill_null(0.0),
            days_since_first_purchase=days_before(h.as_of, j.first_purchase_at),
            days_since_last_purchase=days_before(h.as_of, j.last_purchase_at),
        )
        for w in SPEND_WINDOWS:
            columns[f"revenue_{w}d"] = j[f"revenue_{w}d"].fill_null(0.0)
            columns[f"purchases_{w}d"] = j[f"purchases_{w}d"].fill_null(0).cast("int64")
    return j.select(j.customer_id, **columns)


def rfm_features(h: History, settings: Settings) -> ir.Table:
    """RFM feature columns for ``build_features``: the summary without the raw timestamps
    (``first/last_purchase_at`` become days since), ``revenue``/``margin`` renamed ``*_to_date``,
    and purchases and revenue to date per year of tenure (``*_to_date_per_year``)."""
    t = rfm_table(h, settings, features=True)
    t = t.rename(revenue_to_date="revenue", margin_to_date="margin")
    return h.with_rates(t.drop("first_purchase_at", "last_purchase_at"), RATE_COLUMNS)
