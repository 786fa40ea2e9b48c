"""The one place that opens MLflow runs, and what each kind of run records.

- A **training run** (tag ``customer_value.run_type = train``) carries the params (``as_of``,
  the config as ``config.*``, the data fingerprint as ``data.*``), the code version, one child
  run per fitted part (:class:`MlflowFitObserver`: ``purchases``, ``spend``, then each boosted
  task with its Optuna trials as children named ``<task>-trial-NNN``) and a ``backtest`` child.
- A **scoring run** in ``<model name>-scoring``: tagged with the model's URI, registered name,
  version and alias; row counts, the score distribution, a decile profile for the next scoring's
  drift, PSI against the previous scoring of the same model name and alias (without an alias: the
  same model URI).
- A **backtest run**: per-cutoff metrics as steps, their average, the per-cutoff table and figures.

Metric names are stable (``<task>.<source>.<metric>``, ``backtest.*``) so runs compare across
experiments.

Every run is opened by :func:`tracked_run`: it carries the host and process that opened it; a run
that raises is marked ``FAILED``; when the tracking server is gone, so that it cannot be told,
the job fails with one :class:`TrackingUnavailableError` (not a retry storm per nested run) and
the next run in the same experiment marks the abandoned runs ``FAILED``
(:func:`mark_abandoned_runs`). Params and tags never carry tracking credentials (:func:`scrub`).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from customer_value.config import Settings
from customer_value.data.writing import process_alive
from customer_value.errors import TrackingUnavailableError
from customer_value.evaluation import drift
from customer_value.evaluation.figures import tuning_history_figure, validation_figures
from customer_value.metrics import flatten
from customer_value.tracking.metadata import code_version, fingerprint_params, settings_params, stable_hash
from customer_value.tracking import store
from customer_value.tracking.store import experiment_id
from customer_value.training.fit import FitObserver, FittedPart
from customer_value.training.tasks import task_of
from customer_value.training.tuning import TrialReport, TuningResult


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Finite metrics only (MLflow rejects NaN in some stores and they say nothing)."""
    finite = {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}
    if finite:
        mlflow.log_metrics(finite, step=step)


def log_figures(figures: Mapping[str, Any], prefix: str = "") -> None:
    for name, figure in figures.items():
        mlflow.log_figure(figure, f"{prefix}{name}")


def set_tag(key: str, value: Any) -> None:
    mlflow.set_tag(key, scrub(str(value))[:250])


def scrub(value: Any) -> Any:
    """A param or tag value without tracking credentials (strings only; numbers pass as they are)."""
    return store.redact(value) if isinstance(value, str) else value


def _scrubbed(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: scrub(v) for k, v in values.items()}


# ---------------------------------------------------------------------------------------------
# opening and closing runs

OWNER_HOST = "customer_value.host"
OWNER_PID = "customer_value.pid"
FAILURE_TAG = "customer_value.failure"


def _owner_tags() -> dict[str, str]:
    return {OWNER_HOST: socket.gethostname(), OWNER_PID: str(os.getpid())}


@contextmanager
def tracked_run(**start_run: Any) -> Iterator[Any]:
    """``mlflow.start_run(**start_run)`` with the owner tags; ``FAILED`` when the body raises.

    When the tracking server is unreachable at that moment the run cannot be closed: it is only
    popped from MLflow's stack (no retries) and :class:`TrackingUnavailableError` says which run
    stays ``RUNNING`` until :func:`mark_abandoned_runs` of a later run closes it."""
    tags = {**_owner_tags(), **start_run.pop("tags", {})}
    run = mlflow.start_run(tags=_scrubbed(tags), **start_run)
    try:
        yield run
    except BaseException as exc:
        _close_failed(run, exc)
        raise
    if _is_top(run):
        mlflow.end_run()


def _is_top(run: Any) -> bool:
    active = mlflow.active_run()
    return active is not None and active.info.run_id == run.info.run_id


def _close_failed(run: Any, exc: BaseException) -> None:
    """Mark ``run`` FAILED; when the server is gone, pop it without retrying and say so."""
    if not _is_top(run):
        return
    if isinstance(exc, TrackingUnavailableError) or not store.is_reachable():
        with _without_http_retries():
            try:
                mlflow.end_run("FAILED")  # pops the run; the server does not hear of it
            except Exception:  # noqa: BLE001
                pass
    else:
        try:
            mlflow.end_run("FAILED")
            return
        except Exception:  # noqa: BLE001 - popped all the same; the body's exception is the one to report
            if store.is_reachable():
                return
    cause = exc.__cause__ if isinstance(exc, TrackingUnavailableError) and exc.__cause__ else exc
    raise TrackingUnavailableError(
        f"lost the MLflow tracking server at {store.redact(store.tracking_uri())} during run {run.info.run_id}: "
        "it stays RUNNING until the next train or backtest in the same experiment marks it FAILED; "
        "rerun once the server is back") from cause


@contextmanager
def _without_http_retries() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ.update({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def mark_abandoned_runs(experiment: str) -> list[str]:
    """Mark ``FAILED`` the runs of ``experiment`` (an id) still ``RUNNING`` although the process on
    this host that opened them has ended (killed, or it lost the tracking server); their ids."""
    from mlflow import MlflowClient

    found = mlflow.search_runs(
        experiment_ids=[experiment],
        filter_string=f"attributes.status = 'RUNNING' and tags.`{OWNER_HOST}` = '{socket.gethostname()}'",
        max_results=1000, output_format="list",
    )
    client = MlflowClient()
    marked = []
    for run in found:
        pid = run.data.tags.get(OWNER_PID, "")
        if not pid.isdigit() or process_alive(int(pid)):
            continue
        client.set_tag(run.info.run_id, FAILURE_TAG,
                       f"process {pid} ended without closing this run (killed, or the tracking server was lost); "
                       "marked FAILED by a later run")
        client.set_terminated(run.info.run_id, "FAILED")
        marked.append(run.info.run_id)
    return marked


@contextmanager
def child_run(name: str) -> Iterator[Any]:
    """A nested run under the active run, in the active run's experiment."""
    parent = mlflow.active_run()
    with tracked_run(run_name=name, nested=True,
                     experiment_id=parent.info.experiment_id if parent else None) as run:
        yield run


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------


@contextmanager
def training_run(experiment: str, as_of: dt.date, settings: Settings, fingerprint: dict[str, Any],
                 data_dir: Any) -> Iterator[Any]:
    """The parent run of a training, with its params, tags and data fingerprint already logged."""
    exp = experiment_id(experiment)
    mlflow.set_experiment(experiment_id=exp)  # nested runs (parts, trials) follow the active experiment
    mark_abandoned_runs(exp)
    with tracked_run(experiment_id=exp, run_name=f"train as of {as_of}") as run:
        version = code_version()
        mlflow.set_tags(_scrubbed({
            "customer_value.run_type": "train",
            "customer_value.as_of": str(as_of),
            "customer_value.data_hash": stable_hash(fingerprint),
            "customer_value.purchase_model": settings.purchase_model,
            "mlflow.source.git.commit": version,
        }))
        mlflow.log_params(_scrubbed({"as_of": str(as_of), "data_dir": str(data_dir), "code_version": version,
                                     **settings_params(settings), **fingerprint_params(fingerprint)}))
        mlflow.log_dict(fingerprint, "data_fingerprint.json")
        yield run


def log_skipped(skipped: Mapping[str, str]) -> None:
    """Parts that could not be fitted, with the reason, as an artifact and tags."""
    if skipped:
        mlflow.log_dict(dict(skipped), "skipped_parts.json")
        for part, reason in skipped.items():
            set_tag(f"customer_value.skipped.{part}", reason)


class MlflowFitObserver(FitObserver):
    """Turns a fit into child runs: one per part, the Optuna trials as their children, each part's
    parameters, validation metrics, figures and snapshot dates in its own run."""

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        with child_run(name):
            yield

    def trial(self, report: TrialReport) -> None:
        with child_run(f"{report.task}-trial-{report.number:03d}"):
            mlflow.set_tags({"optuna.study": report.study, "optuna.trial": str(report.number),
                             "optuna.state": report.state, "task": report.task})
            mlflow.log_params(report.params)
            metrics = {f"{report.task}.valid.{report.metric}": report.value}
            if report.best_iteration is not None:
                metrics["best_iteration"] = report.best_iteration
            log_metrics(metrics)

    def fitted(self, part: FittedPart) -> None:
        if part.tuning is None and part.evaluation:  # a part fitted without a search (activity volumes)
            log_metrics(flatten(part.name, part.evaluation))
            return
        if part.tuning is None:  # a probabilistic part: its parameters and likelihood
            params = getattr(part.model, "params_", {}) or {}
            log_metrics({f"{part.name}.{k}": v for k, v in params.items()})
            if getattr(part.model, "log_likelihood_", None) is not None:
                log_metrics({f"{part.name}.log_likelihood": part.model.log_likelihood_})
            if getattr(part.model, "fit_path_", None) is not None:
                mlflow.set_tag(f"{part.name}.fit_path", str(part.model.fit_path_))
            mlflow.log_dict(part.model.to_dict(), f"{part.name}.json")
            return
        log_tuning(part.tuning)
        log_metrics(flatten(part.name, part.evaluation))
        log_figures(validation_figures(part))
        ts = part.training_set
        young = {} if ts.label_window_days is None else {  # a young base's shorter, scaled labels
            "label_window_days": ts.label_window_days, "label_scale": ts.label_scale}
        mlflow.log_dict({"snapshots": [str(d) for d in ts.snapshot_dates], "window_days": ts.window_days, **young},
                        f"{part.name}_snapshots.json")


def log_tuning(result: TuningResult) -> None:
    """A search's best parameters, summary and history figure, in the active run."""
    task = result.task
    if result.best_params:
        mlflow.log_params({f"{task}.best.{k}": v for k, v in result.best_params.items()})
    log_metrics({
        f"{task}.tuning.n_trials": result.n_trials,
        f"{task}.tuning.n_complete": result.n_complete,
        f"{task}.tuning.n_pruned": result.n_pruned,
        f"{task}.tuning.seconds": result.seconds,
        f"{task}.tuning.best_value": result.best_value,
    })
    log_figures(tuning_history_figure(task, result.study, task_of(task).tuning_metric))


# ---------------------------------------------------------------------------------------------
# backtests
# ---------------------------------------------------------------------------------------------


@contextmanager
def backtest_run(experiment: str, as_of: dt.date, cutoffs: list[dt.date], settings: Settings) -> Iterator[Any]:
    exp = experiment_id(experiment)
    mlflow.set_experiment(experiment_id=exp)
    mark_abandoned_runs(exp)
    with tracked_run(experiment_id=exp, run_name=f"backtest to {as_of}") as run:
        mlflow.set_tags({"customer_value.run_type": "backtest", "customer_value.as_of": str(as_of)})
        mlflow.log_params(_scrubbed({"as_of": str(as_of), "cutoffs": ",".join(map(str, cutoffs)),
                                     **settings_params(settings)}))
        yield run


def log_backtest(metrics: pd.DataFrame, averaged: Mapping[str, float], figures: Mapping[str, Any]) -> None:
    """Per-cutoff metrics as steps, their average, the per-cutoff table and the figures."""
    for step, row in metrics.reset_index(drop=True).iterrows():
        log_metrics({f"backtest.{k}": v for k, v in row.drop(["cutoff", "skipped"], errors="ignore").items()},
                    step=step)
    log_metrics(averaged)
    mlflow.log_table(metrics.astype({"cutoff": str}), "backtest/per_cutoff.json")
    log_figures(figures)


# ---------------------------------------------------------------------------------------------
# scoring
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoredModel:
    """The model a scoring used, as its run records it: the identity written into the score rows
    (``uri``, registry ``version`` and the ``alias`` it was loaded by), the registered ``name``
    (the model's own name for a directory) and the experiment its scorings go to."""

    uri: str
    name: str
    experiment: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def of(cls, uri: str, model_name: str, version: int | None = None, alias: str | None = None) -> "ScoredModel":
        """``models:/<name>/<version>`` names its registered model; anything else is ``model_name``."""
        name = uri.removeprefix("models:/").rsplit("/", 1)[0] if uri.startswith("models:/") and version else model_name
        return cls(uri, name, f"{model_name}-scoring", version, alias)

    def tags(self) -> dict[str, str]:
        tags = {"customer_value.model_uri": self.uri, "customer_value.model_name": self.name}
        if self.version is not None:
            tags["customer_value.model_version"] = str(self.version)
        if self.alias:
            tags["customer_value.model_alias"] = self.alias
        return tags


@dataclass(frozen=True)
class DriftBaseline:
    """The scoring a new one is compared with: its run and its decile profile (``None`` when the
    profile could not be read; ``error`` says why)."""

    run_id: str
    profile: dict[str, Any] | None
    error: str = ""
    matched: str = ""
    """What made it the baseline: ``"name and alias"`` or ``"model URI"``."""


def previous_scoring(model: ScoredModel) -> DriftBaseline | None:
    """The last finished scoring of the same model: by an alias, the same registered name and alias
    (whatever version the alias pointed at then, so the first week of a new champion still has a
    baseline), else, or when no scoring by that alias exists yet, the same model URI."""
    experiment = experiment_id(model.experiment)
    finished = "attributes.status = 'FINISHED' and tags.`customer_value.run_type` = 'score'"
    queries = []
    if model.alias:
        queries.append(("name and alias", f"tags.`customer_value.model_name` = '{_quoted(model.name)}' and "
                                          f"tags.`customer_value.model_alias` = '{_quoted(model.alias)}'"))
    queries.append(("model URI", f"tags.`customer_value.model_uri` = '{_quoted(model.uri)}'"))
    for matched, where in queries:
        found = mlflow.search_runs(experiment_ids=[experiment], filter_string=f"{finished} and {where}",
                                   order_by=["attributes.start_time DESC"], max_results=1, output_format="list")
        if found:
            run = found[0]
            try:
                profile = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/score_profile.json")
            except Exception as exc:  # noqa: BLE001 - a lost artifact must not fail the weekly job
                return DriftBaseline(run.info.run_id, None, scrub(str(exc)).splitlines()[0][:250], matched)
            return DriftBaseline(run.info.run_id, profile, matched=matched)
    return None


def _quoted(value: str) -> str:
    return value.replace("'", "\\'")


def scoring_drift(baseline: DriftBaseline | None, scores: pd.DataFrame) -> dict[str, float]:
    """PSI per score column against the baseline's profile (empty without one, or when the profile
    cannot be compared: the weekly job does not fail on its drift)."""
    if baseline is None or baseline.profile is None:
        return {}
    try:
        return drift.psi_against_profile(baseline.profile, scores)
    except Exception:  # noqa: BLE001 - a profile from another version of the code, say
        return {}


QUALITY_SOURCES = ("valid", "total_model")


def is_quality_metric(name: str) -> bool:
    """A training run's validation or backtest metric, or a baseline beside one
    (``<part>.valid.<m>``, ``<part>.baseline_<b>.<m>``, ``backtest.<score>.<m>``)."""
    parts = name.split(".")
    if len(parts) != 3:
        return False
    return parts[0] == "backtest" or parts[1] in QUALITY_SOURCES or parts[1].startswith("baseline_")


def training_quality(model: ScoredModel) -> dict[str, float]:
    """The validation and backtest metrics (with their baselines) of the training run that logged
    a registered model version; empty for a model not loaded from the registry."""
    from mlflow import MlflowClient

    if model.version is None:
        return {}
    client = MlflowClient()
    run_id = client.get_model_version(model.name, str(model.version)).run_id
    if not run_id:
        return {}
    metrics = client.get_run(run_id).data.metrics
    return {name: float(value) for name, value in sorted(metrics.items()) if is_quality_metric(name)}


def log_scoring_run(scores: pd.DataFrame, model: ScoredModel, as_of: dt.date, out: Path,
                    horizon_totals: pd.Series, data_dir: Path, figures: Callable[[], Mapping[str, Any]],
                    baseline: DriftBaseline | None = None, psi: Mapping[str, float] | None = None,
                    notes: Mapping[str, str] | None = None, cash_flows: pd.DataFrame | None = None) -> str:
    """A scoring run in ``model.experiment``: the model's identity as tags (URI, registered name,
    version, alias), counts, distribution, the decile profile the next scoring compares with, the
    drift (``psi``) against ``baseline`` (see :func:`previous_scoring`), the report's figures,
    ``notes`` as tags (e.g. how the churn drivers were computed) and the portfolio's months
    (``cash_flows_by_month.csv``); its id."""
    experiment = experiment_id(model.experiment)
    mark_abandoned_runs(experiment)
    with tracked_run(experiment_id=experiment, run_name=f"score as of {as_of}") as run:
        mlflow.set_tags(_scrubbed({"customer_value.run_type": "score", "customer_value.as_of": str(as_of),
                                   **model.tags()}))
        mlflow.log_params(_scrubbed({"as_of": str(as_of), "model_uri": model.uri, "data_dir": str(data_dir),
                                     "out": str(out)}))
        log_metrics(drift.score_distribution(scores))
        log_metrics({f"total_value.horizon_{h}d": v for h, v in horizon_totals.items()})
        mlflow.log_dict(drift.decile_profile(scores), "score_profile.json")
        if baseline is not None:
            mlflow.set_tags({"customer_value.drift_against_run": baseline.run_id,
                             "customer_value.drift_baseline": baseline.matched})
            if baseline.error:
                set_tag("customer_value.drift_error", baseline.error)
            elif not psi:
                set_tag("customer_value.drift_error", "the previous scoring's profile could not be compared")
        if psi:
            log_metrics({f"drift.psi.{c}": v for c, v in psi.items()})
        for key, value in (notes or {}).items():
            set_tag(key, value)
        if cash_flows is not None and len(cash_flows):
            mlflow.log_text(cash_flows.to_csv(index=False, date_format="%Y-%m-%d"), "cash_flows_by_month.csv")
        log_figures(figures(), prefix="report/")
    return run.info.run_id
