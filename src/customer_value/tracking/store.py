"""Where the MLflow store is, and its experiments.

The embedded default is a SQLite store at ``<project root>/mlflow/mlflow.db`` with artifacts
under ``<project root>/mlflow/artifacts``, resolved from the project root rather than the
working directory, so a notebook in ``notebooks/`` and the CLI at the top level see the same
runs. ``MLFLOW_TRACKING_URI`` overrides it (a server, another database).
"""

from __future__ import annotations

import os
from pathlib import Path

import mlflow

ROOT_ENV = "CUSTOMER_VALUE_HOME"


def checkout_root() -> Path | None:
    """The source checkout this package is imported from (an editable install), if any."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").exists() and (parent / "src" / "customer_value").is_dir():
            return parent
    return None


def project_root() -> Path:
    """Where the embedded store lives: ``$CUSTOMER_VALUE_HOME``, else the checkout, else the working dir."""
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]).resolve()
    return checkout_root() or Path.cwd().resolve()


def store_dir() -> Path:
    return project_root() / "mlflow"


def default_tracking_uri() -> str:
    return f"sqlite:///{store_dir() / 'mlflow.db'}"


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set, else the embedded SQLite store under ``mlflow/``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def is_embedded(uri: str) -> bool:
    return uri.startswith("sqlite:///") or uri.startswith("file:")


def setup_tracking() -> str:
    """Point MLflow at our store (creating the folder) and return the URI in use."""
    uri = tracking_uri()
    if uri == default_tracking_uri():
        (store_dir() / "artifacts").mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    return uri


def experiment_id(name: str) -> str:
    """Get or create an experiment; embedded stores keep artifacts beside the database."""
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    uri = mlflow.get_tracking_uri()
    if uri.startswith("sqlite:///"):
        database = Path(uri.removeprefix("sqlite:///"))
        location = (database.parent / "artifacts" / _safe(name)).as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
