"""`compare` across two experiments (issue #6, item 5; issue 15, item 3): metrics beside their baselines,
and the config keys that differ between the runs compared. The second run trains with the internal
backtest and an indirect cost pool, so the two runs differ in config, not only in their metrics."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from typer.testing import CliRunner

from customer_value.cli import app
from customer_value.config import CostRates, IndirectPool
from pipeline_helpers import AS_OF, fast_settings

pytestmark = pytest.mark.slow

POOLS = CostRates(indirect_pools=(IndirectPool(name="platform", annual_amount=50_000.0, driver="active_customer_months"),))


def test_compare_lists_training_runs_with_baselines_and_differing_config(trained, small_world):
    from customer_value.pipeline.train import train

    # a second experiment in the session store, with the internal backtest and a cost pool, under another name
    result = train(small_world, AS_OF, "pipeline-tests-backtest", fast_settings(model_name="customer_value_bt", costs=POOLS),
                   backtest=True)
    assert result.model_uri == "models:/customer_value_bt/1"
    assert "backtest.value.spearman" in result.metrics

    runner = CliRunner()
    experiments = ["--experiment", "pipeline-tests", "--experiment", "pipeline-tests-backtest"]
    out = runner.invoke(app, ["compare", *experiments, "--format", "csv"])
    assert out.exit_code == 0, (out.output, out.exception)
    table = pd.read_csv(io.StringIO(out.stdout))
    assert set(table["experiment"]) == {"pipeline-tests", "pipeline-tests-backtest"}
    assert len(table) == 2  # training runs only (no child runs, no scoring runs)
    for column in ("run_id", "as_of", "backtest.value.spearman", "churn.valid.roc_auc", "purchases.log_likelihood"):
        assert column in table.columns, column
    assert table["backtest.value.spearman"].notna().iloc[0]  # sorted by it, the backtested run first
    assert table.loc[table["experiment"] == "pipeline-tests-backtest", "run_id"].iloc[0] == result.run_id[:8]

    # each metric is followed by the baselines it stands beside, with the values the runs logged
    columns = list(table.columns)
    beside = {
        "churn.valid.roc_auc": ["churn.baseline_bgnbd.roc_auc", "churn.baseline_recency.roc_auc"],
        "cost.valid.spearman": ["cost.baseline_trailing.spearman"],
        "backtest.value.spearman": ["backtest.baseline_historical_value.spearman",
                                    "backtest.baseline_bgnbd_gg_revenue.spearman"],
        "backtest.revenue.spearman": ["backtest.baseline_bgnbd_gg_revenue.revenue_spearman"],
    }
    for metric, baselines in beside.items():
        at = columns.index(metric)
        assert columns[at + 1: at + 1 + len(baselines)] == baselines, (metric, columns[at: at + 4])
    backtested = table[table["experiment"] == "pipeline-tests-backtest"].iloc[0]
    assert backtested["backtest.baseline_historical_value.spearman"] == pytest.approx(
        result.metrics["backtest.baseline_historical_value.spearman"], abs=1e-4)
    # the differing config, as columns of the one CSV: the pool and the model name, per run
    assert backtested["config.model_name"] == "customer_value_bt"
    assert "platform" in backtested["config.costs.indirect_pools"]
    plain = table[table["experiment"] == "pipeline-tests"].iloc[0]
    assert plain["config.costs.indirect_pools"] == "[]" and plain["config.model_name"] == "customer_value"
    assert "config.horizon_days" in columns and "config.discount_rate" not in columns  # the same in both

    md = runner.invoke(app, ["compare", *experiments, "--format", "markdown"])
    assert md.exit_code == 0
    head, _, config = md.stdout.partition("Differing config")
    lines = head.strip().splitlines()
    assert lines[0].startswith("| experiment |") and set(lines[1].replace("|", "").split()) == {"---"}
    assert len(lines) == 2 + len(table)
    rows = {line.split("|")[1].strip(): line for line in config.strip().splitlines() if line.startswith("| config.")}
    assert set(rows) >= {"config.costs.indirect_pools", "config.model_name"}
    assert "platform" in rows["config.costs.indirect_pools"] and "[]" in rows["config.costs.indirect_pools"]
    assert result.run_id[:8] in config.splitlines()[2]  # one column per run, named by its id

    missing = runner.invoke(app, ["compare", "--experiment", "no-such-experiment"])
    assert missing.exit_code == 2
