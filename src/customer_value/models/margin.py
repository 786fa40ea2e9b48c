"""Gradient-boosted correction of the BG/NBD × Gamma-Gamma margin forecast.

BG/NBD sees purchases only; its forecast for a customer whose engagement is fading or whose
support experience is souring is the same as for a thriving one with the same purchase history.
This model learns the margin over the next ``horizon_days`` from everything the churn and cost
models see — the BG/NBD outputs included — plus the churn model's probability, so the churn
model feeds the value through it (``churn_adjustment="boosted"`` in :mod:`.value`).

It is the cost model's machinery (:class:`~customer_value.models.cost_to_serve.CostToServeModel`:
Tweedie by default for zero-inflated, heavy-tailed positive amounts, early stopping and the
aggregate scale learned on the validation snapshot) on a different label; labels are the margin
in the window floored at 0 (see ``training_set``). Without per-component models.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from customer_value.config import Settings
from customer_value.models.cost_to_serve import CostToServeModel
from customer_value.models.training_set import SnapshotCache, TrainingSet

CHURN_FEATURE = "churn_probability"
"""The margin model's extra input: the churn model's probability at the same snapshot."""


class MarginModel(CostToServeModel):
    """Expected margin over the horizon per customer (never negative); see the module docstring."""

    def fit(self, X: pd.DataFrame, y: Any, X_valid: pd.DataFrame, y_valid: Any, **kwargs: Any) -> "MarginModel":
        """The cost model's fit on margins floored at 0 (a window of net refunds earns nothing)."""
        super().fit(X, np.clip(np.asarray(y, dtype=float), 0.0, None), X_valid,
                    np.clip(np.asarray(y_valid, dtype=float), 0.0, None), **kwargs)
        return self


def with_churn_probability(training_set: TrainingSet, cache: SnapshotCache, churn_model: Any,
                           settings: Settings) -> TrainingSet:
    """``training_set`` (margin) with :data:`CHURN_FEATURE` added: the fitted churn model applied
    to each snapshot's features over the churn window. Only features at the snapshot are used,
    so nothing after the snapshot enters its rows."""
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


def margin_input(X: pd.DataFrame, churn_probability: np.ndarray | None, model: MarginModel) -> pd.DataFrame:
    """The scoring rows with the churn probability the margin model was trained with, if any."""
    if churn_probability is not None and CHURN_FEATURE in model.feature_names_:
        return X.assign(**{CHURN_FEATURE: churn_probability})
    return X
