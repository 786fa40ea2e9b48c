"""P(a customer costs more than it brings over the next ``horizon_days``): the drain flag.

``customer_value`` is an *expectation*. Net value per customer is skewed (a few large losses, many
small gains), so an expected value just below zero (a nearly dead customer whose expected margin
and cost are both cents) says little about whether the customer will actually be net negative,
and a customer who will be is often expected to be worth a little more than zero. Asking
"which accounts will drain resources" is a classification question, so it gets a classifier:
LightGBM ``binary`` on the label ``net_value = margin − cost_to_serve < 0`` over the horizon,
trained, tuned and calibrated exactly like the churn model (:class:`~.churn.ChurnModel`, same
stacked snapshots with ``W = horizon_days``).

The flag is ``drain_probability >= threshold_``. The threshold is learned on the validation
snapshot as the one maximising F1 (precision and recall weighed equally: flagging is only useful
when most flags are right *and* most drains are found), unless ``threshold`` fixes it (e.g. a
team that can review only its riskiest accounts sets a higher one).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sklearn.base import BaseEstimator

from customer_value.boosted.churn import ChurnModel


def f1_threshold(y_true: Any, probability: Any) -> float:
    """The probability cut maximising F1 of ``probability >= cut`` against ``y_true`` (ties: the
    highest cut, i.e. fewer flags); 0.5 when there is no positive to find."""
    y = np.asarray(y_true, dtype=bool).ravel()
    p = np.asarray(probability, dtype=float).ravel()
    if not y.any():
        return 0.5
    order = np.argsort(-p, kind="stable")
    p_sorted, hits = p[order], np.cumsum(y[order])
    last_of_run = np.r_[p_sorted[1:] != p_sorted[:-1], True]  # one candidate cut per distinct value
    flagged = np.arange(1, p.size + 1)[last_of_run]
    hits = hits[last_of_run]
    f1 = 2.0 * hits / (flagged + y.sum())
    return float(p_sorted[last_of_run][np.flatnonzero(f1 == f1.max())[0]])


class DrainModel(BaseEstimator):
    """Calibrated classifier of ``net_value < 0`` over the horizon, with a flag threshold.

    Parameters are :class:`~.churn.ChurnModel`'s plus ``threshold``: ``None`` learns the
    F1-optimal cut on the validation snapshot (``threshold_``), a number fixes it. The fitted
    classifier (``classifier_``, a ChurnModel) does the work; this model adds the flag.
    """

    def __init__(self, params: dict[str, Any] | None = None, num_boost_round: int = 2000,
                 early_stopping_rounds: int = 50, calibration: str = "auto", seed: int = 42,
                 num_threads: int = 2, threshold: float | None = None, max_trees: int | None = None) -> None:
        self.params = params
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.calibration = calibration
        self.seed = seed
        self.num_threads = num_threads
        self.threshold = threshold
        self.max_trees = max_trees

    def _classifier(self) -> ChurnModel:
        return ChurnModel(self.params, self.num_boost_round, self.early_stopping_rounds, self.calibration,
                          self.seed, self.num_threads, self.max_trees)

    def fit(self, X: pd.DataFrame, y: Any, X_valid: pd.DataFrame, y_valid: Any, **kwargs: Any) -> "DrainModel":
        """The churn model's fit and calibration, then the flag threshold on the validation rows."""
        self.classifier_ = self._classifier().fit(X, y, X_valid, y_valid, **kwargs)
        self.threshold_ = (float(self.threshold) if self.threshold is not None
                           else f1_threshold(y_valid, self.predict_proba(X_valid)))
        return self

    # what the tuner, the explanations and the value model read, from the classifier
    feature_names_ = property(lambda self: self.classifier_.feature_names_)
    best_iteration_ = property(lambda self: self.classifier_.best_iteration_)
    n_trees_ = property(lambda self: self.classifier_.n_trees_)
    valid_score_ = property(lambda self: self.classifier_.valid_score_)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated P(net value over the horizon < 0) per row of ``X``."""
        return self.classifier_.predict_proba(X)

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """The classifier's SHAP contributions (log-odds of a drain), plus ``bias``."""
        return self.classifier_.contributions(X)

    def flag(self, X: pd.DataFrame, probability: np.ndarray | None = None) -> np.ndarray:
        """``True`` where the customer is expected to drain (``probability`` reuses predictions)."""
        p = self.predict_proba(X) if probability is None else np.asarray(probability, dtype=float)
        return p >= self.threshold_

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "drain", "init": {**self.get_params()}, "classifier": self.classifier_.to_dict(),
                "threshold": self.threshold_}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DrainModel":
        if "classifier" not in data:  # saved before the classifier was a part of its own
            init = {k: v for k, v in data["init"].items() if k != "threshold"}
            data = {"init": data["init"], "classifier": {**data, "init": init}, "threshold": data["threshold"]}
        model = cls(**data["init"])
        model.classifier_ = ChurnModel.from_dict(data["classifier"])
        model.threshold_ = float(data["threshold"])
        return model
