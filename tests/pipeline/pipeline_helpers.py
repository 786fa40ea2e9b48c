"""Constants and checks shared by the pipeline tests (imported by name: conftest modules are not)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from customer_value.config import Settings, TrainingSnapshots

from session_world import AS_OF, FAST, N_CUSTOMERS  # noqa: F401  (re-exported)
CONTRACT_SCORE_COLUMNS = (
    "customer_id", "as_of", "horizon_days", "p_alive", "expected_transactions", "expected_order_value",
    "expected_revenue", "expected_margin", "churn_probability", "expected_cost_to_serve",
    "expected_referral_value", "historical_value", "customer_value", "value_segment", "model_uri",
)
SEGMENTS = {"negative", "low", "medium", "high", "top"}


def fast_settings(**overrides) -> Settings:
    return Settings(trials=1, snapshots=TrainingSnapshots(count=3, spacing_days=30), **overrides)



def check_score_file(scores: pd.DataFrame, customers: pd.DataFrame, as_of: dt.date, model_uri: str) -> None:
    """Contract section 5: one row per customer signed up before as_of, all columns, finite values."""
    import numpy as np

    signup = pd.to_datetime(customers["signup_at"], utc=True)
    expected = set(customers.loc[signup < pd.Timestamp(as_of, tz="UTC"), "customer_id"])
    assert scores["customer_id"].is_unique
    assert set(scores["customer_id"]) == expected
    assert len(scores) == len(expected)
    missing = [c for c in CONTRACT_SCORE_COLUMNS if c not in scores.columns]
    assert not missing, missing
    numeric = scores.select_dtypes("number")
    assert np.isfinite(numeric.to_numpy(dtype=float)).all(), list(numeric.columns[~np.isfinite(numeric).all()])
    assert not scores[list(CONTRACT_SCORE_COLUMNS)].isna().any().any()
    assert set(scores["value_segment"]) <= SEGMENTS
    assert (scores.loc[scores["customer_value"] < 0, "value_segment"] == "negative").all()
    assert (scores["model_uri"] == model_uri).all()
    assert scores["drain_flag"].dtype == bool
    assert scores["drain_probability"].between(0.0, 1.0).all()
    assert (pd.to_datetime(scores["as_of"]).dt.date == as_of).all()
