"""Everything MLflow: where the store is, experiments, run metadata, the registry.

The embedded default is a SQLite store at ``<project root>/mlflow/mlflow.db`` with artifacts
under ``<project root>/mlflow/artifacts``, resolved from the project root rather than the
working directory, so a notebook in ``notebooks/`` and the CLI at the top level see the same
runs. ``MLFLOW_TRACKING_URI`` overrides it (a server, another database).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd

from customer_value import __version__
from customer_value.data.tables import EVENT_TIME, Tables

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
    import mlflow

    uri = tracking_uri()
    if uri == default_tracking_uri():
        (store_dir() / "artifacts").mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    return uri


def experiment_id(name: str) -> str:
    """Get or create an experiment; embedded stores keep artifacts beside the database."""
    import mlflow

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


# ---------------------------------------------------------------------------------------------
# run metadata


def data_fingerprint(tables: Tables) -> dict[str, Any]:
    """Rows, customers, time span and a content hash per table: enough to tell two data sets apart."""
    out: dict[str, Any] = {}
    for name, frame in tables.items():
        time_col = EVENT_TIME[name]
        digest = hashlib.sha256()
        if len(frame):
            hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
            digest.update(hashed.tobytes())
        out[name] = {
            "rows": int(len(frame)),
            "customers": int(frame["customer_id"].nunique()) if len(frame) else 0,
            "first": str(frame[time_col].min()) if len(frame) else None,
            "last": str(frame[time_col].max()) if len(frame) else None,
            "sha256": digest.hexdigest()[:16],
        }
    return out


def stable_hash(value: Any) -> str:
    """A short hash of a JSON-able value (e.g. a fingerprint) for tags that group runs."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fingerprint_params(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """The fingerprint flattened into MLflow params (``data.transactions.rows`` ...)."""
    flat = {}
    for table, info in fingerprint.items():
        for key, value in info.items():
            flat[f"data.{table}.{key}"] = value
    return flat


def code_version() -> str:
    """Git commit of the checkout (``+dirty`` when modified), else the package version."""
    root = checkout_root()
    if root is None:
        return f"customer_value=={__version__}"
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return f"{sha}{'+dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return f"customer_value=={__version__}"


def settings_params(settings: Any) -> dict[str, Any]:
    """The config flattened for ``mlflow.log_params`` (nested keys joined with dots)."""

    def flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], dict):
            out[prefix] = json.dumps(value)
        else:
            out[prefix] = value

    flat: dict[str, Any] = {}
    flatten("", settings.model_dump(mode="json"), flat)
    return {f"config.{k}": v for k, v in flat.items()}


# ---------------------------------------------------------------------------------------------
# the pyfunc boundary (the wrapper itself is pyfunc.py, logged as models-from-code)

PYFUNC_FILE = Path(__file__).with_name("pyfunc.py")
PYFUNC_PARAMS = {"as_of": "1970-01-01", "model_uri": "", "horizon_days": 0}


def model_input(features: pd.DataFrame) -> pd.DataFrame:
    """Features as they cross the pyfunc boundary: no categoricals, nullable ints as floats."""
    out = features.copy()
    for column in out.columns:
        dtype = out[column].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            out[column] = out[column].astype("str")
        elif pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            out[column] = out[column].astype("float64")
    return out


def output_for_signature(scores: pd.DataFrame) -> pd.DataFrame:
    return scores.assign(as_of=scores["as_of"].astype("str"))



# ---------------------------------------------------------------------------------------------
# registry


def register(model_uri: str, name: str, alias: str | None = None) -> str:
    """Register a logged model under ``name``, optionally move ``alias``; return models:/name/version."""
    import mlflow
    from mlflow import MlflowClient

    version = mlflow.register_model(model_uri, name)
    if alias:
        MlflowClient().set_registered_model_alias(name, alias, version.version)
    return f"models:/{name}/{version.version}"


def resolve_model_uri(model: str) -> str:
    """A stable identity for score rows: aliases are resolved to ``models:/name/version``."""
    if model.startswith("models:/") and "@" in model:
        from mlflow import MlflowClient

        name, alias = model.removeprefix("models:/").split("@", 1)
        version = MlflowClient().get_model_version_by_alias(name, alias)
        return f"models:/{name}/{version.version}"
    if Path(model).exists():
        return str(Path(model).resolve())
    return model
