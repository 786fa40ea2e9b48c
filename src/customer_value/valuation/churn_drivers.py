"""Why a customer may churn, in words: ``top_churn_drivers`` of the score file.

The churn model's per-customer contributions (to the log-odds of churn, see "How" below) are summed
into **reasons**, groups of features that say one thing to a reader (the purchase gap is
``days_since_last_purchase``, ``recency``, ``T``, ``frequency`` and BG/NBD's alive probability
together; contributions add up, so a group's is the sum of its features'). Per customer the ``k``
reasons that raise the churn risk most (positive contributions only, largest first) are written
with the customer's own values and joined with ``"; "``:

    no purchase for 94 days (usual gap 21); 2 late invoices (of 9 paid, up to 14 days late);
    satisfaction 2/5 on the one rated ticket

A reason counts when it raises the log-odds by more than :data:`MIN_CONTRIBUTION`; a customer
whose churn risk nothing raises has an empty text.

:data:`REASONS` is the table feature -> reason (regular expressions, first match wins) and
:data:`SENTENCES` the sentence of each reason; a feature no pattern knows is its own reason,
written as its readable name and value ("payments widgets 3"). A reason written from columns the
frame lacks falls back to the same generic form.

How. TreeSHAP (``pred_contrib``) costs trees x leaves x depth² per row: for the benchmark's
tuned churn model (~1,000 trees of depth 10) about 19 ms per customer on two cores, five hours for a
million. The drivers therefore use the **path decomposition** of the booster
(:func:`customer_value.boosted.explain.path_contributions`: each split on the way to a row's leaf
credits its feature with the change of node value, exact in total like TreeSHAP, one leaf lookup per
tree), summed per reason in the same pass, on the fewest leading trees whose log-odds explain
:data:`MIN_R2` of the whole booster's variance on a sample of the customers
(:func:`~customer_value.boosted.explain.truncation`: boosting puts the large structure in its first
trees). ``benchmarks/churn_drivers.py`` measures the time and how often the top reason agrees with
grouped TreeSHAP on the whole model: on that model (400 of 998 trees kept, R² 0.976) about 40 µs
per customer, and the top reason is TreeSHAP's for 68% of customers (69% with every tree: the
difference is the method's, not the truncation's), 75% of TreeSHAP's top three among the drivers.
Rows go in batches of :data:`BATCH_ROWS`, each reported to ``progress(done, total)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from customer_value.boosted.explain import PathTables, path_contributions, truncation
from customer_value.boosted.inputs import purchase_features

MIN_R2 = 0.95
"""The leading trees explained must reproduce this share of the variance of the churn model's log-odds."""
MIN_CONTRIBUTION = 0.01
"""A reason raising the churn log-odds by less than this is not a driver (odds up by under 1%)."""
BATCH_ROWS = 50_000
SEPARATOR = "; "

Progress = Callable[[int, int], None]
Sentence = Callable[["Rows", "Context"], list[str]]


@dataclass(frozen=True)
class Context:
    """What a sentence may need besides the row: the trailing window of the ``hist_*`` features."""

    horizon_days: int = 365


# -------------------------------------------------------------------------------------------------
# feature -> reason

REASONS: tuple[tuple[str, str], ...] = (
    # when and how often a customer buys is one reason: the gap since the last purchase, against the usual one
    (r"days_since_(last|first)_purchase|recency|T|frequency|purchases_(to_date|\d+d)(_per_year)?|hist_transactions|"
     r"bgnbd_(p_alive|p_no_purchase|expected_transactions)", "purchase_gap"),
    (r"monetary_value|revenue_(to_date|\d+d)(_per_year)?|margin_to_date|hist_revenue|hist_margin", "spend"),
    (r"refunds_to_date|refund_amount_to_date", "refunds"),
    (r"eng_referral.*|eng_referrals_total|eng_days_since_referral|acct_referred_.*", "referrals"),
    (r"eng_days_since_.*", "activity_recency"),
    (r"eng_trend_30d", "activity_trend"),
    (r"eng_.*", "activity"),
    (r"pay_settled_late(_per_year)?|pay_share_paid_late|pay_days_late_(mean|max)", "late_payments"),
    (r"pay_(open|overdue)(_amount)?", "unpaid"),
    (r"pay_failed_attempts(_mean|_per_year)?", "failed_payments"),
    (r"pay_.*", "invoicing"),
    (r"sup_satisfaction_mean|sup_low_satisfaction_share|sup_rated", "satisfaction"),
    (r"sup_escalations(_\d+d|_per_year)?", "escalations"),
    (r"sup_resolution_days_mean", "resolution"),
    (r"sup_.*", "tickets"),
    (r"acct_tenure_days", "tenure"),
    (r"acct_is_referred", "referred"),
    (r"plan", "plan"),
    (r"acquisition_channel", "channel"),
    (r"region", "region"),
    (r"hist_cost_.*", "past_cost"),
    (r"historical_value", "past_value"),
)
"""``(pattern, reason)``: a feature belongs to the first reason whose pattern matches all of its name."""
_COMPILED = tuple((re.compile(pattern), reason) for pattern, reason in REASONS)


def reason_of(feature: str) -> str:
    """The reason a feature belongs to; an unknown feature is its own reason (``feature:<name>``)."""
    for pattern, reason in _COMPILED:
        if pattern.fullmatch(feature):
            return reason
    return f"feature:{feature}"


# -------------------------------------------------------------------------------------------------
# numbers as a reader writes them


def _n(value: float) -> str:
    """A count or a number of days: whole (half away from zero), with thousands separators."""
    return f"{int(value + 0.5) if value >= 0 else -int(0.5 - value):,}"


def _amount(value: float) -> str:
    return f"{value:,.2f}"


def _plural(value: float, word: str, plural: str | None = None) -> str:
    whole = int(value + 0.5) if value >= 0 else -int(0.5 - value)
    return f"{whole:,} {word if whole == 1 else (plural or word + 's')}"


class Rows:
    """Some rows of a batch of the model input, as the sentences read them: a column as floats
    (NaN where missing or absent) or as objects. Each column is converted once per batch."""

    def __init__(self, frame: pd.DataFrame, positions: np.ndarray | None = None,
                 cache: dict[str, np.ndarray] | None = None) -> None:
        self.frame = frame
        self.positions = np.arange(len(frame)) if positions is None else positions
        self.cache = {} if cache is None else cache

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def columns(self) -> pd.Index:
        return self.frame.columns

    def subset(self, positions: np.ndarray) -> "Rows":
        return Rows(self.frame, self.positions[positions], self.cache)

    def numeric(self, name: str) -> np.ndarray:
        if name not in self.frame.columns:
            return np.full(len(self), np.nan)
        if name not in self.cache:
            self.cache[name] = pd.to_numeric(self.frame[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return self.cache[name][self.positions]

    def values(self, name: str) -> list[Any]:
        if name not in self.frame.columns:
            return [None] * len(self)
        return self.frame[name].astype(object).to_numpy()[self.positions].tolist()


def _col(rows: Rows, name: str) -> np.ndarray:
    return rows.numeric(name)


def _known(value: float) -> bool:
    return value == value  # not NaN


# -------------------------------------------------------------------------------------------------
# the sentences


def _purchase_gap(rows: Rows, _: Context) -> list[str]:
    out = []
    for last, first, repeat, tenure in zip(_col(rows, "days_since_last_purchase"), _col(rows, "days_since_first_purchase"),
                                           _col(rows, "frequency"), _col(rows, "acct_tenure_days")):
        if not _known(last):
            out.append(f"no purchase since signing up {_n(tenure)} days ago" if _known(tenure) else "no purchase yet")
        elif _known(repeat) and repeat >= 1 and _known(first):
            out.append(f"no purchase for {_n(last)} days (usual gap {_n((first - last) / repeat)})")
        else:
            out.append(f"one purchase only, {_n(last)} days ago")
    return out


def _spend(rows: Rows, _: Context) -> list[str]:
    return [("no spend in the last 365 days" if year <= 0 else f"spent {_amount(year)} in the last 365 days")
            + (f" ({_amount(total)} in all)" if _known(total) and total > year else "")
            for year, total in zip(np.nan_to_num(_col(rows, "revenue_365d")), _col(rows, "revenue_to_date"))]


def _refunds(rows: Rows, _: Context) -> list[str]:
    return [f"{_plural(n, 'refund')} ({_amount(amount)})" if n > 0 else "no refund"
            for n, amount in zip(np.nan_to_num(_col(rows, "refunds_to_date")),
                                 np.nan_to_num(_col(rows, "refund_amount_to_date")))]


def _referrals(rows: Rows, _: Context) -> list[str]:
    return ["no customer referred so far" if n <= 0 else f"{_plural(n, 'customer')} referred so far"
            for n in np.nan_to_num(_col(rows, "acct_referred_customers"))]


def _activity_recency(rows: Rows, _: Context) -> list[str]:
    out = []
    for any_, login in zip(_col(rows, "eng_days_since_any"), _col(rows, "eng_days_since_login")):
        if not _known(any_):
            out.append("no recorded activity")
            continue
        text = f"no activity for {_n(any_)} days"
        if _known(login) and round(login) > round(any_):
            text += f" (last login {_n(login)} days ago)"
        elif not _known(login):
            text += " (never logged in)"
        out.append(text)
    return out


def _activity_trend(rows: Rows, _: Context) -> list[str]:
    out = []
    for recent, quarter in zip(np.nan_to_num(_col(rows, "eng_events_30d")), np.nan_to_num(_col(rows, "eng_events_90d"))):
        before = max(quarter - recent, 0.0)
        if recent == 0 and before == 0:
            out.append("no activity in the last 90 days")
        else:
            trend = "falling" if recent < before / 2 else "not growing" if recent <= before / 2 * 1.1 else "rising"
            out.append(f"activity {trend}: {_plural(recent, 'event')} in the last 30 days, {_n(before)} in the 60 before")
    return out


def _activity(rows: Rows, _: Context) -> list[str]:
    return [f"active on {_n(days)} of the last 30 days ({_plural(events, 'event')})"
            for days, events in zip(np.nan_to_num(_col(rows, "eng_active_days_30d")),
                                    np.nan_to_num(_col(rows, "eng_events_30d")))]


def _late_payments(rows: Rows, _: Context) -> list[str]:
    out = []
    for late, settled, worst in zip(np.nan_to_num(_col(rows, "pay_settled_late")),
                                    np.nan_to_num(_col(rows, "pay_settled")), _col(rows, "pay_days_late_max")):
        if late <= 0:
            out.append(f"no late invoice ({_n(settled)} paid)" if settled > 0 else "no invoice paid yet")
        else:
            out.append(f"{_plural(late, 'late invoice')} (of {_n(settled)} paid"
                       + (f", up to {_plural(worst, 'day')} late)" if _known(worst) else ")"))
    return out


def _unpaid(rows: Rows, _: Context) -> list[str]:
    out = []
    for overdue, overdue_amount, open_, open_amount in zip(
            np.nan_to_num(_col(rows, "pay_overdue")), np.nan_to_num(_col(rows, "pay_overdue_amount")),
            np.nan_to_num(_col(rows, "pay_open")), np.nan_to_num(_col(rows, "pay_open_amount"))):
        if overdue > 0:
            out.append(f"{_plural(overdue, 'overdue invoice')} ({_amount(overdue_amount)})")
        elif open_ > 0:
            out.append(f"{_plural(open_, 'unpaid invoice')} ({_amount(open_amount)}), none overdue")
        else:
            out.append("no unpaid invoice")
    return out


def _failed_payments(rows: Rows, _: Context) -> list[str]:
    return [f"{_plural(n, 'failed payment attempt')}" if n > 0 else "no failed payment"
            for n in np.nan_to_num(_col(rows, "pay_failed_attempts"))]


def _invoicing(rows: Rows, _: Context) -> list[str]:
    out = []
    for total, year, since in zip(np.nan_to_num(_col(rows, "pay_invoices")), np.nan_to_num(_col(rows, "pay_invoices_365d")),
                                  _col(rows, "pay_days_since_last_invoice")):
        if total <= 0:
            out.append("never invoiced")
        else:
            out.append(f"{_plural(year, 'invoice')} in the last 365 days"
                       + (f", the last {_n(since)} days ago" if _known(since) else ""))
    return out


def _satisfaction(rows: Rows, _: Context) -> list[str]:
    out = []
    for mean, rated, low in zip(_col(rows, "sup_satisfaction_mean"), np.nan_to_num(_col(rows, "sup_rated")),
                                np.nan_to_num(_col(rows, "sup_low_satisfaction_share"))):
        if rated <= 0 or not _known(mean):
            out.append("no rated support ticket")
        elif round(rated) == 1:
            out.append(f"satisfaction {_n(mean)}/5 on the one rated ticket")
        else:
            lows = int(round(low * rated))
            out.append(f"satisfaction {mean:.1f}/5 over {_n(rated)} rated tickets"
                       + (f" ({_n(lows)} rated 1 or 2)" if lows else ""))
    return out


def _escalations(rows: Rows, _: Context) -> list[str]:
    return [f"{_plural(year, 'escalated ticket')} in the last 365 days" + (f" ({_n(total)} in all)" if total > year else "")
            if total > 0 else "no escalated ticket"
            for year, total in zip(np.nan_to_num(_col(rows, "sup_escalations_365d")),
                                   np.nan_to_num(_col(rows, "sup_escalations")))]


def _resolution(rows: Rows, _: Context) -> list[str]:
    return [f"tickets took {days:.1f} days to resolve on average" if _known(days) else "no resolved ticket"
            for days in _col(rows, "sup_resolution_days_mean")]


def _tickets(rows: Rows, _: Context) -> list[str]:
    out = []
    for quarter, total, open_ in zip(np.nan_to_num(_col(rows, "sup_tickets_90d")), np.nan_to_num(_col(rows, "sup_tickets")),
                                     np.nan_to_num(_col(rows, "sup_open_tickets"))):
        if total <= 0:
            out.append("no support ticket")
            continue
        text = f"{_plural(quarter, 'support ticket')} in the last 90 days ({_n(total)} in all"
        out.append(text + (f", {_n(open_)} still open)" if open_ > 0 else ")"))
    return out


def _tenure(rows: Rows, _: Context) -> list[str]:
    return [f"customer for {_plural(days, 'day')}" if _known(days) else "tenure unknown"
            for days in _col(rows, "acct_tenure_days")]


def _referred(rows: Rows, _: Context) -> list[str]:
    return ["joined through a referral" if flag > 0 else "not joined through a referral"
            for flag in np.nan_to_num(_col(rows, "acct_is_referred"))]


def _text(column: str, known: str, unknown: str) -> Sentence:
    def sentence(rows: Rows, _: Context) -> list[str]:
        return [unknown if v is None or v != v or str(v) in ("", "None", "nan") else known.format(str(v).replace("_", " "))
                for v in rows.values(column)]
    return sentence


def _past_cost(rows: Rows, context: Context) -> list[str]:
    return [f"cost to serve {_amount(cost)} in the last {_n(context.horizon_days)} days"
            for cost in np.nan_to_num(_col(rows, "hist_cost_to_serve"))]


def _past_value(rows: Rows, context: Context) -> list[str]:
    return [f"net value {_amount(value)} in the last {_n(context.horizon_days)} days"
            for value in np.nan_to_num(_col(rows, "historical_value"))]


SENTENCES: dict[str, Sentence] = {
    "purchase_gap": _purchase_gap, "spend": _spend, "refunds": _refunds,
    "referrals": _referrals, "activity_recency": _activity_recency, "activity_trend": _activity_trend,
    "activity": _activity, "late_payments": _late_payments, "unpaid": _unpaid, "failed_payments": _failed_payments,
    "invoicing": _invoicing, "satisfaction": _satisfaction, "escalations": _escalations, "resolution": _resolution,
    "tickets": _tickets, "tenure": _tenure, "referred": _referred,
    "plan": _text("plan", "on the {} plan", "no plan recorded"),
    "channel": _text("acquisition_channel", "acquisition channel {}", "acquisition channel unknown"),
    "region": _text("region", "in region {}", "region unknown"),
    "past_cost": _past_cost, "past_value": _past_value,
}
"""Reason -> the sentence per row (the rows of the model input frame, the customer's own values)."""

PREFIXES = (("eng_", "engagement "), ("pay_", "payments "), ("sup_", "support "), ("acct_", "account "),
            ("hist_", "trailing "), ("bgnbd_", "BG/NBD "))


def readable_name(feature: str) -> str:
    """A feature's name in words: prefixes spelled out, ``_30d`` as "30 days", underscores as spaces."""
    name = feature
    for prefix, words in PREFIXES:
        if name.startswith(prefix):
            name = words + name.removeprefix(prefix)
            break
    name = re.sub(r"_(\d+)d\b", r" \1 days", name)
    return name.replace("_", " ").strip()


def _generic(feature: str) -> Sentence:
    def sentence(rows: Rows, _: Context) -> list[str]:
        name = readable_name(feature)
        if feature not in rows.columns:
            return [name] * len(rows)
        out = []
        for v in rows.values(feature):
            if v is None or (isinstance(v, float) and v != v):
                out.append(f"{name} unknown")
            elif isinstance(v, (int, float, np.number)) and not isinstance(v, bool):
                out.append(f"{name} {_n(v) if float(v).is_integer() else f'{float(v):,.2f}'}")
            else:
                out.append(f"{name} {v}")
        return out
    return sentence


def sentence_of(reason: str) -> Sentence:
    """The sentence of a reason (an unknown feature's: its readable name and value)."""
    if reason in SENTENCES:
        return SENTENCES[reason]
    return _generic(reason.removeprefix("feature:"))


# -------------------------------------------------------------------------------------------------
# contributions -> reasons -> text


def reason_groups(feature_names: list[str]) -> tuple[list[str], np.ndarray]:
    """(reasons in first-seen order, each feature's reason index)."""
    reasons = list(dict.fromkeys(reason_of(f) for f in feature_names))
    index = {r: i for i, r in enumerate(reasons)}
    return reasons, np.asarray([index[reason_of(f)] for f in feature_names], dtype=int)


def group_contributions(contrib: np.ndarray, feature_names: list[str]) -> tuple[list[str], np.ndarray]:
    """Per-feature contributions (rows x features, a ``bias`` column after them is ignored) summed
    into reasons: (reasons, rows x reasons)."""
    reasons, group = reason_groups(feature_names)
    out = np.zeros((len(contrib), len(reasons)))
    np.add.at(out.T, group, np.asarray(contrib)[:, : len(feature_names)].T)
    return reasons, out


def top_reasons(grouped: np.ndarray, k: int = 3, floor: float = MIN_CONTRIBUTION) -> np.ndarray:
    """Per row the indices of the ``k`` reasons that raise the churn risk most, largest first
    (-1 where fewer than ``k`` reasons raise it by more than ``floor`` log-odds)."""
    k = min(k, grouped.shape[1])
    order = np.argsort(-grouped, axis=1, kind="stable")[:, :k]
    return np.where(np.take_along_axis(grouped, order, axis=1) > floor, order, -1)


def describe(rows: pd.DataFrame | Rows, reasons: list[str], order: np.ndarray, context: Context = Context()) -> list[str]:
    """One text per row: the reasons of ``order`` (indices into ``reasons``, -1 for none) written
    with the row's values, joined with ``"; "``."""
    rows = rows if isinstance(rows, Rows) else Rows(rows)
    n, k = order.shape
    parts = np.full((n, k), "", dtype=object)
    for r in np.unique(order[order >= 0]):
        hit = order == r
        rows_hit = np.flatnonzero(hit.any(axis=1))
        texts = np.asarray(sentence_of(reasons[r])(rows.subset(rows_hit), context), dtype=object)
        parts[rows_hit, hit[rows_hit].argmax(axis=1)] = texts
    return [SEPARATOR.join(p for p in row if p) for row in parts.tolist()]


@dataclass(frozen=True)
class ChurnDrivers:
    """``top_churn_drivers`` per row and how they were computed: the path decomposition of the
    churn booster's first ``trees`` of ``of_trees`` trees, whose raw score explains ``r2`` of the
    whole booster's (on a sample of the rows)."""

    texts: pd.Series
    trees: int = 0
    of_trees: int = 0
    r2: float = float("nan")

    def method(self) -> str:
        if not self.of_trees:
            return "no churn model"
        used = "every tree" if self.trees >= self.of_trees else f"the first {self.trees:,} of {self.of_trees:,} trees"
        return (f"path decomposition of the churn model's log-odds on {used} (R² {self.r2:.3f} against the whole "
                "model), grouped into reasons")


def churn_drivers(model: Any, features: pd.DataFrame, k: int = 3, min_r2: float = MIN_R2,
                  batch_rows: int = BATCH_ROWS, progress: Progress | None = None,
                  truncated: tuple[int, float] | None = None) -> ChurnDrivers:
    """``top_churn_drivers`` for the rows of ``features`` (in their order): the value model's churn
    model explained on its own input (features plus BG/NBD over the churn window), the ``k`` reasons
    that raise each customer's churn risk most, in words (see the module docstring). Empty texts
    without a churn model.

    How many trees explain enough is chosen on a sample of the rows; when ``features`` is one batch
    of a population, pass the population's choice as ``truncated`` (:func:`driver_truncation` of
    the rows at :func:`sample_positions`), so every batch explains with the same trees."""
    churn = getattr(model, "churn_model", None)
    if churn is None or features.empty:
        return ChurnDrivers(pd.Series("", index=features.index, dtype=object))
    settings = model.settings
    rfm = features.set_index("customer_id")[["frequency", "recency", "T", "monetary_value"]]
    bgnbd = purchase_features(rfm, settings.churn_window_days, settings, model.purchase_model).reset_index(drop=True)

    def model_input(start: int, stop: int) -> pd.DataFrame:
        return pd.concat([features.iloc[start:stop].reset_index(drop=True), bgnbd.iloc[start:stop].reset_index(drop=True)],
                         axis=1)

    names = list(churn.feature_names_)
    reasons, group = reason_groups(names)
    if truncated is None:
        rows = sample_positions(len(features))
        sample = model_input(0, len(features)) if rows is None else _sample(features, bgnbd, rows)
        truncated = truncation(churn, sample, min_r2)
    trees, r2 = truncated
    tables = PathTables.cached(churn, trees, group)  # built once for every batch of a scoring
    context = Context(settings.horizon_days)
    out: list[str] = []
    total = len(features)
    for start in range(0, total, batch_rows):
        X = model_input(start, start + batch_rows)
        grouped, _ = path_contributions(churn, X, tables=tables)
        out += describe(X, reasons, top_reasons(grouped, k), context)
        if progress is not None:
            progress(min(start + batch_rows, total), total)
    return ChurnDrivers(pd.Series(out, index=features.index, dtype=object), tables.trees,
                        int(getattr(churn, "best_iteration_", 0) or churn.booster_.current_iteration()), r2)


SAMPLE_ROWS = 2000


def sample_positions(n_rows: int, n: int = SAMPLE_ROWS, seed: int = 0) -> np.ndarray | None:
    """The sorted row positions (in a population of ``n_rows`` ordered by ``customer_id``) on which
    the truncation is chosen; ``None`` when every row is used."""
    if n_rows <= n:
        return None
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=n, replace=False))


def driver_truncation(model: Any, sample: pd.DataFrame, min_r2: float = MIN_R2) -> tuple[int, float] | None:
    """(trees, R²) chosen on ``sample``, feature rows of the population at :func:`sample_positions`
    (in that order); ``None`` without a churn model."""
    churn = getattr(model, "churn_model", None)
    if churn is None or sample.empty:
        return None
    rfm = sample.set_index("customer_id")[["frequency", "recency", "T", "monetary_value"]]
    bgnbd = purchase_features(rfm, model.settings.churn_window_days, model.settings, model.purchase_model)
    return truncation(churn, pd.concat([sample.reset_index(drop=True), bgnbd.reset_index(drop=True)], axis=1), min_r2)


def _sample(features: pd.DataFrame, bgnbd: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    return pd.concat([features.iloc[rows].reset_index(drop=True), bgnbd.iloc[rows].reset_index(drop=True)], axis=1)
