"""Referrals: realised referred sign-ups per referrer, the classic and the past-window referral
model, the referred customer's value with its interval, persistence (old saved models too), and on
a 20k simulated world the total and ranking against what happened."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from customer_value import metrics as ev
from customer_value.features import build_features, build_targets
from customer_value.features.history import tables_before
from customer_value.valuation.referrals import ReferralModel, realised_referrals
from customer_value.valuation.value import ValueModel


def test_realised_referrals_count_the_window_sign_ups_like_the_targets(value_parts):
    from customer_value.simulation.world import simulate_world

    settings = value_parts[0]
    world = simulate_world(1500, 5, settings=settings)
    as_of = dt.date(2024, 1, 1)
    targets = build_targets(world.tables, as_of, settings, horizon_days=180).set_index("customer_id")
    counted = realised_referrals(world.tables.customers, as_of, as_of + dt.timedelta(days=180))
    scored = counted[counted.index.isin(targets.index)]  # the targets hold customers signed up before as_of
    assert targets["referrals"].sum() > 0 and len(scored) < len(counted)  # new customers refer too
    pd.testing.assert_series_equal(targets["referrals"].loc[scored.index].astype(int), scored.astype(int),
                                   check_names=False)
    assert targets["referrals"].drop(scored.index).eq(0).all()
    customers = world.tables.customers
    by_hand = customers[(customers["signup_at"] >= pd.Timestamp(as_of))
                        & (customers["signup_at"] < pd.Timestamp(as_of) + pd.Timedelta(days=180))]
    assert counted.sum() == by_hand["referred_by"].notna().sum()


def test_without_a_past_window_the_forecast_is_the_shrunk_rate_times_alive(value_parts):
    _, features, _, _ = value_parts
    alive = np.linspace(0.1, 1.0, len(features))
    model = ReferralModel(prior_days=365.0).fit(features)
    tenure = np.clip(features["acct_tenure_days"].to_numpy(float), 1.0, None)
    rate = (features["acct_referred_customers"].to_numpy(float) + model.population_rate_ * 365.0) / (tenure + 365.0)
    np.testing.assert_allclose(model.predict(features, 365, alive), rate * 365 * alive, rtol=1e-9)
    assert model.population_rate_ == pytest.approx(features["acct_referred_customers"].sum() / tenure.sum())


def test_the_referred_customer_value_comes_with_its_interval(value_parts):
    _, features, _, _ = value_parts
    model = ReferralModel(confidence=0.95).fit(features)
    values = features.loc[features["acct_is_referred"] == 1, "historical_value"].to_numpy(float)
    assert model.n_referred_ == values.size >= 20
    assert model.referred_customer_value_ == pytest.approx(values.mean())
    low, high = model.referred_customer_value_interval_
    half = 1.959964 * values.std(ddof=1) / np.sqrt(values.size)
    assert (low, high) == pytest.approx((values.mean() - half, values.mean() + half), rel=1e-5)
    few = ReferralModel(min_referred=10**6, default_value=12.5).fit(features)
    assert few.referred_customer_value_ == 12.5 and np.isnan(few.referred_customer_value_interval_).all()
    assert "config default" in few.referred_customer_value_source_


def test_the_level_is_the_recent_flow_and_the_model_round_trips(value_parts):
    _, features, _, _ = value_parts
    rng = np.random.default_rng(0)
    alive = rng.uniform(0.2, 1.0, len(features))
    recent = rng.poisson(0.05, len(features))
    model = ReferralModel(recent_days=180).fit(features, alive, past_features=features, past_alive=alive,
                                               past_referrals=rng.poisson(0.1, len(features)), window_days=365,
                                               recent_referrals=recent)
    established = features["acct_tenure_days"].to_numpy() >= 180
    assert model.predict(features, 365, alive).sum() == pytest.approx(recent[established].sum() / 180 * 365)
    assert model.shape_source_.startswith("Poisson regression")
    again = ReferralModel.from_dict(json.loads(json.dumps(model.to_dict())))
    np.testing.assert_allclose(again.predict(features, 200, alive), model.predict(features, 200, alive))
    assert again.referred_customer_value_interval_ == pytest.approx(model.referred_customer_value_interval_)


def test_value_models_saved_before_the_referral_model_still_load(value_parts, tmp_path):
    settings, features, purchases, spend = value_parts
    model = ValueModel(settings, purchases, spend, churn_model=None).fit(features)
    assert model.referred_customer_value_ == model.referral_model_.referred_customer_value_
    saved = json.loads((model.save(tmp_path / "new") / "value_model.json").read_text())
    assert saved["referral_model"]["kind"] == "referrals"
    scores = model.predict(features, "2024-07-01")
    old = tmp_path / "old"
    old.mkdir()
    saved.pop("referral_model")  # what a model saved before this module holds
    (old / "value_model.json").write_text(json.dumps(saved))
    for directory in (tmp_path / "new", old):
        loaded = ValueModel.load(directory).predict(features, "2024-07-01")
        np.testing.assert_allclose(loaded["expected_referrals"], scores["expected_referrals"], rtol=1e-9)
        np.testing.assert_allclose(loaded["customer_value"], scores["customer_value"], rtol=1e-9)


@pytest.mark.slow
def test_on_a_20k_world_the_total_is_within_ten_percent_and_the_ranking_beats_past_referrals():
    """The referral model alone (BG/NBD's P(alive) as the alive probability, no boosted parts):
    shape from the year before the cutoff, level from its last 180 days, against the next year."""
    from customer_value.config import Settings
    from customer_value.probabilistic.purchases import PurchaseModel
    from customer_value.simulation.world import simulate_world
    from customer_value.units import in_units
    from customer_value.valuation.value import rfm_of

    settings = Settings()
    world = simulate_world(20_000, 11, settings=settings)
    cutoff, horizon = dt.date(2023, 10, 1), settings.horizon_days
    start = cutoff - dt.timedelta(days=horizon)
    cut = tables_before(world.tables, cutoff)
    features, past = build_features(cut, cutoff, settings), build_features(cut, start, settings)
    purchases = PurchaseModel.from_settings(settings).fit(rfm_of(features))

    def alive(frame: pd.DataFrame) -> np.ndarray:
        return purchases.predict(rfm_of(frame), in_units(horizon, settings.time_unit),
                                 time_unit=settings.time_unit)["p_alive"].to_numpy(float)

    counted = realised_referrals(cut.customers, start, cutoff)
    recent = realised_referrals(cut.customers, pd.Timestamp(cutoff) - pd.Timedelta(days=180), cutoff)
    model = ReferralModel().fit(features, alive(features), past_features=past, past_alive=alive(past),
                                past_referrals=past["customer_id"].map(counted).fillna(0).to_numpy(),
                                window_days=horizon, recent_referrals=features["customer_id"].map(recent).fillna(0).to_numpy())
    realised = features[["customer_id"]].merge(build_targets(world.tables, cutoff, settings), on="customer_id",
                                               how="left")["referrals"].to_numpy(float)
    expected = model.predict(features, horizon, alive(features))
    ratio = expected.sum() / realised.sum()
    print(f"20k world, cutoff {cutoff}: {expected.sum():.0f} expected vs {realised.sum():.0f} realised "
          f"(ratio {ratio:.3f}); Spearman {ev.spearman(realised, expected):.4f} vs past referrals "
          f"{ev.spearman(realised, features['acct_referred_customers']):.4f}")
    assert abs(ratio - 1.0) <= 0.10
    past_count = features["acct_referred_customers"].to_numpy(float)
    assert ev.spearman(realised, expected) > ev.spearman(realised, past_count)
    assert ev.roc_auc(realised > 0, expected) > ev.roc_auc(realised > 0, past_count)
    classic = ReferralModel().fit(features).predict(features, horizon, alive(features))
    assert abs(classic.sum() / realised.sum() - 1.0) > abs(ratio - 1.0)  # last year's per-customer rate overstates


def test_the_past_window_fit_enters_the_value_model_and_reads_only_the_past(value_parts, tmp_path):
    from customer_value.simulation.world import simulate_world
    from customer_value.valuation.referrals import fit_referral_model, use_referral_model

    settings, features, purchases, spend = value_parts
    world = simulate_world(1500, 5, settings=settings)  # the value_parts world
    day = dt.date(2024, 7, 1)
    past = build_features(tables_before(world.tables, day), day - dt.timedelta(days=365), settings)
    model = ValueModel(settings, purchases, spend).fit(features)
    before = model.predict(features, day)["customer_value"]
    fitted = fit_referral_model(model, tables_before(world.tables, day), day, features, past, 365)
    assert fitted.shape_source_.startswith("Poisson regression") and fitted.level_source_.startswith("recent flow")
    full = fit_referral_model(model, world.tables, day, features, past, 365)  # later rows are never read
    assert full.coef_ == pytest.approx(fitted.coef_) and full.level_ == pytest.approx(fitted.level_)
    use_referral_model(model, fitted)
    assert model.referred_customer_value_interval_ == fitted.referred_customer_value_interval_
    scores = model.predict(features, day)
    np.testing.assert_allclose(scores["expected_referrals"], fitted.predict(features, 365, scores["adjusted_p_alive"]))
    assert not np.allclose(scores["customer_value"], before)
    loaded = ValueModel.load(model.save(tmp_path)).predict(features, day)
    np.testing.assert_allclose(loaded["expected_referrals"], scores["expected_referrals"], rtol=1e-9)
