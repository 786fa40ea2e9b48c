"""Worlds for the feature tests: a small random one with awkward rows, and hand-made tables.

The world has customers signing up before and after the test date, rows at exactly midnight of
the test date (which are future), refunds, missing gross margins, unknown event types and ticket
channels, invoices paid late / on time / never / after the date, tickets resolved after the date,
and referrals.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from customer_value.data.tables import TABLE_COLUMNS, Tables

AS_OF = dt.date(2024, 7, 1)
START = pd.Timestamp("2022-06-01")
END = pd.Timestamp("2025-03-01")


def _canonical(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype({c: d for c, (d, _) in TABLE_COLUMNS[name].items()})[list(TABLE_COLUMNS[name])]


def random_world(n_customers: int = 300, seed: int = 0, hot_dates: tuple[dt.date, ...] = (AS_OF,)) -> Tables:
    """A random world in canonical form; about 5% of event times sit exactly on midnight of one
    of ``hot_dates`` (the dates tests cut at)."""
    rng = np.random.default_rng(seed)
    span = (END - START).total_seconds()
    hot = np.array([pd.Timestamp(d) for d in hot_dates], dtype="datetime64[us]")

    def times(n: int, lo: np.ndarray | None = None) -> np.ndarray:
        base = np.datetime64(START.to_datetime64(), "us")
        if lo is None:
            t = base + (rng.random(n) * span * 1e6).astype("timedelta64[us]")
        else:
            remaining = (np.datetime64(END.to_datetime64(), "us") - lo).astype("int64")
            t = lo + (rng.random(n) * np.maximum(remaining, 1)).astype("timedelta64[us]")
        on_hot = rng.random(n) < 0.05
        t[on_hot] = rng.choice(hot, size=on_hot.sum())
        if lo is not None:
            t = np.maximum(t, lo)
        return t

    ids = np.array([f"c{i:05d}" for i in range(n_customers)])
    signup = times(n_customers)
    referred = np.where(rng.random(n_customers) < 0.3, rng.choice(ids, n_customers), None)
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "signup_at": signup,
            "plan": rng.choice(["basic", "pro", None], n_customers),
            "acquisition_channel": rng.choice(["ads", "organic", "referral"], n_customers),
            "region": rng.choice(["eu", "us", None], n_customers),
            "referred_by": referred,
        }
    )
    owner_idx = lambda n: rng.integers(0, n_customers, n)  # noqa: E731

    n = 8 * n_customers
    who = owner_idx(n)
    amount = np.round(rng.gamma(2.0, 30.0, n), 2)
    amount[rng.random(n) < 0.08] *= -1
    margin = np.where(rng.random(n) < 0.3, np.nan, np.round(amount * 0.4, 2))
    transactions = pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "customer_id": ids[who],
            "occurred_at": times(n, signup[who]),
            "amount": amount,
            "gross_margin": margin,
        }
    )

    n = 30 * n_customers
    who = owner_idx(n)
    events = pd.DataFrame(
        {
            "customer_id": ids[who],
            "occurred_at": times(n, signup[who]),
            "event_type": rng.choice(
                ["login", "feature_use", "email_open", "email_click", "referral", "webinar", " Login "],
                n,
                p=[0.35, 0.25, 0.15, 0.1, 0.05, 0.05, 0.05],
            ),
        }
    )

    n = 4 * n_customers
    who = owner_idx(n)
    issued = times(n, signup[who])
    due = issued + np.timedelta64(14, "D")
    immediate = rng.random(n) < 0.05
    due[immediate] = issued[immediate]
    delay = (rng.gamma(1.5, 8.0, n) * 86400e6).astype("timedelta64[us]")
    paid = issued + delay
    paid[rng.random(n) < 0.03] = np.datetime64(pd.Timestamp(AS_OF).to_datetime64(), "us")  # paid exactly at D
    unpaid = rng.random(n) < 0.12
    invoices = pd.DataFrame(
        {
            "invoice_id": [f"i{i}" for i in range(n)],
            "customer_id": ids[who],
            "issued_at": issued,
            "due_at": due,
            "amount": np.round(rng.gamma(2.0, 40.0, n), 2),
            "paid_at": pd.Series(paid).where(~unpaid),
            "failed_payment_attempts": pd.array(np.where(rng.random(n) < 0.1, pd.NA, rng.poisson(0.4, n)), dtype="Int64"),
        }
    )

    n = 2 * n_customers
    who = owner_idx(n)
    opened = times(n, signup[who])
    resolved = opened + (rng.gamma(1.2, 2.0, n) * 86400e6).astype("timedelta64[us]")
    open_ = rng.random(n) < 0.1
    satisfaction = pd.array(np.where(rng.random(n) < 0.3, pd.NA, rng.integers(1, 6, n)), dtype="Int64")
    tickets = pd.DataFrame(
        {
            "ticket_id": [f"k{i}" for i in range(n)],
            "customer_id": ids[who],
            "opened_at": opened,
            "channel": rng.choice(["email", "chat", "phone", "other", "twitter"], n),
            "handle_minutes": np.round(rng.gamma(2.0, 6.0, n), 1),
            "escalated": rng.random(n) < 0.15,
            "satisfaction": satisfaction.astype("Int64"),
            "resolved_at": pd.Series(resolved).where(~open_),
        }
    )
    frames = {
        "customers": customers,
        "transactions": transactions,
        "engagement_events": events,
        "invoices": invoices,
        "support_tickets": tickets,
    }
    return Tables(**{name: _canonical(name, frame) for name, frame in frames.items()})


def cut_at(tables: Tables, as_of: dt.date) -> Tables:
    """The data as it looked at ``as_of`` 00:00: later rows removed, later facts masked."""
    d = pd.Timestamp(as_of)
    c = tables.customers[tables.customers.signup_at < d]
    t = tables.transactions[tables.transactions.occurred_at < d]
    e = tables.engagement_events[tables.engagement_events.occurred_at < d]
    i = tables.invoices[tables.invoices.issued_at < d].copy()
    late_paid = i.paid_at >= d
    i["paid_at"] = i.paid_at.mask(late_paid)
    i["failed_payment_attempts"] = i.failed_payment_attempts.mask(late_paid | i.paid_at.isna())
    k = tables.support_tickets[tables.support_tickets.opened_at < d].copy()
    later = k.resolved_at >= d
    k["resolved_at"] = k.resolved_at.mask(later)
    k["satisfaction"] = k.satisfaction.mask(later | k.resolved_at.isna())
    return Tables(customers=c, transactions=t, engagement_events=e, invoices=i, support_tickets=k)


def make_tables(**rows: list[dict]) -> Tables:
    """Canonical tables from lists of row dicts (timestamps as strings); optional columns and
    tables may be left out."""
    frames = {}
    for name, records in rows.items():
        spec = TABLE_COLUMNS[name]
        frame = pd.DataFrame.from_records(records, columns=list(spec))
        for column, (dtype, _) in spec.items():
            if dtype == "datetime64[us]":
                frame[column] = pd.to_datetime(frame[column], format="ISO8601").astype(dtype)
            elif dtype == "bool":
                frame[column] = frame[column].fillna(False).astype(bool)
            else:
                frame[column] = frame[column].astype(dtype)
        frames[name] = frame
    return Tables.from_frames(**frames)
