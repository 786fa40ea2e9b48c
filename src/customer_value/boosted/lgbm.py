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
