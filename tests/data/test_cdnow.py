"""CDNOW as contract tables: the published counts, canonical dtypes, and no lifetimes import."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from customer_value.data.cdnow import cdnow_tables, write_cdnow
from customer_value.data.tables import TABLE_COLUMNS


@pytest.fixture(scope="module")
def sample():
    return cdnow_tables("sample")


def test_sample_has_the_published_counts(sample):
    tx = sample.transactions
    calibration = tx[tx["occurred_at"] < pd.Timestamp("1997-10-01")]
    assert len(sample.customers) == 2357
    assert len(calibration) == 4814
    assert calibration["customer_id"].nunique() == 2357  # every first purchase is in the period
    assert len(calibration) - calibration["customer_id"].nunique() == 2457


def test_tables_are_canonical(sample):
    for name, frame in sample.items():
        assert list(frame.columns) == list(TABLE_COLUMNS[name]), name
        for column, (dtype, _) in TABLE_COLUMNS[name].items():
            assert frame[column].dtype == dtype, (name, column)
    assert not sample.has("engagement_events") and not sample.has("invoices") and not sample.has("support_tickets")
    assert sample.transactions["transaction_id"].is_unique
    assert sample.customers["customer_id"].is_unique


def test_signup_is_the_first_purchase_and_ids_are_the_original_ones(sample):
    first = sample.transactions.groupby("customer_id")["occurred_at"].min()
    signup = sample.customers.set_index("customer_id")["signup_at"]
    assert signup.equals(first.loc[signup.index])
    row = sample.transactions.iloc[0]
    assert (row["customer_id"], row["transaction_id"], row["amount"]) == ("00004", "00004-19970101", 29.33)


def test_same_day_purchases_are_merged():
    master = cdnow_tables("master")
    assert len(master.customers) == 23570
    tx = master.transactions.set_index("transaction_id")
    assert tx.loc["00002-19970112", "amount"] == pytest.approx(89.0)  # 12.00 + 77.00 on one day
    assert not master.transactions.duplicated(["customer_id", "occurred_at"]).any()


def test_write_cdnow_writes_only_the_tables_it_has(tmp_path, sample):
    paths = write_cdnow(tmp_path, "sample")
    assert set(paths) == {"customers", "transactions"}
    pd.testing.assert_frame_equal(pd.read_parquet(paths["transactions"]), sample.transactions)


def test_converting_does_not_import_lifetimes():
    code = ("import sys; from customer_value.data.cdnow import cdnow_tables; cdnow_tables(); "
            "assert 'lifetimes' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match="kind"):
        cdnow_tables("full")  # type: ignore[arg-type]
