"""`customer-value compare`: one table of training runs across experiments, sorted by a metric."""

from __future__ import annotations

import pandas as pd

# the columns people compare first; any other metric can be asked for with --metric
KEY_METRICS = (
    "backtest.value.spearman",
    "backtest.value.top_decile_capture",
    "backtest.revenue.spearman",
    "backtest.churn.roc_auc",
    "backtest.churn.brier",
    "backtest.cost.spearman",
    "backtest.drain.negative_precision",
    "backtest.drain.negative_recall",
    "churn.valid.roc_auc",
    "cost.valid.spearman",
    "margin.valid.spearman",
    "drain.valid.roc_auc",
    "purchases.log_likelihood",
)
KEY_PARAMS = ("as_of", "config.horizon_days", "config.purchase_model", "config.churn_adjustment", "config.trials",
              "config.seed", "code_version")


def compare_runs(experiments: list[str], metric: str = "backtest.value.spearman", ascending: bool = False) -> pd.DataFrame:
    """Parent training runs of the named experiments with key metrics and params, best first."""
    import mlflow

    found = [e for e in (mlflow.get_experiment_by_name(n) for n in experiments) if e is not None]
    missing = set(experiments) - {e.name for e in found}
    if missing:
        raise ValueError(f"no such experiment(s): {sorted(missing)}")
    runs = mlflow.search_runs(
        experiment_ids=[e.experiment_id for e in found],
        filter_string="tags.`customer_value.run_type` = 'train'",
        output_format="pandas",
    )
    if runs.empty:
        return pd.DataFrame(columns=["experiment", "run_id", "run_name"])
    names = {e.experiment_id: e.name for e in found}
    table = pd.DataFrame({
        "experiment": runs["experiment_id"].map(names),
        "run_id": runs["run_id"].str[:8],
        "run_name": runs.get("tags.mlflow.runName"),
        "started": pd.to_datetime(runs["start_time"]).dt.strftime("%Y-%m-%d %H:%M"),
    })
    for p in KEY_PARAMS:
        column = f"params.{p}"
        if column in runs.columns:
            table[p] = runs[column]
    metrics = list(dict.fromkeys([metric, *KEY_METRICS]))
    for m in metrics:
        column = f"metrics.{m}"
        if column in runs.columns:
            table[m] = runs[column].round(4)
    if metric in table.columns:
        table = table.sort_values(metric, ascending=ascending, na_position="last")
    return table.reset_index(drop=True)


def format_table(table: pd.DataFrame, fmt: str) -> str:
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "markdown":
        header = "| " + " | ".join(map(str, table.columns)) + " |"
        rule = "| " + " | ".join("---" for _ in table.columns) + " |"
        rows = ["| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |" for row in table.itertuples(index=False)]
        return "\n".join([header, rule, *rows])
    raise ValueError(f"unknown format {fmt!r}: use markdown or csv")
