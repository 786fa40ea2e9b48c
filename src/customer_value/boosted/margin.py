"""Gradient-boosted correction of the BG/NBD × Gamma-Gamma margin forecast.

BG/NBD sees purchases only; its forecast for a customer whose engagement is fading or whose
support experience is souring is the same as for a thriving one with the same purchase history.
This model learns the margin over the next ``horizon_days`` from everything the churn and cost
models see — the BG/NBD outputs included — plus the churn model's probability, so the churn
model feeds the value through it (``churn_adjustment="boosted"`` in :mod:`customer_value.valuation.value`).

It is the cost model's machinery (:class:`~customer_value.boosted.cost_to_serve.CostToServeModel`:
Tweedie by default for zero-inflated, heavy-tailed positive amounts, early stopping and the
aggregate scale learned on the validation snapshot) on a different label; labels are the margin
in the window floored at 0 (see ``training.tasks``). Without per-component models.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from customer_value.boosted.cost_to_serve import CostToServeModel

CHURN_FEATURE = "churn_probability"
"""The margin model's extra input: the churn model's probability at the same snapshot."""


class MarginModel(BaseEstimator):
    """Expected margin over the horizon per customer (never negative); see the module docstring.

    Parameters are :class:`~.cost_to_serve.CostToServeModel`'s; the fitted regressor
    (``regressor_``) is one, fitted on margins floored at 0.
    """

    def __init__(self, objective: Any = "tweedie", params: dict[str, Any] | None = None, per_component: bool = False,
                 selection_metric: str = "tweedie_deviance", num_boost_round: int = 2000,
                 early_stopping_rounds: int = 50, seed: int = 42, num_threads: int = 2,
                 max_trees: int | None = None) -> None:
        self.objective = objective
        self.params = params
        self.per_component = per_component
        self.selection_metric = selection_metric
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.seed = seed
        self.num_threads = num_threads
        self.max_trees = max_trees

    def fit(self, X: pd.DataFrame, y: Any, X_valid: pd.DataFrame, y_valid: Any, **kwargs: Any) -> "MarginModel":
        """The cost model's fit on margins floored at 0 (a window of net refunds earns nothing)."""
        self.regressor_ = CostToServeModel(**self.get_params()).fit(
            X, np.clip(np.asarray(y, dtype=float), 0.0, None), X_valid,
            np.clip(np.asarray(y_valid, dtype=float), 0.0, None), **kwargs)
        return self

    # what the tuner, the explanations and the value model read, from the regressor
    feature_names_ = property(lambda self: self.regressor_.feature_names_)
    best_iteration_ = property(lambda self: self.regressor_.best_iteration_)
    n_trees_ = property(lambda self: self.regressor_.n_trees_)
    valid_score_ = property(lambda self: self.regressor_.valid_score_)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Expected margin over the horizon per row of ``X`` (never negative)."""
        return self.regressor_.predict(X)

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """The regressor's SHAP contributions (log of the expected margin), plus ``bias``."""
        return self.regressor_.contributions(X)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "margin", "init": {**self.get_params()}, "regressor": self.regressor_.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MarginModel":
        regressor = data.get("regressor", data)  # saved before the regressor was a part of its own
        model = cls(**regressor["init"])
        model.regressor_ = CostToServeModel.from_dict(regressor)
        return model


def margin_input(X: pd.DataFrame, churn_probability: np.ndarray | None, model: MarginModel) -> pd.DataFrame:
    """The scoring rows with the churn probability the margin model was trained with, if any."""
    if churn_probability is not None and CHURN_FEATURE in model.feature_names_:
        return X.assign(**{CHURN_FEATURE: churn_probability})
    return X
