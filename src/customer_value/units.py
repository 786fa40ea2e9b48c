"""Time and money arithmetic, once: dates, day/week units and discounting.

Every stage speaks days (``horizon_days``, ``churn_window_days``); the probabilistic models may
run in weeks (``time_unit``). ``as_of`` is always a calendar date meaning 00:00 UTC of that day
(contract section 1). Discounting uses an annual rate: a cash flow ``t`` years ahead is worth
``(1 + rate) ** -t``.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

import numpy as np

TIME_UNIT_DAYS: dict[str, float] = {"days": 1.0, "weeks": 7.0}
DAYS_PER_YEAR = 365.25
"""Days per year of the continuous purchase-rate discounting."""


# ---------------------------------------------------------------------------------------------
# dates
# ---------------------------------------------------------------------------------------------


def to_date(value: Any) -> dt.date:
    """``as_of`` as a date: a date, a datetime or pandas Timestamp (its day), or an ISO string."""
    if isinstance(value, str):
        return dt.date.fromisoformat(value.strip()[:10])
    if isinstance(value, dt.datetime):  # pandas.Timestamp is a datetime
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise TypeError(f"as_of must be a date or an ISO date string, got {value!r}")


def month_edges(as_of: Any, horizon_days: int) -> list[dt.date]:
    """``as_of``, then each calendar month after it until the horizon's end (the last edge)."""
    start = to_date(as_of)
    end = start + dt.timedelta(days=int(horizon_days))
    edges, k = [start], 1
    while True:
        year, month = divmod(start.month - 1 + k, 12)
        year, month = start.year + year, month + 1
        edge = dt.date(year, month, min(start.day, calendar.monthrange(year, month)[1]))  # 31 Jan + 1 month: 28/29 Feb
        if edge >= end:
            break
        edges.append(edge)
        k += 1
    edges.append(end)
    return edges


def as_of_datetime(as_of: Any) -> dt.datetime:
    """``as_of`` as a naive UTC midnight: a date, an ISO date string, or a midnight datetime."""
    if isinstance(as_of, str):
        text = as_of.strip()
        as_of = dt.date.fromisoformat(text) if len(text) == 10 else dt.datetime.fromisoformat(text)
    if isinstance(as_of, dt.datetime):
        if as_of.tzinfo is not None:
            as_of = as_of.astimezone(dt.timezone.utc).replace(tzinfo=None)
        if as_of.time() != dt.time(0):
            raise ValueError(f"as_of must be a date (midnight UTC), got {as_of.isoformat()}")
        return as_of
    if isinstance(as_of, dt.date):
        return dt.datetime(as_of.year, as_of.month, as_of.day)
    try:  # numpy.datetime64 and the like
        import pandas as pd

        return as_of_datetime(pd.Timestamp(as_of).to_pydatetime())
    except (TypeError, ValueError) as exc:
        raise TypeError(f"as_of must be a date or an ISO date string, got {as_of!r}") from exc


# ---------------------------------------------------------------------------------------------
# time units
# ---------------------------------------------------------------------------------------------


def unit_days(time_unit: str) -> float:
    """Days in one model time unit (``days`` or ``weeks``)."""
    try:
        return TIME_UNIT_DAYS[time_unit]
    except KeyError:
        raise ValueError(f"time_unit must be one of {list(TIME_UNIT_DAYS)}, got {time_unit!r}") from None


def in_units(days: float, time_unit: str = "days") -> float:
    """A span in days expressed in the model's time unit."""
    return float(days) / unit_days(time_unit)


# ---------------------------------------------------------------------------------------------
# discounting
# ---------------------------------------------------------------------------------------------


def continuous_discount_rate(annual_rate: float, time_unit: str = "days") -> float:
    """Continuous discount rate per time unit equivalent to an annual rate.

    A cash flow ``t`` units ahead is worth ``exp(-delta * t)``, which equals
    ``(1 + annual_rate) ** -(t / units_per_year)`` (365.25 days a year).
    """
    if not np.isfinite(annual_rate) or annual_rate < 0:
        raise ValueError(f"discount_rate must be a finite annual rate >= 0, got {annual_rate}")
    return float(np.log1p(annual_rate) * unit_days(time_unit) / DAYS_PER_YEAR)


def uniform_discount_factor(horizon_days: float, annual_rate: float) -> float:
    """Mean of (1 + r)^(−t) over t uniform in [0, horizon]: the discount of a cost spread evenly.

    Years here are 365 days (the value model's convention since its first release; the purchase
    rate's continuous discounting uses 365.25)."""
    years = horizon_days / 365.0
    if annual_rate <= 0 or years <= 0:
        return 1.0
    k = np.log1p(annual_rate)
    return float((1.0 - np.exp(-k * years)) / (k * years))
