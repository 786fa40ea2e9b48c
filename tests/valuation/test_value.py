"""The ``boosted`` combination: a gradient-boosted margin, fed by the churn probability, in the value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from customer_value.models.margin import CHURN_FEATURE
from customer_value.models.value import BoostedPredictions, ValueModel

AS_OF = "2024-07-01"  # the date of the value_parts fixture (conftest.py)


class _Churn:
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.clip(1.0 - X["bgnbd_p_alive"].to_numpy(dtype=float) * 0.8, 0.0, 1.0)


class _Cost:
    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.full(len(X), 12.0)


class _Margin:
    """Records what it was given; its margin grows with past purchases and falls with churn."""

    feature_names_ = ["frequency", CHURN_FEATURE]

    def __init__(self) -> None:
        self.seen: list[pd.DataFrame] = []

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        self.seen.append(X)
        return 40.0 * X["frequency"].to_numpy(dtype=float) * (1.0 - X[CHURN_FEATURE].to_numpy(dtype=float)) - 1.0


@pytest.fixture(scope="module")
def parts(value_parts):
    return value_parts


def _model(parts, margin) -> ValueModel:
    settings, features, purchases, spend = parts
    return ValueModel(settings, purchases, spend, _Churn(), _Cost(), margin, churn_adjustment="boosted").fit(features)


def test_boosted_margin_enters_the_value_with_the_churn_probability(parts):
    settings, features, *_ = parts
    margin_model = _Margin()
    model = _model(parts, margin_model)
    out = model.predict(features, AS_OF)
    fed = margin_model.seen[-1]
    np.testing.assert_allclose(fed[CHURN_FEATURE].to_numpy(), out["churn_probability"].to_numpy())
    boosted = np.clip(margin_model.predict(fed), 0.0, None)  # never negative
    np.testing.assert_allclose(out["boosted_expected_margin"], boosted)
    tx = out["expected_transactions"].to_numpy()
    spread_known = tx > 1e-12
    np.testing.assert_allclose(out["expected_margin"][spread_known], boosted[spread_known])
    revenue = out["expected_margin"] / np.clip(out["margin_ratio"], 0.05, None)
    np.testing.assert_allclose(out["expected_revenue"], revenue)
    np.testing.assert_allclose(out["adjusted_expected_transactions"], revenue / out["expected_order_value"])
    value = out["discounted_expected_margin"] - out["discounted_expected_cost_to_serve"] + out["expected_referral_value"]
    np.testing.assert_allclose(out["customer_value"], value)
    assert (out["discounted_expected_margin"] <= out["expected_margin"] + 1e-9).all()


def test_other_horizons_follow_bgnbd_timing_and_reuse_the_boosted_predictions(parts):
    settings, features, *_ = parts
    model = _model(parts, _Margin())
    at_h = model.predict(features, AS_OF)
    longer = model.predict(features, AS_OF, horizon_days=3 * settings.horizon_days)
    tx_h, tx_3h = at_h["expected_transactions"].to_numpy(), longer["expected_transactions"].to_numpy()
    known = tx_h > 1e-12
    np.testing.assert_allclose(longer["expected_margin"][known],
                               at_h["boosted_expected_margin"][known] * tx_3h[known] / tx_h[known])
    reused = BoostedPredictions.from_scores(at_h)
    assert reused.drain_probability is None  # no drain model here
    totals = model.total_value_by_horizon(features, [settings.horizon_days, 3 * settings.horizon_days], reused)
    assert totals.loc[settings.horizon_days] == pytest.approx(at_h["customer_value"].sum())
    assert totals.loc[3 * settings.horizon_days] == pytest.approx(longer["customer_value"].sum())


def test_without_a_margin_model_boosted_is_the_survival_adjustment(parts):
    settings, features, purchases, spend = parts
    boosted = ValueModel(settings, purchases, spend, _Churn(), _Cost(), None, churn_adjustment="boosted").fit(features)
    survival = ValueModel(settings, purchases, spend, _Churn(), _Cost(), None, churn_adjustment="survival").fit(features)
    pd.testing.assert_frame_equal(boosted.predict(features, AS_OF), survival.predict(features, AS_OF))
    assert "boosted_expected_margin" not in boosted.predict(features, AS_OF)
