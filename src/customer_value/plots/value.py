"""Plots of scored customers. Each takes and returns a matplotlib Axes (no global pyplot state).

Money axes read like 200k or 1.2M (:func:`compact_number`); every colour stands out on white.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

SEGMENT_ORDER = ("top", "high", "medium", "low", "negative")
SEGMENT_COLORS = {"top": "#00441b", "high": "#1b7837", "medium": "#4a9e50", "low": "#b35806", "negative": "#c51b7d"}
"""Greens from top to medium, then a dark orange for low and magenta for negative: each at least 3:1
against white (WCAG's contrast for graphics), none a pale grey."""
LEGEND_FONT = 9
MINUS = "\u2212"


def compact_number(value: float, _position: object = None) -> str:
    """200k, 1.2M, 3B, 950, 2.5, −40k: a number as an axis tick reads it (a matplotlib tick formatter)."""
    if value is None or not math.isfinite(value):
        return ""
    size = abs(value)
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if size >= scale * 0.9995:
            body = f"{size / scale:.1f}".removesuffix(".0") + suffix
            break
    else:
        body = f"{size:.1f}".removesuffix(".0") if size < 10 else f"{size:.0f}"
    return (MINUS if value < 0 and body.strip("0.") else "") + body


COMPACT = FuncFormatter(compact_number)


def _axes(ax: Axes | None, size: tuple[float, float] = (6.4, 4.2)) -> Axes:
    if ax is not None:
        return ax
    return Figure(figsize=size, layout="constrained").add_subplot()


def _first(scores: pd.DataFrame, *names: str) -> pd.Series:
    """The first of ``names`` that ``scores`` has (discounted columns, else their undiscounted twin),
    else zeros."""
    for name in names:
        if name in scores.columns:
            return scores[name].astype(float)
    return pd.Series(0.0, index=scores.index)


def plot_value_by_group(scores: pd.DataFrame, by: str, ax: Axes | None = None, currency: str = "") -> Axes:
    """Total customer value per group, split into margin, cost and referral contributions."""
    ax = _axes(ax)
    frame = pd.DataFrame({
        "group": scores[by].astype("string").fillna("(none)"),
        "margin": _first(scores, "discounted_expected_margin", "expected_margin"),
        "cost": _first(scores, "discounted_expected_cost_to_serve", "expected_cost_to_serve"),
        "value": _first(scores, "customer_value"),
    })
    grouped = frame.groupby("group", observed=True)[["margin", "cost", "value"]].sum()
    if by == "value_segment":
        grouped = grouped.reindex([s for s in SEGMENT_ORDER if s in grouped.index])
    else:
        grouped = grouped.sort_values("value", ascending=False)
    x = np.arange(len(grouped))
    ax.bar(x - 0.27, grouped["margin"], 0.27, label="discounted margin", color="#2166ac")
    ax.bar(x, -grouped["cost"], 0.27, label="− discounted cost-to-serve", color="#d6604d")
    ax.bar(x + 0.27, grouped["value"], 0.27, label="customer value", color="#1b7837")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, [str(i) for i in grouped.index], rotation=20, ha="right")
    ax.set_title(f"Value by {by.replace('_', ' ')}", pad=26)
    ax.set_ylabel(" ".join(filter(None, [currency, "horizon total"])))
    ax.yaxis.set_major_formatter(COMPACT)
    # above the bars, never over them
    ax.legend(fontsize=LEGEND_FONT, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    return ax


def plot_value_map(scores: pd.DataFrame, ax: Axes | None = None, max_points: int = 20000, seed: int = 0,
                   currency: str = "") -> Axes:
    """Expected margin against expected cost-to-serve; above the diagonal customers pay their way."""
    ax = _axes(ax, (6.0, 5.4))
    sample = scores.sample(min(len(scores), max_points), random_state=seed) if len(scores) > max_points else scores
    cost = _first(sample, "discounted_expected_cost_to_serve", "expected_cost_to_serve")
    margin = _first(sample, "discounted_expected_margin", "expected_margin")
    segments = sample["value_segment"] if "value_segment" in sample.columns else pd.Series("", index=sample.index)
    for segment in SEGMENT_ORDER:
        part = (segments == segment).to_numpy()
        if part.any():
            ax.scatter(cost[part], margin[part], s=8, alpha=0.6, color=SEGMENT_COLORS[segment], label=segment,
                       linewidths=0)
    rest = ~segments.isin(SEGMENT_ORDER).to_numpy()
    if rest.any():
        ax.scatter(cost[rest], margin[rest], s=8, alpha=0.6, color="#2166ac", label="customers", linewidths=0)
    hi = float(np.nanmax([cost.max(), margin.max(), 1.0]))
    ax.plot([0, hi], [0, hi], color="black", linewidth=0.8, linestyle="--", label="margin = cost")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_yscale("symlog", linthresh=10)
    ax.xaxis.set_major_formatter(COMPACT)
    ax.yaxis.set_major_formatter(COMPACT)
    unit = f" ({currency})" if currency else ""
    ax.set_xlabel(f"discounted expected cost-to-serve{unit}")
    ax.set_ylabel(f"discounted expected margin{unit}")
    ax.set_title("Value map")
    ax.legend(fontsize=LEGEND_FONT, markerscale=2)
    return ax


def plot_horizon_sensitivity(totals: pd.Series, ax: Axes | None = None, currency: str = "") -> Axes:
    """Total customer value at several horizons (index: horizon in days)."""
    ax = _axes(ax, (5.0, 3.6))
    ax.bar([f"{int(h) / 365:.1f} y" for h in totals.index], totals.to_numpy(), color="#2166ac")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_title("Total customer value by horizon")
    ax.set_ylabel(currency or "value")
    ax.yaxis.set_major_formatter(COMPACT)
    return ax


def plot_monthly_cash_flows(monthly: pd.DataFrame, ax: Axes | None = None, currency: str = "") -> Axes:
    """Expected margin in and cost-to-serve out per calendar month of the horizon, and what is left
    (``monthly``: :func:`customer_value.valuation.cashflows.portfolio_by_month`'s rows)."""
    ax = _axes(ax, (7.2, 4.4))
    labels = pd.to_datetime(monthly["month"]).dt.strftime("%b %Y").tolist()
    x = np.arange(len(monthly))
    ax.bar(x, monthly["expected_margin"].to_numpy(dtype=float), 0.7, label="expected margin", color="#2166ac")
    ax.bar(x, -monthly["expected_cost"].to_numpy(dtype=float), 0.7, label="− expected cost-to-serve",
           color="#d6604d")
    ax.plot(x, monthly["expected_net"].to_numpy(dtype=float), color="black", marker="o", markersize=4,
            label="net (margin − cost)")
    ax.plot(x, monthly["discounted_net"].to_numpy(dtype=float), color="black", linestyle="--", linewidth=1,
            label="net, discounted")
    ax.axhline(0, color="black", linewidth=0.8)
    step = max(1, math.ceil(len(x) / 18))  # a long horizon's months labelled every quarter or so
    ax.set_xticks(x[::step], labels[::step], rotation=35, ha="right")
    ax.set_title("Cash flows by month", pad=40)
    ax.set_ylabel(" ".join(filter(None, [currency, "per month"])))
    ax.yaxis.set_major_formatter(COMPACT)
    ax.legend(fontsize=LEGEND_FONT, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    return ax


def plot_cost_by_activity(totals: pd.Series, ax: Axes | None = None, currency: str = "") -> Axes:
    """Expected cost-to-serve per activity (index: readable activity names), largest on top."""
    ordered = totals.sort_values()
    ax = _axes(ax, (6.4, max(2.4, 0.45 * len(ordered) + 1.2)))
    ax.barh([str(i) for i in ordered.index], ordered.to_numpy(), color="#d6604d")
    ax.set_title("Expected cost-to-serve by activity")
    ax.set_xlabel(" ".join(filter(None, [currency, "horizon total, undiscounted"])))
    ax.xaxis.set_major_formatter(COMPACT)
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
    ax.legend(fontsize=LEGEND_FONT)
    return ax
