"""CostToServeModel: Tweedie default, objective comparison, per-component models, determinism,
persistence and explanations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from customer_value import metrics as ev
from customer_value.boosted.cost_to_serve import AUTO_OBJECTIVES, OBJECTIVES, CostToServeModel, tweedie_feval
from customer_value.boosted.explain import mean_abs_contributions, top_drivers


def cost_frame(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features and a cost made of two components: support (zero-inflated, heavy-tailed,
    driven by past tickets) and orders (driven by purchase frequency)."""
    rng = np.random.default_rng(seed)
    f = pd.DataFrame({
        "customer_id": [f"c{seed}_{i}" for i in range(n)],
        "hist_tickets": rng.poisson(rng.gamma(0.5, 2.0, n)).astype(float),
        "purchases_365d": rng.poisson(6, n).astype(float),
        "noise": rng.normal(size=n),
        "region": pd.array(rng.choice(["eu", "us"], n), dtype="str"),
    })
    support = rng.gamma(1.5, 10.0, n) * rng.poisson(0.3 + 0.8 * f["hist_tickets"])
    orders = 2.0 * rng.poisson(0.2 + f["purchases_365d"] * (1.0 + 0.5 * (f["region"] == "us")))
    components = pd.DataFrame({"cost_support": support, "cost_orders_and_fees": orders.astype(float)})
    return f, components


@pytest.fixture(scope="module")
def data():
    X, comp = cost_frame(4000, 1)
    Xv, comp_v = cost_frame(1500, 2)
    return X, comp, Xv, comp_v


@pytest.fixture(scope="module")
def fitted(data):
    X, comp, Xv, comp_v = data
    return CostToServeModel(num_boost_round=300, num_threads=1).fit(X, comp.sum(axis=1), Xv, comp_v.sum(axis=1))


def test_init_only_stores_arguments():
    model = CostToServeModel(objective=("tweedie", "l2_log1p"), per_component=True)
    assert not [k for k in vars(model) if k.endswith("_")]
    assert clone(model).get_params() == model.get_params()


def test_tweedie_default_predicts_non_negative_costs(fitted, data):
    _, _, Xv, comp_v = data
    y = comp_v.sum(axis=1).to_numpy()
    m = fitted
    assert m.objective_ == "tweedie" and list(m.objective_scores_) == ["tweedie"]
    assert m.per_component_ is False
    pred = m.predict(Xv)
    assert pred.shape == (len(Xv),) and (pred >= 0).all()
    assert ev.spearman(y, pred) > 0.5
    assert ev.tweedie_deviance(y, pred) < ev.tweedie_deviance(y, np.full_like(y, y.mean()))
    imp = mean_abs_contributions(m, Xv)
    assert imp["hist_tickets"] > imp["noise"] and imp["purchases_365d"] > imp["noise"]


def test_objectives_are_compared_on_one_scale(data):
    X, comp, Xv, comp_v = data
    y, yv = comp.sum(axis=1), comp_v.sum(axis=1)
    m = CostToServeModel(objective=OBJECTIVES, num_boost_round=200, num_threads=1).fit(X, y, Xv, yv)
    assert list(m.objective_scores_) == list(OBJECTIVES)
    assert CostToServeModel(objective="auto").candidates() == list(AUTO_OBJECTIVES)
    assert all(np.isfinite(v) for v in m.objective_scores_.values())
    assert m.objective_ == min(m.objective_scores_, key=m.objective_scores_.get)
    assert m.valid_score_ == pytest.approx(ev.tweedie_deviance(yv, m.predict(Xv)))
    assert (m.predict(Xv) >= 0).all()
    by_rmse = CostToServeModel(
        objective=("l2", "l2_log1p"), selection_metric="rmse", num_boost_round=200, num_threads=1
    ).fit(X, y, Xv, yv)
    assert by_rmse.valid_score_ == pytest.approx(ev.rmse(yv, by_rmse.predict(Xv)))


def test_per_component_kept_only_if_it_validates_better(data):
    X, comp, Xv, comp_v = data
    y, yv = comp.sum(axis=1), comp_v.sum(axis=1)
    m = CostToServeModel(per_component=True, num_boost_round=200, num_threads=1).fit(X, y, Xv, yv, comp, comp_v)
    scores = m.component_scores_
    assert set(scores) == {"total", "per_component"}
    assert m.per_component_ == (scores["per_component"] < scores["total"])
    pred = m.predict(Xv)
    assert (pred >= 0).all()
    if m.per_component_:
        np.testing.assert_allclose(m.predict_components(Xv).sum(axis=1), pred)
    else:
        assert m.predict_components(Xv) is None
    with pytest.raises(ValueError, match="components"):
        CostToServeModel(per_component=True).fit(X, y, Xv, yv)


def test_same_data_and_seed_give_identical_models(data, fitted):
    X, comp, Xv, comp_v = data
    again = CostToServeModel(num_boost_round=300, num_threads=1).fit(X, comp.sum(axis=1), Xv, comp_v.sum(axis=1))
    assert again.booster_.model_to_string() == fitted.booster_.model_to_string()
    np.testing.assert_array_equal(again.predict(Xv), fitted.predict(Xv))


def test_round_trips_through_json(fitted, data):
    _, _, Xv, _ = data
    restored = CostToServeModel.from_dict(json.loads(json.dumps(fitted.to_dict())))
    np.testing.assert_allclose(restored.predict(Xv), fitted.predict(Xv), rtol=1e-12)


def test_drivers_explain_the_log_of_the_cost(fitted, data):
    _, _, Xv, _ = data
    head = Xv.head(10)
    contrib = fitted.contributions(head)
    np.testing.assert_allclose(np.exp(contrib.sum(axis=1)), fitted.predict(head), rtol=1e-6)
    drivers = top_drivers(fitted, head, k=3, ids=np.arange(10))
    assert drivers["customer_id"].tolist() == list(range(10))
    assert set(drivers["driver_1"]) <= set(fitted.feature_names_)


def test_feval_and_bad_labels(data):
    X, comp, Xv, comp_v = data
    with pytest.raises(ValueError, match="non-negative"):
        CostToServeModel().fit(X, -comp.sum(axis=1), Xv, comp_v.sum(axis=1))
    with pytest.raises(ValueError, match="objective"):
        CostToServeModel(objective="huber").fit(X, comp.sum(axis=1), Xv, comp_v.sum(axis=1))

    class _Data:
        def get_label(self):
            return np.log1p(np.array([0.0, 3.0]))

    name, value, higher = tweedie_feval(log1p_label=True)(np.log1p(np.array([0.5, 3.0])), _Data())
    assert name == "tweedie_deviance" and not higher
    assert value == pytest.approx(ev.tweedie_deviance([0.0, 3.0], [0.5, 3.0]))
