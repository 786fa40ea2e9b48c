"""Revenue from the purchase and spend models: expected and discounted revenue, margin, intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from customer_value.probabilistic.purchases import PurchaseModel
from customer_value.probabilistic.revenue import predict_revenue, revenue_intervals


@pytest.fixture(scope="module")
def cdnow(cdnow_spend) -> pd.DataFrame:
    return cdnow_spend


def test_predict_revenue_combines_the_models(cdnow, spend):
    purchases = PurchaseModel(time_unit="weeks").fit(cdnow)
    margin = pd.Series(0.25, index=cdnow.index)
    out = predict_revenue(purchases, spend, cdnow, 52, discount_rate=0.1, margin_ratio=margin, intervals=True, n_draws=100)
    assert np.isfinite(out.to_numpy()).all()
    assert np.allclose(out["expected_revenue"], out["expected_transactions"] * out["expected_order_value"])
    assert np.allclose(out["discounted_expected_revenue"], out["discounted_expected_transactions"] * out["expected_order_value"])
    assert np.allclose(out["expected_margin"], 0.25 * out["expected_revenue"])
    assert (out["discounted_expected_revenue"] < out["expected_revenue"]).all()
    assert (out["expected_revenue_lower"] <= out["expected_revenue_upper"]).all()
    inside = (out["expected_revenue_lower"] <= out["expected_revenue"]) & (out["expected_revenue"] <= out["expected_revenue_upper"])
    assert inside.mean() > 0.95
    width = (out["expected_revenue_upper"] - out["expected_revenue_lower"]) / out["expected_revenue"]
    assert 0.01 < width.median() < 1.0
    assert "expected_revenue_lower" not in predict_revenue(purchases, spend, cdnow, 52).columns


def test_revenue_intervals_need_a_covariance(cdnow, spend):
    given = PurchaseModel.from_params({"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4}, time_unit="weeks")
    with pytest.raises(ValueError, match="covariance"):
        revenue_intervals(given, spend, cdnow, 52)
