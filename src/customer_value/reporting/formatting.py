"""How the report writes numbers and names: money with thousands separators and its currency,
percentages, counts, and column headers in words (never a snake_case name).

Every function takes a plain value and returns text; a missing or non-finite value is ``""``.
"""

from __future__ import annotations

import math
from numbers import Number
from typing import Any

import pandas as pd

from customer_value.config import Settings
from customer_value.features.costing import DIRECT_ACTIVITIES
from customer_value.plots.value import MINUS, compact_number
from customer_value.valuation.activity_costs import activity_label

DEFAULT_CURRENCY: str = Settings.model_fields["currency"].default
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "AUD": "A$", "CAD": "C$",
                    "CHF": "CHF\u00a0", "CNY": "CN¥", "SEK": "SEK\u00a0", "NOK": "NOK\u00a0", "DKK": "DKK\u00a0"}

KINDS = ("text", "count", "money", "money_exact", "percent", "probability", "number", "number1", "flag", "days")
"""How a column reads: ``money`` is a total (no cents), ``money_exact`` a per-customer amount
(cents), ``percent`` a share in [0, 1], ``probability`` the same read as a percentage, ``number``
three decimals and ``number1`` one."""

ACTIVITIES = tuple(a.name for a in DIRECT_ACTIVITIES)
"""The direct activities of contract section 8 (``expected_cost_<activity>``); pools are ``pool_<name>``."""

HEADERS = {
    "support_email": "Email support", "support_chat": "Chat support", "support_phone": "Phone support",
    "support_other": "Other support", "escalations": "Escalations", "orders": "Order handling",
    "payment_fees": "Payment fees", "invoices": "Invoicing", "late_payments": "Late payments",
}

HEADERS = {
    "customer_id": "Customer",
    "as_of": "As of",
    "horizon_days": "Horizon (days)",
    "plan": "Plan",
    "acquisition_channel": "Channel",
    "region": "Region",
    "value_segment": "Value segment",
    "cost_segment": "Cost segment",
    "customers": "Customers",
    "customer_share": "Share of customers",
    "total_value": "Total value",
    "value_share": "Share of value",
    "mean_value": "Value per customer",
    "mean_revenue": "Revenue per customer",
    "mean_margin": "Margin per customer",
    "mean_cost": "Cost-to-serve per customer",
    "mean_referral_value": "Referral value per customer",
    "mean_churn_probability": "Churn probability",
    "drain_share": "Drains (share)",
    "negative_share": "Negative value (share)",
    "p_alive": "P(alive)",
    "expected_transactions": "Expected purchases",
    "expected_order_value": "Expected order value",
    "expected_revenue": "Expected revenue",
    "expected_margin": "Expected margin",
    "expected_cost_to_serve": "Expected cost-to-serve",
    "expected_referrals": "Expected referrals",
    "expected_referral_value": "Referral value",
    "discounted_expected_revenue": "Discounted revenue",
    "discounted_expected_margin": "Discounted margin",
    "discounted_expected_cost_to_serve": "Discounted cost-to-serve",
    "historical_value": "Historical value",
    "customer_value": "Customer value",
    "churn_probability": "Churn probability",
    "drain_probability": "Drain probability",
    "drain_flag": "Flagged to drain",
    "looks_profitable": "Looks profitable",
    "top_cost_drivers": "Cost drivers",
    "top_churn_drivers": "Churn drivers",
    "activity": "Activity",
    "total_cost": "Total cost",
    "mean_activity_cost": "Cost per customer",
    "cost_share": "Share of cost-to-serve",
    "horizon_years": "Horizon (years)",
    "quantity": "Quantity",
    "mean_point": "Mean estimate",
    "mean_p10": "Mean 10th percentile",
    "mean_p90": "Mean 90th percentile",
    "mean_width": "Mean width (p90 − p10)",
    "median_width": "Median width",
    "straddles_zero": "Interval spans zero (share)",
    "metric": "Metric",
    "value": "Value",
    "column": "Score column",
    "psi": "PSI",
    "status": "Reading",
    "referral_share": "Share of value",
    "referrers": "Customers expected to refer",
}
"""Readable headers of the columns the report shows; anything else reads as words (:func:`header`)."""

_KIND_BY_HEADER = {
    "customers": "count", "referrers": "count", "customer_share": "percent", "value_share": "percent",
    "drain_share": "percent", "negative_share": "percent", "cost_share": "percent", "referral_share": "percent",
    "straddles_zero": "percent", "mean_churn_probability": "probability", "churn_probability": "probability",
    "drain_probability": "probability", "p_alive": "probability", "drain_flag": "flag", "looks_profitable": "flag",
    "horizon_days": "days", "expected_transactions": "number", "expected_referrals": "number", "psi": "number",
    "horizon_years": "number",
}


def currency_symbol(currency: str) -> str | None:
    return CURRENCY_SYMBOLS.get(currency.upper())


def _finite(value: Any) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, Number):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def money(value: Any, currency: str = DEFAULT_CURRENCY, decimals: int = 0) -> str:
    """``$1,234,567``, ``−$12.50``, ``1,234 XYZ`` (a currency without a known symbol follows the amount)."""
    number = _finite(value)
    if number is None:
        return ""
    body = f"{abs(number):,.{decimals}f}"
    symbol = currency_symbol(currency)
    text = f"{symbol}{body}" if symbol else f"{body}\u00a0{currency}"
    return (MINUS if round(number, decimals) < 0 else "") + text


def percent(value: Any, decimals: int = 1) -> str:
    """A share in [0, 1] as ``12.3%``."""
    number = _finite(value)
    return "" if number is None else f"{number * 100:,.{decimals}f}%".replace("-", MINUS)


def count(value: Any) -> str:
    number = _finite(value)
    return "" if number is None else f"{round(number):,}"


def number(value: Any, decimals: int = 3) -> str:
    """A plain number with thousands separators (a metric, a PSI, expected purchases)."""
    num = _finite(value)
    if num is None:
        return ""
    if num != 0 and abs(num) < 10 ** -decimals:
        return f"{num:.1e}".replace("-", MINUS)
    return f"{num:,.{decimals}f}".replace("-", MINUS)


def compact(value: Any, currency: str | None = None) -> str:
    """``$1.2M``, ``−40k``: a headline figure at a glance (the same scale as the charts' axes)."""
    num = _finite(value)
    if num is None:
        return ""
    text = compact_number(num)
    if currency is None:
        return text
    symbol = currency_symbol(currency)
    sign = MINUS if text.startswith(MINUS) else ""
    return f"{sign}{symbol}{text.removeprefix(MINUS)}" if symbol else f"{text}\u00a0{currency}"


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or an array is not one missing value
        return False


def cell(value: Any, kind: str, currency: str = DEFAULT_CURRENCY) -> str:
    """One table cell's text for a value of the given kind (:data:`KINDS`)."""
    if kind == "money":
        return money(value, currency)
    if kind == "money_exact":
        return money(value, currency, decimals=2)
    if kind in ("percent", "probability"):
        return percent(value)
    if kind in ("count", "days"):
        return count(value)
    if kind == "number":
        return number(value)
    if kind == "number1":
        return number(value, decimals=1)
    if _missing(value):
        return ""
    if kind == "flag":
        return "yes" if bool(value) else "no"
    return str(value)


def sort_key(value: Any, kind: str) -> str:
    """What a sortable table sorts a cell by: the raw number for numeric kinds, else the text."""
    if kind == "text":
        return cell(value, kind)
    if kind == "flag":
        return "" if _missing(value) else ("1" if bool(value) else "0")
    num = _finite(value)
    return "" if num is None else repr(num)


def activity_header(activity: str) -> str:
    """``support_phone`` -> ``Phone support``; ``pool_platform`` -> ``Platform (shared)``."""
    label = activity_label(activity)
    return label[:1].upper() + label[1:]


def _words(name: str) -> str:
    text = name.replace("_", " ").replace(".", " · ").strip()
    return text[:1].upper() + text[1:]


def header(name: str) -> str:
    """A column's readable header: the known ones from :data:`HEADERS`, activity costs by activity,
    interval bounds as "(10th percentile)", anything else as words."""
    if name in HEADERS:
        return HEADERS[name]
    for suffix, words in (("_p10", "10th percentile"), ("_p90", "90th percentile")):
        if name.endswith(suffix):
            return f"{header(name.removesuffix(suffix))} ({words})"
    if name.startswith("expected_cost_"):
        return activity_header(name.removeprefix("expected_cost_"))
    return _words(name)


def kind_of(name: str) -> str:
    """The kind a column of this name has when a table does not say (money unless known otherwise)."""
    if name in _KIND_BY_HEADER:
        return _KIND_BY_HEADER[name]
    if name in ("customer_id", "plan", "acquisition_channel", "region", "value_segment", "cost_segment",
                "top_cost_drivers", "top_churn_drivers", "activity", "quantity", "metric", "column", "status"):
        return "text"
    if name.startswith("mean_") or name.endswith(("_p10", "_p90")):
        return "money_exact"
    return "money"
