"""pandera schemas of the contract tables (section 2), applied after parsing at load time.

Parsing (names, timestamps to naive UTC, numbers, booleans) happens in :mod:`loading`, which
knows the original values and can say "does not parse"; these schemas then check the rules
that hold *within* one table. Rules across tables (a `customer_id` that must exist in
`customers`) are checked in :mod:`loading` because a schema only sees one frame.

Every float column must be finite (``inf`` is no amount of money or minutes); loading already
reports non-finite input values, the check here keeps the rule true for frames built in memory.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

with warnings.catch_warnings():  # pandera probes pyspark.pandas, which warns about pandas 3
    warnings.simplefilter("ignore", FutureWarning)
    import pandera.pandas as pa
    from pandera.typing import Series

from customer_value.config import TICKET_CHANNELS

NOT_FINITE = "not a finite number"  # the words loading.py uses for a non-finite input value


def _finite(series: pd.Series) -> pd.Series:
    """True where a float is finite; nulls are judged by the column's nullability, not here."""
    return pd.Series(np.isfinite(series.to_numpy(dtype="float64")), index=series.index)


class _Table(pa.DataFrameModel):
    class Config:
        strict = False  # extra user columns are carried along untouched
        coerce = False  # loading.py already parsed every column into its canonical dtype


class CustomersSchema(_Table):
    customer_id: Series[str] = pa.Field(nullable=False, unique=True)
    signup_at: Series[pd.Timestamp] = pa.Field(nullable=False)
    plan: Series[str] = pa.Field(nullable=True)
    acquisition_channel: Series[str] = pa.Field(nullable=True)
    region: Series[str] = pa.Field(nullable=True)
    referred_by: Series[str] = pa.Field(nullable=True)


class TransactionsSchema(_Table):
    transaction_id: Series[str] = pa.Field(nullable=False, unique=True)
    customer_id: Series[str] = pa.Field(nullable=False)
    occurred_at: Series[pd.Timestamp] = pa.Field(nullable=False)
    amount: Series[float] = pa.Field(nullable=False)
    gross_margin: Series[float] = pa.Field(nullable=True)

    @pa.check("amount", "gross_margin", name=NOT_FINITE)
    def finite(cls, series: pd.Series) -> Series[bool]:
        return _finite(series)


class EngagementEventsSchema(_Table):
    customer_id: Series[str] = pa.Field(nullable=False)
    occurred_at: Series[pd.Timestamp] = pa.Field(nullable=False)
    event_type: Series[str] = pa.Field(nullable=False)


class InvoicesSchema(_Table):
    invoice_id: Series[str] = pa.Field(nullable=False, unique=True)
    customer_id: Series[str] = pa.Field(nullable=False)
    issued_at: Series[pd.Timestamp] = pa.Field(nullable=False)
    due_at: Series[pd.Timestamp] = pa.Field(nullable=False)
    amount: Series[float] = pa.Field(nullable=False, ge=0)
    paid_at: Series[pd.Timestamp] = pa.Field(nullable=True)
    failed_payment_attempts: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0)

    @pa.check("amount", name=NOT_FINITE)
    def finite(cls, series: pd.Series) -> Series[bool]:
        return _finite(series)

    @pa.dataframe_check(name="due_at >= issued_at", element_wise=False)
    def due_not_before_issue(cls, df: pd.DataFrame) -> Series[bool]:
        return df["due_at"].isna() | df["issued_at"].isna() | (df["due_at"] >= df["issued_at"])


class SupportTicketsSchema(_Table):
    ticket_id: Series[str] = pa.Field(nullable=False, unique=True)
    customer_id: Series[str] = pa.Field(nullable=False)
    opened_at: Series[pd.Timestamp] = pa.Field(nullable=False)
    channel: Series[str] = pa.Field(nullable=False, isin=list(TICKET_CHANNELS))
    handle_minutes: Series[float] = pa.Field(nullable=False, ge=0)
    escalated: Series[bool] = pa.Field(nullable=False)
    satisfaction: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=1, le=5)
    resolved_at: Series[pd.Timestamp] = pa.Field(nullable=True)

    @pa.check("handle_minutes", name=NOT_FINITE)
    def finite(cls, series: pd.Series) -> Series[bool]:
        return _finite(series)


SCHEMAS: dict[str, type[_Table]] = {
    "customers": CustomersSchema,
    "transactions": TransactionsSchema,
    "engagement_events": EngagementEventsSchema,
    "invoices": InvoicesSchema,
    "support_tickets": SupportTicketsSchema,
}
