"""Shared fixtures of the pipeline tests: one small simulated world and one trained model per session.

Training is the slow step (tens of seconds even with one Optuna trial), so it happens once per
test session (once per xdist worker) into a session-owned copy of the already-migrated SQLite
store; tests that score against that model point ``MLFLOW_TRACKING_URI`` at it through the
``trained`` fixture. Stores and artifacts live under pytest's tmp directories, never in the repo.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline_helpers import AS_OF

@dataclass
class Trained:
    tracking_uri: str
    home: Path
    model_uri: str  # what `train` printed last
    name: str
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def trained_store(_migrated_store, small_world, fast_config, tmp_path_factory) -> Trained:
    """`customer-value train ... --alias champion --no-backtest` once, into a session-owned store."""
    from typer.testing import CliRunner

    from customer_value.cli import app

    root = tmp_path_factory.mktemp("trained")
    db = root / "mlflow" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(_migrated_store, db)
    uri = f"sqlite:///{db}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("CUSTOMER_VALUE_HOME", str(root / "home"))
        result = CliRunner().invoke(app, [
            "train", "--data", str(small_world), "--as-of", AS_OF.isoformat(), "--experiment", "pipeline-tests",
            "--config", str(fast_config), "--alias", "champion", "--no-backtest",
        ])
    assert result.exit_code == 0, (result.output, result.exception)
    lines = result.stdout.strip().splitlines()
    return Trained(uri, root / "home", lines[-1] if lines else "", "customer_value", result.stdout, result.stderr)


@pytest.fixture
def trained(trained_store, monkeypatch) -> Trained:
    """The session's trained model, with MLFLOW_TRACKING_URI and CUSTOMER_VALUE_HOME pointing at it."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_store.tracking_uri)
    monkeypatch.setenv("CUSTOMER_VALUE_HOME", str(trained_store.home))
    mlflow.set_tracking_uri(trained_store.tracking_uri)
    yield trained_store
    if mlflow.active_run():
        mlflow.end_run()
