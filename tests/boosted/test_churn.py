"""ChurnModel: sklearn-style behaviour, early stopping, calibration choice, determinism,
persistence, and the SHAP drivers of boosted/explain.py."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from customer_value import metrics as ev
from customer_value.boosted.churn import CALIBRATIONS, ChurnModel, apply_calibrator, choose_calibration, fit_calibrator
from customer_value.boosted.explain import mean_abs_contributions, top_drivers


def churn_frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Raw feature frames (ids, strings) with a known churn mechanism."""
    rng = np.random.default_rng(seed)
    f = pd.DataFrame({
        "customer_id": [f"c{seed}_{i}" for i in range(n)],
        "days_since_last_purchase": rng.exponential(60, n),
        "purchases_90d": rng.poisson(2, n).astype(float),
        "noise": rng.normal(size=n),
        "plan": pd.array(rng.choice(["basic", "pro", "enterprise"], n), dtype="str"),
    })
    logit = -1.0 + 0.025 * f["days_since_last_purchase"] - 0.6 * f["purchases_90d"] + 0.8 * (f["plan"] == "pro")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return f, y


@pytest.fixture(scope="module")
def data():
    X, y = churn_frame(4000, 1)
    Xv, yv = churn_frame(1500, 2)
    return X, y, Xv, yv


@pytest.fixture(scope="module")
def fitted(data):
    X, y, Xv, yv = data
    return ChurnModel(num_boost_round=300, seed=3, num_threads=1).fit(X, y, Xv, yv)


def test_init_only_stores_arguments():
    model = ChurnModel(params={"num_leaves": 7}, calibration="platt", seed=5)
    assert model.get_params()["params"] == {"num_leaves": 7}
    assert not [k for k in vars(model) if k.endswith("_")]
    assert clone(model).get_params() == model.get_params()


def test_fit_learns_and_predicts_calibrated_probabilities(fitted, data):
    X, y, Xv, yv = data
    m = fitted
    assert m.calibration_ in CALIBRATIONS
    assert set(m.calibration_scores_) == set(CALIBRATIONS)
    assert m.calibration_scores_[m.calibration_] == min(m.calibration_scores_.values())
    assert 1 <= m.best_iteration_ < 300  # early stopping kicked in
    assert m.feature_names_ == ["days_since_last_purchase", "purchases_90d", "noise", "plan"]
    assert m.categories_ == {"plan": ["basic", "enterprise", "pro"]}
    p = m.predict_proba(Xv)
    assert p.shape == (len(Xv),) and ((p >= 0) & (p <= 1)).all()
    assert ev.roc_auc(yv, p) > 0.75
    # the booster learned the mechanism: recency matters more than noise
    imp = mean_abs_contributions(m, Xv)
    assert imp["days_since_last_purchase"] > imp["noise"]


def test_unknown_category_and_column_order_at_predict_time(fitted, data):
    _, _, Xv, _ = data
    shuffled = Xv[["plan", "noise", "customer_id", "purchases_90d", "days_since_last_purchase"]].copy()
    np.testing.assert_array_equal(fitted.predict_proba(shuffled), fitted.predict_proba(Xv))
    odd = Xv.head(3).assign(plan=["startup", "pro", None])
    assert np.isfinite(fitted.predict_proba(odd)).all()
    with pytest.raises(ValueError, match="purchases_90d"):
        fitted.predict_proba(Xv.drop(columns="purchases_90d"))


def test_same_data_and_seed_give_identical_models(data, fitted):
    X, y, Xv, yv = data
    again = ChurnModel(num_boost_round=300, seed=3, num_threads=1).fit(X, y, Xv, yv)
    assert again.booster_.model_to_string() == fitted.booster_.model_to_string()
    assert again.calibrator_ == fitted.calibrator_
    np.testing.assert_array_equal(again.predict_proba(Xv), fitted.predict_proba(Xv))


def test_round_trips_through_json(fitted, data):
    _, _, Xv, _ = data
    restored = ChurnModel.from_dict(json.loads(json.dumps(fitted.to_dict())))
    np.testing.assert_allclose(restored.predict_proba(Xv), fitted.predict_proba(Xv), rtol=0, atol=1e-12)


def test_cross_fitted_calibration_fixes_a_distorted_score():
    rng = np.random.default_rng(0)
    true_p = rng.uniform(0.05, 0.95, 20000)
    y = (rng.random(true_p.size) < true_p).astype(float)
    distorted = true_p**3  # ranks right, probabilities far too low
    best, scores = choose_calibration(distorted, y, list(CALIBRATIONS), seed=0)
    assert best != "none"
    assert scores[best] < scores["none"] - 0.01
    cal = fit_calibrator("platt", distorted, y)
    assert ev.brier(y, apply_calibrator(cal, distorted)) < ev.brier(y, distorted)
    # a well-calibrated score keeps "none" (or a calibrator no better than it by a hair)
    best_ok, scores_ok = choose_calibration(true_p, y, list(CALIBRATIONS), seed=0)
    assert scores_ok[best_ok] >= scores_ok["none"] - 1e-3


def test_top_drivers_sum_to_the_prediction(fitted, data):
    _, _, Xv, _ = data
    head = Xv.head(20)
    contrib = fitted.contributions(head)
    raw = fitted.predict_raw(head)
    np.testing.assert_allclose(1 / (1 + np.exp(-contrib.sum(axis=1))), raw, rtol=1e-6)
    drivers = top_drivers(fitted, head, k=2)
    assert list(drivers.columns) == [
        "customer_id", "driver_1", "driver_1_contribution", "driver_2", "driver_2_contribution"
    ]
    assert (drivers["customer_id"].to_numpy() == head["customer_id"].to_numpy()).all()
    assert (drivers["driver_1_contribution"] >= drivers["driver_2_contribution"]).all()
    first = contrib.drop(columns="bias").idxmax(axis=1)
    assert (drivers["driver_1"].to_numpy() == first.to_numpy()).all()
    by_abs = top_drivers(fitted, head, k=1, direction="abs", contrib=contrib)
    assert (by_abs["driver_1_contribution"].abs() >= drivers["driver_2_contribution"].abs() - 1e-12).all()


def test_forced_calibration_and_bad_arguments(data):
    X, y, Xv, yv = data
    m = ChurnModel(num_boost_round=50, calibration="isotonic", num_threads=1).fit(X, y, Xv, yv)
    assert m.calibration_ == "isotonic" and list(m.calibration_scores_) == ["isotonic"]
    with pytest.raises(ValueError, match="calibration"):
        ChurnModel(calibration="beta").fit(X, y, Xv, yv)
    with pytest.raises(ValueError, match="single class"):
        ChurnModel().fit(X, np.zeros(len(X)), Xv, yv)


def test_global_importance_samples_rows(fitted, data):
    _, _, Xv, _ = data
    sampled = mean_abs_contributions(fitted, Xv, max_rows=200, seed=1)
    expected = fitted.contributions(Xv.sample(n=200, random_state=1)).drop(columns="bias").abs().mean()
    pd.testing.assert_series_equal(sampled.sort_index(), expected.sort_index(), check_names=False)
    assert sampled.is_monotonic_decreasing
    everything = mean_abs_contributions(fitted, Xv, max_rows=None)
    assert everything.index.tolist()[0] in ("days_since_last_purchase", "purchases_90d")
