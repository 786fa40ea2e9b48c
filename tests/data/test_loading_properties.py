"""Property-based tests of loading (hypothesis): what goes in comes out, and every broken rule
ends in a clear error or a report that accounts for every row.

(a) Random *valid* contract tables -- unicode and very long ids, strings that look missing,
    duplicate timestamps, naive and tz-aware timestamps mixed in text columns, typed Parquet
    timestamps, empty and absent optional tables, absent optional columns, customers with no rows
    anywhere, rows exactly at midnight -- written as CSV or Parquet load to exactly the tables that
    were drawn: no error, no row lost or invented, no value changed.
(b) The same tables with contract rules broken, alone and in combination, always end in a
    DataValidationError naming the (first) broken table in strict mode; in non-strict mode every
    broken row is in the report, for every table rows in = rows kept + distinct rows set aside,
    and what is kept obeys the contract.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from customer_value.config import TICKET_CHANNELS
from customer_value.data.loading import DataValidationError, load_tables
from customer_value.data.tables import TABLE_COLUMNS, TIMESTAMP, empty_table

OPTIONAL_TABLES = ("engagement_events", "invoices", "support_tickets")
AS_OF = pd.Timestamp("2024-07-01")
UNKNOWN_ID = "unknown-" + "\u2603" * 3000  # longer than any drawn id, so never a customer
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])

# ---------------------------------------------------------------------------------------------
# strategies: canonical tables (what loading must return)

_chars = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
_short_ids = st.text(_chars, min_size=1, max_size=6)
_long_ids = st.builds(lambda c, n, tail: c * n + tail, _chars, st.integers(200, 2000), st.text(_chars, max_size=3))
ids = st.one_of(_short_ids, _short_ids, _long_ids, st.sampled_from(["NA", "null", "None", "N/A", "nan", "0", "007"]))
texts = st.one_of(st.none(), st.sampled_from(["NA", "null", "None", "N/A", "basic", " pro ", "Zürich"]),
                  st.text(_chars, min_size=1, max_size=5))


@st.composite
def moments(draw, n: int) -> list[pd.Timestamp]:
    """``n`` timestamps from a small pool: duplicates, exact midnights and as_of itself are common."""
    pool = draw(st.lists(st.datetimes(dt.datetime(2021, 1, 1), dt.datetime(2026, 12, 31)), min_size=1, max_size=4))
    pool = [pd.Timestamp(t) for t in pool] + [AS_OF, AS_OF - pd.Timedelta(microseconds=1), pd.Timestamp("2024-01-01")]
    return [draw(st.sampled_from(pool)) for _ in range(n)]


def _frame(name: str, columns: dict[str, list]) -> pd.DataFrame:
    """A canonical frame (dtypes of the contract) from plain lists."""
    frame = pd.DataFrame({c: pd.Series(columns[c], dtype=object) for c in TABLE_COLUMNS[name]})
    for column, (dtype, _) in TABLE_COLUMNS[name].items():
        if dtype == TIMESTAMP:
            frame[column] = pd.to_datetime(frame[column]).astype(TIMESTAMP)
        elif dtype == "str":
            frame[column] = frame[column].astype("str")
        else:
            frame[column] = frame[column].astype(dtype)
    return frame if len(frame) else empty_table(name)


@st.composite
def valid_tables(draw, min_customers: int = 0) -> dict[str, pd.DataFrame]:
    """Canonical contract tables; an optional table may be left out (absent) or be empty."""
    customer_ids = draw(st.lists(ids, min_size=min_customers, max_size=6, unique=True))
    n = len(customer_ids)
    referrers = st.one_of(st.none(), st.sampled_from(customer_ids)) if n else st.none()
    tables = {"customers": _frame("customers", {
        "customer_id": customer_ids, "signup_at": draw(moments(n)),
        "plan": draw(st.lists(texts, min_size=n, max_size=n)),
        "acquisition_channel": draw(st.lists(texts, min_size=n, max_size=n)),
        "region": draw(st.lists(texts, min_size=n, max_size=n)),
        "referred_by": draw(st.lists(referrers, min_size=n, max_size=n)),
    })}
    owners = st.sampled_from(customer_ids) if n else st.nothing()
    size = lambda most: st.integers(0, most if n else 0)  # noqa: E731
    money = st.floats(-1e7, 1e7, allow_nan=False, allow_infinity=False)
    k = draw(size(8))
    tables["transactions"] = _frame("transactions", {
        "transaction_id": draw(st.lists(ids, min_size=k, max_size=k, unique=True)),
        "customer_id": draw(st.lists(owners, min_size=k, max_size=k)), "occurred_at": draw(moments(k)),
        "amount": draw(st.lists(money, min_size=k, max_size=k)),
        "gross_margin": draw(st.lists(st.one_of(st.none(), money), min_size=k, max_size=k)),
    })
    k = draw(size(8))
    tables["engagement_events"] = _frame("engagement_events", {
        "customer_id": draw(st.lists(owners, min_size=k, max_size=k)), "occurred_at": draw(moments(k)),
        "event_type": draw(st.lists(st.one_of(st.sampled_from(["login", " Login ", "referral", "NA"]),
                                              st.text(_chars, min_size=1, max_size=4)), min_size=k, max_size=k)),
    })
    k = draw(size(5))
    issued = draw(moments(k))
    tables["invoices"] = _frame("invoices", {
        "invoice_id": draw(st.lists(ids, min_size=k, max_size=k, unique=True)),
        "customer_id": draw(st.lists(owners, min_size=k, max_size=k)), "issued_at": issued,
        "due_at": [t + pd.Timedelta(days=d) for t, d in zip(issued, draw(st.lists(st.integers(0, 60), min_size=k, max_size=k)))],
        "amount": draw(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=k, max_size=k)),
        "paid_at": [None if p else t for p, t in zip(draw(st.lists(st.booleans(), min_size=k, max_size=k)), draw(moments(k)))],
        "failed_payment_attempts": draw(st.lists(st.one_of(st.none(), st.integers(0, 9)), min_size=k, max_size=k)),
    })
    k = draw(size(5))
    tables["support_tickets"] = _frame("support_tickets", {
        "ticket_id": draw(st.lists(ids, min_size=k, max_size=k, unique=True)),
        "customer_id": draw(st.lists(owners, min_size=k, max_size=k)), "opened_at": draw(moments(k)),
        "channel": draw(st.lists(st.sampled_from(TICKET_CHANNELS), min_size=k, max_size=k)),
        "handle_minutes": draw(st.lists(st.floats(0, 1e4, allow_nan=False), min_size=k, max_size=k)),
        "escalated": draw(st.lists(st.booleans(), min_size=k, max_size=k)),
        "satisfaction": draw(st.lists(st.one_of(st.none(), st.integers(1, 5)), min_size=k, max_size=k)),
        "resolved_at": [None if p else t for p, t in zip(draw(st.lists(st.booleans(), min_size=k, max_size=k)), draw(moments(k)))],
    })
    for name in OPTIONAL_TABLES:
        if draw(st.booleans()) and not len(tables[name]) and draw(st.booleans()):
            del tables[name]  # absent: "no such signal"
    return tables


# ---------------------------------------------------------------------------------------------
# writing: the same tables as a user's files would hold them

OFFSETS = [pd.Timedelta(0), pd.Timedelta(hours=5, minutes=30), pd.Timedelta(hours=-8), pd.Timedelta(hours=14),
           pd.Timedelta(hours=-12)]


def _iso(t: pd.Timestamp, style: int) -> str:
    """One ISO 8601 spelling of the UTC moment ``t`` (styles: naive, Z, offsets, date only)."""
    if style == 0:
        return t.strftime("%Y-%m-%d %H:%M:%S.%f")
    if style == 1:
        return t.strftime("%Y-%m-%dT%H:%M:%S") + ("Z" if t.microsecond == 0 else t.strftime(".%fZ"))
    if style == 2 and t == t.normalize():
        return t.strftime("%Y-%m-%d")
    offset = OFFSETS[style % len(OFFSETS)]
    local = t + offset
    sign, minutes = ("-" if offset < pd.Timedelta(0) else "+"), abs(int(offset.total_seconds() // 60))
    return local.strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


_TRUE_SPELLINGS, _FALSE_SPELLINGS = ["True", "true", "1", "yes", "t", "Y"], ["False", "false", "0", "no", "f", "N"]


def as_text(frame: pd.DataFrame, name: str, rng: np.random.Generator) -> pd.DataFrame:
    """Every value as text (nulls as None), timestamps in mixed ISO spellings, booleans spelled
    in every accepted way."""
    out = {}
    for column in frame.columns:
        dtype = TABLE_COLUMNS[name].get(column, ("str", False))[0]
        values = frame[column].astype(object).where(frame[column].notna(), None)
        if dtype == TIMESTAMP:
            cells = [None if v is None else _iso(pd.Timestamp(v), int(rng.integers(0, 7))) for v in values]
        elif dtype == "bool":
            cells = [rng.choice(_TRUE_SPELLINGS if v else _FALSE_SPELLINGS) for v in values]
        elif dtype == "float64":
            cells = [None if v is None else repr(float(v)) for v in values]
        else:
            cells = [None if v is None else str(v) for v in values]
        out[column] = pd.Series(cells, index=frame.index, dtype=object)
    return pd.DataFrame(out, columns=frame.columns)


def typed_for_parquet(frame: pd.DataFrame, name: str, rng: np.random.Generator) -> pd.DataFrame:
    """Parquet keeps types: each timestamp column typed naive, typed tz-aware or text."""
    frame = frame.copy()
    text = as_text(frame, name, rng)
    for column, (dtype, _) in TABLE_COLUMNS[name].items():
        if dtype == TIMESTAMP and column in frame:
            mode = rng.integers(0, 3)
            if mode == 1:
                zone = rng.choice(["Asia/Kolkata", "America/New_York", "Pacific/Kiritimati", "UTC"])
                frame[column] = frame[column].dt.tz_localize("UTC").dt.tz_convert(zone)
            elif mode == 2:
                frame[column] = text[column]
    return frame


def write(directory: Path, tables: dict[str, pd.DataFrame], fmt: str, seed: int, as_is: bool = False) -> Path:
    """Write the tables as a user might: CSV text, or Parquet with typed or text columns;
    ``as_is`` writes frames that are already text (and maybe broken) unchanged."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        out = frame if as_is else as_text(frame, name, rng) if fmt == "csv" else typed_for_parquet(frame, name, rng)
        if fmt == "csv":  # RFC 4180 line ends: pandas leaves a bare \r unquoted under \n line ends
            out.to_csv(directory / f"{name}.csv", index=False, lineterminator="\r\n")
        else:
            out.to_parquet(directory / f"{name}.parquet", index=False)
    return directory


def expected(tables: dict[str, pd.DataFrame], margin_rate: float = 1.0) -> dict[str, pd.DataFrame]:
    """What loading must return: every contract table, missing ones empty, margins defaulted."""
    out = {name: tables.get(name, empty_table(name)).copy() for name in TABLE_COLUMNS}
    tx = out["transactions"]
    tx["gross_margin"] = tx["gross_margin"].fillna(tx["amount"] * margin_rate)
    return out


# ---------------------------------------------------------------------------------------------
# (a) valid tables load without loss


@pytest.mark.slow
@PROPERTY
@given(tables=valid_tables(), fmt=st.sampled_from(["csv", "parquet"]), seed=st.integers(0, 2**16),
       drop_optional=st.booleans(), strict=st.booleans())
def test_valid_tables_round_trip(tables, fmt, seed, drop_optional, strict):
    written = {name: frame.copy() for name, frame in tables.items()}
    if drop_optional:  # optional columns left out of the file are null
        written["transactions"] = written["transactions"].drop(columns=["gross_margin"])
        tables["transactions"]["gross_margin"] = np.nan
        written["customers"] = written["customers"].drop(columns=["plan", "referred_by"])
        tables["customers"][["plan", "referred_by"]] = None
        tables["customers"] = tables["customers"].astype({"plan": "str", "referred_by": "str"})
    with tempfile.TemporaryDirectory() as tmp:
        loaded = load_tables(write(Path(tmp), written, fmt, seed), strict=strict)
    assert loaded.report.problems.empty
    for name, frame in expected(tables).items():
        got = getattr(loaded.tables, name)
        pd.testing.assert_frame_equal(got, frame, obj=name)
        assert loaded.report.summary[name]["rows"] == len(frame)


@settings(PROPERTY, max_examples=20)
@given(tables=valid_tables(min_customers=1), seed=st.integers(0, 2**16))
def test_extra_columns_are_carried_along(tables, seed):
    tables["transactions"]["note"] = pd.Series(["NA"] * len(tables["transactions"]), dtype="str")
    with tempfile.TemporaryDirectory() as tmp:
        loaded = load_tables(write(Path(tmp), tables, "csv", seed))
    tx = loaded.tables.transactions
    assert list(tx.columns) == [*TABLE_COLUMNS["transactions"], "note"]
    assert (tx["note"] == "NA").all()


# ---------------------------------------------------------------------------------------------
# (b) broken rules: a clear error, or a report that accounts for every row

REQUIRED_VALUES = {  # columns that must hold a value (contract section 2)
    "customers": ["customer_id", "signup_at"],
    "transactions": ["transaction_id", "customer_id", "occurred_at", "amount"],
    "engagement_events": ["customer_id", "occurred_at", "event_type"],
    "invoices": ["invoice_id", "customer_id", "issued_at", "due_at", "amount"],
    "support_tickets": ["ticket_id", "customer_id", "opened_at", "channel", "handle_minutes", "escalated"],
}
ID_COLUMN = {"customers": "customer_id", "transactions": "transaction_id", "invoices": "invoice_id",
             "support_tickets": "ticket_id"}
BAD_VALUES = {  # (table, column) -> values that break the column's rule
    ("customers", "signup_at"): ["03/04/2024", "yesterday", "2024-13-01", "1704067200"],
    ("transactions", "occurred_at"): ["13/04/2024", "soon", "2024-02-30"],
    ("transactions", "amount"): ["inf", "-inf", "NaN", "nan", "Infinity", "twelve", "12,50"],
    ("transactions", "gross_margin"): ["inf", "NaN", "-Infinity", "n/a"],
    ("engagement_events", "occurred_at"): ["01.02.2024", "NaT"],
    ("invoices", "amount"): ["-0.01", "-5", "inf", "NaN"],
    ("invoices", "paid_at"): ["paid", "31/12/2023"],
    ("invoices", "failed_payment_attempts"): ["-1", "1.5", "two", "inf"],
    ("support_tickets", "handle_minutes"): ["-1", "inf", "-inf", "NaN"],
    ("support_tickets", "escalated"): ["maybe", "2", "yes please"],
    ("support_tickets", "channel"): ["pigeon", "Email", "NA"],
    ("support_tickets", "satisfaction"): ["0", "6", "4.5", "-inf"],
    ("support_tickets", "resolved_at"): ["later", "2024/01/02"],
}


@st.composite
def corruption(draw, tables: dict[str, pd.DataFrame]):
    """One broken rule: (table, kind, apply) where apply(text_tables) returns the broken rows."""
    present = [n for n in tables if len(tables[n])]
    eligible = {
        "null": present,
        "bad value": [n for n in present if any(t == n for t, _ in BAD_VALUES)],
        "duplicate id": [n for n in present if n in ID_COLUMN],
        "unknown customer": [n for n in present if n != "customers"],
        "due before issue": [n for n in present if n == "invoices"],
        "unknown referrer": ["customers"],
    }
    kind = draw(st.sampled_from([k for k, names in eligible.items() if names]))
    name = draw(st.sampled_from(eligible[kind]))
    n = len(tables[name])
    row = draw(st.integers(0, n - 1))
    # every choice is drawn here: hypothesis draws only while the strategy runs
    null_column = draw(st.sampled_from(REQUIRED_VALUES[name]))
    bad_columns = [c for t, c in BAD_VALUES if t == name] or ["-"]
    bad_column = draw(st.sampled_from(bad_columns))
    bad_value = draw(st.sampled_from(BAD_VALUES.get((name, bad_column), ["-"])))
    earlier = pd.Timedelta(microseconds=draw(st.integers(1, 10**12)))

    def apply(text: dict[str, pd.DataFrame]) -> list[int]:
        frame = text[name]
        if kind == "null":
            frame.loc[row, null_column] = None
        elif kind == "bad value":
            frame.loc[row, bad_column] = bad_value
        elif kind == "duplicate id":
            text[name] = pd.concat([frame, frame.iloc[[row]]], ignore_index=True)
            return [row, len(frame)]
        elif kind == "unknown customer":
            frame.loc[row, "customer_id"] = UNKNOWN_ID
        elif kind == "unknown referrer":
            frame.loc[row, "referred_by"] = UNKNOWN_ID
        elif kind == "due before issue":
            issued = pd.Timestamp(tables["invoices"].loc[row, "issued_at"])
            frame.loc[row, "issued_at"] = _iso(issued, 0)
            frame.loc[row, "due_at"] = _iso(issued - earlier, 1)
        return [row]

    return name, kind, apply


@st.composite
def broken_tables(draw):
    """Valid tables as text with one to four rules broken; returns (raw tables, broken rows)."""
    tables = draw(valid_tables(min_customers=1))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    text = {name: as_text(frame, name, rng) for name, frame in tables.items()}
    broken: dict[str, set[int]] = {}
    changes = draw(st.lists(corruption(tables), min_size=1, max_size=4))
    changes.sort(key=lambda c: c[1] == "duplicate id")  # rows are appended last, after the other edits
    for name, kind, apply in changes:
        rows = apply(text)
        broken.setdefault(name, set()).update(rows)
        note(f"{kind} in {name} rows {rows}")
    return text, broken


def _first_broken(broken: dict[str, set[int]]) -> str:
    return next(name for name in TABLE_COLUMNS if name in broken)


@pytest.mark.slow
@PROPERTY
@given(case=broken_tables(), fmt=st.sampled_from(["csv", "parquet"]))
def test_broken_rules_fail_strictly_naming_the_table(case, fmt):
    text, broken = case
    with tempfile.TemporaryDirectory() as tmp:
        data = write(Path(tmp), text, fmt, 0, as_is=True)
        with pytest.raises(DataValidationError) as info:
            load_tables(data, strict=True)
    name = _first_broken(broken)
    assert f"table '{name}'" in str(info.value)
    assert set(info.value.problems["table"]) == {name}
    assert set(broken[name]) <= set(info.value.problems["row"])


@pytest.mark.slow
@PROPERTY
@given(case=broken_tables(), fmt=st.sampled_from(["csv", "parquet"]))
def test_broken_rules_are_accounted_for_row_by_row(case, fmt):
    text, broken = case
    with tempfile.TemporaryDirectory() as tmp:
        loaded = load_tables(write(Path(tmp), text, fmt, 0, as_is=True), strict=False)
    problems, tables = loaded.report.problems, loaded.tables
    for name, frame in tables.items():
        n_in = len(text.get(name, ()))
        mine = problems[problems["table"] == name]
        set_aside = mine.loc[mine["action"] == "set aside", "row"].unique()
        assert n_in == len(frame) + len(set_aside), name
        assert set(broken.get(name, ())) <= set(mine["row"]), name
        assert all(0 <= r < n_in for r in mine["row"])
        nulled = mine.loc[mine["action"] == "set to null", "row"]
        assert not set(nulled) & set(set_aside), name  # a nulled row is a kept row
    # what is kept obeys the contract
    customers = pd.Index(tables.customers["customer_id"])
    assert customers.is_unique and customers.notna().all()
    assert tables.customers["referred_by"].dropna().isin(customers).all()
    for name, frame in tables.items():
        if name != "customers":
            assert frame["customer_id"].isin(customers).all(), name
        for column, (dtype, _) in TABLE_COLUMNS[name].items():
            if dtype == "float64":
                assert np.isfinite(frame[column].dropna()).all(), (name, column)
            if column in REQUIRED_VALUES[name]:
                assert frame[column].notna().all(), (name, column)


@PROPERTY
@given(tables=valid_tables(min_customers=1), fmt=st.sampled_from(["csv", "parquet"]),
       strict=st.booleans(), data=st.data())
def test_missing_required_column_is_an_error_in_both_modes(tables, fmt, strict, data):
    name = data.draw(st.sampled_from(sorted(tables)))
    column = data.draw(st.sampled_from([c for c, (_, required) in TABLE_COLUMNS[name].items() if required]))
    tables[name] = tables[name].drop(columns=[column])
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = write(Path(tmp), tables, fmt, 0)
        with pytest.raises(DataValidationError, match=rf"table '{name}': missing required column\(s\) '{column}'"):
            load_tables(data_dir, strict=strict)
