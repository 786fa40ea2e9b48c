"""Metrics for the churn and cost-to-serve models, their baselines, and the value backtests.

Everything here is a pure function of arrays (``y_true`` first, then the prediction).

Metric names logged to MLflow are stable and documented, ``<task>.<source>.<metric>``:

- ``task``: ``churn``, ``cost``, ``margin`` or ``drain`` (``training.tasks``);
- ``source``: what produced the prediction and on which data, e.g. ``valid`` (the model on the
  validation snapshot), ``test`` (the model on realised outcomes after ``as_of``, in backtests),
  ``baseline_recency`` / ``baseline_bgnbd`` (churn baselines), ``baseline_trailing`` (cost
  baseline), ``oracle`` (a simulator's ground truth, benchmarks only);
- ``metric``: one of :data:`CHURN_METRICS` (``roc_auc``, ``pr_auc``, ``brier``, ``log_loss``,
  ``top_decile_lift``) or :data:`COST_METRICS` (``mae``, ``rmse``, ``tweedie_deviance``,
  ``spearman``, ``gini``, ``r2``).

e.g. ``churn.valid.roc_auc``, ``churn.baseline_recency.brier``, ``cost.valid.spearman``.

Baselines (each task's record in ``training.tasks`` says which stand beside it):

- churn ``baseline_recency``: "no purchase in the last ``churn_window_days``". Its ranking
  score is the days since the last purchase (customers who never bought rank highest), so its
  ROC/PR AUC and lift are those of the recency ranking, not just of the yes/no rule; its
  probability is the churn rate of each of the two rule groups (flagged / not flagged)
  measured on the *training* snapshots, so its Brier score and log loss are those of the
  best-calibrated version of the rule;
- churn ``baseline_bgnbd``: BG/NBD's P(no purchase in the next ``churn_window_days``), see
  :func:`customer_value.probabilistic.purchases.bgnbd_prob_no_purchase`;
- cost ``baseline_trailing``: the cost to serve over the trailing window of the same length
  (the historical cost feature), i.e. "next year costs what last year did".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics as skm

CHURN_METRICS: tuple[str, ...] = ("roc_auc", "pr_auc", "brier", "log_loss", "top_decile_lift")
COST_METRICS: tuple[str, ...] = ("mae", "rmse", "tweedie_deviance", "spearman", "gini", "r2")
# metrics where larger is better (for "gap closed" and for choosing the best baseline)
HIGHER_IS_BETTER: frozenset[str] = frozenset(
    {"roc_auc", "pr_auc", "top_decile_lift", "spearman", "gini", "r2", "top_decile_capture"}
)
TWEEDIE_POWER = 1.5
"""Variance power of the Tweedie deviance used to compare cost predictions (fixed, so models
fitted with different objectives or variance powers are judged on the same scale)."""

_EPS = 1e-12


def _arrays(y_true: Any, pred: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(pred, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true and prediction differ in length: {y.shape[0]} vs {p.shape[0]}")
    if y.size == 0:
        raise ValueError("cannot evaluate on zero rows")
    return y, p


# ---------------------------------------------------------------------------------------------
# churn (binary)
# ---------------------------------------------------------------------------------------------


def roc_auc(y_true: Any, score: Any) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    y, s = _arrays(y_true, score)
    if np.unique(y).size < 2:
        return float("nan")
    return float(skm.roc_auc_score(y, s))


def pr_auc(y_true: Any, score: Any) -> float:
    """Area under the precision-recall curve (average precision) for the positive class."""
    y, s = _arrays(y_true, score)
    if y.sum() == 0:
        return float("nan")
    return float(skm.average_precision_score(y, s))


def brier(y_true: Any, prob: Any) -> float:
    """Mean squared error of probabilities."""
    y, p = _arrays(y_true, prob)
    return float(np.mean((np.clip(p, 0.0, 1.0) - y) ** 2))


def log_loss(y_true: Any, prob: Any, eps: float = 1e-6) -> float:
    """Binary cross-entropy with probabilities clipped to ``[eps, 1 - eps]``."""
    y, p = _arrays(y_true, prob)
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def _top_fraction_mask(score: np.ndarray, fraction: float) -> np.ndarray:
    """The ``ceil(fraction * n)`` highest scores; ties at the cut broken by position (stable)."""
    n = score.size
    k = max(1, int(np.ceil(fraction * n)))
    order = np.argsort(-score, kind="stable")
    mask = np.zeros(n, dtype=bool)
    mask[order[:k]] = True
    return mask


def top_decile_lift(y_true: Any, score: Any, fraction: float = 0.1) -> float:
    """Positive rate among the top ``fraction`` by score divided by the overall positive rate."""
    y, s = _arrays(y_true, score)
    base = y.mean()
    if base == 0:
        return float("nan")
    return float(y[_top_fraction_mask(s, fraction)].mean() / base)


def churn_metrics(y_true: Any, prob: Any) -> dict[str, float]:
    """All of :data:`CHURN_METRICS` for one probability vector."""
    return {
        "roc_auc": roc_auc(y_true, prob),
        "pr_auc": pr_auc(y_true, prob),
        "brier": brier(y_true, prob),
        "log_loss": log_loss(y_true, prob),
        "top_decile_lift": top_decile_lift(y_true, prob),
    }


# ---------------------------------------------------------------------------------------------
# cost (non-negative regression)
# ---------------------------------------------------------------------------------------------


def mae(y_true: Any, pred: Any) -> float:
    y, p = _arrays(y_true, pred)
    return float(np.mean(np.abs(y - p)))


def rmse(y_true: Any, pred: Any) -> float:
    y, p = _arrays(y_true, pred)
    return float(np.sqrt(np.mean((y - p) ** 2)))


def tweedie_deviance(y_true: Any, pred: Any, power: float = TWEEDIE_POWER) -> float:
    """Mean Tweedie deviance (``1 < power < 2``); predictions are floored at a tiny positive
    number, labels must be non-negative."""
    y, p = _arrays(y_true, pred)
    if not 1.0 < power < 2.0:
        raise ValueError(f"tweedie power must lie in (1, 2), got {power}")
    if (y < 0).any():
        raise ValueError("Tweedie deviance needs non-negative labels")
    p = np.maximum(p, 1e-9)
    dev = 2.0 * (
        np.power(y, 2.0 - power) / ((1.0 - power) * (2.0 - power))
        - y * np.power(p, 1.0 - power) / (1.0 - power)
        + np.power(p, 2.0 - power) / (2.0 - power)
    )
    return float(np.mean(dev))


def spearman(y_true: Any, pred: Any) -> float:
    """Spearman rank correlation; NaN when either side is constant."""
    y, p = _arrays(y_true, pred)
    if np.ptp(y) == 0 or np.ptp(p) == 0:
        return float("nan")
    return float(stats.spearmanr(y, p).statistic)


def _gini(y: np.ndarray, p: np.ndarray) -> float:
    # Kaggle's Gini: cumulative share of y when sorted by p descending (ties by position).
    order = np.argsort(-p, kind="stable")
    total = y.sum()
    if total == 0:
        return float("nan")
    cum = np.cumsum(y[order]) / total
    n = y.size
    return float(cum.sum() / n - (n + 1) / (2.0 * n))


def normalized_gini(y_true: Any, pred: Any) -> float:
    """Gini of ``pred`` for ordering ``y_true`` divided by the Gini of the perfect ordering
    (1 = perfect ranking, 0 = random)."""
    y, p = _arrays(y_true, pred)
    perfect = _gini(y, y)
    if not np.isfinite(perfect) or perfect == 0:
        return float("nan")
    return _gini(y, p) / perfect


def r2(y_true: Any, pred: Any) -> float:
    y, p = _arrays(y_true, pred)
    ss_tot = np.sum((y - y.mean()) ** 2)
    if ss_tot == 0:
        return float("nan")
    return float(1.0 - np.sum((y - p) ** 2) / ss_tot)


def cost_metrics(y_true: Any, pred: Any, power: float = TWEEDIE_POWER) -> dict[str, float]:
    """All of :data:`COST_METRICS` for one prediction vector."""
    return {
        "mae": mae(y_true, pred),
        "rmse": rmse(y_true, pred),
        "tweedie_deviance": tweedie_deviance(y_true, pred, power),
        "spearman": spearman(y_true, pred),
        "gini": normalized_gini(y_true, pred),
        "r2": r2(y_true, pred),
    }


def decile_table(y_true: Any, pred: Any, n_bins: int = 10) -> pd.DataFrame:
    """Customers cut into ``n_bins`` equal-count groups by prediction (1 = highest): count,
    mean predicted, mean actual, and each group's share of the actual total."""
    y, p = _arrays(y_true, pred)
    order = np.argsort(-p, kind="stable")
    bins = np.empty(y.size, dtype=int)
    bins[order] = np.arange(y.size) * n_bins // y.size + 1
    frame = pd.DataFrame({"decile": bins, "predicted": p, "actual": y})
    table = frame.groupby("decile", sort=True).agg(
        customers=("actual", "size"),
        mean_predicted=("predicted", "mean"),
        mean_actual=("actual", "mean"),
        sum_actual=("actual", "sum"),
    )
    total = y.sum()
    table["share_of_actual"] = table["sum_actual"] / total if total != 0 else np.nan
    return table.reset_index()


# ---------------------------------------------------------------------------------------------
# value backtests
# ---------------------------------------------------------------------------------------------


def top_decile_capture(y_true: Any, score: Any, fraction: float = 0.1) -> float:
    """Realised value of the top ``fraction`` of customers by ``score`` over that of the best
    possible top ``fraction`` (the ``ceil(fraction · n)`` largest values of ``y_true``): 1 when the
    score picks the best customers, at most 1 always.

    Not a share of the total: with signed values (net value, where losses offset gains) the total
    can be small or negative and a share of it unbounded (3.27 was seen on a loss-heavy world).
    Below 0 when the picked customers lose money on balance. NaN when the best possible top
    ``fraction`` has no positive value to capture (sum ≤ 0: nearly everyone loses money).
    """
    y, s = _arrays(y_true, score)
    best = float(y[_top_fraction_mask(y, fraction)].sum())
    if best <= 0:
        return float("nan")
    return float(y[_top_fraction_mask(s, fraction)].sum() / best)


def precision_recall_at(y_true_bool: Any, flag_bool: Any) -> dict[str, float]:
    """Precision and recall of a yes/no flag against a yes/no outcome (NaN when undefined),
    plus the number flagged."""
    y = np.asarray(y_true_bool, dtype=bool).ravel()
    f = np.asarray(flag_bool, dtype=bool).ravel()
    if y.shape != f.shape:
        raise ValueError(f"y_true_bool and flag_bool differ in length: {y.size} vs {f.size}")
    hits = float(np.sum(y & f))
    return {
        "precision": hits / f.sum() if f.sum() else float("nan"),
        "recall": hits / y.sum() if y.sum() else float("nan"),
        "flagged": float(f.sum()),
    }


def f1(precision: float, recall: float) -> float:
    """Harmonic mean of a flag's precision and recall; 0 when neither is positive (or undefined)."""
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def gap_closed(model: float, baseline: float, oracle: float) -> float:
    """Fraction of the baseline-to-oracle gap the model closes (1 = as good as the oracle)."""
    gap = oracle - baseline
    if gap == 0 or not np.isfinite(gap):
        return float("nan")
    return float((model - baseline) / gap)


# ---------------------------------------------------------------------------------------------
# baselines
# ---------------------------------------------------------------------------------------------


def recency_rule(days_since_last_purchase: Any, window_days: int) -> np.ndarray:
    """The rule "no purchase in the last ``window_days``" (never bought counts as yes)."""
    d = np.asarray(days_since_last_purchase, dtype=float)
    return ~(d < window_days)  # NaN (never bought) -> True


def recency_score(days_since_last_purchase: Any) -> np.ndarray:
    """Ranking score of the recency baseline: days since the last purchase, never bought = +inf
    (replaced by a number larger than any observed)."""
    d = np.asarray(days_since_last_purchase, dtype=float)
    finite = d[np.isfinite(d)]
    top = (finite.max() if finite.size else 0.0) + 1.0
    return np.where(np.isfinite(d), d, top)


def recency_rule_rates(days_since_last_purchase: Any, churned: Any, window_days: int) -> tuple[float, float]:
    """Churn rates (not flagged, flagged) of the recency rule on training data."""
    flag = recency_rule(days_since_last_purchase, window_days)
    y = np.asarray(churned, dtype=float)
    overall = float(y.mean()) if y.size else 0.5
    rate_0 = float(y[~flag].mean()) if (~flag).any() else overall
    rate_1 = float(y[flag].mean()) if flag.any() else overall
    return rate_0, rate_1


def recency_baseline(
    days_since_last_purchase: Any, window_days: int, rates: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """``(score, probability)`` of the recency baseline: score for ranking metrics, the rule
    group's training churn rate as probability (see the module docstring)."""
    flag = recency_rule(days_since_last_purchase, window_days)
    prob = np.where(flag, rates[1], rates[0])
    return recency_score(days_since_last_purchase), prob


def churn_evaluation(
    y_true: Any,
    predictions: Mapping[str, Any],
    scores: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, float]]:
    """Churn metrics for several sources at once: ``{source: metrics}``.

    ``predictions`` maps a source name to probabilities; ``scores`` optionally gives a separate
    ranking score for a source (used for ROC/PR AUC and lift instead of the probability).
    """
    scores = scores or {}
    out: dict[str, dict[str, float]] = {}
    for source, prob in predictions.items():
        m = churn_metrics(y_true, prob)
        if source in scores:
            s = scores[source]
            m.update(roc_auc=roc_auc(y_true, s), pr_auc=pr_auc(y_true, s), top_decile_lift=top_decile_lift(y_true, s))
        out[source] = m
    return out


def cost_evaluation(y_true: Any, predictions: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Cost metrics for several sources at once: ``{source: metrics}``."""
    return {source: cost_metrics(y_true, pred) for source, pred in predictions.items()}


def metric_name(task: str, source: str, metric: str) -> str:
    """The MLflow name of one metric, ``<task>.<source>.<metric>``."""
    return f"{task}.{source}.{metric}"


def flatten(task: str, evaluation: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """``{source: {metric: value}}`` -> ``{"<task>.<source>.<metric>": value}`` (NaNs dropped)."""
    return {
        metric_name(task, source, metric): float(value)
        for source, metrics in evaluation.items()
        for metric, value in metrics.items()
        if value is not None and np.isfinite(value)
    }
