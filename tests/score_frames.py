"""Score frames for the report's tests: a synthetic one shaped like the score file (contract sections 5
and 8, every optional column), the contract's minimum of it, and the optional columns added to a
real score frame that lacks them (so every section of the report has something to show)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

CONTRACT_COLUMNS = (
    "customer_id", "as_of", "horizon_days", "p_alive", "expected_transactions", "expected_order_value",
    "expected_revenue", "expected_margin", "churn_probability", "expected_cost_to_serve",
    "expected_referral_value", "historical_value", "customer_value", "value_segment", "model_uri",
)
"""Contract section 5: what every score file has."""
ACTIVITIES = ("support_email", "support_chat", "support_phone", "support_other", "escalations", "orders",
              "payment_fees", "invoices", "late_payments", "pool_platform")
INTERVALS = ("customer_value", "net_value", "expected_revenue", "expected_margin", "expected_cost_to_serve", "expected_transactions")
COST_SEGMENTS = ("support-heavy", "billing-heavy", "order-heavy")


def synthetic_scores(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """A score frame with every column the report can use; the components add up as in the model."""
    rng = np.random.default_rng(seed)
    revenue = rng.gamma(0.8, 900.0, n)
    margin = revenue * rng.uniform(0.3, 0.7, n)
    cost = rng.gamma(1.2, 150.0, n)
    referrals = rng.gamma(0.3, 0.5, n)
    spread = 0.95
    scores = pd.DataFrame({
        "customer_id": [f"C{i:06d}" for i in range(n)],
        "as_of": dt.date(2024, 7, 1),
        "horizon_days": 365,
        "p_alive": rng.uniform(0.05, 1.0, n),
        "expected_transactions": rng.gamma(1.0, 3.0, n),
        "expected_order_value": rng.gamma(2.0, 60.0, n),
        "expected_revenue": revenue,
        "expected_margin": margin,
        "discounted_expected_revenue": revenue * spread,
        "discounted_expected_margin": margin * spread,
        "churn_probability": rng.uniform(0, 1, n),
        "expected_cost_to_serve": cost,
        "discounted_expected_cost_to_serve": cost * spread,
        "expected_referrals": referrals,
        "expected_referral_value": referrals * 40.0 * spread,
        "historical_value": rng.normal(100.0, 300.0, n),
    })
    scores["customer_value"] = (scores["discounted_expected_margin"] - scores["discounted_expected_cost_to_serve"]
                                + scores["expected_referral_value"])
    value = scores["customer_value"].to_numpy()
    cuts = np.quantile(value[value >= 0], (0.5, 0.8, 0.95))
    scores["value_segment"] = np.select(
        [value < 0, value < cuts[0], value < cuts[1], value < cuts[2]], ["negative", "low", "medium", "high"], "top")
    scores["model_uri"] = "models:/customer_value/7"
    scores["model_version"] = "7"
    scores["model_alias"] = "champion"
    probability = 1 / (1 + np.exp(value / 150.0 + rng.normal(0, 0.7, n)))
    scores["drain_probability"] = probability
    scores["drain_flag"] = probability >= 0.5
    scores["plan"] = rng.choice(["basic", "pro", "enterprise"], n)
    scores["acquisition_channel"] = rng.choice(["organic", "paid_search", "referral", None], n)
    scores["region"] = rng.choice(["north", "south", "east"], n)
    return with_optional_columns(scores, seed)


def with_optional_columns(scores: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """``scores`` with the optional columns of contract section 8 that it lacks: cost per activity
    (adding up to the expected cost-to-serve), the cost segment, 80% intervals and the cost drivers."""
    rng = np.random.default_rng(seed + 1)
    out = scores.copy()
    n = len(out)
    cost = out["expected_cost_to_serve"].to_numpy(dtype=float)
    if not any(c.startswith("expected_cost_") and c != "expected_cost_to_serve" for c in out.columns):
        weights = rng.dirichlet(np.full(len(ACTIVITIES), 0.6), n)
        for i, activity in enumerate(ACTIVITIES):
            out[f"expected_cost_{activity}"] = weights[:, i] * cost
    if "cost_segment" not in out.columns:
        groups = np.column_stack([_sum(out, ACTIVITIES[:5]), _sum(out, ("invoices", "late_payments")),
                                  _sum(out, ("orders", "payment_fees"))])
        segments = np.asarray(COST_SEGMENTS, dtype=object)[groups.argmax(axis=1)]
        segments[cost < np.quantile(cost, 0.2)] = "light"
        out["cost_segment"] = segments
    for quantity in INTERVALS:
        if f"{quantity}_p10" in out.columns:
            continue
        if quantity == "net_value":
            point = (out["expected_margin"] - out["expected_cost_to_serve"]).to_numpy(dtype=float)
        else:
            point = out[quantity].to_numpy(dtype=float)
        half = np.abs(point) * rng.uniform(0.2, 0.8, n) + rng.uniform(1.0, 20.0, n)
        out[f"{quantity}_p10"] = point - half
        out[f"{quantity}_p90"] = point + half
    if "top_cost_drivers" not in out.columns or not out["top_cost_drivers"].astype(str).str.contains(" of ").any():
        phone = (out["expected_cost_support_phone"].to_numpy(dtype=float) if "expected_cost_support_phone" in out
                 else cost)
        out["top_cost_drivers"] = [f"phone support {p:,.2f} of {c:,.2f}" for p, c in zip(phone, cost)]
    return out


def _sum(scores: pd.DataFrame, activities: tuple[str, ...]) -> np.ndarray:
    columns = [f"expected_cost_{a}" for a in activities if f"expected_cost_{a}" in scores.columns]
    return scores[columns].sum(axis=1).to_numpy(dtype=float) if columns else np.zeros(len(scores))


def minimal_scores(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Only the contract's section 5 columns: no drain flag, no discounted parts, no account columns."""
    return synthetic_scores(n, seed)[list(CONTRACT_COLUMNS)]
