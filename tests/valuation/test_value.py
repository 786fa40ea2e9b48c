"""The value combination: the survival adjustment, the ``boosted`` combination (a gradient-boosted
margin, fed by the churn probability, in the value), and the drain model in the score rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from customer_value.boosted.margin import CHURN_FEATURE
from customer_value.valuation.value import BoostedPredictions, ValueModel, survival_factor

AS_OF = "2024-07-01"  # the date of the value_parts fixture (conftest.py)


def test_survival_adjustment_is_neutral_when_models_agree():
    a = np.array([0.9, 0.5, 0.2])
    q = np.array([0.3, 0.6, 0.9])
    churn_agreeing = 1 - a + a * q  # what BG/NBD itself implies
    adjusted, factor = survival_factor(a, q, churn_agreeing, "survival")
    assert adjusted == pytest.approx(a) and factor == pytest.approx(np.ones(3))
    adjusted, factor = survival_factor(a, q, np.array([0.99, 0.99, 0.99]), "survival")
    assert (factor < 1).all() and (adjusted >= 0).all()
    blended, _ = survival_factor(a, q, np.array([0.99, 0.99, 0.99]), "blend")
    assert ((blended > adjusted) & (blended < a)).all()
    none, factor = survival_factor(a, q, np.array([0.99, 0.99, 0.99]), "none")
    assert none == pytest.approx(a) and factor == pytest.approx(np.ones(3))


# -- the boosted combination ------------------------------------------------------------------


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


# -- the drain model in the score rows --------------------------------------------------------


class _Drain:
    threshold_ = 0.3

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.clip(X["hist_cost_to_serve"].to_numpy(dtype=float) / 100.0, 0.0, 1.0)

    def flag(self, X: pd.DataFrame, probability: np.ndarray) -> np.ndarray:
        return probability >= self.threshold_


def test_score_rows_carry_the_drain_probability_and_flag(value_parts):
    settings, features, purchases, spend = value_parts
    with_drain = ValueModel(settings, purchases, spend, drain_model=_Drain()).fit(features)
    out = with_drain.predict(features, AS_OF)
    expected = np.clip(features["hist_cost_to_serve"].to_numpy(dtype=float) / 100.0, 0.0, 1.0)
    np.testing.assert_allclose(out["drain_probability"], expected)
    np.testing.assert_array_equal(out["drain_flag"], expected >= 0.3)
    assert out["drain_flag"].any() and not out["drain_flag"].all()
    without = ValueModel(settings, purchases, spend).fit(features).predict(features, AS_OF)
    assert "drain_probability" not in without  # no probability to show without the model
    np.testing.assert_array_equal(without["drain_flag"], without["customer_value"] < 0)
    # the drain model changes no value column
    pd.testing.assert_frame_equal(out.drop(columns=["drain_probability", "drain_flag"]), without.drop(columns=["drain_flag"]))
