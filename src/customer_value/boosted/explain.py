"""Why a customer is likely to churn or costly to serve: per-customer drivers and global importance.

Contributions are LightGBM's exact TreeSHAP values (``predict(..., pred_contrib=True)``) of the
boosted model on its raw scale: log-odds of churn for :class:`~customer_value.boosted.churn.ChurnModel`
(before calibration, which is monotone and so does not change the ranking of drivers), and the
log of the expected cost for :class:`~customer_value.boosted.cost_to_serve.CostToServeModel` with a
log-link objective (the total model; per-component models are not explained). Each row's
contributions plus ``bias`` sum to the raw prediction.

- :func:`contributions` -> one column per feature plus ``bias``;
- :func:`raw_contributions` -> the same as a bare array, optionally of the first ``trees`` trees;
- :func:`path_contributions` -> the *path* decomposition (Saabas): each split on a row's way to
  its leaf credits its feature with the change of the node value; summed over trees, optionally
  over groups of features. Exact in total (the contributions plus ``bias`` are the raw prediction)
  like TreeSHAP, but the credit is the path's, not the average over feature orderings. It costs
  one leaf lookup per tree (trees x depth per row): what makes drivers for a million customers
  affordable (:mod:`customer_value.valuation.churn_drivers`);
- :func:`truncation` -> how many leading trees reproduce a booster's raw score well enough;
- :func:`top_drivers` -> per customer the ``k`` features that push the prediction up the most
  (``direction="up"``), or with the largest absolute effect (``"abs"``), as tidy columns
  ``driver_1``, ``driver_1_contribution``, ...;
- :func:`mean_abs_contributions` -> global importance (mean |SHAP| per feature, on a sample of
  at most 2,000 rows by default), drawn by :func:`customer_value.plots.evaluation.plot_importance`.

Cost: TreeSHAP takes about trees x leaves x depth^2 operations per row; for the tuned models
of the benchmarks that is 15-20 ms per customer (a ~1,000-tree churn model of depth 10), so exact
drivers are for the customers a report shows; the path decomposition costs trees x depth per row
(tens of µs per customer on the leading trees), which is what every score row gets.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import pandas as pd

from customer_value.boosted.inputs import align, model_array


def contributions(model: Any, X: pd.DataFrame) -> pd.DataFrame:
    """SHAP contributions (raw scale) of a fitted churn or cost model for the rows of ``X``
    (a raw feature frame or a feature matrix); columns = features + ``bias``."""
    if not hasattr(model, "contributions"):
        raise TypeError(f"{type(model).__name__} has no contributions(); expected ChurnModel or CostToServeModel")
    return model.contributions(X)


def raw_contributions(model: Any, X: pd.DataFrame, trees: int | None = None) -> np.ndarray:
    """SHAP contributions of a fitted churn or cost model as an array (rows x (features + bias)),
    computed on the first ``trees`` trees of its booster (``None``: the trees it predicts with).

    TreeSHAP costs about trees x leaves x depth^2 per row, so capping the trees caps the cost;
    the values are exact for the truncated booster (they add up to its raw prediction)."""
    for attribute in ("booster_", "feature_names_", "categories_"):
        if not hasattr(model, attribute):
            raise TypeError(f"{type(model).__name__} is not a fitted churn or cost model (no {attribute})")
    used = int(getattr(model, "best_iteration_", 0) or model.booster_.current_iteration())
    if trees is not None:
        used = max(1, min(int(trees), used))
    matrix = align(X, model.feature_names_, model.categories_)
    return np.asarray(model.booster_.predict(matrix, num_iteration=used, pred_contrib=True))


class PathTables:
    """Per tree, each leaf's path credit per group of features (the Saabas tables of
    :func:`path_contributions`), for the first ``trees`` trees of a fitted churn or cost model."""

    def __init__(self, model: Any, trees: int | None = None, groups: Any = None) -> None:
        used = int(getattr(model, "best_iteration_", 0) or model.booster_.current_iteration())
        self.trees = used if trees is None else max(1, min(int(trees), used))
        dump = model.booster_.dump_model(num_iteration=self.trees)
        n_features = len(dump["feature_names"])
        group = np.arange(n_features) if groups is None else np.asarray(groups, dtype=int)
        if group.shape != (n_features,):
            raise ValueError(f"groups must give one group per feature ({n_features}), got {group.shape}")
        self.n_groups = int(group.max()) + 1 if n_features else 0
        tables, offsets, self.bias = [], [], 0.0
        offset = 0
        for info in dump["tree_info"][: self.trees]:
            table = _tree_table(info["tree_structure"], int(info.get("num_leaves", 1)), group, self.n_groups)
            self.bias += float(_node_value(info["tree_structure"]))
            tables.append(table)
            offsets.append(offset)
            offset += table.shape[0]
        self.table = np.vstack(tables) if tables else np.zeros((0, self.n_groups))
        self.offsets = np.asarray(offsets, dtype=np.int64)

    @classmethod
    def cached(cls, model: Any, trees: int | None = None, groups: Any = None) -> "PathTables":
        """The tables of ``model`` built once per booster, ``trees`` and ``groups``: batch scoring
        explains batch after batch with the same ones (each build dumps the trees as JSON)."""
        key = (id(model.booster_), trees, None if groups is None else tuple(np.asarray(groups).tolist()))
        built = _BUILT.setdefault(model, {})
        if key not in built:
            built[key] = cls(model, trees, groups)
        return built[key]

    def contributions(self, leaves: np.ndarray) -> np.ndarray:
        """Rows x groups: the summed credit of each row's leaves (``pred_leaf`` output, rows x trees)."""
        from scipy import sparse

        leaves = np.asarray(leaves).reshape(len(leaves), -1)[:, : self.trees]
        n = len(leaves)
        # indices in the width scipy keeps them (int32 while they fit): a wider array is converted, and
        # that conversion took longer than the product itself
        index = np.int32 if max(n * self.trees, self.table.shape[0]) < np.iinfo(np.int32).max else np.int64
        columns = (leaves.astype(index, copy=False) + self.offsets.astype(index)).ravel()
        ones, starts = self._frame(n, index)
        indicator = sparse.csr_matrix((ones, columns, starts), shape=(n, self.table.shape[0]), copy=False)
        return np.asarray(indicator @ self.table)

    def _frame(self, n: int, index: type = np.int64) -> tuple[np.ndarray, np.ndarray]:
        """The indicator matrix's values (a read-only view of one 1.0: no array of n x trees ones to
        allocate) and row starts for ``n`` rows (kept for the next batch of that size)."""
        cached = getattr(self, "_cached", None)
        if cached is None or cached[0] != (n, index):
            cached = self._cached = ((n, index), np.arange(0, n * self.trees + 1, self.trees, dtype=index))
        return np.broadcast_to(np.float64(1.0), (n * self.trees,)), cached[1]


_BUILT: "weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], PathTables]]" = weakref.WeakKeyDictionary()
""":meth:`PathTables.cached`'s tables per fitted model (gone with the model)."""


def _node_value(node: dict[str, Any]) -> float:
    return float(node["leaf_value"] if "leaf_value" in node else node["internal_value"])


def _tree_table(root: dict[str, Any], num_leaves: int, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Leaves x groups: along the path to each leaf, every split credits its feature's group with
    (child value − node value)."""
    table = np.zeros((max(num_leaves, 1), n_groups))
    stack = [(root, np.zeros(n_groups))]
    while stack:
        node, credit = stack.pop()
        if "leaf_value" in node:
            table[int(node.get("leaf_index", 0))] = credit
            continue
        g, value = group[int(node["split_feature"])], _node_value(node)
        for child in (node["left_child"], node["right_child"]):
            step = credit.copy()
            step[g] += _node_value(child) - value
            stack.append((child, step))
    return table


def path_contributions(model: Any, X: pd.DataFrame, trees: int | None = None, groups: Any = None,
                       tables: PathTables | None = None) -> tuple[np.ndarray, float]:
    """(rows x groups contributions, bias) of the first ``trees`` trees by the path decomposition
    (see the module docstring); ``groups`` gives each feature's group (default: one per feature,
    in ``model.feature_names_`` order). ``tables`` reuses :class:`PathTables` built once."""
    tables = tables or PathTables(model, trees, groups)
    matrix = model_array(X, model.feature_names_, model.categories_)
    leaves = model.booster_.predict(matrix, num_iteration=tables.trees, pred_leaf=True)
    return tables.contributions(leaves), tables.bias


LADDER = (25, 50, 100, 200, 400, 800)


def truncation(model: Any, X: pd.DataFrame, min_r2: float = 0.95, ladder: tuple[int, ...] = LADDER,
               max_rows: int = 2000, seed: int = 0) -> tuple[int, float]:
    """(trees, R²): the fewest leading trees (from ``ladder``, else all) whose raw score explains at
    least ``min_r2`` of the variance of the whole booster's raw score, on a seeded sample of at most
    ``max_rows`` rows of ``X``."""
    used = int(getattr(model, "best_iteration_", 0) or model.booster_.current_iteration())
    sample = X.sample(n=max_rows, random_state=seed) if len(X) > max_rows else X
    matrix = align(sample, model.feature_names_, model.categories_)
    full = model.booster_.predict(matrix, num_iteration=used, raw_score=True)
    variance = float(np.var(full))
    for trees in (t for t in ladder if t < used):
        part = model.booster_.predict(matrix, num_iteration=trees, raw_score=True)
        r2 = 1.0 - float(np.var(full - part)) / variance if variance > 0 else 1.0
        if r2 >= min_r2:
            return trees, r2
    return used, 1.0


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
