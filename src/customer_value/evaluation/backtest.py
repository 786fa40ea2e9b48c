"""Rolling-origin backtests: refit as of earlier cutoffs, score, compare with what happened.

For each cutoff ``c`` the whole model is fitted on the tables cut at ``c`` (nothing at or after
``c`` is seen), customers are scored as of ``c`` and compared with the realised targets over
``[c, c + horizon)``. Every metric stands beside two baselines: ``historical_value`` (margin −
cost over the horizon before ``c``) and BG/NBD × Gamma-Gamma revenue alone (no churn model, no
cost). Flagging realised negative-value customers is measured for ``customer_value < 0``
(``value.negative_*``), the drain model's ``drain_flag`` (``drain.negative_*``) and
``historical_value < 0``. Metric names are stable (``backtest.value.spearman`` ...) so runs
compare in MLflow.

**Like for like**: realised net value is margin − cost and holds no referred customer's value, so
``value_like_for_like.*`` ranks ``customer_value`` without its referral term (discounted margin −
discounted cost) against it, and ``value.aggregate_bias`` compares totals without that term too
(forecast margin − cost over the horizon, undiscounted, against the realised total; before
2026-12-05 the forecast side kept the referral value and overstated the bias by it).

**Referrals**: ``expected_referrals`` against the referred sign-ups that happened (the targets'
``referrals``): ``referrals.sum_ratio`` (forecast / realised total; the target is within ±10%),
``referrals.spearman`` and ``referrals.roc_auc`` (referred anyone or not) beside the baseline "count of
past referrals" (``baseline_past_referrals.spearman`` / ``.roc_auc``). A referral is a sign-up, so
where the data's sign-ups end before a cutoff's horizon does (an export whose sign-ups stop, like
the simulated worlds' after ``signup_end``), the referrals that would have come are missing from the
realised total: that cutoff's total is not judged (no ``referrals.sum_ratio``; the ``skipped``
column says why), while the ranking still is (the missing months cut everyone's count alike).

**Every metric stays in its range** (Spearman and Gini in [−1, 1], top-decile capture ≤ 1,
precision, recall, coverage, Brier and AUC in [0, 1]); an aggregate bias is NaN when the realised
total is not positive (a ratio to a negative total says nothing). **A part that falls back at a
cutoff says so**: the per-cutoff ``skipped`` column names the part, the reason and what stood in
(:data:`FALLBACKS`), and the fallback is never scored as the part (no ``drain.*`` from the
``customer_value < 0`` stand-in, no ``churn.*`` from BG/NBD's, no ``cost.*`` from the trailing cost);
:func:`comparison_table` counts the cutoffs each score existed at and lists the fallbacks.

Each cutoff also reconciles the **monthly cash flows** (:mod:`customer_value.valuation.cashflows`)
with what happened: the scored customers' forecast margin and cost per calendar month against the
realised margin and cost-to-serve in that month (``monthly``; ``monthly.margin_mape`` and
``monthly.cost_mape`` are the mean absolute relative errors over the months).

**Against the simulator's truth** (``truth``: a simulated world's ``truth.parquet``): at the
cutoff on the truth's date the like-for-like ranking stands beside the two references of
``simulation/world.py`` (issue #14), the oracle (``oracle.*``: margin − cost expected from each
customer's latent state) and the value ceiling (``ceiling.*``: the same without the purchase
rate, inferred from the history exactly), with the share of the gap from ``historical_value`` the
model closes to each (``value_like_for_like.gap_to_oracle`` / ``.gap_to_ceiling``). Other cutoffs
have no truth, so no such columns.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from customer_value import metrics as ev
from customer_value.config import Settings
from customer_value.data.tables import Tables
from customer_value.features import build_targets, monthly_outcomes
from customer_value.training.fit import FitObserver, fit_value_model
from customer_value.valuation.cashflows import portfolio_by_month
from customer_value.valuation.intervals import coverage, coverage_by, interval_columns


FALLBACKS: dict[str, str] = {
    "churn": "churn_probability is BG/NBD's P(no purchase); no churn.* metrics",
    "cost": "cost-to-serve is the trailing cost; no cost.* metrics",
    "margin": "margin is the survival-adjusted BG/NBD × Gamma-Gamma one",
    "drain": "drain_flag is customer_value < 0; no drain.* metrics",
    "spend": "order value is the pooled one",
    "intervals": "no p10/p90; no intervals.* metrics",
}
"""What stands in for each part when it is skipped at a cutoff (``training.fit``)."""


def fallback_note(skipped: dict[str, str]) -> str:
    """One line per skipped part for the per-cutoff table: the part, why, and what stood in."""
    return "; ".join(f"{part} skipped ({reason}): {FALLBACKS.get(part, 'left out')}"
                     for part, reason in sorted(skipped.items()))


@dataclass
class BacktestResult:
    """Per-cutoff metrics (one row per cutoff and score), their average, and the scored frames."""

    metrics: pd.DataFrame
    scored: dict[dt.date, pd.DataFrame] = field(default_factory=dict)
    monthly: dict[dt.date, pd.DataFrame] = field(default_factory=dict)
    """Per cutoff: forecast and realised portfolio margin and cost per month, with relative errors."""
    skipped: dict[dt.date, dict[str, str]] = field(default_factory=dict)
    """Per cutoff: the parts skipped by the fit and why (empty when all were fitted)."""

    def average(self) -> pd.Series:
        return self.metrics.drop(columns=["cutoff"]).mean(numeric_only=True)

    def flat_metrics(self) -> dict[str, float]:
        """``backtest.<name>`` averaged over cutoffs: what a training run logs."""
        return {f"backtest.{k}": float(v) for k, v in self.average().items() if np.isfinite(v)}


def cutoffs_before(as_of: dt.date, horizon_days: int, count: int, spacing_days: int) -> list[dt.date]:
    """``count`` cutoffs whose horizon ends on or before ``as_of``, latest last."""
    last = as_of - dt.timedelta(days=horizon_days)
    return [last - dt.timedelta(days=spacing_days * k) for k in reversed(range(count))]


def value_metrics(scored: pd.DataFrame, skipped: dict[str, str] | None = None,
                  referral_total_judged: bool = True) -> dict[str, float]:
    """Ranking, bias and flagging metrics of one scored cutoff joined with realised targets; a
    ``skipped`` part's stand-in is not scored as the part (see the module docstring), nor a
    referral total whose realised referrals are cut short (``referral_total_judged``)."""
    skipped = skipped or {}
    realised_net = scored["net_value"].to_numpy(dtype=float)
    out: dict[str, float] = {}
    rankers = {
        "value": scored["customer_value"].to_numpy(dtype=float),
        "value_like_for_like": like_for_like(scored),
        "baseline_historical_value": scored["historical_value"].to_numpy(dtype=float),
        "baseline_bgnbd_gg_revenue": scored["bgnbd_gg_revenue"].to_numpy(dtype=float),
    }
    for name, score in rankers.items():
        out[f"{name}.spearman"] = ev.spearman(realised_net, score)
        out[f"{name}.gini"] = ev.normalized_gini(realised_net, score)
        out[f"{name}.top_decile_capture"] = ev.top_decile_capture(realised_net, score)
    # the realised net value holds no referred customers' value, so neither does the forecast total
    undiscounted = scored["expected_margin"] - scored["expected_cost_to_serve"]
    out["value.aggregate_bias"] = _bias(undiscounted.sum(), realised_net.sum())
    revenue = scored["revenue"].to_numpy(dtype=float)
    out["revenue.spearman"] = ev.spearman(revenue, scored["expected_revenue"])
    out["revenue.gini"] = ev.normalized_gini(revenue, scored["expected_revenue"])
    out["revenue.aggregate_bias"] = _bias(scored["expected_revenue"].sum(), revenue.sum())
    out["baseline_bgnbd_gg_revenue.revenue_spearman"] = ev.spearman(revenue, scored["bgnbd_gg_revenue"])
    cost = scored["cost_to_serve"].to_numpy(dtype=float)
    if "cost" not in skipped:
        out["cost.spearman"] = ev.spearman(cost, scored["expected_cost_to_serve"])
        out["cost.aggregate_bias"] = _bias(scored["expected_cost_to_serve"].sum(), cost.sum())
    out["baseline_historical_cost.spearman"] = ev.spearman(cost, scored["historical_cost_to_serve"])
    churned = scored["churned"].to_numpy(dtype=float)
    if "churn" not in skipped and 0 < churned.mean() < 1:
        out["churn.roc_auc"] = ev.roc_auc(churned, scored["churn_probability"])
        out["churn.brier"] = ev.brier(churned, scored["churn_probability"])
    negative = realised_net < 0
    flags = {"value": scored["customer_value"] < 0, "baseline_historical_value": scored["historical_value"] < 0}
    has_drain = "drain_probability" in scored and "drain" not in skipped
    if has_drain:  # the drain model's flag; without it drain_flag is value < 0, not a model
        flags["drain"] = scored["drain_flag"].astype(bool)
    if has_drain and 0 < negative.mean() < 1:
        out["drain.roc_auc"] = ev.roc_auc(negative, scored["drain_probability"])
        out["drain.brier"] = ev.brier(negative, scored["drain_probability"])
    for name, flag in flags.items():
        pr = ev.precision_recall_at(negative, flag.to_numpy())
        out[f"{name}.negative_precision"] = pr["precision"]
        out[f"{name}.negative_recall"] = pr["recall"]
    out.update(interval_metrics(scored))
    out.update(referral_metrics(scored, referral_total_judged))
    return out


def _bias(forecast: float, realised: float) -> float:
    """forecast / realised − 1, NaN unless the realised total is positive."""
    return float(forecast / realised - 1.0) if realised > 0 else float("nan")


def has_referrals(scored: pd.DataFrame) -> bool:
    """Whether a scored cutoff holds referrals to judge (forecast and realised; not every data set has them)."""
    return {"referrals", "expected_referrals"} <= set(scored.columns)


def referral_metrics(scored: pd.DataFrame, total_judged: bool = True) -> dict[str, float]:
    """Expected referred sign-ups against those that happened: the total's ratio (unless
    ``total_judged`` is false: see :func:`referral_total_note`), Spearman and ROC AUC (referred
    anyone), beside the count of past referrals (``acct_referred_customers``)."""
    if not has_referrals(scored):
        return {}
    realised = scored["referrals"].fillna(0).to_numpy(dtype=float)
    expected = scored["expected_referrals"].to_numpy(dtype=float)
    judged = total_judged and realised.sum() > 0
    out = {"referrals.realised": float(realised.sum()), "referrals.expected": float(expected.sum()),
           "referrals.sum_ratio": float(expected.sum() / realised.sum()) if judged else float("nan"),
           "referrals.spearman": ev.spearman(realised, expected),
           "referrals.roc_auc": ev.roc_auc(realised > 0, expected)}
    if "acct_referred_customers" in scored:
        past = scored["acct_referred_customers"].to_numpy(dtype=float)
        out["baseline_past_referrals.spearman"] = ev.spearman(realised, past)
        out["baseline_past_referrals.roc_auc"] = ev.roc_auc(realised > 0, past)
    return out


SIGNUPS_REACH_DAYS = 31
"""The data's last sign-up must lie within this many days of a cutoff's horizon end for the
realised referral total to be complete (a month's lull is ordinary; a stop is not)."""


def referral_total_note(last_signup: dt.date | None, cutoff: dt.date, horizon_days: int) -> str:
    """Why a cutoff's referral total is not judged ("" when it is): the data's sign-ups end more
    than :data:`SIGNUPS_REACH_DAYS` before the horizon does, so referrals that would have come are
    missing from the realised total (see the module docstring)."""
    end = cutoff + dt.timedelta(days=horizon_days)
    if last_signup is None or last_signup >= end - dt.timedelta(days=SIGNUPS_REACH_DAYS):
        return ""
    return (f"referral total not judged: the data's sign-ups end {last_signup}, before this horizon does ({end}), "
            "so its realised referrals are cut short")


def interval_metrics(scored: pd.DataFrame) -> dict[str, float]:
    """Coverage of the 80% intervals (share of customers whose realised net value, revenue, cost,
    margin and transactions fell inside), overall and per value segment, and their mean width."""
    out: dict[str, float] = {}
    for quantity, share in coverage(scored, scored).items():
        low, high = interval_columns(quantity)
        out[f"intervals.{quantity}.coverage"] = share
        out[f"intervals.{quantity}.mean_width"] = float((scored[high] - scored[low]).mean())
    if out and "value_segment" in scored:
        by_segment = coverage_by(scored, scored, scored["value_segment"].astype(str))
        for segment, row in by_segment.iterrows():
            for quantity in by_segment.columns.drop("customers"):
                out[f"intervals.{quantity}.coverage.{segment}"] = float(row[quantity])
    return out


TRUTH_COLUMNS = ("customer_id", "as_of", "horizon_days", "oracle_expected_margin", "oracle_expected_cost_to_serve",
                 "ceiling_net_value")
"""What :func:`reference_metrics` reads of a simulated world's truth (``simulation/world.py``)."""


def truth_date(truth: pd.DataFrame) -> dt.date:
    """The one date a simulated world's truth is as of (its oracle's cutoff)."""
    return pd.Timestamp(truth["as_of"].iloc[0]).date()


def reference_metrics(scored: pd.DataFrame, truth: pd.DataFrame, judged: dict[str, float]) -> dict[str, float]:
    """The oracle and the value ceiling beside the model on one cutoff's scored customers (the
    truth's date): their Spearman and top-decile capture against the realised margin − cost, and
    the share of the gap from ``historical_value`` that the like-for-like value closes to each
    (``judged``: that cutoff's :func:`value_metrics`, which hold both rankings)."""
    reference = truth.set_index("customer_id").reindex(scored["customer_id"])
    missing = reference["ceiling_net_value"].isna().to_numpy()
    if missing.any():
        raise ValueError(f"the truth holds no oracle for {int(missing.sum())} scored customers "
                         f"(e.g. {', '.join(map(str, scored['customer_id'][missing].head(3)))})")
    realised = scored["net_value"].to_numpy(dtype=float)
    rankers = {"oracle": (reference["oracle_expected_margin"] - reference["oracle_expected_cost_to_serve"]).to_numpy(),
               "ceiling": reference["ceiling_net_value"].to_numpy(dtype=float)}
    out: dict[str, float] = {}
    for name, score in rankers.items():
        out[f"{name}.spearman"] = ev.spearman(realised, score)
        out[f"{name}.top_decile_capture"] = ev.top_decile_capture(realised, score)
    model, baseline = judged["value_like_for_like.spearman"], judged["baseline_historical_value.spearman"]
    for name in rankers:
        out[f"value_like_for_like.gap_to_{name}"] = ev.gap_closed(model, baseline, out[f"{name}.spearman"])
    return out


def like_for_like(scored: pd.DataFrame) -> np.ndarray:
    """``customer_value`` without its referral term (discounted margin − discounted cost): what
    the realised margin − cost can judge, as ``benchmarks/value.py`` does (issue #14)."""
    return (scored["discounted_expected_margin"].to_numpy(dtype=float)
            - scored["discounted_expected_cost_to_serve"].to_numpy(dtype=float))


def join_realised(scores: pd.DataFrame, targets: pd.DataFrame, bgnbd_gg_revenue: np.ndarray,
                  past_referrals: np.ndarray | None = None) -> pd.DataFrame:
    """Scores of one cutoff beside what happened after it (and the BG/NBD×GG revenue baseline;
    with ``past_referrals``, the referral baseline's count of past referrals)."""
    scored = scores.assign(bgnbd_gg_revenue=bgnbd_gg_revenue)
    if past_referrals is not None:
        scored["acct_referred_customers"] = np.asarray(past_referrals, dtype=float)
    wanted = ["customer_id", "revenue", "margin", "transactions", "churned", "cost_to_serve", "net_value",
              *(["referrals"] if "referrals" in targets else [])]
    return scored.merge(targets[wanted], on="customer_id", how="left", validate="one_to_one")


def run_backtest(tables: Tables, cutoffs: list[dt.date], settings: Settings, engine: Any = "duckdb",
                 observer: FitObserver | None = None, truth: pd.DataFrame | None = None) -> BacktestResult:
    """Fit, score and evaluate at each cutoff (see the module docstring); with a simulated world's
    ``truth``, the cutoff on its date is judged against the oracle and the value ceiling too."""
    observer = observer or FitObserver()
    truth_at = truth_date(truth) if truth is not None else None
    rows, scored_frames, monthly, skipped = [], {}, {}, {}
    signups = tables.customers["signup_at"]
    last_signup = pd.Timestamp(signups.max()).date() if len(signups) else None
    for cutoff in cutoffs:
        observer.stage(f"backtest: fitting as of {cutoff}")
        fitted = fit_value_model(tables, cutoff, settings, engine=engine, observer=observer)
        scores = fitted.model.predict(fitted.features, cutoff)
        baseline = fitted.model.bgnbd_gg_revenue(fitted.features)
        targets = build_targets(tables, cutoff, settings, engine=engine)
        scored = join_realised(scores, targets, baseline, fitted.features["acct_referred_customers"].to_numpy())
        skipped[cutoff] = dict(fitted.skipped)
        scored_frames[cutoff] = scored
        observer.stage(f"backtest: monthly cash flows as of {cutoff} against what happened")
        monthly[cutoff] = monthly_reconciliation(
            portfolio_by_month(fitted.model.cashflows(fitted.features, scores, cutoff), scores),
            monthly_outcomes(tables, cutoff, settings, scores["customer_id"], engine=engine))
        referral_note = referral_total_note(last_signup, cutoff, settings.horizon_days) if has_referrals(scored) else ""
        judged = value_metrics(scored, skipped[cutoff], not referral_note)
        references = reference_metrics(scored, truth, judged) if cutoff == truth_at else {}
        rows.append({"cutoff": cutoff, **judged, **references, **monthly_metrics(monthly[cutoff]),
                     "skipped": "; ".join(n for n in (fallback_note(skipped[cutoff]), referral_note) if n)})
    return BacktestResult(pd.DataFrame(rows), scored_frames, monthly, skipped)


def monthly_reconciliation(forecast: pd.DataFrame, realised: pd.DataFrame) -> pd.DataFrame:
    """Forecast (:func:`~customer_value.valuation.cashflows.portfolio_by_month`) beside realised
    (:func:`~customer_value.features.monthly_outcomes`) margin and cost per month, and their relative errors."""
    realised = realised.rename(columns={"margin": "realised_margin", "cost_to_serve": "realised_cost"})
    table = forecast[["month", "expected_margin", "expected_cost"]].assign(
        month=lambda f: pd.to_datetime(f["month"]).dt.date).merge(realised, on="month", how="outer")
    table["margin_error"] = table["expected_margin"] / table["realised_margin"].where(table["realised_margin"] != 0) - 1.0
    table["cost_error"] = table["expected_cost"] / table["realised_cost"].where(table["realised_cost"] != 0) - 1.0
    return table


def monthly_metrics(table: pd.DataFrame) -> dict[str, float]:
    """Mean absolute relative error of the monthly portfolio margin and cost."""
    return {"monthly.margin_mape": float(table["margin_error"].abs().mean()),
            "monthly.cost_mape": float(table["cost_error"].abs().mean())}


def comparison_table(result: BacktestResult) -> pd.DataFrame:
    """Model beside baselines, averaged over cutoffs: one row per score, one column per metric,
    ``cutoffs``: at how many of the cutoffs the score existed (a part skipped at a cutoff, e.g.
    the drain model without a cost model, is left out of that cutoff's average, never replaced),
    and ``fallbacks``: at which cutoffs a part behind the score fell back, and which."""
    avg = result.average()
    metrics = ("spearman", "gini", "top_decile_capture", "negative_precision", "negative_recall")
    behind = {"value": None, "value_like_for_like": None, "drain": {"drain"}}  # None: every part; baselines use no fitted part
    rows = {}
    for source in ("value", "value_like_for_like", "drain", "baseline_historical_value", "baseline_bgnbd_gg_revenue"):
        columns = [f"{source}.{m}" for m in metrics if f"{source}.{m}" in result.metrics]
        present = int(result.metrics[columns].notna().any(axis=1).sum()) if columns else 0
        if present or (source == "drain" and any("drain" in s for s in result.skipped.values())):
            rows[source] = {**{m: avg.get(f"{source}.{m}", np.nan) for m in metrics},
                            "cutoffs": f"{present}/{len(result.metrics)}",
                            "fallbacks": _fallbacks(result.skipped, behind[source]) if source in behind else ""}
    return pd.DataFrame.from_dict(rows, orient="index", columns=[*metrics, "cutoffs", "fallbacks"]).round(4)


def _fallbacks(skipped: dict[dt.date, dict[str, str]], parts: set[str] | None) -> str:
    notes = []
    for cutoff, skipped_parts in sorted(skipped.items()):
        fell = sorted(p for p in skipped_parts if parts is None or p in parts)
        if fell:
            notes.append(f"{cutoff}: {', '.join(fell)}")
    return "; ".join(notes)
