"""Fixtures the probabilistic tests share: lifetimes' CDNOW summary and a Gamma-Gamma fitted on it."""

from __future__ import annotations

import pandas as pd
import pytest

from customer_value.probabilistic.spend import SpendModel
from lifetimes_reference import lifetimes


@pytest.fixture(scope="module")
def cdnow_spend() -> pd.DataFrame:
    """CDNOW summary with the mean repeat-purchase value (weeks)."""
    return lifetimes().datasets.load_cdnow_summary_data_with_monetary_value()


@pytest.fixture(scope="module")
def spend(cdnow_spend) -> SpendModel:
    return SpendModel().fit(cdnow_spend)
