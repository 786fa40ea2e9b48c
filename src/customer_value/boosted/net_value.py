"""Net value over the horizon (margin − cost-to-serve) modelled as a target of its own.

The margin and cost models each rank their own amount well, yet their *difference* ranks the
realised net value poorly: two forecasts' errors add up exactly where the two amounts are close,
which is where a customer's sign is decided. This model learns the net value directly from the
same inputs as the margin model (every signal, BG/NBD's outputs and the churn probability).

Net value is signed and heavy-tailed, so least squares on the amount is dominated by a few large
accounts. The model is trained instead on the *rank* of the net value among the training rows
(its empirical quantile over the stacked snapshots together; the validation rows' within their
snapshot: a bounded target that least squares handles well and whose conditional mean orders
customers as Spearman's rank correlation asks), then put back into money by an isotonic
calibration on the validation snapshot: the money forecast is the mean realised net value of
customers with a similar score, so it is monotone in the score and its total matches the
validation snapshot's. A vanishing slope (:data:`TIE_BREAK`) keeps the calibrated money strictly
increasing in the score, so plateaus of the isotonic fit never tie customers the score separates.

The value model uses it through ``value_forecast="net"`` (:mod:`customer_value.valuation.value`):
the margin is moved so that margin − cost equals this forecast, every component still adding up,
with two guards on the money (:func:`net_forecast`). The isotonic calibration is the validation
snapshot's, a base a year younger than the one scored, and it does not carry over: on the 100k
simulated world it reads the aged base's low scorers, long-lapsed accounts that cost little, as
that snapshot's young accounts costing more than they bring (a quarter of the customers forecast
−76 a head against −42 realised), and the rest 10% too high. So the value model keeps the net
model's *order* and takes the *money* from the parts: a :class:`QuantileMap`, learned on the base
as of the training date (:func:`parts_money`), gives the mixed forecast of the customers below the
top tier the distribution of margin − cost that the margin and cost models forecast for them
there (each level-calibrated on its own). And the forecast is never
below minus the cost forecast, where the margin would have to be negative: the net model moves
the margin, never the cost. It once moved the rest into the cost, which overstated it by 8% on
the 100k world and by 17–76% on 2k and 5k worlds.

A rank-trained model orders the middle and the sign well, and the largest accounts worse: its
target does not tell a 0.99 quantile worth 5,000 from one worth 500, so its top decile captures
less money than the parts' difference does. :func:`with_parts` therefore keeps a **top tier**: the
customers whose parts' difference (the margin model's forecast − the cost forecast in use) is at
or above a threshold keep it, and everyone else takes the net forecast, capped at that threshold. The
top tier is then the parts' top, and the order below it the net model's. The fit picks the tier's
share and the mix with the parts on the validation snapshot
(:func:`customer_value.training.fit.evaluate_net_value`), and sets the threshold at that share of
the customers as of the training date, the base the model will score: a threshold taken from the
validation snapshot, a year younger, would hold a smaller share of the aged base, and its top
decile would reach below the tier.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression

from customer_value import metrics as ev
from customer_value.boosted.inputs import align, categories_of, feature_matrix, has_categories, model_array
from customer_value.boosted.lgbm import DEFAULT_PARAMS, base_params, dataset, train_early_stopped

TIE_BREAK = 1e-6
"""Slope (in money per unit of score, relative to the calibrated range) added to the isotonic
calibration so that it is strictly increasing."""
_NOT_LGB = ("tweedie_variance_power",)
"""Tuned parameters of the margin task that mean nothing to a least-squares booster."""


def with_parts(net: np.ndarray, difference: np.ndarray, weight: float = 1.0,
               top_threshold: float | None = None, money: "QuantileMap | None" = None) -> np.ndarray:
    """The net value the value model ranks by: the net forecast mixed with the parts' ``difference``
    (margin − cost over the same horizon) at ``weight`` on the net forecast and, with a ``money``
    map (:func:`parts_money`), put into the parts' money; with a ``top_threshold``, customers whose
    difference reaches it keep the difference exactly, and the others' value is at most the
    threshold, so the top tier stays the parts' (see the module docstring)."""
    net, difference = np.asarray(net, dtype=float), np.asarray(difference, dtype=float)
    mixed = net if weight >= 1.0 else weight * net + (1.0 - weight) * difference
    if money is not None:
        mixed = money.transform(mixed)
    if top_threshold is None:
        return mixed
    return np.where(difference >= top_threshold, difference, np.minimum(mixed, top_threshold))


class QuantileMap(BaseEstimator):
    """A strictly increasing map that gives one forecast another's distribution: fitted on a base's
    ``x`` and ``y``, it sends the ``q``-quantile of ``x`` to the ``q``-quantile of ``y``
    (``knots`` quantiles, linear between them; beyond the fitted range, one unit of ``y`` per unit
    of ``x``; a vanishing slope, :data:`TIE_BREAK`, keeps plateaus of ``y`` from tying customers).
    Here ``x`` is the mixed net forecast and ``y`` the parts' difference of the customers below the
    top tier on the base the model will score: the net model keeps its order, the parts set the money."""

    def __init__(self, knots: int = 1001) -> None:
        self.knots = knots

    def fit(self, x: np.ndarray, y: np.ndarray) -> "QuantileMap":
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if not len(x) or not len(y):
            raise ValueError("a quantile map needs values to fit")
        q = np.linspace(0.0, 1.0, int(self.knots))
        knots_x, knots_y = np.quantile(x, q), np.quantile(y, q)
        # a value of x held by many rows spans several quantiles: one knot at their mean y
        self.knots_x_, index = np.unique(knots_x, return_inverse=True)
        self.knots_y_ = np.bincount(index, weights=knots_y) / np.bincount(index)
        spread = float(np.ptp(self.knots_x_)) or 1.0
        self.tie_break_ = TIE_BREAK * max(float(np.ptp(self.knots_y_)), 1.0) / spread
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        kx, ky = self.knots_x_, self.knots_y_
        inside = np.interp(x, kx, ky)
        beyond = np.where(x < kx[0], x - kx[0], np.where(x > kx[-1], x - kx[-1], 0.0))
        return inside + beyond + self.tie_break_ * (x - kx[0])

    def to_dict(self) -> dict[str, Any]:
        return {"knots": self.knots, "knots_x": self.knots_x_.tolist(), "knots_y": self.knots_y_.tolist(),
                "tie_break": self.tie_break_}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "QuantileMap":
        out = cls(int(data["knots"]))
        out.knots_x_ = np.asarray(data["knots_x"], dtype=float)
        out.knots_y_ = np.asarray(data["knots_y"], dtype=float)
        out.tie_break_ = float(data["tie_break"])
        return out


def parts_money(net: np.ndarray, difference: np.ndarray, weight: float = 1.0,
                top_threshold: float | None = None) -> "QuantileMap | None":
    """The map that gives the mixed net forecast of the customers below the top tier the
    distribution of their parts' ``difference`` on this base (``None`` when every customer is in
    the tier): the net model's order in the parts' money (see the module docstring)."""
    net, difference = np.asarray(net, dtype=float), np.asarray(difference, dtype=float)
    below = np.ones(len(difference), dtype=bool) if top_threshold is None else difference < top_threshold
    if not below.any():
        return None
    return QuantileMap().fit(with_parts(net[below], difference[below], weight), difference[below])


def net_forecast(value: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """The net value forecast in money: the :func:`with_parts` ``value``, never below minus the
    ``cost`` forecast over the same horizon, where the margin would have to be negative (see the
    module docstring)."""
    return np.maximum(np.asarray(value, dtype=float), -np.asarray(cost, dtype=float))


def top_tier_threshold(difference: np.ndarray, share: float) -> float | None:
    """The parts' difference above which a ``share`` of these customers lie: the top tier's lower
    bound (``None`` for no tier)."""
    difference = np.asarray(difference, dtype=float)
    if share <= 0 or not len(difference):
        return None
    return float(np.quantile(difference, 1.0 - share))


def rank_target(y: np.ndarray) -> np.ndarray:
    """The empirical quantile of each value, in (0, 1) (ties share their mean rank)."""
    y = np.asarray(y, dtype=float)
    return (rankdata(y) - 0.5) / max(len(y), 1)


class NetValueModel(BaseEstimator):
    """Net value over the horizon per customer, in money; see the module docstring.

    Parameters
    ----------
    params: LightGBM parameters overriding the shared defaults (e.g. the margin task's tuned ones).
    num_boost_round, early_stopping_rounds, seed, num_threads, max_trees: as in the other boosted models.
    """

    def __init__(self, params: dict[str, Any] | None = None, num_boost_round: int = 2000,
                 early_stopping_rounds: int = 50, seed: int = 42, num_threads: int = 2,
                 max_trees: int | None = None) -> None:
        self.params = params
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.seed = seed
        self.num_threads = num_threads
        self.max_trees = max_trees

    def lgb_params(self) -> dict[str, Any]:
        tuned = {k: v for k, v in (self.params or {}).items() if k not in _NOT_LGB}
        return {**DEFAULT_PARAMS, **tuned, "objective": "regression", "metric": "l2",
                **base_params(self.seed, self.num_threads)}

    def fit(self, X: pd.DataFrame, y: Any, X_valid: pd.DataFrame, y_valid: Any) -> "NetValueModel":
        """Least squares on the net value's rank, early-stopped on the validation rows' rank; then
        the isotonic calibration of the validation rows' money on the score."""
        y, yv = np.asarray(y, dtype=float), np.asarray(y_valid, dtype=float)
        if len(y) == 0 or len(yv) == 0:
            raise ValueError("the net value model needs training and validation rows")
        Xm = feature_matrix(X, categories_of(X) if has_categories(X) else None)
        self.categories_ = categories_of(Xm)
        self.feature_names_ = list(Xm.columns)
        Xv = align(X_valid, self.feature_names_, self.categories_)
        train = dataset(Xm, rank_target(y))
        valid = dataset(Xv, rank_target(yv), reference=train)
        self.booster_, self.best_iteration_ = train_early_stopped(
            self.lgb_params(), train, valid, self.num_boost_round, self.early_stopping_rounds, self.max_trees)
        score = self.score(Xv)
        self.valid_score_ = {"spearman": ev.spearman(yv, score)}
        iso = IsotonicRegression(out_of_bounds="clip").fit(score, yv)
        self.calibration_x_ = np.asarray(iso.X_thresholds_, dtype=float)
        self.calibration_y_ = np.asarray(iso.y_thresholds_, dtype=float)
        spread = float(np.ptp(score)) or 1.0
        self.tie_break_ = TIE_BREAK * max(float(np.ptp(self.calibration_y_)), 1.0) / spread
        self.centre_ = float(np.median(score))
        return self

    def score(self, X: pd.DataFrame) -> np.ndarray:
        """The booster's output: an estimate of each row's quantile of net value (higher is better)."""
        Xm = model_array(X, self.feature_names_, self.categories_)
        return np.asarray(self.booster_.predict(Xm, num_iteration=self.best_iteration_), dtype=float)

    def to_money(self, score: np.ndarray) -> np.ndarray:
        """The calibrated net value of a score (strictly increasing in it)."""
        score = np.asarray(score, dtype=float)
        return np.interp(score, self.calibration_x_, self.calibration_y_) + self.tie_break_ * (score - self.centre_)

    n_trees_ = property(lambda self: int(self.best_iteration_), doc="Trees one prediction runs through.")

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Expected net value over the horizon per row of ``X``, in money."""
        return self.to_money(self.score(X))

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """SHAP contributions to the score (quantile units), plus ``bias``."""
        Xm = align(X, self.feature_names_, self.categories_)
        raw = self.booster_.predict(Xm, num_iteration=self.best_iteration_, pred_contrib=True)
        return pd.DataFrame(raw, columns=[*self.feature_names_, "bias"], index=X.index)

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "net_value",
            "init": {**self.get_params()},
            "booster": self.booster_.model_to_string(num_iteration=self.best_iteration_),
            "best_iteration": self.best_iteration_,
            "feature_names": self.feature_names_,
            "categories": self.categories_,
            "calibration_x": self.calibration_x_.tolist(),
            "calibration_y": self.calibration_y_.tolist(),
            "tie_break": self.tie_break_,
            "centre": self.centre_,
            "valid_score": self.valid_score_,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "NetValueModel":
        model = cls(**data["init"])
        model.booster_ = lgb.Booster(model_str=data["booster"])
        model.best_iteration_ = int(data["best_iteration"])
        model.feature_names_ = list(data["feature_names"])
        model.categories_ = {k: list(v) for k, v in data["categories"].items()}
        model.calibration_x_ = np.asarray(data["calibration_x"], dtype=float)
        model.calibration_y_ = np.asarray(data["calibration_y"], dtype=float)
        model.tie_break_ = float(data["tie_break"])
        model.centre_ = float(data["centre"])
        model.valid_score_ = dict(data.get("valid_score", {}))
        return model
