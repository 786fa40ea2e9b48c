"""The scoring report a person looks at: value by segment, plan and channel, the accounts that look
profitable but drain resources (with their cost drivers), the value map and horizon sensitivity.

:func:`report_figures` and :func:`report_tables` are pure (frames in, figures and frames out);
:func:`write_html_report` is the edge that writes one self-contained HTML page.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from customer_value.data.writing import write_text_atomically
from customer_value.valuation.drivers import looks_profitable_but_drains
from customer_value.plots.value import (
    plot_horizon_sensitivity,
    plot_value_by_group,
    plot_value_map,
)

DRAIN_COLUMNS = (
    "customer_id", "plan", "acquisition_channel", "expected_revenue", "expected_margin",
    "expected_cost_to_serve", "customer_value", "drain_probability", "hist_cost_support", "hist_cost_orders_and_fees",
    "hist_cost_invoices_and_late", "top_cost_drivers",
)


def report_tables(scores: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Value by segment, plan and channel (count, totals, means) and the drain list."""
    tables: dict[str, pd.DataFrame] = {}
    for by in ("value_segment", "plan", "acquisition_channel"):
        if by not in scores.columns or scores[by].isna().all():
            continue
        tables[f"value by {by.replace('_', ' ')}"] = (
            scores.groupby(by, dropna=False, observed=True)
            .agg(customers=("customer_id", "size"), total_value=("customer_value", "sum"),
                 mean_value=("customer_value", "mean"), expected_revenue=("expected_revenue", "sum"),
                 expected_cost=("expected_cost_to_serve", "sum"), churn_probability=("churn_probability", "mean"))
            .sort_values("total_value", ascending=False)
            .round(2)
        )
    drains = looks_profitable_but_drains(scores)
    tables["looks profitable but drains"] = drains[[c for c in DRAIN_COLUMNS if c in drains.columns]].head(50).round(2)
    return tables


def report_figures(scores: pd.DataFrame, horizon_totals: pd.Series | None = None) -> dict[str, Figure]:
    """The report's figures by file name (also what a scoring run logs to MLflow)."""
    figures: dict[str, Figure] = {}
    for by in ("value_segment", "plan", "acquisition_channel"):
        if by in scores.columns and not scores[by].isna().all():
            ax = plot_value_by_group(scores, by)
            figures[f"value_by_{by}.png"] = ax.figure
    figures["value_map.png"] = plot_value_map(scores).figure
    if horizon_totals is not None:
        figures["horizon_sensitivity.png"] = plot_horizon_sensitivity(horizon_totals).figure
    return figures


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode()


def render_html(scores: pd.DataFrame, title: str, horizon_totals: pd.Series | None = None) -> str:
    """One self-contained page: headline numbers, tables and the figures embedded as PNG."""
    drains = looks_profitable_but_drains(scores)
    negative = scores["customer_value"] < 0
    headline = {
        "customers scored": f"{len(scores):,}",
        "total customer value": f"{scores['customer_value'].sum():,.0f}",
        "expected revenue": f"{scores['expected_revenue'].sum():,.0f}",
        "expected cost-to-serve": f"{scores['expected_cost_to_serve'].sum():,.0f}",
        "negative-value customers": f"{int(negative.sum()):,} ({negative.mean():.1%})",
        "look profitable but drain": f"{len(drains):,}",
        "flagged to drain (drain_flag)": f"{int(scores['drain_flag'].sum()):,} ({scores['drain_flag'].mean():.1%})",
    }
    parts = [f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;"
             "font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
             "img{max-width:49%}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><table>"]
    parts += [f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in headline.items()]
    parts.append("</table>")
    for name, figure in report_figures(scores, horizon_totals).items():
        parts.append(f"<img alt='{html.escape(name)}' src='data:image/png;base64,{_png(figure)}'>")
    for name, table in report_tables(scores).items():
        parts.append(f"<h2>{html.escape(name.capitalize())}</h2>")
        parts.append(table.to_html(na_rep="", float_format=lambda v: f"{v:,.2f}"))
    if horizon_totals is not None:
        parts.append("<h2>Horizon sensitivity</h2>")
        parts.append(horizon_totals.rename("total customer value").to_frame().to_html(float_format=lambda v: f"{v:,.0f}"))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html_report(scores: pd.DataFrame, path: str | Path, title: str, horizon_totals: pd.Series | None = None) -> Path:
    """The one edge of this module: the page, written atomically."""
    return write_text_atomically(render_html(scores, title, horizon_totals), path)
