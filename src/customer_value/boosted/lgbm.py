"""What every LightGBM model here shares: parameters, determinism and how data is handed over.

Shared by composition: the estimators call these functions; none inherits them.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

MAX_BIN = 63
"""Histogram bins per feature (a Dataset parameter, the same for every model here): 63 instead
of LightGBM's 255 makes each boosting round cheaper for a barely visible change in validation
loss (tree models on a few hundred thousand rows rarely need finer splits)."""
DEFAULT_PARAMS: dict[str, Any] = {
    "max_bin": MAX_BIN,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
}


def base_params(seed: int, num_threads: int) -> dict[str, Any]:
    """Parameters every booster here shares: deterministic, quiet, fixed threads and seed."""
    return {
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": num_threads,
        "seed": seed,
        "verbosity": -1,
        "feature_pre_filter": False,
    }


def dataset(X: pd.DataFrame, y: Any, reference: lgb.Dataset | None = None, **params: Any) -> lgb.Dataset:
    """A LightGBM Dataset keeping raw data (so it can be reused across trials)."""
    return lgb.Dataset(
        X,
        label=np.asarray(y, dtype=float),
        reference=reference,
        free_raw_data=False,
        params={"feature_pre_filter": False, "verbosity": -1, "max_bin": MAX_BIN, **params},
    )


MAX_LEARNING_RATE = 0.5
"""The largest learning rate a tree budget may raise a model to."""


def train_early_stopped(
    params: dict[str, Any],
    train_set: lgb.Dataset,
    valid_set: lgb.Dataset,
    num_boost_round: int,
    early_stopping_rounds: int,
    max_trees: int | None = None,
    callbacks: Any = (),
    feval: Any = None,
) -> tuple[lgb.Booster, int]:
    """Train with early stopping on the validation set (named ``"valid"``, first metric only) and
    return the booster with the number of trees to use (its best iteration).

    ``max_trees`` is a scoring budget: every scored row runs through every tree, so a slow
    learning rate that early-stops at 900 trees costs the weekly job nine times what 100 do. A
    booster that wants more trees than the budget is trained again with its learning rate scaled
    up by ``best / max_trees`` (at most :data:`MAX_LEARNING_RATE`) and at most ``max_trees``
    rounds. ``callbacks`` (e.g. Optuna's pruning) watch the first training only."""
    booster, best = _train(params, train_set, valid_set, num_boost_round, early_stopping_rounds, callbacks, feval)
    if max_trees is None or best <= max_trees:
        return booster, best
    rate = float(params.get("learning_rate", DEFAULT_PARAMS["learning_rate"]))
    faster = {**params, "learning_rate": min(MAX_LEARNING_RATE, rate * best / max_trees)}
    return _train(faster, train_set, valid_set, int(max_trees), early_stopping_rounds, (), feval)


def _train(params: dict[str, Any], train_set: lgb.Dataset, valid_set: lgb.Dataset, num_boost_round: int,
           early_stopping_rounds: int, callbacks: Any, feval: Any) -> tuple[lgb.Booster, int]:
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=num_boost_round,
        valid_sets=[valid_set],
        valid_names=["valid"],
        feval=feval,
        callbacks=[
            lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False),
            lgb.log_evaluation(0),
            *callbacks,
        ],
    )
    return booster, int(booster.best_iteration or booster.current_iteration())
