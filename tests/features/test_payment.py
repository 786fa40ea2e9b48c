"""Payment features: settled vs open as of as_of, lateness, overdue, failed attempts."""

from __future__ import annotations

import numpy as np
import pytest

from customer_value.config import Settings
from customer_value.features import build_features
from feature_worlds import make_tables


def _inv(i: str, issued: str, due: str, paid: str | None, amount: float, failed: int | None = None) -> dict:
    return {"invoice_id": i, "customer_id": "a", "issued_at": issued, "due_at": due, "amount": amount,
            "paid_at": paid, "failed_payment_attempts": failed}


@pytest.fixture(scope="module")
def features():
    tables = make_tables(
        customers=[{"customer_id": "a", "signup_at": "2023-01-01"}, {"customer_id": "card", "signup_at": "2023-01-01"}],
        transactions=[
            {"transaction_id": "1", "customer_id": "a", "occurred_at": "2024-01-01", "amount": 400.0},
            {"transaction_id": "2", "customer_id": "a", "occurred_at": "2024-02-01", "amount": -100.0},
        ],
        invoices=[
            _inv("on_time", "2024-01-01", "2024-01-15", "2024-01-10", 100.0, failed=0),
            _inv("late", "2024-02-01", "2024-02-15", "2024-02-19 12:00", 50.0, failed=2),  # 4.5 days late
            _inv("overdue", "2024-06-01", "2024-06-15", None, 30.0, failed=1),  # failed attempts unknown: unpaid
            _inv("paid_after", "2024-06-10", "2024-06-24", "2024-07-05", 20.0, failed=5),  # open as of as_of
            _inv("not_due", "2024-06-25", "2024-07-09", None, 10.0),
            _inv("future", "2024-07-01", "2024-07-15", "2024-07-02", 999.0, failed=9),
        ],
    )
    return build_features(tables, "2024-07-01", Settings()).set_index("customer_id")


def test_invoice_counts_and_settlement(features) -> None:
    a = features.loc["a"]
    assert (a.pay_invoices, a.pay_invoices_90d, a.pay_invoices_365d) == (5, 3, 5)
    assert a.pay_invoiced_amount == 210.0
    assert (a.pay_settled, a.pay_settled_late, a.pay_share_paid_late) == (2, 1, 0.5)
    assert a.pay_days_late_mean == pytest.approx(4.5 / 2) and a.pay_days_late_max == pytest.approx(4.5)
    years = 547 / 365.25  # 2023-01-01 to 2024-07-01
    assert a.pay_invoices_per_year == pytest.approx(5 / years)
    assert a.pay_settled_late_per_year == pytest.approx(1 / years)


def test_open_and_overdue_as_of(features) -> None:
    a = features.loc["a"]
    assert (a.pay_open, a.pay_open_amount) == (3, 60.0)  # overdue, paid_after (paid later), not_due
    assert (a.pay_overdue, a.pay_overdue_amount) == (2, 50.0)  # overdue, paid_after (due 06-24)


def test_failed_attempts_only_for_settled_invoices(features) -> None:
    a = features.loc["a"]
    assert a.pay_failed_attempts == 2 and a.pay_failed_attempts_mean == pytest.approx(1.0)
    assert a.pay_failed_attempts_per_year == pytest.approx(2 / (547 / 365.25))


def test_share_paid_by_invoice_and_recency(features) -> None:
    a = features.loc["a"]
    assert a.pay_share_paid_by_invoice == pytest.approx(210.0 / 400.0)
    assert a.pay_days_since_last_invoice == pytest.approx(6.0)


def test_customer_without_invoices(features) -> None:
    c = features.loc["card"]
    assert (c.pay_invoices, c.pay_open, c.pay_failed_attempts, c.pay_overdue_amount) == (0, 0, 0, 0.0)
    assert np.isnan(c.pay_share_paid_late) and np.isnan(c.pay_days_since_last_invoice)
    assert np.isnan(c.pay_share_paid_by_invoice)  # no purchases either
