"""Stacked, leakage-free training sets for the gradient-boosted churn, cost, margin and drain models.

A model "trained as of A" may use nothing at or after A. Its examples come from snapshots
``s < A``: features as of ``s`` (history ``< s``) and labels over the window ``[s, s + W)``
(``W = churn_window_days`` for churn, ``horizon_days`` for cost, margin and drain). Only snapshots whose label
window ends on or before A are used, so the latest one is ``s_last = A − W`` and earlier ones
step back by ``settings.snapshots.spacing_days`` (``settings.snapshots.count`` in total; the
defaults give six monthly snapshots, i.e. the half year before ``A − W``)::

    ─────────────── history ──────────────┬──────── label window W ────────┐
                                         s_k                          s_k + W <= A

Why several snapshots: one snapshot has one row per customer; stacking monthly snapshots gives
the model customers at many different points of their life cycle (just lapsed, just returned,
new) and averages out month-specific noise, so it learns how features *move* into outcomes
rather than one month's idiosyncrasies. Rows of the same customer from different snapshots are
correlated; ``groups`` (the snapshot index) keeps that visible.

A young base (between one and two horizons old at A) has few customers old enough for the latest
horizon-long snapshot ``A − H`` to resemble the customers scored at A: on an 18-month-old base
they are at most six months old. So, unless ``settings.snapshots.young_base_labels`` is off, the
horizon-long tasks (cost, margin, drain and the parts fitted on their sets) measure their labels
over a shorter, later window ``W' = max(H / 2, age − H)`` days (:func:`label_window_days`) and
scale them to the horizon: purchases by the ratio of the horizon's margin to the first ``W'``
days' margin, everything else by the same ratio of cost-to-serve, both measured on the customers
at ``A − H``, the one cohort whose whole horizon is known (:meth:`SnapshotCache.label_scale`; a base younger
than one horizon has no such cohort and keeps the horizon, so its horizon-long tasks are skipped);
``net_value`` stays margin − cost. The features are those of the horizon, so the fitted models
score as before. ``benchmarks/young_base.py`` measures what it buys and where it stops paying.

Validation is time-based: the latest snapshot ``s_last`` is held out (early stopping,
calibration, Optuna's objective) and the others are the training rows. Its label window
``[A − W, A)`` overlaps the later part of the training snapshots' label windows (the gap a fully
purged split would need, ``W`` more days of history, is a whole year for the cost model); that
overlap only flatters the validation score slightly and never lets anything after A in. The
honest out-of-time test is the backtest: train as of A, compare with what happened after A.

Features at a snapshot = ``build_features`` at ``s`` plus three BG/NBD outputs from a
:class:`~customer_value.probabilistic.purchases.PurchaseModel` fitted on ``rfm_summary`` at ``s`` (so the
purchase model never sees the future either): ``bgnbd_p_alive``, ``bgnbd_expected_transactions``
(in the task's window ``W``) and ``bgnbd_p_no_purchase`` (P(no purchase in ``W``)).

Belt and braces: the tables are cut at A first (rows at or after A dropped, ``paid_at`` /
``resolved_at`` at or after A treated as not yet happened), so a training set as of A is
identical whether or not later rows exist.

:func:`feature_matrix` turns a feature frame into the model's input (ids and dates dropped,
string columns as pandas ``category`` with categories fixed at fit time); training and scoring
share it, which keeps LightGBM's categorical encoding identical.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from customer_value.boosted.inputs import feature_matrix, learn_categories, purchase_features
from customer_value.config import Settings
from customer_value.data.tables import Tables
from customer_value.features import build_features, build_targets, rfm_summary
from customer_value.features.history import tables_before
from customer_value.training.tasks import TASKS, task_of
from customer_value.units import to_date



# ---------------------------------------------------------------------------------------------
# dates
# ---------------------------------------------------------------------------------------------


def window_days(task: str, settings: Settings) -> int:
    """The label window ``W`` of a task (its record says which setting)."""
    return task_of(task).window_days(settings)


def base_age_days(as_of: dt.date | str, first_signup: pd.Timestamp) -> int:
    """Calendar days from the first sign-up's day to ``as_of``: how old the base is."""
    return (pd.Timestamp(to_date(as_of)) - pd.Timestamp(first_signup).normalize()).days


def label_window_days(window: int, as_of: dt.date, first_signup: pd.Timestamp | None) -> int:
    """The days a horizon-long task's labels are measured over: ``max(window // 2, age − window)``
    on a base between one and two windows old at ``as_of`` (see the module docstring), else
    ``window``: an older base needs no shorter one, and a base younger than one window has no
    complete window to scale a shorter one by (its horizon-long tasks are skipped as before)."""
    if first_signup is None or pd.isna(first_signup):
        return window
    age = base_age_days(as_of, first_signup)
    if age <= window:
        return window
    return int(min(window, max(window // 2, age - window)))


PURCHASE_LABELS = ("revenue", "margin", "transactions")
"""Target columns scaled by the purchases' ratio; every other amount but ``churned`` and
``net_value`` (recomputed) is scaled by the cost's."""


def scaled_labels(targets: pd.DataFrame, scale: dict[str, float]) -> pd.DataFrame:
    """Targets over a short window scaled to the horizon (``scale``: ``purchases`` and ``cost``
    ratios from :meth:`SnapshotCache.label_scale`); ``net_value`` stays margin − cost."""
    amounts = [c for c in targets.columns
               if c not in ("customer_id", "churned", "net_value") and pd.api.types.is_numeric_dtype(targets[c])]
    out = targets.astype({c: float for c in amounts})
    for column in amounts:
        out[column] = out[column] * scale["purchases" if column in PURCHASE_LABELS else "cost"]
    if "net_value" in out:
        out["net_value"] = out["margin"] - out["cost_to_serve"]
    return out


def snapshot_dates(as_of: dt.date | str, window: int, count: int, spacing_days: int) -> list[dt.date]:
    """Snapshot dates, oldest first: ``A − W − k·spacing`` for ``k = count−1 … 0``; the last
    one is the validation snapshot. Every label window ``[s, s + W)`` ends on or before A."""
    a = to_date(as_of)
    last = a - dt.timedelta(days=window)
    return [last - dt.timedelta(days=k * spacing_days) for k in range(count - 1, -1, -1)]


# ---------------------------------------------------------------------------------------------
# snapshots
# ---------------------------------------------------------------------------------------------

FeatureBuilder = Callable[..., pd.DataFrame]


@dataclass
class Builders:
    """The functions a training set is built from (the real ones by default; tests swap in
    small stand-ins). ``features(tables, as_of, settings, engine=...)``,
    ``targets(tables, as_of, settings, engine=..., horizon_days=...)``,
    ``rfm(tables, as_of, settings)`` and ``purchases(rfm, window, settings)``."""

    features: FeatureBuilder | None = None
    targets: FeatureBuilder | None = None
    rfm: FeatureBuilder | None = None
    purchases: Callable[[pd.DataFrame, int, Settings], pd.DataFrame] | None = None

    def resolved(self) -> "Builders":
        if self.features is None or self.targets is None or self.rfm is None:
            return Builders(
                features=self.features or build_features,
                targets=self.targets or build_targets,
                rfm=self.rfm or rfm_summary,
                purchases=self.purchases or purchase_features,
            )
        return Builders(self.features, self.targets, self.rfm, self.purchases or purchase_features)


@dataclass
class SnapshotCache:
    """Per-date cache of base features and RFM summaries, so that churn and cost training sets
    (and scoring at A) that share a date build its features once. ``timings`` accumulates
    seconds per stage (``features``, ``rfm``, ``bgnbd``, ``targets``)."""

    tables: Tables
    settings: Settings
    engine: Any = "duckdb"
    builders: Builders = field(default_factory=Builders)
    timings: dict[str, float] = field(default_factory=dict)
    _features: dict[dt.date, pd.DataFrame] = field(default_factory=dict, repr=False)
    _rfm: dict[dt.date, pd.DataFrame] = field(default_factory=dict, repr=False)
    _scales: dict[tuple[dt.date, int, int], dict[str, float]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.builders = self.builders.resolved()

    def _timed(self, stage: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return fn()
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start

    def base_features(self, as_of: dt.date) -> pd.DataFrame:
        if as_of not in self._features:
            self._features[as_of] = self._timed(
                "features", lambda: self.builders.features(self.tables, as_of, self.settings, engine=self.engine)
            )
        return self._features[as_of]

    def rfm(self, as_of: dt.date) -> pd.DataFrame:
        if as_of not in self._rfm:
            self._rfm[as_of] = self._timed("rfm", lambda: self.builders.rfm(self.tables, as_of, self.settings))
        return self._rfm[as_of]

    def features(self, as_of: dt.date | str, window: int) -> pd.DataFrame:
        """Base features at ``as_of`` with the BG/NBD columns for ``window`` joined on."""
        as_of = to_date(as_of)
        base = self.base_features(as_of)
        rfm = self.rfm(as_of)
        bg = self._timed("bgnbd", lambda: self.builders.purchases(rfm, window, self.settings))
        out = base.merge(bg, left_on="customer_id", right_index=True, how="left", validate="one_to_one")
        return out

    def targets(self, as_of: dt.date, window: int) -> pd.DataFrame:
        return self._timed(
            "targets",
            lambda: self.builders.targets(self.tables, as_of, self.settings, engine=self.engine, horizon_days=window),
        )


    def label_scale(self, as_of: dt.date, horizon: int, window: int) -> dict[str, float]:
        """How much more the horizon holds than its first ``window`` days, for the purchases
        (margin) and the cost (cost-to-serve): total over the horizon / total over the window of
        the customers at ``as_of − horizon`` (the latest cohort whose horizon ends by ``as_of``),
        within ``[1, horizon / window]``; the plain ``horizon / window`` where that cohort is
        empty or bought or cost nothing."""
        key = (as_of, horizon, window)
        if key not in self._scales:
            linear = horizon / window
            anchor = as_of - dt.timedelta(days=horizon)
            earliest = self.tables.customers["signup_at"].min()
            scale = {"purchases": linear, "cost": linear}
            if pd.notna(earliest) and pd.Timestamp(anchor) > earliest:
                full, part = self.targets(anchor, horizon), self.targets(anchor, window)
                for side, column in (("purchases", "margin"), ("cost", "cost_to_serve")):
                    whole, start = float(full[column].sum()), float(part[column].sum())
                    if whole > 0 and start > 0:
                        scale[side] = float(np.clip(whole / start, 1.0, linear))
            self._scales[key] = scale
        return self._scales[key]


def snapshot_features(
    tables: Tables,
    as_of: dt.date | str,
    settings: Settings,
    task: str,
    engine: Any = "duckdb",
    cache: SnapshotCache | None = None,
) -> pd.DataFrame:
    """The raw feature frame a model of ``task`` scores at ``as_of`` (what training used at each
    snapshot): ``build_features`` + the BG/NBD columns for the task's window. Feed it to
    ``model.predict...`` (which applies :func:`feature_matrix` with the fitted categories)."""
    cache = cache or SnapshotCache(tables_before(tables, as_of), settings, engine)
    return cache.features(to_date(as_of), window_days(task, settings))


@dataclass
class TrainingSet:
    """A stacked training set for one task. ``X_*`` are feature matrices (see
    :func:`feature_matrix`; categories learned on the training rows), ``y_*`` numpy labels,
    ``groups_*`` the snapshot index of each row (0 = oldest), ``ids_*`` the customer ids and
    ``targets_*`` every target column (e.g. the cost components) aligned with the rows."""

    task: str
    as_of: dt.date
    window_days: int
    snapshot_dates: tuple[dt.date, ...]
    X_train: pd.DataFrame
    y_train: np.ndarray
    X_valid: pd.DataFrame
    y_valid: np.ndarray
    groups_train: np.ndarray
    groups_valid: np.ndarray
    ids_train: np.ndarray
    ids_valid: np.ndarray
    targets_train: pd.DataFrame
    targets_valid: pd.DataFrame
    categories: dict[str, list[str]]
    timings: dict[str, float]
    label_window_days: int | None = None
    """The days the labels were measured over when shorter than ``window_days`` (a young base)."""
    label_scale: dict[str, float] | None = None
    """Then the ratios they were scaled to the window by (:meth:`SnapshotCache.label_scale`)."""

    @property
    def valid_date(self) -> dt.date:
        return self.snapshot_dates[-1]

    def summary(self) -> str:
        return (
            f"{self.task}: {len(self.snapshot_dates) - 1} training snapshot(s) "
            f"{self.snapshot_dates[0]}..{self.snapshot_dates[-2] if len(self.snapshot_dates) > 1 else '-'} "
            f"({len(self.X_train):,} rows), validation {self.valid_date} ({len(self.X_valid):,} rows), "
            f"{self.X_train.shape[1]} features, window {self.window_days} d"
            + ("" if self.label_window_days is None else
               f" (a young base: labels over {self.label_window_days} d, scaled ×"
               f"{self.label_scale['purchases']:.2f} purchases, ×{self.label_scale['cost']:.2f} cost)")
        )


def build_training_set(
    tables: Tables,
    as_of: dt.date | str,
    settings: Settings,
    task: str = "churn",
    engine: Any = "duckdb",
    cache: SnapshotCache | None = None,
    builders: Builders | None = None,
) -> TrainingSet:
    """Stack ``settings.snapshots.count`` snapshots before ``as_of`` for ``task`` (see the module
    docstring). With a single snapshot there are no training rows left: ``count >= 2`` needed.

    Pass one ``cache`` (built on ``tables_before(tables, as_of)``) to several calls to share
    feature builds; otherwise the tables are cut at ``as_of`` here."""
    record = task_of(task)
    if settings.snapshots.count < 2:
        raise ValueError("settings.snapshots.count must be at least 2 (training + validation snapshot)")
    a = to_date(as_of)
    w = window_days(task, settings)
    if cache is None:
        cache = SnapshotCache(tables_before(tables, a), settings, engine, builders or Builders())
    earliest = cache.tables.customers["signup_at"].min()
    young = record.window == "horizon_days" and settings.snapshots.young_base_labels
    label_window = label_window_days(w, a, earliest) if young else w
    scale = cache.label_scale(a, w, label_window) if label_window != w else None
    dates = snapshot_dates(a, label_window, settings.snapshots.count, settings.snapshots.spacing_days)
    if pd.notna(earliest) and pd.Timestamp(dates[0]) <= earliest:
        raise ValueError(
            f"the oldest {task} snapshot {dates[0]} is not after the first signup ({earliest.date()}): "
            "fewer or closer snapshots, or a later as_of, are needed"
        )
    label = record.label
    before = dict(cache.timings)
    frames, targets = [], []
    for k, s in enumerate(dates):
        assert s + dt.timedelta(days=label_window) <= a, "label window crosses as_of"
        f = cache.features(s, w)
        t = cache.targets(s, label_window)
        if scale is not None:
            t = scaled_labels(t, scale)
        merged = f[["customer_id"]].merge(t, on="customer_id", how="left", validate="one_to_one")
        if merged[label].isna().any():
            raise ValueError(f"targets at {s} miss {int(merged[label].isna().sum())} customer(s) of the features")
        f = f.assign(snapshot=k)
        frames.append(f)
        targets.append(merged.assign(snapshot=k))
    train_f = pd.concat(frames[:-1], ignore_index=True)
    valid_f = frames[-1].reset_index(drop=True)
    train_t = pd.concat(targets[:-1], ignore_index=True)
    valid_t = targets[-1].reset_index(drop=True)
    categories = learn_categories(train_f)
    timings = {k: v - before.get(k, 0.0) for k, v in cache.timings.items() if v - before.get(k, 0.0) > 0}
    return TrainingSet(
        task=task,
        as_of=a,
        window_days=w,
        snapshot_dates=tuple(dates),
        X_train=feature_matrix(train_f, categories),
        y_train=record.labels(train_t),
        X_valid=feature_matrix(valid_f, categories),
        y_valid=record.labels(valid_t),
        groups_train=train_f["snapshot"].to_numpy(),
        groups_valid=valid_f["snapshot"].to_numpy(),
        ids_train=train_f["customer_id"].to_numpy(),
        ids_valid=valid_f["customer_id"].to_numpy(),
        targets_train=train_t,
        targets_valid=valid_t,
        categories=categories,
        timings=timings,
        label_window_days=None if scale is None else label_window,
        label_scale=scale,
    )


def build_training_sets(
    tables: Tables,
    as_of: dt.date | str,
    settings: Settings,
    tasks: Iterable[str] = tuple(TASKS),
    engine: Any = "duckdb",
    builders: Builders | None = None,
) -> tuple[dict[str, TrainingSet], SnapshotCache]:
    """One training set per task, sharing one snapshot cache (returned too, e.g. to build the
    scoring features at ``as_of`` from the same cut tables)."""
    cache = SnapshotCache(tables_before(tables, as_of), settings, engine, builders or Builders())
    sets = {t: build_training_set(tables, as_of, settings, t, engine, cache=cache) for t in tasks}
    return sets, cache
