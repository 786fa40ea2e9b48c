"""Account features: tenure, the categorical account attributes and referrals made so far.

``plan``, ``acquisition_channel`` and ``region`` are passed through as strings (null when
unknown). ``acct_referred_customers`` counts the customers whose ``referred_by`` names this
customer and who signed up before ``as_of``; ``acct_referred_revenue`` / ``acct_referred_margin``
are those referred customers' revenue and margin before ``as_of``.
"""

from __future__ import annotations

import ibis.expr.types as ir

from customer_value.config import Settings
from customer_value.features.history import History, days_before

CATEGORICAL_COLUMNS: tuple[str, ...] = ("plan", "acquisition_channel", "region")


def account_features(h: History, settings: Settings) -> ir.Table:
    pop = h.customers
    tx = h.transactions
    value = tx.group_by("customer_id").aggregate(revenue=tx.amount.sum(), margin=tx.margin.sum())
    referred = pop.filter(pop.referred_by.notnull()).select("customer_id", "referred_by")
    referred = referred.left_join(value, "customer_id")
    by_referrer = referred.group_by(customer_id=referred.referred_by).aggregate(
        acct_referred_customers=referred.count(),
        acct_referred_revenue=referred.revenue.sum(),
        acct_referred_margin=referred.margin.sum(),
    )
    t = pop.left_join(by_referrer, "customer_id")
    return t.select(
        t.customer_id,
        acct_tenure_days=days_before(h.as_of, t.signup_at),
        plan=t.plan,
        acquisition_channel=t.acquisition_channel,
        region=t.region,
        acct_is_referred=t.referred_by.notnull().cast("int64"),
        acct_referred_customers=t.acct_referred_customers.fill_null(0).cast("int64"),
        acct_referred_revenue=t.acct_referred_revenue.fill_null(0.0),
        acct_referred_margin=t.acct_referred_margin.fill_null(0.0),
    )
