"""``value_forecast="net"``: the net value forecast sets margin − cost, and every component still adds up.

Stand-in boosted models (as in test_batch_scoring.py) keep it fast and make each rule checkable: the
net forecast keeps its order and takes the parts' money on the base it was fitted on, it stops at
minus the cost, which it never changes, a margin is never negative, batches still equal the whole
frame, and the model survives a save and load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from customer_value.valuation.value import BoostedPredictions, ValueModel
from test_batch_scoring import AS_OF, POOLS, _Activities, _Churn, _Cost, _in_batches, assert_scores_equal


class _Margin:
    feature_names_: list[str] = []

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return 40.0 * X["frequency"].to_numpy(dtype=float)


class _Net:
    """Signed: some customers far below minus their cost, some above."""

    feature_names_: list[str] = []

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return 30.0 * X["frequency"].to_numpy(dtype=float) - 0.3 * X["T"].to_numpy(dtype=float)


def _model(value_parts, weight: float = 1.0, forecast: str = "net") -> tuple[ValueModel, pd.DataFrame]:
    settings, features, purchases, spend = value_parts
    settings = settings.with_overrides(costs={**settings.costs.model_dump(), "indirect_pools": POOLS})
    model = ValueModel(settings, purchases, spend, _Churn(), _Cost(), _Margin(), churn_adjustment="boosted",
                       activity_model=_Activities(settings), cost_forecast="blend", net_model=_Net(),
                       value_forecast=forecast, net_weight=weight).fit(features)
    return model, features


def _activity_costs(scores: pd.DataFrame) -> pd.DataFrame:
    return scores[[c for c in scores.columns if c.startswith("expected_cost_") and c != "expected_cost_to_serve"
                   and not c.endswith(("_p10", "_p90"))]]


def test_margin_minus_cost_is_the_net_forecast_and_everything_adds_up(value_parts) -> None:
    model, features = _model(value_parts)
    parts, _ = _model(value_parts, forecast="parts")
    scores, by_parts = model.predict(features, AS_OF), parts.predict(features, AS_OF)
    net = scores["boosted_expected_net_value"].to_numpy()
    margin, cost = scores["expected_margin"].to_numpy(), scores["expected_cost_to_serve"].to_numpy()
    money = model.net_money_.transform(net)  # weight 1, no tier: the net model's forecast, in the parts' money
    below = money < -cost
    assert below.any() and not below.all()  # the floor below is exercised
    assert (margin >= 0).all()
    np.testing.assert_allclose(margin - cost, np.maximum(money, -cost), atol=1e-6)
    np.testing.assert_allclose(margin[below], 0.0, atol=1e-6)
    # the net forecast moves the margin only: the cost, activity by activity, is the cost forecast's
    pd.testing.assert_frame_equal(_activity_costs(scores), _activity_costs(by_parts))
    np.testing.assert_allclose(_activity_costs(scores).sum(axis=1), cost, atol=1e-6)
    np.testing.assert_allclose(scores["customer_value"], scores["discounted_expected_margin"]
                               - scores["discounted_expected_cost_to_serve"] + scores["expected_referral_value"],
                               atol=1e-9)
    assert scores["expected_cost_pool_platform"].sum() == pytest.approx(120000.0, rel=1e-9)  # pools never cut


def test_the_net_forecast_keeps_its_order_in_the_parts_money(value_parts) -> None:
    model, features = _model(value_parts)
    parts, _ = _model(value_parts, forecast="parts")
    scores, by_parts = model.predict(features, AS_OF), parts.predict(features, AS_OF)
    net = scores["boosted_expected_net_value"].to_numpy()
    value = (scores["expected_margin"] - scores["expected_cost_to_serve"]).to_numpy()
    difference = (by_parts["boosted_expected_margin"] - by_parts["expected_cost_to_serve"]).to_numpy()
    above = value > -scores["expected_cost_to_serve"].to_numpy() + 1e-9  # off the floor: the net model's order
    assert above.mean() > 0.5
    assert (np.diff(value[above][np.argsort(net[above], kind="stable")]) >= -1e-9).all()
    # in money: the parts' distribution, not the stand-in net model's own (its scale is 0.75 of theirs)
    money = model.net_money_.transform(net)
    np.testing.assert_allclose(np.quantile(money, [0.1, 0.5, 0.9]), np.quantile(difference, [0.1, 0.5, 0.9]),
                               rtol=0.02, atol=1.0)
    assert money.sum() == pytest.approx(difference.sum(), rel=0.02)
    assert not np.allclose(np.quantile(net, [0.1, 0.9]), np.quantile(difference, [0.1, 0.9]), rtol=0.1)


def test_the_weight_mixes_the_net_forecast_with_the_parts(value_parts) -> None:
    from customer_value.boosted.net_value import with_parts

    parts, features = _model(value_parts, forecast="parts")
    mixed, _ = _model(value_parts, weight=0.5)
    a, b = parts.predict(features, AS_OF), mixed.predict(features, AS_OF)
    net, cost = b["boosted_expected_net_value"].to_numpy(), b["expected_cost_to_serve"].to_numpy()
    difference = a["boosted_expected_margin"].to_numpy() - cost
    np.testing.assert_allclose(with_parts(net, difference, 0.5), 0.5 * net + 0.5 * difference)
    expected = with_parts(net, difference, 0.5, money=mixed.net_money_)
    np.testing.assert_allclose(expected, mixed.net_money_.transform(0.5 * net + 0.5 * difference))
    np.testing.assert_allclose((b["expected_margin"] - b["expected_cost_to_serve"]).to_numpy(),
                               np.maximum(expected, -cost), atol=1e-6)
    assert not np.allclose(a["customer_value"], b["customer_value"])


def test_batches_equal_the_whole_frame_and_other_horizons_read_back(value_parts) -> None:
    model, features = _model(value_parts, weight=0.75)
    whole = model.predict(features, AS_OF)
    assert_scores_equal(_in_batches(model, features, 3), whole)
    read_back = model.total_value_by_horizon(features, [365], BoostedPredictions.from_scores(whole, 365))
    assert read_back.loc[365] == pytest.approx(whole["customer_value"].sum(), rel=1e-3)


def test_it_is_saved_and_loaded(value_parts, tmp_path) -> None:
    from customer_value.boosted.net_value import NetValueModel
    from customer_value.valuation.cashflows import MonthlyProfile

    settings, features, purchases, spend = value_parts
    y = 20.0 * features["frequency"].to_numpy(dtype=float) - 0.1 * features["T"].to_numpy(dtype=float)
    net = NetValueModel(num_boost_round=50, num_threads=1).fit(features, y, features, y)
    model = ValueModel(settings, purchases, spend, net_model=net, value_forecast="net", net_weight=0.75,
                       net_top_threshold=25.0).fit(features)
    model.monthly_profile = MonthlyProfile.from_dict({"max_trend": 3.0, "trend": {"margin": -0.2, "cost": -0.6}, "months": 12})
    model.save(tmp_path)
    again = ValueModel.load(tmp_path)
    assert (again.value_forecast, again.net_weight, again.net_top_threshold) == ("net", 0.75, 25.0)
    assert again.monthly_profile.trend_ == {"margin": -0.2, "cost": -0.6}
    scores = model.predict(features, AS_OF)
    pd.testing.assert_frame_equal(again.predict(features, AS_OF), scores)
    pd.testing.assert_frame_equal(again.cashflows(features, scores, AS_OF), model.cashflows(features, scores, AS_OF))


def test_the_top_tier_keeps_the_parts_difference_and_caps_everyone_else(value_parts) -> None:
    parts, features = _model(value_parts, forecast="parts")
    a = parts.predict(features, AS_OF)
    difference = (a["boosted_expected_margin"] - a["expected_cost_to_serve"]).to_numpy()
    threshold = float(np.quantile(difference, 0.8))
    tiered, _ = _model(value_parts)
    np.testing.assert_allclose(tiered.parts_difference(features), difference, atol=1e-9)  # what the fit judges
    tiered.net_top_threshold = threshold
    tiered.fit(features)  # as fit_value_model does: the money map of the tiered values
    b = tiered.predict(features, AS_OF)
    net = (b["expected_margin"] - b["expected_cost_to_serve"]).to_numpy()
    top = difference >= threshold
    assert 0 < top.sum() < len(top)
    # the top tier is the parts' own, exactly: the money map is learned on, and applied to, the rest
    np.testing.assert_allclose(net[top], difference[top], rtol=1e-9, atol=1e-6)
    assert (net[~top] <= threshold + 1e-6).all()  # nobody else climbs above it
    below = tiered.net_money_.transform(b["boosted_expected_net_value"].to_numpy()[~top])
    np.testing.assert_allclose(np.quantile(below, [0.1, 0.5, 0.9]), np.quantile(difference[~top], [0.1, 0.5, 0.9]),
                               rtol=0.02, atol=1.0)  # the rest in the money of the parts below the tier
    # the same customers fill the top, so their order against the rest is the parts'
    assert set(np.argsort(-net)[: top.sum()]) == set(np.flatnonzero(top))


def test_with_parts_mixes_then_keeps_the_top_tier() -> None:
    from customer_value.boosted.net_value import with_parts

    net = np.array([5.0, 50.0, -3.0, 8.0])
    difference = np.array([100.0, 10.0, -1.0, 0.0])
    np.testing.assert_allclose(with_parts(net, difference), net)
    np.testing.assert_allclose(with_parts(net, difference, 0.5), 0.5 * net + 0.5 * difference)
    np.testing.assert_allclose(with_parts(net, difference, 1.0, 20.0), [100.0, 20.0, -3.0, 8.0])


def test_the_money_map_applies_below_the_top_tier_and_the_floor_last() -> None:
    from customer_value.boosted.net_value import QuantileMap, net_forecast, parts_money, with_parts

    net = np.array([5.0, 50.0, -3.0, 8.0])
    difference = np.array([100.0, 10.0, -1.0, 0.0])
    doubled = QuantileMap().fit(net, 2.0 * net)
    np.testing.assert_allclose(with_parts(net, difference, money=doubled), 2.0 * net, rtol=1e-4)
    # the tier keeps its difference exactly; the map sends the others to the parts below the tier
    money = parts_money(net, difference, 1.0, 20.0)
    np.testing.assert_allclose(money.knots_y_[[0, -1]], [-1.0, 10.0])
    tiered = with_parts(net, difference, 1.0, 20.0, money)
    assert tiered[0] == 100.0 and (tiered[1:] <= 20.0).all()
    np.testing.assert_allclose(tiered[1:], [10.0, -1.0, 0.0], atol=1e-3)  # the order of net, the money of parts
    assert parts_money(net, difference, 1.0, -5.0) is None  # everyone in the tier: nothing to map
    cost = np.array([1.0, 1.0, 2.0, 1.0])
    np.testing.assert_allclose(net_forecast(net, cost), [5.0, 50.0, -2.0, 8.0])  # a margin is never negative


def test_quantile_map_gives_the_distribution_and_keeps_the_order(tmp_path) -> None:
    from customer_value.boosted.net_value import QuantileMap

    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 1.0, 5000)
    y = rng.lognormal(3.0, 1.0, 5000) - 30.0  # another shape and scale altogether
    qmap = QuantileMap().fit(x, y)
    mapped = qmap.transform(x)
    np.testing.assert_allclose(np.quantile(mapped, [0.05, 0.25, 0.5, 0.75, 0.95]),
                               np.quantile(y, [0.05, 0.25, 0.5, 0.75, 0.95]), rtol=1e-3, atol=1e-3)
    assert (np.diff(mapped[np.argsort(x)]) > 0).all()  # strictly increasing: no ties made
    beyond = qmap.transform(np.array([x.max() + 1.0, x.min() - 2.0]))  # past the base: a unit a unit
    assert beyond[0] == pytest.approx(y.max() + 1.0, rel=1e-3) and beyond[1] == pytest.approx(y.min() - 2.0, abs=1e-2)
    held = QuantileMap().fit(np.r_[np.zeros(600), x[:400]], np.r_[y[:600], y[600:1000]])  # a mass at one value
    assert np.isfinite(held.transform(np.zeros(3))).all() and (np.diff(held.knots_x_) > 0).all()
    again = QuantileMap.from_dict(qmap.to_dict())
    np.testing.assert_array_equal(again.transform(x), mapped)

