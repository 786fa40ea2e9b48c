"""P(churn in the next ``churn_window_days``): a calibrated LightGBM binary classifier.

``ChurnModel`` behaves like a scikit-learn estimator: ``__init__`` only stores its arguments,
``fit`` returns ``self``, learned state ends in ``_``.

Training: LightGBM ``binary`` on the stacked training snapshots, early-stopped on the validation
snapshot (``lgb.early_stopping``), deterministic (``deterministic=True``, fixed ``num_threads``,
``seed``; same data and arguments give the same booster bit for bit).

Calibration is chosen on the validation snapshot among ``"none"``, ``"isotonic"`` (isotonic
regression of the label on the raw probability) and ``"platt"`` (logistic regression on the raw
log-odds). Choosing and fitting a calibrator on the same rows would always favour the most
flexible one, so the choice is **cross-fitted**: the validation rows are split in two halves
(seeded), each candidate is fitted on one half and scored (Brier) on the other, both ways, and
the candidate with the lowest out-of-fold Brier wins (``calibration_scores_``). The winner is
then refitted on the whole validation snapshot. The validation snapshot was also used for early
stopping; that only picks the number of trees and does not bias the calibrator's choice much.

Calibrators are tiny (a threshold table or two numbers) and are kept as plain data
(``calibrator_``), so :meth:`ChurnModel.to_dict` / :meth:`ChurnModel.from_dict` persist the
whole model as the booster's text plus JSON-able values, no pickles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from customer_value.boosted.inputs import align, categories_of, feature_matrix, has_categories, model_array
from customer_value.boosted.lgbm import DEFAULT_PARAMS, base_params, dataset, train_early_stopped

CALIBRATIONS: tuple[str, ...] = ("none", "isotonic", "platt")
# ---------------------------------------------------------------------------------------------
# calibrators as plain data
# ---------------------------------------------------------------------------------------------


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def fit_calibrator(kind: str, p: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Fit a calibrator of raw probabilities ``p`` to labels ``y`` -> its parameters."""
    if kind == "none":
        return {"kind": "none"}
    if kind == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
        return {"kind": "isotonic", "x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
    if kind == "platt":
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(p).reshape(-1, 1), y.astype(int))
        return {"kind": "platt", "a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}
    raise ValueError(f"unknown calibration {kind!r}; expected one of {CALIBRATIONS}")


def apply_calibrator(calibrator: dict[str, Any], p: np.ndarray) -> np.ndarray:
    kind = calibrator["kind"]
    if kind == "none":
        return p
    if kind == "isotonic":
        return np.interp(p, calibrator["x"], calibrator["y"])
    if kind == "platt":
        z = calibrator["a"] * _logit(p) + calibrator["b"]
        return 1.0 / (1.0 + np.exp(-z))
    raise ValueError(f"unknown calibrator kind {kind!r}")


def choose_calibration(
    p: np.ndarray, y: np.ndarray, candidates: Sequence[str], seed: int
) -> tuple[str, dict[str, float]]:
    """Cross-fitted choice (see the module docstring): ``(best, {candidate: out-of-fold Brier})``."""
    rng = np.random.default_rng(seed)
    fold = rng.permutation(p.size) % 2
    scores: dict[str, float] = {}
    for kind in candidates:
        oof = np.empty_like(p)
        for k in (0, 1):
            fit_rows, eval_rows = fold != k, fold == k
            if kind != "none" and np.unique(y[fit_rows]).size < 2:
                break  # a half with one class cannot fit this calibrator: it is not a candidate
            cal = fit_calibrator(kind, p[fit_rows], y[fit_rows])
            oof[eval_rows] = apply_calibrator(cal, p[eval_rows])
        else:
            scores[kind] = float(np.mean((oof - y) ** 2))
    candidates = [k for k in candidates if k in scores]
    if not candidates:  # every candidate needed both classes in each half: keep the raw probability
        scores["none"] = float(np.mean((p - y) ** 2))
        candidates = ["none"]
    best = min(candidates, key=lambda k: (scores[k], candidates.index(k)))
    return best, scores


class ChurnModel(BaseEstimator):
    """Calibrated LightGBM churn classifier (see the module docstring).

    Parameters
    ----------
    params: LightGBM parameters overriding :data:`DEFAULT_PARAMS` (e.g. Optuna's best).
    num_boost_round: upper bound on trees; early stopping picks ``best_iteration_``.
    early_stopping_rounds: patience on the validation log loss.
    calibration: ``"auto"`` (choose by cross-fitted validation Brier) or one of ``none``,
        ``isotonic``, ``platt`` to force it.
    seed, num_threads: for determinism (LightGBM's result may depend on the thread count).
    max_trees: scoring budget of trees (:func:`~customer_value.boosted.lgbm.train_early_stopped`);
        ``None``: early stopping alone decides.
    """

    def __init__(
        self,
        params: dict[str, Any] | None = None,
        num_boost_round: int = 2000,
        early_stopping_rounds: int = 50,
        calibration: str = "auto",
        seed: int = 42,
        num_threads: int = 2,
        max_trees: int | None = None,
    ) -> None:
        self.params = params
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.calibration = calibration
        self.seed = seed
        self.num_threads = num_threads
        self.max_trees = max_trees

    def lgb_params(self) -> dict[str, Any]:
        return {
            **DEFAULT_PARAMS,
            **(self.params or {}),
            "objective": "binary",
            "metric": "binary_logloss",
            **base_params(self.seed, self.num_threads),
        }

    def fit(
        self,
        X: pd.DataFrame,
        y: Any,
        X_valid: pd.DataFrame,
        y_valid: Any,
        callbacks: Sequence[Any] = (),
        train_set: lgb.Dataset | None = None,
        valid_set: lgb.Dataset | None = None,
    ) -> "ChurnModel":
        """Train on ``X, y``, early-stop and calibrate on ``X_valid, y_valid``.

        ``X`` may be a raw feature frame or a :func:`feature_matrix`; categories are learned
        from ``X`` and applied to ``X_valid``. ``callbacks`` are extra LightGBM callbacks (e.g.
        Optuna's pruning callback, evaluated on the validation set named ``"valid"``);
        ``train_set``/``valid_set`` reuse already-constructed Datasets for the same data."""
        if self.calibration not in ("auto", *CALIBRATIONS):
            raise ValueError(f"calibration must be 'auto' or one of {CALIBRATIONS}, got {self.calibration!r}")
        Xm = feature_matrix(X, categories_of(X) if has_categories(X) else None)
        self.categories_ = categories_of(Xm)
        self.feature_names_ = list(Xm.columns)
        Xv = align(X_valid, self.feature_names_, self.categories_)
        y = np.asarray(y, dtype=float)
        yv = np.asarray(y_valid, dtype=float)
        if np.unique(y).size < 2:
            raise ValueError("churn labels of the training rows have a single class")
        if train_set is None:
            train_set = dataset(Xm, y)
        if valid_set is None:
            valid_set = dataset(Xv, yv, reference=train_set)
        self.params_ = self.lgb_params()
        self.booster_, self.best_iteration_ = train_early_stopped(
            self.params_, train_set, valid_set, self.num_boost_round, self.early_stopping_rounds,
            self.max_trees, callbacks)
        raw_valid = self._raw_proba(Xv)
        candidates = list(CALIBRATIONS) if self.calibration == "auto" else [self.calibration]
        if np.unique(yv).size < 2:
            candidates = ["none"]
        self.calibration_, self.calibration_scores_ = choose_calibration(raw_valid, yv, candidates, self.seed)
        self.calibrator_ = fit_calibrator(self.calibration_, raw_valid, yv)
        self.valid_score_ = float(self.booster_.best_score["valid"]["binary_logloss"])
        return self

    n_trees_ = property(lambda self: int(self.best_iteration_), doc="Trees one prediction runs through.")

    def _raw_proba(self, Xm: pd.DataFrame) -> np.ndarray:
        return self.booster_.predict(Xm, num_iteration=self.best_iteration_)

    def predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        """Uncalibrated booster probabilities."""
        return self._raw_proba(model_array(X, self.feature_names_, self.categories_))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated P(churn) per row of ``X`` (a raw feature frame or a feature matrix)."""
        return np.clip(apply_calibrator(self.calibrator_, self.predict_raw(X)), 0.0, 1.0)

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-row SHAP contributions in log-odds of the raw booster, plus ``bias``."""
        Xm = align(X, self.feature_names_, self.categories_)
        values = self.booster_.predict(Xm, num_iteration=self.best_iteration_, pred_contrib=True)
        return pd.DataFrame(values, columns=[*self.feature_names_, "bias"], index=X.index)

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Everything learned, JSON-able (the booster as LightGBM's model text)."""
        return {
            "kind": "churn",
            "init": {
                "params": self.params,
                "num_boost_round": self.num_boost_round,
                "early_stopping_rounds": self.early_stopping_rounds,
                "calibration": self.calibration,
                "seed": self.seed,
                "num_threads": self.num_threads,
                "max_trees": self.max_trees,
            },
            "booster": self.booster_.model_to_string(num_iteration=self.best_iteration_),
            "best_iteration": self.best_iteration_,
            "feature_names": self.feature_names_,
            "categories": self.categories_,
            "calibration": self.calibration_,
            "calibration_scores": self.calibration_scores_,
            "calibrator": self.calibrator_,
            "valid_score": self.valid_score_,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ChurnModel":
        model = cls(**data["init"])
        model.booster_ = lgb.Booster(model_str=data["booster"])
        model.best_iteration_ = int(data["best_iteration"])
        model.feature_names_ = list(data["feature_names"])
        model.categories_ = {k: list(v) for k, v in data["categories"].items()}
        model.calibration_ = data["calibration"]
        model.calibration_scores_ = dict(data["calibration_scores"])
        model.calibrator_ = dict(data["calibrator"])
        model.valid_score_ = float(data["valid_score"])
        model.params_ = model.lgb_params()
        return model
