"""Cost-to-serve by activity (issue 18): forecast volumes priced at the rates, pools that allocate
the pool, cost segments, monthly cash flows, on a value model fitted on a growing simulated world."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from customer_value.config import Settings
from customer_value.features import build_features
from customer_value.features.costing import DIRECT_ACTIVITIES, rate_of
from customer_value.simulation.world import simulate_world
from customer_value.training.fit import CLEARLY_BETTER, choose_cost_forecast, fit_value_model
from customer_value.valuation.activity_costs import (
    cost_column,
    expected_cost_columns,
    price,
    reconcile_with_total,
    top_cost_drivers,
    volume_column,
)
from customer_value.valuation.segments import LIGHT, assign_cost_segments, cost_groups

pytestmark = pytest.mark.slow
AS_OF = "2024-07-01"
POOLS = [{"name": "platform", "annual_amount": 120000, "driver": "active_customer_months"},
         {"name": "desk", "annual_amount": 30000, "driver": "support_minutes"}]
SETTINGS = Settings.model_validate({"trials": 1, "snapshots": {"count": 3, "spacing_days": 30},
                                    "costs": {"indirect_pools": POOLS}})


@pytest.fixture(scope="module")
def fitted():
    world = simulate_world(1500, 21, settings=SETTINGS)
    fit = fit_value_model(world.tables, AS_OF, SETTINGS)
    features = build_features(world.tables, AS_OF, SETTINGS)
    return fit, features


@pytest.fixture(scope="module")
def scores(fitted) -> pd.DataFrame:
    fit, features = fitted
    return fit.model.predict(features, AS_OF)


def test_the_activities_sum_to_the_cost_to_the_cent_on_every_row(scores) -> None:
    columns = expected_cost_columns(SETTINGS)
    assert columns == [c for c in scores.columns if c in columns]
    assert np.abs(scores[columns].sum(axis=1) - scores["expected_cost_to_serve"]).max() < 0.005
    assert (scores[columns] >= 0).all().all()


def test_each_direct_activity_is_its_rate_times_its_volume(scores) -> None:
    for a in DIRECT_ACTIVITIES:
        np.testing.assert_allclose(scores[cost_column(a.name)], rate_of(a, SETTINGS.costs) * scores[volume_column(a.name)],
                                   rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("horizon", [90, 365, 730])
def test_a_forecast_allocates_exactly_each_pool_on_a_growing_world(fitted, horizon: int) -> None:
    """Section 8: the scored customers share the pool's amount for the horizon, never more, however
    the base has grown since the rates were last seen."""
    fit, features = fitted
    scored = fit.model.predict(features, AS_OF, horizon_days=horizon)
    for pool in POOLS:
        total = scored[cost_column(f"pool_{pool['name']}")].sum()
        assert total == pytest.approx(pool["annual_amount"] * horizon / 365, rel=1e-9)


def test_the_fit_compares_priced_activities_with_the_total_model(fitted) -> None:
    fit, _ = fitted
    evaluation = fit.parts["activities"].evaluation
    sources = {"activities": "valid", "blend": "blend", "total": "total_model"}
    assert set(sources.values()) <= set(evaluation)
    for source in sources.values():
        assert -1 <= evaluation[source]["spearman"] <= 1
    best = max(evaluation[source]["spearman"] for source in sources.values())
    chosen = evaluation[sources[fit.model.cost_forecast]]["spearman"]
    assert chosen == best or (fit.model.cost_forecast == "blend" and chosen >= best - CLEARLY_BETTER)


@pytest.mark.parametrize("mode", ["activities", "blend", "total"])
def test_every_cost_forecast_mode_adds_up_and_keeps_the_pools(fitted, mode: str) -> None:
    fit, features = fitted
    chosen, fit.model.cost_forecast = fit.model.cost_forecast, mode
    try:
        scored = fit.model.predict(features, AS_OF)
    finally:
        fit.model.cost_forecast = chosen
    columns = expected_cost_columns(SETTINGS)
    assert np.abs(scored[columns].sum(axis=1) - scored["expected_cost_to_serve"]).max() < 0.005
    assert scored[cost_column("pool_platform")].sum() == pytest.approx(120000.0)
    for a in DIRECT_ACTIVITIES:
        np.testing.assert_allclose(scored[cost_column(a.name)], rate_of(a, SETTINGS.costs) * scored[volume_column(a.name)],
                                   rtol=1e-9, atol=1e-9)


def test_cost_segments_and_drivers_are_readable(scores) -> None:
    assert set(scores["cost_segment"]) <= {"light", "support-heavy", "billing-heavy", "order-heavy"}
    assert (scores["cost_segment"] == LIGHT).mean() == pytest.approx(0.5, abs=0.1)  # the fit-time median
    row = scores.loc[scores["expected_cost_to_serve"].idxmax()]
    assert f"of {row['expected_cost_to_serve']:,.2f}" in row["top_cost_drivers"]
    assert row["top_cost_drivers"].count(";") == 2


def test_every_row_has_ordered_intervals(scores) -> None:
    for figure in ("net_value", "expected_revenue", "expected_cost_to_serve", "customer_value"):
        assert (scores[f"{figure}_p10"] <= scores[f"{figure}_p90"]).all()
    assert (scores["expected_cost_to_serve_p10"] >= 0).all()


def test_the_score_file_metadata_says_how_it_was_priced(scores) -> None:
    meta = scores.attrs["customer_value"]
    assert meta["horizon_days"] == 365 and meta["costs"]["indirect_pools"][0]["name"] == "platform"
    assert len(meta["segment_cuts"]) == 3 and meta["light_cost_cut"] > 0


def test_monthly_cash_flows_add_up_to_the_score_file(fitted, scores) -> None:
    fit, features = fitted
    flows = fit.model.cashflows(features, scores, AS_OF)
    assert len(flows) == 12 * len(scores)
    assert flows["days"].groupby(flows["customer_id"]).sum().eq(365).all()
    per_customer = flows.groupby("customer_id", sort=False)[
        ["expected_margin", "expected_cost", "discounted_margin", "discounted_cost"]].sum()
    indexed = scores.set_index("customer_id").loc[per_customer.index]
    np.testing.assert_allclose(per_customer["expected_margin"], indexed["expected_margin"], rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(per_customer["expected_cost"], indexed["expected_cost_to_serve"], rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(per_customer["discounted_margin"], indexed["discounted_expected_margin"], rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(per_customer["discounted_cost"], indexed["discounted_expected_cost_to_serve"],
                               rtol=1e-9, atol=1e-6)
    # a customer likely to have lapsed earns early: margin front-loaded against an even spread
    first, last = flows.groupby("month")["expected_margin"].sum().iloc[[0, -1]]
    assert first > last


# -- pure parts, by hand ---------------------------------------------------------------------------


def test_the_blend_is_kept_unless_one_forecast_is_clearly_better() -> None:
    def evaluation(activities: float, total: float, blend: float) -> dict:
        return {"valid": {"spearman": activities}, "total_model": {"spearman": total}, "blend": {"spearman": blend}}

    auto = Settings()
    assert choose_cost_forecast(evaluation(0.742, 0.738, 0.741), auto) == "blend"
    assert choose_cost_forecast(evaluation(0.760, 0.738, 0.741), auto) == "activities"
    assert choose_cost_forecast(evaluation(0.700, 0.750, 0.720), auto) == "total"
    assert choose_cost_forecast(evaluation(0.7, 0.7, float("nan")), auto) == "activities"
    assert choose_cost_forecast(evaluation(0.9, 0.5, 0.6), Settings(cost_forecast="total")) == "total"


def _volumes(rows: list[dict[str, float]], settings: Settings) -> pd.DataFrame:
    names = [c.removeprefix("expected_cost_") for c in expected_cost_columns(settings)]
    return pd.DataFrame([{volume_column(n): r.get(n, 0.0) for n in names} for r in rows])


def test_pricing_by_hand() -> None:
    settings = Settings.model_validate({"costs": {"indirect_pools": [POOLS[0]]}})
    volumes = _volumes([{"support_phone": 10, "late_payments": 2, "pool_platform": 3},
                        {"orders": 4, "payment_fees": 100, "pool_platform": 1}], settings)
    priced = price(volumes, settings.costs, 365)
    assert priced.loc[0, "expected_cost_support_phone"] == pytest.approx(15.0)
    assert priced.loc[0, "expected_cost_late_payments"] == pytest.approx(30.0)
    assert priced.loc[1, "expected_cost_payment_fees"] == pytest.approx(2.9)
    assert priced["expected_cost_pool_platform"].tolist() == pytest.approx([90000.0, 30000.0])
    assert price(_volumes([{}, {}], settings), settings.costs, 365)["expected_cost_pool_platform"].tolist() == [0.0, 0.0]


def test_reconciling_with_a_total_scales_direct_activities_only() -> None:
    settings = Settings.model_validate({"costs": {"indirect_pools": [POOLS[0]]}})
    volumes = _volumes([{"support_phone": 10, "pool_platform": 1}, {"pool_platform": 1}, {"orders": 5, "pool_platform": 2}],
                       settings)
    priced = price(volumes, settings.costs, 365)
    total = np.array([30000.0 + 30.0, 30000.0 + 7.0, 10.0])  # the last is below its pool share
    new_volumes, new_costs = reconcile_with_total(volumes, priced, total, settings)
    assert new_costs.sum(axis=1).tolist()[:2] == pytest.approx([30030.0, 30007.0])
    assert new_costs["expected_cost_pool_platform"].tolist() == priced["expected_cost_pool_platform"].tolist()
    assert new_costs.loc[0, "expected_cost_support_phone"] == pytest.approx(30.0)
    assert new_volumes.loc[0, volume_column("support_phone")] == pytest.approx(20.0)
    assert new_costs.loc[1, [c for c in new_costs if "pool" not in c]].sum() == pytest.approx(7.0)  # the population mix
    assert new_costs.loc[2, [c for c in new_costs if "pool" not in c]].sum() == 0.0


def test_cost_segments_by_hand() -> None:
    costs = pd.DataFrame({"expected_cost_support_phone": [50.0, 1.0, 0.0, 1.0],
                          "expected_cost_invoices": [1.0, 40.0, 0.0, 0.5],
                          "expected_cost_orders": [1.0, 1.0, 0.0, 0.5],
                          "expected_cost_pool_desk": [0.0, 0.0, 0.0, 60.0]})
    costs["expected_cost_to_serve"] = costs.sum(axis=1)
    segments = assign_cost_segments(costs, cost_groups([("desk", "support_minutes")]), light_cut=10.0)
    assert segments.tolist() == ["support-heavy", "billing-heavy", "light", "support-heavy"]
    texts = top_cost_drivers(costs.drop(columns="expected_cost_to_serve"), k=2)
    assert texts[0] == "phone support 50.00 of 52.00; invoicing 1.00 of 52.00"
    assert texts[2] == ""
    assert texts[3].startswith("desk (shared) 60.00 of 62.00")


def test_the_net_value_top_tier_is_its_share_of_the_base_as_of_training(fitted, scores) -> None:
    """The fit keeps the top tier on the parts' difference at the share the validation snapshot
    chose, counted on the customers as of the training date (boosted/net_value.py)."""
    fit, _ = fitted
    judged = fit.evaluation["net_value"]
    assert judged["blend"]["top_decile_capture"] >= judged["parts"]["top_decile_capture"]
    tier, threshold = judged["blend"]["top_tier"], fit.model.net_top_threshold
    if fit.model.value_forecast != "net" or tier == 0:
        assert threshold is None
        return
    difference = fit.model.parts_difference(fitted[1])
    assert (difference >= threshold).mean() == pytest.approx(tier, abs=2 / len(scores))
    tiered = difference >= threshold
    net = (scores["expected_margin"] - scores["expected_cost_to_serve"]).to_numpy()
    np.testing.assert_allclose(net[tiered], difference[tiered], rtol=1e-9, atol=1e-6)
    assert net[~tiered].max() <= threshold + 1e-6


def test_the_level_forecasts_read_the_per_year_rates_and_the_classifiers_do_not(fitted) -> None:
    """Cost, margin, activity volumes and net value forecast a horizon's level, which the rates
    carry to customers older than any trained on; churn and drain keep their inputs."""
    fit, features = fitted
    rates = {c for c in features.columns if c.endswith("_per_year")}
    assert {"sup_minutes_per_year", "pay_invoices_per_year", "purchases_to_date_per_year"} <= rates
    model = fit.model
    for part in (model.cost_model, model.margin_model, model.net_model):
        assert rates <= set(part.feature_names_)
    for part in (model.churn_model, model.drain_model):
        assert not rates & set(part.feature_names_)
