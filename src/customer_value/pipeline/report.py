"""The scoring report a person looks at, written to a file: the edge of :mod:`customer_value.reporting`.

What the page shows and how it reads lives in ``reporting/`` (pure: frames in, an HTML string out);
this module only writes it, atomically. :func:`report_figures` is also what a scoring run logs to
MLflow; :func:`report_tables` gives the report's tables as frames (for a notebook).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from customer_value.data.writing import write_text_atomically
from customer_value.reporting import sections
from customer_value.reporting.formatting import DEFAULT_CURRENCY
from customer_value.reporting.html import render_html

__all__ = ["DEFAULT_CURRENCY", "render_html", "report_figures", "report_tables", "write_html_report"]


def report_figures(scores: pd.DataFrame, horizon_totals: pd.Series | None = None,
                   currency: str = DEFAULT_CURRENCY, cash_flows: pd.DataFrame | None = None) -> dict[str, Figure]:
    """The report's figures by file name (also what a scoring run logs to MLflow)."""
    return sections.report_figures(scores, horizon_totals, currency, cash_flows)


def report_tables(scores: pd.DataFrame, horizon_totals: pd.Series | None = None, quality: Any = None,
                  drift: Any = None, cash_flows: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """Every table the report shows, by caption, as raw frames (the whole drain list included)."""
    parts = sections.build_sections(scores, horizon_totals, quality, drift, cash_flows=cash_flows)
    tables = {table.caption: table.frame for section in parts for table in section.tables}
    tables["Drain list"] = sections.drain_frame(scores)
    return tables


def write_html_report(scores: pd.DataFrame, path: str | Path, title: str = "Customer value",
                      horizon_totals: pd.Series | None = None, quality: Any = None, drift: Any = None,
                      currency: str = DEFAULT_CURRENCY, model_horizon_days: int | None = None,
                      referral: Any = None, cash_flows: pd.DataFrame | None = None) -> Path:
    """The one edge of this module: the page (:func:`customer_value.reporting.html.render_html`),
    written atomically. ``horizon_totals``: total value by horizon in days; ``quality``: the training
    run's validation and backtest metrics (a mapping or a frame); ``drift``: PSI per score column
    against the previous scoring (a mapping, Series or frame); ``currency``: ISO code of the amounts;
    ``model_horizon_days``: the model's horizon (the page says when the scores use another, so that
    the segments use cut points scaled to it); ``referral``: the value model (or its referral model),
    whose measured value of a referred customer and its interval the page shows; ``cash_flows``: the
    portfolio's expected margin and cost per month
    (:func:`customer_value.valuation.cashflows.portfolio_by_month`)."""
    page = render_html(scores, title, horizon_totals, quality=quality, drift=drift, currency=currency,
                       model_horizon_days=model_horizon_days, referral=referral, cash_flows=cash_flows)
    return write_text_atomically(page, path)
