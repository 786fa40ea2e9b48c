"""MLflow plumbing: where the store is, experiments, fingerprints, the registry."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd

from customer_value import tracking
from customer_value.data.tables import Tables


def test_default_store_is_under_the_project_root(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv(tracking.ROOT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # the working directory does not matter
    root = tracking.project_root()
    assert (root / "pyproject.toml").exists() and (root / "src" / "customer_value").is_dir()
    assert tracking.tracking_uri() == f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert tracking.tracking_uri() == "http://127.0.0.1:5999"


def test_experiment_artifacts_live_beside_the_database(mlflow_store):
    eid = tracking.experiment_id("exp-a")
    assert tracking.experiment_id("exp-a") == eid
    location = mlflow.get_experiment(eid).artifact_location
    db_dir = Path(mlflow_store.removeprefix("sqlite:///")).parent
    assert location == (db_dir / "artifacts" / "exp-a").as_uri()


def test_fingerprint_changes_with_content():
    customers = pd.DataFrame({"customer_id": pd.Series(["a", "b"], dtype="str"),
                              "signup_at": pd.to_datetime(["2024-01-01", "2024-01-02"]).astype("datetime64[us]")})
    tx = pd.DataFrame({"transaction_id": pd.Series(["t"], dtype="str"), "customer_id": pd.Series(["a"], dtype="str"),
                       "occurred_at": pd.to_datetime(["2024-01-03"]).astype("datetime64[us]"), "amount": [5.0]})
    one = tracking.data_fingerprint(Tables.from_frames(customers=customers, transactions=tx))
    again = tracking.data_fingerprint(Tables.from_frames(customers=customers, transactions=tx))
    other = tracking.data_fingerprint(Tables.from_frames(customers=customers, transactions=tx.assign(amount=[6.0])))
    assert one == again
    assert one["transactions"]["sha256"] != other["transactions"]["sha256"]
    assert one["customers"] == other["customers"]
    assert one["transactions"]["rows"] == 1 and one["customers"]["customers"] == 2
    flat = tracking.fingerprint_params(one)
    assert flat["data.transactions.rows"] == 1


def test_code_version_names_a_commit_or_the_package():
    version = tracking.code_version()
    assert len(version.split("+")[0]) == 40 or version.startswith("customer_value==")
