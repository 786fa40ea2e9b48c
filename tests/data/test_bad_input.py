"""Issue 16: every bad input gets a clear answer and nothing is lost.

Each test is one case of the issue: a file that cannot be read, two files for one table, CSV
missing-value guessing, the timestamp policy, non-finite numbers, a `columns:` mapping that does
not fit, the non-strict cascade, the row accounting and the strict message.
"""

from __future__ import annotations

import builtins
import errno
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from contract_fixtures import write_tables
from customer_value.config import Settings, load_settings
from customer_value.data.loading import DataValidationError, load_tables
from customer_value.errors import ConfigError, InputError

ISO = "timestamp not ISO 8601 (set timestamp_format)"


def _raises(data, *fragments, **kwargs) -> DataValidationError:
    """load_tables fails with a DataValidationError whose message holds every fragment."""
    with pytest.raises(DataValidationError) as info:
        load_tables(data, **kwargs)
    message = str(info.value)
    for fragment in fragments:
        assert str(fragment) in message, (fragment, message)
    assert isinstance(info.value, InputError)
    return info.value


# ---------------------------------------------------------------------------------------------
# 1. files that cannot be read: a clear error naming file and table, in both modes


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_zero_byte_file_is_named(tmp_path, tiny_tables, strict, suffix):
    data = write_tables(tmp_path / "d", {"customers": tiny_tables["customers"]})
    path = data / f"transactions.{suffix}"
    path.write_bytes(b"")
    _raises(data, "table 'transactions'", path, "empty (0 bytes)", strict=strict)


@pytest.mark.parametrize("strict", [True, False])
def test_truncated_parquet_is_named(tmp_path, tiny_tables, strict):
    data = write_tables(tmp_path / "d", tiny_tables, "parquet")
    path = data / "invoices.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _raises(data, "table 'invoices'", path, "not a", strict=strict)


def test_csv_renamed_parquet_is_named(tmp_path, tiny_tables):
    data = write_tables(tmp_path / "d", {k: tiny_tables[k] for k in ("customers", "transactions")})
    (data / "transactions.csv").rename(data / "transactions.parquet")
    _raises(data, "table 'transactions'", data / "transactions.parquet", "not a Parquet file", "renamed")


def test_parquet_renamed_csv_is_named(tmp_path, tiny_tables):
    data = write_tables(tmp_path / "d", {k: tiny_tables[k] for k in ("customers", "transactions")}, "parquet")
    (data / "customers.parquet").rename(data / "customers.csv")
    _raises(data, "table 'customers'", data / "customers.csv", "Parquet file named .csv")


def test_file_without_read_permission_is_named(tmp_path, tiny_tables, monkeypatch):
    """Root reads files whatever their mode, so there the denial is simulated at ``open``."""
    data = write_tables(tmp_path / "d", tiny_tables)
    path = data / "support_tickets.csv"
    path.chmod(0)
    if os.geteuid() == 0:
        real_open = builtins.open

        def denied(file, *args, **kwargs):
            if Path(file) == path:
                raise PermissionError(errno.EACCES, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", denied)
    try:
        _raises(data, "table 'support_tickets'", path, "permission denied")
    finally:
        path.chmod(0o644)


def test_unreadable_entries_are_named(tmp_path, tiny_tables):
    """A directory or a dangling link where a file should be (what root meets instead of modes)."""
    data = write_tables(tmp_path / "d", {k: tiny_tables[k] for k in ("customers", "transactions")})
    (data / "engagement_events.csv").mkdir()
    _raises(data, "table 'engagement_events'", data / "engagement_events.csv", "directory")
    (data / "engagement_events.csv").rmdir()
    (data / "invoices.csv").symlink_to(tmp_path / "gone.csv")
    _raises(data, "table 'invoices'", data / "invoices.csv")


def test_csv_that_is_not_utf8_or_not_csv_is_named(tmp_path, tiny_tables):
    data = write_tables(tmp_path / "d", {k: tiny_tables[k] for k in ("customers", "transactions")})
    path = data / "customers.csv"
    original = path.read_bytes()
    path.write_bytes(original.replace(b"basic", "b\xe1sic".encode("latin-1")))
    _raises(data, "table 'customers'", path, "not UTF-8")
    path.write_bytes(original + b"c9,2024-01-01,basic,ads,eu,,one field too many\n")
    _raises(data, "table 'customers'", path, "cannot read")
    path.write_bytes(original.replace(b"region", b"plan", 1))
    _raises(data, "table 'customers'", path, "['plan']", "more than once")


def test_csv_with_semicolons_or_a_byte_order_mark(tmp_path, tiny_tables):
    """Excel's habits: a BOM is fine; ';' between values is named as the likely cause."""
    data = write_tables(tmp_path / "d", {k: tiny_tables[k] for k in ("customers", "transactions")})
    path = data / "transactions.csv"
    text = path.read_text()
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert load_tables(data).tables.transactions["transaction_id"].tolist() == ["t1", "t2", "t3", "t4"]
    path.write_text(text.replace(",", ";"))
    _raises(data, "table 'transactions'", "missing required column(s) 'transaction_id'", "separate values with ';'")


# ---------------------------------------------------------------------------------------------
# 2. two files for one table


def test_csv_and_parquet_of_one_table_is_an_error_naming_both(tmp_path, tiny_tables):
    data = write_tables(tmp_path / "d", tiny_tables)
    tiny_tables["transactions"].to_parquet(data / "transactions.parquet", index=False)
    _raises(data, "table 'transactions'", data / "transactions.csv", data / "transactions.parquet")
    _raises(data, "transactions.csv", "transactions.parquet", strict=False)


# ---------------------------------------------------------------------------------------------
# 3. CSV missing values: only an empty field is missing


def test_csv_strings_that_look_missing_stay_strings(tmp_path, tiny_tables):
    customers = tiny_tables["customers"]
    customers["region"] = ["NA", "null", "None"]
    customers["plan"] = ["N/A", "nan", None]
    customers["customer_id"] = ["NA", "c2", "c3"]
    customers["referred_by"] = [None, "NA", "NA"]
    tiny_tables["transactions"]["customer_id"] = ["NA", "NA", "c2", "c3"]
    data = write_tables(tmp_path / "d", {k: tiny_tables[k] for k in ("customers", "transactions")})
    tables = load_tables(data).tables
    assert tables.customers["region"].tolist() == ["NA", "null", "None"]
    assert tables.customers["plan"].tolist()[:2] == ["N/A", "nan"]
    assert pd.isna(tables.customers["plan"].iloc[2])  # an empty field is missing
    assert tables.customers["customer_id"].tolist() == ["NA", "c2", "c3"]
    assert tables.transactions["customer_id"].tolist() == ["NA", "NA", "c2", "c3"]


@pytest.mark.parametrize("seed", [11])
def test_same_world_as_csv_and_parquet_loads_identically(tmp_path, seed):
    from customer_value.features import build_features
    from customer_value.simulation.world import simulate_world

    world = dict(simulate_world(300, seed).tables.items())
    customers = world["customers"].copy()
    customers.loc[::5, "region"] = "NA"
    customers.loc[1::9, "plan"] = "null"
    world["customers"] = customers
    loaded = {fmt: load_tables(write_tables(tmp_path / fmt, world, fmt)).tables for fmt in ("csv", "parquet")}
    for name, frame in loaded["parquet"].items():
        pd.testing.assert_frame_equal(getattr(loaded["csv"], name), frame, obj=name)
    assert (loaded["csv"].customers["region"] == "NA").sum() >= 60
    features = {fmt: build_features(tables, "2024-07-01", Settings()) for fmt, tables in loaded.items()}
    pd.testing.assert_frame_equal(features["csv"], features["parquet"])


# ---------------------------------------------------------------------------------------------
# 4. one timestamp policy: ISO 8601, or the configured timestamp_format; never two ways


def test_day_first_dates_are_problems_by_default(tmp_path, tiny_tables):
    tiny_tables["customers"]["signup_at"] = ["2024-01-01", "03/04/2024", "13/04/2024"]
    data = write_tables(tmp_path / "d", tiny_tables)
    error = _raises(data, "table 'customers'", "column 'signup_at'", ISO, "row 1 ('03/04/2024')", "row 2 ('13/04/2024')")
    assert sorted(error.problems["row"]) == [1, 2]
    loaded = load_tables(data, strict=False)
    assert loaded.report.n_set_aside == {"customers": 2, "transactions": 2, "engagement_events": 1,
                                         "invoices": 2, "support_tickets": 2}
    assert loaded.tables.customers["customer_id"].tolist() == ["c1"]


def test_timestamp_format_reads_every_text_timestamp_one_way(tmp_path, tiny_tables):
    tiny_tables = {k: tiny_tables[k] for k in ("customers", "transactions")}
    tiny_tables["customers"]["signup_at"] = ["01/01/2024", "03/04/2024", "13/04/2024"]
    tiny_tables["transactions"]["occurred_at"] = ["02/01/2024", "02/02/2024", "06/01/2024", "2024-02-03"]
    data = write_tables(tmp_path / "d", tiny_tables)
    settings = Settings(timestamp_format="%d/%m/%Y")
    error = _raises(data, "table 'transactions'", "column 'occurred_at'", "'%d/%m/%Y'", "row 3 ('2024-02-03')",
                    settings=settings)
    assert error.problems["row"].tolist() == [3]  # an ISO value is not read as ISO once a format is set
    tables = load_tables(data, settings, strict=False).tables
    assert tables.customers["signup_at"].tolist() == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-04-03"),
                                                      pd.Timestamp("2024-04-13")]
    assert tables.transactions["occurred_at"].tolist() == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-02-02"),
                                                           pd.Timestamp("2024-01-06")]


def test_iso_forms_naive_and_aware_mixed_become_utc(tmp_path, tiny_tables):
    tiny_tables["customers"]["signup_at"] = ["2024-01-05", "2024-01-05T12:00:00+02:00", "2024-01-05 10:00:00Z"]
    tiny_tables["transactions"]["occurred_at"] = ["2024-01-06 10:00:00", "2024-01-06T10:00:00.250000",
                                                  "2024-01-06T05:00:00-05:00", "2024-01-06T10:00Z"]
    data = write_tables(tmp_path / "d", tiny_tables)
    tables = load_tables(data).tables
    assert tables.customers["signup_at"].tolist() == [pd.Timestamp("2024-01-05"), pd.Timestamp("2024-01-05 10:00"),
                                                      pd.Timestamp("2024-01-05 10:00")]
    assert tables.transactions["occurred_at"].tolist() == [
        pd.Timestamp("2024-01-06 10:00"), pd.Timestamp("2024-01-06 10:00:00.25"),
        pd.Timestamp("2024-01-06 10:00"), pd.Timestamp("2024-01-06 10:00")]


def test_typed_parquet_timestamps_ignore_timestamp_format(tmp_path, tiny_tables):
    for name, frame in tiny_tables.items():
        for column in frame.columns:
            if column.endswith("_at"):
                frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    tiny_tables["transactions"]["occurred_at"] = tiny_tables["transactions"]["occurred_at"].dt.tz_localize(None)
    data = write_tables(tmp_path / "d", tiny_tables, "parquet")
    plain = load_tables(data).tables
    formatted = load_tables(data, Settings(timestamp_format="%d/%m/%Y")).tables
    for name, frame in plain.items():
        pd.testing.assert_frame_equal(frame, getattr(formatted, name))
    assert plain.customers.loc[1, "signup_at"] == pd.Timestamp("2024-01-05 10:00")


@pytest.mark.parametrize("bad", ["%Q", "dd/mm/yyyy", ""])
def test_unusable_timestamp_format_is_a_config_error(tmp_path, bad):
    config = tmp_path / "c.yaml"
    config.write_text(f"timestamp_format: '{bad}'\n")
    with pytest.raises(ConfigError, match="timestamp_format"):
        load_settings(config)


# ---------------------------------------------------------------------------------------------
# 5. inf, -inf and NaN are no numbers, in CSV and in Parquet

NUMERIC = [("transactions", "amount", 1), ("transactions", "gross_margin", 0), ("invoices", "amount", 1),
           ("support_tickets", "handle_minutes", 2)]


def _write_with_nan(data, tables, table, column, row, value):
    """Parquet with a real NaN (pandas would write NaN as null) in one cell."""
    frame = tables[table]
    values = frame[column].astype("float64").to_numpy().copy()
    values[row] = value
    null = frame[column].isna().to_numpy().copy()
    null[row] = False
    arrow = pa.Table.from_pandas(frame.drop(columns=[column]), preserve_index=False)
    arrow = arrow.append_column(column, pa.array(values, pa.float64(), mask=null, from_pandas=False))
    pq.write_table(arrow, data / f"{table}.parquet")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("value", ["inf", "-inf", "NaN"])
@pytest.mark.parametrize("table,column,row", NUMERIC)
def test_non_finite_numbers_are_problem_rows(tmp_path, tiny_tables, fmt, value, table, column, row):
    data = tmp_path / "d"
    if fmt == "csv":
        tiny_tables[table][column] = tiny_tables[table][column].astype(object)
        tiny_tables[table].loc[row, column] = value
        write_tables(data, tiny_tables)
    else:
        write_tables(data, {k: v for k, v in tiny_tables.items() if k != table}, "parquet")
        _write_with_nan(data, tiny_tables, table, column, row, float(value))
    error = _raises(data, f"table '{table}'", f"column '{column}'", "not a finite number", f"row {row} ")
    assert error.problems[["row", "column"]].values.tolist() == [[row, column]]
    loaded = load_tables(data, strict=False)
    assert loaded.report.n_set_aside == {table: 1}
    kept = getattr(loaded.tables, table)
    assert len(kept) == len(tiny_tables[table]) - 1 and np.isfinite(kept[column]).all()


def test_pandas_nan_in_parquet_is_a_missing_value(tmp_path, tiny_tables):
    """pandas writes NaN as a Parquet null: a required amount is then missing, a margin defaulted."""
    tiny_tables["transactions"]["amount"] = [10.0, np.nan, 30.0, 12.0]
    data = write_tables(tmp_path / "d", tiny_tables, "parquet")
    _raises(data, "column 'amount'", "null where a value is required", "row 1 ")


def test_non_finite_counts_and_scores_are_problem_rows(tmp_path, tiny_tables):
    tiny_tables["invoices"]["failed_payment_attempts"] = ["inf", "1e30"]
    tiny_tables["support_tickets"]["satisfaction"] = ["4", "-inf", None]
    data = write_tables(tmp_path / "d", tiny_tables)
    _raises(data, "table 'invoices'", "column 'failed_payment_attempts'", "not a whole number", "row 0 ", "row 1 ")
    tiny_tables["invoices"]["failed_payment_attempts"] = [1, 0]
    write_tables(data, tiny_tables)
    _raises(data, "table 'support_tickets'", "column 'satisfaction'", "not a whole number", "row 1 ")


# ---------------------------------------------------------------------------------------------
# 6. a `columns:` mapping that does not fit the file


def _mapped(tmp_path, tiny_tables, rename, mapping):
    tiny_tables["transactions"] = tiny_tables["transactions"].rename(columns=rename)
    return write_tables(tmp_path / "d", tiny_tables), Settings(columns={"transactions": mapping})


def test_mapping_to_a_column_the_file_lacks(tmp_path, tiny_tables):
    data, settings = _mapped(tmp_path, tiny_tables, {}, {"amount": "total"})
    _raises(data, "table 'transactions'", "amount: total", "lacks",
            "['transaction_id', 'customer_id', 'occurred_at', 'amount', 'gross_margin']", settings=settings)


def test_mapping_of_an_optional_column_the_file_lacks(tmp_path, tiny_tables):
    """Today's silent null column: the margin the user meant would be replaced by the default."""
    data, settings = _mapped(tmp_path, tiny_tables, {"gross_margin": "margin"}, {"gross_margin": "margin_eur"})
    _raises(data, "gross_margin: margin_eur", "lacks", "'margin'", settings=settings, strict=False)


def test_mapping_onto_a_name_the_file_also_has(tmp_path, tiny_tables):
    tiny_tables["transactions"]["total"] = tiny_tables["transactions"]["amount"] * 2
    data, settings = _mapped(tmp_path, tiny_tables, {}, {"amount": "total"})
    _raises(data, "table 'transactions'", "'total'", "'amount'", "collide", settings=settings)


def test_mapping_with_unknown_canonical_names_lists_the_canonical_ones(tmp_path, tiny_tables):
    data, settings = _mapped(tmp_path, tiny_tables, {"amount": "total"}, {"amout": "total"})
    _raises(data, "table 'transactions'", "['amout']",
            "['transaction_id', 'customer_id', 'occurred_at', 'amount', 'gross_margin']", settings=settings)


def test_mapping_two_canonical_names_to_one_column(tmp_path, tiny_tables):
    data, settings = _mapped(tmp_path, tiny_tables, {"amount": "total"}, {"amount": "total", "gross_margin": "total"})
    _raises(data, "['amount', 'gross_margin']", "'total'", settings=settings)


def test_mapping_that_swaps_two_names_is_fine(tmp_path, tiny_tables):
    data, settings = _mapped(tmp_path, tiny_tables, {"amount": "gross_margin", "gross_margin": "amount"},
                             {"amount": "gross_margin", "gross_margin": "amount"})
    tx = load_tables(data, settings).tables.transactions
    assert tx["amount"].tolist() == [10.0, -2.5, 30.0, 12.0]
    assert tx["gross_margin"].tolist() == [4.0, -1.0, 30.0, 5.0]


# ---------------------------------------------------------------------------------------------
# 7. non-strict mode sets aside the bad rows only, never a cascade


def _with_duplicate_customer(tiny_tables):
    """c1 twice (rows 0 and 3); c3 and c4 were referred by c1, c2 by nobody-known 'c9'."""
    customers = tiny_tables["customers"]
    extra = pd.DataFrame({"customer_id": ["c1", "c4"], "signup_at": ["2024-01-02", "2024-02-02"], "plan": "pro",
                          "acquisition_channel": "ads", "region": "us", "referred_by": [None, "c1"]})
    customers = pd.concat([customers, extra], ignore_index=True)
    customers.loc[1, "referred_by"] = "c9"
    tiny_tables["customers"] = customers
    tiny_tables["transactions"].loc[3, "customer_id"] = "c4"
    return tiny_tables


def test_duplicate_customer_does_not_cascade(tmp_path, tiny_tables):
    data = write_tables(tmp_path / "d", _with_duplicate_customer(tiny_tables))
    error = _raises(data, "table 'customers'", "column 'customer_id'", "duplicate id", "row 0 ", "row 3 ")
    assert set(error.problems["row"]) == {0, 1, 3}  # strict: the duplicates and the unknown referrer c9
    loaded = load_tables(data, strict=False)
    report, tables = loaded.report, loaded.tables
    problems = report.problems.set_index(["table", "row"])
    # every row of the duplicated id is set aside; c2, c3 and c4 stay
    assert tables.customers["customer_id"].tolist() == ["c2", "c3", "c4"]
    assert problems.loc[("customers", 0), "check"] == "duplicate id"
    # the references to the set-aside c1 and to the unknown c9 are nulled, the customers kept
    assert tables.customers["referred_by"].isna().all()
    assert problems.loc[("customers", 1), ["check", "action"]].tolist() == ["referred_by unknown", "set to null"]
    assert problems.loc[("customers", 2), ["check", "action"]].tolist() == ["referred_by set aside", "set to null"]
    assert problems.loc[("customers", 4), "check"] == "referred_by set aside"
    # c1's rows elsewhere follow it, named as such; everybody else's stay
    assert tables.transactions["transaction_id"].tolist() == ["t3", "t4"]
    assert set(problems.loc["transactions", "check"]) == {"customer_id set aside in customers"}
    assert tables.engagement_events["customer_id"].tolist() == ["c2"]
    assert tables.support_tickets["ticket_id"].tolist() == ["s2", "s3"]
    assert report.n_set_aside == {"customers": 2, "transactions": 2, "engagement_events": 2, "support_tickets": 1}
    assert report.n_nulled == {"customers": 3}


def test_unknown_customer_in_child_tables_is_set_aside_and_reported(tmp_path, tiny_tables):
    tiny_tables["engagement_events"].loc[1, "customer_id"] = "ghost"
    tiny_tables["invoices"].loc[0, "customer_id"] = "ghost"
    data = write_tables(tmp_path / "d", tiny_tables)
    loaded = load_tables(data, strict=False)
    problems = loaded.report.problems
    assert problems[["table", "row", "check", "value"]].values.tolist() == [
        ["engagement_events", 1, "refers to an unknown customer_id", "ghost"],
        ["invoices", 0, "refers to an unknown customer_id", "ghost"]]
    assert loaded.tables.invoices["invoice_id"].tolist() == ["i2"]


def test_validate_writes_the_report_when_only_references_were_nulled(tmp_path, tiny_tables):
    from customer_value.pipeline.validate import validate_directory

    tiny_tables["customers"].loc[2, "referred_by"] = "c99"
    data = write_tables(tmp_path / "d", tiny_tables)
    console = Console(record=True, width=200)
    report = tmp_path / "report.csv"
    loaded = validate_directory(data, Settings(strict=False), report, console)
    assert loaded.report.n_set_aside == {} and loaded.report.n_nulled == {"customers": 1}
    written = pd.read_csv(report)
    assert written[["table", "row", "column", "action"]].values.tolist() == [["customers", 2, "referred_by", "set to null"]]
    printed = console.export_text()
    assert "1 reference(s) set to null (customers: 1)" in printed
    assert "customers: 3 rows in = 3 kept (1 with a reference set to null) + 0 set aside" in printed


# ---------------------------------------------------------------------------------------------
# 8. the report accounts for every row


def _corrupt_many(tables):
    tables["customers"].loc[0, "signup_at"] = "sometime"
    tables["customers"].loc[2, "referred_by"] = "nobody"
    tables["transactions"]["amount"] = tables["transactions"]["amount"].astype(object)
    tables["transactions"].loc[1, "amount"] = "inf"
    tables["transactions"].loc[2, "transaction_id"] = "t4"
    tables["engagement_events"].loc[1, "occurred_at"] = "07/01/2024"
    tables["invoices"].loc[1, "due_at"] = "2024-01-01"
    tables["support_tickets"]["escalated"] = tables["support_tickets"]["escalated"].astype(object)
    tables["support_tickets"].loc[2, "escalated"] = None


def _corrupt_ids(tables):
    tables["customers"].loc[1, "customer_id"] = None
    tables["transactions"].loc[0, "customer_id"] = "zz"
    tables["invoices"].loc[0, "amount"] = -1
    tables["support_tickets"].loc[0, "satisfaction"] = 9


def _corrupt_everything(tables):
    tables["customers"]["signup_at"] = "never"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("corrupt", [_corrupt_many, _corrupt_ids, _corrupt_everything, _with_duplicate_customer])
def test_report_accounts_for_every_row(tmp_path, tiny_tables, fmt, corrupt):
    corrupt(tiny_tables)
    if fmt == "parquet":
        tiny_tables = {k: v.astype(str).where(v.notna(), None) for k, v in tiny_tables.items()}
    data = write_tables(tmp_path / "d", tiny_tables, fmt)
    loaded = load_tables(data, strict=False)
    report = loaded.report
    assert report.has_problems
    for name, frame in loaded.tables.items():
        n_in = len(tiny_tables[name])
        info = report.summary[name]
        set_aside = report.problems[(report.problems["table"] == name) & (report.problems["action"] == "set aside")]
        assert n_in == len(frame) + set_aside["row"].nunique(), name
        assert (info["rows_in"], info["rows"], info["set_aside"]) == (n_in, len(frame), set_aside["row"].nunique())
        assert set_aside["row"].between(0, n_in - 1).all()


# ---------------------------------------------------------------------------------------------
# 9. the strict message


def test_strict_message_names_table_column_check_and_five_rows(tmp_path, tiny_tables):
    tx = pd.concat([tiny_tables["transactions"]] * 3, ignore_index=True)
    tx["transaction_id"] = [f"t{i}" for i in range(len(tx))]
    tx["amount"] = tx["amount"].astype(object)
    tx.loc[[1, 2, 4, 5, 7, 9, 10, 11], "amount"] = "n/a"
    tiny_tables["transactions"] = tx
    data = write_tables(tmp_path / "d", tiny_tables)
    error = _raises(data, "table 'transactions'", "8 bad row(s)", "column 'amount': not a number: 8 row(s)",
                    "row 1 ('n/a'), row 2 ('n/a'), row 4 ('n/a'), row 5 ('n/a'), row 7 ('n/a') and 3 more",
                    data / "transactions.csv", "numbered from 0")
    assert "row 9 " not in str(error)
    assert sorted(error.problems["row"]) == [1, 2, 4, 5, 7, 9, 10, 11]
