"""DrainModel: P(net value < 0) with its F1-optimal flag threshold."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone

from customer_value.boosted.drain import DrainModel, f1_threshold
from test_churn import churn_frame


def _brute_force_f1(y: np.ndarray, p: np.ndarray) -> float:
    best, best_f1 = 0.5, -1.0
    for cut in sorted(set(p), reverse=True):  # highest cut first: ties keep fewer flags
        flag = p >= cut
        f1 = 2 * np.sum(flag & y) / (flag.sum() + y.sum())
        if f1 > best_f1 + 1e-12:
            best, best_f1 = cut, f1
    return float(best)


@pytest.mark.parametrize("seed", range(5))
def test_f1_threshold_is_the_best_cut(seed):
    rng = np.random.default_rng(seed)
    p = np.round(rng.random(300), 2)  # ties on purpose
    y = rng.random(300) < p**2
    assert f1_threshold(y, p) == pytest.approx(_brute_force_f1(y, p))


def test_f1_threshold_without_positives_is_a_half():
    assert f1_threshold(np.zeros(10, bool), np.linspace(0, 1, 10)) == 0.5


@pytest.fixture(scope="module")
def data():
    X, y = churn_frame(3000, 11)
    Xv, yv = churn_frame(1200, 12)
    return X, y, Xv, yv


@pytest.fixture(scope="module")
def fitted(data):
    X, y, Xv, yv = data
    return DrainModel(num_boost_round=200, seed=3, num_threads=1).fit(X, y, Xv, yv)


def test_init_only_stores_arguments():
    model = DrainModel(threshold=0.4, seed=5)
    assert model.get_params()["threshold"] == 0.4
    assert not [k for k in vars(model) if k.endswith("_")]
    assert clone(model).get_params() == model.get_params()


def test_threshold_is_f1_optimal_on_validation_and_flags_follow_it(fitted, data):
    X, y, Xv, yv = data
    p = fitted.predict_proba(Xv)
    assert fitted.threshold_ == pytest.approx(_brute_force_f1(yv > 0, p))
    np.testing.assert_array_equal(fitted.flag(Xv), p >= fitted.threshold_)
    flag = fitted.flag(Xv)
    f1 = 2 * np.sum(flag & (yv > 0)) / (flag.sum() + (yv > 0).sum())
    for other in (0.2, 0.5, 0.8):  # no fixed cut does better on the rows the threshold was chosen on
        alt = p >= other
        assert f1 >= 2 * np.sum(alt & (yv > 0)) / (alt.sum() + (yv > 0).sum()) - 1e-12


def test_a_fixed_threshold_is_kept(data):
    X, y, Xv, yv = data
    model = DrainModel(num_boost_round=50, seed=3, num_threads=1, threshold=0.7).fit(X, y, Xv, yv)
    assert model.threshold_ == 0.7
    np.testing.assert_array_equal(model.flag(Xv), model.predict_proba(Xv) >= 0.7)


def test_round_trip_through_json(fitted, data):
    _, _, Xv, _ = data
    state = json.loads(json.dumps(fitted.to_dict()))
    assert state["kind"] == "drain"
    back = DrainModel.from_dict(state)
    assert back.threshold_ == fitted.threshold_
    np.testing.assert_array_equal(back.predict_proba(Xv), fitted.predict_proba(Xv))
