"""Predictive intervals: calibrated out of sample on heavy-tailed outcomes with a mass at zero,
the atom at zero handled, ordered and non-negative bounds, JSON round trip, the customer-value
bounds, coverage helpers, and a real fit on a small simulated world."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from customer_value.valuation.intervals import (
    IntervalModel,
    coverage,
    coverage_by,
    customer_value_bounds,
    interval_columns,
    predicted_outcomes,
)

COLUMNS = ["net_value_p10", "net_value_p90", "expected_revenue_p10", "expected_revenue_p90",
           "expected_cost_to_serve_p10", "expected_cost_to_serve_p90", "expected_margin_p10", "expected_margin_p90",
           "expected_transactions_p10", "expected_transactions_p90"]
NEVER_NEGATIVE = ["expected_revenue_p10", "expected_revenue_p90", "expected_cost_to_serve_p10",
                  "expected_cost_to_serve_p90", "expected_transactions_p10", "expected_transactions_p90"]


def synthetic(n: int, seed: int, alive_shape: tuple[float, float] = (2.0, 1.0)) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(predicted, realised, context) for customers who may have left (then they buy and cost
    nothing: a mass at zero), buy Poisson orders of lognormal value (heavy tail) and cost Poisson
    tickets of lognormal cost; predictions are the exact expectations, context P(no order)."""
    rng = np.random.default_rng(seed)
    alive = rng.beta(*alive_shape, n)
    rate = rng.gamma(0.8, 2.5, n)
    spend = rng.lognormal(3.5, 1.0, n)
    is_alive = rng.random(n) < alive
    order_noise, ticket_noise = rng.lognormal(0.0, 0.6, n), rng.lognormal(0.0, 0.8, n)
    orders = rng.poisson(rate * is_alive)
    revenue = orders * spend * order_noise
    cost = rng.poisson(0.4 * rate * is_alive) * 15.0 * ticket_noise
    realised = pd.DataFrame({"revenue": revenue, "cost_to_serve": cost, "net_value": 0.3 * revenue - cost,
                             "margin": 0.3 * revenue, "transactions": orders.astype(float)})
    expected_revenue = alive * rate * spend * np.exp(0.6**2 / 2)
    expected_cost = alive * 0.4 * rate * 15.0 * np.exp(0.8**2 / 2)
    predicted = pd.DataFrame({"revenue": expected_revenue, "cost_to_serve": expected_cost,
                              "net_value": 0.3 * expected_revenue - expected_cost,
                              "margin": 0.3 * expected_revenue, "transactions": alive * rate})
    context = pd.DataFrame({"churn_probability": 1.0 - alive * (1.0 - np.exp(-rate))})
    return predicted, realised, context


@pytest.fixture(scope="module")
def calibration():
    return synthetic(20_000, 1)


@pytest.mark.parametrize("context", ["churn_probability", None])
def test_coverage_is_calibrated_out_of_sample(calibration, context):
    predicted, realised, ctx = calibration
    assert (realised["revenue"] == 0).mean() > 0.3 and (realised["net_value"] < 0).mean() > 0.1
    model = IntervalModel(context=context).fit(predicted, realised, ctx)
    new_predicted, new_realised, new_ctx = synthetic(20_000, 2)
    bounds = model.predict(new_predicted, new_ctx)
    assert list(bounds.columns) == COLUMNS
    for quantity, share in coverage(new_realised, bounds).items():
        assert 0.75 <= share <= 0.85, (quantity, share)
    # by prediction decile too, where the outcome is not mostly zero (there [0, 0] holds more)
    decile = pd.qcut(new_predicted["revenue"], 10, labels=False)
    by_decile = coverage_by(new_realised, bounds, decile)
    mostly_positive = new_realised["revenue"].gt(0).groupby(decile).mean() > 0.5
    assert by_decile.loc[mostly_positive, "revenue"].between(0.72, 0.88).all(), by_decile
    assert by_decile["customers"].sum() == len(new_realised)


def atom_cells(n: int = 4000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two predictions: at 50 half the customers realise 0, at 5 95% do; the rest exponential(100)."""
    rng = np.random.default_rng(3)
    half_zero = np.where(rng.random(n) < 0.5, 0.0, rng.exponential(100.0, n))
    mostly_zero = np.where(rng.random(n) < 0.95, 0.0, rng.exponential(100.0, n))
    return (pd.DataFrame({"revenue": np.r_[np.full(n, 50.0), np.full(n, 5.0)]}),
            pd.DataFrame({"revenue": np.r_[half_zero, mostly_zero]}))


def test_a_mass_at_zero_stays_an_atom_and_each_cell_holds_80_percent():
    predicted, realised = atom_cells()
    model = IntervalModel(bins=2, context=None, level="cell").fit(predicted, realised)
    bounds = model.predict(pd.DataFrame({"revenue": [50.0, 5.0]}))
    low, high = interval_columns("revenue")
    # half zero: the 10th percentile is 0 and nobody is below it, so the upper bound is the 80th
    # percentile (about 100·ln 2.5 ≈ 92 for the exponential half), not the 90th (≈ 161)
    assert bounds[low].iloc[0] == 0.0 and 75.0 < bounds[high].iloc[0] < 110.0
    assert bounds[[low, high]].iloc[1].tolist() == [0.0, 0.0]  # 95% zero: [0, 0] holds them all
    assert model.calibration_coverage_["revenue"] == pytest.approx((0.8 + 0.95) / 2, abs=0.02)


def test_overall_level_takes_the_atom_cells_excess_from_the_others():
    predicted, realised = atom_cells()
    model = IntervalModel(bins=2, context=None).fit(predicted, realised)
    assert model.level == "overall" and model.calibration_coverage_["revenue"] == pytest.approx(0.8, abs=0.005)
    # the 95%-zero cell holds 95% whatever the level; the other holds 65% so that all hold 80%
    assert model.level_["revenue"] == pytest.approx(0.65, abs=0.01)
    bounds = model.predict(pd.DataFrame({"revenue": [5.0]}))
    assert bounds.iloc[0].tolist() == [0.0, 0.0]
    # a calibration set that is nearly all zero cannot shrink the intervals below the central 60%
    _, mostly_zero = atom_cells()
    zeros = IntervalModel(bins=1, context=None).fit(predicted, mostly_zero.assign(revenue=np.r_[
        np.zeros(6000), mostly_zero["revenue"].to_numpy()[:2000]]))
    assert zeros.level_["revenue"] == pytest.approx(0.6)


def test_bounds_are_ordered_and_revenue_cost_and_transactions_never_negative(calibration):
    predicted, realised, ctx = calibration
    model = IntervalModel().fit(predicted, realised, ctx)
    rng = np.random.default_rng(4)
    wild = pd.DataFrame({q: rng.choice([-1e6, -50.0, 0.0, 1e-9, 3.0, 1e7], 500) for q in predicted.columns})
    bounds = model.predict(wild, pd.DataFrame({"churn_probability": rng.random(500)}))
    for quantity in ("net_value", "revenue", "cost_to_serve", "margin", "transactions"):
        low, high = interval_columns(quantity)
        assert (bounds[low] <= bounds[high]).all()
    assert (bounds[NEVER_NEGATIVE] >= 0).all().all()
    assert 0.0 in model.edges_["net_value"]  # expected losses are never binned with expected gains
    assert (bounds.loc[wild["net_value"] < -1000, "net_value_p10"] < 0).all()
    assert (bounds.loc[wild["net_value"] > 1000, "net_value_p90"] > 0).all()


def test_round_trip_through_json_and_clone(calibration):
    predicted, realised, ctx = calibration
    model = IntervalModel(coverage=0.7, bins=8, context_bins=2).fit(predicted, realised, ctx)
    restored = IntervalModel.from_dict(json.loads(json.dumps(model.to_dict())))
    pd.testing.assert_frame_equal(restored.predict(predicted, ctx), model.predict(predicted, ctx))
    assert restored.get_params() == model.get_params()
    assert restored.calibration_coverage_ == model.calibration_coverage_
    assert model.calibration_coverage_["revenue"] == pytest.approx(0.7, abs=0.01)
    assert restored.level_ == model.level_
    assert not hasattr(clone(model), "bounds_")


def test_fits_what_it_is_given_and_says_what_is_missing():
    predicted = pd.DataFrame({"revenue": np.linspace(0, 100, 300)})
    realised = pd.DataFrame({"revenue": np.linspace(0, 100, 300)[::-1]})
    context = pd.DataFrame({"churn_probability": np.linspace(0, 1, 300)})
    model = IntervalModel().fit(predicted, realised, context)
    assert model.quantities_ == ["revenue"] and model.context_column_ == "churn_probability"
    assert list(model.predict(predicted, context).columns) == ["expected_revenue_p10", "expected_revenue_p90"]
    with pytest.raises(ValueError, match="churn_probability"):
        model.predict(predicted)
    assert IntervalModel().fit(predicted, realised).context_column_ is None  # no context given: none used
    with pytest.raises(ValueError, match="aligned"):
        IntervalModel().fit(predicted, realised.iloc[:10])
    with pytest.raises(ValueError, match="non-finite"):
        IntervalModel().fit(predicted.assign(revenue=np.nan), realised)
    with pytest.raises(RuntimeError, match="not fitted"):
        IntervalModel().predict(predicted)


def test_predicted_outcomes_take_every_forecast_figure_the_rows_hold():
    rows = pd.DataFrame({"expected_margin": [30.0, 5.0], "expected_cost_to_serve": [10.0, 8.0],
                         "expected_revenue": [100.0, 20.0], "expected_transactions": [2.5, 0.4]})
    out = predicted_outcomes(rows)
    assert list(out.columns) == ["net_value", "revenue", "cost_to_serve", "margin", "transactions"]
    assert out["net_value"].tolist() == [20.0, -3.0] and out["transactions"].tolist() == [2.5, 0.4]
    assert list(predicted_outcomes(rows.drop(columns="expected_transactions")).columns) == [
        "net_value", "revenue", "cost_to_serve", "margin"]  # a figure the rows lack gets no interval


def test_customer_value_bounds_discount_the_net_interval_and_add_referrals():
    scores = pd.DataFrame({"expected_referral_value": [5.0, 0.0]})
    intervals = pd.DataFrame({"net_value_p10": [-100.0, 0.0], "net_value_p90": [200.0, 10.0]})
    p10, p90 = customer_value_bounds(scores, intervals, 0.9)
    assert p10.tolist() == pytest.approx([-85.0, 0.0]) and p90.tolist() == pytest.approx([185.0, 9.0])


def test_coverage_counts_the_closed_interval():
    realised = pd.DataFrame({"revenue": [0.0, 10.0, 11.0, 5.0], "net_value": [1.0, -1.0, 0.0, 2.0]})
    intervals = pd.DataFrame({"expected_revenue_p10": [0.0, 0.0, 0.0, 6.0], "expected_revenue_p90": [0.0, 10.0, 10.0, 9.0],
                              "net_value_p10": [0.0, 0.0, 0.0, 0.0], "net_value_p90": [1.0, 1.0, 1.0, 1.0]})
    assert coverage(realised, intervals) == {"net_value": 0.5, "revenue": 0.5}
    table = coverage_by(realised, intervals, ["a", "a", "b", "b"])
    assert table.loc["a", "revenue"] == 1.0 and table.loc["b", "net_value"] == 0.5
    assert table["customers"].tolist() == [2, 2]


@pytest.mark.slow
def test_calibrated_on_the_validation_snapshot_of_a_real_fit():
    """The wiring the fit will do: the value model fitted as of D predicts at its validation
    snapshot D − H; those predictions and what happened over [D − H, D) calibrate the intervals,
    which then hold about 80% of what happens over [D, D + H)."""
    from customer_value.config import Settings
    from customer_value.features import build_features, build_targets
    from customer_value.features.history import tables_before
    from customer_value.simulation.world import simulate_world
    from customer_value.training.fit import fit_value_model

    day = dt.date(2024, 1, 1)
    settings = Settings(trials=0, snapshots={"count": 3, "spacing_days": 60})
    tables = simulate_world(2000, 3, settings=settings).tables
    cut = tables_before(tables, day)
    model = fit_value_model(cut, day, settings).model
    valid = day - dt.timedelta(days=settings.horizon_days)
    at_valid = model.predict(build_features(cut, valid, settings), valid)
    realised = build_targets(cut, valid, settings).set_index("customer_id").loc[at_valid["customer_id"]]
    intervals = IntervalModel().fit(predicted_outcomes(at_valid), realised.reset_index(), at_valid)

    scores = model.predict(build_features(cut, day, settings), day)
    later = build_targets(tables, day, settings).set_index("customer_id").loc[scores["customer_id"]].reset_index()
    bounds = intervals.predict(predicted_outcomes(scores), scores)
    for quantity, share in coverage(later, bounds).items():
        assert 0.72 <= share <= 0.88, (quantity, share)
    p10, p90 = customer_value_bounds(scores, bounds, 0.95)
    assert (p10 <= p90).all() and np.isfinite(p10).all()


def test_the_level_is_set_for_the_population_to_be_scored(calibration):
    """An older base (more nearly dead customers, whose [0, 0] intervals hold more than asked) is
    over-covered by a level set on the calibration mix; weighted by its own mix it is covered as asked."""
    predicted, realised, ctx = calibration
    old_predicted, old_realised, old_ctx = synthetic(20_000, 5, alive_shape=(1.0, 1.5))
    assert (old_realised["revenue"] == 0).mean() > (realised["revenue"] == 0).mean() + 0.1
    plain = IntervalModel().fit(predicted, realised, ctx)
    for_them = IntervalModel().fit(predicted, realised, ctx, target=old_predicted, target_context=old_ctx)
    assert all(for_them.level_[q] <= plain.level_[q] for q in for_them.quantities_)
    over = coverage(old_realised, plain.predict(old_predicted, old_ctx))
    fitted = coverage(old_realised, for_them.predict(old_predicted, old_ctx))
    assert max(over.values()) > 0.85, over  # the calibration mix's level over-covers them
    for quantity, share in fitted.items():
        assert 0.75 <= share <= 0.85, (quantity, share, over)
        assert abs(share - 0.8) < abs(over[quantity] - 0.8), (quantity, share, over)
    # the calibration population itself as the target: the plain fit's levels
    same = IntervalModel().fit(predicted, realised, ctx, target=predicted, target_context=ctx)
    assert same.level_ == pytest.approx(plain.level_, abs=1e-6)


class _Cache:
    """Stands in for the snapshot cache: ``customers[k]`` customers a window of share k before the day."""

    def __init__(self, day: dt.date, counts: dict[int, int]) -> None:
        self.day, self.counts, self.asked = day, counts, []

    def base_features(self, as_of: dt.date) -> pd.DataFrame:
        days = (self.day - as_of).days
        self.asked.append(days)
        return pd.DataFrame({"customer_id": [f"C{i}" for i in range(self.counts.get(days, 0))]})


@pytest.mark.parametrize("counts, window", [
    ({365: 600, 274: 900}, 365),           # a year with enough customers: the horizon, as before
    ({365: 100, 274: 499, 182: 800}, 182),  # a young history: the longest shorter window with enough
    ({365: 0, 274: 30, 182: 60, 91: 90}, 274),  # never enough: the longest that holds anyone
])
def test_the_calibration_window_is_the_longest_with_enough_customers(counts, window):
    from customer_value.training.fit import calibration_window

    day = dt.date(2023, 1, 1)
    cache = _Cache(day, counts)
    chosen, features = calibration_window(cache, day, 365)
    assert chosen == window and len(features) == counts[window]
    assert cache.asked[0] == 365  # the full horizon is always tried first


def test_without_any_customer_before_the_day_there_is_nothing_to_calibrate_on():
    from customer_value.training.fit import calibration_window

    with pytest.raises(ValueError, match="nothing to calibrate on"):
        calibration_window(_Cache(dt.date(2023, 1, 1), {}), dt.date(2023, 1, 1), 365)


def test_a_shorter_calibration_window_is_kept_through_json(calibration):
    predicted, realised, ctx = calibration
    model = IntervalModel(level="cell").fit(predicted, realised, ctx, calibration_days=182)
    saved = model.to_dict()
    assert IntervalModel.from_dict(json.loads(json.dumps(saved))).calibration_days_ == 182
    saved.pop("calibration_days")  # a model saved before the window was recorded
    assert IntervalModel.from_dict(saved).calibration_days_ is None
    assert IntervalModel().fit(predicted, realised, ctx).calibration_days_ is None


@pytest.mark.slow
def test_a_history_younger_than_a_year_still_gets_intervals_calibrated_on_a_shorter_window():
    """Fitted a year after the world's first sign-up, too few customers are a year old to calibrate
    on: the fit calibrates on the longest shorter window that has enough, records it, and the
    score rows' intervals hold roughly 80% of what the next year brings."""
    from customer_value.config import Settings
    from customer_value.features import build_targets
    from customer_value.features.history import tables_before
    from customer_value.simulation.world import simulate_world
    from customer_value.training.fit import fit_value_model

    day = dt.date(2023, 1, 1)
    settings = Settings(trials=0, snapshots={"count": 3, "spacing_days": 30})
    tables = simulate_world(8000, 5, settings=settings).tables
    fitted = fit_value_model(tables_before(tables, day), day, settings)
    intervals = fitted.model.interval_model
    assert "intervals" not in fitted.skipped and intervals is not None
    assert intervals.calibration_days_ in (91, 182, 274) and intervals.level == "cell"
    assert fitted.model.monthly_profile is None  # no year to learn the monthly shape on: cash flows follow the purchases
    scores = fitted.model.predict(fitted.features, day)
    later = scores[["customer_id"]].merge(build_targets(tables, day, settings), on="customer_id", how="left")
    shares = coverage(later, scores)
    assert set(shares) >= {"net_value", "revenue", "cost_to_serve"}
    for quantity, share in shares.items():
        assert 0.6 <= share <= 0.95, (quantity, share)
