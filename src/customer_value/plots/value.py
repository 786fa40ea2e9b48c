"""Plots of scored customers. Each takes and returns a matplotlib Axes (no global pyplot state)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

SEGMENT_ORDER = ("top", "high", "medium", "low", "negative")
SEGMENT_COLORS = {"top": "#1b7837", "high": "#5aae61", "medium": "#a6dba0", "low": "#d9d9d9", "negative": "#c51b7d"}


def _axes(ax: Axes | None, size: tuple[float, float] = (6.4, 4.2)) -> Axes:
    if ax is not None:
        return ax
    return Figure(figsize=size, layout="constrained").add_subplot()


def plot_value_by_group(scores: pd.DataFrame, by: str, ax: Axes | None = None) -> Axes:
    """Total customer value per group, split into margin, cost and referral contributions."""
    ax = _axes(ax)
    grouped = scores.groupby(by, dropna=False, observed=True).agg(
        margin=("discounted_expected_margin", "sum"),
        cost=("discounted_expected_cost_to_serve", "sum"),
        referral=("expected_referral_value", "sum"),
        value=("customer_value", "sum"),
    )
    if by == "value_segment":
        grouped = grouped.reindex([s for s in SEGMENT_ORDER if s in grouped.index])
    x = np.arange(len(grouped))
    ax.bar(x - 0.27, grouped["margin"], 0.27, label="discounted margin", color="#4393c3")
    ax.bar(x, -grouped["cost"], 0.27, label="− discounted cost-to-serve", color="#d6604d")
    ax.bar(x + 0.27, grouped["value"], 0.27, label="customer value", color="#1b7837")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, [str(i) for i in grouped.index], rotation=20)
    ax.set_title(f"Value by {by.replace('_', ' ')}")
    ax.set_ylabel("currency, horizon total")
    ax.legend(fontsize=8)
    return ax


def plot_value_map(scores: pd.DataFrame, ax: Axes | None = None, max_points: int = 20000, seed: int = 0) -> Axes:
    """Expected margin against expected cost-to-serve; below the diagonal customers pay their way."""
    ax = _axes(ax, (6.0, 5.4))
    sample = scores.sample(min(len(scores), max_points), random_state=seed) if len(scores) > max_points else scores
    for segment in SEGMENT_ORDER:
        part = sample[sample["value_segment"] == segment]
        if len(part):
            ax.scatter(part["discounted_expected_cost_to_serve"], part["discounted_expected_margin"], s=6,
                       alpha=0.5, color=SEGMENT_COLORS[segment], label=segment)
    hi = float(np.nanmax([sample["discounted_expected_cost_to_serve"].max(), sample["discounted_expected_margin"].max(), 1.0]))
    ax.plot([0, hi], [0, hi], color="black", linewidth=0.8, linestyle="--", label="margin = cost")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_yscale("symlog", linthresh=10)
    ax.set_xlabel("discounted expected cost-to-serve")
    ax.set_ylabel("discounted expected margin")
    ax.set_title("Value map")
    ax.legend(fontsize=8, markerscale=2)
    return ax


def plot_horizon_sensitivity(totals: pd.Series, ax: Axes | None = None) -> Axes:
    """Total customer value at several horizons (index: horizon in days)."""
    ax = _axes(ax, (5.0, 3.6))
    ax.bar([f"{int(h) / 365:.1f} y" for h in totals.index], totals.to_numpy(), color="#2166ac")
    ax.set_title("Total customer value by horizon")
    ax.set_ylabel("currency")
    return ax


def plot_gains(y_true: np.ndarray, scores: dict[str, np.ndarray], ax: Axes | None = None) -> Axes:
    """Cumulative share of realised value captured when customers are ranked by each score."""
    ax = _axes(ax, (5.4, 4.4))
    y = np.asarray(y_true, dtype=float)
    positive = np.clip(y, 0, None)
    total = positive.sum() or 1.0
    share = np.arange(1, len(y) + 1) / len(y)
    for name, score in scores.items():
        order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
        ax.plot(share, np.cumsum(positive[order]) / total, label=name)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8, label="random")
    ax.set_xlabel("share of customers (ranked by score)")
    ax.set_ylabel("share of realised positive value")
    ax.set_title("Gains")
    ax.legend(fontsize=8)
    return ax
