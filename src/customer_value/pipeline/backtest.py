"""`customer-value backtest`: load → refit at rolling origins and compare with what happened
(:mod:`customer_value.evaluation.backtest`) → log a backtest run → a markdown table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from customer_value.config import Settings
from customer_value.data.writing import check_output
from customer_value.errors import InputError
from customer_value.evaluation.backtest import (TRUTH_COLUMNS, BacktestResult, comparison_table, cutoffs_before,
                                                run_backtest, truth_date)
from customer_value.evaluation.figures import backtest_figures
from customer_value.pipeline.compare import format_table
from customer_value.pipeline.inputs import load_inputs, require_customers_before
from customer_value.tracking import runs
from customer_value.tracking.store import setup_tracking
from customer_value.training.fit import FitObserver

PER_CUTOFF_COLUMNS = ("cutoff", "value.spearman", "value_like_for_like.spearman", "baseline_historical_value.spearman",
                      "baseline_bgnbd_gg_revenue.spearman", "value.top_decile_capture",
                      "value_like_for_like.top_decile_capture", "value.aggregate_bias", "revenue.spearman",
                      "cost.spearman", "churn.roc_auc", "churn.brier", "drain.roc_auc",
                      "intervals.net_value.coverage", "intervals.revenue.coverage", "intervals.cost_to_serve.coverage",
                      "intervals.margin.coverage", "intervals.transactions.coverage",
                      "referrals.sum_ratio", "referrals.spearman", "baseline_past_referrals.spearman",
                      "ceiling.spearman", "oracle.spearman", "value_like_for_like.gap_to_ceiling",
                      "value_like_for_like.gap_to_oracle",
                      "monthly.margin_mape",
                      "monthly.cost_mape", "skipped")


def backtest_command(data_dir: Any, as_of: dt.date, experiment: str, settings: Settings, count: int,
                     spacing_days: int, progress: Callable[[str], None] | None = None,
                     validation_report: Path | None = None, engine: Any = "duckdb",
                     truth_file: Path | None = None) -> str:
    """Load, backtest at ``count`` rolling origins, log a backtest run, return a markdown table.
    ``engine`` builds the snapshots' feature and target tables (``"duckdb"``, ``"spark"`` or an Ibis
    backend); the fits run in this process either way. ``truth_file`` (a simulated world's
    ``truth.parquet``) judges the cutoff on its date against the oracle and the value ceiling."""
    setup_tracking()
    if validation_report is not None:
        check_output(validation_report, "validation report")
    tables = load_inputs(data_dir, settings, validation_report, progress).tables
    cutoffs = cutoffs_before(as_of, settings.horizon_days, count, spacing_days)
    require_customers_before(tables.customers, min(cutoffs), "the earliest backtest cutoff")
    truth = read_truth(truth_file, tables.customers, cutoffs, settings) if truth_file is not None else None
    with runs.backtest_run(experiment, as_of, cutoffs, settings):
        result = run_backtest(tables, cutoffs, settings, engine=engine, observer=FitObserver(progress), truth=truth)
        runs.log_backtest(result.metrics, result.flat_metrics(), backtest_figures(result.scored[max(result.scored)]))
    return backtest_summary(result)


def read_truth(path: Path, customers: pd.DataFrame, cutoffs: list[dt.date], settings: Settings) -> pd.DataFrame:
    """A simulated world's truth, checked before any fit: its columns, one date that is one of the
    ``cutoffs``, the configured horizon, and a row for every customer signed up before that date."""
    try:
        truth = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"--truth {path}: cannot read it as parquet ({exc})") from exc
    missing = [c for c in TRUTH_COLUMNS if c not in truth]
    if missing or truth.empty:
        raise InputError(f"--truth {path}: not a simulated world's truth (customer_value simulate writes one); "
                         + (f"missing column(s) {', '.join(missing)}" if missing else "no rows"))
    dates = pd.to_datetime(truth["as_of"]).dt.date.unique()
    if len(dates) != 1:
        raise InputError(f"--truth {path}: holds {len(dates)} dates in column as_of; a world's truth holds one")
    day = truth_date(truth)
    if day not in cutoffs:
        raise InputError(f"--truth {path} is as of {day}, which is not a backtest cutoff "
                         f"({', '.join(map(str, cutoffs))}); choose --as-of {day + dt.timedelta(days=settings.horizon_days)} "
                         "so that the last cutoff falls on it")
    horizons = set(truth["horizon_days"].unique())
    if horizons != {settings.horizon_days}:
        raise InputError(f"--truth {path}: its oracle looks {sorted(horizons)} days ahead, the backtest "
                         f"{settings.horizon_days} (horizon_days in the config)")
    population = customers.loc[customers["signup_at"] < pd.Timestamp(day), "customer_id"]
    absent = population[~population.isin(truth["customer_id"])]
    if len(absent):
        raise InputError(f"--truth {path}: no row for {len(absent)} customer(s) signed up before {day} "
                         f"(e.g. {', '.join(map(str, absent.head(3)))}); is it this world's truth?")
    return truth


def backtest_summary(result: BacktestResult) -> str:
    """The per-cutoff table (with what fell back where, and why), the model beside the baselines
    (with the cutoffs each score existed at and the fallbacks behind it), and the latest cutoff's
    monthly reconciliation, in markdown."""
    per_cutoff = result.metrics[[c for c in PER_CUTOFF_COLUMNS if c in result.metrics]].round(4)
    table = comparison_table(result).reset_index(names="score")
    out = format_table(per_cutoff, "markdown") + "\n\n" + format_table(table, "markdown")
    if result.monthly:
        latest = max(result.monthly)
        monthly = result.monthly[latest].round({"expected_margin": 0, "realised_margin": 0, "expected_cost": 0,
                                                "realised_cost": 0, "margin_error": 4, "cost_error": 4})
        out += (f"\n\nMonthly portfolio margin and cost as of {latest}, forecast against what happened:\n\n"
                + format_table(monthly, "markdown"))
    return out
