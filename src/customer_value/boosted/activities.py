"""Expected activity volumes over the next ``horizon_days``: one LightGBM regressor per volume.

Cost-to-serve is a priced sum of activities (contract sections 3 and 8). Forecasting each
activity's *volume* (support minutes by channel, escalations, orders, order value, invoices, late
invoices, the driver units of the indirect pools) instead of one money total lets a business
reprice any rate without refitting (:mod:`customer_value.valuation.whatif`), and names in money
which activity drives a customer's cost.

Each volume gets a :class:`~customer_value.boosted.cost_to_serve.CostToServeModel` with the
objective and parameters the cost task's tuning chose (volumes are zero-inflated and heavy-tailed
like the cost), early-stopped on the validation snapshot; a volume that nobody had in the
training snapshots is forecast as 0. Predictions are never negative.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from customer_value.boosted.cost_to_serve import CostToServeModel
from customer_value.boosted.inputs import ModelInput


class ActivityVolumeModel(BaseEstimator):
    """One regressor per activity volume column (see the module docstring).

    Parameters
    ----------
    volumes: the volume columns to forecast (``features.costing.forecast_volume_columns``).
    objective, params: as chosen for the cost model (its ``objective_`` and tuned ``params``).
    num_boost_round, early_stopping_rounds, seed, num_threads, max_trees: as in ``CostToServeModel``.
    """

    def __init__(
        self,
        volumes: Sequence[str] = (),
        objective: str = "tweedie",
        params: dict[str, Any] | None = None,
        num_boost_round: int = 2000,
        early_stopping_rounds: int = 50,
        seed: int = 42,
        num_threads: int = 2,
        max_trees: int | None = None,
    ) -> None:
        self.volumes = volumes
        self.objective = objective
        self.params = params
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.seed = seed
        self.num_threads = num_threads
        self.max_trees = max_trees

    def fit(self, X: pd.DataFrame, volumes: pd.DataFrame, X_valid: pd.DataFrame,
            volumes_valid: pd.DataFrame, progress: Any = None) -> "ActivityVolumeModel":
        """Fit one model per column of ``volumes`` (rows aligned with ``X``), early-stopped on the
        validation rows. ``progress(name)`` is called before each volume's fit, if given."""
        missing = [v for v in self.volumes if v not in volumes.columns or v not in volumes_valid.columns]
        if missing:
            raise ValueError(f"the training targets have no volume column(s) {missing}")
        self.models_: dict[str, CostToServeModel | None] = {}
        for name in self.volumes:
            if progress is not None:
                progress(name)
            y = np.clip(volumes[name].to_numpy(dtype=float), 0.0, None)
            yv = np.clip(volumes_valid[name].to_numpy(dtype=float), 0.0, None)
            if not np.any(y > 0):
                self.models_[name] = None  # nobody had this activity: it is forecast as 0
                continue
            self.models_[name] = CostToServeModel(
                objective=self.objective, params=self.params, num_boost_round=self.num_boost_round,
                early_stopping_rounds=self.early_stopping_rounds, seed=self.seed, num_threads=self.num_threads,
                max_trees=self.max_trees,
            ).fit(X, y, X_valid, yv)
        return self

    @property
    def n_trees_(self) -> int:
        """Trees one prediction runs through, over every volume's model (the scoring time)."""
        return sum(m.n_trees_ for m in self.models_.values() if m is not None)

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """Expected volume per row of ``X`` and volume column (never negative), index of ``X``."""
        X = X if isinstance(X, ModelInput) else ModelInput.of(X)  # the volumes' models share their input
        out = {name: (np.zeros(len(X)) if model is None else np.asarray(model.predict(X), dtype=float))
               for name, model in self.models_.items()}
        return pd.DataFrame(out, index=X.index)

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "activity_volumes",
            "init": {
                "volumes": list(self.volumes), "objective": self.objective, "params": self.params,
                "num_boost_round": self.num_boost_round, "early_stopping_rounds": self.early_stopping_rounds,
                "seed": self.seed, "num_threads": self.num_threads, "max_trees": self.max_trees,
            },
            "models": {name: (None if m is None else m.to_dict()) for name, m in self.models_.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ActivityVolumeModel":
        model = cls(**data["init"])
        model.models_ = {name: (None if m is None else CostToServeModel.from_dict(m)) for name, m in data["models"].items()}
        return model
