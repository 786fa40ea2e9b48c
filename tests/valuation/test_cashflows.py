"""Monthly cash flows (``valuation/cashflows.py``): margin and cost spread over the months by the
purchases, tilted by the monthly profile learned on the year before the fit."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from customer_value.units import month_edges
from customer_value.valuation.cashflows import (MonthlyProfile, fit_trend, monthly_cashflows, monthly_sums,
                                               portfolio_by_month, portfolio_from_sums)

AS_OF = dt.date(2024, 1, 1)


class SteadyBuyer:
    """A purchase model stand-in: customer i buys ``rate[i]`` times a day, lapsing at ``lapse[i]``
    per day (so its cumulative purchases bend), undiscounted and discounted alike."""

    def __init__(self, rate: np.ndarray, lapse: np.ndarray):
        self.rate, self.lapse = rate, lapse

    def predict(self, rfm, t, discount_rate=0.0, time_unit="days"):
        expected = self.rate * (1 - np.exp(-self.lapse * t)) / self.lapse
        return pd.DataFrame({"expected_transactions": expected, "discounted_expected_transactions": 0.97 * expected})


def scores_of(n: int, seed: int = 0) -> tuple[pd.DataFrame, SteadyBuyer]:
    rng = np.random.default_rng(seed)
    margin, cost = rng.gamma(2.0, 50.0, n), rng.gamma(2.0, 20.0, n)
    scores = pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "horizon_days": 365,
                           "expected_margin": margin, "discounted_expected_margin": 0.95 * margin,
                           "expected_cost_to_serve": cost, "discounted_expected_cost_to_serve": 0.95 * cost})
    return scores, SteadyBuyer(rng.gamma(2.0, 0.01, n), rng.uniform(0.0005, 0.005, n))


def flows(scores: pd.DataFrame, buyer: SteadyBuyer, profile: MonthlyProfile | None = None) -> pd.DataFrame:
    return monthly_cashflows(scores, buyer, pd.DataFrame(index=range(len(scores))), AS_OF, 0.1, profile=profile)


def realised_months(forecast: pd.DataFrame, trends: dict[str, float]) -> pd.DataFrame:
    """What a portfolio whose margin and cost follow the given trends against the forecast's shape
    would show: each customer's forecast months tilted by exp(trend × years), renormalised."""
    m = forecast["month"].nunique()
    days = forecast["days"].to_numpy(float)[:m]
    years = (np.cumsum(days) - days / 2) / 365.25
    out = {"month": forecast["month"].to_numpy()[:m]}
    for column, realised_column, quantity in (("expected_margin", "margin", "margin"),
                                              ("expected_cost", "cost_to_serve", "cost")):
        amounts = forecast[column].to_numpy(float).reshape(-1, m)
        tilted = amounts * np.exp(trends[quantity] * years)
        tilted *= amounts.sum(axis=1, keepdims=True) / tilted.sum(axis=1, keepdims=True)
        out[realised_column] = tilted.sum(axis=0)
    return pd.DataFrame(out)


def test_the_profile_recovers_the_trends_that_made_the_months():
    scores, buyer = scores_of(400)
    forecast = flows(scores, buyer)
    profile = MonthlyProfile().fit(forecast, realised_months(forecast, {"margin": -0.2, "cost": -0.9}))
    assert profile.trend_["margin"] == pytest.approx(-0.2, abs=0.01)
    assert profile.trend_["cost"] == pytest.approx(-0.9, abs=0.01)
    assert profile.months_ == 12


def test_a_tilted_spread_still_adds_up_to_each_score_row_and_moves_cost_earlier():
    scores, buyer = scores_of(300, seed=1)
    plain = flows(scores, buyer)
    profile = MonthlyProfile().fit(plain, realised_months(plain, {"margin": 0.0, "cost": -0.9}))
    tilted = flows(scores, buyer, profile)
    per_customer = tilted.groupby("customer_id", sort=False)[
        ["expected_margin", "expected_cost", "discounted_margin", "discounted_cost"]].sum()
    for column, score_column in (("expected_margin", "expected_margin"), ("expected_cost", "expected_cost_to_serve"),
                                 ("discounted_margin", "discounted_expected_margin"),
                                 ("discounted_cost", "discounted_expected_cost_to_serve")):
        np.testing.assert_allclose(per_customer[column].to_numpy(), scores[score_column].to_numpy(), rtol=1e-12)
    before, after = plain.groupby("month")["expected_cost"].sum(), tilted.groupby("month")["expected_cost"].sum()
    assert after.iloc[0] > before.iloc[0] and after.iloc[-1] < before.iloc[-1]  # cost falls faster through the year
    np.testing.assert_allclose(tilted["expected_margin"], plain["expected_margin"], rtol=1e-3)  # margin trend ~ 0
    assert (tilted["discounted_net"] == tilted["discounted_margin"] - tilted["discounted_cost"]).all()


def test_no_shape_to_learn_means_no_tilt():
    amounts = np.ones((5, 12))
    years = np.arange(12) / 12
    assert fit_trend(amounts, years, np.zeros(12)) == 0.0  # nothing realised
    assert fit_trend(np.zeros((5, 12)), years, np.ones(12)) == 0.0  # nothing forecast
    assert fit_trend(amounts, years, np.full(12, np.nan)) == 0.0
    # a realised shape beyond reach is met at the bound, never beyond it
    assert fit_trend(amounts, years, np.r_[1.0, np.zeros(11)], max_trend=2.0) == pytest.approx(-2.0, abs=1e-3)


def test_the_profile_survives_json_and_applies_to_a_horizon_of_another_length():
    scores, buyer = scores_of(200, seed=2)
    plain = flows(scores, buyer)
    profile = MonthlyProfile().fit(plain, realised_months(plain, {"margin": -0.3, "cost": -0.6}))
    again = MonthlyProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    assert again.trend_ == pytest.approx(profile.trend_) and again.months_ == 12
    short = scores.assign(horizon_days=180)
    half = flows(short, buyer, again)
    assert half["month"].nunique() == len(month_edges(AS_OF, 180)) - 1 == 6
    np.testing.assert_allclose(half.groupby("customer_id", sort=False)["expected_cost"].sum().to_numpy(),
                               short["expected_cost_to_serve"].to_numpy(), rtol=1e-12)


@pytest.mark.slow
def test_a_real_fit_learns_that_cost_falls_faster_than_the_purchases():
    """A simulated world's support cost, most of its cost, falls faster through the year than its
    purchases (the customers who call most lapse first). The fit learns that on the year before
    it, and the monthly cost forecast of the year after it then has the realised shape more nearly
    than the purchases' shape alone (error per month against the realised share of the year)."""
    from customer_value.config import Settings
    from customer_value.features import monthly_outcomes
    from customer_value.features.history import tables_before
    from customer_value.simulation.world import simulate_world
    from customer_value.training.fit import fit_value_model

    settings = Settings.model_validate({"trials": 0, "snapshots": {"count": 3, "spacing_days": 60}})
    tables = simulate_world(3000, 1, settings=settings).tables
    fit = fit_value_model(tables_before(tables, AS_OF), AS_OF, settings)
    model, features = fit.model, fit.features
    profile = model.monthly_profile
    assert profile is not None and profile.trend_["cost"] < profile.trend_["margin"] < 0
    scores = model.predict(features, AS_OF)
    realised = monthly_outcomes(tables, AS_OF, settings, scores["customer_id"])["cost_to_serve"].to_numpy()

    def shape_error(cash_flows: pd.DataFrame) -> float:
        forecast = cash_flows.groupby("month")["expected_cost"].sum().to_numpy()
        return float(np.abs((forecast / forecast.sum()) / (realised / realised.sum()) - 1).mean())

    tilted = shape_error(model.cashflows(features, scores, AS_OF))
    model.monthly_profile = None
    assert tilted < 0.8 * shape_error(model.cashflows(features, scores, AS_OF))


def test_monthly_sums_add_up_over_batches_to_the_whole_portfolio():
    """What the scoring passes gather per batch (or per Spark partition) gives the whole base's
    months, the 80% band of the monthly net included, whatever the split and the row order."""
    rng = np.random.default_rng(3)
    n, m = 400, 12
    ids = np.array([f"C{i:04d}" for i in range(n)])
    flows = pd.DataFrame({
        "customer_id": np.repeat(ids, m),
        "month": np.tile(pd.date_range("2025-01-01", periods=m, freq="MS").to_numpy(), n),
        "days": 30,
        "expected_margin": rng.gamma(2.0, 20.0, n * m),
        "expected_cost": rng.gamma(1.5, 15.0, n * m),
    })
    flows["discounted_margin"] = flows["expected_margin"] * 0.99
    flows["discounted_cost"] = flows["expected_cost"] * 0.99
    flows["discounted_net"] = flows["discounted_margin"] - flows["discounted_cost"]
    net = (flows["expected_margin"] - flows["expected_cost"]).to_numpy().reshape(n, m).sum(axis=1)
    spread = rng.gamma(2.0, 30.0, n)
    scores = pd.DataFrame({"customer_id": ids, "net_value_p10": net - spread, "net_value_p90": net + spread})
    whole = portfolio_by_month(flows, scores)
    assert len(whole) == m and whole["month"].is_monotonic_increasing
    assert whole["expected_net"].to_numpy() == pytest.approx(
        (whole["expected_margin"] - whole["expected_cost"]).to_numpy())
    assert (whole["expected_net_p10"] < whole["expected_net"]).all()
    assert (whole["expected_net"] < whole["expected_net_p90"]).all()
    # a portfolio is narrower than the sum of its customers' bands
    assert (whole["expected_net_p90"] - whole["expected_net_p10"]).sum() < (2 * spread).sum()
    shuffled = rng.permutation(ids)
    parts = [monthly_sums(flows[flows["customer_id"].isin(part)], scores.sample(frac=1.0, random_state=1))
             for part in np.array_split(shuffled, 3)]
    pd.testing.assert_frame_equal(portfolio_from_sums(pd.concat(parts[::-1], ignore_index=True)), whole,
                                  check_exact=False, rtol=1e-12)
    without = portfolio_by_month(flows)
    assert "expected_net_p10" not in without
    pd.testing.assert_frame_equal(without, whole.drop(columns=["expected_net_p10", "expected_net_p90"]))
