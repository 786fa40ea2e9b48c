"""Indirect pools allocate the pool, never more (contract section 8), and the activity columns.

On a growing simulated world, for targets over ``[D, D + H)`` and the historical trailing window
``[D − H, D)``, each pool's total over the returned rows is exactly ``annual_amount × H / 365``;
the activity costs add up to the components and to ``cost_to_serve`` for every row. A small
hand-made world pins the population rule (who shares a pool) and the empty-driver rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pandas as pd
import pytest

from customer_value.config import Settings
from customer_value.features import connect, features_from_sources, pool_rates, registered, targets_from_sources
from customer_value.features.costing import DIRECT_ACTIVITIES, activity_cost_columns, cost_columns
from customer_value.simulation.world import simulate_world
from feature_worlds import make_tables

POOLS = {
    "indirect_pools": [
        {"name": "platform", "annual_amount": 120000, "driver": "active_customer_months"},
        {"name": "support_desk", "annual_amount": 50000, "driver": "support_minutes"},
    ]
}
DATES = ["2022-06-02", "2023-01-01", "2023-09-15", "2024-07-01"]  # the simulated data end 2025-07-01
HORIZONS = [90, 365]


def _settings(horizon_days: int = 365) -> Settings:
    return Settings.model_validate({"horizon_days": horizon_days, "costs": POOLS})


@pytest.fixture(scope="module")
def src() -> Iterator:
    tables = simulate_world(2000, 5).tables
    with registered(tables, connect("duckdb")) as sources:
        yield sources


@pytest.fixture(scope="module")
def targets(src) -> dict[tuple[str, int], pd.DataFrame]:
    settings = _settings()
    return {(d, h): targets_from_sources(src, d, settings, h) for d in DATES for h in HORIZONS}


@pytest.fixture(scope="module")
def features(src) -> dict[tuple[str, int], pd.DataFrame]:
    return {(d, h): features_from_sources(src, d, _settings(h)) for d in DATES for h in HORIZONS}


def _window_amount(annual_amount: float, days: int) -> float:
    return annual_amount * days / 365


def test_the_world_grows_so_a_trailing_rate_over_allocates(src, targets) -> None:
    """Not a vacuous world: section 3's rate of the year before D, applied to the next year's
    units, allocates far more than a year's pool (what the targets did before section 8)."""
    settings = _settings()
    as_of = DATES[0]
    y = targets[(as_of, 365)]
    rates = pool_rates(src, dt.datetime.fromisoformat(as_of), settings)
    assert y.customer_id.size > 100
    assert rates["platform"] * y.pool_units_platform.sum() > 2 * 120000
    assert rates["support_desk"] * y.pool_units_support_desk.sum() > 1.5 * 50000


@pytest.mark.parametrize("horizon", HORIZONS)
@pytest.mark.parametrize("as_of", DATES)
def test_targets_allocate_each_pool_exactly(targets, as_of: str, horizon: int) -> None:
    y = targets[(as_of, horizon)]
    for pool in _settings().costs.indirect_pools:
        allocated = y[f"cost_pool_{pool.name}"]
        assert (allocated >= 0).all()
        assert allocated.sum() == pytest.approx(_window_amount(pool.annual_amount, horizon), rel=1e-6)
        # the share follows the driver: equal units, equal cost
        units = y[f"pool_units_{pool.name}"]
        per_unit = allocated[units > 0] / units[units > 0]
        assert per_unit.max() == pytest.approx(per_unit.min(), rel=1e-6)
        assert (allocated[units == 0] == 0).all()


@pytest.mark.parametrize("horizon", HORIZONS)
@pytest.mark.parametrize("as_of", DATES)
def test_the_trailing_window_allocates_each_pool_exactly(features, as_of: str, horizon: int) -> None:
    x = features[(as_of, horizon)]
    for pool in _settings().costs.indirect_pools:
        allocated = x[f"hist_cost_pool_{pool.name}"]
        assert allocated.sum() == pytest.approx(_window_amount(pool.annual_amount, horizon), rel=1e-6)


@pytest.mark.parametrize("as_of", DATES)
def test_the_trailing_year_is_section_3(src, features, as_of: str) -> None:
    """Over the 365 days before as_of the allocation is section 3's rate_p × driver units."""
    x = features[(as_of, 365)]
    rates = pool_rates(src, dt.datetime.fromisoformat(as_of), _settings())
    for name, rate in rates.items():
        expected = rate * x[f"hist_pool_units_{name}"]
        pd.testing.assert_series_equal(x[f"hist_cost_pool_{name}"], expected, check_names=False, rtol=1e-9)


def _check_sums(frame: pd.DataFrame, settings: Settings, prefix: str = "") -> None:
    def cols(names: list[str]) -> pd.DataFrame:
        return frame[[prefix + c for c in names]]

    total = frame[prefix + "cost_to_serve"]
    assert (cols(activity_cost_columns(settings)).sum(axis=1) - total).abs().max() < 0.005
    assert (cols(cost_columns(settings)).sum(axis=1) - total).abs().max() < 0.005
    for component in ("cost_support", "cost_orders_and_fees", "cost_invoices_and_late"):
        parts = [a.column for a in DIRECT_ACTIVITIES if a.component == component]
        assert (cols(parts).sum(axis=1) - frame[prefix + component]).abs().max() < 0.005, component
    # every cost_* column is money: the volumes are named without the prefix
    money = {prefix + c for c in [*activity_cost_columns(settings), *cost_columns(settings), "cost_to_serve"]}
    assert {c for c in frame.columns if c.startswith(prefix + "cost_")} == money


@pytest.mark.parametrize("horizon", HORIZONS)
@pytest.mark.parametrize("as_of", DATES)
def test_activities_add_up_to_components_and_total(targets, features, as_of: str, horizon: int) -> None:
    settings = _settings(horizon)
    y = targets[(as_of, horizon)]
    _check_sums(y, settings)
    assert y.orders.equals(y.transactions)
    assert (y.net_value - (y.margin - y.cost_to_serve)).abs().max() < 1e-8
    x = features[(as_of, horizon)]  # the trailing window's components (its activities are not features)
    assert (x[["hist_" + c for c in cost_columns(settings)]].sum(axis=1) - x.hist_cost_to_serve).abs().max() < 0.005
    assert (x.historical_value - (x.hist_margin - x.hist_cost_to_serve)).abs().max() < 1e-8
    # and something is being summed: every activity has a cost somewhere in the year's window
    if horizon == 365:
        assert (y[activity_cost_columns(settings)].sum() > 0).all()


def test_activity_costs_are_rate_times_volume(targets) -> None:
    rates = _settings().costs
    y = targets[("2023-09-15", 365)]
    pairs = {
        **{f"cost_support_{c}": (f"support_minutes_{c}", rate) for c, rate in rates.minute_rate.items()},
        "cost_escalations": ("escalations", rates.escalation_cost),
        "cost_orders": ("orders", rates.order_cost),
        "cost_payment_fees": ("order_amount", rates.payment_fee_rate),
        "cost_invoices": ("invoices", rates.invoice_cost),
        "cost_late_payments": ("late_invoices", rates.late_payment_cost),
    }
    for cost, (volume, rate) in pairs.items():
        assert (y[cost] - y[volume] * rate).abs().max() < 1e-6, cost


# --- who shares a pool, and an empty driver -------------------------------------------------

AS_OF = "2024-01-01"


def _tx(i: str, who: str, at: str) -> dict:
    return {"transaction_id": i, "customer_id": who, "occurred_at": at, "amount": 10.0}


SMALL = make_tables(
    customers=[
        {"customer_id": "A", "signup_at": "2023-06-01"},
        {"customer_id": "B", "signup_at": "2023-06-01"},
        {"customer_id": "N", "signup_at": "2024-01-15"},  # signs up inside the target window
    ],
    transactions=[
        _tx("a1", "A", "2023-11-03"), _tx("b1", "B", "2023-12-03"),  # trailing window: A Nov, B Dec
        _tx("a2", "A", "2024-01-05"),  # target window: A is active in January only
        _tx("n1", "N", "2024-01-20"), _tx("n2", "N", "2024-02-20"), _tx("n3", "N", "2024-03-20"),
    ],
)
SMALL_SETTINGS = _settings(90)


def test_customers_signing_up_inside_the_window_take_no_share() -> None:
    """Targets as of D spread each pool over the scored customers (signup_at < D) only: N's three
    active months count nowhere, A's one month carries the whole quarter's platform amount; no
    support minute in the window means the support desk allocates nothing (zeros, not nulls)."""
    with registered(SMALL, connect("duckdb")) as src:
        y = targets_from_sources(src, AS_OF, SMALL_SETTINGS).set_index("customer_id")
        x = features_from_sources(src, "2024-04-01", SMALL_SETTINGS).set_index("customer_id")
    assert list(y.index) == ["A", "B"]
    quarter = 120000 * 90 / 365
    assert y.loc["A", "cost_pool_platform"] == pytest.approx(quarter) and y.loc["B", "cost_pool_platform"] == 0
    assert (y.cost_pool_support_desk == 0).all() and y.cost_pool_support_desk.notna().all()
    assert (y.cost_to_serve == y[cost_columns(SMALL_SETTINGS)].sum(axis=1)).all()
    # the trailing window as of 2024-04-01 covers the same days; N signed up before that date,
    # so N is in those rows and shares the pool: A 1 month, N 3 months
    assert x.loc["A", "hist_cost_pool_platform"] == pytest.approx(quarter / 4)
    assert x.loc["N", "hist_cost_pool_platform"] == pytest.approx(quarter * 3 / 4)
    assert x.loc["B", "hist_cost_pool_platform"] == 0
    assert (x.hist_cost_pool_support_desk == 0).all()
