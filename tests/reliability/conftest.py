"""Fixtures of the reliability tests (issue 16): one trained model per session (on the shared small world) that
each test gets its own copy of, and MLflow servers that a test may stop, kill and restart.

Servers bind 127.0.0.1 on a free port, run in their own process group (so a kill takes their
workers too), wait for /health in a bounded loop, and are always stopped.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from reliability_helpers import MlflowServer
from session_world import train_into_new_store


@dataclass
class TrainedStore:
    db: Path
    home: Path
    model_uri: str
    name: str = "customer_value"


@pytest.fixture(scope="session")
def _trained_store(_migrated_store, small_world, fast_config, tmp_path_factory) -> TrainedStore:
    """`customer-value train ... --alias champion --no-backtest` once per session (per xdist worker)."""
    result, db, home = train_into_new_store(_migrated_store, tmp_path_factory.mktemp("reliability-trained"),
                                            small_world, fast_config, "reliability")
    return TrainedStore(db, home, result.stdout.strip().splitlines()[-1])


@dataclass
class Trained:
    tracking_uri: str
    model_uri: str
    name: str


@pytest.fixture
def trained(_trained_store, tmp_path, monkeypatch) -> Trained:
    """This test's own copy of the session's store (registry changes stay in the test); the
    artifacts are shared and only read. MLFLOW_TRACKING_URI points at the copy."""
    import mlflow

    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(_trained_store.db, db)
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("CUSTOMER_VALUE_HOME", str(_trained_store.home))
    mlflow.set_tracking_uri(uri)
    yield Trained(uri, _trained_store.model_uri, _trained_store.name)
    if mlflow.active_run():
        mlflow.end_run()


@pytest.fixture
def restartable_server(_migrated_store, tmp_path):
    """A stopped-and-startable `mlflow server` (already started); always stopped at the end."""
    server = MlflowServer(tmp_path / "server", _migrated_store)
    server.start()
    try:
        yield server
    finally:
        server.stop()
