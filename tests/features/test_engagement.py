"""Engagement features on a hand-made event log."""

from __future__ import annotations

import numpy as np
import pytest

from customer_value.config import Settings
from customer_value.features import EVENT_TYPES, build_features
from feature_worlds import make_tables


def _ev(who: str, at: str, kind: str) -> dict:
    return {"customer_id": who, "occurred_at": at, "event_type": kind}


@pytest.fixture(scope="module")
def features():
    tables = make_tables(
        customers=[{"customer_id": "a", "signup_at": "2023-01-01"}, {"customer_id": "quiet", "signup_at": "2023-01-01"}],
        transactions=[],
        engagement_events=[
            _ev("a", "2024-06-30 23:59", "login"),  # 1 day before as_of (day granularity)
            _ev("a", "2024-06-30 08:00", " LOGIN "),  # same day, normalised to login
            _ev("a", "2024-06-25", "feature_use"),  # 6 days back: in 7d
            _ev("a", "2024-06-24", "webinar"),  # 7 days back: in 7d, kind other
            _ev("a", "2024-06-23", "email_open"),  # 8 days back: not in 7d, in 30d
            _ev("a", "2024-05-15", "email_click"),  # 47 days back: in 90d, in the 60 days before the last 30
            _ev("a", "2024-04-10", "referral"),  # 82 days back
            _ev("a", "2024-03-01", "login"),  # 122 days back: only 180d
            _ev("a", "2023-06-01", "referral"),  # older than 180d
            _ev("a", "2024-07-01 00:00", "login"),  # at as_of: future
        ],
    )
    return build_features(tables, "2024-07-01", Settings()).set_index("customer_id")


def test_schema_is_fixed(features) -> None:
    for k in EVENT_TYPES:
        for w in (7, 30, 90, 180):
            assert f"eng_{k}_{w}d" in features.columns
        assert f"eng_days_since_{k}" in features.columns


def test_counts_per_kind_and_window(features) -> None:
    a = features.loc["a"]
    assert (a.eng_login_7d, a.eng_feature_use_7d, a.eng_other_7d, a.eng_email_open_7d) == (2, 1, 1, 0)
    assert (a.eng_events_7d, a.eng_events_30d, a.eng_events_90d, a.eng_events_180d) == (4, 5, 7, 8)
    assert (a.eng_active_days_7d, a.eng_active_days_30d, a.eng_active_days_90d, a.eng_active_days_180d) == (3, 4, 6, 7)
    assert (a.eng_referral_90d, a.eng_referrals_total, a.eng_events_total) == (1, 2, 9)
    assert a.eng_login_180d == 3


def test_days_since_and_trend(features) -> None:
    a = features.loc["a"]
    assert a.eng_days_since_login == 1 and a.eng_days_since_any == 1
    assert a.eng_days_since_other == 7 and a.eng_days_since_referral == 82
    # last 30 days: 5 events; the 60 before: 2 (05-15, 04-10) -> b = 1
    assert a.eng_trend_30d == pytest.approx((5 - 1) / (5 + 1))


def test_no_events_means_zero_counts_and_nan_recency(features) -> None:
    q = features.loc["quiet"]
    assert q.eng_events_total == 0 and q.eng_active_days_180d == 0 and q.eng_trend_30d == 0
    assert np.isnan(q.eng_days_since_login) and np.isnan(q.eng_days_since_any)
    assert features.eng_login_7d.dtype == "int64"
