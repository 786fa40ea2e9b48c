"""Evaluation metrics, baselines, and their MLflow names."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from scipy import stats
from sklearn import metrics as skm

from customer_value.models import evaluation as ev
from customer_value.models.purchases import PurchaseModel


def test_churn_metrics_match_references():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500).astype(float)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 500), 0, 1)
    m = ev.churn_metrics(y, p)
    assert set(m) == set(ev.CHURN_METRICS)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, p))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, np.clip(p, 1e-6, 1 - 1e-6)))
    assert ev.roc_auc(np.ones(5), np.arange(5)) != ev.roc_auc(np.ones(5), np.arange(5))  # NaN
    # lift: positives concentrated in the top decile
    y2 = np.r_[np.ones(10), np.zeros(90)]
    assert ev.top_decile_lift(y2, -np.arange(100)) == pytest.approx(10.0)
    assert ev.top_decile_lift(y2, np.arange(100)) == 0.0


def test_cost_metrics_match_references():
    rng = np.random.default_rng(1)
    y = rng.gamma(0.5, 20, 400) * (rng.random(400) < 0.7)
    pred = 0.5 * y + rng.gamma(2, 5, 400)
    m = ev.cost_metrics(y, pred)
    assert set(m) == set(ev.COST_METRICS)
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert m["tweedie_deviance"] == pytest.approx(skm.mean_tweedie_deviance(y, pred, power=1.5))
    assert m["spearman"] == pytest.approx(stats.spearmanr(y, pred).statistic)
    assert ev.normalized_gini(y, y) == pytest.approx(1.0)
    assert abs(ev.normalized_gini(y, rng.random(400))) < 0.2
    assert ev.normalized_gini(y, pred) > 0.5
    with pytest.raises(ValueError, match="non-negative"):
        ev.tweedie_deviance([-1.0], [1.0])
    with pytest.raises(ValueError, match="length"):
        ev.mae([1.0, 2.0], [1.0])


def test_decile_table_and_backtest_helpers():
    y = np.arange(100, dtype=float)
    table = ev.decile_table(y, y)
    assert len(table) == 10 and table["customers"].sum() == 100
    assert table["decile"].tolist() == list(range(1, 11))
    assert table["mean_actual"].is_monotonic_decreasing
    assert table["share_of_actual"].sum() == pytest.approx(1.0)
    assert ev.top_decile_capture(y, y) == pytest.approx(y[90:].sum() / y.sum())
    pr = ev.precision_recall_at([True, True, False, False], [True, False, True, False])
    assert pr == {"precision": 0.5, "recall": 0.5, "flagged": 2.0}
    assert np.isnan(ev.precision_recall_at([True], [False])["precision"])
    assert ev.gap_closed(0.8, 0.7, 0.9) == pytest.approx(0.5)
    assert ev.gap_closed(0.45, 0.5, 0.3) == pytest.approx(0.25)  # lower is better works too


def test_recency_baseline():
    days = np.array([10.0, 100.0, np.nan, 89.9, 90.0])
    assert ev.recency_rule(days, 90).tolist() == [False, True, True, False, True]
    score = ev.recency_score(days)
    assert score[2] > np.nanmax(days)  # never bought ranks as least recent
    rates = ev.recency_rule_rates(days, np.array([0, 1, 1, 0, 0]), 90)
    assert rates == pytest.approx((0.0, 2 / 3))
    s, p = ev.recency_baseline(days, 90, rates)
    assert p.tolist() == pytest.approx([0.0, 2 / 3, 2 / 3, 0.0, 2 / 3])


def test_bgnbd_prob_no_purchase_matches_numerical_integration():
    """P(no purchase in t | x, t_x, T) from the closed form vs a 2-D integral over the
    BG/NBD posterior of (lambda, p)."""
    params = {"r": 0.25, "alpha": 4.4, "a": 0.8, "b": 2.4}
    model = PurchaseModel.from_params(params)
    rfm = pd.DataFrame({"frequency": [0, 2, 5, 1], "recency": [0.0, 20.0, 30.0, 35.0], "T": [40.0, 38.0, 39.0, 36.0]})
    t = 10.0
    closed = ev.bgnbd_prob_no_purchase(
        model.conditional_probability_alive(rfm), rfm["frequency"], rfm["T"], params["r"], params["alpha"], t
    )
    # expectations under the prior on a grid of prior quantiles (equal weights; the densities
    # are singular at 0, which defeats a plain grid)
    u = (np.arange(3000) + 0.5) / 3000
    lam = stats.gamma.ppf(u, params["r"], scale=1 / params["alpha"])[:, None]
    p = stats.beta.ppf(u[::2], params["a"], params["b"])[None, :]
    prior = 1.0
    for i, (x, tx, T) in enumerate(rfm[["frequency", "recency", "T"]].to_numpy()):
        alive = (1 - p) ** x * lam**x * np.exp(-lam * T)
        dead = (p * (1 - p) ** (x - 1) * lam**x * np.exp(-lam * tx)) if x > 0 else 0 * alive
        like = prior * (alive + dead)
        zero = prior * (alive * np.exp(-lam * t) + dead)
        numeric = zero.sum() / like.sum()
        assert closed[i] == pytest.approx(numeric, abs=2e-3)
    # and it is consistent with the population view: more expected purchases -> less P(0)
    assert closed[2] < closed[1]


def test_log_evaluation_uses_documented_names(tmp_path):
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    try:
        exp = mlflow.create_experiment("evaluation", artifact_location=str(tmp_path / "artifacts"))
        rng = np.random.default_rng(0)
        y = rng.integers(0, 2, 300).astype(float)
        p = np.clip(0.4 * y + rng.uniform(0, 0.6, 300), 0, 1)
        cost = rng.gamma(1, 10, 300)
        churn_eval = ev.churn_evaluation(
            y, {"valid": p, "baseline_bgnbd": rng.random(300), "baseline_recency": np.full(300, 0.5)},
            scores={"baseline_recency": rng.random(300)},
        )
        cost_eval = ev.cost_evaluation(cost, {"valid": cost * 0.9 + 1, "baseline_trailing": rng.gamma(1, 10, 300)})
        figures = ev.evaluation_figures(
            churn_true=y, churn_probs={"model": p}, cost_true=cost, cost_preds={"valid": cost},
            importance={"churn": pd.Series({"a": 1.0, "b": 0.5})},
        )
        with mlflow.start_run(experiment_id=exp) as run:
            logged = ev.log_evaluation(churn=churn_eval, cost=cost_eval, figures=figures)
        data = MlflowClient().get_run(run.info.run_id).data
        for name in ("churn.valid.roc_auc", "churn.valid.brier", "churn.baseline_recency.roc_auc",
                     "churn.baseline_bgnbd.log_loss", "churn.valid.top_decile_lift", "cost.valid.spearman",
                     "cost.valid.tweedie_deviance", "cost.baseline_trailing.gini", "cost.valid.r2"):
            assert name in data.metrics
        assert data.metrics == pytest.approx(logged)
        assert data.metrics["churn.valid.roc_auc"] == pytest.approx(ev.roc_auc(y, p))
        artifacts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id, "evaluation")}
        assert artifacts == {"evaluation/churn_calibration.png", "evaluation/churn_lift.png",
                             "evaluation/cost_deciles_valid.png", "evaluation/churn_importance.png"}
        with pytest.raises(RuntimeError, match="active MLflow run"):
            ev.log_evaluation(churn=churn_eval)
    finally:
        mlflow.set_tracking_uri(previous)
