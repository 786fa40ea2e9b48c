"""Optuna tuning: trials reported to a callback (child MLflow runs with documented names through
the tracking layer), resumable SQLite studies, reproducible results."""

from __future__ import annotations

import datetime as dt

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from customer_value.boosted.churn import ChurnModel
from customer_value.boosted.cost_to_serve import CostToServeModel
from customer_value.boosted.inputs import feature_matrix, learn_categories
from customer_value.config import Settings
from customer_value.tracking.runs import MlflowFitObserver, log_tuning
from customer_value.training.snapshots import TrainingSet
from customer_value.training.tuning import storage_url, tune

SETTINGS = Settings(trials=4, seed=11)
FAST = {"num_boost_round": 100, "num_threads": 1}  # one thread: tiny data, shared CI cores


def _frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    f = pd.DataFrame({
        "customer_id": [f"c{seed}_{i}" for i in range(n)],
        "days_since_last_purchase": rng.exponential(60, n),
        "purchases_365d": rng.poisson(4, n).astype(float),
        "hist_tickets": rng.poisson(rng.gamma(0.5, 2.0, n)).astype(float),
        "plan": pd.array(rng.choice(["basic", "pro"], n), dtype="str"),
    })
    logit = -1.0 + 0.025 * f["days_since_last_purchase"] - 0.4 * f["purchases_365d"]
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    comp = pd.DataFrame({
        "cost_support": rng.gamma(1.5, 10.0, n) * rng.poisson(0.3 + 0.8 * f["hist_tickets"]),
        "cost_orders_and_fees": 2.0 * rng.poisson(0.2 + f["purchases_365d"]).astype(float),
    })
    return f, churned, comp


def training_set(task: str, n: int = 2000) -> TrainingSet:
    f, churned, comp = _frame(n, 1)
    fv, churned_v, comp_v = _frame(n // 2, 2)
    cats = learn_categories(f)
    y = churned if task == "churn" else comp.sum(axis=1).to_numpy()
    yv = churned_v if task == "churn" else comp_v.sum(axis=1).to_numpy()
    targets = comp.assign(customer_id=f["customer_id"], cost_to_serve=comp.sum(axis=1), churned=churned)
    targets_v = comp_v.assign(customer_id=fv["customer_id"], cost_to_serve=comp_v.sum(axis=1), churned=churned_v)
    return TrainingSet(
        task=task, as_of=dt.date(2024, 7, 1), window_days=90 if task == "churn" else 365,
        snapshot_dates=(dt.date(2024, 3, 3), dt.date(2024, 4, 2)),
        X_train=feature_matrix(f, cats), y_train=y, X_valid=feature_matrix(fv, cats), y_valid=yv,
        groups_train=np.zeros(n, int), groups_valid=np.ones(n // 2, int),
        ids_train=f["customer_id"].to_numpy(), ids_valid=fv["customer_id"].to_numpy(),
        targets_train=targets, targets_valid=targets_v, categories=cats, timings={},
    )


@pytest.fixture(scope="module")
def churn_set() -> TrainingSet:
    return training_set("churn")


@pytest.fixture(scope="module")
def cost_set() -> TrainingSet:
    return training_set("cost")


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """One migrated SQLite MLflow store for the module, with an experiment per test."""
    root = tmp_path_factory.mktemp("mlflow")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
    yield root
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(previous)


def _experiment(root, name: str) -> str:
    return mlflow.create_experiment(name, artifact_location=str(root / "artifacts" / name))


def test_trials_are_child_runs_with_documented_names(tracking, churn_set, cost_set, tmp_path):
    exp = _experiment(tracking, "tuning-children")
    observer = MlflowFitObserver()
    with mlflow.start_run(experiment_id=exp, run_name="train") as parent:
        churn = tune(churn_set, SETTINGS, on_trial=observer.trial, **FAST)
        log_tuning(churn)
        cost = tune(cost_set, SETTINGS, n_trials=3, on_trial=observer.trial, **FAST,
                    final_model_kwargs={"objective": ("tweedie", "l2_log1p"), "per_component": True})
        log_tuning(cost)
    client = MlflowClient()
    runs = client.search_runs([exp], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    names = sorted(r.info.run_name for r in runs)
    assert names == [f"churn-trial-{i:03d}" for i in range(4)] + [f"cost-trial-{i:03d}" for i in range(3)]
    for r in runs:
        task = r.data.tags["task"]
        assert r.data.tags["optuna.state"] in ("COMPLETE", "PRUNED")
        assert r.data.tags["optuna.study"] == f"{task}-2024-07-01"
        metric = "churn.valid.binary_logloss" if task == "churn" else "cost.valid.tweedie_deviance"
        assert metric in r.data.metrics
        assert "learning_rate" in r.data.params and "num_leaves" in r.data.params
        if task == "cost":
            assert 1.1 <= float(r.data.params["tweedie_variance_power"]) <= 1.9
    top = client.get_run(parent.info.run_id)
    for task, result in (("churn", churn), ("cost", cost)):
        assert top.data.metrics[f"{task}.tuning.best_value"] == pytest.approx(result.best_value)
        assert top.data.metrics[f"{task}.tuning.n_trials"] == result.n_trials
        assert f"{task}.tuning.n_pruned" in top.data.metrics and f"{task}.tuning.seconds" in top.data.metrics
        assert f"{task}.best.learning_rate" in top.data.params
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "tuning")}
    assert artifacts == {"tuning/churn_optimization_history.png", "tuning/cost_optimization_history.png"}
    # the returned models are fitted and usable
    assert isinstance(churn.model, ChurnModel) and isinstance(cost.model, CostToServeModel)
    assert set(cost.model.objective_scores_) == {"tweedie", "l2_log1p"}
    assert cost.model.params["tweedie_variance_power"] == cost.best_params["tweedie_variance_power"]
    assert churn.n_complete + churn.n_pruned == 4
    assert churn.best_value == pytest.approx(churn.model.valid_score_)


def test_without_an_active_run_nothing_is_logged(tracking, churn_set):
    exp = _experiment(tracking, "tuning-silent")
    mlflow.set_experiment(experiment_id=exp)
    result = tune(churn_set, SETTINGS, n_trials=2, **FAST)
    assert result.n_trials == 2
    assert MlflowClient().search_runs([exp]) == []


def test_study_resumes_from_sqlite_and_is_reproducible(churn_set, tmp_path):
    def interrupted(db):
        first = tune(churn_set, SETTINGS, n_trials=2, storage=db, **FAST)
        first_params = [t.params for t in first.study.trials]
        resumed = tune(churn_set, SETTINGS, n_trials=4, storage=db, **FAST)
        return first_params, resumed

    db = tmp_path / "optuna" / "studies.db"
    first_params, resumed = interrupted(db)
    assert resumed.n_trials == 4 and len(resumed.study.trials) == 4
    params = [t.params for t in resumed.study.trials]
    assert params[:2] == first_params
    assert len({tuple(sorted(p.items())) for p in params}) == 4  # no replayed proposals
    # nothing left to do: no new trial, same best
    again = tune(churn_set, SETTINGS, n_trials=4, storage=db, **FAST)
    assert len(again.study.trials) == 4 and again.best_params == resumed.best_params
    # the same interrupted sequence elsewhere gives the same trials, best and model
    _, twin = interrupted(tmp_path / "twin.db")
    assert [t.params for t in twin.study.trials] == params
    assert [t.value for t in twin.study.trials] == [t.value for t in resumed.study.trials]
    np.testing.assert_array_equal(
        twin.model.predict_proba(churn_set.X_valid), again.model.predict_proba(churn_set.X_valid)
    )
    # an uninterrupted in-memory study with the same seed starts with the same proposals
    fresh = tune(churn_set, SETTINGS, n_trials=2, **FAST)
    assert [t.params for t in fresh.study.trials] == first_params
    # a different training set cannot resume this study
    with pytest.raises(ValueError, match="different training set"):
        tune(training_set("churn", n=1000), SETTINGS, n_trials=5, storage=db)
    assert storage_url(db) == f"sqlite:///{db.resolve()}"
    assert storage_url("postgresql://h/db") == "postgresql://h/db"


def test_zero_trials_fits_the_defaults(cost_set):
    result = tune(cost_set, SETTINGS, n_trials=0, **FAST)
    assert result.n_trials == 0 and result.best_params == {}
    assert isinstance(result.model, CostToServeModel) and np.isfinite(result.best_value)


def test_a_search_whose_trees_never_split_falls_back_to_the_defaults(cost_set, monkeypatch):
    """A sampled min_data_in_leaf beyond the training set (as on a small, young base) grows trees
    that never split: the forecast is one value for everyone. The final model is then the
    defaults', which split, and the result says why."""
    import customer_value.training.tuning as tuning

    def unsplittable(trial, task):
        return {"learning_rate": trial.suggest_float("learning_rate", 0.05, 0.1),
                "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 5000, 6000), "bagging_freq": 1}

    monkeypatch.setattr(tuning, "search_space", unsplittable)
    result = tune(cost_set, SETTINGS, n_trials=1, **FAST)
    assert "2,000 training rows" in result.fallback and "refitted with the defaults" in result.fallback
    assert not result.learned_nothing and result.best_params == {}
    assert np.ptp(result.model.predict(cost_set.X_valid)) > 0
    assert result.n_complete == 1  # the search's own trial is still reported


def test_a_model_that_cannot_split_even_with_the_defaults_says_it_learned_nothing(cost_set):
    tiny = training_set("cost", n=150)  # under twice the defaults' min_data_in_leaf: no split is possible
    result = tune(tiny, SETTINGS, n_trials=1, **FAST)
    assert result.learned_nothing and result.fallback is None
    searched = tune(cost_set, SETTINGS, n_trials=1, **FAST)  # a search whose best model splits is untouched
    assert searched.fallback is None and not searched.learned_nothing and searched.best_params


def test_search_on_a_subsample_refits_on_all_rows(churn_set):
    result = tune(churn_set, SETTINGS, n_trials=2, max_tuning_rows=500, **FAST)
    assert result.n_trials == 2
    full = ChurnModel(params=result.best_params, seed=SETTINGS.seed, early_stopping_rounds=30, **FAST).fit(
        churn_set.X_train, churn_set.y_train, churn_set.X_valid, churn_set.y_valid
    )
    assert result.model.booster_.model_to_string() == full.booster_.model_to_string()
