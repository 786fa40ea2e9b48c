"""Value segments: ``negative`` below zero, else ``low / medium / high / top`` at value quantiles
learned at fit time, so weekly scorings of one model share cut points; and ``cost_segment`` by which
activities dominate a customer's expected cost (``light`` below a cut learned at fit time)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def assign_segments(values: np.ndarray, cuts: tuple[float, float, float]) -> np.ndarray:
    """negative / low / medium / high / top from value cut points (see module docstring)."""
    values = np.asarray(values, dtype=float)
    labels = np.array(["low", "medium", "high", "top"], dtype=object)
    out = labels[np.searchsorted(np.asarray(cuts), values, side="right")]
    out[values < 0] = "negative"
    return out


def segment_cuts(values: np.ndarray, quantiles: tuple[float, float, float]) -> tuple[float, float, float]:
    non_negative = np.asarray(values, dtype=float)
    non_negative = non_negative[np.isfinite(non_negative) & (non_negative >= 0)]
    if len(non_negative) == 0:
        return (0.0, 0.0, 0.0)
    return tuple(float(v) for v in np.quantile(non_negative, quantiles))  # type: ignore[return-value]


# -- by cost structure ---------------------------------------------------------------------------

LIGHT = "light"
COST_GROUPS: dict[str, tuple[str, ...]] = {
    "support-heavy": ("support_email", "support_chat", "support_phone", "support_other", "escalations"),
    "billing-heavy": ("invoices", "late_payments"),
    "order-heavy": ("orders", "payment_fees"),
}
"""Which activities make up each cost structure; a pool joins the group of its driver."""
POOL_DRIVER_GROUP = {"support_minutes": "support-heavy", "invoices": "billing-heavy", "transactions": "order-heavy"}


def cost_groups(pools: Sequence[tuple[str, str]] = ()) -> dict[str, list[str]]:
    """``{segment: [activity, ...]}`` for pools given as ``(name, driver)`` (an
    ``active_customer_months`` pool belongs to no group: it follows presence, not an activity)."""
    groups = {name: list(acts) for name, acts in COST_GROUPS.items()}
    for name, driver in pools:
        if driver in POOL_DRIVER_GROUP:
            groups[POOL_DRIVER_GROUP[driver]].append(f"pool_{name}")
    return groups


def assign_cost_segments(costs: pd.DataFrame, groups: dict[str, list[str]], light_cut: float) -> np.ndarray:
    """``light`` when the expected cost to serve is below ``light_cut``, else the group of
    activities with the largest share of it (``support-heavy``, ``billing-heavy``, ``order-heavy``).
    ``costs`` holds ``expected_cost_<activity>`` columns and ``expected_cost_to_serve``."""
    names = list(groups)
    shares = np.column_stack([
        sum((costs[f"expected_cost_{a}"].to_numpy(dtype=float) for a in acts if f"expected_cost_{a}" in costs),
            np.zeros(len(costs)))
        for acts in groups.values()
    ])
    out = np.asarray(names, dtype=object)[np.argmax(shares, axis=1)]
    out[costs["expected_cost_to_serve"].to_numpy(dtype=float) < light_cut] = LIGHT
    return out
