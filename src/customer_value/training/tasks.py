"""What each boosted task *is*, in one record: churn, cost, margin and drain.

A :class:`Task` says where its label comes from and how it is shaped, how long its label window
is, which estimator learns it and whether that is a classifier or a regressor, what the tuner
minimises, which naive predictions stand beside it, how its validation snapshot is judged, what
its final fit gets beyond the tuned parameters, and which other parts it needs. The snapshots,
the tuner, the fit and the evaluation ask the record; none of them branches on a task's name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from customer_value import metrics as ev
from customer_value.boosted.churn import ChurnModel
from customer_value.boosted.cost_to_serve import FEVAL_NAME, CostToServeModel
from customer_value.boosted.drain import DrainModel
from customer_value.boosted.margin import CHURN_FEATURE, MarginModel
from customer_value.config import Settings
from customer_value.features.costing import COMPONENTS
from customer_value.features.history import without_rate_columns

Evaluation = dict[str, dict[str, float]]
"""``{source: {metric: value}}``, e.g. ``{"valid": {"roc_auc": 0.88}, "baseline_bgnbd": {...}}``."""


@dataclass(frozen=True)
class Task:
    """One gradient-boosted part of the value model (see the module docstring)."""

    name: str
    label: str
    """The target column the label is read from (``features.targets``)."""
    shape_label: Callable[[np.ndarray], np.ndarray]
    """Turns the target column into the label (e.g. ``net_value < 0`` for drains)."""
    window: Literal["churn_window_days", "horizon_days"]
    """The setting that gives the label window ``W``."""
    estimator: type
    kind: Literal["classifier", "regressor"]
    title: str
    """How a chart names what the task predicts."""
    baselines: Callable[[Any, Settings], dict[str, np.ndarray]]
    """Naive predictions on the validation snapshot: ``(training_set, settings) -> {source: prediction}``."""
    requires: tuple[str, ...] = ()
    """Parts that must be fitted first; without them the task is skipped with the reason."""
    final_fit: Callable[[Settings], dict[str, Any]] = lambda settings: {}
    """Arguments of the final model beyond the tuned parameters."""
    reference_probability: tuple[str, str] | None = None
    """``(name, feature column)`` of a naive probability drawn beside a classifier's curves."""
    component_labels: bool = False
    """Whether the fit also gets the cost components (section 3's, one per pool) as labels."""
    prepare: Callable[[Any, Any, Mapping[str, Any], Settings], Any] = lambda ts, cache, fitted, settings: ts
    """``(training_set, snapshot cache, parts fitted so far, settings) -> training_set``: inputs
    that come from other fitted parts (the margin model reads the churn probability)."""

    @property
    def tuning_metric(self) -> str:
        """The validation loss the tuner minimises (comparable across trials)."""
        return "binary_logloss" if self.kind == "classifier" else FEVAL_NAME

    def window_days(self, settings: Settings) -> int:
        return int(getattr(settings, self.window))

    def labels(self, targets: pd.DataFrame) -> np.ndarray:
        return self.shape_label(targets[self.label].to_numpy(dtype=float))

    def fit_arguments(self, training_set: Any) -> dict[str, Any]:
        """What ``estimator.fit`` takes besides X, y and the validation rows."""
        if not self.component_labels:
            return {}
        components = [c for c in training_set.targets_train.columns if c in COMPONENTS or c.startswith("cost_pool_")]
        if not components:
            return {"components": None, "components_valid": None}
        return {"components": training_set.targets_train[components],
                "components_valid": training_set.targets_valid[components]}

    def make(self, params: dict[str, Any] | None, **kwargs: Any) -> Any:
        """A new, unfitted estimator of this task."""
        return self.estimator(params=params, **kwargs)

    def predict(self, model: Any, X: pd.DataFrame) -> np.ndarray:
        """The model's prediction: a probability for classifiers, an amount for regressors."""
        return model.predict_proba(X) if self.kind == "classifier" else model.predict(X)

    def check_labels(self, y: np.ndarray) -> None:
        """A clear reason when the training labels cannot teach anything."""
        if self.kind == "classifier" and np.unique(y).size < 2:
            raise ValueError(f"the {self.name} labels of the training snapshots have a single class")
        if self.kind == "regressor" and not np.any(y > 0):
            raise ValueError(f"no customer has any {self.label} in the training snapshots")

    def evaluate(self, model: Any, training_set: Any, settings: Settings, prediction: np.ndarray) -> Evaluation:
        """Model and baselines on the validation snapshot, ``{source: {metric: value}}``."""
        baselines = self.baselines(training_set, settings)
        y = training_set.y_valid
        if self.kind == "regressor":
            return ev.cost_evaluation(y, {"valid": prediction, **baselines})
        out = ev.churn_evaluation(y, {"valid": prediction, **baselines}, _ranking_scores(training_set.X_valid, baselines))
        if hasattr(model, "flag"):  # a flagging classifier: precision and recall of its flag
            flags = {"valid": model.flag(training_set.X_valid, prediction),  # at the cut chosen on these rows
                     **{source: p > 0.5 for source, p in baselines.items()}}
            for source, flag in flags.items():
                pr = ev.precision_recall_at(y > 0, flag)
                out[source].update(flag_precision=pr["precision"], flag_recall=pr["recall"])
            out["valid"]["threshold"] = model.threshold_
        return out


def _ranking_scores(X: pd.DataFrame, baselines: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Baselines whose ranking is finer than their probability (recency days, trailing value)."""
    scores = {}
    if "baseline_recency" in baselines:
        scores["baseline_recency"] = ev.recency_score(X["days_since_last_purchase"])
    if "baseline_historical" in baselines:
        scores["baseline_historical"] = -X["historical_value"].to_numpy(dtype=float)
    return scores


# ---------------------------------------------------------------------------------------------
# the baselines each model stands beside
# ---------------------------------------------------------------------------------------------


def _churn_baselines(training_set: Any, settings: Settings) -> dict[str, np.ndarray]:
    """BG/NBD's P(no purchase in the window), and "no purchase in the last W days" at the rule
    groups' training churn rates."""
    X = training_set.X_valid
    out = {"baseline_bgnbd": X["bgnbd_p_no_purchase"].to_numpy(dtype=float)}
    if "days_since_last_purchase" in X:
        rates = ev.recency_rule_rates(training_set.X_train["days_since_last_purchase"], training_set.y_train,
                                      settings.churn_window_days)
        _, out["baseline_recency"] = ev.recency_baseline(X["days_since_last_purchase"].to_numpy(dtype=float),
                                                         settings.churn_window_days, rates)
    return out


def _cost_baselines(training_set: Any, settings: Settings) -> dict[str, np.ndarray]:
    """Next window costs what the trailing one did (both are ``horizon_days`` long)."""
    X = training_set.X_valid
    return {"baseline_trailing": X["hist_cost_to_serve"].to_numpy(dtype=float)} if "hist_cost_to_serve" in X else {}


def _margin_baselines(training_set: Any, settings: Settings) -> dict[str, np.ndarray]:
    """BG/NBD transactions × mean repeat order value × margin ratio; the trailing window's margin."""
    X = training_set.X_valid
    bgnbd = X["bgnbd_expected_transactions"].to_numpy(dtype=float) * X["monetary_value"].to_numpy(dtype=float)
    ratio = X["margin_to_date"].to_numpy(dtype=float) / np.clip(X["revenue_to_date"].to_numpy(dtype=float), 1e-9, None)
    return {"baseline_bgnbd": bgnbd * np.clip(ratio, 0.0, 1.0),
            "baseline_trailing": (X["historical_value"] + X["hist_cost_to_serve"]).to_numpy(dtype=float)}


def _drain_baselines(training_set: Any, settings: Settings) -> dict[str, np.ndarray]:
    """The trailing window's net value below zero, as a 0/1 probability."""
    return {"baseline_historical": (training_set.X_valid["historical_value"].to_numpy(dtype=float) < 0).astype(float)}


def _drain_final_fit(settings: Settings) -> dict[str, Any]:
    return {} if settings.drain_threshold is None else {"threshold": settings.drain_threshold}


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        # the classifiers keep their inputs: the per-year rates carry a level (cost, margin) to older
        # customers; churn and drain ask a yes or no, and the 100k backtests' F1 and AUC did not gain
        Task("churn", "churned", lambda y: y, "churn_window_days", ChurnModel, "classifier", "churn",
             _churn_baselines, reference_probability=("bgnbd", "bgnbd_p_no_purchase"),
             prepare=lambda ts, cache, fitted, settings: without_rates(ts)),
        Task("cost", "cost_to_serve", lambda y: y, "horizon_days", CostToServeModel, "regressor", "cost-to-serve",
             _cost_baselines, final_fit=lambda settings: {"objective": "auto"}, component_labels=True),
        # a window whose refunds outweigh its purchases earns no margin (log-link objectives need y >= 0)
        Task("margin", "margin", lambda y: np.clip(y, 0.0, None), "horizon_days", MarginModel, "regressor", "margin",
             _margin_baselines, prepare=lambda ts, cache, fitted, settings: (
                 with_churn_probability(ts, cache, fitted["churn"], settings) if "churn" in fitted else ts)),
        Task("drain", "net_value", lambda y: (y < 0).astype(float), "horizon_days", DrainModel, "classifier", "drain",
             _drain_baselines, requires=("cost",), final_fit=_drain_final_fit,
             prepare=lambda ts, cache, fitted, settings: without_rates(ts)),
    )
}
"""Every boosted task, in the order they are fitted (margin reads churn; drain needs cost)."""


def task_of(name: str) -> Task:
    """The task record of a name; an unknown name is an error that lists the known ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; expected one of {tuple(TASKS)}") from None


def without_rates(training_set: Any) -> Any:
    """A training set without the per-year rates (:meth:`customer_value.features.history.History.with_rates`):
    the model fitted on it reads the totals, windows and recency alone (at scoring time it picks
    its own columns by name, so the rates in the scoring frame are ignored)."""
    return replace(training_set, X_train=without_rate_columns(training_set.X_train),
                   X_valid=without_rate_columns(training_set.X_valid))


def with_churn_probability(training_set: Any, cache: Any, churn_model: Any, settings: Settings) -> Any:
    """A margin training set with :data:`CHURN_FEATURE` added: the fitted churn model applied to
    each snapshot's features over the churn window. Only features at the snapshot are used, so
    nothing after the snapshot enters its rows."""
    def probabilities(groups: np.ndarray, ids: np.ndarray) -> np.ndarray:
        out = np.empty(len(ids))
        for k in np.unique(groups):
            rows = np.flatnonzero(groups == k)
            X = cache.features(training_set.snapshot_dates[int(k)], settings.churn_window_days)
            p = pd.Series(churn_model.predict_proba(X), index=X["customer_id"].to_numpy())
            out[rows] = p.reindex(ids[rows]).to_numpy(dtype=float)
        return out

    return replace(
        training_set,
        X_train=training_set.X_train.assign(**{CHURN_FEATURE: probabilities(training_set.groups_train, training_set.ids_train)}),
        X_valid=training_set.X_valid.assign(**{CHURN_FEATURE: probabilities(training_set.groups_valid, training_set.ids_valid)}),
    )
