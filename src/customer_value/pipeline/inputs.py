"""The input edge every job shares: load and validate a data directory, and when rows were set
aside or values nulled (non-strict mode) write the validation report and say so. Nothing is
dropped unseen."""

from __future__ import annotations

from collections.abc import Callable
import datetime as dt
from pathlib import Path

import pandas as pd

from customer_value.config import Settings
from customer_value.data.loading import LoadedData, load_tables
from customer_value.errors import InputError

DEFAULT_REPORT = Path("validation_report.csv")


def load_inputs(data_dir: Path, settings: Settings, report: Path | None = None,
                say: Callable[[str], None] | None = None) -> LoadedData:
    """Validated tables; what was set aside or nulled goes to ``report`` (default ``validation_report.csv``)."""
    loaded = load_tables(data_dir, settings)
    if loaded.report.has_problems:
        path = loaded.report.write(report or DEFAULT_REPORT)
        if say is not None:
            say(f"{loaded.report.describe()}; report: {path}")
    return loaded


def require_customers_before(customers: pd.DataFrame, as_of: dt.date, what: str = "") -> pd.Series:
    """The ids of the customers signed up before ``as_of``; :class:`InputError` when there are none."""
    signup = customers["signup_at"]
    population = customers.loc[signup < pd.Timestamp(as_of), "customer_id"]
    if population.empty:
        first = f"first signup: {signup.min():%Y-%m-%d}" if len(signup) else "the customers table is empty"
        raise InputError(f"no customer signed up before {f'{what} ' if what else ''}{as_of} ({first})")
    return population
