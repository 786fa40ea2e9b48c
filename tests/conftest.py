"""Shared fixtures: small hand-made contract tables, written as files when a test needs a directory;
the fitted probabilistic parts of a value model; MLflow stores and servers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
import yaml

from contract_fixtures import tiny_raw_tables
from session_world import FAST, N_CUSTOMERS

matplotlib.use("Agg")
# every local Spark session of the tests (whichever fixture starts it first) runs its Python workers
# with this interpreter, which has pyarrow and the package; Spark's default is `python3` on the PATH
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


# ---------------------------------------------------------------------------------------------
# scheduling: `make test` runs `-n 2 --dist loadfile --no-loadscope-reorder`, so each file's tests
# share one worker (a module fixture is built once, not once per worker) and files are handed out
# in collection order. These files take longest (pytest --durations, 2026-12-06, on a machine
# that ran the suite in 32 min); they go first, heaviest first, so the two workers finish together
# instead of one running a long file alone at the end. A slow file not listed here only runs later.
SLOWEST_FILES_FIRST = (
    "pipeline/test_spark_jobs.py",            # ~600 s: Spark scoring and training on a 20k world
    "reliability/test_mlflow_faults.py",      # ~400 s: real servers stopped, killed and restarted
    "test_notebooks.py",                      # ~290 s: four notebooks executed
    "reliability/test_security.py",
    "reliability/test_hard_worlds.py",
    "features/test_feature_properties.py",
    "features/test_spark_parity.py",
    "reliability/test_scoring_faults.py",
    "pipeline/test_batch_scoring_job.py",
    "pipeline/test_compare.py",
    "evaluation/test_backtest.py",
    "pipeline/test_mlflow_server.py",
    "pipeline/test_activities_jobs.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put :data:`SLOWEST_FILES_FIRST` ahead, in that order; every other test keeps its place."""
    tests_dir = Path(__file__).resolve().parent
    gone = [name for name in SLOWEST_FILES_FIRST if not (tests_dir / name).is_file()]
    if gone:  # a renamed file would silently lose its place
        raise pytest.UsageError(f"tests/conftest.py SLOWEST_FILES_FIRST names files that do not exist: {gone}")
    rank = {name: i for i, name in enumerate(SLOWEST_FILES_FIRST)}

    def position(item: pytest.Item) -> int:
        try:
            return rank.get(item.path.resolve().relative_to(tests_dir).as_posix(), len(rank))
        except ValueError:  # a test outside tests/
            return len(rank)

    items.sort(key=position)  # stable: the order within a file and among the rest is unchanged


@pytest.fixture
def tiny_tables() -> dict[str, pd.DataFrame]:
    return tiny_raw_tables()


# ---------------------------------------------------------------------------------------------
# the probabilistic parts of a value model (the boosted and valuation tests share them)

VALUE_AS_OF = "2024-07-01"  # the tests that use value_parts score at this date too


@pytest.fixture(scope="session")
def value_parts():
    """(settings, features at VALUE_AS_OF, fitted BG/NBD, fitted Gamma-Gamma) on a 1,500-customer
    world: what a ValueModel needs besides the boosted models, which tests replace by stand-ins."""
    from customer_value.config import Settings
    from customer_value.features import build_features
    from customer_value.probabilistic.purchases import PurchaseModel
    from customer_value.probabilistic.spend import SpendModel
    from customer_value.simulation.world import simulate_world

    settings = Settings()
    world = simulate_world(1500, 5, settings=settings)
    features = build_features(world.tables, VALUE_AS_OF, settings)
    rfm = features.set_index("customer_id")[["frequency", "recency", "T", "monetary_value"]]
    return settings, features, PurchaseModel.from_settings(settings).fit(rfm), SpendModel.from_settings(settings).fit(rfm)


# ---------------------------------------------------------------------------------------------
# MLflow: migrate a SQLite store once per session, copy it per test (migrations take seconds)


@pytest.fixture(scope="session")
def _migrated_store(tmp_path_factory) -> Path:
    import mlflow
    from mlflow.tracking import MlflowClient

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def mlflow_store(_migrated_store, tmp_path, monkeypatch) -> str:
    """A fresh, already-migrated SQLite store for one test; MLFLOW_TRACKING_URI points at it."""
    import shutil

    import mlflow

    db = tmp_path / "mlflow" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(_migrated_store, db)
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield uri
    if mlflow.active_run():
        mlflow.end_run()


@pytest.fixture
def mlflow_server(tmp_path):
    """A real `mlflow server` on a free localhost port with a SQLite store; yields its URL."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = tmp_path / "server"
    store.mkdir()
    log = open(store / "server.log", "w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
         "--artifacts-destination", str(store / "artifacts"), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"mlflow server did not start: {(store / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# ---------------------------------------------------------------------------------------------
# one small world and a fast training config for the jobs' tests

@pytest.fixture(scope="session")
def small_world(tmp_path_factory) -> Path:
    """A 1,500-customer simulated world (2022-01-01 .. 2025-07-01) written once per session
    (the pipeline and reliability tests share it)."""
    from customer_value.simulation.world import simulate_world, write_world

    out = tmp_path_factory.mktemp("world")
    write_world(simulate_world(N_CUSTOMERS, 11), out)
    return out


@pytest.fixture(scope="session")
def fast_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "fast.yaml"
    path.write_text(yaml.safe_dump(FAST))
    return path
