"""RFM summary: lifetimes' golden CDNOW values, agreement with lifetimes' helper, our conventions."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from customer_value.config import Settings
from customer_value.data.tables import Tables
from customer_value.features import build_features, rfm_summary
from feature_worlds import AS_OF, make_tables

CDNOW_AS_OF = dt.date(1997, 10, 1)  # lifetimes' summary uses observation_period_end 1997-09-30


def _lifetimes_datasets() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("lifetimes")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent / "datasets"


def _raw_cdnow() -> pd.DataFrame:
    """CDNOW_sample.txt: customer id (master file), customer index 1..2357, date, CDs, dollars."""
    return pd.read_csv(
        _lifetimes_datasets() / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["master_id", "id", "date", "cds", "amount"],
        dtype={"master_id": str, "id": str, "date": str},
    )


def _local_cdnow_tables() -> Tables:
    raw = _raw_cdnow()
    raw["occurred_at"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    raw["customer_id"] = raw["id"].astype(int).astype(str)
    customers = raw.groupby("customer_id", as_index=False).occurred_at.min().rename(columns={"occurred_at": "signup_at"})
    transactions = raw.assign(transaction_id=[f"t{i}" for i in range(len(raw))])
    return make_tables(
        customers=customers.to_dict("records"),
        transactions=transactions[["transaction_id", "customer_id", "occurred_at", "amount"]].to_dict("records"),
    )


@pytest.fixture(scope="module")
def cdnow() -> Tables:
    """The CDNOW sample as contract tables, ids = lifetimes' summary ids (1..2357).

    Uses the project's adapter when it exists (mapping master ids to the sample's index)."""
    try:
        from customer_value.data.cdnow import cdnow_tables
    except ImportError:
        return _local_cdnow_tables()
    tables = cdnow_tables("sample")
    if set(tables.customers.customer_id) != {str(i) for i in range(1, 2358)}:
        raw = _raw_cdnow()
        mapping = dict(zip(raw.master_id, raw.id.astype(int).astype(str)))
        mapping |= {k.lstrip("0"): v for k, v in mapping.items()}
        remap = lambda f: f.assign(customer_id=f.customer_id.map(mapping).astype("str"))  # noqa: E731
        tables = Tables.from_frames(customers=remap(tables.customers), transactions=remap(tables.transactions))
    return tables


@pytest.mark.parametrize("order", ["as shipped", "sorted by customer and time"])
def test_cdnow_matches_lifetimes_golden_summary(cdnow: Tables, order: str) -> None:
    """As shipped (ids in numeric, not string, order) the Ibis expression runs; sorted, the linear pass."""
    golden = pd.read_csv(_lifetimes_datasets() / "cdnow_customers_summary.csv")
    golden.index = golden["ID"].astype(str)
    if order != "as shipped":
        tx = cdnow.transactions.sort_values(["customer_id", "occurred_at"], kind="stable").reset_index(drop=True)
        cdnow = Tables.from_frames(customers=cdnow.customers, transactions=tx)
    ours = rfm_summary(cdnow, CDNOW_AS_OF, Settings(time_unit="weeks"))
    assert len(ours) == len(golden) == 2357
    ours = ours.loc[golden.index]
    assert (ours.frequency.to_numpy() == golden.frequency.to_numpy()).all()
    np.testing.assert_allclose(ours.recency, golden.recency, atol=0.01)
    np.testing.assert_allclose(ours["T"], golden["T"], atol=0.01)


def test_matches_lifetimes_helper_in_days(world: Tables) -> None:
    """Same data (purchases only, before as_of): frequency, recency, T and monetary_value agree
    with ``summary_data_from_transaction_data`` for every customer with a purchase."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes.utils import summary_data_from_transaction_data

    d = pd.Timestamp(AS_OF)
    tx = world.transactions
    purchases = tx[(tx.amount > 0) & (tx.occurred_at < d) & tx.customer_id.isin(world.customers.customer_id[world.customers.signup_at < d])]
    tables = Tables.from_frames(customers=world.customers, transactions=purchases)
    theirs = summary_data_from_transaction_data(
        purchases, "customer_id", "occurred_at", monetary_value_col="amount",
        observation_period_end=d - pd.Timedelta(days=1), freq="D",
    )
    ours = rfm_summary(tables, AS_OF, Settings()).loc[theirs.index]
    assert (ours.frequency.to_numpy() == theirs.frequency.to_numpy()).all()
    np.testing.assert_allclose(ours.recency, theirs.recency)
    np.testing.assert_allclose(ours["T"], theirs["T"])
    np.testing.assert_allclose(ours.monetary_value, theirs.monetary_value)


def test_conventions_refunds_same_day_merging_and_no_purchase() -> None:
    tables = make_tables(
        customers=[
            {"customer_id": "a", "signup_at": "2024-01-01"},
            {"customer_id": "b", "signup_at": "2024-03-01 12:00"},  # never buys
            {"customer_id": "c", "signup_at": "2024-06-30 23:00"},
            {"customer_id": "late", "signup_at": "2024-07-01"},  # signs up at as_of: not scored
        ],
        transactions=[
            {"transaction_id": "1", "customer_id": "a", "occurred_at": "2024-01-10 09:00", "amount": 100.0},
            {"transaction_id": "2", "customer_id": "a", "occurred_at": "2024-01-10 18:00", "amount": 20.0},  # same day
            {"transaction_id": "3", "customer_id": "a", "occurred_at": "2024-02-09 10:00", "amount": 50.0},
            {"transaction_id": "4", "customer_id": "a", "occurred_at": "2024-02-20 10:00", "amount": -10.0},  # refund
            {"transaction_id": "5", "customer_id": "a", "occurred_at": "2024-03-10 10:00", "amount": 30.0, "gross_margin": 3.0},
            {"transaction_id": "6", "customer_id": "a", "occurred_at": "2024-07-01 00:00", "amount": 999.0},  # future
            {"transaction_id": "7", "customer_id": "b", "occurred_at": "2024-04-01", "amount": -5.0},  # refund only
        ],
    )
    s = rfm_summary(tables, "2024-07-01", Settings(margin_rate=0.5))
    assert list(s.index) == ["a", "b", "c"]
    a, b, c = s.loc["a"], s.loc["b"], s.loc["c"]
    assert a.frequency == 2  # purchase days 01-10 (merged), 02-09, 03-10; the refund is no purchase
    assert a.recency == 60  # 2024-01-10 -> 2024-03-10
    assert a["T"] == 172  # 2024-01-10 -> 2024-06-30 (the last day of history)
    assert a.monetary_value == pytest.approx((50 - 10 + 30) / 2)  # the refund lowers repeat spend
    assert a.revenue == pytest.approx(190.0)
    assert a.margin == pytest.approx((100 + 20 + 50 - 10) * 0.5 + 3.0)
    assert a.first_purchase_at == pd.Timestamp("2024-01-10 09:00")
    assert a.last_purchase_at == pd.Timestamp("2024-03-10 10:00")
    assert (b.frequency, b.recency, b.monetary_value) == (0, 0, 0)
    assert b["T"] == 121  # no purchase: exposure counted from the signup day 2024-03-01
    assert pd.isna(b.first_purchase_at) and b.revenue == -5.0
    assert c["T"] == 0

    weekly = rfm_summary(tables, "2024-07-01", Settings(time_unit="weeks")).loc["a"]
    assert weekly.recency == pytest.approx(60 / 7) and weekly["T"] == pytest.approx(172 / 7)
    assert weekly.frequency == 2 and weekly.monetary_value == pytest.approx(35.0)


def test_rfm_feature_columns() -> None:
    tables = make_tables(
        customers=[{"customer_id": "a", "signup_at": "2023-01-01"}, {"customer_id": "z", "signup_at": "2023-01-01"}],
        transactions=[
            {"transaction_id": "1", "customer_id": "a", "occurred_at": "2023-06-01", "amount": 10.0},
            {"transaction_id": "2", "customer_id": "a", "occurred_at": "2024-05-01 12:00", "amount": 40.0},
            {"transaction_id": "3", "customer_id": "a", "occurred_at": "2024-06-21", "amount": -4.0},
            {"transaction_id": "4", "customer_id": "a", "occurred_at": "2024-06-30 12:00", "amount": 5.0},
        ],
    )
    f = build_features(tables, "2024-07-01", Settings()).set_index("customer_id")
    a, z = f.loc["a"], f.loc["z"]
    assert (a.purchases_to_date, a.refunds_to_date, a.refund_amount_to_date) == (3, 1, 4.0)
    assert (a.revenue_30d, a.purchases_30d) == (1.0, 1)
    assert (a.revenue_90d, a.purchases_90d) == (41.0, 2)
    assert (a.revenue_365d, a.purchases_365d) == (41.0, 2)  # 2023-06-01 is 396 days back
    assert a.days_since_last_purchase == pytest.approx(0.5)
    assert a.days_since_first_purchase == pytest.approx((pd.Timestamp("2024-07-01") - pd.Timestamp("2023-06-01")).days)
    assert (z.frequency, z.purchases_to_date, z.revenue_to_date, z.revenue_365d) == (0, 0, 0.0, 0.0)
    assert np.isnan(z.days_since_last_purchase)
    years = (pd.Timestamp("2024-07-01") - pd.Timestamp("2023-01-01")).days / 365.25  # per year of tenure
    assert a.purchases_to_date_per_year == pytest.approx(3 / years)
    assert a.revenue_to_date_per_year == pytest.approx(a.revenue_to_date / years)
    assert (z.purchases_to_date_per_year, z.revenue_to_date_per_year) == (0.0, 0.0)
