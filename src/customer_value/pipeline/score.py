"""`customer-value score`: the weekly batch, in one straight line.

load the model → load the tables → features as of ``as_of`` → the value model → check one row per
customer → write atomically → report → log a scoring run (row counts, the score distribution and
drift (PSI) against the previous scoring of the same model). Every customer signed up before
``as_of`` gets exactly one row; the Parquet file appears whole or not at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from customer_value.config import Settings
from customer_value.data.writing import write_parquet_atomically
from customer_value.features import build_features
from customer_value.pipeline.inputs import load_inputs
from customer_value.pipeline.report import report_figures, write_html_report
from customer_value.tracking.model import load_model, score_features
from customer_value.tracking.runs import log_scoring_run
from customer_value.valuation.drivers import with_drain_drivers
from customer_value.valuation.value import BoostedPredictions

Progress = Callable[[str], None]
SENSITIVITY_HORIZONS = (365, 3 * 365)


def check_one_row_per_customer(scores: pd.DataFrame, population: pd.Series) -> None:
    """Exactly the customers signed up before as_of, each once; anything else is a bug, not data."""
    if scores["customer_id"].duplicated().any():
        raise AssertionError(f"{int(scores['customer_id'].duplicated().sum())} customer(s) scored twice")
    missing = set(population) - set(scores["customer_id"])
    extra = set(scores["customer_id"]) - set(population)
    if missing or extra:
        raise AssertionError(f"scored population differs: {len(missing)} missing, {len(extra)} unexpected")


@dataclass
class ScoreResult:
    scores: pd.DataFrame
    out: Path
    report: Path | None
    run_id: str | None
    drift: dict[str, float]


def score(data_dir: Path, as_of: dt.date, model: str, out: Path, settings: Settings | None = None,
          report: Path | None = None, engine: Any = "duckdb", log_run: bool = True,
          progress: Progress | None = None, validation_report: Path | None = None) -> ScoreResult:
    """Load, build features, score, check, write atomically, report, log."""
    say = progress or (lambda _: None)
    say(f"loading model {model}")
    loaded_model = load_model(model)
    model_settings = loaded_model.settings
    if settings is not None:  # the data's column mapping and strictness come from the caller
        model_settings = model_settings.with_overrides(columns=settings.columns, strict=settings.strict)
    say(f"loading tables from {data_dir}")
    # no cut copy of the tables: the feature builders are point-in-time by construction (their
    # leakage tests and this pipeline's cut-vs-full test prove it) and a copy of ~100M rows is
    # the difference between fitting in 8 GiB or not
    tables = load_inputs(data_dir, model_settings, validation_report, say).tables
    say(f"features as of {as_of}")
    features = build_features(tables, as_of, model_settings, engine=engine)
    population = tables.customers.loc[tables.customers["signup_at"] < pd.Timestamp(as_of), "customer_id"]
    del tables  # the raw tables hold most of the memory; nothing below needs them
    say(f"scoring {len(features):,} customers")
    scores = score_features(loaded_model, features, as_of)
    check_one_row_per_customer(scores, population)
    scores = scores.sort_values("customer_id", kind="stable").reset_index(drop=True)
    scores = with_drain_drivers(scores, features, loaded_model.value_model)
    write_parquet_atomically(scores, out)
    say(f"wrote {len(scores):,} rows to {out}")

    # the sensitivity table reuses the rows' churn, cost and margin predictions (the boosted models are the
    # expensive part and do not depend on the horizon); the model's own horizon is the file's total
    in_feature_order = scores.set_index("customer_id").reindex(features["customer_id"])
    horizon_totals = loaded_model.value_model.total_value_by_horizon(
        features, sorted({*SENSITIVITY_HORIZONS, model_settings.horizon_days}),
        BoostedPredictions.from_scores(in_feature_order))
    horizon_totals[model_settings.horizon_days] = float(scores["customer_value"].sum())
    report_path = None
    if report is not None:
        report_path = write_html_report(scores, report, f"Customer value as of {as_of} ({loaded_model.uri})", horizon_totals)
        say(f"report: {report_path}")
    run_id, drift = None, {}
    if log_run:
        run_id, drift = log_scoring_run(scores, model_settings.model_name, loaded_model.uri, as_of, out,
                                        horizon_totals, data_dir, lambda: report_figures(scores, horizon_totals))
    return ScoreResult(scores, out, report_path, run_id, drift)
