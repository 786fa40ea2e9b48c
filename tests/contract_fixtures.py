"""Small hand-made contract tables, importable by any test (conftest modules are not importable by
name once there are several of them)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def tiny_raw_tables() -> dict[str, pd.DataFrame]:
    """Five valid contract tables for three customers, as a user might export them (text dates)."""
    return {
        "customers": pd.DataFrame({
            "customer_id": ["c1", "c2", "c3"],
            "signup_at": ["2024-01-01", "2024-01-05T12:00:00+02:00", "2024-02-01"],
            "plan": ["basic", "pro", "basic"],
            "acquisition_channel": ["ads", "organic", "referral"],
            "region": ["eu", "us", "eu"],
            "referred_by": [None, None, "c1"],
        }),
        "transactions": pd.DataFrame({
            "transaction_id": ["t1", "t2", "t3", "t4"],
            "customer_id": ["c1", "c1", "c2", "c3"],
            "occurred_at": ["2024-01-02", "2024-02-02", "2024-01-06", "2024-02-03"],
            "amount": [10.0, -2.5, 30.0, 12.0],
            "gross_margin": [4.0, -1.0, None, 5.0],
        }),
        "engagement_events": pd.DataFrame({
            "customer_id": ["c1", "c2", "c1"],
            "occurred_at": ["2024-01-03", "2024-01-07", "2024-02-01"],
            "event_type": ["login", "email_open", "referral"],
        }),
        "invoices": pd.DataFrame({
            "invoice_id": ["i1", "i2"],
            "customer_id": ["c2", "c2"],
            "issued_at": ["2024-01-06", "2024-02-06"],
            "due_at": ["2024-01-20", "2024-02-20"],
            "amount": [30.0, 30.0],
            "paid_at": ["2024-01-25", None],
            "failed_payment_attempts": [1, 0],
        }),
        "support_tickets": pd.DataFrame({
            "ticket_id": ["s1", "s2", "s3"],
            "customer_id": ["c1", "c2", "c3"],
            "opened_at": ["2024-01-10", "2024-01-11", "2024-02-04"],
            "channel": ["email", "phone", "chat"],
            "handle_minutes": [5.0, 20.0, 0.0],
            "escalated": [False, True, False],
            "satisfaction": [4, 2, None],
            "resolved_at": ["2024-01-11", "2024-01-15", None],
        }),
    }


def write_tables(directory: Path, tables: dict[str, pd.DataFrame], fmt: str = "csv") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if fmt == "csv":
            frame.to_csv(directory / f"{name}.csv", index=False)
        else:
            frame.to_parquet(directory / f"{name}.parquet", index=False)
    return directory
