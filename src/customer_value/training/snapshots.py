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

    @property
    def valid_date(self) -> dt.date:
        return self.snapshot_dates[-1]

    def summary(self) -> str:
        return (
            f"{self.task}: {len(self.snapshot_dates) - 1} training snapshot(s) "
            f"{self.snapshot_dates[0]}..{self.snapshot_dates[-2] if len(self.snapshot_dates) > 1 else '-'} "
            f"({len(self.X_train):,} rows), validation {self.valid_date} ({len(self.X_valid):,} rows), "
            f"{self.X_train.shape[1]} features, window {self.window_days} d"
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
    dates = snapshot_dates(a, w, settings.snapshots.count, settings.snapshots.spacing_days)
    earliest = cache.tables.customers["signup_at"].min()
    if pd.notna(earliest) and pd.Timestamp(dates[0]) <= earliest:
        raise ValueError(
            f"the oldest {task} snapshot {dates[0]} is not after the first signup ({earliest.date()}): "
            "fewer or closer snapshots, or a later as_of, are needed"
        )
    label = record.label
    before = dict(cache.timings)
    frames, targets = [], []
    for k, s in enumerate(dates):
        assert s + dt.timedelta(days=w) <= a, "label window crosses as_of"
        f = cache.features(s, w)
        t = cache.targets(s, w)
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
