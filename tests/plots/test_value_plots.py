"""Plots of scored customers (plots/value.py): money axes read like 200k / 1.2M, no segment colour
is pale on white, and a score frame with only the contract's columns still draws."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from customer_value.plots.value import (
    SEGMENT_COLORS,
    compact_number,
    plot_cost_by_activity,
    plot_horizon_sensitivity,
    plot_monthly_cash_flows,
    plot_value_by_group,
    plot_value_map,
)
from score_frames import minimal_scores, synthetic_scores


def _luminance(color: str) -> float:
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(c) for c in to_rgb(color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


@pytest.mark.parametrize("segment", sorted(SEGMENT_COLORS))
def test_every_segment_colour_stands_out_on_white(segment):
    contrast = 1.05 / (_luminance(SEGMENT_COLORS[segment]) + 0.05)
    assert contrast >= 3.0, (segment, SEGMENT_COLORS[segment], round(contrast, 2))


def test_money_ticks_read_compactly():
    ax = plot_horizon_sensitivity(pd.Series({182: 200_000.0, 365: 1_200_000.0, 1095: 2_500_000.0}))
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert labels and all(label.endswith(("k", "M")) or label == "0" for label in labels), labels
    assert compact_number(1_200_000) == "1.2M" and compact_number(200_000) == "200k"


def test_value_plots_draw_on_the_given_axes_and_without_optional_columns():
    full, minimal = synthetic_scores(200), minimal_scores(200)
    for scores in (full, minimal):
        ax = Figure().add_subplot()
        assert plot_value_by_group(scores, "value_segment", ax=ax, currency="USD") is ax
        assert plot_value_map(scores).get_legend() is not None
    labels = [t.get_text() for t in plot_value_by_group(full, "value_segment").get_xticklabels()]
    assert labels == ["top", "high", "medium", "low", "negative"]
    legend = plot_value_map(full).get_legend()
    assert min(t.get_fontsize() for t in legend.get_texts()) >= 9
    bars = plot_cost_by_activity(pd.Series({"Phone support": 3.0, "Orders": 5.0}))
    assert [t.get_text() for t in bars.get_yticklabels()] == ["Phone support", "Orders"]


def test_monthly_cash_flows_show_margin_in_cost_out_and_the_net_line():
    months = pd.DataFrame({"month": pd.date_range("2025-01-01", periods=12, freq="MS"),
                           "expected_margin": [30e3 - 700 * i for i in range(12)],
                           "expected_cost": [14e3 - 500 * i for i in range(12)]})
    months["expected_net"] = months["expected_margin"] - months["expected_cost"]
    months["discounted_net"] = months["expected_net"] * 0.98
    ax = plot_monthly_cash_flows(months, currency="EUR")
    heights = sorted(p.get_height() for p in ax.patches)
    assert len(heights) == 24 and heights[0] == pytest.approx(-14e3) and heights[-1] == pytest.approx(30e3)
    net = next(line for line in ax.get_lines() if line.get_label() == "net (margin − cost)")
    assert list(net.get_ydata()) == pytest.approx(months["expected_net"].tolist())
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["Jan 2025", "Feb 2025"]
    assert "EUR" in ax.get_ylabel()


def test_a_long_horizons_months_keep_readable_labels():
    months = pd.DataFrame({"month": pd.date_range("2025-01-01", periods=60, freq="MS"),
                           "expected_margin": 1e3, "expected_cost": 4e2})
    months["expected_net"] = months["discounted_net"] = 6e2
    labels = [t.get_text() for t in plot_monthly_cash_flows(months).get_xticklabels()]
    assert 10 <= len(labels) <= 20 and labels[0] == "Jan 2025"
