"""Rolling-origin backtests: refit as of earlier cutoffs, score, compare with what happened.

For each cutoff ``c`` the whole model is fitted on the tables cut at ``c`` (nothing at or after
``c`` is seen), customers are scored as of ``c`` and compared with the realised targets over
``[c, c + horizon)``. Every metric stands beside two baselines: ``historical_value`` (margin −
cost over the horizon before ``c``) and BG/NBD × Gamma-Gamma revenue alone (no churn model, no
cost). Flagging realised negative-value customers is measured for ``customer_value < 0``
(``value.negative_*``), the drain model's ``drain_flag`` (``drain.negative_*``) and
``historical_value < 0``. Metric names are stable (``backtest.value.spearman`` ...) so runs
compare in MLflow.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from customer_value.config import Settings
from customer_value.data.tables import Tables
from customer_value.models import evaluation as ev


@dataclass
class BacktestResult:
    """Per-cutoff metrics (one row per cutoff and score), their average, and the scored frames."""

    metrics: pd.DataFrame
    scored: dict[dt.date, pd.DataFrame] = field(default_factory=dict)

    def average(self) -> pd.Series:
        return self.metrics.drop(columns=["cutoff"]).mean(numeric_only=True)

    def flat_metrics(self) -> dict[str, float]:
        """``backtest.<name>`` averaged over cutoffs: what a training run logs."""
        return {f"backtest.{k}": float(v) for k, v in self.average().items() if np.isfinite(v)}


def cutoffs_before(as_of: dt.date, horizon_days: int, count: int, spacing_days: int) -> list[dt.date]:
    """``count`` cutoffs whose horizon ends on or before ``as_of``, latest last."""
    last = as_of - dt.timedelta(days=horizon_days)
    return [last - dt.timedelta(days=spacing_days * k) for k in reversed(range(count))]


def value_metrics(scored: pd.DataFrame) -> dict[str, float]:
    """Ranking, bias and flagging metrics of one scored cutoff joined with realised targets."""
    realised_net = scored["net_value"].to_numpy(dtype=float)
    out: dict[str, float] = {}
    rankers = {
        "value": scored["customer_value"].to_numpy(dtype=float),
        "baseline_historical_value": scored["historical_value"].to_numpy(dtype=float),
        "baseline_bgnbd_gg_revenue": scored["bgnbd_gg_revenue"].to_numpy(dtype=float),
    }
    for name, score in rankers.items():
        out[f"{name}.spearman"] = ev.spearman(realised_net, score)
        out[f"{name}.gini"] = ev.normalized_gini(realised_net, score)
        out[f"{name}.top_decile_capture"] = ev.top_decile_capture(realised_net, score)
    undiscounted = scored["expected_margin"] - scored["expected_cost_to_serve"] + scored["expected_referral_value"]
    out["value.aggregate_bias"] = float(undiscounted.sum() / realised_net.sum() - 1.0) if realised_net.sum() else np.nan
    revenue = scored["revenue"].to_numpy(dtype=float)
    out["revenue.spearman"] = ev.spearman(revenue, scored["expected_revenue"])
    out["revenue.gini"] = ev.normalized_gini(revenue, scored["expected_revenue"])
    out["revenue.aggregate_bias"] = float(scored["expected_revenue"].sum() / revenue.sum() - 1.0) if revenue.sum() else np.nan
    out["baseline_bgnbd_gg_revenue.revenue_spearman"] = ev.spearman(revenue, scored["bgnbd_gg_revenue"])
    cost = scored["cost_to_serve"].to_numpy(dtype=float)
    out["cost.spearman"] = ev.spearman(cost, scored["expected_cost_to_serve"])
    out["cost.aggregate_bias"] = float(scored["expected_cost_to_serve"].sum() / cost.sum() - 1.0) if cost.sum() else np.nan
    out["baseline_historical_cost.spearman"] = ev.spearman(cost, scored["historical_cost_to_serve"])
    churned = scored["churned"].to_numpy(dtype=float)
    if 0 < churned.mean() < 1:
        out["churn.roc_auc"] = ev.roc_auc(churned, scored["churn_probability"])
        out["churn.brier"] = ev.brier(churned, scored["churn_probability"])
    negative = realised_net < 0
    flags = {"value": scored["customer_value"] < 0, "baseline_historical_value": scored["historical_value"] < 0}
    if "drain_flag" in scored:
        flags["drain"] = scored["drain_flag"].astype(bool)
    if "drain_probability" in scored and 0 < negative.mean() < 1:
        out["drain.roc_auc"] = ev.roc_auc(negative, scored["drain_probability"])
        out["drain.brier"] = ev.brier(negative, scored["drain_probability"])
    for name, flag in flags.items():
        pr = ev.precision_recall_at(negative, flag.to_numpy())
        out[f"{name}.negative_precision"] = pr["precision"]
        out[f"{name}.negative_recall"] = pr["recall"]
    return out


def join_realised(scores: pd.DataFrame, targets: pd.DataFrame, bgnbd_gg_revenue: np.ndarray) -> pd.DataFrame:
    """Scores of one cutoff beside what happened after it (and the BG/NBD×GG revenue baseline)."""
    scored = scores.assign(bgnbd_gg_revenue=bgnbd_gg_revenue)
    wanted = ["customer_id", "revenue", "margin", "transactions", "churned", "cost_to_serve", "net_value"]
    return scored.merge(targets[wanted], on="customer_id", how="left", validate="one_to_one")


def run_backtest(tables: Tables, cutoffs: list[dt.date], settings: Settings, engine: Any = "duckdb",
                 progress: Any = None, log_run: bool = False) -> BacktestResult:
    """Fit, score and evaluate at each cutoff (see the module docstring)."""
    from customer_value.features import build_targets
    from customer_value.pipeline.train import fit_value_model

    rows, scored_frames = [], {}
    for cutoff in cutoffs:
        if progress:
            progress(f"backtest: fitting as of {cutoff}")
        fitted = fit_value_model(tables, cutoff, settings, engine=engine, log_children=log_run)
        scores = fitted.model.predict(fitted.features, cutoff)
        baseline = fitted.model.bgnbd_gg_revenue(fitted.features)
        targets = build_targets(tables, cutoff, settings, engine=engine)
        scored = join_realised(scores, targets, baseline)
        scored_frames[cutoff] = scored
        rows.append({"cutoff": cutoff, **value_metrics(scored)})
    return BacktestResult(pd.DataFrame(rows), scored_frames)


def comparison_table(result: BacktestResult) -> pd.DataFrame:
    """Model beside baselines, averaged over cutoffs: one row per score, one column per metric."""
    avg = result.average()
    rows = {}
    for source in ("value", "drain", "baseline_historical_value", "baseline_bgnbd_gg_revenue"):
        rows[source] = {m: avg.get(f"{source}.{m}", np.nan) for m in
                        ("spearman", "gini", "top_decile_capture", "negative_precision", "negative_recall")}
    return pd.DataFrame(rows).T.dropna(how="all").round(4)


def backtest_figures(result: BacktestResult) -> dict[str, Any]:
    """Gains and decile charts of the latest cutoff (model vs baselines)."""
    from matplotlib.figure import Figure

    from customer_value.models.evaluation import decile_table
    from customer_value.plots.evaluation import plot_deciles
    from customer_value.plots.value import plot_gains

    latest = result.scored[max(result.scored)]
    figures = {}
    fig = Figure(figsize=(5.6, 4.4), layout="constrained")
    plot_gains(latest["net_value"], {"customer_value": latest["customer_value"],
                                     "historical_value": latest["historical_value"],
                                     "BG/NBD×GG revenue": latest["bgnbd_gg_revenue"]}, ax=fig.subplots())
    figures["backtest/gains.png"] = fig
    fig = Figure(figsize=(5.6, 4.4), layout="constrained")
    plot_deciles(decile_table(latest["net_value"], latest["customer_value"]), ax=fig.subplots(),
                 title="realised net value by predicted value decile")
    figures["backtest/value_deciles.png"] = fig
    return figures


def backtest_command(data_dir: Any, as_of: dt.date, experiment: str, settings: Settings, count: int,
                     spacing_days: int, progress: Any = None) -> str:
    """Load, backtest at ``count`` rolling origins, log a backtest run, return a markdown table."""
    import mlflow

    from customer_value import tracking
    from customer_value.data.loading import load_tables
    from customer_value.pipeline.compare import format_table

    tracking.setup_tracking()
    experiment_id = tracking.experiment_id(experiment)
    tables = load_tables(data_dir, settings).tables
    cutoffs = cutoffs_before(as_of, settings.horizon_days, count, spacing_days)
    mlflow.set_experiment(experiment_id=experiment_id)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"backtest to {as_of}"):
        mlflow.set_tags({"customer_value.run_type": "backtest", "customer_value.as_of": str(as_of)})
        mlflow.log_params({"as_of": str(as_of), "cutoffs": ",".join(map(str, cutoffs)),
                           **tracking.settings_params(settings)})
        result = run_backtest(tables, cutoffs, settings, progress=progress)
        for step, row in result.metrics.reset_index(drop=True).iterrows():
            mlflow.log_metrics({f"backtest.{k}": float(v) for k, v in row.drop("cutoff").items() if np.isfinite(v)}, step=step)
        mlflow.log_metrics(result.flat_metrics())
        mlflow.log_table(result.metrics.astype({"cutoff": str}), "backtest/per_cutoff.json")
        for name, figure in backtest_figures(result).items():
            mlflow.log_figure(figure, name)
    per_cutoff = result.metrics[["cutoff", "value.spearman", "baseline_historical_value.spearman",
                                 "baseline_bgnbd_gg_revenue.spearman", "value.top_decile_capture",
                                 "revenue.spearman", "cost.spearman"]
                                + [c for c in ("churn.roc_auc", "churn.brier", "drain.roc_auc")
                                   if c in result.metrics]].round(4)
    table = comparison_table(result).reset_index(names="score")
    return format_table(per_cutoff, "markdown") + "\n\n" + format_table(table, "markdown")
