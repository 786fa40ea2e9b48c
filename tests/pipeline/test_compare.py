"""`compare` across two experiments (issue #6, item 5); the one training run with the internal backtest."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from typer.testing import CliRunner

from customer_value.cli import app
from pipeline_helpers import AS_OF, fast_settings

pytestmark = pytest.mark.slow


def test_compare_lists_training_runs_across_experiments(trained, small_world):
    from customer_value.pipeline.train import train

    # a second experiment in the session store, with the internal backtest, under another model name
    result = train(small_world, AS_OF, "pipeline-tests-backtest", fast_settings(model_name="customer_value_bt"),
                   backtest=True)
    assert result.model_uri == "models:/customer_value_bt/1"
    assert "backtest.value.spearman" in result.metrics

    runner = CliRunner()
    out = runner.invoke(app, ["compare", "--experiment", "pipeline-tests", "--experiment", "pipeline-tests-backtest",
                              "--format", "csv"])
    assert out.exit_code == 0, (out.output, out.exception)
    table = pd.read_csv(io.StringIO(out.stdout))
    assert set(table["experiment"]) == {"pipeline-tests", "pipeline-tests-backtest"}
    assert len(table) >= 2  # training runs only (no child runs, no scoring runs)
    for column in ("run_id", "as_of", "backtest.value.spearman", "churn.valid.roc_auc", "purchases.log_likelihood"):
        assert column in table.columns, column
    assert table["backtest.value.spearman"].notna().iloc[0]  # sorted by it, the backtested run first
    assert table.loc[table["experiment"] == "pipeline-tests-backtest", "run_id"].iloc[0] == result.run_id[:8]

    md = runner.invoke(app, ["compare", "--experiment", "pipeline-tests", "--experiment", "pipeline-tests-backtest",
                             "--format", "markdown"])
    assert md.exit_code == 0
    lines = md.stdout.strip().splitlines()
    assert lines[0].startswith("| experiment |") and set(lines[1].replace("|", "").split()) == {"---"}
    assert len(lines) == 2 + len(table)

    missing = runner.invoke(app, ["compare", "--experiment", "no-such-experiment"])
    assert missing.exit_code == 2
