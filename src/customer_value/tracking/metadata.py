"""What a run records about itself: the data fingerprint, the code version and the config as params.

Pure functions; :mod:`customer_value.tracking.runs` logs what they return.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from typing import Any

import pandas as pd

from customer_value import __version__
from customer_value.data.tables import EVENT_TIME, Tables
from customer_value.tracking.store import checkout_root


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
