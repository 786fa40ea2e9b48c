"""What a boosted model sees, at fit time and at score time alike.

:func:`feature_matrix` turns a feature frame into the model's input: ids and dates dropped,
booleans as 0/1, string columns as pandas ``category`` with categories fixed at fit time, so
LightGBM's categorical encoding is identical in training and scoring. At score time
:class:`ModelInput` converts a frame to LightGBM's float matrix once for every model that reads it
(:func:`model_array`). :func:`purchase_features`
adds the BG/NBD outputs every boosted model is trained with, over the model's own window.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from customer_value.config import Settings
from customer_value.probabilistic.purchases import PurchaseModel, bgnbd_prob_no_purchase
from customer_value.units import in_units

ID_COLUMNS: tuple[str, ...] = ("customer_id", "as_of", "snapshot", "snapshot_date")
PURCHASE_COLUMNS: tuple[str, ...] = ("bgnbd_p_alive", "bgnbd_expected_transactions", "bgnbd_p_no_purchase")


def _is_categorical(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(series.dtype) or (
        series.dtype == object
    )


def learn_categories(features: pd.DataFrame) -> dict[str, list[str]]:
    """Sorted distinct non-null values of every string/categorical feature column."""
    out: dict[str, list[str]] = {}
    for column in features.columns:
        if column in ID_COLUMNS:
            continue
        s = features[column]
        if _is_categorical(s):
            values = s.dropna().astype(str).unique().tolist()
            out[column] = sorted(values)
    return out


def feature_matrix(features: pd.DataFrame, categories: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """The model input for a feature frame: ids (``customer_id``, ``as_of``, ...) and datetime
    columns dropped, booleans as 0/1, string columns as pandas ``category`` with the FIXED
    categories of ``categories`` (unknown values become NaN). With ``categories=None`` they are
    learned from ``features`` (fit time; read them back with :func:`categories_of`).

    A column in ``categories`` that is missing from ``features`` is added as all-NaN, so a
    scoring frame always has the categorical columns the model was trained with."""
    if categories is None:
        categories = learn_categories(features)
    keep = [
        c
        for c in features.columns
        if c not in ID_COLUMNS and not pd.api.types.is_datetime64_any_dtype(features[c].dtype)
    ]
    out = {column: model_column(column, features[column], categories) for column in keep}
    for column, cats in categories.items():
        if column not in out:
            out[column] = _all_missing(cats, features.index)
    return pd.DataFrame(out, index=features.index)


def _all_missing(categories: list[str], index: pd.Index) -> pd.Series:
    """A categorical column the frame lacks: every row missing, with the fitted categories."""
    return pd.Series(pd.Categorical([None] * len(index), dtype=pd.CategoricalDtype(list(categories))), index=index)


def model_column(column: str, s: pd.Series, categories: dict[str, list[str]]) -> pd.Series:
    """One feature column as a model reads it (see :func:`feature_matrix`)."""
    if column in categories:
        cats = [str(c) for c in categories[column]]
        if isinstance(s.dtype, pd.CategoricalDtype) and list(s.cat.categories) == cats:
            return s
        if not pd.api.types.is_string_dtype(s.dtype) or isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype("str")  # missing stays missing
        s = s.where(s.isin(cats))  # unknown -> NaN
        return pd.Series(pd.Categorical(s, dtype=pd.CategoricalDtype(cats)), index=s.index)
    if _is_categorical(s):
        raise ValueError(
            f"feature column {column!r} holds strings but has no fitted categories; "
            "pass the categories learned at fit time"
        )
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("float64")
    return pd.to_numeric(s, errors="raise").astype("float64")


def categories_of(X: pd.DataFrame) -> dict[str, list[str]]:
    """The fixed categories of a feature matrix's ``category`` columns."""
    return {c: list(X[c].cat.categories) for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)}


def align(X: pd.DataFrame, feature_names: Iterable[str], categories: dict[str, list[str]]) -> pd.DataFrame:
    """``X`` (a raw feature frame or a feature matrix) in a fitted model's column order and
    categories; a missing column is an error that names it."""
    names = list(feature_names)
    matrix = feature_matrix(X, categories)
    missing = [c for c in names if c not in matrix.columns]
    if missing:
        raise ValueError(f"feature column(s) missing at prediction time: {missing}")
    return matrix[names]


def as_array(matrix: pd.DataFrame) -> np.ndarray:
    """A feature matrix as the float array LightGBM makes of a pandas frame (category codes, a
    missing category as NaN, everything float64), row-major: what LightGBM and the compiled trees
    (:mod:`~customer_value.boosted.compiled`) both read without a copy."""
    return _stack(len(matrix), [matrix[c] for c in matrix.columns])


def _stack(rows: int, columns: list[pd.Series]) -> np.ndarray:
    values = []
    for s in columns:
        if isinstance(s.dtype, pd.CategoricalDtype):
            codes = s.cat.codes.to_numpy()
            values.append(np.where(codes < 0, np.nan, codes))
        else:
            values.append(s.to_numpy(dtype="float64", na_value=np.nan))
    # filled in blocks of rows that stay in cache: a whole column at a time strides through the
    # row-major array (0.7 s at 250,000 x 121 against 0.2 s)
    out = np.empty((rows, len(values)), dtype="float64")
    for start in range(0, rows, STACK_ROWS):
        block = out[start:start + STACK_ROWS]
        for j, v in enumerate(values):
            block[:, j] = v[start:start + STACK_ROWS]
    return out


STACK_ROWS = 8192


def feature_array(X: pd.DataFrame, feature_names: Iterable[str], categories: dict[str, list[str]]) -> np.ndarray:
    """``as_array(align(X, feature_names, categories))`` without the aligned frame in between: only
    the model's columns are converted, each straight into the array (at a million customers the
    frame cost more than a third of LightGBM's own prediction time)."""
    names = list(feature_names)
    missing = [c for c in names if c not in X.columns and c not in categories]
    if missing:
        raise ValueError(f"feature column(s) missing at prediction time: {missing}")
    columns = [model_column(c, X[c], categories) if c in X.columns else _all_missing(categories[c], X.index)
               for c in names]
    return _stack(len(X), columns)


class ModelInput(pd.DataFrame):
    """A frame of scoring rows that several fitted models read (cost, drain and the nine activity
    volumes all read the horizon input): each distinct column order and set of categories is
    aligned and converted to LightGBM's matrix once (:func:`model_array`), then shared. It is a
    DataFrame to everything else; a frame derived from it is a plain one (its own conversion).
    Holding it costs one float matrix per distinct model input, as long as one batch's predictions."""

    _metadata = ["_arrays"]

    @property
    def _constructor(self) -> type:
        return pd.DataFrame

    @classmethod
    def of(cls, features: pd.DataFrame) -> "ModelInput":
        shared = cls(features)
        shared._arrays = {}
        return shared

    def array(self, feature_names: Iterable[str], categories: dict[str, list[str]]) -> np.ndarray:
        names = tuple(feature_names)
        key = (names, tuple((k, tuple(v)) for k, v in sorted(categories.items())))
        if key not in self._arrays:
            self._arrays[key] = feature_array(self, names, categories)
        return self._arrays[key]


def model_array(X: "pd.DataFrame | ModelInput", feature_names: Iterable[str],
                categories: dict[str, list[str]]) -> np.ndarray:
    """``X`` (a raw feature frame, a feature matrix or a :class:`ModelInput`) as a fitted model's
    LightGBM input: its column order and categories, as the float matrix."""
    if isinstance(X, ModelInput):
        return X.array(feature_names, categories)
    return feature_array(X, feature_names, categories)


def has_categories(X: pd.DataFrame) -> bool:
    """Whether ``X`` is already a feature matrix with fixed categories."""
    return any(isinstance(X[c].dtype, pd.CategoricalDtype) for c in X.columns)


def purchase_features(
    rfm: pd.DataFrame, window: int, settings: Settings, purchase_model: Any | None = None
) -> pd.DataFrame:
    """BG/NBD outputs per customer (indexed by ``customer_id``): ``bgnbd_p_alive``,
    ``bgnbd_expected_transactions`` over ``window`` days and ``bgnbd_p_no_purchase``
    (P(no purchase in ``window`` days), from the fitted parameters: see
    :func:`customer_value.probabilistic.purchases.bgnbd_prob_no_purchase`).

    ``purchase_model`` is a BG/NBD PurchaseModel fitted on this ``rfm`` (e.g. the one a value
    model already fitted at the same date); without one, or when it is another model family
    (MBG/NBD, Pareto/NBD: the training snapshots always use BG/NBD, so the features must too),
    a BG/NBD is fitted on ``rfm``."""
    if purchase_model is None or getattr(purchase_model, "model", "bgnbd") != "bgnbd":
        purchase_model = PurchaseModel.from_settings(settings, model="bgnbd").fit(rfm)
    t = in_units(window, settings.time_unit)
    pred = purchase_model.predict(rfm, t, discount_rate=0.0)
    p_alive = np.asarray(pred["p_alive"], dtype=float)
    out = pd.DataFrame(
        {
            "bgnbd_p_alive": p_alive,
            "bgnbd_expected_transactions": np.asarray(pred["expected_transactions"], dtype=float),
        },
        index=rfm.index,
    )
    params = purchase_model.params_
    out["bgnbd_p_no_purchase"] = bgnbd_prob_no_purchase(
        p_alive, rfm["frequency"], rfm["T"], params["r"], params["alpha"], t
    )
    out.index.name = "customer_id"
    return out
