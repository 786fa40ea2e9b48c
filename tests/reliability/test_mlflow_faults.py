"""MLflow faults against a real `mlflow server` on 127.0.0.1 (issue 16): a server that is down
when training starts, killed mid-run, restarted between train and score, and an alias moved while
scoring. Every wait is bounded; every server is stopped."""

from __future__ import annotations

import os
import subprocess
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from customer_value.cli import app
from reliability_helpers import AS_OF, BIN, MlflowServer, cli_train_args, one_error_line, wait_until

runner = CliRunner()


def _point_at(server_url: str, monkeypatch, home) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", server_url)
    monkeypatch.setenv("CUSTOMER_VALUE_HOME", str(home))
    mlflow.set_tracking_uri(server_url)


def _client(url: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=url, registry_uri=url)


@pytest.mark.slow
def test_a_server_down_when_training_starts_fails_fast_and_registers_nothing(
        restartable_server, small_world, fast_config, tmp_path, monkeypatch):
    _point_at(restartable_server.url, monkeypatch, tmp_path / "home")
    restartable_server.stop()
    started = time.monotonic()
    result = runner.invoke(app, cli_train_args(small_world, fast_config, "faults-down", "--name", "cv_down"))
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert f"cannot reach the MLflow tracking server at {restartable_server.url}" in line
    assert "connection refused" in line
    assert elapsed < 20, f"took {elapsed:.1f} s to notice"

    restartable_server.start()
    client = _client(restartable_server.url)
    assert client.search_registered_models() == []
    assert client.get_experiment_by_name("faults-down") is None  # not even an experiment


@pytest.mark.slow
def test_a_server_killed_mid_run_fails_the_job_and_the_rerun_closes_the_run(
        restartable_server, small_world, fast_config, tmp_path):
    url = restartable_server.url
    env = {**os.environ, "MLFLOW_TRACKING_URI": url, "CUSTOMER_VALUE_HOME": str(tmp_path / "home")}
    command = [str(BIN / "customer-value"), *cli_train_args(small_world, fast_config, "faults-killed",
                                                             "--name", "cv_killed")]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    client = _client(url)

    def fitting() -> bool:  # the parent run and a few part / trial runs exist: mid-fit
        experiment = client.get_experiment_by_name("faults-killed")
        return experiment is not None and len(client.search_runs([experiment.experiment_id])) >= 3

    try:
        assert wait_until(lambda: proc.poll() is not None or fitting(), 240, 0.5), "training never started"
        assert proc.poll() is None, proc.communicate()[1].decode()[-3000:]
        restartable_server.kill()
        killed_at = time.monotonic()
        _, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    stderr = stderr.decode()
    assert proc.returncode == 1, stderr[-3000:]
    line = one_error_line(stderr)
    assert url in line and ("lost the MLflow tracking server" in line or "cannot reach" in line)
    assert time.monotonic() - killed_at < 120

    restartable_server.start()
    experiment = client.get_experiment_by_name("faults-killed")
    abandoned = client.search_runs([experiment.experiment_id], "tags.`customer_value.run_type` = 'train'")
    assert [r.info.status for r in abandoned] == ["RUNNING"]  # the server could not be told
    assert client.search_registered_models() == []

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert rerun.stdout.strip().splitlines()[-1] == "models:/cv_killed/1"
    first = client.get_run(abandoned[0].info.run_id)
    assert first.info.status == "FAILED"
    assert "marked FAILED by a later run" in first.data.tags["customer_value.failure"]
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    assert not [r.info.run_id for r in runs if r.info.status == "RUNNING"]  # its part runs too
    versions = client.search_model_versions("name = 'cv_killed'")
    assert len(versions) == 1 and versions[0].run_id != first.info.run_id


def test_runs_of_a_dead_process_are_marked_failed_and_live_ones_kept(mlflow_store):
    """What the rerun does after a lost server, on any store: close what a dead process left open."""
    import socket
    import sys

    import mlflow
    from mlflow import MlflowClient

    from customer_value.tracking.runs import FAILURE_TAG, OWNER_HOST, OWNER_PID, mark_abandoned_runs, tracked_run
    from customer_value.tracking.store import experiment_id

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    experiment = experiment_id("abandoned")
    client = MlflowClient()
    with tracked_run(experiment_id=experiment, run_name="killed") as killed:
        pass
    client.set_terminated(killed.info.run_id, "RUNNING")  # as a killed process leaves it
    client.set_tag(killed.info.run_id, OWNER_PID, str(dead.pid))
    live = mlflow.start_run(experiment_id=experiment, run_name="live",
                            tags={OWNER_HOST: socket.gethostname(), OWNER_PID: str(os.getpid())})
    try:
        assert mark_abandoned_runs(experiment) == [killed.info.run_id]
    finally:
        mlflow.end_run()
    assert client.get_run(killed.info.run_id).info.status == "FAILED"
    assert "marked FAILED by a later run" in client.get_run(killed.info.run_id).data.tags[FAILURE_TAG]
    assert client.get_run(live.info.run_id).info.status == "FINISHED"


def test_a_failing_run_is_marked_failed(mlflow_store):
    from mlflow import MlflowClient

    from customer_value.tracking.runs import child_run, tracked_run
    from customer_value.tracking.store import experiment_id

    experiment = experiment_id("failing")
    with pytest.raises(ZeroDivisionError):
        with tracked_run(experiment_id=experiment, run_name="parent") as parent:
            with child_run("part") as child:
                1 / 0
    client = MlflowClient()
    assert client.get_run(parent.info.run_id).info.status == "FAILED"
    assert client.get_run(child.info.run_id).info.status == "FAILED"


# ---------------------------------------------------------------------------------------------
# one server and one trained model for the next two tests


@pytest.fixture(scope="module")
def served_model(_migrated_store, small_world, fast_config, tmp_path_factory):
    """A server with `cv_served` version 1 (alias champion) trained through the CLI."""
    root = tmp_path_factory.mktemp("served")
    server = MlflowServer(root / "server", _migrated_store)
    server.start()
    try:
        with pytest.MonkeyPatch.context() as mp:
            _point_at(server.url, mp, root / "home")
            result = runner.invoke(app, cli_train_args(small_world, fast_config, "faults-served", "--name", "cv_served"))
        assert result.exit_code == 0, (result.output, result.exception)
        assert result.stdout.strip().splitlines()[-1] == "models:/cv_served/1"
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_a_server_restarted_between_train_and_score(served_model, small_world, tmp_path, monkeypatch):
    served_model.restart()
    _point_at(served_model.url, monkeypatch, tmp_path / "home")
    out = tmp_path / "scores.parquet"
    result = runner.invoke(app, ["score", "--data", str(small_world), "--as-of", AS_OF.isoformat(),
                                 "--model", "models:/cv_served@champion", "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    scores = pd.read_parquet(out)
    assert set(scores["model_uri"]) == {"models:/cv_served/1"} and len(scores) > 0


@pytest.mark.slow
def test_an_alias_moved_while_scoring_does_not_change_the_recorded_version(served_model, small_world, tmp_path,
                                                                           monkeypatch):
    import mlflow

    _point_at(served_model.url, monkeypatch, tmp_path / "home")
    client = _client(served_model.url)
    source = client.get_model_version("cv_served", "1").source
    second = mlflow.register_model(source, "cv_served").version
    client.set_registered_model_alias("cv_served", "champion", "1")

    loaded = []
    real_load = mlflow.pyfunc.load_model

    def alias_moves_meanwhile(uri, *args, **kwargs):
        client.set_registered_model_alias("cv_served", "champion", second)  # someone promotes a new version
        loaded.append(uri)
        return real_load(uri, *args, **kwargs)

    monkeypatch.setattr(mlflow.pyfunc, "load_model", alias_moves_meanwhile)
    out = tmp_path / "scores.parquet"
    result = runner.invoke(app, ["score", "--data", str(small_world), "--as-of", AS_OF.isoformat(),
                                 "--model", "models:/cv_served@champion", "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    assert loaded == ["models:/cv_served/1"]  # resolved once, before loading: the version is what is loaded
    scores = pd.read_parquet(out)
    assert set(scores["model_uri"]) == {"models:/cv_served/1"}
    assert set(scores["model_version"]) == {"1"} and set(scores["model_alias"]) == {"champion"}
    scoring = client.search_runs([client.get_experiment_by_name("cv_served-scoring").experiment_id],
                                 order_by=["attributes.start_time DESC"], max_results=1)[0]
    assert scoring.data.tags["customer_value.model_uri"] == "models:/cv_served/1"
    assert str(client.get_model_version_by_alias("cv_served", "champion").version) == str(second)
