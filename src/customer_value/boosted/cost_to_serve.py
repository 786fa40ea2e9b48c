"""Expected cost to serve over the next ``horizon_days``: a LightGBM regressor.

``CostToServeModel`` behaves like a scikit-learn estimator (``__init__`` stores, ``fit``
returns ``self``, learned state ends in ``_``).

Costs are zero for many customers and heavy-tailed for a few, so the default objective is
Tweedie (log link, compound Poisson-gamma; ``tweedie_variance_power`` in ``[1.1, 1.9]`` is tuned
by :mod:`customer_value.training.tuning`). Other objectives can be compared on the validation
snapshot and the best kept (``objective=("tweedie", "poisson", ...)``, or ``"auto"`` for
:data:`AUTO_OBJECTIVES` = tweedie, poisson, l2_log1p; scores in ``objective_scores_``):

- ``tweedie``, ``poisson``, ``gamma``: LightGBM's log-link objectives on the cost itself;
- ``l2``: plain least squares on the cost;
- ``l2_log1p``: least squares on ``log1p(cost)``, back-transformed with ``expm1`` times Duan's
  smearing factor (the training rows' mean of ``exp(residual)``), since ``expm1`` of a mean log
  underestimates the mean.

All candidates are early-stopped and compared on one scale, the validation Tweedie deviance with
a fixed power of 1.5 on the cost itself (``selection_metric`` can switch to ``rmse``, ``mae``,
``spearman`` or ``gini``), so objectives and variance powers are judged alike.

``per_component=True`` also fits one model per cost component (support, orders and fees,
invoices and late payments, each indirect pool) with the chosen objective and parameters and
predicts their sum; it is kept only when that sum validates better than the total model
(``per_component_``, ``component_scores_``). The total model is always fitted and is the one
explained by :mod:`customer_value.boosted.explain`. Predictions are never negative.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from customer_value import metrics as ev
from customer_value.boosted.inputs import align, categories_of, feature_matrix, has_categories, model_array
from customer_value.boosted.lgbm import DEFAULT_PARAMS as SHARED_DEFAULT_PARAMS
from customer_value.boosted.lgbm import base_params, dataset, train_early_stopped

OBJECTIVES: tuple[str, ...] = ("tweedie", "poisson", "gamma", "l2", "l2_log1p")
AUTO_OBJECTIVES: tuple[str, ...] = ("tweedie", "poisson", "l2_log1p")
"""What ``objective="auto"`` compares: the objectives that suit a zero-inflated, heavy-tailed
cost. ``gamma`` (its deviance is undefined at a zero cost; LightGBM fits it, badly) and ``l2`` on
the raw cost (dominated by a few large customers) can still be named explicitly."""
SELECTION_METRICS: tuple[str, ...] = ("tweedie_deviance", "rmse", "mae", "spearman", "gini")
DEFAULT_PARAMS: dict[str, Any] = {**SHARED_DEFAULT_PARAMS, "tweedie_variance_power": 1.5}
_LGB_OBJECTIVE = {
    "tweedie": "tweedie", "poisson": "poisson", "gamma": "gamma", "l2": "regression", "l2_log1p": "regression"
}
FEVAL_NAME = "tweedie_deviance"


def tweedie_feval(log1p_label: bool = False):
    """LightGBM eval function: mean Tweedie deviance (power 1.5) of the predicted cost on the
    original scale; named ``tweedie_deviance``, lower is better."""

    def feval(preds: np.ndarray, data: lgb.Dataset) -> tuple[str, float, bool]:
        y = data.get_label()
        pred = np.expm1(preds) if log1p_label else preds
        if log1p_label:
            y = np.expm1(y)
        return FEVAL_NAME, ev.tweedie_deviance(y, np.maximum(pred, 0.0)), False

    return feval


def _score(metric: str, y: np.ndarray, pred: np.ndarray) -> float:
    """Selection score, lower is better (rank metrics are negated)."""
    if metric == "tweedie_deviance":
        return ev.tweedie_deviance(y, pred)
    if metric == "rmse":
        return ev.rmse(y, pred)
    if metric == "mae":
        return ev.mae(y, pred)
    if metric == "spearman":
        return -ev.spearman(y, pred)
    if metric == "gini":
        return -ev.normalized_gini(y, pred)
    raise ValueError(f"unknown selection_metric {metric!r}; expected one of {SELECTION_METRICS}")


class _Fitted:
    """One fitted booster with its output transform."""

    def __init__(self, booster: lgb.Booster, objective: str, best_iteration: int, smearing: float = 1.0) -> None:
        self.booster = booster
        self.objective = objective
        self.best_iteration = best_iteration
        self.smearing = smearing

    def predict(self, Xm: pd.DataFrame) -> np.ndarray:
        raw = self.booster.predict(Xm, num_iteration=self.best_iteration)
        if self.objective == "l2_log1p":
            raw = np.expm1(raw) * self.smearing
        return np.maximum(raw, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "booster": self.booster.model_to_string(num_iteration=self.best_iteration),
            "objective": self.objective,
            "best_iteration": self.best_iteration,
            "smearing": self.smearing,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "_Fitted":
        return cls(lgb.Booster(model_str=d["booster"]), d["objective"], int(d["best_iteration"]), float(d["smearing"]))


class CostToServeModel(BaseEstimator):
    """LightGBM regressor of cost to serve in the next horizon (see the module docstring).

    Parameters
    ----------
    objective: one of :data:`OBJECTIVES`, a sequence of them to compare, or ``"auto"``
        (:data:`AUTO_OBJECTIVES`).
    params: LightGBM parameters overriding :data:`DEFAULT_PARAMS` (e.g. Optuna's best,
        including ``tweedie_variance_power``).
    per_component: also try the sum of per-component models; keep it only if it validates better.
    selection_metric: how candidates are compared on the validation snapshot.
    num_boost_round, early_stopping_rounds, seed, num_threads, max_trees: as in ``ChurnModel``.
    """

    def __init__(
        self,
        objective: str | Sequence[str] = "tweedie",
        params: dict[str, Any] | None = None,
        per_component: bool = False,
        selection_metric: str = "tweedie_deviance",
        num_boost_round: int = 2000,
        early_stopping_rounds: int = 50,
        seed: int = 42,
        num_threads: int = 2,
        max_trees: int | None = None,
    ) -> None:
        self.objective = objective
        self.params = params
        self.per_component = per_component
        self.selection_metric = selection_metric
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.seed = seed
        self.num_threads = num_threads
        self.max_trees = max_trees

    def candidates(self) -> list[str]:
        objs = list(AUTO_OBJECTIVES) if self.objective == "auto" else (
            [self.objective] if isinstance(self.objective, str) else list(self.objective)
        )
        unknown = [o for o in objs if o not in OBJECTIVES]
        if unknown or not objs:
            raise ValueError(f"unknown objective(s) {unknown}; expected some of {OBJECTIVES} or 'auto'")
        return objs

    def lgb_params(self, objective: str) -> dict[str, Any]:
        return {
            **DEFAULT_PARAMS,
            **(self.params or {}),
            "objective": _LGB_OBJECTIVE[objective],
            "metric": "None",
            **base_params(self.seed, self.num_threads),
        }

    def _fit_one(
        self,
        objective: str,
        Xm: pd.DataFrame,
        y: np.ndarray,
        Xv: pd.DataFrame,
        yv: np.ndarray,
        callbacks: Sequence[Any] = (),
        train_set: lgb.Dataset | None = None,
        valid_set: lgb.Dataset | None = None,
    ) -> _Fitted:
        log1p = objective == "l2_log1p"
        if log1p or train_set is None:
            train_set = dataset(Xm, np.log1p(y) if log1p else y)
            valid_set = dataset(Xv, np.log1p(yv) if log1p else yv, reference=train_set)
        elif valid_set is None:
            valid_set = dataset(Xv, yv, reference=train_set)
        booster, best = train_early_stopped(
            self.lgb_params(objective), train_set, valid_set, self.num_boost_round, self.early_stopping_rounds,
            self.max_trees, callbacks, feval=tweedie_feval(log1p))
        smearing = 1.0
        if log1p:
            resid = np.log1p(y) - booster.predict(Xm, num_iteration=best)
            smearing = float(np.mean(np.exp(resid)))
        return _Fitted(booster, objective, best, smearing)

    def fit(
        self,
        X: pd.DataFrame,
        y: Any,
        X_valid: pd.DataFrame,
        y_valid: Any,
        components: pd.DataFrame | None = None,
        components_valid: pd.DataFrame | None = None,
        callbacks: Sequence[Any] = (),
        train_set: lgb.Dataset | None = None,
        valid_set: lgb.Dataset | None = None,
    ) -> "CostToServeModel":
        """Train on ``X, y`` (cost in the horizon), early-stop and choose on ``X_valid, y_valid``.

        ``components``/``components_valid`` (one column per cost component, rows aligned with
        ``X``/``X_valid``) are needed only for ``per_component=True``. ``callbacks`` (e.g.
        Optuna pruning, metric ``tweedie_deviance`` on ``"valid"``) apply to every fit;
        ``train_set``/``valid_set`` reuse constructed Datasets (for the log-link objectives)."""
        if self.selection_metric not in SELECTION_METRICS:
            raise ValueError(f"unknown selection_metric {self.selection_metric!r}; expected one of {SELECTION_METRICS}")
        objectives = self.candidates()
        Xm = feature_matrix(X, categories_of(X) if has_categories(X) else None)
        self.categories_ = categories_of(Xm)
        self.feature_names_ = list(Xm.columns)
        Xv = align(X_valid, self.feature_names_, self.categories_)
        y = np.asarray(y, dtype=float)
        yv = np.asarray(y_valid, dtype=float)
        if (y < 0).any() or (yv < 0).any():
            raise ValueError("cost to serve labels must be non-negative")

        fitted: dict[str, _Fitted] = {}
        self.objective_scores_: dict[str, float] = {}
        for objective in objectives:
            model = self._fit_one(objective, Xm, y, Xv, yv, callbacks, train_set, valid_set)
            fitted[objective] = model
            self.objective_scores_[objective] = _score(self.selection_metric, yv, model.predict(Xv))
        self.objective_ = min(objectives, key=lambda o: (self.objective_scores_[o], objectives.index(o)))
        self.model_ = fitted[self.objective_]
        self.booster_ = self.model_.booster
        self.best_iteration_ = self.model_.best_iteration
        self.valid_score_ = self.objective_scores_[self.objective_]

        self.per_component_ = False
        self.component_models_: dict[str, _Fitted] = {}
        self.component_scores_: dict[str, float] = {}
        if self.per_component:
            if components is None or components_valid is None:
                raise ValueError("per_component=True needs components and components_valid")
            models = {
                c: self._fit_one(
                    self.objective_, Xm, components[c].to_numpy(float), Xv, components_valid[c].to_numpy(float)
                )
                for c in components.columns
            }
            pred = np.sum([m.predict(Xv) for m in models.values()], axis=0)
            self.component_scores_ = {
                "total": self.valid_score_,
                "per_component": _score(self.selection_metric, yv, pred),
            }
            if self.component_scores_["per_component"] < self.valid_score_:
                self.per_component_ = True
                self.component_models_ = models
        # Early-stopped boosters shrink towards the mean and under-forecast the heavy tail, so the
        # total comes out low (-18% on a simulated validation snapshot); one factor, learned on the
        # validation snapshot, restores the aggregate without changing the ranking.
        self.scale_ = 1.0
        raw_valid = self._raw_predict(Xv)
        if raw_valid.sum() > 0 and yv.sum() > 0:
            self.scale_ = float(np.clip(yv.sum() / raw_valid.sum(), 0.5, 2.0))
            self.valid_score_ = _score(self.selection_metric, yv, raw_valid * self.scale_)
        return self

    def _raw_predict(self, Xm: pd.DataFrame) -> np.ndarray:
        if self.per_component_:
            return np.sum([m.predict(Xm) for m in self.component_models_.values()], axis=0)
        return self.model_.predict(Xm)

    @property
    def n_trees_(self) -> int:
        """Trees one prediction runs through (the scoring time)."""
        if self.per_component_:
            return sum(m.best_iteration for m in self.component_models_.values())
        return int(self.best_iteration_)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Expected cost to serve in the horizon per row of ``X`` (never negative)."""
        Xm = model_array(X, self.feature_names_, self.categories_)
        return self._raw_predict(Xm) * self.scale_

    def predict_components(self, X: pd.DataFrame) -> pd.DataFrame | None:
        """Per-component predictions when the per-component models were kept, else None."""
        if not self.per_component_:
            return None
        Xm = model_array(X, self.feature_names_, self.categories_)
        return pd.DataFrame({c: m.predict(Xm) for c, m in self.component_models_.items()}, index=X.index)

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-row SHAP contributions of the total model on its raw scale (log of the expected
        cost for the log-link objectives), plus ``bias``."""
        Xm = align(X, self.feature_names_, self.categories_)
        values = self.booster_.predict(Xm, num_iteration=self.best_iteration_, pred_contrib=True)
        out = pd.DataFrame(values, columns=[*self.feature_names_, "bias"], index=X.index)
        if self.objective_ != "l2_log1p":  # log link: the aggregate scale is a shift of the bias
            out["bias"] = out["bias"] + np.log(self.scale_)
        return out

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "cost_to_serve",
            "init": {
                "objective": self.objective if isinstance(self.objective, str) else list(self.objective),
                "params": self.params,
                "per_component": self.per_component,
                "selection_metric": self.selection_metric,
                "num_boost_round": self.num_boost_round,
                "early_stopping_rounds": self.early_stopping_rounds,
                "seed": self.seed,
                "num_threads": self.num_threads,
                "max_trees": self.max_trees,
            },
            "model": self.model_.to_dict(),
            "objective": self.objective_,
            "objective_scores": self.objective_scores_,
            "feature_names": self.feature_names_,
            "categories": self.categories_,
            "valid_score": self.valid_score_,
            "scale": self.scale_,
            "per_component": self.per_component_,
            "component_models": {c: m.to_dict() for c, m in self.component_models_.items()},
            "component_scores": self.component_scores_,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CostToServeModel":
        model = cls(**data["init"])
        model.model_ = _Fitted.from_dict(data["model"])
        model.booster_ = model.model_.booster
        model.best_iteration_ = model.model_.best_iteration
        model.objective_ = data["objective"]
        model.objective_scores_ = dict(data["objective_scores"])
        model.feature_names_ = list(data["feature_names"])
        model.categories_ = {k: list(v) for k, v in data["categories"].items()}
        model.valid_score_ = float(data["valid_score"])
        model.scale_ = float(data.get("scale", 1.0))
        model.per_component_ = bool(data["per_component"])
        model.component_models_ = {c: _Fitted.from_dict(m) for c, m in data["component_models"].items()}
        model.component_scores_ = dict(data["component_scores"])
        return model
