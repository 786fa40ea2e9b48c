"""`customer-value score`: the weekly batch, in one straight line.

check the outputs can be written and the tracking server answers → load the model (an alias
resolved once, to the version that is loaded) → load the tables → features as of ``as_of`` → the
value model → the churn drivers in words → check one row per customer → write atomically → the
drift (PSI) against the previous scoring of the same model name and alias, and the training run's
metrics → report → log a scoring run (tagged with the model's URI, name, version and alias; row
counts, the score distribution, the drift).
Every customer signed up before ``as_of`` gets exactly one row; the Parquet file appears whole or
not at all, and the same inputs give the same bytes.

A model scores with its own settings (horizon, discount rate, costs, ...). A scoring config may
only say how to read the data and in which currency the report shows amounts (:data:`INPUT_KEYS`);
any other key it sets that differs from the model's is a :class:`ConfigError` naming each key and
both values, never silently ignored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from customer_value.config import Settings
from customer_value.data.writing import check_output, write_parquet_atomically
from customer_value.errors import ConfigError
from customer_value.features import build_features
from customer_value.pipeline.inputs import load_inputs, require_customers_before
from customer_value.pipeline.progress import Reporter, reporter
from customer_value.pipeline.report import report_figures, write_html_report
from customer_value.tracking.model import load_model, score_features
from customer_value.tracking.runs import ScoredModel, log_scoring_run, previous_scoring, scoring_drift, training_quality
from customer_value.tracking.store import setup_tracking
from customer_value.valuation.churn_drivers import churn_drivers
from customer_value.valuation.drivers import with_drain_drivers
from customer_value.valuation.value import BoostedPredictions
from customer_value.valuation.whatif import METADATA_KEY

Progress = Callable[[str], None] | Reporter
SENSITIVITY_HORIZONS = (365, 3 * 365)
INPUT_KEYS = tuple(k for k in ("columns", "strict", "timestamp_format", "currency") if k in Settings.model_fields)
"""The settings a scoring config may set: how to read the data and how the report shows it
(``currency``), nothing the model computes with."""


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
    quality: dict[str, float] = field(default_factory=dict)
    drift_against: str | None = None
    """The run id of the scoring the drift compares with."""


def score(data_dir: Path, as_of: dt.date, model: str, out: Path, settings: Settings | None = None,
          report: Path | None = None, engine: Any = "duckdb", log_run: bool = True,
          progress: Progress | None = None, validation_report: Path | None = None,
          horizon_days: int | None = None, cashflows: Path | None = None) -> ScoreResult:
    """Check the outputs, load the model, build features, score, explain, check, write atomically,
    report, log.

    ``horizon_days`` overrides the model's horizon for this scoring (segment cut points scale with
    it, and the report says so); ``cashflows`` also writes one row per customer × month
    (:mod:`customer_value.valuation.cashflows`). ``progress`` is a ``say`` callable (lines) or a
    :class:`~customer_value.pipeline.progress.Reporter` (the command line's draws progress bars).

    The report carries the training run's validation and backtest metrics (models from the
    registry) and the drift against the previous scoring of the same model name and alias (see
    :func:`customer_value.tracking.runs.previous_scoring`; only when the run is logged)."""
    say = reporter(progress)
    check_output(out, "scores")
    for path, what in ((report, "report"), (validation_report, "validation report"), (cashflows, "cash flows")):
        if path is not None:
            check_output(path, what)
    if log_run:
        setup_tracking()  # a tracking server that is down fails now, not after the scoring
    with say.step(f"loading model {model}"):
        loaded_model = load_model(model)
    model_settings = scoring_settings(loaded_model.settings, settings)
    identity = ScoredModel.of(loaded_model.uri, model_settings.model_name, loaded_model.version, loaded_model.alias)
    # no cut copy of the tables: the feature builders are point-in-time by construction (their
    # leakage tests and this pipeline's cut-vs-full test prove it) and a copy of ~100M rows is
    # the difference between fitting in 8 GiB or not
    with say.step(f"loading tables from {data_dir}"):
        tables = load_inputs(data_dir, model_settings, validation_report, say).tables
    population = require_customers_before(tables.customers, as_of)
    with say.step(f"features as of {as_of}"):
        features = build_features(tables, as_of, model_settings, engine=engine)
    del tables  # the raw tables hold most of the memory; nothing below needs them
    with say.step(f"scoring {len(features):,} customers"):
        scores = score_features(loaded_model, features, as_of, horizon_days)
    horizon = int(scores["horizon_days"].iloc[0]) if len(scores) else model_settings.horizon_days
    check_one_row_per_customer(scores, population)
    notes: dict[str, str] = {}
    if loaded_model.value_model.churn_model is not None:
        with say.step("churn drivers", total=len(features)) as step:
            drivers = churn_drivers(loaded_model.value_model, features,
                                    progress=lambda done, _total: step.update(completed=done))
            step.finish(f"{drivers.trees:,} of {drivers.of_trees:,} trees, R² {drivers.r2:.3f}")
        notes["customer_value.churn_drivers"] = drivers.method()
        scores = with_column(scores, "top_churn_drivers", drivers.texts.to_numpy(), after="top_cost_drivers")
    scores = scores.sort_values("customer_id", kind="stable").reset_index(drop=True)
    if "top_cost_drivers" not in scores:  # a model without activity forecasts: SHAP for the drain list
        scores = with_drain_drivers(scores, features, loaded_model.value_model)
        if "top_churn_drivers" in scores:  # the two driver columns side by side
            scores = with_column(scores, "top_churn_drivers", scores["top_churn_drivers"].to_numpy(),
                                 after="top_cost_drivers")
    # what `whatif` needs to reprice the file without the model, kept in its Parquet metadata
    scores.attrs[METADATA_KEY] = loaded_model.value_model.scoring_metadata(horizon)
    with say.step(f"writing {len(scores):,} rows to {out}"):
        write_parquet_atomically(scores, out)
    in_feature_order = scores.set_index("customer_id").reindex(features["customer_id"])  # rows as the model saw them
    if cashflows is not None:
        with say.step(f"monthly cash flows to {cashflows}"):
            flows = loaded_model.value_model.cashflows(features, in_feature_order.reset_index(), as_of)
            write_parquet_atomically(flows, cashflows)

    # the sensitivity table reuses the rows' churn, cost and margin predictions (the boosted models are the
    # expensive part and do not depend on the horizon); the model's own horizon is the file's total
    with say.step("value at other horizons"):
        horizon_totals = loaded_model.value_model.total_value_by_horizon(
            features, sorted({*SENSITIVITY_HORIZONS, horizon}),
            BoostedPredictions.from_scores(in_feature_order, model_settings.horizon_days))
        horizon_totals[horizon] = float(scores["customer_value"].sum())
    del features, in_feature_order

    baseline, drift, quality = None, {}, {}
    if log_run:
        baseline = previous_scoring(identity)
        drift = scoring_drift(baseline, scores)
    if identity.version is not None:
        quality = _training_quality(identity, say)
    report_path = None
    if report is not None:
        with say.step(f"report {report}"):
            report_path = write_html_report(
                scores, report, f"Customer value as of {as_of}", horizon_totals, quality=quality or None,
                drift=drift if baseline is not None else None, currency=model_settings.currency,
                model_horizon_days=loaded_model.settings.horizon_days)
    run_id = None
    if log_run:
        with say.step(f"logging the scoring run to {identity.experiment}"):
            run_id = log_scoring_run(scores, identity, as_of, out, horizon_totals, data_dir,
                                     lambda: report_figures(scores, horizon_totals, model_settings.currency),
                                     baseline, drift, notes)
    return ScoreResult(scores, out, report_path, run_id, drift, quality,
                       baseline.run_id if baseline is not None else None)


def _training_quality(identity: ScoredModel, say: Reporter) -> dict[str, float]:
    """The training run's metrics; a registry that cannot tell only costs the report its section."""
    try:
        return training_quality(identity)
    except Exception as exc:  # noqa: BLE001 - the scores do not depend on it
        say.say(f"model quality left out of the report: the training run of {identity.uri} could not be read "
                f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
        return {}


def with_column(frame: pd.DataFrame, name: str, values: Any, after: str | None = None) -> pd.DataFrame:
    """``frame`` with the column ``name`` placed right after ``after`` (at the end without it)."""
    out = frame.drop(columns=name, errors="ignore")
    position = out.columns.get_loc(after) + 1 if after is not None and after in out.columns else out.shape[1]
    out.insert(position, name, values)
    return out
