"""Scoring in batches (two passes: boosted predictions and additive portfolio totals per batch,
then each batch priced with the summed totals) equals scoring the whole frame, for every way the
population enters: the pools' shares, the total model's level and the reconciliation's mix."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from customer_value.features.costing import forecast_volume_columns
from customer_value.valuation.portfolio import PortfolioTotals
from customer_value.valuation.value import ValueModel

AS_OF = "2024-07-01"  # the date of the value_parts fixture (conftest.py)
POOLS = [{"name": "platform", "annual_amount": 120000, "driver": "active_customer_months"},
         {"name": "desk", "annual_amount": 30000, "driver": "support_minutes"}]


class _Churn:
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.clip(1.0 - X["bgnbd_p_alive"].to_numpy(dtype=float) * 0.8, 0.0, 1.0)


class _Cost:
    """A total-cost forecast that differs per customer (so the level and the blend matter)."""

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return 5.0 + 3.0 * X["frequency"].to_numpy(dtype=float) + 0.01 * X["T"].to_numpy(dtype=float)


class _Activities:
    """Forecast volumes from the features; some customers forecast nothing (the mix fills them)."""

    def __init__(self, settings) -> None:
        self.columns = forecast_volume_columns(settings)

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        f = X["frequency"].to_numpy(dtype=float) + 0.01 * X["T"].to_numpy(dtype=float) * (X["recency"] > 0)
        return pd.DataFrame({c: f * (0.5 + 0.1 * k) for k, c in enumerate(self.columns)}, index=X.index)


def assert_scores_equal(batched: pd.DataFrame, whole: pd.DataFrame) -> None:
    """Numbers to 1e-9; texts alike, except a number written in them may round the other way
    (0.00499999… against 0.005: sums over batches add in another order)."""
    assert list(batched.columns) == list(whole.columns)
    texts = [c for c in whole.columns if whole[c].dtype == object or pd.api.types.is_string_dtype(whole[c].dtype)]
    numbers = [c for c in whole.columns if c not in texts]
    pd.testing.assert_frame_equal(batched[numbers], whole[numbers], check_exact=False, rtol=1e-9, atol=1e-9)
    for c in texts:
        differ = (batched[c] != whole[c]).to_numpy()
        assert differ.mean() < 0.05, c
        words = [re.sub(r"[0-9.,]+", "#", str(t)) for t in whole.loc[differ, c]]
        assert words == [re.sub(r"[0-9.,]+", "#", str(t)) for t in batched.loc[differ, c]], c


def _model(value_parts, cost_forecast: str, pools: bool) -> tuple[ValueModel, pd.DataFrame]:
    settings, features, purchases, spend = value_parts
    if pools:
        settings = settings.with_overrides(costs={**settings.costs.model_dump(), "indirect_pools": POOLS})
    model = ValueModel(settings, purchases, spend, _Churn(), _Cost(), activity_model=_Activities(settings),
                       cost_forecast=cost_forecast).fit(features)
    return model, features


def _in_batches(model: ValueModel, features: pd.DataFrame, n: int, horizon: int | None = None) -> pd.DataFrame:
    batches = [features.iloc[i::n].reset_index(drop=True) for i in range(n)]  # interleaved, not contiguous
    boosted = [model.boosted(b) for b in batches]
    totals = PortfolioTotals.sum(model.portfolio_totals(p) for p in boosted)
    assert totals.rows == len(features)
    scored = [model.predict(b, AS_OF, horizon_days=horizon, boosted=p, totals=totals) for b, p in zip(batches, boosted)]
    out = pd.concat(scored, ignore_index=True)
    return out.set_index("customer_id").loc[features["customer_id"]].reset_index()


@pytest.mark.parametrize("cost_forecast,pools", [("activities", True), ("total", True), ("blend", False),
                                                 ("blend", True)])
def test_batches_score_exactly_as_the_whole_frame(value_parts, cost_forecast, pools) -> None:
    model, features = _model(value_parts, cost_forecast, pools)
    whole = model.predict(features, AS_OF)
    batched = _in_batches(model, features, 3)
    assert_scores_equal(batched, whole)
    if pools:  # the pools still allocate exactly their amount over the population
        assert batched["expected_cost_pool_platform"].sum() == pytest.approx(120000.0, rel=1e-9)


def test_a_batch_scored_alone_differs_so_the_totals_matter(value_parts) -> None:
    model, features = _model(value_parts, "activities", True)
    whole = model.predict(features, AS_OF)
    alone = model.predict(features.iloc[::3].reset_index(drop=True), AS_OF)
    mine = whole.set_index("customer_id").loc[alone["customer_id"], "expected_cost_pool_platform"].to_numpy()
    assert not np.allclose(alone["expected_cost_pool_platform"].to_numpy(), mine)


def test_other_horizons_and_the_horizon_totals_add_up_over_batches(value_parts) -> None:
    model, features = _model(value_parts, "blend", True)
    whole = model.predict(features, AS_OF, horizon_days=730)
    assert_scores_equal(_in_batches(model, features, 2, 730), whole)
    expected = model.total_value_by_horizon(features, [365, 1095])
    batches = [features.iloc[i::2].reset_index(drop=True) for i in range(2)]
    boosted = [model.boosted(b) for b in batches]
    totals = PortfolioTotals.sum(model.portfolio_totals(p) for p in boosted)
    summed = sum(model.total_value_by_horizon(b, [365, 1095], p, totals) for b, p in zip(batches, boosted))
    pd.testing.assert_series_equal(summed, expected, check_exact=False, rtol=1e-9)


def test_totals_add_and_round_trip_as_json(value_parts) -> None:
    model, features = _model(value_parts, "activities", True)
    a = model.portfolio_totals(model.boosted(features.iloc[:500]))
    b = model.portfolio_totals(model.boosted(features.iloc[500:]))
    whole = model.portfolio_totals(model.boosted(features))
    both = a + b
    assert both.rows == whole.rows and both.cost == pytest.approx(whole.cost, rel=1e-12)
    assert both.pool_units == pytest.approx(whole.pool_units, rel=1e-12)
    assert PortfolioTotals.from_dict(both.to_dict()) == both
