"""The report as one self-contained HTML page: the Jinja2 template in ``templates/`` with its CSS and
JavaScript inline, the figures as base64 PNG, the drain list's CSV embedded for download. The page
opens offline: it loads nothing from anywhere.
"""

from __future__ import annotations

import base64
import functools
import io
from typing import Any

import jinja2
import pandas as pd
from matplotlib.figure import Figure

from customer_value.reporting.formatting import DEFAULT_CURRENCY, cell, compact, sort_key
from customer_value.reporting.sections import Fact, Report, Section, Table, build_report

NUMERIC_KINDS = frozenset({"count", "money", "money_exact", "percent", "probability", "number", "number1", "days"})
FIGURE_DPI = 110
LONG_TEXT = 32
"""Text cells longer than this wrap (in a wider column); shorter ones stay on one line."""


@functools.cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("customer_value.reporting", "templates"),
        autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
    )


def figure_png(figure: Figure) -> str:
    """A figure as base64 PNG (what an ``<img src="data:image/png;base64,...">`` holds)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _cells(row: tuple, kinds: list[str], currency: str) -> list[dict[str, str]]:
    out = []
    for value, kind in zip(row, kinds):
        sort = sort_key(value, kind)
        classes = []
        text = cell(value, kind, currency)
        if kind in NUMERIC_KINDS:
            classes.append("num")
            if kind in ("money", "money_exact") and sort.startswith("-"):
                classes.append("neg")
        elif len(text) > LONG_TEXT:
            classes.append("long")
        out.append({"text": text, "sort": sort, "classes": " ".join(classes)})
    return out


def _table(table: Table, currency: str) -> dict[str, Any]:
    columns = [str(c) for c in table.frame.columns]
    kinds = [table.kind(c) for c in columns]
    head = [{"text": table.header(c), "numeric": k in NUMERIC_KINDS} for c, k in zip(columns, kinds)]
    rows = [_cells(row, kinds, currency) for row in table.frame.itertuples(index=False, name=None)]
    split = len(rows) - table.total_rows
    return {"key": table.key, "caption": table.caption, "note": table.note, "head": head,
            "rows": rows[:split], "totals": rows[split:]}


def _fact(fact: Fact, currency: str) -> dict[str, Any]:
    text = cell(fact.value, fact.kind, currency)
    if fact.share is not None and pd.notna(fact.share):
        text += f" ({cell(fact.share, 'percent')})"
    glance = compact(fact.value, currency) if fact.kind == "money" else ""
    interval = ""
    if fact.interval is not None:
        low, high = (cell(v, fact.kind, currency) for v in fact.interval)
        interval = f"{fact.interval_label or 'interval'}: {low} to {high}"
    return {"label": fact.label, "text": text, "hint": fact.hint, "glance": glance if glance != text else "",
            "interval": interval}


def _section(section: Section, figures: dict[str, dict[str, str]], currency: str) -> dict[str, Any]:
    download = None
    if section.download is not None:
        download = {"filename": section.download.filename, "text": section.download.text,
                    "rows_text": f"{section.download.rows:,}"}
    return {
        "key": section.key, "title": section.title, "intro": section.intro,
        "facts": [_fact(f, currency) for f in section.facts],
        "tables": [_table(t, currency) for t in section.tables],
        "figures": [figures[name] for name in section.figures if name in figures],
        "download": download,
    }


def _title_case(name: str) -> str:
    text = name.removesuffix(".png").replace("_", " ")
    return text[:1].upper() + text[1:]


def render_report(report: Report) -> str:
    """The page for a built :class:`~customer_value.reporting.sections.Report`."""
    currency = report.headline.currency
    figures = {name: {"name": name, "alt": _title_case(name), "png": figure_png(figure)}
               for name, figure in report.figures.items()}
    head = report.headline
    context = {
        "title": head.title,
        "horizon": ", ".join(f"{h:,} days" for h in head.horizon_days) or "not stated",
        "as_of": ", ".join(head.as_of) or "not stated",
        "currency": currency,
        "model": [{"what": what, "value": value} for what, value in head.model],
        "facts": [_fact(f, currency) for f in head.facts],
        "definitions": [{"term": term, "meaning": meaning} for term, meaning in report.definitions],
        "sections": [_section(s, figures, currency) for s in report.sections],
    }
    return environment().get_template("report.html.j2").render(**context)


def render_html(scores: pd.DataFrame, title: str, horizon_totals: pd.Series | None = None, quality: Any = None,
                drift: Any = None, currency: str = DEFAULT_CURRENCY, model_horizon_days: int | None = None,
                referral: Any = None, cash_flows: pd.DataFrame | None = None) -> str:
    """Score frame in, the whole page out (see :func:`~customer_value.reporting.sections.build_report`;
    ``referral``: the fitted value model, for the measured value of a referred customer;
    ``cash_flows``: the portfolio's months)."""
    return render_report(build_report(scores, title, horizon_totals, quality, drift, currency, model_horizon_days,
                                      referral, cash_flows))
