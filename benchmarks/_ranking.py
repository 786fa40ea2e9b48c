"""Model, ceiling and oracle side by side, for the benchmarks (``value.py``, ``models.py``).

The simulator's truth holds two references for each prediction: the *oracle*, which knows every
customer's latent state and traits, and the *ceiling*, the same oracle without the purchase rate,
which it infers from the purchase history exactly (``simulation/world.py``). No model of the data
knows the rate better than the ceiling does, so "the share of the baseline-to-ceiling gap closed"
says how much of what is reachable a model reaches, and the ceiling's own share of the
baseline-to-oracle gap says how much is reachable at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from customer_value import metrics as ev


def gap_columns(table: pd.DataFrame, metric: str, baseline: str, ceiling: str | None, oracle: str | None) -> pd.DataFrame:
    """``table`` (one row per source) with the share of the gap closed on ``metric`` from the
    ``baseline`` row to the ``oracle`` row and to the ``ceiling`` row (NaN where a row is missing)."""
    base = table.loc[baseline, metric]
    out = table.copy()
    for name, ref in (("oracle", oracle), ("ceiling", ceiling)):
        top = table.loc[ref, metric] if ref in table.index else np.nan
        out[f"gap_to_{name}"] = [ev.gap_closed(v, base, top) for v in table[metric]]
    return out


def value_side_by_side(realised: Any, scores: Mapping[str, Any], baseline: str = "historical_value",
                       ceiling: str | None = "ceiling", oracle: str | None = "oracle") -> pd.DataFrame:
    """Spearman and top-decile capture of each score against the realised value, and the share of
    the gap it closes from ``baseline`` to the oracle and to the ceiling (on Spearman)."""
    y = np.asarray(realised, dtype=float)
    rows = {name: {"spearman": ev.spearman(y, np.asarray(s, dtype=float)),
                   "top_decile_capture": ev.top_decile_capture(y, np.asarray(s, dtype=float))}
            for name, s in scores.items()}
    return gap_columns(pd.DataFrame(rows).T, "spearman", baseline, ceiling, oracle)


def churn_side_by_side(churned: Any, probabilities: Mapping[str, Any], baseline: str,
                       ceiling: str | None = "ceiling", oracle: str | None = "oracle") -> pd.DataFrame:
    """ROC AUC and Brier score of each churn probability, and the share of the ROC AUC gap it
    closes from ``baseline`` to the oracle and to the ceiling."""
    y = np.asarray(churned, dtype=float)
    rows = {name: {"roc_auc": ev.roc_auc(y, p), "brier": ev.brier(y, p)} for name, p in probabilities.items()}
    return gap_columns(pd.DataFrame(rows).T, "roc_auc", baseline, ceiling, oracle)


def ceiling_sentence(metric: str, model: float, baseline: float, ceiling: float, oracle: float) -> str:
    """One line: how much of the baseline-to-oracle gap the ceiling closes, and how much of the
    baseline-to-ceiling gap the model closes."""
    return (f"(ceiling, the oracle without the purchase rate: {metric} {ceiling:.4f} closes "
            f"{ev.gap_closed(ceiling, baseline, oracle):.1%} of the gap to the oracle; the model "
            f"closes {ev.gap_closed(model, baseline, ceiling):.1%} of the gap to the ceiling)")


STACK_PARAMS = {"objective": "regression", "learning_rate": 0.05, "num_leaves": 127, "min_data_in_leaf": 100,
                "verbose": -1, "num_threads": 2, "seed": 0}
"""The in-year stacks' LightGBM: fixed, with as many trees as early stopping on a held-back 15% of
the training half keeps (a ceiling is not tuned to the half it is judged on). Wider stacks change
it by under 0.001 of Spearman on the 786k base (255 leaves, learning rate 0.03, feature and row
sampling: 0.6671 against 0.6668)."""


def in_year_halves(rows: int, seed: int = 0) -> np.ndarray:
    """A random half of ``rows`` (True: the half an in-year stack is trained on)."""
    return np.random.default_rng(seed).random(rows) < 0.5


def in_year_stack(X: np.ndarray, target: np.ndarray, train: np.ndarray, max_rounds: int = 3000) -> np.ndarray:
    """A LightGBM fitted on the ``train`` rows' own outcome (``target``) of the year it is judged
    on, predicting the other rows: no model fitted a year earlier on the same inputs can rank that
    year better, so its Spearman is a ceiling for those inputs (drift, a year's ageing and the
    search for parameters all cost a real model something this stack does not pay)."""
    booster = fit_stack(X[train], target[train], max_rounds)
    return booster.predict(X[~train], num_iteration=booster.best_iteration)


def fit_stack(X: np.ndarray, target: np.ndarray, max_rounds: int = 3000) -> Any:
    """A stack's LightGBM (:data:`STACK_PARAMS`) on ``X`` against ``target``, with as many trees as
    early stopping on a held-back 15% of these rows keeps."""
    import lightgbm as lgb

    fit = np.random.default_rng(1).random(len(target)) < 0.85
    return lgb.train(STACK_PARAMS, lgb.Dataset(X[fit], target[fit]), max_rounds,
                     valid_sets=[lgb.Dataset(X[~fit], target[~fit])],
                     callbacks=[lgb.early_stopping(50, verbose=False)])


def print_table(table: pd.DataFrame, title: str) -> None:
    print(title)
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
