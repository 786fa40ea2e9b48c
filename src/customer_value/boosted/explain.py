"""Why a customer is likely to churn or costly to serve: per-customer drivers and global importance.

Contributions are LightGBM's exact TreeSHAP values (``predict(..., pred_contrib=True)``) of the
boosted model on its raw scale: log-odds of churn for :class:`~customer_value.boosted.churn.ChurnModel`
(before calibration, which is monotone and so does not change the ranking of drivers), and the
log of the expected cost for :class:`~customer_value.boosted.cost_to_serve.CostToServeModel` with a
log-link objective (the total model; per-component models are not explained). Each row's
contributions plus ``bias`` sum to the raw prediction.

- :func:`contributions` -> one column per feature plus ``bias``;
- :func:`top_drivers` -> per customer the ``k`` features that push the prediction up the most
  (``direction="up"``), or with the largest absolute effect (``"abs"``), as tidy columns
  ``driver_1``, ``driver_1_contribution``, ...;
- :func:`mean_abs_contributions` -> global importance (mean |SHAP| per feature, on a sample of
  at most 2,000 rows by default), drawn by :func:`customer_value.plots.evaluation.plot_importance`.

Cost: TreeSHAP takes about trees x leaves x depth^2 operations per row; for the tuned models
of the 100k-customer benchmark that is seconds per thousand customers (see the benchmark), so
per-customer drivers are best computed for the customers a report shows, not for everyone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def contributions(model: Any, X: pd.DataFrame) -> pd.DataFrame:
    """SHAP contributions (raw scale) of a fitted churn or cost model for the rows of ``X``
    (a raw feature frame or a feature matrix); columns = features + ``bias``."""
    if not hasattr(model, "contributions"):
        raise TypeError(f"{type(model).__name__} has no contributions(); expected ChurnModel or CostToServeModel")
    return model.contributions(X)


def top_drivers(
    model: Any,
    X: pd.DataFrame,
    k: int = 3,
    ids: Any = None,
    direction: str = "up",
    contrib: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The top ``k`` drivers per row: ``driver_i`` (feature name) and ``driver_i_contribution``.

    ``ids`` (e.g. the ``customer_id`` column) becomes the first column ``customer_id``; when
    ``X`` itself has a ``customer_id`` column it is used. ``direction="up"`` ranks by the signed
    contribution (what raises churn risk / cost most; a row with fewer than ``k`` positive
    contributions still lists ``k`` features); ``"abs"`` ranks by absolute size.
    ``contrib`` reuses already computed :func:`contributions`."""
    if direction not in ("up", "abs"):
        raise ValueError(f"direction must be 'up' or 'abs', got {direction!r}")
    if contrib is None:
        contrib = contributions(model, X)
    values = contrib.drop(columns="bias").to_numpy()
    names = np.asarray(contrib.columns.drop("bias"))
    k = min(k, names.size)
    key = -values if direction == "up" else -np.abs(values)
    idx = np.argsort(key, axis=1, kind="stable")[:, :k]
    picked = np.take_along_axis(values, idx, axis=1)
    out: dict[str, Any] = {}
    if ids is None and "customer_id" in X.columns:
        ids = X["customer_id"].to_numpy()
    if ids is not None:
        out["customer_id"] = np.asarray(ids)
    for i in range(k):
        out[f"driver_{i + 1}"] = names[idx[:, i]]
        out[f"driver_{i + 1}_contribution"] = picked[:, i]
    return pd.DataFrame(out, index=X.index)


MAX_IMPORTANCE_ROWS = 2000


def mean_abs_contributions(
    model: Any, X: pd.DataFrame, contrib: pd.DataFrame | None = None, max_rows: int | None = MAX_IMPORTANCE_ROWS,
    seed: int = 0,
) -> pd.Series:
    """Global importance: mean |SHAP| per feature, largest first.

    TreeSHAP costs about trees x leaves x depth^2 per row (seconds per thousand rows for a
    tuned model), so by default the mean is taken over a seeded random sample of ``max_rows``
    rows of ``X`` (``None``: every row)."""
    if contrib is None:
        if max_rows is not None and len(X) > max_rows:
            X = X.sample(n=max_rows, random_state=seed)
        contrib = contributions(model, X)
    return contrib.drop(columns="bias").abs().mean().sort_values(ascending=False).rename("mean_abs_shap")
