"""What the report shows, as plain data: the headline, the definitions, and each section's tables
(raw values, with the kind each column reads as) and figures.

Frames in, data out: nothing here is formatted (:mod:`.formatting`) or rendered (:mod:`.html`).
A score frame needs only the contract's columns (section 5); every optional column (cost segment,
activity costs, intervals, drain probability and flag, plan, channel, region, referrals, drivers)
adds the tables that use it, and a section with nothing to show is left out. Model-level figures
come as optional inputs beside the frame: horizon totals, model quality, drift, the model's horizon
and the measured value of a referred customer (:func:`referred_value`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from customer_value.plots.value import (
    SEGMENT_ORDER,
    plot_cost_by_activity,
    plot_horizon_sensitivity,
    plot_monthly_cash_flows,
    plot_value_by_group,
    plot_value_map,
)
from customer_value.reporting.baselines import MEASURES, baseline_name, baselines_of, is_baseline
from customer_value.reporting.formatting import ACTIVITIES, DEFAULT_CURRENCY, activity_header, header, kind_of, number
from customer_value.valuation.drivers import drain_list, drains, looks_profitable

GROUPS = ("plan", "acquisition_channel", "region")
"""The account columns the report breaks value down by (besides the segments)."""
INTERVAL_QUANTITIES = ("customer_value", "net_value", "expected_revenue", "expected_margin", "expected_cost_to_serve")
"""The money figures whose intervals the report shows in one table; purchases, a count, get their own."""
COUNT_INTERVAL_QUANTITIES = ("expected_transactions",)
DRAIN_ROWS_SHOWN = 100
"""The drain list shows its most likely drains; the CSV download holds every row."""
DRAIN_COLUMNS = (
    "customer_id", "customer_value", "drain_probability", "drain_flag", "looks_profitable", "top_cost_drivers",
    "expected_revenue", "expected_margin", "expected_cost_to_serve", "customer_value_p10", "customer_value_p90",
    "value_segment", "cost_segment", "plan", "acquisition_channel", "region",
)
"""Who, how sure, why, the money, then the groups; the cost per activity follows."""
PSI_BANDS = ((0.1, "stable"), (0.25, "moderate shift"), (float("inf"), "major shift"))
"""Reading a PSI: below 0.1 stable, below 0.25 a moderate shift, else a major shift."""
DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("Customer value",
     "What a customer is worth from the as-of date over the horizon, net of what it costs to serve: "
     "discounted expected margin − discounted expected cost-to-serve + referral value. Negative means the "
     "customer is expected to cost more than it brings."),
    ("Margin",
     "Expected revenue times the customer's margin ratio (the gross margin of its transactions, or the "
     "configured margin rate): what purchases leave after the cost of the goods, before cost-to-serve."),
    ("Cost-to-serve",
     "Activity-based: support minutes by channel, escalations, order handling, payment fees, invoices, late "
     "payments and any shared cost pools, each priced at the configured rate."),
    ("Referral value",
     "Expected referred sign-ups over the horizon times the measured value of a referred customer."),
    ("Discounted",
     "Customer value, referral value and the discounted_expected_* figures (margin, cost-to-serve, revenue) "
     "are discounted to the as-of date at the model's annual discount rate."),
    ("Undiscounted",
     "Expected revenue, expected margin, expected cost-to-serve and the cost per activity (expected_revenue, "
     "expected_margin, expected_cost_to_serve, expected_cost_*) are plain sums over the horizon."),
    ("Drains",
     "A customer with a negative customer value or flagged by the drain model (drain_flag: the probability "
     "that margin − cost-to-serve ends up negative is at or above the model's cut). Those in the top quarter "
     "of expected revenue with a positive margin look profitable."),
)


@dataclass(frozen=True)
class Table:
    """A table as data: ``frame`` holds raw values (no meaningful index); ``kinds`` and ``headers``
    override what :func:`.formatting.kind_of` and :func:`.formatting.header` say per column."""

    key: str
    caption: str
    frame: pd.DataFrame
    kinds: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    note: str = ""
    total_rows: int = 0
    """How many last rows are totals (kept at the bottom when the table is sorted)."""

    def kind(self, column: str) -> str:
        return self.kinds.get(column) or kind_of(column)

    def header(self, column: str) -> str:
        return self.headers.get(column) or header(column)


@dataclass(frozen=True)
class Fact:
    """One headline number: ``value`` of a :data:`.formatting.KINDS` kind, with an optional share."""

    label: str
    value: Any
    kind: str
    share: float | None = None
    hint: str = ""
    interval: tuple[float, float] | None = None
    """Bounds of the same kind as ``value`` (read as ``interval_label``: low to high)."""
    interval_label: str = ""


@dataclass(frozen=True)
class Download:
    """A file the page offers for download, built in the browser from ``text``."""

    filename: str
    text: str
    rows: int


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    intro: str
    facts: tuple[Fact, ...] = ()
    tables: tuple[Table, ...] = ()
    figures: tuple[str, ...] = ()
    download: Download | None = None


@dataclass(frozen=True)
class Headline:
    title: str
    horizon_days: tuple[int, ...]
    as_of: tuple[str, ...]
    currency: str
    model: tuple[tuple[str, str], ...]
    """(what, value) for the model URI, version and alias that are present."""
    facts: tuple[Fact, ...]


@dataclass(frozen=True)
class Report:
    headline: Headline
    definitions: tuple[tuple[str, str], ...]
    sections: tuple[Section, ...]
    figures: Mapping[str, Figure]


@dataclass(frozen=True)
class ReferredValue:
    """The measured value of one referred customer, as the fitted model holds it: the mean trailing
    net value of the customers who came by referral, the ``confidence`` interval of that mean (NaN
    bounds when there is none, e.g. the config default) and where the figure comes from."""

    value: float
    low: float
    high: float
    source: str
    confidence: float = 0.95


def referred_value(model: Any) -> ReferredValue | None:
    """What the report shows of the referral model, from a fitted ``ValueModel`` or ``ReferralModel``
    (``referred_customer_value_``, ``…_interval_``, ``…_source_``), a mapping with those keys without
    the trailing underscore (``ReferralModel.to_dict()``), or a :class:`ReferredValue`. None gives None."""
    if model is None or isinstance(model, ReferredValue):
        return model
    if isinstance(model, Mapping):
        value, interval = model.get("referred_customer_value"), model.get("referred_customer_value_interval")
        source = model.get("referred_customer_value_source", "")
        confidence = (model.get("init") or {}).get("confidence", model.get("confidence", 0.95))
    else:
        value = getattr(model, "referred_customer_value_", None)
        interval = getattr(model, "referred_customer_value_interval_", None)
        source = getattr(model, "referred_customer_value_source_", "")
        fitted = getattr(model, "referral_model_", model)
        confidence = getattr(fitted, "confidence", 0.95)
    if value is None:
        return None
    low, high = (float(v) for v in interval) if interval is not None else (np.nan, np.nan)
    return ReferredValue(float(value), low, high, str(source or ""), float(confidence))


# -- helpers --------------------------------------------------------------------------------------

def _has(scores: pd.DataFrame, column: str) -> bool:
    return column in scores.columns and not scores[column].isna().all()


def _distinct(scores: pd.DataFrame, column: str) -> tuple[str, ...]:
    if column not in scores.columns:
        return ()
    values = scores[column].dropna().astype(str)
    return tuple(sorted(v for v in values.unique() if v and v != "None"))


def _labels(scores: pd.DataFrame, column: str) -> pd.Series:
    return scores[column].astype("string").fillna("(none)")


def activity_columns(scores: pd.DataFrame) -> list[str]:
    """The ``expected_cost_<activity>`` columns present: direct activities in contract order, then pools."""
    direct = [f"expected_cost_{a}" for a in ACTIVITIES if f"expected_cost_{a}" in scores.columns]
    pools = sorted(c for c in scores.columns
                   if c.startswith("expected_cost_pool_") and not c.endswith(("_p10", "_p90")))
    return direct + pools


def _segment_order(index: pd.Index, by: str, totals: pd.Series) -> list[str]:
    if by == "value_segment":
        return [s for s in SEGMENT_ORDER if s in index] + sorted(s for s in index if s not in SEGMENT_ORDER)
    return list(totals.sort_values(ascending=False, kind="stable").index)


# -- tables ---------------------------------------------------------------------------------------

MEANS = (
    ("mean_value", "customer_value"), ("mean_revenue", "expected_revenue"), ("mean_margin", "expected_margin"),
    ("mean_cost", "expected_cost_to_serve"), ("mean_referral_value", "expected_referral_value"),
    ("mean_churn_probability", "churn_probability"),
)
GROUP_NOTE = ("Per-customer means. Revenue, margin and cost-to-serve are undiscounted; value and referral "
              "value are discounted.")


def group_table(scores: pd.DataFrame, by: str) -> Table:
    """Customers, total value and per-customer means per group of ``by`` (segments in their order,
    other groups by total value)."""
    frame = pd.DataFrame({"group": _labels(scores, by), "customer_value": scores["customer_value"].astype(float),
                          "negative": scores["customer_value"] < 0, "drains": drains(scores)})
    for _, column in MEANS[1:]:
        if column in scores.columns:
            frame[column] = scores[column].astype(float)
    grouped = frame.groupby("group", observed=True, sort=False)
    out = pd.DataFrame({"customers": grouped.size(), "total_value": grouped["customer_value"].sum()})
    out["customer_share"] = out["customers"] / max(len(scores), 1)
    total = float(scores["customer_value"].sum())
    out["value_share"] = out["total_value"] / total if total else np.nan
    for name, column in MEANS:
        if column in frame.columns:
            out[name] = grouped[column].mean()
    out["negative_share"] = grouped["negative"].mean()
    if "drain_flag" in scores.columns:
        out["drain_share"] = grouped["drains"].mean()
    out = out.reindex(_segment_order(out.index, by, out["total_value"]))
    order = ["customers", "customer_share", "total_value", "value_share", *[n for n, _ in MEANS],
             "negative_share", "drain_share"]
    out = out[[c for c in order if c in out.columns]].rename_axis(by).reset_index()
    return Table(f"by-{by.replace('_', '-')}", f"Value by {header(by).lower()}", out, note=GROUP_NOTE)


def segment_matrix(scores: pd.DataFrame) -> tuple[Table, Table]:
    """Value segment × cost segment: customers and total value, with totals."""
    rows, cols = _labels(scores, "value_segment").rename("value_segment"), _labels(scores, "cost_segment")
    counts = pd.crosstab(rows, cols, margins=True, margins_name="All")
    values = pd.crosstab(rows, cols, values=scores["customer_value"], aggfunc="sum", margins=True,
                         margins_name="All").fillna(0.0)
    order = [*_segment_order(counts.index.drop("All"), "value_segment", counts["All"]), "All"]
    columns = [*sorted(c for c in counts.columns if c != "All"), "All"]
    tables = []
    for key, caption, matrix, kind in (("matrix-customers", "Customers by value and cost segment", counts, "count"),
                                       ("matrix-value", "Total value by value and cost segment", values, "money")):
        frame = matrix.reindex(index=order, columns=columns).rename_axis(index="value_segment", columns=None)
        frame.columns = [str(c) for c in frame.columns]
        frame = frame.reset_index()
        kinds = {c: kind for c in frame.columns if c != "value_segment"}
        headers = {c: c for c in frame.columns if c != "value_segment"}
        tables.append(Table(key, caption, frame, kinds | {"value_segment": "text"}, headers, total_rows=1))
    return tables[0], tables[1]


def activity_table(scores: pd.DataFrame, columns: list[str]) -> Table:
    totals = scores[columns].sum()
    total_cost = float(scores["expected_cost_to_serve"].sum() if "expected_cost_to_serve" in scores else totals.sum())
    frame = pd.DataFrame({
        "activity": [activity_header(c.removeprefix("expected_cost_")) for c in columns],
        "total_cost": totals.to_numpy(dtype=float),
        "mean_activity_cost": scores[columns].mean().to_numpy(dtype=float),
        "cost_share": totals.to_numpy(dtype=float) / total_cost if total_cost else np.nan,
    }).sort_values("total_cost", ascending=False, kind="stable")
    return Table("cost-by-activity", "Expected cost-to-serve by activity", frame,
                 note="Undiscounted sums over the horizon; the activities add up to the expected cost-to-serve.")


def activity_by_group(scores: pd.DataFrame, columns: list[str], by: str) -> Table:
    """Cost per customer of each activity, per group of ``by``."""
    frame = scores[columns].astype(float).assign(_group=_labels(scores, by))
    grouped = frame.groupby("_group", observed=True, sort=False)
    means = grouped[columns].mean()
    means.insert(0, "customers", grouped.size())
    means = means.reindex(_segment_order(means.index, by, means["customers"])).rename_axis(by).reset_index()
    kinds = {c: "money_exact" for c in columns}
    return Table(f"activity-by-{by.replace('_', '-')}", f"Cost per customer by activity and {header(by).lower()}",
                 means, kinds)


def interval_table(scores: pd.DataFrame) -> Table | None:
    """Mean bounds and widths of the money figures' 80% intervals (``*_p10`` to ``*_p90``) present
    in the frame."""
    rows = _interval_rows(scores, INTERVAL_QUANTITIES)
    if not rows:
        return None
    return Table("intervals", "80% intervals per customer (10th to 90th percentile)", pd.DataFrame(rows),
                 {"median_width": "money_exact"})


def count_interval_table(scores: pd.DataFrame) -> Table | None:
    """The same for the expected purchases over the horizon (a count, not money)."""
    rows = _interval_rows(scores, COUNT_INTERVAL_QUANTITIES)
    if not rows:
        return None
    frame = pd.DataFrame(rows).drop(columns="straddles_zero")
    return Table("intervals-purchases", "Expected purchases over the horizon: 80% intervals per customer", frame,
                 {c: "number1" for c in frame.columns if c != "quantity"})


def _interval_rows(scores: pd.DataFrame, quantities: tuple[str, ...]) -> list[dict[str, Any]]:
    """One row per quantity with both bounds in ``scores``: mean point, mean bounds, mean and
    median width, and (for the value figures) the share of intervals spanning zero."""
    rows = []
    for quantity in quantities:
        low, high = f"{quantity}_p10", f"{quantity}_p90"
        if low not in scores.columns or high not in scores.columns:
            continue
        width = scores[high].astype(float) - scores[low].astype(float)
        if quantity in scores.columns:
            point = scores[quantity].astype(float).mean()
        elif quantity == "net_value" and {"expected_margin", "expected_cost_to_serve"} <= set(scores.columns):
            point = float((scores["expected_margin"] - scores["expected_cost_to_serve"]).mean())
        else:
            point = np.nan
        spans = (scores[low] < 0) & (scores[high] > 0) if quantity in ("customer_value", "net_value") else None
        rows.append({"quantity": header(quantity) if quantity != "net_value" else "Net value (undiscounted)",
                     "mean_point": point, "mean_p10": scores[low].astype(float).mean(),
                     "mean_p90": scores[high].astype(float).mean(), "mean_width": width.mean(),
                     "median_width": width.median(),
                     "straddles_zero": float(spans.mean()) if spans is not None else np.nan})
    return rows


def quality_table(quality: Any) -> Table | None:
    """The training run's backtest and validation metrics: a frame as it is, or a mapping (a Series)
    of logged metric names to values. Of a mapping, the measures of :data:`.baselines.MEASURES`
    (all of them when it has none of those) are shown in words, each with its baselines on the same
    rows beside it (:func:`.baselines.baselines_of`) rather than as rows of their own."""
    if quality is None:
        return None
    headers: dict[str, str] = {}
    if isinstance(quality, pd.DataFrame):
        frame = quality if isinstance(quality.index, pd.RangeIndex) else quality.reset_index()
        frame.columns = [str(c) for c in frame.columns]
    else:
        items = dict(quality.items() if isinstance(quality, (Mapping, pd.Series)) else dict(quality).items())
        shown = [m for m in items if m in MEASURES] or [m for m in items if not is_baseline(m)] or list(items)
        frame = pd.DataFrame({"measure": [MEASURES.get(m, header(m)) for m in shown], "metric": shown,
                              "value": [items[m] for m in shown]})
        beside = {m: baselines_of(m, items) for m in shown}
        if any(beside.values()):
            frame["baselines"] = ["; ".join(f"{baseline_name(b)} {number(items[b])}" for b in beside[m]) for m in shown]
        headers = {"measure": "Measure", "metric": "Logged as", "baselines": "Baselines on the same rows"}
    if frame.empty:
        return None
    kinds = {c: ("number" if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
                 else "text") for c in frame.columns}
    return Table("quality", "Model quality (the training run's validation and backtest)", frame, kinds, headers)


def drift_table(drift: Any) -> Table | None:
    """PSI per score column against the previous scoring, read as stable / moderate / major shift."""
    if drift is None:
        return None
    if isinstance(drift, pd.DataFrame):
        frame = drift if isinstance(drift.index, pd.RangeIndex) else drift.reset_index()
        frame.columns = [str(c) for c in frame.columns]
        if "psi" not in frame.columns:
            kinds = {c: "number" if pd.api.types.is_numeric_dtype(frame[c]) else "text" for c in frame.columns}
            return None if frame.empty else Table("drift", "Drift against the previous scoring", frame, kinds)
        if "column" not in frame.columns:
            frame = frame.rename(columns={frame.columns[0]: "column"})
        frame = frame[["column", "psi", *[c for c in frame.columns if c not in ("column", "psi")]]]
    else:
        items = drift.items() if isinstance(drift, (Mapping, pd.Series)) else dict(drift).items()
        frame = pd.DataFrame(list(items), columns=["column", "psi"])
    if frame.empty:
        return None
    frame = frame.assign(psi=pd.to_numeric(frame["psi"], errors="coerce"))
    frame["status"] = [next(label for limit, label in PSI_BANDS if v < limit) if np.isfinite(v) else ""
                       for v in frame["psi"].to_numpy(dtype=float)]
    frame = frame.sort_values("psi", ascending=False, kind="stable", na_position="last").reset_index(drop=True)
    kinds = {c: ("number" if pd.api.types.is_numeric_dtype(frame[c]) else "text") for c in frame.columns}
    return Table("drift", "Drift against the previous scoring (PSI per score column)", frame, kinds)


def drain_frame(scores: pd.DataFrame) -> pd.DataFrame:
    """Every customer on the drain list (:func:`~customer_value.valuation.drivers.drain_list`), most
    likely first, with the columns the report shows: who, whether they look profitable, the money,
    the cost drivers and the cost per activity."""
    listed = drain_list(scores.assign(looks_profitable=looks_profitable(scores).to_numpy()))
    columns = [c for c in DRAIN_COLUMNS if c in listed.columns] + activity_columns(listed)
    return listed[columns].reset_index(drop=True)


def drain_csv(scores: pd.DataFrame) -> str:
    """The whole drain list as CSV (score-file column names, money to the cent)."""
    frame = drain_frame(scores)
    rounding = {c: (4 if c == "drain_probability" else 2) for c in frame.columns
                if pd.api.types.is_float_dtype(frame[c])}
    return frame.round(rounding).to_csv(index=False, lineterminator="\n")


# -- figures --------------------------------------------------------------------------------------

def report_figures(scores: pd.DataFrame, horizon_totals: pd.Series | None = None,
                   currency: str = DEFAULT_CURRENCY, cash_flows: pd.DataFrame | None = None) -> dict[str, Figure]:
    """The report's figures by file name (also what a scoring run logs to MLflow)."""
    figures: dict[str, Figure] = {}
    for by in ("value_segment", "cost_segment", *GROUPS):
        if _has(scores, by):
            figures[f"value_by_{by}.png"] = plot_value_by_group(scores, by, currency=currency).figure
    figures["value_map.png"] = plot_value_map(scores, currency=currency).figure
    columns = activity_columns(scores)
    if columns:
        totals = scores[columns].sum().set_axis([activity_header(c.removeprefix("expected_cost_")) for c in columns])
        figures["cost_by_activity.png"] = plot_cost_by_activity(totals, currency=currency).figure
    if horizon_totals is not None and len(horizon_totals):
        figures["horizon_sensitivity.png"] = plot_horizon_sensitivity(horizon_totals, currency=currency).figure
    if cash_flows is not None and len(cash_flows):
        figures["cash_flows_by_month.png"] = plot_monthly_cash_flows(cash_flows, currency=currency).figure
    return figures


# -- the report -----------------------------------------------------------------------------------

def headline(scores: pd.DataFrame, title: str, currency: str) -> Headline:
    n = len(scores)
    value = scores["customer_value"]
    negative = int((value < 0).sum())
    listed = drains(scores)
    facts = [
        Fact("Customers scored", n, "count"),
        Fact("Total customer value", value.sum(), "money", hint="discounted, net of cost-to-serve"),
        Fact("Value per customer", value.mean() if n else np.nan, "money_exact", hint="discounted"),
    ]
    for column, label in (("expected_revenue", "Expected revenue"), ("expected_margin", "Expected margin"),
                          ("expected_cost_to_serve", "Expected cost-to-serve")):
        if column in scores.columns:
            facts.append(Fact(label, scores[column].sum(), "money", hint="undiscounted"))
    if "expected_referral_value" in scores.columns:
        facts.append(Fact("Referral value", scores["expected_referral_value"].sum(), "money", hint="discounted"))
    facts.append(Fact("Negative-value customers", negative, "count", negative / n if n else None))
    if "drain_flag" in scores.columns:
        flagged = int(scores["drain_flag"].fillna(False).astype(bool).sum())
        facts.append(Fact("Flagged to drain", flagged, "count", flagged / n if n else None, hint="drain model"))
    facts.append(Fact("On the drain list", int(listed.sum()), "count", listed.mean() if n else None,
                      hint="negative value or flagged"))
    facts.append(Fact("Look profitable but drain", int((listed & looks_profitable(scores)).sum()), "count",
                      hint="top quarter of revenue, positive margin"))
    model = tuple((what, ", ".join(_distinct(scores, column)))
                  for what, column in (("model", "model_uri"), ("version", "model_version"), ("alias", "model_alias"))
                  if _distinct(scores, column))
    horizons: tuple[int, ...] = ()
    if "horizon_days" in scores.columns:
        horizons = tuple(sorted(int(h) for h in scores["horizon_days"].dropna().unique()))
    return Headline(title, horizons, _distinct(scores, "as_of"), currency, model, tuple(facts))


def scaled_segments_note(scores: pd.DataFrame, model_horizon_days: int | None) -> str:
    """What the segments section says when the scoring's horizon is not the model's: the cut
    points learned over the model's horizon were scaled to this one."""
    if not model_horizon_days or "horizon_days" not in scores.columns or scores.empty:
        return ""
    horizons = sorted(int(h) for h in scores["horizon_days"].dropna().unique())
    if horizons == [int(model_horizon_days)] or not horizons:
        return ""
    listed = ", ".join(f"{h:,}" for h in horizons)
    return (f" These scores look {listed} days ahead, the model {int(model_horizon_days):,}: the value segments "
            f"use the training cut points scaled to this horizon (× {horizons[0] / model_horizon_days:.3g}), and "
            "so does the light cost segment.")


def _segments(scores: pd.DataFrame, model_horizon_days: int | None = None) -> Section | None:
    tables, figures = [], []
    for by in ("value_segment", "cost_segment"):
        if _has(scores, by):
            tables.append(group_table(scores, by))
            figures.append(f"value_by_{by}.png")
    if _has(scores, "value_segment") and _has(scores, "cost_segment"):
        tables.extend(segment_matrix(scores))
    if not tables:
        return None
    return Section("segments", "Segments",
                   "Customers by value (negative below zero, else low, medium, high and top at the value cut points "
                   "learned in training) and by cost structure (which activities dominate the cost-to-serve)."
                   + scaled_segments_note(scores, model_horizon_days),
                   tables=tuple(tables), figures=tuple(figures))


def _groups(scores: pd.DataFrame) -> Section | None:
    present = [by for by in GROUPS if _has(scores, by)]
    if not present:
        return None
    return Section("groups", "Plan, channel and region",
                   "Value and per-customer means by the account's plan, acquisition channel and region.",
                   tables=tuple(group_table(scores, by) for by in present),
                   figures=tuple(f"value_by_{by}.png" for by in present))


def _costs(scores: pd.DataFrame) -> Section | None:
    columns = activity_columns(scores)
    if not columns:
        return None
    tables = [activity_table(scores, columns)]
    tables += [activity_by_group(scores, columns, by) for by in ("value_segment", "cost_segment") if _has(scores, by)]
    return Section("costs", "Cost per activity",
                   "Where the expected cost-to-serve goes: each activity's expected cost over the horizon "
                   "(undiscounted), in total and per customer.",
                   tables=tuple(tables), figures=("cost_by_activity.png",))


def _drain_section(scores: pd.DataFrame) -> Section:
    frame = drain_frame(scores)
    n = len(scores)
    kinds = {c: "money_exact" for c in frame.columns if kind_of(c) in ("money", "money_exact")}
    shown = frame.head(DRAIN_ROWS_SHOWN)
    note = (f"The {len(shown):,} most likely drains of {len(frame):,}; download the whole list as CSV."
            if len(frame) > len(shown) else "Every customer on the list; also as CSV.")
    facts = (
        Fact("Customers on the list", len(frame), "count", len(frame) / n if n else None),
        Fact("Look profitable", int(frame["looks_profitable"].sum()), "count"),
        Fact("Their total value", frame["customer_value"].sum(), "money", hint="discounted"),
    ) + ((Fact("Their expected cost-to-serve", frame["expected_cost_to_serve"].sum(), "money", hint="undiscounted"),)
         if "expected_cost_to_serve" in frame.columns else ())
    as_of = "_".join(_distinct(scores, "as_of")) or "scores"
    return Section(
        "drains", "Customers who drain resources",
        "Every customer with a negative customer value or flagged by the drain model (drain_flag), most likely "
        "drains first. \"Looks profitable\" marks those in the top quarter of expected revenue with a positive "
        "margin: revenue alone would call them good customers. Cost drivers and the cost per activity are in "
        "money over the horizon (undiscounted).",
        facts=facts,
        tables=(Table("drain-list", "Drain list", shown, kinds, note=note),) if len(frame) else (),
        download=Download(f"drain_list_{as_of}.csv", drain_csv(scores), len(frame)),
    )


def _value_map() -> Section:
    return Section("value-map", "Value map",
                   "Each customer's discounted expected margin against its discounted expected cost-to-serve "
                   "(symmetric log scales). Above the dashed diagonal a customer pays its way; below it, cost-to-serve "
                   "eats the margin.", figures=("value_map.png",))


def _horizons(scores: pd.DataFrame, horizon_totals: pd.Series | None) -> Section | None:
    if horizon_totals is None or not len(horizon_totals):
        return None
    totals = horizon_totals.sort_index()
    frame = pd.DataFrame({"horizon_days": totals.index.astype(int), "horizon_years": totals.index.astype(float) / 365,
                          "total_value": totals.to_numpy(dtype=float),
                          "mean_value": totals.to_numpy(dtype=float) / max(len(scores), 1)})
    return Section("horizons", "Horizon sensitivity",
                   "Total customer value of the same customers over longer or shorter horizons (discounted).",
                   tables=(Table("horizon-totals", "Total value by horizon", frame, {"horizon_years": "number1"}),),
                   figures=("horizon_sensitivity.png",))


MONTHLY_ERRORS = {"backtest.monthly.margin_mape": "margin", "backtest.monthly.cost_mape": "cost-to-serve"}
"""The training run's backtest errors of the monthly totals (mean absolute relative error per month)."""


def cash_flow_table(cash_flows: pd.DataFrame) -> Table:
    """The portfolio's months (:func:`customer_value.valuation.cashflows.portfolio_by_month`)."""
    frame = pd.DataFrame({
        "month": pd.to_datetime(cash_flows["month"]).dt.strftime("%Y-%m").to_numpy(),
        **{c: cash_flows[c].to_numpy(dtype=float)
           for c in ("expected_margin", "expected_cost", "expected_net", "discounted_net")},
    })
    return Table("cash-flows", "Cash flows by month", frame, {"month": "text"},
                 {"month": "Month", "expected_margin": "Expected margin", "expected_cost": "Expected cost-to-serve",
                  "expected_net": "Net", "discounted_net": "Net, discounted"})


def _cash_flows(cash_flows: pd.DataFrame | None, quality: Any = None) -> Section | None:
    if cash_flows is None or not len(cash_flows):
        return None
    items = dict(quality.items()) if isinstance(quality, (Mapping, pd.Series)) else {}
    errors = [f"{name} by {float(items[key]):.0%}" for key, name in MONTHLY_ERRORS.items()
              if key in items and np.isfinite(float(items[key]))]
    measured = (" In the training run's backtest these monthly totals missed what happened by "
                f"{' and '.join(errors)} on average (mean absolute error per month)." if errors else "")
    return Section("cash-flows", "Cash flows by month",
                   "When the money is expected to come in and go out: each customer's expected margin and "
                   "cost-to-serve spread over the calendar months of the horizon (margin as the expected purchases "
                   "fall, cost-to-serve as the model learned it falls against them), summed over customers. Per "
                   "customer the months add up to the score file; referral value is not a cash flow and is left out. "
                   "The last month ends with the horizon and may be short." + measured,
                   tables=(cash_flow_table(cash_flows),), figures=("cash_flows_by_month.png",))


def _referrals(scores: pd.DataFrame, referral: ReferredValue | None = None) -> Section | None:
    has_value, has_count = "expected_referral_value" in scores.columns, "expected_referrals" in scores.columns
    if not (has_value or has_count) and referral is None:
        return None
    facts = []
    if has_count:
        facts.append(Fact("Expected referrals", scores["expected_referrals"].sum(), "number1",
                          hint="referred sign-ups over the horizon, all customers"))
    if referral is not None:
        bounds = (referral.low, referral.high)
        known = all(np.isfinite(bounds))
        facts.append(Fact("Value of a referred customer", referral.value, "money_exact",
                          hint=referral.source if known else f"no interval: {referral.source}",
                          interval=bounds if known else None,
                          interval_label=f"{referral.confidence:.0%} interval"))
    if has_value:
        referral_total = float(scores["expected_referral_value"].sum())
        total = float(scores["customer_value"].sum())
        facts.append(Fact("Referral value", referral_total, "money", referral_total / total if total > 0 else None,
                          hint="discounted; share of total value"))
    tables = ()
    if _has(scores, "value_segment") and (has_value or has_count):
        parts = {"customers": ("customer_id", "size")}
        if has_count:
            parts["expected_referrals"] = ("expected_referrals", "sum")
        if has_value:
            parts |= {"expected_referral_value": ("expected_referral_value", "sum"),
                      "mean_referral_value": ("expected_referral_value", "mean")}
        frame = scores.assign(value_segment=_labels(scores, "value_segment")).groupby(
            "value_segment", observed=True, sort=False).agg(**parts)
        frame = frame.reindex(_segment_order(frame.index, "value_segment", frame["customers"])).reset_index()
        tables = (Table("referrals-by-segment", "Referrals by value segment", frame,
                        {"expected_referrals": "number1"}, {"expected_referral_value": "Total referral value"}),)
    measured = (" The value of a referred customer is measured when the model is trained: the mean trailing net "
                "value of the customers who came by referral (the configured default when there are too few)."
                if referral is not None else "")
    return Section("referrals", "Referral value",
                   "What customers are expected to bring through the customers they refer: expected referred "
                   "sign-ups times the value of a referred customer, discounted." + measured,
                   facts=tuple(facts), tables=tables)


def _intervals(scores: pd.DataFrame, model: Any = None) -> Section | None:
    tables = tuple(t for t in (interval_table(scores), count_interval_table(scores)) if t is not None)
    if not tables:
        return None
    window = getattr(getattr(model, "interval_model", None), "calibration_days_", None)
    young = (f" These intervals are approximate: the history held too few customers a full horizon old, so "
             f"they were calibrated on the {window} days before the as-of date." if window else "")
    return Section("intervals", "Uncertainty",
                   "How wide each customer's 80% interval is (10th to 90th percentile over the horizon), and how "
                   "often a value interval spans zero: there the sign of the value is itself uncertain." + young,
                   tables=tables)


def _quality(quality: Any) -> Section | None:
    table = quality_table(quality)
    if table is None:
        return None
    return Section("quality", "Model quality",
                   "How the model that produced these scores did on its validation snapshot and backtest at "
                   "training time.",
                   tables=(table,))


def _drift(drift: Any) -> Section | None:
    table = drift_table(drift)
    if table is None:
        return None
    return Section("drift", "Drift",
                   "Population stability index (PSI) of each score column against the last scoring of the same model: "
                   "below 0.1 stable, 0.1 to 0.25 a moderate shift, above 0.25 a major shift worth a look before "
                   "acting on the scores.", tables=(table,))


def build_sections(scores: pd.DataFrame, horizon_totals: pd.Series | None = None, quality: Any = None,
                   drift: Any = None, model_horizon_days: int | None = None,
                   referral: Any = None, cash_flows: pd.DataFrame | None = None) -> tuple[Section, ...]:
    """The report's sections in page order, those with nothing to show left out.
    ``model_horizon_days``: the model's own horizon, when the scores may use another; ``referral``:
    the fitted model (or its referral read-outs, see :func:`referred_value`) whose measured value of
    a referred customer the referral section shows with its interval (and, being the model, whose
    intervals' calibration window the uncertainty section names when it was shorter than a horizon);
    ``cash_flows``: the portfolio's months (:func:`customer_value.valuation.cashflows.portfolio_by_month`)."""
    sections = [
        _segments(scores, model_horizon_days), _groups(scores), _costs(scores), _drain_section(scores), _value_map(),
        _horizons(scores, horizon_totals), _cash_flows(cash_flows, quality),
        _referrals(scores, referred_value(referral)), _intervals(scores, referral),
        _quality(quality), _drift(drift),
    ]
    return tuple(s for s in sections if s is not None)


def build_report(scores: pd.DataFrame, title: str, horizon_totals: pd.Series | None = None, quality: Any = None,
                 drift: Any = None, currency: str = DEFAULT_CURRENCY, model_horizon_days: int | None = None,
                 referral: Any = None, cash_flows: pd.DataFrame | None = None) -> Report:
    """Everything the page shows, as data (the figures drawn, nothing formatted)."""
    return Report(headline(scores, title, currency), DEFINITIONS,
                  build_sections(scores, horizon_totals, quality, drift, model_horizon_days, referral, cash_flows),
                  report_figures(scores, horizon_totals, currency, cash_flows))
