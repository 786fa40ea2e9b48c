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


# ---------------------------------------------------------------------------------------------
# a command line that talks like a tool (issue 15, item 4)


def test_the_top_level_help_says_what_the_tool_does_and_lists_the_commands_in_order_of_use():
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    text = result.output
    assert "What each customer is worth from now on, net of what it costs to serve." in text
    assert "Every week" in text and "models:/customer_value@champion" in text
    for developer_note in ("typer", "Settings object", "contract section", "No computation"):
        assert developer_note not in text
    listed = [line.split()[1] for line in text.splitlines()
              if line.startswith("│ ") and len(line.split()) > 2 and line.split()[1].isalpha()
              and line.split()[1] in {"simulate", "datasets", "validate", "features", "train", "backtest", "compare",
                                      "export", "score", "whatif", "ui"}]
    assert listed == ["simulate", "datasets", "validate", "features", "train", "backtest", "compare", "export",
                      "score", "whatif", "ui"]
    for panel in ("Data", "Models", "Scoring"):
        assert f"─ {panel} ─" in text


def test_library_warnings_are_silenced_for_the_command_only():
    import warnings

    from customer_value.cli import quiet_warnings

    def from_module(module: str, message: str, category: type[Warning]) -> None:
        warnings.warn_explicit(message, category, f"{module.replace('.', '/')}.py", 1, module=module)

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with quiet_warnings():
            from_module("mlflow.types.utils", "Hint: Inferred schema contains integer column(s).", UserWarning)
            from_module("mlflow.store.tracking.sqlalchemy_store", "The noload loader strategy is deprecated",
                        DeprecationWarning)
            from_module("customer_value.boosted.inputs", "bgnbd: Hessian not positive definite at the optimum",
                        RuntimeWarning)
            from_module("customer_value.training.fit", "bgnbd: Hessian not positive definite at the optimum",
                        RuntimeWarning)
            from_module("customer_value.data.loading", "something the user should know", UserWarning)
        from_module("mlflow.types.utils", "Hint: Inferred schema contains integer column(s).", UserWarning)
    shown = [(w.filename, str(w.message)) for w in seen]
    assert shown == [
        ("customer_value/training/fit.py", "bgnbd: Hessian not positive definite at the optimum"),
        ("customer_value/data/loading.py", "something the user should know"),
        ("mlflow/types/utils.py", "Hint: Inferred schema contains integer column(s)."),  # outside the command
    ]


def test_importing_the_package_silences_no_warning():
    """The filters are the command's, never the import's: a notebook still sees every warning."""
    import subprocess
    import sys

    code = ("import warnings, customer_value.cli, customer_value.pipeline.score, customer_value.pipeline.train\n"
            "with warnings.catch_warnings(record=True) as seen:\n"
            "    warnings.warn_explicit('Hint: Inferred schema contains integer column(s).', UserWarning,\n"
            "                           'mlflow/types/utils.py', 1, module='mlflow.types.utils')\n"
            "    warnings.warn_explicit('deprecated', DeprecationWarning, 'sqlalchemy/orm.py', 1, module='sqlalchemy.orm')\n"
            "print(len(seen))")
    out = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "2", out.stderr[-2000:]


def test_a_closed_pipe_is_not_a_bug(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    command = [str(Path(sys.executable).parent / "customer-value"), "score", "--help"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.read(10)
    proc.stdout.close()  # like `| head -1`
    _, stderr = proc.communicate(timeout=60)
    assert b"bug" not in stderr and b"Traceback" not in stderr, stderr
