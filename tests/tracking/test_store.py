"""Where the MLflow store is, and experiments with their artifacts beside the database."""

from __future__ import annotations

from pathlib import Path

import mlflow

from customer_value.tracking import store


def test_default_store_is_under_the_project_root(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv(store.ROOT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # the working directory does not matter
    root = store.project_root()
    assert (root / "pyproject.toml").exists() and (root / "src" / "customer_value").is_dir()
    assert store.tracking_uri() == f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert store.tracking_uri() == "http://127.0.0.1:5999"


def test_experiment_artifacts_live_beside_the_database(mlflow_store):
    eid = store.experiment_id("exp-a")
    assert store.experiment_id("exp-a") == eid
    location = mlflow.get_experiment(eid).artifact_location
    db_dir = Path(mlflow_store.removeprefix("sqlite:///")).parent
    assert location == (db_dir / "artifacts" / "exp-a").as_uri()
