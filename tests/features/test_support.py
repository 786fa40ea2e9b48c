"""Support features: channels, windows, escalations, satisfaction known only once resolved."""

from __future__ import annotations

import numpy as np
import pytest

from customer_value.config import Settings
from customer_value.features import build_features
from feature_worlds import make_tables


def _tk(i: str, opened: str, channel: str, minutes: float, escalated: bool = False, satisfaction: int | None = None,
        resolved: str | None = None) -> dict:
    return {"ticket_id": i, "customer_id": "a", "opened_at": opened, "channel": channel, "handle_minutes": minutes,
            "escalated": escalated, "satisfaction": satisfaction, "resolved_at": resolved}


@pytest.fixture(scope="module")
def features():
    tables = make_tables(
        customers=[{"customer_id": "a", "signup_at": "2022-01-01"}, {"customer_id": "calm", "signup_at": "2022-01-01"}],
        transactions=[],
        support_tickets=[
            _tk("old", "2023-01-01", "email", 10.0, satisfaction=5, resolved="2023-01-02"),  # > 365 days back
            _tk("chat", "2024-05-01", "chat", 20.0, escalated=True, satisfaction=1, resolved="2024-05-03"),
            _tk("phone", "2024-06-20", "phone", 30.0, satisfaction=4, resolved="2024-06-20 12:00"),
            _tk("open", "2024-06-28", "twitter", 5.0, escalated=True),  # unknown channel -> other; open
            _tk("resolved_later", "2024-06-29", "email", 7.0, satisfaction=1, resolved="2024-07-02"),  # open as of
            _tk("future", "2024-07-01", "phone", 99.0, escalated=True, satisfaction=1, resolved="2024-07-01"),
        ],
    )
    return build_features(tables, "2024-07-01", Settings()).set_index("customer_id")


def test_counts_minutes_and_windows(features) -> None:
    a = features.loc["a"]
    assert (a.sup_tickets, a.sup_tickets_30d, a.sup_tickets_90d, a.sup_tickets_365d) == (5, 3, 4, 4)
    assert (a.sup_tickets_email, a.sup_tickets_chat, a.sup_tickets_phone, a.sup_tickets_other) == (2, 1, 1, 1)
    assert (a.sup_minutes, a.sup_minutes_30d, a.sup_minutes_365d) == (72.0, 42.0, 62.0)
    assert (a.sup_minutes_email, a.sup_minutes_chat, a.sup_minutes_phone, a.sup_minutes_other) == (17.0, 20.0, 30.0, 5.0)
    assert (a.sup_escalations, a.sup_escalations_30d, a.sup_escalations_365d) == (2, 1, 2)


def test_satisfaction_known_only_when_resolved_before_as_of(features) -> None:
    a = features.loc["a"]
    assert a.sup_rated == 3  # old, chat, phone; resolved_later's score is not known yet
    assert a.sup_satisfaction_mean == pytest.approx((5 + 1 + 4) / 3)
    assert a.sup_low_satisfaction_share == pytest.approx(1 / 3)
    assert a.sup_open_tickets == 2
    assert a.sup_resolution_days_mean == pytest.approx((1 + 2 + 0.5) / 3)
    assert a.sup_days_since_last_ticket == pytest.approx(2.0)


def test_customer_without_tickets(features) -> None:
    c = features.loc["calm"]
    assert (c.sup_tickets, c.sup_minutes, c.sup_open_tickets, c.sup_rated) == (0, 0.0, 0, 0)
    assert np.isnan(c.sup_satisfaction_mean) and np.isnan(c.sup_days_since_last_ticket)


def test_per_year_rates_divide_the_totals_by_the_tenure(features) -> None:
    """Totals to date over the years since signup: what a tree can carry to customers older than
    any it was trained on (2022-01-01 to 2024-07-01 is 912 days)."""
    years = 912 / 365.25
    a, c = features.loc["a"], features.loc["calm"]
    assert a.sup_tickets_per_year == pytest.approx(5 / years)
    assert a.sup_minutes_per_year == pytest.approx(72.0 / years)
    assert a.sup_escalations_per_year == pytest.approx(2 / years)
    assert (c.sup_tickets_per_year, c.sup_minutes_per_year, c.sup_escalations_per_year) == (0.0, 0.0, 0.0)


def test_a_new_customers_rate_is_not_extrapolated_from_a_few_days() -> None:
    """Tenure counts as at least 30 days: a ticket on day 3 is 12 a year, not 120."""
    tables = make_tables(
        customers=[{"customer_id": "a", "signup_at": "2024-06-28"}],
        transactions=[],
        support_tickets=[_tk("first", "2024-06-29", "chat", 12.0)],
    )
    a = build_features(tables, "2024-07-01", Settings()).set_index("customer_id").loc["a"]
    assert a.sup_tickets_per_year == pytest.approx(365.25 / 30)
    assert a.sup_minutes_per_year == pytest.approx(12.0 * 365.25 / 30)
