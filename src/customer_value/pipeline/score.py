"""`customer-value score`: the weekly batch, in one straight line.

check the outputs can be written and the tracking server answers → load the model (an alias
resolved once, to the version that is loaded) → load the tables → features as of ``as_of`` → the
value model → check one row per customer → write atomically → report → log a scoring run (row
counts, the score distribution and drift (PSI) against the previous scoring of the same model).
Every customer signed up before ``as_of`` gets exactly one row; the Parquet file appears whole or
not at all, and the same inputs give the same bytes.

A model scores with its own settings (horizon, discount rate, costs, ...). A scoring config may
only say how to read the data (:data:`INPUT_KEYS`); any other key it sets that differs from the
model's is a :class:`ConfigError` naming each key and both values, never silently ignored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from customer_value.config import Settings
from customer_value.data.writing import check_output, write_parquet_atomically
from customer_value.errors import ConfigError
from customer_value.features import build_features
from customer_value.pipeline.inputs import load_inputs, require_customers_before
from customer_value.pipeline.report import report_figures, write_html_report
from customer_value.tracking.model import load_model, score_features
from customer_value.tracking.runs import log_scoring_run
from customer_value.tracking.store import setup_tracking
from customer_value.valuation.drivers import with_drain_drivers
from customer_value.valuation.value import BoostedPredictions
from customer_value.valuation.whatif import METADATA_KEY

Progress = Callable[[str], None]
SENSITIVITY_HORIZONS = (365, 3 * 365)
INPUT_KEYS = tuple(k for k in ("columns", "strict", "timestamp_format") if k in Settings.model_fields)
"""The settings a scoring config may set: how to read the data, nothing the model computes with."""


def scoring_settings(model: Settings, given: Settings | None) -> Settings:
    """The model's settings with the data-reading keys the caller set (:data:`INPUT_KEYS`); any
    other key set in ``given`` that differs from the model's is a :class:`ConfigError`."""
    if given is None:
        return model
    differing = _differences(given, model, given.model_fields_set - set(INPUT_KEYS))
    if differing:
        listed = "; ".join(f"{key}: {mine!r} in the config, {theirs!r} in the model" for key, mine, theirs in differing)
        raise ConfigError(f"the scoring config differs from the model's settings ({listed}); a model scores with "
                          f"its own settings, so drop these keys from --config (it may set only {', '.join(INPUT_KEYS)})")
    return model.with_overrides(**{k: getattr(given, k) for k in INPUT_KEYS if k in given.model_fields_set})


def _differences(given: Any, model: Any, keys: set[str], prefix: str = "") -> list[tuple[str, Any, Any]]:
    out = []
    for key in sorted(keys):
        mine, theirs = getattr(given, key), getattr(model, key)
        if hasattr(mine, "model_fields_set") and hasattr(theirs, "model_fields_set"):
            out += _differences(mine, theirs, set(mine.model_fields_set), f"{prefix}{key}.")
        elif _plain(mine) != _plain(theirs):
            out.append((f"{prefix}{key}", _plain(mine), _plain(theirs)))
    return out


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


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
          progress: Progress | None = None, validation_report: Path | None = None,
          horizon_days: int | None = None, cashflows: Path | None = None) -> ScoreResult:
    """Check the outputs, load the model, build features, score, check, write atomically, report, log.

    ``horizon_days`` overrides the model's horizon for this scoring (segment cut points scale with
    it); ``cashflows`` also writes one row per customer × month (:mod:`customer_value.valuation.cashflows`)."""
    say = progress or (lambda _: None)
    check_output(out, "scores")
    for path, what in ((report, "report"), (validation_report, "validation report"), (cashflows, "cash flows")):
        if path is not None:
            check_output(path, what)
    if log_run:
        setup_tracking()  # a tracking server that is down fails now, not after the scoring
    say(f"loading model {model}")
    loaded_model = load_model(model)
    model_settings = scoring_settings(loaded_model.settings, settings)
    say(f"loading tables from {data_dir}")
    # no cut copy of the tables: the feature builders are point-in-time by construction (their
    # leakage tests and this pipeline's cut-vs-full test prove it) and a copy of ~100M rows is
    # the difference between fitting in 8 GiB or not
    tables = load_inputs(data_dir, model_settings, validation_report, say).tables
    population = require_customers_before(tables.customers, as_of)
    say(f"features as of {as_of}")
    features = build_features(tables, as_of, model_settings, engine=engine)
    del tables  # the raw tables hold most of the memory; nothing below needs them
    say(f"scoring {len(features):,} customers")
    scores = score_features(loaded_model, features, as_of, horizon_days)
    horizon = int(scores["horizon_days"].iloc[0]) if len(scores) else model_settings.horizon_days
    check_one_row_per_customer(scores, population)
    scores = scores.sort_values("customer_id", kind="stable").reset_index(drop=True)
    if "top_cost_drivers" not in scores:  # a model without activity forecasts: SHAP for the drain list
        scores = with_drain_drivers(scores, features, loaded_model.value_model)
    # what `whatif` needs to reprice the file without the model, kept in its Parquet metadata
    scores.attrs[METADATA_KEY] = loaded_model.value_model.scoring_metadata(horizon)
    write_parquet_atomically(scores, out)
    say(f"wrote {len(scores):,} rows to {out}")
    if cashflows is not None:
        in_order = scores.set_index("customer_id").loc[features["customer_id"]].reset_index()
        flows = loaded_model.value_model.cashflows(features, in_order, as_of)
        write_parquet_atomically(flows, cashflows)
        say(f"wrote {len(flows):,} monthly cash-flow rows to {cashflows}")

    # the sensitivity table reuses the rows' churn, cost and margin predictions (the boosted models are the
    # expensive part and do not depend on the horizon); the model's own horizon is the file's total
    in_feature_order = scores.set_index("customer_id").reindex(features["customer_id"])
    horizon_totals = loaded_model.value_model.total_value_by_horizon(
        features, sorted({*SENSITIVITY_HORIZONS, horizon}),
        BoostedPredictions.from_scores(in_feature_order, model_settings.horizon_days))
    horizon_totals[horizon] = float(scores["customer_value"].sum())
    report_path = None
    if report is not None:
        report_path = write_html_report(scores, report, f"Customer value as of {as_of} ({loaded_model.uri})", horizon_totals)
        say(f"report: {report_path}")
    run_id, drift = None, {}
    if log_run:
        run_id, drift = log_scoring_run(scores, model_settings.model_name, loaded_model.uri, as_of, out,
                                        horizon_totals, data_dir, lambda: report_figures(scores, horizon_totals))
    return ScoreResult(scores, out, report_path, run_id, drift)
