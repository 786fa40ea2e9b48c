"""Property-based tests of the features and targets (hypothesis, DuckDB): on any valid tables
they never crash, give one row per customer signed up before as_of, never produce inf, and
produce NaN only where the feature docs say NaN means "never" / "nothing to divide by" -- and
then exactly for the customers for whom that is so. Rows at or after as_of change no feature.

The tables are small and awkward: one customer, customers with no rows anywhere, unicode and very
long ids, duplicate timestamps, rows exactly at as_of midnight and one microsecond before it,
refunds and zero amounts, missing margins, invoices paid at as_of, tickets resolved before they
were opened, events before sign-up (the contract does not forbid them).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customer_value.config import IndirectPool, Settings
from customer_value.data.tables import EVENT_TIME, Tables
from customer_value.features import build_features, build_targets
from property_worlds import worlds

PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])
SETTINGS = [
    Settings(),
    Settings(time_unit="weeks", horizon_days=90, churn_window_days=30),
    Settings(margin_rate=0.35, costs={"indirect_pools": [
        IndirectPool(name="platform", annual_amount=12000.0, driver="active_customer_months"),
        IndirectPool(name="helpdesk", annual_amount=5000.0, driver="support_minutes"),
        IndirectPool(name="payments", annual_amount=3000.0, driver="transactions"),
        IndirectPool(name="billing", annual_amount=2000.0, driver="invoices"),
    ]}),
]

# float feature -> the count column that is 0 exactly when the feature is NaN ("never" / nothing
# to divide by; module docs of rfm, engagement, payment and support)
NAN_WHEN_ZERO = {
    "pay_share_paid_late": "pay_settled",
    "pay_days_late_mean": "pay_settled",
    "pay_days_late_max": "pay_settled",
    "pay_failed_attempts_mean": "pay_settled",
    "pay_days_since_last_invoice": "pay_invoices",
    "sup_satisfaction_mean": "sup_rated",
    "sup_low_satisfaction_share": "sup_rated",
    "sup_days_since_last_ticket": "sup_tickets",
    "eng_days_since_any": "eng_events_total",
}
NAN_WHEN_NEVER_BOUGHT = ("days_since_first_purchase", "days_since_last_purchase", "pay_share_paid_by_invoice")
NAN_IF_NEVER = ("eng_days_since_",)  # per event kind: NaN if no event of that kind (engagement docs)

def _history_only(tables: Tables, as_of: dt.date) -> Tables:
    """The same tables without the rows timed at or after as_of (customers all kept)."""
    cut = pd.Timestamp(as_of)
    frames = {name: frame if name == "customers" else frame[frame[EVENT_TIME[name]] < cut].reset_index(drop=True)
              for name, frame in tables.items()}
    return Tables(**frames)


def _never_bought(tables: Tables, as_of: dt.date, population: pd.Series) -> pd.Series:
    tx = tables.transactions
    bought = tx.loc[(tx["occurred_at"] < pd.Timestamp(as_of)) & (tx["amount"] > 0), "customer_id"]
    return ~population.isin(set(bought))


def _check_numbers(frame: pd.DataFrame, what: str) -> None:
    numeric = frame.select_dtypes("number")
    values = numeric.to_numpy(dtype="float64")
    assert not np.isinf(values).any(), (what, list(numeric.columns[np.isinf(values).any(axis=0)]))


@pytest.mark.slow
@PROPERTY
@given(world=worlds(), config=st.sampled_from(range(len(SETTINGS))))
def test_features_are_finite_and_nan_only_where_documented(world, config):
    tables, as_of = world
    settings_ = SETTINGS[config]
    features = build_features(tables, as_of, settings_)
    # one row per customer signed up before as_of
    signed_up = tables.customers.loc[tables.customers["signup_at"] < pd.Timestamp(as_of), "customer_id"]
    assert features["customer_id"].is_unique
    assert set(features["customer_id"]) == set(signed_up)
    _check_numbers(features, "features")
    population = features["customer_id"]
    never_bought = _never_bought(tables, as_of, population).to_numpy()
    for column in features.select_dtypes("float").columns:
        nan = features[column].isna().to_numpy()
        if column in NAN_WHEN_ZERO:
            assert (nan == (features[NAN_WHEN_ZERO[column]] == 0).to_numpy()).all(), column
        elif column in NAN_WHEN_NEVER_BOUGHT:
            assert (nan == never_bought).all(), column
        elif column.startswith(NAN_IF_NEVER):  # no event at all: no event of any kind either
            assert (nan | (features["eng_events_total"] > 0).to_numpy()).all(), column
        elif column == "sup_resolution_days_mean":
            resolved = (features["sup_tickets"] - features["sup_open_tickets"]).to_numpy()
            assert (nan == (resolved == 0)).all(), column
        else:
            assert not nan.any(), column
        if column.startswith(("days_since", "eng_days_since", "pay_days_since", "sup_days_since")):
            assert (features[column].dropna() >= 0).all(), column


@pytest.mark.slow
@PROPERTY
@given(world=worlds(), config=st.sampled_from(range(len(SETTINGS))))
def test_targets_are_finite_and_line_up_with_features(world, config):
    tables, as_of = world
    settings_ = SETTINGS[config]
    targets = build_targets(tables, as_of, settings_)
    features = build_features(tables, as_of, settings_)
    assert targets["customer_id"].tolist() == features["customer_id"].tolist()
    _check_numbers(targets, "targets")
    numeric = targets.select_dtypes("number")
    assert not numeric.isna().any().any(), list(numeric.columns[numeric.isna().any()])
    assert targets["churned"].isin([0, 1]).all()
    assert (targets["transactions"] >= 0).all()


@pytest.mark.slow
@PROPERTY
@given(world=worlds(), config=st.sampled_from(range(len(SETTINGS))))
def test_rows_at_or_after_as_of_change_no_feature(world, config):
    tables, as_of = world
    settings_ = SETTINGS[config]
    full = build_features(tables, as_of, settings_)
    history = build_features(_history_only(tables, as_of), as_of, settings_)
    pd.testing.assert_frame_equal(full, history)
