"""One error path for every command (issue 16): an expected failure is one `error:` line on stderr
and a non-zero exit (2 for config and usage errors), `--debug` shows the traceback instead, a bug
says it is one and where to report it; `--validation-report` on every job."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from customer_value.cli import ISSUES_URL, app
from customer_value.errors import CannotFitError, InputError
from reliability_helpers import one_error_line

runner = CliRunner()


@pytest.fixture
def tiny_data(tmp_path, tiny_tables):
    from contract_fixtures import write_tables

    return write_tables(tmp_path / "data", tiny_tables)


def _validate_raising(monkeypatch, exc: BaseException) -> None:
    def boom(*_args, **_kwargs):
        raise exc

    monkeypatch.setattr("customer_value.pipeline.validate.validate_directory", boom)


def test_an_expected_failure_is_one_line_and_exit_1(tiny_data, tmp_path):
    result = runner.invoke(app, ["score", "--data", str(tiny_data), "--as-of", "2024-03-01",
                                 "--model", str(tmp_path / "no-such-model"), "--out", str(tmp_path / "s.parquet")])
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert "no-such-model" in line
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_config_error_exits_2_with_one_line(tiny_data, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("horizon_dayz: 30\ndiscount_rat: 0.1\n")
    result = runner.invoke(app, ["validate", "--data", str(tiny_data), "--config", str(config)])
    assert result.exit_code == 2
    line = one_error_line(result.stderr)
    assert "horizon_dayz" in line and "discount_rat" in line


def test_a_bad_as_of_is_a_config_error(tiny_data, tmp_path):
    result = runner.invoke(app, ["features", "--data", str(tiny_data), "--as-of", "July 1st",
                                 "--out", str(tmp_path / "f.parquet")])
    assert result.exit_code == 2
    assert "--as-of must be a date" in one_error_line(result.stderr)


def test_a_usage_error_is_one_line_too(tmp_path):
    result = runner.invoke(app, ["validate", "--data", str(tmp_path / "missing")])
    assert result.exit_code == 2
    line = one_error_line(result.stderr)
    assert "--data" in line and "--help" in line


def test_bad_rows_are_one_line_naming_table_column_and_rows(tmp_path, tiny_tables):
    from contract_fixtures import write_tables

    tiny_tables["support_tickets"].loc[1, "channel"] = "pigeon"
    data = write_tables(tmp_path / "d", tiny_tables)
    result = runner.invoke(app, ["validate", "--data", str(data)])
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert "support_tickets" in line and "channel" in line and "row 1" in line and "pigeon" in line


def test_a_multi_line_message_shows_its_first_line(tiny_data, monkeypatch):
    _validate_raising(monkeypatch, CannotFitError("could not fit the purchases: every path failed.\n"
                                                  "  - trust-exact: diverged\n  - nelder-mead: diverged"))
    result = runner.invoke(app, ["validate", "--data", str(tiny_data)])
    assert result.exit_code == 1
    assert one_error_line(result.stderr) == (
        "error: could not fit the purchases: every path failed. (--debug for details)")


def test_debug_shows_the_traceback_instead(tiny_data, monkeypatch):
    _validate_raising(monkeypatch, InputError("nothing to see"))
    result = runner.invoke(app, ["--debug", "validate", "--data", str(tiny_data)])
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "customer_value.errors.InputError: nothing to see" in result.stderr
    assert not [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_an_unexpected_exception_is_a_bug_with_where_to_report_it(tiny_data, monkeypatch):
    _validate_raising(monkeypatch, KeyError("segment"))
    result = runner.invoke(app, ["validate", "--data", str(tiny_data)])
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert "bug" in line and "KeyError" in line and "segment" in line
    assert ISSUES_URL in line and "--debug" in line
    # with --debug the same failure is its traceback
    debug = runner.invoke(app, ["--debug", "validate", "--data", str(tiny_data)])
    assert debug.exit_code == 1 and "Traceback" in debug.stderr and "KeyError: 'segment'" in debug.stderr


def test_mlflow_failures_are_translated(tiny_data, monkeypatch):
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

    _validate_raising(monkeypatch, MlflowException("Registered Model with name=x not found\nmore",
                                                   error_code=RESOURCE_DOES_NOT_EXIST))
    result = runner.invoke(app, ["validate", "--data", str(tiny_data)])
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert "Registered Model with name=x not found" in line and "bug" not in line


def test_an_os_error_naming_a_file_is_not_a_bug(tiny_data, monkeypatch):
    _validate_raising(monkeypatch, PermissionError(13, "Permission denied", str(tiny_data / "customers.csv")))
    result = runner.invoke(app, ["validate", "--data", str(tiny_data)])
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert "Permission denied" in line and "customers.csv" in line and "bug" not in line


def test_as_of_before_the_first_signup_is_named_when_training(tiny_data, mlflow_store, tmp_path, monkeypatch):
    monkeypatch.setenv("CUSTOMER_VALUE_HOME", str(tmp_path / "home"))
    result = runner.invoke(app, ["train", "--data", str(tiny_data), "--as-of", "2023-06-01", "--experiment", "e"])
    assert result.exit_code == 1
    assert one_error_line(result.stderr) == (
        "error: no customer signed up before 2023-06-01 (first signup: 2024-01-01)")
    import mlflow

    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []  # no run opened


@pytest.mark.parametrize("command", ["train", "score", "backtest", "features", "validate"])
def test_every_job_takes_a_validation_report(command):
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert result.exit_code == 0
    assert "--validation-report" in result.output


def test_features_no_strict_writes_the_report_and_counts_the_rows(tmp_path, tiny_tables):
    from contract_fixtures import write_tables

    tiny_tables["support_tickets"].loc[1, "channel"] = "pigeon"
    data = write_tables(tmp_path / "d", tiny_tables)
    report = tmp_path / "reports" / "set_aside.csv"
    out = tmp_path / "f.parquet"
    result = runner.invoke(app, ["features", "--data", str(data), "--as-of", "2024-02-02", "--out", str(out),
                                 "--no-strict", "--validation-report", str(report)])
    assert result.exit_code == 0, result.output
    assert "1 bad row(s) set aside" in result.stderr and str(report) in result.stderr
    assert pd.read_csv(report)[["table", "row", "column"]].values.tolist() == [["support_tickets", 1, "channel"]]
    assert len(pd.read_parquet(out)) == 3


def test_backtest_cutoffs_before_the_first_signup_are_named(tiny_data, mlflow_store, tmp_path, monkeypatch):
    monkeypatch.setenv("CUSTOMER_VALUE_HOME", str(tmp_path / "home"))
    result = runner.invoke(app, ["backtest", "--data", str(tiny_data), "--as-of", "2024-07-01", "--experiment", "e",
                                 "--cutoffs", "2"])
    assert result.exit_code == 1
    assert one_error_line(result.stderr) == (
        "error: no customer signed up before the earliest backtest cutoff 2023-04-02 (first signup: 2024-01-01)")


def _truth_of(data, as_of: str, drop: str | None = None, customers: int | None = None):
    """A truth file in a simulated world's form for the tiny tables (values are placeholders)."""
    ids = pd.read_csv(data / "customers.csv")["customer_id"]
    ids = ids.head(customers) if customers is not None else ids
    truth = pd.DataFrame({"customer_id": ids, "as_of": pd.Timestamp(as_of), "horizon_days": 365,
                          "oracle_expected_margin": 1.0, "oracle_expected_cost_to_serve": 0.5,
                          "ceiling_net_value": 0.5})
    path = data.parent / "truth.parquet"
    truth.drop(columns=[drop] if drop else []).to_parquet(path)
    return path


@pytest.mark.parametrize(("as_of", "drop", "customers", "message"), [
    ("2024-06-01", None, None, "is as of 2024-06-01, which is not a backtest cutoff (2024-07-01); "
                               "choose --as-of 2025-06-01 so that the last cutoff falls on it"),
    ("2024-07-01", "ceiling_net_value", None, "missing column(s) ceiling_net_value"),
    ("2024-07-01", None, 1, "signed up before 2024-07-01"),
])
def test_backtest_names_a_truth_it_cannot_judge_against_before_any_fit(tiny_data, mlflow_store, tmp_path,
                                                                       monkeypatch, as_of, drop, customers, message):
    monkeypatch.setenv("CUSTOMER_VALUE_HOME", str(tmp_path / "home"))
    truth = _truth_of(tiny_data, as_of, drop, customers)
    result = runner.invoke(app, ["backtest", "--data", str(tiny_data), "--as-of", "2025-07-01", "--experiment", "e",
                                 "--cutoffs", "1", "--truth", str(truth)])
    assert result.exit_code == 1, result.output
    line = one_error_line(result.stderr)
    assert line.startswith(f"error: --truth {truth}") and message in line
