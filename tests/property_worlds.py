"""Hypothesis strategies for small, awkward but valid contract worlds, shared by the feature and
scoring property tests: one customer, customers with no rows anywhere, unicode and very long ids,
duplicate timestamps, rows exactly at as_of midnight and one microsecond before it, refunds and
zero amounts, missing margins, invoices paid at as_of, values the models never saw."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from hypothesis import strategies as st

from customer_value.config import TICKET_CHANNELS
from customer_value.data.tables import TABLE_COLUMNS, TIMESTAMP, Tables

AS_OFS = [dt.date(2024, 7, 1), dt.date(2024, 2, 29)]

_chars = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
ids = st.one_of(st.text(_chars, min_size=1, max_size=5),
                st.builds(lambda c, n: c * n, _chars, st.integers(100, 1000)))


@st.composite
def moments(draw, as_of: dt.date, n: int) -> list[pd.Timestamp]:
    """``n`` times from a small pool around ``as_of``: duplicates and edges are common."""
    cut = pd.Timestamp(as_of)
    offsets = draw(st.lists(st.integers(-800 * 86400, 400 * 86400), min_size=1, max_size=4))
    pool = [cut + pd.Timedelta(seconds=s, microseconds=s % 997) for s in offsets]
    pool += [cut, cut - pd.Timedelta(microseconds=1), cut - pd.Timedelta(days=1), cut - pd.Timedelta(days=365)]
    return [draw(st.sampled_from(pool)) for _ in range(n)]


def _frame(name: str, columns: dict[str, list]) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(columns[c], dtype=object) for c in TABLE_COLUMNS[name]})
    dtypes = {c: d for c, (d, _) in TABLE_COLUMNS[name].items()}
    for column, dtype in dtypes.items():
        if dtype == TIMESTAMP:
            frame[column] = pd.to_datetime(frame[column]).astype(TIMESTAMP)
    return frame.astype(dtypes)


@st.composite
def worlds(draw) -> tuple[Tables, dt.date]:
    """Valid canonical tables and the as_of they are cut at."""
    as_of = draw(st.sampled_from(AS_OFS))
    customer_ids = draw(st.lists(ids, min_size=1, max_size=6, unique=True))
    n = len(customer_ids)
    when = lambda k: moments(as_of, k)  # noqa: E731
    lists = lambda s, k: st.lists(s, min_size=k, max_size=k)  # noqa: E731
    owners = st.sampled_from(customer_ids)
    customers = _frame("customers", {
        "customer_id": customer_ids, "signup_at": draw(when(n)),
        "plan": draw(lists(st.sampled_from(["basic", "pro", None]), n)),
        "acquisition_channel": draw(lists(st.sampled_from(["ads", "referral", None]), n)),
        "region": draw(lists(st.sampled_from(["NA", "eu", None]), n)),
        "referred_by": draw(lists(st.one_of(st.none(), owners), n)),
    })
    money = st.one_of(st.just(0.0), st.floats(-500, 5000, allow_nan=False).map(lambda x: round(x, 2)))
    k = draw(st.integers(0, 12))
    transactions = _frame("transactions", {
        "transaction_id": [f"t{i}" for i in range(k)], "customer_id": draw(lists(owners, k)),
        "occurred_at": draw(when(k)), "amount": draw(lists(money, k)),
        "gross_margin": draw(lists(st.one_of(st.none(), money), k)),
    })
    k = draw(st.integers(0, 12))
    events = _frame("engagement_events", {
        "customer_id": draw(lists(owners, k)), "occurred_at": draw(when(k)),
        "event_type": draw(lists(st.sampled_from(["login", "feature_use", "email_open", "email_click", "referral",
                                                  " Login ", "webinar", "\u2603"]), k)),
    })
    k = draw(st.integers(0, 6))
    issued = draw(when(k))
    paid = draw(when(k))
    invoices = _frame("invoices", {
        "invoice_id": [f"i{i}" for i in range(k)], "customer_id": draw(lists(owners, k)), "issued_at": issued,
        "due_at": [t + pd.Timedelta(days=d) for t, d in zip(issued, draw(lists(st.integers(0, 30), k)))],
        "amount": draw(lists(st.floats(0, 5000, allow_nan=False), k)),
        "paid_at": [None if unpaid else p for unpaid, p in zip(draw(lists(st.booleans(), k)), paid)],
        "failed_payment_attempts": draw(lists(st.one_of(st.none(), st.integers(0, 4)), k)),
    })
    k = draw(st.integers(0, 6))
    resolved = draw(when(k))
    tickets = _frame("support_tickets", {
        "ticket_id": [f"s{i}" for i in range(k)], "customer_id": draw(lists(owners, k)),
        "opened_at": draw(when(k)), "channel": draw(lists(st.sampled_from(TICKET_CHANNELS), k)),
        "handle_minutes": draw(lists(st.floats(0, 300, allow_nan=False), k)),
        "escalated": draw(lists(st.booleans(), k)),
        "satisfaction": draw(lists(st.one_of(st.none(), st.integers(1, 5)), k)),
        "resolved_at": [None if still_open else r for still_open, r in zip(draw(lists(st.booleans(), k)), resolved)],
    })
    tables = Tables.from_frames(customers=customers, transactions=transactions, engagement_events=events,
                                invoices=invoices, support_tickets=tickets)
    return tables, as_of
