"""Shared fixtures: small hand-made contract tables, written as files when a test needs a directory."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pandas as pd
import pytest

matplotlib.use("Agg")


def tiny_raw_tables() -> dict[str, pd.DataFrame]:
    """Five valid contract tables for three customers, as a user might export them (text dates)."""
    return {
        "customers": pd.DataFrame({
            "customer_id": ["c1", "c2", "c3"],
            "signup_at": ["2024-01-01", "2024-01-05T12:00:00+02:00", "2024-02-01"],
            "plan": ["basic", "pro", "basic"],
            "acquisition_channel": ["ads", "organic", "referral"],
            "region": ["eu", "us", "eu"],
            "referred_by": [None, None, "c1"],
        }),
        "transactions": pd.DataFrame({
            "transaction_id": ["t1", "t2", "t3", "t4"],
            "customer_id": ["c1", "c1", "c2", "c3"],
            "occurred_at": ["2024-01-02", "2024-02-02", "2024-01-06", "2024-02-03"],
            "amount": [10.0, -2.5, 30.0, 12.0],
            "gross_margin": [4.0, -1.0, None, 5.0],
        }),
        "engagement_events": pd.DataFrame({
            "customer_id": ["c1", "c2", "c1"],
            "occurred_at": ["2024-01-03", "2024-01-07", "2024-02-01"],
            "event_type": ["login", "email_open", "referral"],
        }),
        "invoices": pd.DataFrame({
            "invoice_id": ["i1", "i2"],
            "customer_id": ["c2", "c2"],
            "issued_at": ["2024-01-06", "2024-02-06"],
            "due_at": ["2024-01-20", "2024-02-20"],
            "amount": [30.0, 30.0],
            "paid_at": ["2024-01-25", None],
            "failed_payment_attempts": [1, 0],
        }),
        "support_tickets": pd.DataFrame({
            "ticket_id": ["s1", "s2", "s3"],
            "customer_id": ["c1", "c2", "c3"],
            "opened_at": ["2024-01-10", "2024-01-11", "2024-02-04"],
            "channel": ["email", "phone", "chat"],
            "handle_minutes": [5.0, 20.0, 0.0],
            "escalated": [False, True, False],
            "satisfaction": [4, 2, None],
            "resolved_at": ["2024-01-11", "2024-01-15", None],
        }),
    }


def write_tables(directory: Path, tables: dict[str, pd.DataFrame], fmt: str = "csv") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if fmt == "csv":
            frame.to_csv(directory / f"{name}.csv", index=False)
        else:
            frame.to_parquet(directory / f"{name}.parquet", index=False)
    return directory


@pytest.fixture
def tiny_tables() -> dict[str, pd.DataFrame]:
    return tiny_raw_tables()


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
