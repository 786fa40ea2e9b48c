"""The accounts that look profitable but drain resources, and why: the cost model's largest
contributions per customer, as text."""

from __future__ import annotations

import pandas as pd

from customer_value.boosted.explain import top_drivers
from customer_value.valuation.value import ValueModel


def looks_profitable_but_drains(scores: pd.DataFrame, revenue_quantile: float = 0.75) -> pd.DataFrame:
    """Customers in the top quarter of expected revenue whose expected net value is negative or
    who are flagged to drain (``drain_flag``): most likely drains first (lowest value first
    without a drain probability)."""
    if scores.empty:
        return scores
    threshold = scores["expected_revenue"].quantile(revenue_quantile)
    draining = (scores["customer_value"] < 0) | scores["drain_flag"].astype(bool)
    drains = scores[(scores["expected_revenue"] >= threshold) & draining]
    if "drain_probability" in drains:
        return drains.sort_values(["drain_probability", "customer_value"], ascending=[False, True], kind="stable")
    return drains.sort_values("customer_value", kind="stable")


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
