"""A scoring budget of trees: a model that wants more is trained again with a faster learning rate."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from customer_value import metrics as ev
from customer_value.boosted.activities import ActivityVolumeModel
from customer_value.boosted.churn import ChurnModel
from customer_value.boosted.cost_to_serve import CostToServeModel
from customer_value.boosted.drain import DrainModel
from customer_value.boosted.net_value import NetValueModel


def _customers(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Churn falls with activity; cost grows with support load (both with noise to overfit)."""
    rng = np.random.default_rng(seed)
    activity, support = rng.gamma(2.0, 1.0, n), rng.gamma(1.0, 1.0, n)
    X = pd.DataFrame({"activity": activity, "support": support, "noise": rng.normal(size=(n,))})
    churned = (rng.random(n) < 1 / (1 + np.exp(activity - 2.0))).astype(float)
    cost = rng.gamma(1.5, 20.0 * support ** 1.5)
    return X, churned, cost


SLOW = {"learning_rate": 0.01}
"""A learning rate slow enough that early stopping wants several hundred trees."""


@pytest.fixture(scope="module")
def data() -> tuple:
    return _customers(5000, 1), _customers(3000, 2)


def test_churn_model_within_budget_loses_little(data) -> None:
    (X, y, _), (Xv, yv, _) = data
    free = ChurnModel(SLOW, num_threads=1).fit(X, y, Xv, yv)
    budget = ChurnModel(SLOW, num_threads=1, max_trees=40).fit(X, y, Xv, yv)
    assert free.n_trees_ > 40 >= budget.n_trees_
    assert budget.booster_.num_trees() <= 40  # trained again, not cut short
    assert budget.params_["learning_rate"] == SLOW["learning_rate"]  # the stored parameters are the tuned ones
    assert budget.valid_score_ <= free.valid_score_ * 1.01
    assert ev.roc_auc(yv, budget.predict_proba(Xv)) >= ev.roc_auc(yv, free.predict_proba(Xv)) - 0.01
    reloaded = ChurnModel.from_dict(json.loads(json.dumps(budget.to_dict())))
    assert reloaded.max_trees == 40 and reloaded.n_trees_ == budget.n_trees_
    np.testing.assert_array_equal(reloaded.predict_proba(Xv), budget.predict_proba(Xv))


def test_a_model_within_budget_is_untouched(data) -> None:
    (X, y, _), (Xv, yv, _) = data
    free = ChurnModel(SLOW, num_threads=1).fit(X, y, Xv, yv)
    roomy = ChurnModel(SLOW, num_threads=1, max_trees=free.n_trees_).fit(X, y, Xv, yv)
    np.testing.assert_array_equal(roomy.predict_proba(Xv), free.predict_proba(Xv))


def test_every_boosted_model_keeps_the_budget(data) -> None:
    (X, y, cost), (Xv, yv, cost_v) = data
    cost_model = CostToServeModel(params=SLOW, num_threads=1, max_trees=30).fit(X, cost, Xv, cost_v)
    assert cost_model.n_trees_ <= 30
    volumes = pd.DataFrame({"a": cost, "b": cost / 2})
    volumes_v = pd.DataFrame({"a": cost_v, "b": cost_v / 2})
    activities = ActivityVolumeModel(["a", "b"], params=SLOW, num_threads=1, max_trees=30).fit(
        X, volumes, Xv, volumes_v)
    assert activities.n_trees_ == sum(m.n_trees_ for m in activities.models_.values()) <= 60
    assert ActivityVolumeModel.from_dict(json.loads(json.dumps(activities.to_dict()))).n_trees_ == activities.n_trees_
    assert NetValueModel(params=SLOW, num_threads=1, max_trees=30).fit(X, -cost, Xv, -cost_v).n_trees_ <= 30
    assert DrainModel(SLOW, num_threads=1, max_trees=30).fit(X, y, Xv, yv).n_trees_ <= 30
