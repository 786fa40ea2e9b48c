"""Plots of model evaluation: calibration, lift, deciles, importance, tuning history.

Each function takes an optional matplotlib ``Axes`` and returns the Axes it drew on. Without an
``ax`` a new ``Figure`` (not pyplot) is created, so nothing touches global pyplot state and the
figure can go straight to ``mlflow.log_figure(ax.figure, ...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def _axes(ax: Axes | None, size: tuple[float, float] = (6.0, 4.5)) -> Axes:
    if ax is not None:
        return ax
    return Figure(figsize=size, layout="constrained").add_subplot()


def _as_mapping(values: Any, name: str) -> Mapping[str, Any]:
    return values if isinstance(values, Mapping) else {name: values}


def plot_calibration(
    y_true: Any, probs: Any, n_bins: int = 10, ax: Axes | None = None, title: str = "churn calibration"
) -> Axes:
    """Reliability curve: mean predicted vs observed rate in equal-count bins of each
    probability vector (``probs`` is an array or ``{label: array}``)."""
    ax = _axes(ax)
    y = np.asarray(y_true, dtype=float)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8, label="perfect")
    for label, p in _as_mapping(probs, "model").items():
        p = np.asarray(p, dtype=float)
        order = np.argsort(p, kind="stable")
        groups = np.array_split(order, min(n_bins, max(1, p.size)))
        mean_p = [p[g].mean() for g in groups if g.size]
        mean_y = [y[g].mean() for g in groups if g.size]
        ax.plot(mean_p, mean_y, marker="o", markersize=3, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed rate")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def plot_lift(y_true: Any, scores: Any, ax: Axes | None = None, title: str = "cumulative gains") -> Axes:
    """Cumulative gains: share of all positives found among the top x% by each score."""
    ax = _axes(ax)
    y = np.asarray(y_true, dtype=float)
    total = y.sum()
    share = np.arange(1, y.size + 1) / y.size
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8, label="random")
    for label, s in _as_mapping(scores, "model").items():
        order = np.argsort(-np.asarray(s, dtype=float), kind="stable")
        gains = np.cumsum(y[order]) / total if total else np.zeros(y.size)
        ax.plot(share, gains, label=label)
    ax.axvline(0.1, color="grey", linewidth=0.5)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("share of customers (highest score first)")
    ax.set_ylabel("share of positives captured")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def plot_deciles(table: pd.DataFrame, ax: Axes | None = None, title: str = "predicted vs actual by decile") -> Axes:
    """Bars of mean predicted and mean actual per decile (a :func:`decile_table`)."""
    ax = _axes(ax)
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["mean_predicted"], 0.4, label="mean predicted", color="#4393c3")
    ax.bar(x + 0.2, table["mean_actual"], 0.4, label="mean actual", color="#d6604d")
    ax.set_xticks(x, [str(d) for d in table["decile"]])
    ax.set_xlabel("decile of prediction (1 = highest)")
    ax.set_ylabel("mean per customer")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def plot_importance(importance: pd.Series, top: int = 20, ax: Axes | None = None, title: str = "mean |SHAP|") -> Axes:
    """Horizontal bars of the ``top`` largest values of a feature -> importance Series."""
    ax = _axes(ax, size=(6.0, max(3.0, 0.25 * min(top, len(importance)) + 1)))
    s = importance.sort_values(ascending=False).head(top)[::-1]
    ax.barh(np.arange(len(s)), s.to_numpy(), color="#4393c3")
    ax.set_yticks(np.arange(len(s)), [str(i) for i in s.index], fontsize=8)
    ax.set_xlabel("mean |contribution|")
    ax.set_title(title)
    return ax


def plot_optimization_history(
    values: Any, states: Any = None, ax: Axes | None = None, minimize: bool = True, title: str = "Optuna history"
) -> Axes:
    """Each finished trial's value and the best-so-far line; pruned trials (``states`` equal to
    ``"PRUNED"``) are drawn as crosses at their last reported value when one is given."""
    ax = _axes(ax)
    v = np.asarray(values, dtype=float)
    st = np.asarray(states if states is not None else ["COMPLETE"] * v.size, dtype=object)
    n = np.arange(v.size)
    done = (st == "COMPLETE") & np.isfinite(v)
    pruned = (st == "PRUNED") & np.isfinite(v)
    ax.scatter(n[done], v[done], s=14, label="complete", color="#4393c3")
    if pruned.any():
        ax.scatter(n[pruned], v[pruned], s=14, marker="x", label="pruned (last report)", color="#d6604d")
    if done.any():
        filled = np.where(done, v, np.inf if minimize else -np.inf)
        best = np.minimum.accumulate(filled) if minimize else np.maximum.accumulate(filled)
        ok = np.isfinite(best)
        ax.step(n[ok], best[ok], where="post", color="black", linewidth=1, label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("objective")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax
