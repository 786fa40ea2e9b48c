"""`customer-value train`: load → fit every part as of a date → backtest → log → register one model.

A training run is a parent MLflow run with one child run per part (``purchases``, ``spend``,
``churn``, ``cost``, ``margin``, ``drain``, each boosted part with its Optuna trials as children;
the margin model takes the churn model's probability as an input) and a ``backtest`` child whose
averaged metrics are copied to the parent as ``backtest.*`` (see :mod:`customer_value.tracking.runs`).

Before the long work: the tracking server must answer and the outputs (exported bundle, validation
report) must be writable; after loading, someone must have signed up before ``as_of``. A failure
inside the run marks it ``FAILED`` and registers nothing (registration is the run's last step).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from customer_value.config import Settings
from customer_value.data.writing import check_output
from customer_value.evaluation.backtest import cutoffs_before, run_backtest
from customer_value.metrics import flatten
from customer_value.pipeline.inputs import load_inputs, require_customers_before
from customer_value.pipeline.progress import Observers, ProgressFitObserver, Reporter, reporter
from customer_value.tracking import runs
from customer_value.tracking.metadata import data_fingerprint
from customer_value.tracking.model import log_value_model, register
from customer_value.tracking.store import setup_tracking
from customer_value.training.fit import FittedValueModel, fit_value_model

Progress = Callable[[str], None] | Reporter


@dataclass
class TrainResult:
    model_uri: str
    run_id: str
    fitted: FittedValueModel
    metrics: dict[str, float]


def training_metrics(fitted: FittedValueModel) -> dict[str, float]:
    """What the parent run carries: seconds per stage, the probabilistic log-likelihoods (for
    ``compare``), every boosted part's validation metrics and the monthly profile's trends."""
    metrics = {f"train.seconds.{k}": v for k, v in fitted.timings.items()}
    for part in ("purchases", "spend"):
        log_likelihood = getattr(fitted.parts[part].model, "log_likelihood_", None)
        if log_likelihood is not None:
            metrics[f"{part}.log_likelihood"] = float(log_likelihood)
    for task, evaluation in fitted.evaluation.items():
        metrics.update(flatten(task, evaluation))
    trees = fitted.model.tree_counts()  # what each weekly scoring pays per customer
    metrics.update({f"trees.{name}": float(n) for name, n in trees.items()})
    metrics["trees.total"] = float(sum(trees.values()))
    profile = fitted.model.monthly_profile  # how margin and cost fall through a year against the purchases
    if profile is not None:
        metrics.update({f"cash_flows.{quantity}_trend": trend for quantity, trend in profile.trend_.items()})
    return metrics


def train(data_dir: Path, as_of: dt.date, experiment: str, settings: Settings, alias: str | None = None,
          backtest: bool = True, engine: Any = "duckdb", progress: Progress | None = None,
          export_dir: Path | None = None, validation_report: Path | None = None) -> TrainResult:
    """Load, fit, backtest, log, register; returns the registered ``models:/<name>/<version>``.

    ``progress`` hears what happens: a ``say`` callable gets lines, a
    :class:`~customer_value.pipeline.progress.Reporter` (the command line's draws progress bars)
    gets steps with counts and elapsed time, the tuning trials among them."""
    say = reporter(progress)
    setup_tracking()
    if export_dir is not None:
        check_output(Path(export_dir) / "value_model.json", "exported model")
    if validation_report is not None:
        check_output(validation_report, "validation report")
    with say.step(f"loading tables from {data_dir}"):
        tables = load_inputs(data_dir, settings, validation_report, say).tables
    require_customers_before(tables.customers, as_of)
    fingerprint = data_fingerprint(tables)
    with runs.training_run(experiment, as_of, settings, fingerprint, data_dir) as run:
        observer = Observers([runs.MlflowFitObserver(), ProgressFitObserver(say, settings.trials)])
        try:
            fitted = fit_value_model(tables, as_of, settings, engine=engine, observer=observer)
        finally:
            say.close()
        metrics = training_metrics(fitted)
        runs.log_skipped(fitted.skipped)
        if backtest:
            cutoff = cutoffs_before(as_of, settings.horizon_days, 1, settings.snapshots.spacing_days)
            with runs.child_run("backtest"):
                try:
                    result = run_backtest(tables, cutoff, settings, engine=engine,
                                          observer=ProgressFitObserver(say, settings.trials))
                    metrics.update(result.flat_metrics())
                    runs.log_metrics(result.flat_metrics())
                except ValueError as exc:
                    runs.set_tag("customer_value.skipped.backtest", exc)
                    say.say(f"internal backtest skipped ({exc})")
                finally:
                    say.close()
        with say.step("logging and registering the model"):
            runs.log_metrics(metrics)
            model_uri = log_value_model(fitted.model, fitted.features, fitted.as_of, export_dir)
            registered = register(model_uri, settings.model_name, alias)
            runs.set_tag("customer_value.registered_model", registered)
    return TrainResult(registered, run.info.run_id, fitted, metrics)
