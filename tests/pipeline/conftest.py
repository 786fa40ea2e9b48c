"""Shared fixtures of the pipeline tests: one small simulated world and one trained model per session.

Training is the slow step (tens of seconds even with one Optuna trial), so it happens once per
test session (once per xdist worker) into a session-owned copy of the already-migrated SQLite
store; tests that score against that model point ``MLFLOW_TRACKING_URI`` at it through the
``trained`` fixture. Stores and artifacts live under pytest's tmp directories, never in the repo.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from session_world import train_into_new_store

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
    result, db, home = train_into_new_store(_migrated_store, tmp_path_factory.mktemp("trained"), small_world,
                                            fast_config, "pipeline-tests")
    lines = result.stdout.strip().splitlines()
    return Trained(f"sqlite:///{db}", home, lines[-1] if lines else "", "customer_value", result.stdout, result.stderr)


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
