"""What the runs record: evaluation metrics under their documented names, figures as artifacts."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from customer_value import metrics as ev
from customer_value.evaluation.figures import evaluation_figures
from customer_value.tracking.runs import log_figures, log_metrics


def test_logged_evaluation_uses_documented_names(tmp_path):
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
        figures = evaluation_figures(
            churn_true=y, churn_probs={"model": p}, cost_true=cost, cost_preds={"valid": cost},
            importance={"churn": pd.Series({"a": 1.0, "b": 0.5})},
        )
        logged = {**ev.flatten("churn", churn_eval), **ev.flatten("cost", cost_eval)}
        with mlflow.start_run(experiment_id=exp) as run:
            log_metrics(logged)
            log_figures(figures)
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
    finally:
        mlflow.set_tracking_uri(previous)
