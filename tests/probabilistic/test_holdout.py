"""Calibration/holdout summaries from a transaction log."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from customer_value.probabilistic.holdout import calibration_holdout_summary
from lifetimes_reference import lifetimes


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    """lifetimes' cdnow_customers_summary: 2357 customers, weeks, as of 1997-10-01."""
    return lifetimes().datasets.load_cdnow_summary(index_col=[0])


def test_calibration_holdout_summary_reproduces_cdnow_summary(cdnow):
    import lifetimes

    path = os.path.join(os.path.dirname(lifetimes.__file__), "datasets", "CDNOW_sample.txt")
    tx = pd.read_csv(path, sep=r"\s+", header=None, names=["cust", "id", "date", "cds", "amount"], dtype={"date": str})
    tx["date"] = pd.to_datetime(tx["date"], format="%Y%m%d")
    summary = calibration_holdout_summary(tx, "1997-09-30", "1998-06-30", customer_id_col="id", monetary_value_col="amount")
    joined = summary.join(cdnow, how="inner")
    assert len(joined) == len(cdnow) == 2357
    assert (joined["frequency_cal"] == joined["frequency"]).all()
    assert np.allclose(joined["recency_cal"], joined["recency"], atol=0.006)
    assert np.allclose(joined["T_cal"], joined["T"], atol=0.006)
    assert (summary["duration_holdout"] == 39).all()
    assert summary["frequency_holdout"].sum() > 0
