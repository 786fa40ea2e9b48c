"""The command line as a user types it (contract section 6): simulate, validate, datasets, features."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest
from typer.testing import CliRunner

from customer_value.cli import app

runner = CliRunner()


def _digests(directory):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


@pytest.mark.slow
def test_simulate_then_validate_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        result = runner.invoke(app, ["simulate", "--customers", "20000", "--seed", "7", "--out", str(out)])
        assert result.exit_code == 0, result.output
    assert _digests(a) == _digests(b)
    result = runner.invoke(app, ["validate", "--data", str(a)])
    assert result.exit_code == 0, result.output
    assert "customers" in result.output and "20,000" in result.output


def test_validate_fails_on_bad_input_and_reports_in_non_strict_mode(tmp_path, tiny_tables):
    from contract_fixtures import write_tables

    tiny_tables["support_tickets"].loc[1, "channel"] = "pigeon"
    data = write_tables(tmp_path / "d", tiny_tables)
    result = runner.invoke(app, ["validate", "--data", str(data)])
    assert result.exit_code == 1
    assert "support_tickets" in result.output and "channel" in result.output and "row 1" in result.output
    report = tmp_path / "report.csv"
    result = runner.invoke(app, ["validate", "--data", str(data), "--no-strict", "--report", str(report)])
    assert result.exit_code == 0, result.output
    problems = pd.read_csv(report)
    assert problems[["table", "row", "column"]].values.tolist() == [["support_tickets", 1, "channel"]]


def test_config_typo_is_named(tmp_path, tiny_tables):
    from contract_fixtures import write_tables

    data = write_tables(tmp_path / "d", tiny_tables)
    config = tmp_path / "c.yaml"
    config.write_text("horizon_dayz: 30\n")
    result = runner.invoke(app, ["validate", "--data", str(data), "--config", str(config)])
    assert result.exit_code == 2
    assert "horizon_dayz" in result.output


def test_features_command_writes_one_row_per_customer(tmp_path, tiny_tables):
    from contract_fixtures import write_tables

    data = write_tables(tmp_path / "d", tiny_tables)
    out = tmp_path / "f.parquet"
    result = runner.invoke(app, ["features", "--data", str(data), "--as-of", "2024-02-02", "--out", str(out), "--targets"])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert frame["customer_id"].tolist() == ["c1", "c2", "c3"]  # c3 signed up 2024-02-01, before as_of
    assert "cost_to_serve" in frame.columns and "frequency" in frame.columns


def test_cdnow_dataset_command(tmp_path):
    out = tmp_path / "cdnow"
    result = runner.invoke(app, ["datasets", "cdnow", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(out / "customers.parquet")) == 2357
