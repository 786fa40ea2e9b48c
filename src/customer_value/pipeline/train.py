"""`customer-value train`: fit every part as of a date, log it all to MLflow, register one model.

A training run is a parent MLflow run (tag ``customer_value.run_type = train``) with one child
run per part: ``purchases`` (BG/NBD), ``spend`` (Gamma-Gamma), ``churn``, ``cost``, ``margin`` and
``drain`` (each with its Optuna trials as children; the margin model takes the churn model's
probability as an input), ``backtest`` (the internal backtest whose averaged metrics are
copied to the parent as ``backtest.*``). The parent carries params (``as_of``, the config as
``config.*``, the data fingerprint as ``data.*``), the code version, and the registered model.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from customer_value.config import Settings
from customer_value.data.tables import Tables
from customer_value.models.value import ValueModel

RFM_COLUMNS = ["frequency", "recency", "T", "monetary_value"]
Progress = Callable[[str], None]


@dataclass
class FittedValueModel:
    """A fitted value model and what came with it (features at the date, tuning, skipped parts)."""

    model: ValueModel
    features: pd.DataFrame
    as_of: dt.date
    skipped: dict[str, str] = field(default_factory=dict)
    evaluation: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def _child(name: str, enabled: bool):
    import mlflow

    return mlflow.start_run(run_name=name, nested=True) if enabled else nullcontext()


def fit_value_model(tables: Tables, as_of: dt.date | str, settings: Settings, engine: Any = "duckdb",
                    log_children: bool = False, progress: Progress | None = None,
                    study_storage: str | Path | None = None) -> FittedValueModel:
    """Fit purchases, spend, churn, cost, margin and drain as of ``as_of`` on tables cut there; combine them.

    Parts that cannot be trained (too little history for the snapshots, a single churn class,
    no cost at all) are skipped with the reason recorded in ``skipped``; the value model then
    falls back as its docstring says.
    """
    import mlflow

    from customer_value.models.purchases import PurchaseModel
    from customer_value.models.spend import SpendModel
    from customer_value.models.margin import with_churn_probability
    from customer_value.models.training_set import (
        LABELS,
        TASKS,
        Builders,
        SnapshotCache,
        build_training_set,
        tables_before,
        to_date,
    )
    from customer_value.models.tuning import CLASSIFIERS, REGRESSORS, tune

    say = progress or (lambda _: None)
    day = to_date(as_of)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    cut = tables_before(tables, day)
    cache = SnapshotCache(cut, settings, engine, Builders())
    say(f"features as of {day}")
    features = cache.base_features(day)
    timings["features"] = time.perf_counter() - start
    rfm = features.set_index("customer_id")[RFM_COLUMNS]

    say("purchases (BG/NBD) and spend (Gamma-Gamma)")
    t0 = time.perf_counter()
    with _child("purchases", log_children):
        purchases = PurchaseModel.from_settings(settings).fit(rfm)
        if log_children:
            _log_probabilistic(purchases, "purchases")
    with _child("spend", log_children):
        spend = SpendModel.from_settings(settings).fit(rfm)
        if log_children:
            _log_probabilistic(spend, "spend")
    timings["probabilistic"] = time.perf_counter() - t0

    skipped: dict[str, str] = {}
    fitted: dict[str, Any] = {}
    evaluation: dict[str, dict[str, dict[str, float]]] = {}
    for task in TASKS:
        t0 = time.perf_counter()
        say(f"{task}: stacking snapshots")
        try:
            if task == "drain" and "cost" not in fitted:
                raise ValueError("a drain is net value below zero, which needs the cost-to-serve model "
                                 f"(skipped: {skipped.get('cost', 'not fitted')})")
            training_set = build_training_set(cut, day, settings, task, engine, cache=cache)
            if task in CLASSIFIERS and np.unique(training_set.y_train).size < 2:
                raise ValueError(f"the {task} labels of the training snapshots have a single class")
            if task in REGRESSORS and not np.any(training_set.y_train > 0):
                raise ValueError(f"no customer has any {LABELS[task]} in the training snapshots")
            if task == "margin" and "churn" in fitted:
                training_set = with_churn_probability(training_set, cache, fitted["churn"], settings)
        except ValueError as exc:
            skipped[task] = str(exc)
            say(f"{task}: skipped ({exc})")
            continue
        say(f"{task}: {training_set.summary()}; tuning {settings.trials} trial(s)")
        with _child(task, log_children):
            storage = None if study_storage is None else Path(study_storage) / f"{task}-{day}.db"
            result = tune(training_set, settings, storage=storage, log_to_mlflow=log_children,
                          final_model_kwargs=_final_model_kwargs(task, settings))
            fitted[task] = result.model
            prediction = _valid_prediction(task, result.model, training_set)
            evaluation[task] = _evaluate(task, result.model, training_set, settings, prediction)
            if log_children:
                from customer_value.models.evaluation import log_evaluation

                log_evaluation(**{task: evaluation[task]},
                               figures=_figures(task, result.model, training_set, prediction))
                mlflow.log_dict({"snapshots": [str(d) for d in training_set.snapshot_dates]}, f"{task}_snapshots.json")
        timings[task] = time.perf_counter() - t0

    model = ValueModel(settings, purchases, spend, fitted.get("churn"), fitted.get("cost"), fitted.get("margin"),
                       churn_adjustment=settings.churn_adjustment, skipped=skipped,
                       drain_model=fitted.get("drain")).fit(features)
    timings["total"] = time.perf_counter() - start
    return FittedValueModel(model, features, day, skipped, evaluation, timings)


def _final_model_kwargs(task: str, settings: Settings) -> dict[str, Any] | None:
    """What the tuned final model gets beyond the searched parameters: the cost model compares
    objectives; the drain model takes a fixed flag threshold when the config sets one."""
    if task == "cost":
        return {"objective": "auto"}
    if task == "drain" and settings.drain_threshold is not None:
        return {"threshold": settings.drain_threshold}
    return None


def _log_probabilistic(model: Any, prefix: str) -> None:
    import mlflow

    params = getattr(model, "params_", {}) or {}
    mlflow.log_metrics({f"{prefix}.{k}": float(v) for k, v in params.items()})
    if getattr(model, "log_likelihood_", None) is not None:
        mlflow.log_metric(f"{prefix}.log_likelihood", float(model.log_likelihood_))
    if getattr(model, "fit_path_", None) is not None:
        mlflow.set_tag(f"{prefix}.fit_path", str(model.fit_path_))
    mlflow.log_dict(model.to_dict(), f"{prefix}.json")


def _validation_baselines(task: str, training_set: Any, settings: Settings) -> dict[str, np.ndarray]:
    """The naive predictions the issue asks to stand beside each model."""
    from customer_value.models import evaluation as ev

    X = training_set.X_valid
    if task == "churn":
        days = X["days_since_last_purchase"].to_numpy(dtype=float) if "days_since_last_purchase" in X else None
        out = {"baseline_bgnbd": X["bgnbd_p_no_purchase"].to_numpy(dtype=float)}
        if days is not None:
            rates = ev.recency_rule_rates(training_set.X_train["days_since_last_purchase"], training_set.y_train,
                                          settings.churn_window_days)
            _, prob = ev.recency_baseline(days, settings.churn_window_days, rates)
            out["baseline_recency"] = prob
        return out
    if task == "drain":  # the trailing year's net value below zero, as a 0/1 probability
        return {"baseline_historical": (X["historical_value"].to_numpy(dtype=float) < 0).astype(float)}
    # the trailing window and the label window are both horizon_days long: no rescaling needed
    if task == "margin":  # BG/NBD transactions x mean repeat order value x margin ratio; trailing-year margin
        bgnbd = X["bgnbd_expected_transactions"].to_numpy(dtype=float) * X["monetary_value"].to_numpy(dtype=float)
        ratio = X["margin_to_date"].to_numpy(dtype=float) / np.clip(X["revenue_to_date"].to_numpy(dtype=float), 1e-9, None)
        return {"baseline_bgnbd": bgnbd * np.clip(ratio, 0.0, 1.0),
                "baseline_trailing": (X["historical_value"] + X["hist_cost_to_serve"]).to_numpy(dtype=float)}
    return {"baseline_trailing": X["hist_cost_to_serve"].to_numpy(dtype=float)} if "hist_cost_to_serve" in X else {}


def _valid_prediction(task: str, model: Any, training_set: Any) -> np.ndarray:
    """The model on the validation snapshot (a probability for the classifiers), computed once for
    the metrics and the figures."""
    from customer_value.models.tuning import CLASSIFIERS

    X = training_set.X_valid
    return model.predict_proba(X) if task in CLASSIFIERS else model.predict(X)


def _evaluate(task: str, model: Any, training_set: Any, settings: Settings,
              prediction: np.ndarray) -> dict[str, dict[str, float]]:
    from customer_value.models import evaluation as ev

    baselines = _validation_baselines(task, training_set, settings)
    if task == "churn":
        predictions = {"valid": prediction, **baselines}
        scores = {}
        if "baseline_recency" in baselines:
            scores["baseline_recency"] = ev.recency_score(training_set.X_valid["days_since_last_purchase"])
        return ev.churn_evaluation(training_set.y_valid, predictions, scores)
    if task == "drain":
        scores = {"baseline_historical": -training_set.X_valid["historical_value"].to_numpy(dtype=float)}
        out = ev.churn_evaluation(training_set.y_valid, {"valid": prediction, **baselines}, scores)
        flags = {"valid": model.flag(training_set.X_valid, prediction),  # at the cut chosen on these rows
                 "baseline_historical": baselines["baseline_historical"] > 0}
        for source, flag in flags.items():
            pr = ev.precision_recall_at(training_set.y_valid > 0, flag)
            out[source].update(flag_precision=pr["precision"], flag_recall=pr["recall"])
        out["valid"]["threshold"] = model.threshold_
        return out
    return ev.cost_evaluation(training_set.y_valid, {"valid": prediction, **baselines})


def _figures(task: str, model: Any, training_set: Any, prediction: np.ndarray) -> dict[str, Any]:
    from customer_value.models import evaluation as ev
    from customer_value.models.explain import mean_abs_contributions
    from customer_value.models.tuning import CLASSIFIERS

    importance = {task: mean_abs_contributions(model, training_set.X_valid)}
    if task in CLASSIFIERS:
        probs = {"model": prediction}
        if task == "churn":
            probs["bgnbd"] = training_set.X_valid["bgnbd_p_no_purchase"].to_numpy(dtype=float)
        return ev.evaluation_figures(churn_true=training_set.y_valid, churn_probs=probs, importance=importance,
                                     classifier=task)
    titles = {"cost": "cost to serve", "margin": "margin"}
    return ev.evaluation_figures(cost_true=training_set.y_valid, cost_preds={"model": prediction}, importance=importance,
                                 amount=task, amount_title=titles[task])


# ---------------------------------------------------------------------------------------------
# the command


@dataclass
class TrainResult:
    model_uri: str
    run_id: str
    fitted: FittedValueModel
    metrics: dict[str, float]


def train(data_dir: Path, as_of: dt.date, experiment: str, settings: Settings, alias: str | None = None,
          backtest: bool = True, engine: Any = "duckdb", progress: Progress | None = None,
          export_dir: Path | None = None) -> TrainResult:
    """Load, fit, backtest, log, register; returns the registered ``models:/<name>/<version>``."""
    import mlflow

    from customer_value import tracking
    from customer_value.data.loading import load_tables
    from customer_value.pipeline.backtest import cutoffs_before, run_backtest

    say = progress or (lambda _: None)
    tracking.setup_tracking()
    experiment_id = tracking.experiment_id(experiment)
    loaded = load_tables(data_dir, settings)
    tables = loaded.tables
    fingerprint = tracking.data_fingerprint(tables)
    mlflow.set_experiment(experiment_id=experiment_id)  # nested runs (parts, trials) follow the active experiment
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"train as of {as_of}") as run:
        mlflow.set_tags({
            "customer_value.run_type": "train",
            "customer_value.as_of": str(as_of),
            "customer_value.data_hash": tracking.stable_hash(fingerprint),
            "customer_value.purchase_model": settings.purchase_model,
            "mlflow.source.git.commit": tracking.code_version(),
        })
        mlflow.log_params({"as_of": str(as_of), "data_dir": str(data_dir), "code_version": tracking.code_version(),
                           **tracking.settings_params(settings), **tracking.fingerprint_params(fingerprint)})
        mlflow.log_dict(fingerprint, "data_fingerprint.json")
        fitted = fit_value_model(tables, as_of, settings, engine=engine, log_children=True, progress=say)
        metrics = {f"train.seconds.{k}": v for k, v in fitted.timings.items()}
        for part, part_model in (("purchases", fitted.model.purchase_model), ("spend", fitted.model.spend_model)):
            log_likelihood = getattr(part_model, "log_likelihood_", None)  # on the parent too, for `compare`
            if log_likelihood is not None:
                metrics[f"{part}.log_likelihood"] = float(log_likelihood)
        for task, evaluation in fitted.evaluation.items():
            from customer_value.models.evaluation import flatten

            metrics.update(flatten(task, evaluation))
        if fitted.skipped:
            mlflow.log_dict(fitted.skipped, "skipped_parts.json")
            for part, reason in fitted.skipped.items():
                mlflow.set_tag(f"customer_value.skipped.{part}", reason[:250])
        if backtest:
            cutoff = cutoffs_before(as_of, settings.horizon_days, 1, settings.snapshots.spacing_days)
            with mlflow.start_run(run_name="backtest", nested=True):
                try:
                    say(f"internal backtest as of {cutoff[0]}")
                    result = run_backtest(tables, cutoff, settings, engine=engine)
                    metrics.update(result.flat_metrics())
                    mlflow.log_metrics(result.flat_metrics())
                except ValueError as exc:
                    mlflow.set_tag("customer_value.skipped.backtest", str(exc)[:250])
                    say(f"internal backtest skipped ({exc})")
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
        model_uri = log_value_model(fitted, settings, export_dir)
        registered = tracking.register(model_uri, settings.model_name, alias)
        mlflow.set_tag("customer_value.registered_model", registered)
    return TrainResult(registered, run.info.run_id, fitted, metrics)


def log_value_model(fitted: FittedValueModel, settings: Settings, export_dir: Path | None = None) -> str:
    """Save the bundle, log it as a pyfunc (models-from-code) with signature; return its URI."""
    import mlflow
    from mlflow.models import infer_signature

    from customer_value import tracking

    with tempfile.TemporaryDirectory() as tmp:
        bundle = fitted.model.save(Path(tmp) / "bundle")
        if export_dir is not None:
            fitted.model.save(export_dir)
        example = tracking.model_input(fitted.features.head(5))
        output = fitted.model.predict(fitted.features.head(5), fitted.as_of)
        info = mlflow.pyfunc.log_model(
            name="customer_value",
            python_model=str(tracking.PYFUNC_FILE),
            artifacts={"bundle": str(bundle)},
            input_example=example,
            signature=infer_signature(example, tracking.output_for_signature(output), params=tracking.PYFUNC_PARAMS),
            pip_requirements=[f"customer-value=={_version()}"],
        )
    return info.model_uri


def _version() -> str:
    from customer_value import __version__

    return __version__
