"""Scoring runs (tracking/runs.py): what they are tagged with, which earlier scoring is the drift
baseline, and the training quality of a registered version, on a store of their own (no model)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from customer_value.tracking.runs import (
    ScoredModel,
    is_quality_metric,
    log_scoring_run,
    previous_scoring,
    scoring_drift,
    training_quality,
)
from score_frames import synthetic_scores

AS_OF = dt.date(2024, 7, 1)


def _log(model: ScoredModel, scores: pd.DataFrame, tmp_path: Path, **kwargs) -> str:
    baseline = previous_scoring(model)
    return log_scoring_run(scores, model, AS_OF, tmp_path / "s.parquet", pd.Series({365: 1.0}), tmp_path,
                           lambda: {}, baseline, scoring_drift(baseline, scores), **kwargs)


def test_a_model_reference_names_its_registered_model():
    by_alias = ScoredModel.of("models:/cv/3", "cv", 3, "champion")
    assert (by_alias.name, by_alias.experiment, by_alias.version, by_alias.alias) == ("cv", "cv-scoring", 3, "champion")
    assert by_alias.tags() == {"customer_value.model_uri": "models:/cv/3", "customer_value.model_name": "cv",
                               "customer_value.model_version": "3", "customer_value.model_alias": "champion"}
    local = ScoredModel.of("/models/cv", "cv")
    assert local.name == "cv" and "customer_value.model_version" not in local.tags()


def test_the_baseline_follows_the_alias_across_versions_else_the_uri(mlflow_store, tmp_path):
    scores = synthetic_scores(300, seed=1)
    v1 = ScoredModel.of("models:/cv/1", "cv", 1, "champion")
    assert previous_scoring(v1) is None
    first = _log(v1, scores, tmp_path, notes={"customer_value.churn_drivers": "path decomposition"})
    assert MlflowClient().get_run(first).data.tags["customer_value.churn_drivers"] == "path decomposition"

    v2 = ScoredModel.of("models:/cv/2", "cv", 2, "champion")  # a new champion: the last champion scoring
    found = previous_scoring(v2)
    assert found.run_id == first and found.matched == "name and alias" and found.profile
    second = _log(v2, scores.assign(customer_value=scores["customer_value"] * 2 + 50), tmp_path)
    metrics = MlflowClient().get_run(second).data.metrics
    assert metrics["drift.psi.customer_value"] > 0.25  # values doubled: a major shift

    # by version (no alias): the same URI only; another alias of the same name: not this one's history
    assert previous_scoring(ScoredModel.of("models:/cv/2", "cv", 2)).run_id == second
    assert previous_scoring(ScoredModel.of("models:/cv/1", "cv", 1)).run_id == first
    assert previous_scoring(ScoredModel.of("models:/cv/3", "cv", 3, "challenger")) is None
    # an alias never scored before falls back to the same URI
    assert previous_scoring(ScoredModel.of("models:/cv/2", "cv", 2, "challenger")).run_id == second


def test_a_failed_scoring_is_no_baseline_and_a_lost_profile_costs_only_the_drift(mlflow_store, tmp_path):
    scores = synthetic_scores(200, seed=2)
    model = ScoredModel.of("models:/cv/1", "cv", 1, "champion")
    good = _log(model, scores, tmp_path)
    with pytest.raises(RuntimeError):
        log_scoring_run(scores, model, AS_OF, tmp_path / "s.parquet", pd.Series({365: 1.0}), tmp_path,
                        lambda: (_ for _ in ()).throw(RuntimeError("figures failed")))
    assert previous_scoring(model).run_id == good  # the FAILED run in between is skipped

    artifacts = Path(mlflow.get_run(good).info.artifact_uri.removeprefix("file://"))
    (artifacts / "score_profile.json").unlink()
    lost = previous_scoring(model)
    assert lost.run_id == good and lost.profile is None and lost.error
    assert scoring_drift(lost, scores) == {}
    third = _log(model, scores, tmp_path)
    tags = MlflowClient().get_run(third).data.tags
    assert tags["customer_value.drift_against_run"] == good and tags["customer_value.drift_error"]

    # a profile that cannot be compared (another version's, say): no drift, said so, the job goes on
    artifacts = Path(mlflow.get_run(third).info.artifact_uri.removeprefix("file://"))
    (artifacts / "score_profile.json").write_text('{"customer_value": "not a profile"}')
    odd = previous_scoring(model)
    assert odd.run_id == third and scoring_drift(odd, scores) == {}
    fourth = _log(model, scores, tmp_path)
    assert "could not be compared" in MlflowClient().get_run(fourth).data.tags["customer_value.drift_error"]


def test_training_quality_is_the_validation_and_backtest_metrics_of_the_versions_run(mlflow_store, tmp_path):
    client = MlflowClient()
    experiment = mlflow.create_experiment("training", artifact_location=str(tmp_path / "artifacts"))
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_metrics({"churn.valid.roc_auc": 0.81, "churn.baseline_bgnbd.roc_auc": 0.74,
                            "backtest.value.spearman": 0.6, "backtest.baseline_historical_value.spearman": 0.5,
                            "train.seconds.total": 12.0, "churn.tuning.n_trials": 3, "purchases.r": 0.2,
                            "activities.valid.cost_orders.spearman": 0.4})
    client.create_registered_model("cv")
    version = client.create_model_version("cv", str(tmp_path), run_id=run.info.run_id)
    quality = training_quality(ScoredModel.of(f"models:/cv/{version.version}", "cv", int(version.version)))
    assert quality == {"backtest.baseline_historical_value.spearman": 0.5, "backtest.value.spearman": 0.6,
                       "churn.baseline_bgnbd.roc_auc": 0.74, "churn.valid.roc_auc": 0.81}
    assert training_quality(ScoredModel.of("/a/directory", "cv")) == {}
    assert is_quality_metric("drain.valid.flag_precision") and not is_quality_metric("churn.tuning.best_value")
