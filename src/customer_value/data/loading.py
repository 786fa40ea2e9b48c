"""Read a data directory into validated canonical tables (contract section 2).

Every input problem ends in one of two places, never in a traceback or a silent change:
a :class:`DataValidationError` naming the file, table, column and example rows, or (non-strict
mode, row-level problems only) a line in the :class:`ValidationReport`.

**Files.** One file per table, ``NAME.parquet`` or ``NAME.csv``; both at once is an error (which
one is meant cannot be guessed). A file that cannot be read (empty, truncated, another format
under the wrong suffix, not UTF-8, no permission, a header naming a column twice) is an error
naming file and table, in strict and non-strict mode alike.

**CSV missing values.** Only an empty field is missing. Every other text is a value: a region
``NA``, a plan ``null``, an id ``None`` or ``N/A`` stay those strings, so the same data written
as CSV and as Parquet loads to the same tables. (In CSV an empty id therefore is a null id.)

**Timestamps.** All times become naive UTC (contract section 1). Typed timestamp columns
(Parquet) are taken as they are: tz-aware ones are converted to UTC, naive ones are read as UTC.
Text timestamps (CSV, or text columns in Parquet) are ISO 8601, year first: ``2024-07-01``,
``2024-07-01 12:30:00``, ``2024-07-01T12:30:00.5Z``, ``2024-07-01T12:30:00+02:00``; naive and
offset values may be mixed in one column (offsets converted to UTC, naive values read as UTC).
For another layout set ``timestamp_format`` (a strftime format such as ``%d/%m/%Y``) in the
config; then every text timestamp must match that format. A text that does not parse is a
problem row ("timestamp not ISO 8601 (set timestamp_format)"); a value is never parsed two ways,
so ``03/04/2024`` is never silently read as 3 April here and as 4 March there.

**Numbers.** ``inf``, ``-inf`` and NaN are not values of any numeric column (a problem row,
"not a finite number", in CSV text and in Parquet floats alike). A Parquet null, and an empty
CSV field, is missing; a Parquet NaN is not missing but non-finite.

Three steps per table, each reporting problems as rows of (table, row, column, check, value, action):
1. **parse**: map the user's column names, check required columns, turn values into canonical
   dtypes; a value that does not parse is a problem, never a silent NaN;
2. **schema**: the pandera schema of the table (nulls, uniqueness, ranges, allowed values);
3. **references**: every ``customer_id`` must be a customer that was kept.

Rows are numbered from 0 in file order (a CSV's line is row + 2). Strict mode stops at the first
table with problems and lists all of them. Non-strict mode keeps what can be trusted and writes
down the rest, so that for every table ``rows in = rows kept + rows set aside`` (distinct rows):

- a row with a problem in one of its own values is set aside (action ``set aside``);
- every row of a duplicated ``customer_id`` is set aside: none of them can be trusted to be *the*
  customer, and keeping one would attach the others' history to it;
- a row of another table whose ``customer_id`` is not a kept customer is set aside, with the
  check saying whether that customer is unknown or was itself set aside;
- a ``referred_by`` naming no kept customer does not cost the customer: the reference is set to
  null and reported (action ``set to null``, check ``referred_by unknown`` or ``referred_by set
  aside``), so one bad referrer never cascades to the customers it referred.

Input files are only ever read.
"""

from __future__ import annotations

import csv
import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from customer_value.config import Settings
from customer_value.data.tables import EVENT_TIME, REQUIRED_TABLES, TABLE_COLUMNS, TIMESTAMP, Tables, empty_table
from customer_value.data.writing import write_text_atomically
from customer_value.errors import InputError

PROBLEM_COLUMNS = ["table", "row", "column", "check", "value", "action"]
SET_ASIDE = "set aside"
NULLED = "set to null"
NULL_REQUIRED = "null where a value is required"
NOT_FINITE = "not a finite number"
ISO_CHECK = "timestamp not ISO 8601 (set timestamp_format)"
ISO_PATTERN = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?)?(?:Z|z|[+-]\d{2}(?::?\d{2})?)?"
"""The shape of an ISO 8601 calendar date with optional time and offset (what the text rule accepts)."""
UNKNOWN_CUSTOMER = "refers to an unknown customer_id"
SET_ASIDE_CUSTOMER = "customer_id set aside in customers"
REFERRER_UNKNOWN = "referred_by unknown"
REFERRER_SET_ASIDE = "referred_by set aside"
ROW_NUMBERS = "rows are numbered from 0 in file order (a CSV's line is row + 2)"
EXAMPLES = 5
_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n"}
_NON_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
_EXACT_INT = 2.0**53  # beyond this a float no longer holds every whole number


class DataValidationError(InputError):
    """Input that breaks the contract; the message names file, table, column and example rows."""

    def __init__(self, message: str, problems: pd.DataFrame | None = None):
        super().__init__(message)
        self.problems = problems if problems is not None else _no_problems()


@dataclass
class ValidationReport:
    """What validation found: per-table summaries and every problem row (set aside or nulled)."""

    problems: pd.DataFrame = field(default_factory=lambda: _no_problems())
    summary: dict[str, dict[str, object]] = field(default_factory=dict)
    known_ids: pd.Index | None = field(default=None, repr=False)
    """Every ``customer_id`` of the customers file, kept or not (what a later reference is judged by)."""

    @property
    def n_set_aside(self) -> dict[str, int]:
        """Distinct input rows set aside, per table (rows whose only fault was nulled are kept)."""
        return self._distinct_rows(SET_ASIDE)

    @property
    def n_nulled(self) -> dict[str, int]:
        """Distinct kept rows with a value set to null, per table."""
        return self._distinct_rows(NULLED)

    @property
    def has_problems(self) -> bool:
        """Whether anything was set aside or nulled: then the report must be written."""
        return len(self.problems) > 0

    def describe(self) -> str:
        """One line for the user: rows set aside and values nulled, per table."""
        parts = []
        for words, counts in (("bad row(s) set aside", self.n_set_aside), ("reference(s) set to null", self.n_nulled)):
            if counts:
                parts.append(f"{sum(counts.values()):,} {words} ({', '.join(f'{t}: {n:,}' for t, n in counts.items())})")
        return "; ".join(parts)

    def _distinct_rows(self, action: str) -> dict[str, int]:
        chosen = self.problems[self.problems["action"] == action]
        if chosen.empty:
            return {}
        return chosen.groupby("table")["row"].nunique().astype(int).to_dict()

    def write(self, path: str | Path) -> Path:
        """Write the problem rows as CSV (one line per row and failed check), atomically."""
        return write_text_atomically(self.problems.to_csv(index=False), path)


@dataclass(frozen=True)
class LoadedData:
    tables: Tables
    report: ValidationReport


# ---------------------------------------------------------------------------------------------
# reading


def find_table_file(data_dir: Path, name: str) -> Path | None:
    """The one file of table ``name``; two candidates are an error because either may be meant."""
    found = [p for p in (data_dir / f"{name}.parquet", data_dir / f"{name}.csv") if p.exists() or p.is_symlink()]
    if len(found) > 1:
        raise DataValidationError(
            f"table '{name}': both {found[0]} and {found[1]} exist; keep one file per table "
            f"(remove or rename the other)"
        )
    return found[0] if found else None


def read_raw(path: Path, table: str | None = None) -> pd.DataFrame:
    """Read one file as it is (CSV values stay text so that parsing can say what fails).

    Any failure to read becomes a :class:`DataValidationError` naming the file and the table.
    """
    table = table or path.stem
    reader = _read_parquet if path.suffix == ".parquet" else _read_csv
    try:
        if path.is_file() and path.stat().st_size == 0:
            raise _Unreadable("the file is empty (0 bytes); a table file needs at least a header")
        frame = reader(path)
    except _Unreadable as exc:
        raise DataValidationError(f"table '{table}': cannot read {path}: {exc}") from exc
    # OSError: permissions, directories, dangling links; ValueError: pandas' parser and encoding
    # errors, pyarrow's ArrowInvalid; the rest: pyarrow's other kinds and the csv module's
    except (OSError, ValueError, TypeError, KeyError, NotImplementedError, csv.Error) as exc:
        raise DataValidationError(f"table '{table}': cannot read {path}: {_why(path, exc)}") from exc
    return frame.reset_index(drop=True)


class _Unreadable(Exception):
    """A reason, found by us, why a file cannot be read as a table."""


def _why(path: Path, exc: Exception) -> str:
    """The reading error in words, with a hint when the content is not what the suffix says."""
    head = _head(path)
    if path.suffix == ".parquet" and not head.startswith(b"PAR1"):
        return f"not a Parquet file (is it another format renamed .parquet?): {exc}"
    if path.suffix == ".parquet":
        return f"not a readable Parquet file (truncated or corrupt?): {exc}"
    if head.startswith(b"PAR1"):
        return "this is a Parquet file named .csv; rename it to .parquet"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text ({exc.reason} at byte {exc.start}); save the CSV as UTF-8"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "it is a directory, not a file"
    return f"{type(exc).__name__}: {exc}"


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(4)
    except OSError:
        return b""


def _read_csv(path: Path) -> pd.DataFrame:
    """Text in, text out: only an empty field is missing (``NA``, ``null``, ``None`` are values)."""
    _check_header(path)
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8")


def _check_header(path: Path) -> None:
    """pandas silently renames a repeated column (``amount``, ``amount.1``): refuse it instead."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), [])
    _refuse_repeated(header)


def _refuse_repeated(names: list[str]) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise _Unreadable(f"the header names column(s) {repeated} more than once")


def _read_parquet(path: Path) -> pd.DataFrame:
    """Parquet as pandas, with float NaN kept apart from null (pandas would merge the two)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    _refuse_repeated(table.schema.names)
    return _arrow_frame(table)


def _arrow_frame(table) -> pd.DataFrame:
    """An Arrow table as pandas, float NaN kept apart from null (see :func:`_read_parquet`)."""
    import pyarrow.compute as pc

    frame = table.to_pandas()
    for name in table.schema.names:
        column = table.column(name)
        if name in frame.columns and _is_float(column.type) and pc.any(pc.is_nan(column)).as_py():
            nan = pc.fill_null(pc.is_nan(column), False).to_numpy(zero_copy_only=False)
            frame[name] = frame[name].astype(object)
            frame.loc[nan, name] = "NaN"  # text, so that parsing reports it instead of reading "missing"
    return frame


def _is_float(arrow_type: object) -> bool:
    import pyarrow.types as pt

    return pt.is_floating(arrow_type)


# ---------------------------------------------------------------------------------------------
# parsing: each parser returns the canonical series and the (check, rows) that failed

Failures = list[tuple[str, pd.Series]]


def _problems(table: str, column: str, check: str, mask: np.ndarray | pd.Series, values: pd.Series,
              action: str = SET_ASIDE) -> pd.DataFrame:
    mask = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(mask)
    return pd.DataFrame(
        {
            "table": pd.Series(table, index=range(len(rows)), dtype="str"),
            "row": rows.astype("int64"),
            "column": column,
            "check": check,
            "value": pd.Series(values.iloc[rows].astype(str).to_numpy(), dtype="str"),
            "action": action,
        }
    )


def _parse_timestamp(values: pd.Series, timestamp_format: str | None = None) -> tuple[pd.Series, Failures]:
    """Typed timestamps to naive UTC as they are; text by one rule only (module docstring)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").dt.tz_localize(None).astype(TIMESTAMP), []
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.astype(TIMESTAMP), []
    text = values.astype("str")
    fmt = timestamp_format or "ISO8601"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        parsed = pd.to_datetime(text, utc=True, errors="coerce", format=fmt)
    check = ISO_CHECK if timestamp_format is None else f"timestamp does not match timestamp_format {timestamp_format!r}"
    if timestamp_format is None:  # pandas' ISO8601 parser also takes "2024/01/02": only dashes are ISO 8601
        parsed = parsed.where(text.str.strip().str.fullmatch(ISO_PATTERN).fillna(False).astype(bool))
    failed = parsed.isna() & values.notna()
    return parsed.dt.tz_localize(None).astype(TIMESTAMP), [(check, failed)]


def _parse_float(values: pd.Series, timestamp_format: str | None = None) -> tuple[pd.Series, Failures]:
    """Finite floats; text that is no number, and inf / -inf / NaN, are problems."""
    if pd.api.types.is_float_dtype(values.dtype) and not isinstance(values.dtype, pd.ArrowDtype):
        numbers = values.astype("float64")
    else:
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    present = values.notna()
    unparsed = numbers.isna() & present
    spelled_non_finite = unparsed.copy()
    if unparsed.any():
        spelled_non_finite[unparsed] = values[unparsed].astype("str").str.strip().str.lower().isin(_NON_FINITE)
    non_finite = pd.Series(np.isinf(numbers.to_numpy()), index=values.index) | spelled_non_finite
    numbers = numbers.where(~non_finite)
    return numbers, [("not a number", unparsed & ~spelled_non_finite), (NOT_FINITE, non_finite)]


def _parse_int(values: pd.Series, timestamp_format: str | None = None) -> tuple[pd.Series, Failures]:
    if pd.api.types.is_integer_dtype(values.dtype):
        return values.astype("Int64"), []
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    whole = numbers.notna() & (numbers.abs() <= _EXACT_INT) & (numbers == np.round(numbers))
    parsed = pd.Series(np.where(whole, numbers, np.nan), index=values.index).astype("Int64")
    return parsed, [("not a whole number", ~whole & values.notna())]


def _parse_bool(values: pd.Series, timestamp_format: str | None = None) -> tuple[pd.Series, Failures]:
    """true/false in the usual spellings; a null is a problem (the column is required)."""
    if pd.api.types.is_bool_dtype(values.dtype) and not values.isna().any():
        return values.astype(bool), []
    text = values.astype("str").str.strip().str.lower()
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[text.isin(_TRUE)] = True
    out[text.isin(_FALSE)] = False
    failures = [("not a boolean", out.isna() & values.notna()), (NULL_REQUIRED, values.isna())]
    return out.fillna(False).astype(bool), failures


def _parse_str(values: pd.Series, timestamp_format: str | None = None) -> tuple[pd.Series, Failures]:
    if values.dtype == "str":
        return values, []
    if pd.api.types.is_float_dtype(values.dtype):  # ids written as numbers, e.g. 12.0 -> "12"
        whole = values.notna() & (values.abs() <= _EXACT_INT) & (values == np.round(values))
        text = values.astype("str")
        text[whole] = values[whole].astype("int64").astype("str")
        return text, []
    return values.astype("str"), []


_PARSERS: dict[str, Callable[..., tuple[pd.Series, Failures]]] = {
    TIMESTAMP: _parse_timestamp,
    "float64": _parse_float,
    "Int64": _parse_int,
    "bool": _parse_bool,
    "str": _parse_str,
}


def canonical_renames(name: str, found: list[str], columns: dict[str, str] | None,
                      source: object = None) -> dict[str, str]:
    """The renames (the file's name -> canonical) that the config's ``columns:`` mapping makes of a
    table whose columns are ``found``, after checking that the mapping fits the file and that every
    required column is then present; :class:`DataValidationError` otherwise, because guessing would
    read the wrong column. Names only, so any reader applies the same checks (pandas here, a Spark
    plan in :mod:`customer_value.features.engine`)."""
    mapping = columns or {}
    where = f"table '{name}'" + (f" ({source})" if source is not None else "")
    canonical = list(TABLE_COLUMNS[name])
    unknown = sorted(set(mapping) - set(canonical))
    if unknown:
        raise DataValidationError(
            f"{where}: the columns mapping (columns: {name}: ...) names unknown canonical column(s) {unknown}; "
            f"the canonical columns of '{name}' are {canonical}"
        )
    shared = {u: sorted(c for c, v in mapping.items() if v == u) for u in mapping.values()}
    shared = {u: cs for u, cs in shared.items() if len(cs) > 1}
    if shared:
        u, cs = next(iter(shared.items()))
        raise DataValidationError(f"{where}: the columns mapping sends {cs} all to the one column '{u}'; map each "
                                  f"canonical column to its own column")
    absent = [(c, u) for c, u in mapping.items() if u not in found]
    if absent:
        shown = ", ".join(f"{c}: {u}" for c, u in absent)
        raise DataValidationError(f"{where}: the columns mapping ({shown}) names column(s) the file lacks; "
                                  f"the file's columns are {list(found)}")
    renames = {u: c for c, u in mapping.items() if u != c}
    collide = [(u, c) for u, c in renames.items() if c in found and c not in renames]
    if collide:
        u, c = collide[0]
        raise DataValidationError(
            f"{where}: the columns mapping {c}: {u} renames column '{u}' to '{c}', but the file also has a column "
            f"'{c}'; the two columns '{u}' and '{c}' collide (drop or rename one of them in the file, or remove "
            f"the mapping)"
        )
    renamed = {renames.get(u, u) for u in found}
    missing = [c for c, (_, required) in TABLE_COLUMNS[name].items() if required and c not in renamed]
    if missing:
        named = [f"'{c}'" + (f" (mapped from '{mapping[c]}')" if c in mapping else "") for c in missing]
        at = f" in {source}" if source is not None else ""
        raise DataValidationError(
            f"table '{name}': missing required column(s) {', '.join(named)}{at}; found columns {list(found)}"
            + _delimiter_hint(found)
        )
    return renames


def parse_table(name: str, raw: pd.DataFrame, columns: dict[str, str] | None = None,
                timestamp_format: str | None = None, source: object = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Canonical names and dtypes for one table; returns (frame, problems).

    Raises :class:`DataValidationError` for table-level problems (a mapping that does not fit
    the file, a required column missing), which no row-level setting aside can fix.
    """
    renamed = raw.rename(columns=canonical_renames(name, list(raw.columns), columns, source))
    frame: dict[str, pd.Series] = {}
    problems = []
    for column, (dtype, _) in TABLE_COLUMNS[name].items():
        if column not in renamed.columns:
            frame[column] = pd.Series(pd.NA if dtype == "Int64" else None, index=renamed.index).astype(dtype)
            continue
        original = renamed[column]
        frame[column], failures = _PARSERS[dtype](original, timestamp_format)
        problems += [_problems(name, column, check, mask, original) for check, mask in failures if mask.any()]
    out = pd.DataFrame(frame, index=renamed.index)
    for column in renamed.columns:
        if column not in TABLE_COLUMNS[name]:
            out[column] = renamed[column]
    return out, _concat(problems)


def _delimiter_hint(found: list[str]) -> str:
    """A CSV written with another separator arrives as one column named after the whole header."""
    if len(found) == 1:
        for separator in (";", "\t", "|"):
            if separator in str(found[0]):
                return f" (the file seems to separate values with {separator!r}; contract CSV files use commas)"
    return ""


def _no_problems() -> pd.DataFrame:
    return pd.DataFrame({"table": pd.Series([], dtype="str"), "row": pd.Series([], dtype="int64"),
                         "column": pd.Series([], dtype="str"), "check": pd.Series([], dtype="str"),
                         "value": pd.Series([], dtype="str"), "action": pd.Series([], dtype="str")})


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True)[PROBLEM_COLUMNS] if frames else _no_problems()


# ---------------------------------------------------------------------------------------------
# checking


@functools.lru_cache(maxsize=None)
def _schema(name: str, judged_elsewhere: tuple[str, ...] = ()) -> Any:
    """The table's pandera schema; without the uniqueness checks of ``judged_elsewhere`` (the ids a
    range reader judges over the whole file: within one range the check would repeat it)."""
    from customer_value.data.schemas import SCHEMAS

    if not judged_elsewhere:
        return SCHEMAS[name]
    return SCHEMAS[name].to_schema().update_columns({c: {"unique": False} for c in judged_elsewhere})


def check_schema(name: str, frame: pd.DataFrame, judged_elsewhere: tuple[str, ...] = ()) -> pd.DataFrame:
    """Row problems found by the table's pandera schema (see :func:`_schema` for ``judged_elsewhere``)."""
    from customer_value.data.schemas import pa

    try:
        with warnings.catch_warnings():  # pandera probes pyspark.pandas, which warns about pandas 3
            warnings.filterwarnings("ignore", message="PySpark does not yet fully support", category=FutureWarning)
            # inplace: no copy of the table (nothing is coerced, the schemas only check)
            _schema(name, judged_elsewhere).validate(frame, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        cases = cases[cases["index"].notna()]
        # a check across columns fails once per column of the row: report it once, on its column
        wide = cases["schema_context"] == "DataFrameSchema"
        across = cases[wide].drop_duplicates(["index", "check"]).assign(column=lambda d: d["check"].map(_checked_columns))
        cases = pd.concat([cases[~wide], across], ignore_index=True)
        found = []
        for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
            rows = group["index"].astype("int64").to_numpy()
            column = column if isinstance(column, str) and column in frame.columns else _checked_columns(check)
            # the row's own value (a check across columns reports only "False" as its failure case)
            value = frame[column].iloc[rows] if column in frame.columns else group["failure_case"]
            found.append(pd.DataFrame({
                "table": name, "row": rows, "column": column, "check": _readable_check(check),
                "value": value.astype(str).to_numpy(), "action": SET_ASIDE,
            }))
        return _concat(found)
    return _no_problems()


def _checked_columns(check: object) -> str:
    text = str(check)
    return "due_at" if "due_at" in text else text


def _readable_check(check: object) -> str:
    """pandera's check names in words a data owner understands."""
    text = str(check)
    if text == "field_uniqueness":
        return "duplicate id"
    if text == "not_nullable":
        return NULL_REQUIRED
    for prefix, words in (("greater_than_or_equal_to(", "must be >= "), ("less_than_or_equal_to(", "must be <= ")):
        if text.startswith(prefix):
            return words + text[len(prefix):-1]
    if text.startswith("isin("):
        return "not one of " + text[len("isin("):-1]
    return text


def check_references(name: str, frame: pd.DataFrame, kept_ids: pd.Index, known_ids: pd.Index | None = None) -> pd.DataFrame:
    """Rows whose customer reference is not a kept customer.

    ``known_ids`` are all ids the customers file holds: a reference to one of them that was not
    kept says "set aside" rather than "unknown". For ``customers`` the reference is
    ``referred_by`` and the row is kept with the reference nulled; elsewhere the row is set aside.
    """
    known_ids = kept_ids if known_ids is None else known_ids
    column = "referred_by" if name == "customers" else "customer_id"
    ref = frame[column]
    bad = ref.notna() & ~_isin(ref, kept_ids)
    if not bad.any():
        return _no_problems()
    was_set_aside = bad & _isin(ref, known_ids)
    if name == "customers":
        checks, action = (REFERRER_UNKNOWN, REFERRER_SET_ASIDE), NULLED
    else:
        checks, action = (UNKNOWN_CUSTOMER, SET_ASIDE_CUSTOMER), SET_ASIDE
    return _concat([_problems(name, column, checks[0], bad & ~was_set_aside, ref, action),
                    _problems(name, column, checks[1], was_set_aside, ref, action)])


def _isin(values: pd.Series, ids: pd.Index) -> np.ndarray:
    """``values.isin(ids)``; for text through Arrow, as pandas makes a Python object per id."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if values.dtype == "str" and len(values) and len(ids):
        column, id_set = pa.array(values, from_pandas=True), pa.array(pd.Series(ids, copy=False), from_pandas=True)
        if pa.types.is_string(id_set.type) or pa.types.is_large_string(id_set.type):
            found = pc.is_in(column, value_set=id_set.cast(column.type))
            return pc.fill_null(found, False).to_numpy(zero_copy_only=False)
    return values.isin(ids).to_numpy()


# ---------------------------------------------------------------------------------------------
# the whole directory


def describe_problems(name: str, problems: pd.DataFrame, examples: int = EXAMPLES, source: object = None) -> str:
    """A human message: one line per (column, check) with the count and example rows."""
    where = f" ({source})" if source is not None else ""
    lines = [f"table '{name}'{where}: {problems['row'].nunique()} bad row(s)"]
    for (column, check), group in problems.groupby(["column", "check"], sort=False):
        sample = group.drop_duplicates("row").head(examples)
        shown = ", ".join(f"row {r} ({v!r})" for r, v in zip(sample["row"], sample["value"]))
        more = f" and {group['row'].nunique() - len(sample)} more" if group["row"].nunique() > len(sample) else ""
        lines.append(f"  column '{column}': {check}: {group['row'].nunique()} row(s), e.g. {shown}{more}")
    if source is not None:
        lines.append(f"(file: {source}; {ROW_NUMBERS})")
    return "\n".join(lines)


def _summarise(name: str, path: Path, n_in: int, kept: pd.DataFrame, problems: pd.DataFrame) -> dict[str, object]:
    """Per-table counts that add up: rows_in = rows (kept) + set_aside."""
    times = kept[EVENT_TIME[name]]
    return {
        "file": str(path),
        "rows_in": int(n_in),
        "rows": int(len(kept)),
        "set_aside": int(problems.loc[problems["action"] == SET_ASIDE, "row"].nunique()),
        "nulled": int(problems.loc[problems["action"] == NULLED, "row"].nunique()),
        "customers": int(kept["customer_id"].nunique()) if len(kept) else 0,
        "first": times.min() if len(kept) else None,
        "last": times.max() if len(kept) else None,
        "problems": int(problems["row"].nunique()),
    }


def _table_problems(name: str, frame: pd.DataFrame, parse_problems: pd.DataFrame,
                    judged_elsewhere: tuple[str, ...] = ()) -> pd.DataFrame:
    """Parse and schema problems of one table, without the schema's echo of a failed parse."""
    schema_problems = check_schema(name, frame, judged_elsewhere)
    # a value that did not parse is already reported; its resulting null is not news
    unparsed = pd.MultiIndex.from_frame(parse_problems[["row", "column"]])
    echo = pd.MultiIndex.from_frame(schema_problems[["row", "column"]]).isin(unparsed)
    schema_problems = schema_problems[~(echo & (schema_problems["check"] == NULL_REQUIRED))]
    return _concat([parse_problems, schema_problems])


def _settle(frame: pd.DataFrame, problems: pd.DataFrame) -> pd.DataFrame:
    """The kept rows: set-aside rows dropped, nulled references nulled, index renumbered."""
    aside = problems.loc[problems["action"] == SET_ASIDE, "row"].unique()
    kept = frame.drop(index=aside) if len(aside) else frame
    nulled = problems[problems["action"] == NULLED]
    if len(nulled):
        kept = kept.copy()
        for column, group in nulled.groupby("column"):
            kept.loc[group["row"].to_numpy(), column] = None
    return kept.reset_index(drop=True) if len(aside) else kept  # no copy when clean


def load_tables(data_dir: str | Path, settings: Settings | None = None, strict: bool | None = None,
                skip: tuple[str, ...] = ()) -> LoadedData:
    """Read, parse and validate every contract table in ``data_dir``.

    ``strict`` (default: ``settings.strict``) raises :class:`DataValidationError` at the first
    table with problems, listing all of them; otherwise bad rows are set aside into the report
    (module docstring: what is set aside, what is nulled).
    """
    settings = settings or Settings()
    strict = settings.strict if strict is None else strict
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataValidationError(f"data directory {data_dir} does not exist")
    paths = {name: find_table_file(data_dir, name) for name in TABLE_COLUMNS}
    for name in REQUIRED_TABLES:
        if paths[name] is None:
            raise DataValidationError(f"table '{name}' is required: no {name}.parquet or {name}.csv in {data_dir}")
    report = ValidationReport()
    tables: dict[str, pd.DataFrame] = {}
    all_problems = []
    kept_ids = known_ids = pd.Index([], dtype="str")
    for name, path in paths.items():
        if name in skip:  # read elsewhere (RangeReader), left empty here
            tables[name] = empty_table(name)
            continue
        if path is None:
            tables[name] = empty_table(name)
            report.summary[name] = {"rows_in": 0, "rows": 0, "set_aside": 0, "nulled": 0, "customers": 0,
                                    "first": None, "last": None, "problems": 0, "missing": True}
            continue
        frame, parse_problems = parse_table(name, read_raw(path, name), settings.columns.get(name),
                                            settings.timestamp_format, path)
        problems = _table_problems(name, frame, parse_problems)
        if name == "customers":
            known_ids = pd.Index(frame["customer_id"].dropna().unique())
            aside = problems["row"].unique()
            kept_ids = pd.Index(frame["customer_id"].drop(index=aside).dropna())
            kept_rows = frame.drop(index=aside)
            # strict mode stops here anyway: a referrer that is in the file is no news of its own
            refs = check_references(name, kept_rows.reset_index(drop=True), known_ids if strict else kept_ids, known_ids)
            refs["row"] = kept_rows.index.to_numpy()[refs["row"].to_numpy()]
            problems = _concat([problems, refs])
        else:
            problems = _concat([problems, check_references(name, frame, kept_ids, known_ids)])
        problems = problems.sort_values(["row", "column"], kind="stable").reset_index(drop=True)
        if len(problems) and strict:
            raise DataValidationError(describe_problems(name, problems, source=path), problems)
        kept = _settle(frame, problems)
        if name == "transactions":
            kept["gross_margin"] = kept["gross_margin"].fillna(kept["amount"] * settings.margin_rate)
        tables[name] = kept
        all_problems.append(problems)
        report.summary[name] = _summarise(name, path, len(frame), kept, problems)
    report.problems = _concat(all_problems)
    report.known_ids = known_ids
    return LoadedData(Tables(**tables), report)


# ---------------------------------------------------------------------------------------------
# the large tables read per range of customers (scoring in bounded memory)

STREAMED_TABLES = ("engagement_events", "invoices", "support_tickets")
"""Tables that only their own customer's rows need: read one range of customers at a time."""
WHOLE_IN_RANGES = ("transactions",)
"""Tables held whole (other customers' rows matter: referrals) but read and checked in ranges."""
RANGE_CUSTOMERS = 500_000
"""Customers per range when a whole table is read in ranges."""
ID_COLUMNS = {"transactions": "transaction_id", "invoices": "invoice_id", "support_tickets": "ticket_id"}
DUPLICATE_ID = "duplicate id"


def load_tables_in_ranges(data_dir: str | Path, settings: Settings | None = None, strict: bool | None = None,
                          streamed: bool = True) -> tuple[LoadedData, "RangeReader | None"]:
    """:func:`load_tables` for data too large to hold: ``customers`` is read whole; ``transactions``
    (everyone's history feeds the referral features) is held whole but read and checked one range
    of customers at a time (:data:`RANGE_CUSTOMERS`), so checking it needs no second copy; the
    :data:`STREAMED_TABLES` are left empty in the returned tables and read one range of
    ``customer_id`` at a time by the :class:`RangeReader`. Only Parquet files are read in ranges
    (CSV is loaded here whole; without any Parquet table the reader is ``None``). The checks are
    the same, row numbers are the file's, and the reader completes the report as ranges are read.
    ``streamed=False`` is :func:`load_tables` (every table whole): for work that reads everyone's
    rows of every table (indirect pools share over all customers)."""
    import dataclasses

    settings = settings or Settings()
    strict = settings.strict if strict is None else strict
    data_dir = Path(data_dir)
    ranged = {}
    if data_dir.is_dir():
        for name in (*WHOLE_IN_RANGES, *STREAMED_TABLES) if streamed else ():
            path = find_table_file(data_dir, name)
            if path is not None and path.suffix == ".parquet" and path.is_file():
                ranged[name] = path
    loaded = load_tables(data_dir, settings, strict, skip=tuple(ranged))
    if not ranged:
        return loaded, None
    customers = loaded.tables.customers
    reader = RangeReader(ranged, settings, strict, pd.Index(customers["customer_id"].dropna()),
                         loaded.report.known_ids, loaded.report)
    whole = {}
    for name in WHOLE_IN_RANGES:
        if name in ranged:
            ids = np.sort(customers["customer_id"].dropna().to_numpy(dtype=object))
            bounds = [None, *ids[RANGE_CUSTOMERS::RANGE_CUSTOMERS].tolist(), None]
            whole[name] = pd.concat([reader.read(a, b, (name,))[name] for a, b in zip(bounds, bounds[1:])],
                                    ignore_index=True)
    tables = dataclasses.replace(loaded.tables, **whole) if whole else loaded.tables
    return LoadedData(tables, loaded.report), reader if set(ranged) & set(STREAMED_TABLES) else None


class RangeReader:
    """Reads the validated rows of the streamed tables whose ``customer_id`` lies in a range.

    Row groups whose statistics lie outside the range are skipped (files sorted by customer read
    each row once). An id duplicated across ranges is found up front by the engine from the id
    column alone (in bounded memory). Rows with a null ``customer_id`` are read with the first
    range (``first=None``)."""

    def __init__(self, paths: dict[str, Path], settings: Settings, strict: bool, kept_ids: pd.Index,
                 known_ids: pd.Index, report: ValidationReport) -> None:
        import pyarrow.parquet as pq

        self.paths, self.settings, self.strict = paths, settings, strict
        self.kept_ids, self.known_ids, self.report = kept_ids, known_ids, report
        self.duplicated: dict[str, pd.Index] = {}
        for name, path in paths.items():
            mapping = settings.columns.get(name) or {}
            names = pq.read_schema(path).names
            _refuse_repeated(names)
            if name in ID_COLUMNS and mapping.get(ID_COLUMNS[name], ID_COLUMNS[name]) in names:
                self.duplicated[name] = _duplicated(path, mapping.get(ID_COLUMNS[name], ID_COLUMNS[name]))

    def read(self, first: str | None, before: str | None,
             names: tuple[str, ...] = STREAMED_TABLES) -> dict[str, pd.DataFrame]:
        """The kept rows of each streamed table (of ``names``) with ``first <= customer_id < before``
        (an open end where ``None``; null ids go with ``first=None``), problems added to the
        report. Ranges that tile the id space read every row once."""
        return {name: self._read(name, path, first, before) for name, path in self.paths.items() if name in names}

    def _read(self, name: str, path: Path, first: str | None, before: str | None) -> pd.DataFrame:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        mapping = self.settings.columns.get(name) or {}
        key = mapping.get("customer_id", "customer_id")
        try:
            handle = pq.ParquetFile(path)
        except (OSError, ValueError) as exc:
            raise DataValidationError(f"table '{name}': cannot read {path}: {_why(path, exc)}") from exc
        names = handle.schema_arrow.names
        if key not in names:  # parse_table names the missing column
            parse_table(name, handle.schema_arrow.empty_table().to_pandas(), mapping, self.settings.timestamp_format,
                        path)
        position = names.index(key)
        parts, rows, offset = [], [], 0
        for group in range(handle.num_row_groups):
            meta = handle.metadata.row_group(group)
            stats = meta.column(position).statistics
            size = meta.num_rows
            known = stats is not None and stats.has_min_max and stats.null_count == 0  # ids' span known, no nulls
            skip = known and ((first is not None and stats.max < first) or (before is not None and stats.min >= before))
            whole = known and (first is None or stats.min >= first) and (before is None or stats.max < before)
            if whole:  # the group lies inside the range (files sorted by customer: nearly all of them)
                parts.append(handle.read_row_group(group))
                rows.append(np.arange(offset, offset + size))
            elif not skip:
                table = handle.read_row_group(group)
                ids = table.column(key)
                mask = pc.is_valid(ids)
                if first is not None:
                    mask = pc.and_(mask, pc.greater_equal(ids, first))
                if before is not None:
                    mask = pc.and_(mask, pc.less(ids, before))
                mask = pc.fill_null(mask, False)
                if first is None:  # rows without a customer are checked (and set aside) with the first range
                    mask = pc.or_(mask, pc.is_null(ids))
                where = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
                if len(where):
                    parts.append(table.take(pa.array(where)))
                    rows.append(where + offset)
            offset += size
        schema = handle.schema_arrow
        table = pa.concat_tables(parts) if parts else schema.empty_table()
        numbers = np.concatenate(rows) if rows else np.empty(0, dtype="int64")
        frame, parse_problems = parse_table(name, _arrow_frame(table), mapping, self.settings.timestamp_format, path)
        whole_file = (ID_COLUMNS[name],) if name in self.duplicated else ()
        problems = _table_problems(name, frame, parse_problems, whole_file)
        if whole_file:  # duplicates are judged over the whole file, not the range
            column = ID_COLUMNS[name]
            problems = _concat([problems, _problems(name, column, DUPLICATE_ID, frame[column].isin(self.duplicated[name]),
                                                    frame[column])])
        problems = _concat([problems, check_references(name, frame, self.kept_ids, self.known_ids)])
        problems = problems.sort_values(["row", "column"], kind="stable").reset_index(drop=True)
        kept = _settle(frame, problems)
        if name == "transactions":
            kept["gross_margin"] = kept["gross_margin"].fillna(kept["amount"] * self.settings.margin_rate)
        problems["row"] = numbers[problems["row"].to_numpy(dtype="int64")] if len(problems) else problems["row"]
        if len(problems) and self.strict:
            raise DataValidationError(describe_problems(name, problems, source=path), problems)
        self._add(name, path, len(frame), kept, problems)
        return kept

    def _add(self, name: str, path: Path, n_in: int, kept: pd.DataFrame, problems: pd.DataFrame) -> None:
        part = _summarise(name, path, n_in, kept, problems)
        done = self.report.summary.get(name)
        if done is None or done.get("missing"):
            self.report.summary[name] = part
        else:
            for count in ("rows_in", "rows", "set_aside", "nulled", "customers", "problems"):
                done[count] = int(done[count]) + int(part[count])
            for end, pick in (("first", min), ("last", max)):
                known = [v for v in (done[end], part[end]) if v is not None and not pd.isna(v)]
                done[end] = pick(known) if known else None
        if len(problems):
            self.report.problems = _concat([self.report.problems, problems])


def _duplicated(path: Path, column: str) -> pd.Index:
    """The values of ``column`` that occur more than once in a Parquet file, counted by DuckDB
    (which spills to disk past its memory limit: the ids of a large table need not fit)."""
    import tempfile

    import duckdb

    with tempfile.TemporaryDirectory(prefix="cv-ids-") as spill:
        con = duckdb.connect()
        try:
            con.execute("SET memory_limit = '1GB'")
            con.execute(f"SET temp_directory = '{spill}'")
            quoted = '"' + column.replace('"', '""') + '"'
            found = con.execute(f"SELECT {quoted} FROM read_parquet(?) WHERE {quoted} IS NOT NULL "
                                f"GROUP BY 1 HAVING count(*) > 1", [str(path)]).fetchall()
        finally:
            con.close()
    return pd.Index([row[0] for row in found])
