"""Fitting the whole value model as of a date, purely: parts in order, each judged on its own
validation snapshot, combined into one :class:`~customer_value.valuation.value.ValueModel`.

Nothing here opens a run, logs or writes. What happens along the way is told to a
:class:`FitObserver` (the stage being worked on, each part as it starts and ends, each tuning
trial); the training job's observer turns that into progress lines and MLflow child runs, the
backtest's into progress lines only. The result holds everything fitted and measured.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from customer_value import metrics as ev
from customer_value.boosted.activities import ActivityVolumeModel
from customer_value.boosted.net_value import NetValueModel, net_forecast, parts_money, top_tier_threshold, with_parts
from customer_value.config import Settings
from customer_value.data.tables import Tables
from customer_value.features import monthly_outcomes
from customer_value.features.costing import forecast_volume_columns
from customer_value.features.history import tables_before
from customer_value.errors import CannotFitError, InputError
from customer_value.probabilistic.fitting import FitError
from customer_value.probabilistic.purchases import PurchaseModel
from customer_value.probabilistic.spend import SpendModel
from customer_value.training.snapshots import Builders, SnapshotCache, TrainingSet, build_training_set
from customer_value.training.tasks import TASKS, Evaluation
from customer_value.training.tuning import TrialReport, TuningResult, tune
from customer_value.units import to_date
from customer_value.valuation.intervals import IntervalModel, predicted_outcomes
from customer_value.valuation.cashflows import MonthlyProfile
from customer_value.valuation.activity_costs import activity_volumes, combined_forecast, level_with_total, price, total_cost
from customer_value.valuation.referrals import fit_referral_model, use_referral_model
from customer_value.valuation.value import BoostedPredictions, ValueModel, rfm_of


@dataclass
class FittedPart:
    """One fitted part: the model and, for a boosted part, its search, training set, validation
    prediction and evaluation (``{source: {metric: value}}``)."""

    name: str
    model: Any
    tuning: TuningResult | None = None
    training_set: TrainingSet | None = None
    valid_prediction: Any = None
    evaluation: Evaluation = field(default_factory=dict)
    seconds: float = 0.0


class FitObserver:
    """Hears what a fit does. This one passes progress lines to ``say`` (if any) and ignores the
    rest; subclass it to hear more (the training job's observer opens MLflow child runs)."""

    def __init__(self, say: Callable[[str], None] | None = None) -> None:
        self.say = say

    def stage(self, message: str) -> None:
        """A line of progress."""
        if self.say is not None:
            self.say(message)

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        """Around the fitting of one part (trials happen inside)."""
        yield

    def trial(self, report: TrialReport) -> None:
        """One tuning trial ended."""

    def fitted(self, part: FittedPart) -> None:
        """One part is fitted and evaluated (still inside :meth:`part`)."""


@dataclass
class FittedValueModel:
    """A fitted value model and what came with it (features at the date, the parts, skipped parts)."""

    model: ValueModel
    features: pd.DataFrame
    as_of: dt.date
    skipped: dict[str, str] = field(default_factory=dict)
    parts: dict[str, FittedPart] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def evaluation(self) -> dict[str, Evaluation]:
        """Each boosted part's validation evaluation, by task."""
        return {name: part.evaluation for name, part in self.parts.items() if part.evaluation}


def fit_value_model(tables: Tables, as_of: dt.date | str, settings: Settings, engine: Any = "duckdb",
                    observer: FitObserver | None = None, study_storage: str | Path | None = None) -> FittedValueModel:
    """Fit purchases, spend and every boosted task as of ``as_of`` on tables cut there; combine them.

    Parts that cannot be trained (too little history for the snapshots, a single class, no cost
    at all, a part they need missing) are skipped with the reason recorded in ``skipped``; the
    value model then falls back as its docstring says.
    """
    observer = observer or FitObserver()
    day = to_date(as_of)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    cut = tables_before(tables, day)
    cache = SnapshotCache(cut, settings, engine, Builders())
    observer.stage(f"features as of {day}")
    features = cache.base_features(day)
    timings["features"] = time.perf_counter() - start
    if features.empty:
        raise InputError(f"no customer signed up before {day}: nothing to fit as of that date")
    rfm = rfm_of(features)

    observer.stage("purchases (BG/NBD) and spend (Gamma-Gamma)")
    parts: dict[str, FittedPart] = {}
    skipped: dict[str, str] = {}
    t0 = time.perf_counter()
    with observer.part("purchases"):  # without it there is no value: its error stops the fit
        try:
            purchases = PurchaseModel.from_settings(settings).fit(rfm)
        except FitError as exc:
            repeat = int((rfm["frequency"] > 0).sum())
            raise CannotFitError(f"{str(exc).splitlines()[0]} ({len(rfm):,} customer(s) as of {day}, "
                                 f"{repeat:,} with a repeat purchase): more customers with repeat purchases, "
                                 "or a larger penalizer, are needed") from exc
        parts["purchases"] = FittedPart("purchases", purchases)
        observer.fitted(parts["purchases"])
    with observer.part("spend"):
        try:
            spend = SpendModel.from_settings(settings).fit(rfm)
        except FitError as exc:
            spend = SpendModel.pooled(rfm)
            skipped["spend"] = (f"the Gamma-Gamma could not be fitted ({str(exc).splitlines()[0]}); "
                                f"every customer gets the {spend.fit_path_}")
            observer.stage(f"spend: {skipped['spend']}")
        parts["spend"] = FittedPart("spend", spend)
        observer.fitted(parts["spend"])
    timings["probabilistic"] = time.perf_counter() - t0

    fitted: dict[str, Any] = {}
    for task in TASKS.values():
        t0 = time.perf_counter()
        observer.stage(f"{task.name}: stacking snapshots")
        try:
            missing = [r for r in task.requires if r not in fitted]
            if missing:
                raise ValueError(f"the {task.title} model needs the {', '.join(TASKS[r].title for r in missing)} model "
                                 f"(skipped: {'; '.join(skipped.get(r, 'not fitted') for r in missing)})")
            training_set = build_training_set(cut, day, settings, task.name, engine, cache=cache)
            task.check_labels(training_set.y_train)
            training_set = task.prepare(training_set, cache, fitted, settings)
        except (ValueError, CannotFitError) as exc:  # e.g. a snapshot's BG/NBD cannot be fitted
            skipped[task.name] = str(exc).splitlines()[0]
            observer.stage(f"{task.name}: skipped ({exc})")
            continue
        observer.stage(f"{training_set.summary()}; tuning {settings.trials} trial(s)")
        with observer.part(task.name):
            storage = None if study_storage is None else Path(study_storage) / f"{task.name}-{day}.db"
            result = tune(training_set, settings, storage=storage, on_trial=observer.trial,
                          final_model_kwargs=task.final_fit(settings))
            if result.fallback:
                observer.stage(f"{task.name}: {result.fallback}")
            if result.learned_nothing:  # a constant forecast ranks nobody: the part's fallback does better
                skipped[task.name] = (f"learned nothing from {len(training_set.X_train):,} training rows "
                                      "(one forecast for every validation row)")
                observer.stage(f"{task.name}: skipped ({skipped[task.name]})")
                continue
            fitted[task.name] = result.model
            prediction = result.valid_prediction
            parts[task.name] = FittedPart(task.name, result.model, result, training_set, prediction,
                                          task.evaluate(result.model, training_set, settings, prediction),
                                          time.perf_counter() - t0)
            observer.fitted(parts[task.name])
        timings[task.name] = time.perf_counter() - t0

    activity_model, cost_forecast = None, "total"
    if "cost" in parts:
        observer.stage("activities: one volume forecast per activity, priced")
        part = _combination_part(
            "activities", observer, timings, lambda: fit_activity_model(parts["cost"], settings, observer),
            lambda model: evaluate_activity_pricing(model, parts["cost"], settings),
            lambda e: (f"activities: cost forecast from {choose_cost_forecast(e, settings)} (validation Spearman "
                       f"{e['valid']['spearman']:.3f} priced activities, {e['total_model']['spearman']:.3f} total "
                       f"model, {e['blend']['spearman']:.3f} their mean)"))
        parts["activities"] = part
        activity_model, cost_forecast = part.model, choose_cost_forecast(part.evaluation, settings)

    net_model, value_forecast, net_weight, net_top_tier = None, "parts", 1.0, 0.0
    if "margin" in parts and "cost" in parts:
        observer.stage("net value: margin − cost as a target of its own")
        part = _combination_part(
            "net_value", observer, timings, lambda: fit_net_model(parts["margin"], settings),
            lambda model: evaluate_net_value(model, parts),
            lambda e: (f"net value: from {'the net value model' if choose_value_forecast(e, settings) == 'net' else 'the parts'} "
                       f"(validation Spearman {e['valid']['spearman']:.3f} net value model, {e['parts']['spearman']:.3f} "
                       f"margin − cost, {e['blend']['spearman']:.3f} at weight {e['blend']['weight']:g} on the net model, "
                       f"the top {e['blend'].get('top_tier', 0.0):.0%} on margin − cost)"))
        parts["net_value"] = part
        net_model, value_forecast = part.model, choose_value_forecast(part.evaluation, settings)
        net_weight = float(part.evaluation["blend"]["weight"])
        net_top_tier = float(part.evaluation["blend"].get("top_tier", 0.0)) if value_forecast == "net" else 0.0

    model = ValueModel(settings, parts["purchases"].model, parts["spend"].model, fitted.get("churn"),
                       fitted.get("cost"), fitted.get("margin"), churn_adjustment=settings.churn_adjustment,
                       skipped=skipped, drain_model=fitted.get("drain"), activity_model=activity_model,
                       cost_forecast=cost_forecast, net_model=net_model, value_forecast=value_forecast,
                       net_weight=net_weight)
    # the boosted models score the customers now and one horizon earlier once; the combination,
    # the referral model and the intervals all reuse those predictions
    boosted_now = model.boosted(features)
    model.fit(features, boosted_now)
    if net_top_tier > 0:  # the top tier's share of the base the model will score (see boosted/net_value.py)
        model.net_top_threshold = top_tier_threshold(model.parts_difference(features, boosted_now), net_top_tier)
        model.fit(features, boosted_now)  # the segment cut points of the tiered values
    t0 = time.perf_counter()
    observer.stage("referrals: who refers, learned on the past window")
    valid = day - dt.timedelta(days=settings.horizon_days)
    past = cache.base_features(valid)
    boosted_past = model.boosted(past) if len(past) else None
    scored_now = model.predict(features, day, boosted=boosted_now)  # the base it will score (referrals, intervals)
    use_referral_model(model, fit_referral_model(
        model, cut, day, features, past, settings.horizon_days,
        scored_then=model._parts(past, settings.horizon_days, boosted_past) if len(past) else None,
        alive=scored_now["adjusted_p_alive"].to_numpy()))
    timings["referrals"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    observer.stage("intervals: calibrating p10/p90 on the validation year")
    # the model's rows a horizon before the fit date, beside which the intervals and the monthly
    # profile are calibrated, when enough customers had signed up by then (else neither has a year)
    scored_then = None
    try:
        if len(past) >= MIN_CALIBRATION_CUSTOMERS:
            scored_then = model.predict(past, valid, boosted=boosted_past)
        model.interval_model = fit_intervals(model, cache, day, settings, boosted_past, scored_now, scored_then)
        if model.interval_model.calibration_days_ is not None:
            observer.stage(f"intervals: too few customers {settings.horizon_days} days before {day}; calibrated on "
                           f"the {model.interval_model.calibration_days_} days before it instead (approximate)")
    except (ValueError, CannotFitError) as exc:
        skipped["intervals"] = str(exc).splitlines()[0]
        observer.stage(f"intervals: skipped ({skipped['intervals']})")
    timings["intervals"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if scored_then is not None and settings.horizon_days >= MIN_PROFILE_DAYS:
        observer.stage("cash flows: how margin and cost fall through a year, learned on the validation year")
        model.monthly_profile = fit_monthly_profile(model, cut, past, scored_then, valid, settings, engine)
        trend = model.monthly_profile.trend_
        observer.stage(f"cash flows: a year on, margin runs {_pace(trend['margin'])} and cost {_pace(trend['cost'])} "
                       "the purchases' pace")
    elif scored_then is None:
        observer.stage(f"cash flows: follow the purchases (too few customers {settings.horizon_days} days before "
                       f"{day} to learn more)")
    else:
        observer.stage(f"cash flows: follow the purchases (a {settings.horizon_days}-day horizon is shorter than a "
                       "year: its trend would mistake the season for one)")
    timings["cash_flows"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - start
    return FittedValueModel(model, features, day, skipped, parts, timings)


def _combination_part(name: str, observer: FitObserver, timings: dict[str, float], fit: Callable[[], Any],
                      evaluate: Callable[[Any], Evaluation], describe: Callable[[Evaluation], str]) -> FittedPart:
    """A part fitted from the boosted parts' snapshots with no search of its own (activity volumes,
    net value): fitted, judged on the validation snapshot, told to the observer, timed."""
    t0 = time.perf_counter()
    with observer.part(name):
        model = fit()
        part = FittedPart(name, model, evaluation=evaluate(model), seconds=time.perf_counter() - t0)
        observer.stage(describe(part.evaluation))
        observer.fitted(part)
    timings[name] = time.perf_counter() - t0
    return part


CLEARLY_BETTER = 0.005
"""How much better (validation Spearman) one cost forecast alone must rank than the blend to be kept."""


CALIBRATION_WINDOWS = (1.0, 0.75, 0.5, 0.25)
"""Shares of the horizon the intervals may be calibrated over, longest first (see :func:`fit_intervals`)."""
MIN_CALIBRATION_CUSTOMERS = 500
"""Customers a calibration window must hold before a shorter one is tried instead (five cells' worth)."""


def calibration_window(cache: SnapshotCache, day: dt.date, horizon_days: int) -> tuple[int, pd.DataFrame]:
    """The days the intervals are calibrated over and the customers as of ``day`` minus that many:
    the full horizon when at least :data:`MIN_CALIBRATION_CUSTOMERS` had signed up a horizon before
    ``day``, else the longest of :data:`CALIBRATION_WINDOWS` that holds as many (a young history),
    else the longest that holds anyone."""
    tried = []
    for share in CALIBRATION_WINDOWS:
        window = max(1, round(horizon_days * share))
        features = cache.base_features(day - dt.timedelta(days=window))
        if len(features) >= MIN_CALIBRATION_CUSTOMERS:
            return window, features
        tried.append((window, features))
    for window, features in tried:
        if len(features):
            return window, features
    raise ValueError(f"no customer signed up before {day - dt.timedelta(days=tried[-1][0])}, "
                     f"{tried[-1][0]} days before {day}: nothing to calibrate on")


def fit_intervals(model: ValueModel, cache: SnapshotCache, day: dt.date, settings: Settings,
                  boosted: BoostedPredictions | None = None, scored_now: pd.DataFrame | None = None,
                  scored_then: pd.DataFrame | None = None) -> IntervalModel:
    """Calibrated p10/p90 (:mod:`customer_value.valuation.intervals`): the fitted value model scores
    the customers as of ``day − horizon`` (the boosted models' validation snapshot, unseen by their
    training; ``boosted``: its predictions there, if already made) and is compared with what they
    did over the next ``horizon`` days (``scored_then``: those rows, if already made).
    ``scored_now`` (the model's rows for the customers as of ``day``) is the population it will
    score: its mix sets the overall level.

    A young history has no such year (too few customers had signed up a horizon before ``day``).
    Then the model forecasts a shorter window (:func:`calibration_window`) for the customers at its
    start and is compared with what they did over it, and every cell gets the 80% level of its own
    (the overall level assumes the scored horizon's share of zeros, which a shorter window exceeds).
    ``calibration_days_`` records the window: such intervals are approximate (``benchmarks/intervals.py --young``)."""
    window, features = calibration_window(cache, day, settings.horizon_days)
    full = window == settings.horizon_days
    valid = day - dt.timedelta(days=window)
    at_valid = (scored_then if full and scored_then is not None else
                model.predict(features, valid, boosted=boosted if full else None, horizon_days=window))
    realised = at_valid[["customer_id"]].merge(cache.targets(valid, window), on="customer_id",
                                               how="left", validate="one_to_one")
    target = scored_now if scored_now is not None and len(scored_now) else None
    return IntervalModel(level="overall" if full else "cell").fit(
        predicted_outcomes(at_valid), realised, at_valid,
        target=predicted_outcomes(target) if target is not None else None, target_context=target,
        calibration_days=None if full else window)


MIN_PROFILE_DAYS = 365
"""The shortest horizon the monthly profile is learned for. Over a shorter window a trend mistakes
the season for a drift: on CDNOW, fitted at the end of 1997 for half a year, it learned the rise
into Christmas on the half-year before and doubled the error of the spring's monthly margin
(shape error 0.19 against 0.12 for the purchases' shape alone)."""


def fit_monthly_profile(model: ValueModel, tables: Tables, features: pd.DataFrame, scored: pd.DataFrame,
                        day: dt.date, settings: Settings, engine: Any = "duckdb") -> MonthlyProfile:
    """How margin and cost fall through the horizon against the purchases
    (:class:`~customer_value.valuation.cashflows.MonthlyProfile`): the model's ``scored`` rows as
    of ``day`` (one horizon before the fit date, ``features`` in the same order) spread by the
    purchases alone, beside what those customers earned and cost in each month after ``day``
    (``tables`` must reach a horizon past ``day``)."""
    forecast = model.cashflows(features, scored, day, tilted=False)
    realised = monthly_outcomes(tables, day, settings, scored["customer_id"], engine=engine)
    return MonthlyProfile().fit(forecast, realised)


def _pace(trend: float) -> str:
    """A per-year trend in words: where a month a year on stands against the purchases' pace."""
    change = np.expm1(trend)
    return f"{abs(change):.0%} {'below' if change < 0 else 'above'}"


def fit_activity_model(cost_part: FittedPart, settings: Settings, observer: FitObserver | None = None) -> ActivityVolumeModel:
    """One volume forecast per activity on the cost task's snapshots, with the objective and
    parameters its tuning chose (no search of their own: volumes are shaped like the cost), each
    within ``settings.activity_max_trees`` trees (nine models that every scored row runs through)."""
    cost_model, ts = cost_part.model, cost_part.training_set
    volumes = forecast_volume_columns(settings)
    say = (lambda name: observer.stage(f"activities: {name}")) if observer is not None else None
    return ActivityVolumeModel(volumes, objective=cost_model.objective_, params=cost_model.params,
                               num_boost_round=cost_model.num_boost_round,
                               early_stopping_rounds=cost_model.early_stopping_rounds, seed=cost_model.seed,
                               num_threads=cost_model.num_threads,
                               max_trees=_tighter(settings.activity_max_trees, cost_model.max_trees)).fit(
        ts.X_train, ts.targets_train[volumes], ts.X_valid, ts.targets_valid[volumes], progress=say)


def _tighter(*budgets: int | None) -> int | None:
    """The smallest of the tree budgets given (``None``: no budget)."""
    given = [b for b in budgets if b is not None]
    return min(given) if given else None


def priced_activities(model: ActivityVolumeModel, X: pd.DataFrame, settings: Settings, horizon_days: int,
                      level: float) -> pd.DataFrame:
    """``expected_cost_<activity>`` of the rows of ``X`` (the pools spread over those rows), at the
    total model's ``level`` (its forecast summed over the rows), as the value model prices them."""
    volumes = activity_volumes(model.predict(X), settings)
    return level_with_total(volumes, price(volumes, settings.costs, horizon_days), level, settings)[1]


def evaluate_activity_pricing(model: ActivityVolumeModel, cost_part: FittedPart, settings: Settings) -> Evaluation:
    """Priced activities (at the total model's level) and the total-cost model against the realised
    cost on the validation snapshot: ranking (Spearman, Gini), the sum ratio (forecast / realised
    total) and, per activity, the Spearman of its cost."""
    ts = cost_part.training_set
    y = np.asarray(ts.y_valid, dtype=float)
    total = np.asarray(cost_part.valid_prediction, dtype=float)
    priced = priced_activities(model, ts.X_valid, settings, ts.window_days, float(total.sum()))
    by_activity = np.asarray(total_cost(priced))

    def measures(prediction: np.ndarray) -> dict[str, float]:
        return {"spearman": ev.spearman(y, prediction), "gini": ev.normalized_gini(y, prediction),
                "sum_ratio": float(prediction.sum() / y.sum()) if y.sum() > 0 else float("nan")}

    out: Evaluation = {"valid": measures(by_activity), "total_model": measures(total),
                       "blend": measures(combined_forecast(by_activity, total))}
    for column in priced.columns:
        realised = column.removeprefix("expected_")  # cost_<activity>, a target column
        if realised in ts.targets_valid:
            out["valid"][f"{realised}.spearman"] = ev.spearman(ts.targets_valid[realised].to_numpy(float),
                                                               priced[column].to_numpy(float))
    return out


def fit_net_model(margin_part: FittedPart, settings: Settings) -> NetValueModel:
    """The net value model (:mod:`customer_value.boosted.net_value`) on the margin task's snapshots
    and inputs (the churn probability included), with the margin search's parameters: the two
    targets share their window and their drivers, so no search of its own."""
    ts, margin = margin_part.training_set, margin_part.model
    return NetValueModel(params=margin.params, num_boost_round=margin.num_boost_round,
                         early_stopping_rounds=margin.early_stopping_rounds, seed=margin.seed,
                         num_threads=margin.num_threads, max_trees=margin.max_trees).fit(
        ts.X_train, ts.targets_train["net_value"], ts.X_valid, ts.targets_valid["net_value"])


NET_WEIGHTS = (1.0, 0.75, 0.5, 0.25, 0.1)
"""Weights of the net value model against the parts' difference that the fit compares."""
NET_TOP_TIERS = (0.0, 0.15, 0.25)
"""Shares of the customers kept on the parts' difference (the top tier,
:func:`customer_value.boosted.net_value.with_parts`; 0: no tier) that the fit compares. Each is
wider than the top decile, so the scored top decile stays inside the tier when the share moves a
little (discounting reorders the customers near its edge; a new week's base is not the training one)."""


def evaluate_net_value(model: NetValueModel, parts: dict[str, FittedPart]) -> Evaluation:
    """The net value model, the difference of the margin and total-cost models, and their
    combinations (:data:`NET_WEIGHTS` × :data:`NET_TOP_TIERS`, see
    :func:`~customer_value.boosted.net_value.with_parts`) against the realised net value of the
    validation snapshot: ranking, top-decile capture and the sum ratio. ``blend`` is the combination
    that ranks best among those whose top decile captures at least what the parts' does (a
    rank-trained model can order the middle better and the largest accounts worse), with its
    ``weight`` (0: the parts alone) and ``top_tier`` (the share kept on the parts' difference)."""
    ts = parts["margin"].training_set
    y = ts.targets_valid["net_value"].to_numpy(dtype=float)
    cost = np.asarray(parts["cost"].model.predict(ts.X_valid), dtype=float)
    difference = np.asarray(parts["margin"].valid_prediction, dtype=float) - cost

    def measures(prediction: np.ndarray) -> dict[str, float]:
        return {"spearman": ev.spearman(y, prediction), "gini": ev.normalized_gini(y, prediction),
                "top_decile_capture": ev.top_decile_capture(y, prediction),
                "sum_ratio": float(prediction.sum() / y.sum()) if y.sum() != 0 else float("nan")}

    net = model.predict(ts.X_valid)
    parts_ = measures(difference)
    combinations = {}
    for tier in NET_TOP_TIERS:
        threshold = top_tier_threshold(difference, tier)
        for w in NET_WEIGHTS:
            money = parts_money(net, difference, w, threshold)  # as the value model learns it on the base it scores
            value = net_forecast(with_parts(net, difference, w, threshold, money), cost)
            combinations[(w, tier)] = {**measures(value), "weight": w, "top_tier": tier}
    keeps = [c for c, m in combinations.items() if not m["top_decile_capture"] < parts_["top_decile_capture"]
             and np.isfinite(m["spearman"])]
    if not keeps:
        return {"valid": measures(net), "parts": parts_,
                "blend": {**parts_, "weight": 0.0, "top_tier": 0.0}}
    best = max(keeps, key=lambda c: combinations[c]["spearman"])
    return {"valid": measures(net), "parts": parts_, "blend": combinations[best]}


def choose_value_forecast(evaluation: Evaluation, settings: Settings) -> str:
    """``settings.value_forecast``, or for ``auto`` the net value model (mixed with the parts'
    difference at the validation's best weight) unless the parts' difference alone ranks the
    validation snapshot's net value at least as well."""
    if settings.value_forecast != "auto":
        return settings.value_forecast
    net, difference = evaluation["blend"]["spearman"], evaluation["parts"]["spearman"]
    if evaluation["blend"].get("weight", 1.0) == 0.0:
        return "parts"
    return "net" if np.isfinite(net) and (not np.isfinite(difference) or net > difference) else "parts"


def choose_cost_forecast(evaluation: Evaluation, settings: Settings) -> str:
    """``settings.cost_forecast``, or for ``auto`` the blend of the two forecasts, unless one of them
    alone ranks the validation cost better by more than :data:`CLEARLY_BETTER` (a combination of
    two models that err differently is the safer bet: on two 100k simulated worlds it ranked the
    next year's cost best, where the single forecast the validation snapshot preferred by 0.001
    did not)."""
    if settings.cost_forecast != "auto":
        return settings.cost_forecast
    blend = evaluation["blend"]["spearman"]
    alone = {"activities": evaluation["valid"]["spearman"], "total": evaluation["total_model"]["spearman"]}
    best = max(alone, key=lambda mode: alone[mode] if np.isfinite(alone[mode]) else -np.inf)
    if not np.isfinite(blend) or (np.isfinite(alone[best]) and alone[best] > blend + CLEARLY_BETTER):
        return best
    return "blend"
