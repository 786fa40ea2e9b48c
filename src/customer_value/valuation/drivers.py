"""The accounts that drain resources (negative value or a drain flag), the ones among them that look
profitable on revenue and margin alone, and why: the cost model's largest contributions per customer,
as text."""

from __future__ import annotations

import pandas as pd

from customer_value.boosted.explain import top_drivers
from customer_value.valuation.value import ValueModel


def drains(scores: pd.DataFrame) -> pd.Series:
    """True where a customer drains resources: a negative expected value (``customer_value < 0``)
    or flagged by the drain model (``drain_flag``, when the frame has it)."""
    draining = scores["customer_value"] < 0
    if "drain_flag" in scores.columns:
        draining = draining | scores["drain_flag"].fillna(False).astype(bool)
    return draining


def drain_list(scores: pd.DataFrame) -> pd.DataFrame:
    """Every customer who drains resources (:func:`drains`: negative value or ``drain_flag``),
    most likely drains first (highest ``drain_probability``, then lowest value; lowest value first
    without a drain probability)."""
    listed = scores[drains(scores)]
    if "drain_probability" in listed.columns:
        return listed.sort_values(["drain_probability", "customer_value"], ascending=[False, True], kind="stable")
    return listed.sort_values("customer_value", kind="stable")


def looks_profitable(scores: pd.DataFrame, revenue_quantile: float = 0.75) -> pd.Series:
    """True where revenue and margin alone make a customer look profitable: in the top quarter of
    expected revenue (of the whole frame) with a positive expected margin before cost-to-serve."""
    if scores.empty:
        return pd.Series(False, index=scores.index)
    threshold = scores["expected_revenue"].quantile(revenue_quantile)
    looks = scores["expected_revenue"] >= threshold
    if "expected_margin" in scores.columns:
        looks = looks & (scores["expected_margin"] > 0)
    return looks


def looks_profitable_but_drains(scores: pd.DataFrame, revenue_quantile: float = 0.75) -> pd.DataFrame:
    """The part of :func:`drain_list` that :func:`looks_profitable` (top quarter of expected
    revenue, positive expected margin), in the same order: most likely drains first."""
    return drain_list(scores[looks_profitable(scores, revenue_quantile)])


def format_drivers(drivers: pd.DataFrame) -> pd.Series:
    """``explain.top_drivers`` output as one readable string per row: 'feature (+0.83), ...'."""
    k = sum(1 for c in drivers.columns if c.startswith("driver_") and not c.endswith("_contribution"))
    parts = [drivers[f"driver_{i}"].astype(str) + drivers[f"driver_{i}_contribution"].map(lambda v: f" ({v:+.2f})")
             for i in range(1, k + 1)]
    text = parts[0]
    for part in parts[1:]:
        text = text + ", " + part
    return text


def cost_drivers(model: ValueModel, features: pd.DataFrame, k: int = 3) -> pd.Series:
    """The cost model's k largest SHAP contributions per row (log scale), as readable text."""
    if model.cost_model is None or features.empty:
        return pd.Series("", index=features.index)
    model_input = model.model_input(features, window_days=model.settings.horizon_days)
    return format_drivers(top_drivers(model.cost_model, model_input, k))


def with_drain_drivers(scores: pd.DataFrame, features: pd.DataFrame, model: ValueModel) -> pd.DataFrame:
    """``top_cost_drivers`` on every row: filled for the customers who look profitable but drain
    (the report's list), empty elsewhere (TreeSHAP is too slow to explain everyone)."""
    drains = looks_profitable_but_drains(scores)
    scores["top_cost_drivers"] = ""
    if len(drains):
        idx = features.index[features["customer_id"].isin(drains["customer_id"])]
        drivers = cost_drivers(model, features.loc[idx]).set_axis(features.loc[idx, "customer_id"])
        listed = scores["customer_id"].isin(drivers.index)
        scores.loc[listed, "top_cost_drivers"] = scores.loc[listed, "customer_id"].map(drivers)
    return scores
