"""The small simulated world and fast training config that the pipeline and reliability tests share."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

AS_OF = dt.date(2024, 7, 1)
N_CUSTOMERS = 1500
FAST = {"trials": 1, "snapshots": {"count": 3, "spacing_days": 30}}


def train_into_new_store(template: Path, root: Path, world: Path, config: Path, experiment: str):
    """``customer-value train ... --alias champion --no-backtest`` into a fresh copy of the migrated
    store ``template`` under ``root``; returns (the CLI result, the store's database, its home)."""
    from typer.testing import CliRunner

    from customer_value.cli import app

    db = root / "mlflow" / "mlflow.db"
    db.parent.mkdir(parents=True)
    shutil.copy(template, db)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
        mp.setenv("CUSTOMER_VALUE_HOME", str(root / "home"))
        result = CliRunner().invoke(app, [
            "train", "--data", str(world), "--as-of", AS_OF.isoformat(), "--experiment", experiment,
            "--config", str(config), "--alias", "champion", "--no-backtest",
        ])
    assert result.exit_code == 0, (result.output, result.exception)
    return result, db, root / "home"
