"""The one place that opens MLflow runs, and what each kind of run records.

- A **training run** (tag ``customer_value.run_type = train``) carries the params (``as_of``,
  the config as ``config.*``, the data fingerprint as ``data.*``), the code version, one child
  run per fitted part (:class:`MlflowFitObserver`: ``purchases``, ``spend``, then each boosted
  task with its Optuna trials as children named ``<task>-trial-NNN``) and a ``backtest`` child.
- A **scoring run** in ``<model name>-scoring``: row counts, the score distribution, a decile
  profile for the next scoring's drift, PSI against the previous scoring of the same model.
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
        mlflow.log_dict({"snapshots": [str(d) for d in part.training_set.snapshot_dates]},
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


def log_scoring_run(scores: pd.DataFrame, model_name: str, model_uri: str, as_of: dt.date, out: Path,
                    horizon_totals: pd.Series, data_dir: Path,
                    figures: Callable[[], Mapping[str, Any]]) -> tuple[str, dict[str, float]]:
    """A scoring run in the experiment ``<model name>-scoring``: counts, distribution, drift
    against the previous scoring of the same model, the report's figures; returns (run id, PSI)."""
    experiment = experiment_id(f"{model_name}-scoring")
    previous = mlflow.search_runs(
        experiment_ids=[experiment],
        filter_string=f"tags.`customer_value.model_uri` = '{model_uri}'",
        order_by=["attributes.start_time DESC"], max_results=1, output_format="list",
    )
    mark_abandoned_runs(experiment)
    with tracked_run(experiment_id=experiment, run_name=f"score as of {as_of}") as run:
        mlflow.set_tags(_scrubbed({"customer_value.run_type": "score", "customer_value.model_uri": model_uri,
                                   "customer_value.as_of": str(as_of)}))
        mlflow.log_params(_scrubbed({"as_of": str(as_of), "model_uri": model_uri, "data_dir": str(data_dir),
                                     "out": str(out)}))
        log_metrics(drift.score_distribution(scores))
        log_metrics({f"total_value.horizon_{h}d": v for h, v in horizon_totals.items()})
        mlflow.log_dict(drift.decile_profile(scores), "score_profile.json")
        psi: dict[str, float] = {}
        if previous:
            try:
                before = mlflow.artifacts.load_dict(f"{previous[0].info.artifact_uri}/score_profile.json")
                psi = drift.psi_against_profile(before, scores)
                log_metrics({f"drift.psi.{c}": v for c, v in psi.items()})
                mlflow.set_tag("customer_value.drift_against_run", previous[0].info.run_id)
            except Exception as exc:  # a lost artifact must not fail the weekly job
                set_tag("customer_value.drift_error", exc)
        log_figures(figures(), prefix="report/")
    return run.info.run_id, psi
