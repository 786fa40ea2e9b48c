"""Evaluation plots draw on the Axes they are given (or a new pyplot-free Figure) and return it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from customer_value.metrics import decile_table
from customer_value.plots.evaluation import (
    plot_calibration,
    plot_deciles,
    plot_importance,
    plot_lift,
    plot_optimization_history,
)

rng = np.random.default_rng(0)
Y = rng.integers(0, 2, 200).astype(float)
P = np.clip(0.5 * Y + rng.uniform(0, 0.5, 200), 0, 1)
COST = rng.gamma(1, 10, 200)

CALLS = {
    "calibration": lambda ax: plot_calibration(Y, {"model": P, "baseline": rng.random(200)}, ax=ax),
    "lift": lambda ax: plot_lift(Y, P, ax=ax),
    "deciles": lambda ax: plot_deciles(decile_table(COST, COST + rng.normal(0, 1, 200)), ax=ax),
    "importance": lambda ax: plot_importance(pd.Series({"a": 3.0, "b": 1.0, "c": 2.0}), top=2, ax=ax),
    "history": lambda ax: plot_optimization_history(
        [0.5, 0.4, 0.45, np.nan], ["COMPLETE", "COMPLETE", "PRUNED", "FAIL"], ax=ax
    ),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_plots_use_the_given_axes_and_no_pyplot_state(name):
    before = plt.get_fignums()
    fig = Figure()
    ax = fig.subplots()
    out = CALLS[name](ax)
    assert out is ax
    assert ax.has_data() or ax.patches or ax.lines
    fresh = CALLS[name](None)
    assert isinstance(fresh, Axes) and fresh.figure is not fig
    assert plt.get_fignums() == before  # nothing registered with pyplot


def test_importance_keeps_the_largest_bars():
    ax = plot_importance(pd.Series({"a": 3.0, "b": 1.0, "c": 2.0}), top=2)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["c", "a"]  # largest at the top


def test_history_best_so_far_is_monotone():
    ax = plot_optimization_history([0.5, 0.6, 0.4, 0.45], ["COMPLETE"] * 4)
    best = [line for line in ax.lines if line.get_label() == "best so far"][0]
    y = np.asarray(best.get_ydata(), dtype=float)
    assert (np.diff(y) <= 0).all() and y[-1] == 0.4
