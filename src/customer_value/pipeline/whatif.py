"""`customer-value whatif`: reprice a score file under changed rates, pools, plans or support mix.

Reads the score file (never modifies it) and the changes, writes the repriced scores atomically
(same columns, same order) and a summary page (tables and charts); the computation is
:mod:`customer_value.valuation.whatif`.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from customer_value.config import WhatIf, load_whatif
from customer_value.data.writing import check_output, write_parquet_atomically, write_text_atomically
from customer_value.errors import InputError
from customer_value.plots.whatif import plot_value_change
from customer_value.valuation.whatif import WhatIfSummary, reprice, summarise


@dataclass
class WhatIfResult:
    scores: pd.DataFrame
    summary: WhatIfSummary
    out: Path
    summary_path: Path | None


def read_scores(path: Path) -> pd.DataFrame:
    """A score file, or a clear error naming it."""
    if not Path(path).is_file():
        raise InputError(f"no score file at {path}")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise InputError(f"cannot read score file {path}: {str(exc).splitlines()[0]}") from exc


def whatif(scores_path: Path, changes: WhatIf | Path, out: Path, summary_path: Path | None = None) -> WhatIfResult:
    """Reprice ``scores_path`` under ``changes`` (a :class:`WhatIf` or a YAML path), write ``out``
    and, if given, the HTML summary."""
    check_output(out, "what-if scores")
    if summary_path is not None:
        check_output(summary_path, "what-if summary")
    if Path(out).resolve() == Path(scores_path).resolve():
        raise InputError(f"--out {out} is the score file itself; input files are never modified")
    changes = changes if isinstance(changes, WhatIf) else load_whatif(changes)
    before = read_scores(scores_path)
    after = reprice(before, changes)
    summary = summarise(before, after)
    write_parquet_atomically(after, out)
    written = write_text_atomically(summary_html(summary, changes), summary_path) if summary_path is not None else None
    return WhatIfResult(after, summary, Path(out), written)


def _png(ax) -> str:
    buffer = io.BytesIO()
    ax.figure.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode()


def _table(frame: pd.DataFrame, index: bool = True) -> str:
    return frame.to_html(index=index, float_format=lambda v: f"{v:,.2f}", border=0, classes="figures")


def summary_html(summary: WhatIfSummary, changes: WhatIf) -> str:
    """One self-contained page: the change asked for, totals, value change per group with charts,
    and the customers who cross zero."""
    asked = html.escape(changes.model_dump_json(by_alias=True, exclude_defaults=True, indent=1))
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>What-if</title><style>"
             "body{font-family:system-ui,sans-serif;max-width:1000px;margin:auto;color:#222}"
             "table{border-collapse:collapse;font-size:13px;margin:6px 0}td,th{padding:3px 8px;border-bottom:1px solid #ddd;"
             "text-align:right}th{background:#f3f3f3}pre{background:#f7f7f7;padding:8px}</style></head><body>",
             "<h1>What-if</h1><h2>Changes</h2>", f"<pre>{asked}</pre>",
             "<h2>Totals</h2>", _table(summary.totals),
             f"<p>{summary.to_positive:,} customer(s) cross from negative to positive value, "
             f"{summary.to_negative:,} from positive to negative.</p>"]
    for group, table in summary.by_group.items():
        parts.append(f"<h2>By {html.escape(group.replace('_', ' '))}</h2>")
        parts.append(f"<img alt='value change by {html.escape(group)}' "
                     f"src='data:image/png;base64,{_png(plot_value_change(table, group))}'>")
        parts.append(_table(table))
    if len(summary.crossed):
        parts.append("<h2>Customers who cross zero (first 200)</h2>")
        parts.append(_table(summary.crossed.head(200), index=False))
    parts.append("</body></html>")
    return "\n".join(parts)
