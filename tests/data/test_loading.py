"""Loading and validation: every contract rule, strict and non-strict, CSV and Parquet."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from customer_value.config import Settings
from customer_value.data.loading import DataValidationError, load_tables
from customer_value.data.tables import TABLE_COLUMNS
from contract_fixtures import write_tables


def _digest(directory):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_valid_tables_load_in_canonical_form(tmp_path, tiny_tables, fmt):
    data = write_tables(tmp_path / "d", tiny_tables, fmt)
    before = _digest(data)
    tables = load_tables(data).tables
    assert _digest(data) == before, "input files must never be modified"
    for name, frame in tables.items():
        assert list(frame.columns)[: len(TABLE_COLUMNS[name])] == list(TABLE_COLUMNS[name])
        for column, (dtype, _) in TABLE_COLUMNS[name].items():
            assert str(frame[column].dtype) == dtype, (name, column, frame[column].dtype)
    # tz-aware input converted to naive UTC
    assert tables.customers.loc[1, "signup_at"] == pd.Timestamp("2024-01-05 10:00:00")
    # missing gross_margin defaults to amount * margin_rate
    assert tables.transactions.loc[2, "gross_margin"] == 30.0
    assert tables.support_tickets["escalated"].tolist() == [False, True, False]


def test_margin_rate_and_column_mapping(tmp_path, tiny_tables):
    tiny_tables["transactions"] = tiny_tables["transactions"].rename(columns={"occurred_at": "order_ts", "amount": "total"})
    data = write_tables(tmp_path / "d", tiny_tables)
    settings = Settings(columns={"transactions": {"occurred_at": "order_ts", "amount": "total"}}, margin_rate=0.5)
    tx = load_tables(data, settings).tables.transactions
    assert tx["occurred_at"].iloc[0] == pd.Timestamp("2024-01-02")
    assert tx.loc[2, "gross_margin"] == 15.0


def test_missing_optional_tables_are_empty(tmp_path, tiny_tables):
    data = write_tables(tmp_path / "d", {k: tiny_tables[k] for k in ("customers", "transactions")})
    empty = tiny_tables["engagement_events"].iloc[0:0]
    empty.to_csv(data / "engagement_events.csv", index=False)
    loaded = load_tables(data)
    assert len(loaded.tables.invoices) == 0 and len(loaded.tables.engagement_events) == 0
    assert list(loaded.tables.support_tickets.columns) == list(TABLE_COLUMNS["support_tickets"])
    assert loaded.report.summary["invoices"]["missing"]


def test_missing_required_table(tmp_path, tiny_tables):
    data = write_tables(tmp_path / "d", {"customers": tiny_tables["customers"]})
    with pytest.raises(DataValidationError, match="table 'transactions' is required"):
        load_tables(data)


# (table, corruption, column named in the error, rows named) -- one per rule of the issue
def _set(table, column, row, value):
    def corrupt(tables):
        frame = tables[table].copy()
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        tables[table] = frame
    return corrupt


CORRUPTIONS = {
    "customer id null": ("customers", _set("customers", "customer_id", 1, None), "customer_id", [1]),
    "customer id duplicate": ("customers", _set("customers", "customer_id", 2, "c1"), "customer_id", [0, 2]),
    "signup does not parse": ("customers", _set("customers", "signup_at", 0, "yesterday-ish"), "signup_at", [0]),
    "referrer unknown": ("customers", _set("customers", "referred_by", 2, "c99"), "referred_by", [2]),
    "transaction id duplicate": ("transactions", _set("transactions", "transaction_id", 3, "t1"), "transaction_id", [0, 3]),
    "transaction id null": ("transactions", _set("transactions", "transaction_id", 1, None), "transaction_id", [1]),
    "amount not a number": ("transactions", _set("transactions", "amount", 2, "twelve"), "amount", [2]),
    "transaction unknown customer": ("transactions", _set("transactions", "customer_id", 3, "nobody"), "customer_id", [3]),
    "transaction time unparsable": ("transactions", _set("transactions", "occurred_at", 1, "2024-13-45"), "occurred_at", [1]),
    "event unknown customer": ("engagement_events", _set("engagement_events", "customer_id", 2, "ghost"), "customer_id", [2]),
    "event time unparsable": ("engagement_events", _set("engagement_events", "occurred_at", 0, "soon"), "occurred_at", [0]),
    "invoice negative amount": ("invoices", _set("invoices", "amount", 1, -5.0), "amount", [1]),
    "invoice due before issue": ("invoices", _set("invoices", "due_at", 0, "2024-01-01"), "due_at", [0]),
    "invoice id duplicate": ("invoices", _set("invoices", "invoice_id", 1, "i1"), "invoice_id", [0, 1]),
    "invoice attempts not int": ("invoices", _set("invoices", "failed_payment_attempts", 0, "two"), "failed_payment_attempts", [0]),
    "invoice paid_at unparsable": ("invoices", _set("invoices", "paid_at", 0, "paid"), "paid_at", [0]),
    "ticket negative minutes": ("support_tickets", _set("support_tickets", "handle_minutes", 0, -1.0), "handle_minutes", [0]),
    "ticket unknown channel": ("support_tickets", _set("support_tickets", "channel", 1, "pigeon"), "channel", [1]),
    "ticket satisfaction 0": ("support_tickets", _set("support_tickets", "satisfaction", 0, 0), "satisfaction", [0]),
    "ticket satisfaction 6": ("support_tickets", _set("support_tickets", "satisfaction", 1, 6), "satisfaction", [1]),
    "ticket escalated not bool": ("support_tickets", _set("support_tickets", "escalated", 2, "sometimes"), "escalated", [2]),
    "ticket unknown customer": ("support_tickets", _set("support_tickets", "customer_id", 2, "c404"), "customer_id", [2]),
    "ticket id null": ("support_tickets", _set("support_tickets", "ticket_id", 0, None), "ticket_id", [0]),
}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_strict_error_names_table_column_rows(tmp_path, tiny_tables, case, fmt):
    table, corrupt, column, rows = CORRUPTIONS[case]
    corrupt(tiny_tables)
    if fmt == "parquet":  # parquet needs one type per column: keep corrupted ones as text
        tiny_tables[table] = tiny_tables[table].astype({column: "str"}) if tiny_tables[table][column].map(type).nunique() > 1 else tiny_tables[table]
    data = write_tables(tmp_path / "d", tiny_tables, fmt)
    with pytest.raises(DataValidationError) as info:
        load_tables(data)
    message = str(info.value)
    assert f"table '{table}'" in message
    assert f"column '{column}'" in message
    for row in rows:
        assert f"row {row} " in message
    assert set(info.value.problems["row"]) == set(rows)
    assert set(info.value.problems["column"]) == {column}


@pytest.mark.parametrize("column", ["customer_id", "occurred_at", "amount"])
def test_missing_required_column_is_named(tmp_path, tiny_tables, column):
    tiny_tables["transactions"] = tiny_tables["transactions"].drop(columns=[column])
    data = write_tables(tmp_path / "d", tiny_tables)
    with pytest.raises(DataValidationError, match=rf"table 'transactions': missing required column\(s\) '{column}'"):
        load_tables(data, strict=False)  # no row can be set aside for a missing column


def test_non_strict_sets_aside_exactly_the_bad_rows(tmp_path, tiny_tables):
    for case in ("transaction unknown customer", "amount not a number", "ticket unknown channel",
                 "invoice due before issue", "referrer unknown"):
        CORRUPTIONS[case][1](tiny_tables)
    data = write_tables(tmp_path / "d", tiny_tables)
    before = _digest(data)
    loaded = load_tables(data, strict=False)
    report = loaded.report
    # issue 16: an unknown referrer no longer sets its customer aside (nor, in cascade, that customer's
    # rows elsewhere): c3 is kept with referred_by nulled, and its ticket s3 stays
    assert report.n_set_aside == {"transactions": 2, "support_tickets": 1, "invoices": 1}
    assert report.n_nulled == {"customers": 1}
    referrer = report.problems[report.problems["table"] == "customers"]
    assert referrer[["row", "column", "check", "action"]].values.tolist() == [[2, "referred_by", "referred_by unknown", "set to null"]]
    tickets = report.problems[report.problems["table"] == "support_tickets"]
    assert sorted(tickets["row"]) == [1]
    assert set(tickets["check"]) == {"not one of ['email', 'chat', 'phone', 'other']"}
    assert sorted(report.problems.loc[report.problems["table"] == "transactions", "row"]) == [2, 3]
    assert set(loaded.tables.transactions["transaction_id"]) == {"t1", "t2"}
    assert set(loaded.tables.customers["customer_id"]) == {"c1", "c2", "c3"}
    assert loaded.tables.customers["referred_by"].isna().all()
    assert set(loaded.tables.support_tickets["ticket_id"]) == {"s1", "s3"}
    assert set(loaded.tables.invoices["invoice_id"]) == {"i2"}
    # the written report holds the same rows, and nothing else was dropped
    path = report.write(tmp_path / "report.csv")
    written = pd.read_csv(path)
    assert len(written) == len(report.problems)
    for name, frame in loaded.tables.items():
        n_in = len(tiny_tables[name])
        assert len(frame) + report.n_set_aside.get(name, 0) == n_in, name
    assert _digest(data) == before
