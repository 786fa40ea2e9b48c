"""Property-based tests of scoring (hypothesis): a fitted value model scores any valid tables
without crashing, one row per customer signed up before as_of, and never a NaN or inf in a score.

The tables come from the feature properties' strategy (one customer, customers with no rows
anywhere, unicode and very long ids, duplicate timestamps, rows exactly at as_of, refunds, plans
and channels the model never saw)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from customer_value.config import Settings
from customer_value.features import build_features
from customer_value.simulation.world import simulate_world
from customer_value.training.fit import fit_value_model
from property_worlds import worlds

SEGMENTS = {"negative", "low", "medium", "high", "top"}


@pytest.fixture(scope="module")
def value_model():
    """A value model with every part fitted (no search) on a small simulated small_world."""
    tables = simulate_world(700, 5).tables
    fitted = fit_value_model(tables, dt.date(2024, 7, 1), Settings(trials=0, snapshots={"count": 3, "spacing_days": 60}))
    assert not fitted.skipped, fitted.skipped
    return fitted.model


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                  HealthCheck.function_scoped_fixture])
@given(small_world=worlds())
def test_any_valid_tables_score_to_finite_rows(value_model, small_world):
    tables, as_of = small_world
    features = build_features(tables, as_of, value_model.settings)
    population = tables.customers.loc[tables.customers["signup_at"] < np.datetime64(as_of), "customer_id"]
    assert sorted(features["customer_id"]) == sorted(population)
    if features.empty:
        return
    scores = value_model.predict(features, as_of)
    assert list(scores["customer_id"]) == list(features["customer_id"])
    numeric = scores.select_dtypes("number")
    bad = numeric.columns[~np.isfinite(numeric.to_numpy(dtype="float64")).all(axis=0)]
    assert not len(bad), f"non-finite score columns {list(bad)}"
    assert set(scores["value_segment"]) <= SEGMENTS
    assert ((scores["churn_probability"] >= 0) & (scores["churn_probability"] <= 1)).all()
    assert (scores["expected_cost_to_serve"] >= 0).all() and (scores["expected_revenue"] >= 0).all()
