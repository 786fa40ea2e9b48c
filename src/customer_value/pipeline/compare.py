"""`customer-value compare`: one table of training runs across experiments, sorted by a metric,
each metric with the baselines it stands beside, and the config keys that differ between the runs.

The table's columns: who (experiment, run, name, start), a few key params, then each key metric
followed by its baselines on the same rows (``churn.valid.roc_auc`` then
``churn.baseline_bgnbd.roc_auc`` ...; see :mod:`customer_value.reporting.baselines`). The config
(``config.*`` params of every run, :func:`customer_value.tracking.metadata.settings_params`) is
compared across the runs listed: :func:`differing_config` keeps the keys whose values are not all
the same, one column per run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from customer_value.reporting.baselines import baselines_of

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
UNSET = "(unset)"
"""How a config key a run did not log reads (a run from an older version)."""


@dataclass
class Comparison:
    """The runs' table (best first) and the config keys that differ between them (key x run)."""

    table: pd.DataFrame
    config: pd.DataFrame = field(default_factory=pd.DataFrame)


def compare_runs(experiments: list[str], metric: str = "backtest.value.spearman", ascending: bool = False) -> pd.DataFrame:
    """Parent training runs of the named experiments with key metrics (each beside its baselines)
    and params, best first."""
    return comparison(experiments, metric, ascending).table


def comparison(experiments: list[str], metric: str = "backtest.value.spearman", ascending: bool = False) -> Comparison:
    """:func:`compare_runs`' table and the differing config of the same runs (:func:`differing_config`)."""
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
        return Comparison(pd.DataFrame(columns=["experiment", "run_id", "run_name"]))
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
    logged = [c.removeprefix("metrics.") for c in runs.columns if c.startswith("metrics.")]
    for m in metric_columns([metric, *KEY_METRICS], logged):
        table[m] = runs[f"metrics.{m}"].round(4)
    config = differing_config(runs, table["run_id"])
    if metric in table.columns:
        order = table.sort_values(metric, ascending=ascending, na_position="last", kind="stable").index
        table = table.loc[order]
        config = config[[table.loc[i, "run_id"] for i in order]] if not config.empty else config
    return Comparison(table.reset_index(drop=True), config)


def metric_columns(metrics: list[str], logged: list[str]) -> list[str]:
    """The metrics that were logged, each followed by its logged baselines, without repeats."""
    out: list[str] = []
    for m in dict.fromkeys(metrics):
        if m in logged:
            out += [c for c in (m, *baselines_of(m, logged)) if c not in out]
    return out


def differing_config(runs: pd.DataFrame, run_ids: pd.Series | list[str]) -> pd.DataFrame:
    """The ``config.*`` params whose values are not the same in every run: one row per key (sorted),
    one column per run (named by ``run_ids``, in the rows' order); a key a run lacks reads
    :data:`UNSET`."""
    columns = sorted(c for c in runs.columns if c.startswith("params.config."))
    if len(runs) < 2 or not columns:
        return pd.DataFrame()
    values = runs[columns].astype(object).where(runs[columns].notna(), UNSET).astype(str)
    differing = [c for c in columns if values[c].nunique() > 1]
    frame = values[differing].T
    frame.index = [c.removeprefix("params.") for c in differing]
    frame.index.name = "config"
    frame.columns = list(run_ids)
    return frame


def format_table(table: pd.DataFrame, fmt: str) -> str:
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "markdown":
        header = "| " + " | ".join(map(str, table.columns)) + " |"
        rule = "| " + " | ".join("---" for _ in table.columns) + " |"
        rows = ["| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |" for row in table.itertuples(index=False)]
        return "\n".join([header, rule, *rows])
    raise ValueError(f"unknown format {fmt!r}: use markdown or csv")


def format_comparison(result: Comparison, fmt: str) -> str:
    """The table, then (markdown) a "Differing config" section: key and value per run. In CSV the
    differing keys are columns of the one table instead, so the output stays one CSV."""
    if fmt == "csv":
        table = result.table
        if not result.config.empty:
            by_run = result.config.T
            table = table.join(by_run[[c for c in by_run.columns if c not in table.columns]], on="run_id")
        return format_table(table, "csv")
    text = format_table(result.table, fmt)
    if fmt == "markdown" and len(result.table) > 1:
        if result.config.empty:
            text += "\n\nDiffering config: none (every run compared has the same config)"
        else:
            text += ("\n\nDiffering config (the config.* keys whose values are not the same in every run above):\n\n"
                     + format_table(result.config.reset_index(), "markdown"))
    return text
