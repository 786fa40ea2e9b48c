"""The net value model: ranks a signed, heavy-tailed target, back in money by a monotone calibration."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from customer_value import metrics as ev
from customer_value.boosted.net_value import NetValueModel, rank_target


def _accounts(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Margin grows with activity, cost with support load; a few accounts lose a lot."""
    rng = np.random.default_rng(seed)
    activity = rng.gamma(2.0, 1.0, n)
    support = rng.gamma(1.0, 1.0, n)
    plan = rng.choice(["basic", "pro"], n)
    margin = rng.gamma(2.0, 50.0 * activity * np.where(plan == "pro", 2.0, 1.0))
    cost = rng.gamma(1.5, 40.0 * support ** 1.5)
    X = pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "activity": activity, "support": support,
                      "noise": rng.normal(size=n), "plan": plan})
    return X, margin - cost


@pytest.fixture(scope="module")
def fitted() -> tuple[NetValueModel, pd.DataFrame, np.ndarray]:
    X, y = _accounts(6000, 1)
    Xv, yv = _accounts(3000, 2)
    return NetValueModel(num_threads=1).fit(X, y, Xv, yv), Xv, yv


def test_rank_target_is_the_empirical_quantile() -> None:
    q = rank_target(np.array([-50.0, 3.0, 3.0, 1000.0]))
    assert q.tolist() == [0.125, 0.5, 0.5, 0.875]


def test_it_ranks_unseen_accounts_well_and_its_money_adds_up(fitted) -> None:
    model, _, _ = fitted
    X, y = _accounts(4000, 3)
    money = model.predict(X)
    assert ev.spearman(y, money) > 0.6
    assert abs(money.sum() / y.sum() - 1.0) < 0.15  # calibrated in money on the validation rows
    assert (money < 0).any() and (money > 0).any()  # signed, like the target


def test_the_money_is_strictly_increasing_in_the_score(fitted) -> None:
    model, Xv, _ = fitted
    score = np.sort(model.score(Xv))
    money = model.to_money(score)
    distinct = np.r_[True, np.diff(score) > 0]
    assert np.all(np.diff(money[distinct]) > 0)  # no ties the score separates


def test_it_survives_a_json_round_trip(fitted) -> None:
    model, Xv, _ = fitted
    again = NetValueModel.from_dict(json.loads(json.dumps(model.to_dict())))
    np.testing.assert_array_equal(again.predict(Xv), model.predict(Xv))


def test_contributions_add_up_to_the_score(fitted) -> None:
    model, Xv, _ = fitted
    contributions = model.contributions(Xv.head(50))
    np.testing.assert_allclose(contributions.sum(axis=1), model.score(Xv.head(50)), atol=1e-9)
