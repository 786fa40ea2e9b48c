"""The what-if chart: how much value each group gains or loses under a change (an Axes in, out)."""

from __future__ import annotations

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from customer_value.plots.value import COMPACT

GAIN, LOSS = "#1b7837", "#c51b7d"


def plot_value_change(by_group: pd.DataFrame, group: str, ax: Axes | None = None) -> Axes:
    """Horizontal bars of the change in total customer value per ``group`` (green gains, magenta losses)."""
    if ax is None:
        ax = Figure(figsize=(6.4, max(2.4, 0.45 * len(by_group) + 1.2)), layout="constrained").subplots()
    change = by_group["value_change"].astype(float)
    labels = [str(v) for v in by_group.index]
    ax.barh(labels, change, color=[GAIN if v >= 0 else LOSS for v in change])
    ax.axvline(0.0, color="#333333", linewidth=0.8)
    ax.xaxis.set_major_formatter(COMPACT)
    ax.set_xlabel("change in total customer value")
    ax.set_title(f"What-if: value change by {group.replace('_', ' ')}")
    return ax
