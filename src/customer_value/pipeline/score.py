"""`customer-value score`: the weekly batch. Every customer signed up before ``as_of`` gets exactly
one row; the Parquet file appears whole or not at all; a scoring run is logged to MLflow with
row counts, the score distribution and drift (PSI) against the previous scoring of the same model.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from customer_value.config import Settings

Progress = Callable[[str], None]
ACCOUNT_COLUMNS = ("plan", "acquisition_channel", "region")
SENSITIVITY_HORIZONS = (365, 3 * 365)


@dataclass
class LoadedModel:
    """A loaded pyfunc, the value model inside it, and the identity written into score rows."""

    pyfunc: Any
    value_model: Any
    uri: str

    @property
    def settings(self) -> Settings:
        return self.value_model.settings


def load_model(model: str) -> LoadedModel:
    """``models:/<name>/<version>``, ``models:/<name>@<alias>``, ``runs:/...`` or a local directory."""
    import mlflow

    from customer_value import tracking

    tracking.setup_tracking()
    loaded = mlflow.pyfunc.load_model(model)
    return LoadedModel(loaded, loaded.unwrap_python_model().model, tracking.resolve_model_uri(model))


def score_features(model: LoadedModel, features: pd.DataFrame, as_of: dt.date, horizon_days: int | None = None) -> pd.DataFrame:
    """Score rows for a feature frame, through the pyfunc (the same path as any MLflow consumer)."""
    from customer_value.tracking import model_input

    params = {"as_of": as_of.isoformat(), "model_uri": model.uri, "horizon_days": int(horizon_days or 0)}
    scores = model.pyfunc.predict(model_input(features), params=params)
    scores["as_of"] = pd.to_datetime(scores["as_of"]).dt.date
    for column in ACCOUNT_COLUMNS:
        if column in features.columns:
            scores[column] = features[column].to_numpy()
    return scores


def check_one_row_per_customer(scores: pd.DataFrame, population: pd.Series) -> None:
    """Exactly the customers signed up before as_of, each once; anything else is a bug, not data."""
    if scores["customer_id"].duplicated().any():
        raise AssertionError(f"{int(scores['customer_id'].duplicated().sum())} customer(s) scored twice")
    missing = set(population) - set(scores["customer_id"])
    extra = set(scores["customer_id"]) - set(population)
    if missing or extra:
        raise AssertionError(f"scored population differs: {len(missing)} missing, {len(extra)} unexpected")


def cost_drivers(model: LoadedModel, features: pd.DataFrame, k: int = 3) -> pd.Series:
    """The cost model's k largest SHAP contributions per row (log scale), as readable text."""
    from customer_value.models.explain import top_drivers
    from customer_value.pipeline.report import format_drivers

    value_model = model.value_model
    if value_model.cost_model is None or features.empty:
        return pd.Series("", index=features.index)
    rfm = features.set_index("customer_id")[["frequency", "recency", "T", "monetary_value"]]
    model_input = value_model.model_input(features, rfm, value_model.settings.horizon_days)
    return format_drivers(top_drivers(value_model.cost_model, model_input, k))


@dataclass
class ScoreResult:
    scores: pd.DataFrame
    out: Path
    report: Path | None
    run_id: str | None
    drift: dict[str, float]


def score(data_dir: Path, as_of: dt.date, model: str, out: Path, settings: Settings | None = None,
          report: Path | None = None, engine: Any = "duckdb", log_run: bool = True,
          progress: Progress | None = None) -> ScoreResult:
    """Load, cut at as_of, build features, score, check, write atomically, report, log."""
    from customer_value.data.loading import load_tables
    from customer_value.features import build_features
    from customer_value.models.value import BoostedPredictions
    from customer_value.pipeline.outputs import write_parquet_atomically
    from customer_value.pipeline.report import looks_profitable_but_drains, write_html_report

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
    tables = load_tables(data_dir, model_settings).tables
    say(f"features as of {as_of}")
    features = build_features(tables, as_of, model_settings, engine=engine)
    population = tables.customers.loc[tables.customers["signup_at"] < pd.Timestamp(as_of), "customer_id"]
    del tables  # the raw tables hold most of the memory; nothing below needs them
    say(f"scoring {len(features):,} customers")
    scores = score_features(loaded_model, features, as_of)
    check_one_row_per_customer(scores, population)
    scores = scores.sort_values("customer_id", kind="stable").reset_index(drop=True)
    drains = looks_profitable_but_drains(scores)
    scores["top_cost_drivers"] = ""
    if len(drains):
        idx = features.index[features["customer_id"].isin(drains["customer_id"])]
        drivers = cost_drivers(loaded_model, features.loc[idx]).set_axis(features.loc[idx, "customer_id"])
        scores.loc[scores["customer_id"].isin(drivers.index), "top_cost_drivers"] = (
            scores.loc[scores["customer_id"].isin(drivers.index), "customer_id"].map(drivers)
        )
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
        run_id, drift = log_scoring_run(scores, loaded_model, as_of, out, horizon_totals, data_dir)
    return ScoreResult(scores, out, report_path, run_id, drift)


def log_scoring_run(scores: pd.DataFrame, model: LoadedModel, as_of: dt.date, out: Path,
                    horizon_totals: pd.Series, data_dir: Path) -> tuple[str, dict[str, float]]:
    """A scoring run in the experiment ``<model name>-scoring``: counts, distribution, drift, plots."""
    import mlflow

    from customer_value import monitoring, tracking
    from customer_value.pipeline.report import report_figures

    name = model.settings.model_name
    experiment = tracking.experiment_id(f"{name}-scoring")
    previous = mlflow.search_runs(
        experiment_ids=[experiment],
        filter_string=f"tags.`customer_value.model_uri` = '{model.uri}'",
        order_by=["attributes.start_time DESC"], max_results=1, output_format="list",
    )
    with mlflow.start_run(experiment_id=experiment, run_name=f"score as of {as_of}") as run:
        mlflow.set_tags({"customer_value.run_type": "score", "customer_value.model_uri": model.uri,
                         "customer_value.as_of": str(as_of)})
        mlflow.log_params({"as_of": str(as_of), "model_uri": model.uri, "data_dir": str(data_dir), "out": str(out)})
        mlflow.log_metrics(monitoring.score_distribution(scores))
        mlflow.log_metrics({f"total_value.horizon_{h}d": v for h, v in horizon_totals.items()})
        profile = monitoring.decile_profile(scores)
        mlflow.log_dict(profile, "score_profile.json")
        drift: dict[str, float] = {}
        if previous:
            try:
                before = mlflow.artifacts.load_dict(f"{previous[0].info.artifact_uri}/score_profile.json")
                drift = monitoring.psi_against_profile(before, scores)
                mlflow.log_metrics({f"drift.psi.{c}": v for c, v in drift.items()})
                mlflow.set_tag("customer_value.drift_against_run", previous[0].info.run_id)
            except Exception as exc:  # a lost artifact must not fail the weekly job
                mlflow.set_tag("customer_value.drift_error", str(exc)[:250])
        for file_name, figure in report_figures(scores, horizon_totals).items():
            mlflow.log_figure(figure, f"report/{file_name}")
    return run.info.run_id, drift
