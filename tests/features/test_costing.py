"""Cost-to-serve (contract sections 3 and 8) against hand-computed values, term by term, to the cent.

Window: as_of 2024-01-01, horizon 91 days -> [2024-01-01, 2024-04-01). Each indirect pool
allocates its amount for the window, annual_amount * 91 / 365, over the population's driver
units in the window (section 8); section 3's per-unit rates of [2023-01-01, 2024-01-01) (2023
has 365 days) are what pool_rates reports.
"""

from __future__ import annotations

import pandas as pd
import pytest

from customer_value.config import IndirectPool, Settings
from customer_value.features import build_features, build_targets, pool_rates
from feature_worlds import make_tables

AS_OF = "2024-01-01"
HORIZON = 91
END = "2024-04-01"

SETTINGS = Settings(
    horizon_days=HORIZON,
    churn_window_days=30,
    margin_rate=0.5,
    costs={
        "indirect_pools": [
            IndirectPool(name="platform", annual_amount=1200.0, driver="active_customer_months"),
            IndirectPool(name="helpdesk", annual_amount=1000.0, driver="support_minutes"),
            IndirectPool(name="payments", annual_amount=600.0, driver="transactions"),
            IndirectPool(name="billing", annual_amount=300.0, driver="invoices"),
        ]
    },
)


def _ticket(i: str, who: str, at: str, channel: str, minutes: float, escalated: bool = False) -> dict:
    return {"ticket_id": i, "customer_id": who, "opened_at": at, "channel": channel, "handle_minutes": minutes,
            "escalated": escalated}


def _tx(i: str, who: str, at: str, amount: float, margin: float | None = None) -> dict:
    return {"transaction_id": i, "customer_id": who, "occurred_at": at, "amount": amount, "gross_margin": margin}


def _inv(i: str, who: str, issued: str, due: str, paid: str | None) -> dict:
    return {"invoice_id": i, "customer_id": who, "issued_at": issued, "due_at": due, "amount": 10.0, "paid_at": paid}


TABLES = make_tables(
    customers=[
        {"customer_id": "A", "signup_at": "2022-06-01"},
        {"customer_id": "B", "signup_at": "2022-06-01"},
        {"customer_id": "C", "signup_at": "2023-12-31 23:59"},  # no activity at all
        {"customer_id": "N", "signup_at": "2024-01-01"},  # signs up at as_of: not in the population
    ],
    transactions=[
        # the rate year 2023: 6 purchases (the refund is no driver unit); A active in Feb, B in Jun
        _tx("p1", "A", "2023-02-01", 10.0), _tx("p2", "A", "2023-02-02", 10.0), _tx("p3", "A", "2023-02-03", 10.0),
        _tx("p4", "B", "2023-06-01", 10.0), _tx("p5", "B", "2023-06-02", 10.0), _tx("p6", "B", "2023-06-03", 10.0),
        _tx("p7", "B", "2023-06-04", -10.0),
        _tx("old", "A", "2022-12-31 23:59", 10.0),  # before the rate year
        # the window
        _tx("w1", "A", "2024-01-01 00:00", 100.0, 40.0),  # at as_of: in the window
        _tx("w2", "A", "2024-03-15", 50.0),  # margin 50 * 0.5
        _tx("w3", "A", "2024-03-20", -30.0, -12.0),  # refund: revenue and margin, no order cost or fee
        _tx("w4", "A", "2024-04-01 00:00", 70.0),  # at the window's end: outside
        _tx("w5", "B", "2024-02-10", 20.0),  # B purchases after the 30-day churn window
    ],
    engagement_events=[
        {"customer_id": "A", "occurred_at": "2023-03-05", "event_type": "login"},  # A active in Mar 2023
        {"customer_id": "A", "occurred_at": "2023-03-06", "event_type": "whatever"},  # same month
        {"customer_id": "A", "occurred_at": "2024-02-10", "event_type": "login"},  # A active in Feb 2024
        {"customer_id": "A", "occurred_at": "2024-04-01", "event_type": "login"},  # outside the window
    ],
    invoices=[
        # rate year: 3 invoices
        _inv("r1", "A", "2023-05-01", "2023-05-15", "2023-05-10"),
        _inv("r2", "B", "2023-07-01", "2023-07-15", "2023-07-10"),
        _inv("r3", "B", "2023-12-31", "2024-01-14", "2024-01-10"),
        # the window, all A's (A issued 6 invoices in the window)
        _inv("on_time", "A", "2024-01-05", "2024-01-19", "2024-01-18"),  # 1.50
        _inv("paid_late", "A", "2024-01-10", "2024-01-24", "2024-02-01"),  # 1.50 + 15
        _inv("overdue_unpaid", "A", "2024-02-01", "2024-02-15", None),  # 1.50 + 15
        _inv("paid_after_end_due_before", "A", "2024-03-10", "2024-03-24", "2024-04-05"),  # 1.50 + 15
        _inv("not_yet_due", "A", "2024-03-25", "2024-04-08", None),  # 1.50
        _inv("paid_after_end_not_due", "A", "2024-03-30", "2024-04-13", "2024-04-02"),  # 1.50
        _inv("issued_at_end", "A", "2024-04-01", "2024-04-15", None),  # outside
    ],
    support_tickets=[
        # rate year: 200 minutes in all
        _ticket("r1", "A", "2023-04-01", "email", 120.0), _ticket("r2", "B", "2023-08-01", "phone", 80.0),
        # the window, A's: 10 + 20 + 10 + 5 + 2 = 47 minutes
        _ticket("e", "A", "2024-01-02", "email", 10.0),  # 10 * 0.80 = 8.00
        _ticket("c", "A", "2024-01-03", "chat", 20.0),  # 20 * 1.00 = 20.00
        _ticket("p", "A", "2024-01-04", "phone", 10.0, escalated=True),  # 10 * 1.50 + 25 = 40.00
        _ticket("o", "A", "2024-01-05", "other", 5.0),  # 5 * 1.00 = 5.00
        _ticket("x", "A", "2024-01-06", "twitter", 2.0),  # unknown channel: other's rate, 2.00
        _ticket("late", "A", "2024-04-01", "phone", 100.0, escalated=True),  # outside
    ],
)

# section 3's pool rates per unit over 2023: 3 active customer-months (A Feb by purchases, A Mar by
# events, B Jun by purchases and a refund), 200 support minutes, 6 purchases, 3 invoices
RATES = {"platform": 1200.0 / 3, "helpdesk": 1000.0 / 200, "payments": 600.0 / 6, "billing": 300.0 / 3}
# section 8: the window's share of each pool, spread over the population's units in the window:
# 4 active customer-months (A 3, B 1), 47 support minutes (all A's), 3 purchases (A 2, B 1),
# 6 invoices (all A's)
YEARS = HORIZON / 365
EXPECTED_A = {
    "revenue": 120.0,
    "margin": 40.0 + 25.0 - 12.0,
    "transactions": 2,
    "churned": 0,
    "cost_support": 8.0 + 20.0 + 40.0 + 5.0 + 2.0,
    "cost_orders_and_fees": 2 * 2.0 + 0.029 * 150.0,
    "cost_invoices_and_late": 6 * 1.5 + 3 * 15.0,
    "cost_pool_platform": 1200.0 * YEARS * 3 / 4,  # Jan (w1), Feb (an event), Mar (w2, w3)
    "cost_pool_helpdesk": 1000.0 * YEARS * 47 / 47,
    "cost_pool_payments": 600.0 * YEARS * 2 / 3,
    "cost_pool_billing": 300.0 * YEARS * 6 / 6,
}
EXPECTED_A["cost_to_serve"] = sum(v for k, v in EXPECTED_A.items() if k.startswith("cost_"))
EXPECTED_A["net_value"] = EXPECTED_A["margin"] - EXPECTED_A["cost_to_serve"]


def test_pool_rates_use_the_year_before_as_of() -> None:
    from customer_value.features import connect, registered

    backend = connect("duckdb")
    with registered(TABLES, backend) as src:
        rates = pool_rates(src, pd.Timestamp(AS_OF).to_pydatetime(), SETTINGS)
    # invoices and tickets make no month active; the 2022-12-31 purchase is before the year
    assert rates == pytest.approx(RATES)


def test_every_activity_to_the_cent() -> None:
    """The section 8 activities of A (the same window as below), cost and volume."""
    a = build_targets(TABLES, AS_OF, SETTINGS).set_index("customer_id").loc["A"]
    expected = {
        "cost_support_email": 8.0, "support_minutes_email": 10.0,
        "cost_support_chat": 20.0, "support_minutes_chat": 20.0,
        "cost_support_phone": 15.0, "support_minutes_phone": 10.0,
        "cost_support_other": 7.0, "support_minutes_other": 7.0,  # "other" and the unknown "twitter"
        "cost_escalations": 25.0, "escalations": 1,
        "cost_orders": 4.0, "orders": 2,
        "cost_payment_fees": 0.029 * 150.0, "order_amount": 150.0,
        "cost_invoices": 9.0, "invoices": 6,
        "cost_late_payments": 45.0, "late_invoices": 3,
        "pool_units_platform": 3, "pool_units_helpdesk": 47.0, "pool_units_payments": 2, "pool_units_billing": 6,
    }
    for column, value in expected.items():
        assert a[column] == pytest.approx(value, abs=0.005), column
    assert a.cost_support == pytest.approx(a[["cost_support_email", "cost_support_chat", "cost_support_phone",
                                              "cost_support_other", "cost_escalations"]].sum())
    assert a.cost_orders_and_fees == pytest.approx(a.cost_orders + a.cost_payment_fees)
    assert a.cost_invoices_and_late == pytest.approx(a.cost_invoices + a.cost_late_payments)


def test_every_cost_term_to_the_cent() -> None:
    targets = build_targets(TABLES, AS_OF, SETTINGS).set_index("customer_id")
    assert list(targets.index) == ["A", "B", "C"]
    a = targets.loc["A"]
    for column, value in EXPECTED_A.items():
        assert a[column] == pytest.approx(value, abs=0.005), column
    # 75 + 8.35 + 54 + 224.38 + 249.32 + 99.73 + 74.79
    assert round(a.cost_to_serve, 2) == 785.57

    b = targets.loc["B"]  # one purchase of 20 in the window, after the churn window; Feb active
    assert b.churned == 1 and b.transactions == 1
    assert b.cost_orders_and_fees == pytest.approx(2.0 + 0.029 * 20.0)
    assert b.cost_pool_platform == pytest.approx(1200.0 * YEARS / 4)
    assert b.cost_pool_payments == pytest.approx(600.0 * YEARS / 3)
    assert b.cost_invoices_and_late == 0.0 and b.cost_support == 0.0
    assert b.cost_pool_helpdesk == 0.0 and b.cost_pool_billing == 0.0
    # each pool allocates exactly its amount for the window
    for pool in SETTINGS.costs.indirect_pools:
        assert targets[f"cost_pool_{pool.name}"].sum() == pytest.approx(pool.annual_amount * YEARS, rel=1e-9)

    c = targets.loc["C"]
    assert c.churned == 1 and c.transactions == 0
    assert (c[[col for col in targets.columns if col != "churned"]] == 0).all()


def test_columns_and_other_horizons() -> None:
    targets = build_targets(TABLES, AS_OF, SETTINGS, horizon_days=10)  # [2024-01-01, 2024-01-11)
    assert list(targets.columns) == [
        "customer_id", "revenue", "margin", "transactions", "churned", "cost_support", "cost_orders_and_fees",
        "cost_invoices_and_late", "cost_pool_platform", "cost_pool_helpdesk", "cost_pool_payments",
        "cost_pool_billing", "cost_to_serve", "net_value",
        # section 8 activities (the pools' are above), then the volumes they are priced from
        "cost_support_email", "cost_support_chat", "cost_support_phone", "cost_support_other", "cost_escalations",
        "cost_orders", "cost_payment_fees", "cost_invoices", "cost_late_payments",
        "support_minutes_email", "support_minutes_chat", "support_minutes_phone", "support_minutes_other",
        "escalations", "orders", "order_amount", "invoices", "late_invoices",
        "pool_units_platform", "pool_units_helpdesk", "pool_units_payments", "pool_units_billing",
        "referrals",  # referred sign-ups in the window, per referrer
    ]
    a = targets.set_index("customer_id").loc["A"]
    # A has every driver unit of this window (tickets e c p o x, purchase w1, invoices on_time and
    # paid_late, January active; B's purchase is in February), so A carries each pool's 10 days
    assert a.pool_units_helpdesk == 47.0 and a.pool_units_payments == 1 and a.pool_units_billing == 2
    assert a.pool_units_platform == 1
    assert a.cost_pool_helpdesk == pytest.approx(1000.0 * 10 / 365)
    assert a.cost_pool_payments == pytest.approx(600.0 * 10 / 365)
    assert a.cost_pool_billing == pytest.approx(300.0 * 10 / 365)
    assert a.cost_pool_platform == pytest.approx(1200.0 * 10 / 365)
    # at the end of this window neither invoice is late yet (paid_late is due 01-24)
    assert a.cost_invoices_and_late == pytest.approx(3.0)


def test_historical_cost_features_are_targets_of_the_trailing_window() -> None:
    """hist_* as of D equal the targets of [D - H, D) when there are no pools (with pools they
    differ where the populations do: the targets as of D - H leave out customers who signed up
    inside the window, so they spread the pools over fewer customers)."""
    settings = Settings(horizon_days=HORIZON, margin_rate=0.5)
    features = build_features(TABLES, END, settings).set_index("customer_id")
    targets = build_targets(TABLES, AS_OF, settings).set_index("customer_id")
    hist = features[[c for c in features.columns if c.startswith("hist_")]].rename(columns=lambda c: c[5:])
    common = targets.index
    pd.testing.assert_frame_equal(hist.loc[common], targets[hist.columns], check_dtype=False)
    assert (features.loc[common, "historical_value"] == targets.net_value).all()
    # N signed up on 2024-01-01: in the features' population as of 2024-04-01, not in the targets'
    assert "N" in features.index and "N" not in targets.index
