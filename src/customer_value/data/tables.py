"""The canonical tables of the data contract (section 2) and the container that carries them.

Canonical form, the one every later stage relies on:
- column names are the contract's (user names are mapped at load time);
- ids and free text are pandas' ``str`` dtype;
- timestamps are ``datetime64[us]`` holding **UTC wall time without a timezone**, which keeps
  DuckDB, Spark and pandas comparisons free of session-timezone surprises;
- optional columns are always present (filled with nulls) and missing optional tables are
  empty frames with the right columns and dtypes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import pandas as pd

TIMESTAMP = "datetime64[us]"

# table -> {column: (dtype, required)}
TABLE_COLUMNS: dict[str, dict[str, tuple[str, bool]]] = {
    "customers": {
        "customer_id": ("str", True),
        "signup_at": (TIMESTAMP, True),
        "plan": ("str", False),
        "acquisition_channel": ("str", False),
        "region": ("str", False),
        "referred_by": ("str", False),
    },
    "transactions": {
        "transaction_id": ("str", True),
        "customer_id": ("str", True),
        "occurred_at": (TIMESTAMP, True),
        "amount": ("float64", True),
        "gross_margin": ("float64", False),
    },
    "engagement_events": {
        "customer_id": ("str", True),
        "occurred_at": (TIMESTAMP, True),
        "event_type": ("str", True),
    },
    "invoices": {
        "invoice_id": ("str", True),
        "customer_id": ("str", True),
        "issued_at": (TIMESTAMP, True),
        "due_at": (TIMESTAMP, True),
        "amount": ("float64", True),
        "paid_at": (TIMESTAMP, True),
        "failed_payment_attempts": ("Int64", False),
    },
    "support_tickets": {
        "ticket_id": ("str", True),
        "customer_id": ("str", True),
        "opened_at": (TIMESTAMP, True),
        "channel": ("str", True),
        "handle_minutes": ("float64", True),
        "escalated": ("bool", True),
        "satisfaction": ("Int64", False),
        "resolved_at": (TIMESTAMP, False),
    },
}
REQUIRED_TABLES: tuple[str, ...] = ("customers", "transactions")
# the column each table's rows are timed by
EVENT_TIME: dict[str, str] = {
    "customers": "signup_at",
    "transactions": "occurred_at",
    "engagement_events": "occurred_at",
    "invoices": "issued_at",
    "support_tickets": "opened_at",
}
# facts that become known only at a later moment: (the moment's column, the facts that come with it).
# Before that moment has passed the moment and its facts are unknown (contract section 1).
KNOWN_AFTER: dict[str, tuple[str, tuple[str, ...]]] = {
    "invoices": ("paid_at", ("failed_payment_attempts",)),
    "support_tickets": ("resolved_at", ("satisfaction",)),
}


def empty_table(name: str) -> pd.DataFrame:
    """An empty canonical table: what a missing optional table means ("no such signal")."""
    return pd.DataFrame({c: pd.Series([], dtype=d) for c, (d, _) in TABLE_COLUMNS[name].items()})


@dataclass(frozen=True)
class Tables:
    """The five contract tables in canonical form; optional ones may be empty, never None."""

    customers: pd.DataFrame
    transactions: pd.DataFrame
    engagement_events: pd.DataFrame
    invoices: pd.DataFrame
    support_tickets: pd.DataFrame

    @classmethod
    def from_frames(cls, **frames: pd.DataFrame) -> "Tables":
        """Build from already-canonical frames; absent optional tables become empty ones."""
        names = [f.name for f in fields(cls)]
        unknown = set(frames) - set(names)
        if unknown:
            raise ValueError(f"unknown table(s): {sorted(unknown)}")
        return cls(**{n: frames[n] if n in frames else empty_table(n) for n in names})

    def items(self) -> list[tuple[str, pd.DataFrame]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]

    def has(self, name: str) -> bool:
        """Whether the table carries any rows (an optional table may be absent or empty)."""
        return len(getattr(self, name)) > 0
