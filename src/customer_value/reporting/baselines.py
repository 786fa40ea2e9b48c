"""Which baseline metrics stand beside a model's metric, by their logged names.

A training run logs every validation metric beside its naive baselines on the same rows
(``churn.valid.roc_auc`` beside ``churn.baseline_bgnbd.roc_auc`` and ``churn.baseline_recency.roc_auc``)
and the internal backtest beside its own (``backtest.value.spearman`` beside
``backtest.baseline_historical_value.spearman`` ...). ``compare`` and the report's model quality
show them side by side; this module says which goes with which.
"""

from __future__ import annotations

from collections.abc import Iterable

BACKTEST_BASELINES: dict[str, tuple[tuple[str, str | None], ...]] = {
    "value": (("baseline_historical_value", None), ("baseline_bgnbd_gg_revenue", None)),
    "drain": (("baseline_historical_value", None),),
    "revenue": (("baseline_bgnbd_gg_revenue", "revenue_{}"),),
    "cost": (("baseline_historical_cost", None),),
}
"""Backtest score -> (baseline source, how the baseline's metric is named when not the same)."""
BASELINE_NAMES = {
    "baseline_bgnbd": "BG/NBD",
    "baseline_recency": "recency rule",
    "baseline_trailing": "trailing window",
    "baseline_historical": "trailing net value",
    "baseline_historical_value": "trailing net value",
    "baseline_bgnbd_gg_revenue": "BG/NBD × Gamma-Gamma",
    "baseline_historical_cost": "trailing cost",
}
"""How a baseline reads in words."""


def is_baseline(metric: str) -> bool:
    """Whether a logged metric is a baseline's (``<part>.baseline_<name>.<metric>``)."""
    parts = metric.split(".")
    return len(parts) >= 3 and parts[-2].startswith("baseline_")


def baselines_of(metric: str, available: Iterable[str]) -> list[str]:
    """The logged baseline metrics (among ``available``) that stand beside ``metric``, in a stable order."""
    known = set(available)
    parts = metric.split(".")
    if len(parts) != 3 or is_baseline(metric):
        return []
    part, source, name = parts
    if part == "backtest":
        candidates = [f"backtest.{baseline}.{(rename or '{}').format(name)}"
                      for baseline, rename in BACKTEST_BASELINES.get(source, ())]
    elif source == "valid":
        prefix, suffix = f"{part}.baseline_", f".{name}"
        candidates = sorted(m for m in known if m.startswith(prefix) and m.endswith(suffix) and m.count(".") == 2)
    else:
        return []
    return [c for c in candidates if c in known]


def baseline_name(metric: str) -> str:
    """A baseline metric's baseline in words (``churn.baseline_bgnbd.roc_auc`` -> ``BG/NBD``)."""
    source = metric.split(".")[-2]
    return BASELINE_NAMES.get(source, source.removeprefix("baseline_").replace("_", " "))


MEASURES: dict[str, str] = {
    "backtest.value.spearman": "Value against realised net value: rank correlation (backtest)",
    "backtest.value.top_decile_capture":
        "Top 10% by value: realised net value against the best possible top 10% (backtest)",
    "backtest.value_like_for_like.spearman":
        "Value without referrals against realised margin − cost: rank correlation (backtest)",
    "backtest.value.aggregate_bias": "Total margin − cost against realised: relative bias (backtest)",
    "backtest.revenue.spearman": "Revenue against realised revenue: rank correlation (backtest)",
    "backtest.cost.spearman": "Cost-to-serve against realised: rank correlation (backtest)",
    "backtest.churn.roc_auc": "Churn ranking: ROC AUC (backtest)",
    "backtest.drain.negative_precision": "Flagged drains that lost money: share (backtest)",
    "backtest.drain.negative_recall": "Money-losing customers flagged: share (backtest)",
    "churn.valid.roc_auc": "Churn ranking: ROC AUC (validation)",
    "churn.valid.brier": "Churn probability error: Brier score, lower is better (validation)",
    "cost.valid.spearman": "Cost-to-serve ranking: rank correlation (validation)",
    "margin.valid.spearman": "Margin ranking: rank correlation (validation)",
    "drain.valid.roc_auc": "Drain ranking: ROC AUC (validation)",
    "drain.valid.flag_precision": "Flagged drains that lost money: share (validation)",
    "drain.valid.flag_recall": "Money-losing customers flagged: share (validation)",
}
"""The model-quality measures a report shows, in words, by logged metric name."""
