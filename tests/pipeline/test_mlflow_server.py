"""Against a real `mlflow server` (issue #6, item 4): train, register, move `champion`, score by alias."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline_helpers import AS_OF, check_score_file, fast_settings

pytestmark = pytest.mark.slow


def test_train_and_score_by_alias_against_a_server(mlflow_server, small_world, tmp_path, monkeypatch):
    import mlflow
    from mlflow import MlflowClient

    from customer_value.pipeline.score import score
    from customer_value.pipeline.train import train

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("CUSTOMER_VALUE_HOME", str(tmp_path / "home"))
    mlflow.set_tracking_uri(mlflow_server)
    name = "cv_server"
    result = train(small_world, AS_OF, "server-tests", fast_settings(model_name=name), alias="champion", backtest=False)
    assert result.model_uri == f"models:/{name}/1"

    client = MlflowClient()
    run = client.get_run(result.run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    # a second version of the same logged model; move the alias to it
    source = client.get_model_version(name, "1").source
    second = mlflow.register_model(source, name)
    client.set_registered_model_alias(name, "champion", second.version)
    assert str(client.get_model_version_by_alias(name, "champion").version) == "2"

    out = tmp_path / "scores.parquet"
    scored = score(small_world, AS_OF, f"models:/{name}@champion", out)
    scores = pd.read_parquet(out)
    customers = pd.read_parquet(small_world / "customers.parquet")
    check_score_file(scores, customers, AS_OF, f"models:/{name}/2")
    assert client.get_run(scored.run_id).data.tags["customer_value.model_uri"] == f"models:/{name}/2"
    if mlflow.active_run():
        mlflow.end_run()
