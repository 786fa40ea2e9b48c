"""The figures that judge a fitted model: a classifier's calibration and gains, a predicted
amount's deciles, SHAP importance, a search's history, and the backtest's gains and deciles.

Every function returns ``{artifact file name: matplotlib Figure}`` built without pyplot, so the
same figures go to MLflow, a report or a notebook.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from customer_value.boosted.explain import mean_abs_contributions
from customer_value.metrics import decile_table
from customer_value.plots.evaluation import (
    plot_calibration,
    plot_deciles,
    plot_importance,
    plot_lift,
    plot_optimization_history,
)
from customer_value.plots.value import plot_gains
from customer_value.training.tasks import task_of


def _new(size: tuple[float, float] = (6, 4.5)) -> tuple[Figure, Any]:
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplots()


def evaluation_figures(
    *,
    churn_true: Any = None,
    churn_probs: Mapping[str, Any] | None = None,
    cost_true: Any = None,
    cost_preds: Mapping[str, Any] | None = None,
    importance: Mapping[str, pd.Series] | None = None,
    prefix: str = "evaluation",
    amount: str = "cost",
    amount_title: str = "cost to serve",
    classifier: str = "churn",
) -> dict[str, Figure]:
    """A classifier's calibration curve and lift chart (``churn_*``; ``classifier`` names their
    files, e.g. ``"drain"``), the decile chart of a predicted amount (``cost_*``; ``amount``
    names its files and ``amount_title`` its charts, e.g. ``"margin"``), and one importance
    chart per entry of ``importance`` (e.g. ``{"churn": mean_abs_shap}``)."""
    figures: dict[str, Figure] = {}
    if churn_true is not None and churn_probs:
        fig, ax = _new()
        plot_calibration(churn_true, churn_probs, ax=ax, title=f"{classifier} calibration")
        figures[f"{prefix}/{classifier}_calibration.png"] = fig
        fig, ax = _new()
        plot_lift(churn_true, churn_probs, ax=ax, title=f"{classifier}: cumulative gains")
        figures[f"{prefix}/{classifier}_lift.png"] = fig
    if cost_true is not None and cost_preds:
        for source, pred in cost_preds.items():
            fig, ax = _new()
            plot_deciles(decile_table(cost_true, pred), ax=ax, title=f"{amount_title} by predicted decile ({source})")
            figures[f"{prefix}/{amount}_deciles_{source}.png"] = fig
    for task, series in (importance or {}).items():
        fig, ax = _new()
        plot_importance(series, ax=ax, title=f"{task}: mean |SHAP|")
        figures[f"{prefix}/{task}_importance.png"] = fig
    return figures


def validation_figures(part: Any) -> dict[str, Figure]:
    """The figures of one fitted boosted part (``training.fit.FittedPart``) on its validation snapshot."""
    task = task_of(part.name)
    ts = part.training_set
    importance = {task.name: mean_abs_contributions(part.model, ts.X_valid)}
    if task.kind == "classifier":
        probs = {"model": part.valid_prediction}
        if task.reference_probability is not None:
            name, column = task.reference_probability
            probs[name] = ts.X_valid[column].to_numpy(dtype=float)
        return evaluation_figures(churn_true=ts.y_valid, churn_probs=probs, importance=importance,
                                  classifier=task.name)
    return evaluation_figures(cost_true=ts.y_valid, cost_preds={"model": part.valid_prediction},
                              importance=importance, amount=task.name, amount_title=task.title)


def tuning_history_figure(task: str, study: Any, metric: str) -> dict[str, Figure]:
    """A search's validation loss by trial (pruned trials at their last reported value)."""
    trials = study.get_trials(deepcopy=False)
    if not trials:
        return {}
    values, states = [], []
    for t in trials:
        if t.value is not None:
            values.append(t.value)
        elif t.intermediate_values:
            values.append(t.intermediate_values[max(t.intermediate_values)])
        else:
            values.append(np.nan)
        states.append(t.state.name)
    fig, ax = _new((6, 4))
    plot_optimization_history(values, states, ax=ax, title=f"{task}: {metric} by trial")
    return {f"tuning/{task}_optimization_history.png": fig}


def backtest_figures(latest: pd.DataFrame) -> dict[str, Figure]:
    """Gains and decile charts of one scored cutoff (model vs baselines)."""
    figures = {}
    fig, ax = _new((5.6, 4.4))
    plot_gains(latest["net_value"], {"customer_value": latest["customer_value"],
                                     "historical_value": latest["historical_value"],
                                     "BG/NBD×GG revenue": latest["bgnbd_gg_revenue"]}, ax=ax)
    figures["backtest/gains.png"] = fig
    fig, ax = _new((5.6, 4.4))
    plot_deciles(decile_table(latest["net_value"], latest["customer_value"]), ax=ax,
                 title="realised net value by predicted value decile")
    figures["backtest/value_deciles.png"] = fig
    return figures
