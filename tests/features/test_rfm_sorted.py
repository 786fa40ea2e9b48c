"""The linear RFM pass for sorted transactions gives exactly the Ibis expression's summary."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from customer_value.config import Settings
from customer_value.data.tables import Tables
from customer_value.features import rfm_summary
from customer_value.features.build import _run, open_sources
from customer_value.features.history import History
from customer_value.features.rfm import SUMMARY_COLUMNS, rfm_table
from customer_value.features import rfm_sorted
from customer_value.features.rfm_sorted import sorted_rfm_summary
from customer_value.units import as_of_datetime
from feature_worlds import make_tables, random_world


def _ibis_summary(tables: Tables, as_of: str, settings: Settings) -> pd.DataFrame:
    with open_sources(tables, "duckdb", only=("customers", "transactions")) as src:
        out = _run(rfm_table(History.of(src, as_of, settings), settings))
    return out.set_index("customer_id")[list(SUMMARY_COLUMNS)]


def _ordered(tables: Tables, how: str) -> Tables:
    tx = tables.transactions
    tx = tx.sort_values(["customer_id", "occurred_at"], kind="stable") if how == "sorted" else tx.sample(frac=1, random_state=1)
    customers = tables.customers.sample(frac=1, random_state=2)  # the population's order must not matter
    return Tables.from_frames(customers=customers.reset_index(drop=True), transactions=tx.reset_index(drop=True))


def _refunds_and_same_day() -> Tables:
    return make_tables(
        customers=[{"customer_id": c, "signup_at": "2024-01-01"} for c in ("a", "b", "c", "d")],
        transactions=[
            {"transaction_id": "1", "customer_id": "a", "occurred_at": "2024-01-10 09:00", "amount": 100.0},
            {"transaction_id": "2", "customer_id": "a", "occurred_at": "2024-01-10 12:00", "amount": -30.0},
            {"transaction_id": "3", "customer_id": "a", "occurred_at": "2024-01-10 18:00", "amount": 20.0},
            {"transaction_id": "4", "customer_id": "a", "occurred_at": "2024-03-10 10:00", "amount": -5.0},
            {"transaction_id": "5", "customer_id": "a", "occurred_at": "2024-03-11 10:00", "amount": 7.0},
            {"transaction_id": "6", "customer_id": "b", "occurred_at": "2024-02-01", "amount": -5.0},
            {"transaction_id": "7", "customer_id": "c", "occurred_at": "2024-06-30 23:59:59", "amount": 9.0},
            {"transaction_id": "8", "customer_id": "c", "occurred_at": "2024-07-01 00:00", "amount": 50.0},
            {"transaction_id": "9", "customer_id": "d", "occurred_at": "2024-08-01", "amount": 50.0},
        ],
    )


@pytest.mark.parametrize("slices", [1, 5])
@pytest.mark.parametrize("unit", ["days", "weeks"])
@pytest.mark.parametrize("as_of", ["2023-06-01", "2024-07-01", "2025-01-01"])
def test_linear_pass_equals_ibis_on_a_random_world(as_of: str, unit: str, slices: int, monkeypatch) -> None:
    """Also cut into slices (one thread each) at customer boundaries, as large inputs are."""
    monkeypatch.setattr(rfm_sorted, "_slice_count", lambda rows: slices)
    settings = Settings(time_unit=unit, margin_rate=0.4)
    tables = _ordered(random_world(n_customers=400, seed=3), "sorted")
    fast = sorted_rfm_summary(tables, as_of_datetime(as_of), settings)
    assert fast is not None
    expected = _ibis_summary(tables, as_of, settings)
    pd.testing.assert_frame_equal(rfm_summary(tables, as_of, settings), expected, check_exact=False, rtol=1e-12, atol=1e-9)
    assert list(fast.index) == sorted(fast.index)


@pytest.mark.parametrize("as_of", ["2024-01-01", "2024-03-11", "2024-07-01", "2024-12-01"])
def test_linear_pass_handles_refunds_same_day_and_the_cut(as_of: str) -> None:
    tables = _refunds_and_same_day()
    settings = Settings()
    assert sorted_rfm_summary(tables, as_of_datetime(as_of), settings) is not None
    pd.testing.assert_frame_equal(rfm_summary(tables, as_of, settings), _ibis_summary(tables, as_of, settings),
                                  check_exact=False, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("slices", [1, 3])
def test_unsorted_transactions_fall_back_to_the_expression(slices: int, monkeypatch) -> None:
    monkeypatch.setattr(rfm_sorted, "_slice_count", lambda rows: slices)
    world = random_world(n_customers=200, seed=4)
    shuffled, ordered = _ordered(world, "shuffled"), _ordered(world, "sorted")
    as_of = dt.datetime(2024, 7, 1)
    assert sorted_rfm_summary(shuffled, as_of, Settings()) is None
    tx = ordered.transactions  # sorted within each slice but not across them
    half = len(tx) // 2
    swapped = pd.concat([tx.iloc[half:], tx.iloc[:half]], ignore_index=True)
    if slices > 1:
        monkeypatch.setattr(rfm_sorted, "_slice_bounds", lambda ids, parts: [0, len(tx) - half, len(tx)])
    assert sorted_rfm_summary(Tables.from_frames(customers=ordered.customers, transactions=swapped), as_of, Settings()) is None
    pd.testing.assert_frame_equal(rfm_summary(shuffled, as_of, Settings()), rfm_summary(ordered, as_of, Settings()),
                                  check_exact=False, rtol=1e-12, atol=1e-9)


def test_no_transactions() -> None:
    tables = make_tables(customers=[{"customer_id": "a", "signup_at": "2024-01-01"}], transactions=[])
    s = rfm_summary(tables, "2024-02-01", Settings())
    assert (s.loc["a", "frequency"], s.loc["a", "T"], s.loc["a", "revenue"]) == (0, 30.0, 0.0)
    assert pd.isna(s.loc["a", "first_purchase_at"])
