"""Targets: population, window boundaries, churn, and alignment with the feature frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from customer_value.config import Settings
from customer_value.data.tables import Tables
from customer_value.features import build_features, build_targets
from customer_value.features.costing import activity_cost_columns, cost_columns
from feature_worlds import AS_OF, make_tables


def _tx(i: str, who: str, at: str, amount: float) -> dict:
    return {"transaction_id": i, "customer_id": who, "occurred_at": at, "amount": amount}


TABLES = make_tables(
    customers=[
        {"customer_id": f"c{i}", "signup_at": "2024-01-01"} for i in range(1, 6)
    ] + [{"customer_id": "new", "signup_at": "2024-07-01"}],
    transactions=[
        _tx("1", "c1", "2024-07-01 00:00", 10.0),  # at as_of: first day of the window, not churned
        _tx("2", "c2", "2024-09-29 00:00", 10.0),  # as_of + 90 days: outside the churn window
        _tx("3", "c3", "2024-09-28 23:59", 10.0),  # last second of the churn window
        _tx("4", "c4", "2024-07-10", -10.0),  # only a refund: churned
        _tx("5", "c1", "2024-06-30 23:59", 99.0),  # history: not in the targets
        _tx("6", "c1", "2024-12-31", 5.0),  # within H = 365 (the window ends 2025-07-01)
        _tx("7", "c1", "2025-07-01", 7.0),  # as_of + 365 days: outside
    ],
)


def test_population_order_and_churn() -> None:
    t = build_targets(TABLES, AS_OF, Settings()).set_index("customer_id")
    assert list(t.index) == ["c1", "c2", "c3", "c4", "c5"]  # "new" signs up at as_of
    assert t.churned.to_dict() == {"c1": 0, "c2": 1, "c3": 0, "c4": 1, "c5": 1}
    assert t.loc["c1", "revenue"] == 15.0 and t.loc["c1", "transactions"] == 2
    assert t.loc["c4", "revenue"] == -10.0 and t.loc["c4", "transactions"] == 0
    assert t.loc["c4", "cost_orders_and_fees"] == 0.0
    assert (t.loc["c5"].drop("churned") == 0).all()


def test_horizon_override_and_margin_rate() -> None:
    t = build_targets(TABLES, AS_OF, Settings(margin_rate=0.4), horizon_days=30).set_index("customer_id")
    assert t.loc["c1", "revenue"] == 10.0 and t.loc["c1", "margin"] == pytest.approx(4.0)
    assert t.loc["c1", "net_value"] == pytest.approx(4.0 - (2.0 + 0.029 * 10.0))
    with pytest.raises(ValueError):
        build_targets(TABLES, AS_OF, Settings(), horizon_days=0)


def test_features_and_targets_line_up(world: Tables, pooled_settings: Settings) -> None:
    x = build_features(world, AS_OF, pooled_settings)
    y = build_targets(world, AS_OF, pooled_settings)
    assert x.customer_id.tolist() == y.customer_id.tolist()
    assert x.customer_id.is_monotonic_increasing and x.columns[0] == "customer_id"
    expected = world.customers.customer_id[world.customers.signup_at < pd.Timestamp(AS_OF)]
    assert sorted(expected) == x.customer_id.tolist()
    assert not x.drop(columns=[c for c in x.columns if "days_since" in c or "mean" in c or "share" in c
                               or c in ("plan", "region", "pay_days_late_max")]).isna().any().any()
    np.testing.assert_allclose(y.net_value, y.margin - y.cost_to_serve, rtol=0, atol=1e-8)  # outputs rounded to 1e-9
    # the components add up to the total, and so do the activities (section 8; the pools are both)
    for parts in (cost_columns(pooled_settings), activity_cost_columns(pooled_settings)):
        pd.testing.assert_series_equal(y[parts].sum(axis=1), y.cost_to_serve, check_names=False)
