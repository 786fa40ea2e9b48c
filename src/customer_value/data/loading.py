"""Read a data directory into validated canonical tables (contract section 2).

Three steps per table, each reporting problems as rows of (table, row, column, check, value):
1. **parse**: map the user's column names, check required columns, turn values into canonical
   dtypes (timestamps to naive UTC); a value that does not parse is a problem, never a silent NaN;
2. **schema**: the pandera schema of the table (nulls, uniqueness, ranges, allowed values);
3. **references**: every `customer_id` must exist among the valid customers.

Strict mode stops at the first table with problems and lists all of them. Non-strict mode sets
the bad rows aside into the :class:`ValidationReport` (which the caller writes to a file) and
keeps the rest. Input files are only ever read.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from customer_value.config import Settings
from customer_value.errors import InputError
from customer_value.data.tables import EVENT_TIME, REQUIRED_TABLES, TABLE_COLUMNS, TIMESTAMP, Tables, empty_table

PROBLEM_COLUMNS = ["table", "row", "column", "check", "value"]
_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n"}


class DataValidationError(InputError):
    """Input that breaks the contract; the message names table, column and example rows."""

    def __init__(self, message: str, problems: pd.DataFrame | None = None):
        super().__init__(message)
        self.problems = problems if problems is not None else pd.DataFrame(columns=PROBLEM_COLUMNS)


@dataclass
class ValidationReport:
    """What validation found: per-table summaries and every problem row (set aside or fatal)."""

    problems: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PROBLEM_COLUMNS))
    summary: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def n_set_aside(self) -> dict[str, int]:
        """Distinct input rows set aside, per table."""
        if self.problems.empty:
            return {}
        return self.problems.groupby("table")["row"].nunique().astype(int).to_dict()

    def write(self, path: str | Path) -> Path:
        """Write the problem rows as CSV (one line per row and failed check)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.problems.to_csv(path, index=False)
        return path


@dataclass(frozen=True)
class LoadedData:
    tables: Tables
    report: ValidationReport


# ---------------------------------------------------------------------------------------------
# reading


def find_table_file(data_dir: Path, name: str) -> Path | None:
    for suffix in (".parquet", ".csv"):
        path = data_dir / f"{name}{suffix}"
        if path.exists():
            return path
    return None


def read_raw(path: Path) -> pd.DataFrame:
    """Read one file as it is; CSV values stay text so that parsing can report what fails."""
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path, dtype=str, keep_default_na=True)
    return frame.reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# parsing


def _problems(table: str, column: str, check: str, mask: np.ndarray | pd.Series, values: pd.Series) -> pd.DataFrame:
    mask = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(mask)
    return pd.DataFrame(
        {
            "table": table,
            "row": rows,
            "column": column,
            "check": check,
            "value": values.iloc[rows].astype(str).to_numpy(),
        }
    )


def _parse_timestamp(values: pd.Series) -> pd.Series:
    """Any timestamp representation to naive UTC wall time (contract section 1)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").dt.tz_localize(None).astype(TIMESTAMP)
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.astype(TIMESTAMP)
    text = values.astype("str")
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    retry = parsed.isna() & text.notna()
    if retry.any():
        parsed[retry] = pd.to_datetime(text[retry], utc=True, errors="coerce", format="mixed")
    return parsed.dt.tz_localize(None).astype(TIMESTAMP)


def _parse_float(values: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(values.dtype) and not isinstance(values.dtype, pd.ArrowDtype):
        return values.astype("float64")
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _parse_int(values: pd.Series) -> pd.Series:
    if pd.api.types.is_integer_dtype(values.dtype):
        return values.astype("Int64")
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    whole = numbers.notna() & (numbers == np.round(numbers))
    return pd.Series(np.where(whole, numbers, np.nan), index=values.index).astype("Int64")


def _parse_bool(values: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(values.dtype) and not values.isna().any():
        return values.astype(bool)
    text = values.astype("str").str.strip().str.lower()
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[text.isin(_TRUE)] = True
    out[text.isin(_FALSE)] = False
    return out


def _parse_str(values: pd.Series) -> pd.Series:
    if values.dtype == "str":
        return values
    if pd.api.types.is_float_dtype(values.dtype):  # ids written as numbers, e.g. 12.0 -> "12"
        whole = values.notna() & (values == np.round(values))
        text = values.astype("str")
        text[whole] = values[whole].astype("int64").astype("str")
        return text
    return values.astype("str")


_PARSERS = {
    TIMESTAMP: _parse_timestamp,
    "float64": _parse_float,
    "Int64": _parse_int,
    "bool": _parse_bool,
    "str": _parse_str,
}


def parse_table(name: str, raw: pd.DataFrame, columns: dict[str, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Canonical names and dtypes for one table; returns (frame, problems).

    Raises :class:`DataValidationError` for table-level problems (a required column missing),
    which no row-level setting aside can fix.
    """
    mapping = columns or {}
    unknown = set(mapping) - set(TABLE_COLUMNS[name])
    if unknown:
        raise DataValidationError(
            f"table '{name}': the columns mapping names unknown canonical column(s) {sorted(unknown)}; "
            f"canonical columns are {list(TABLE_COLUMNS[name])}"
        )
    renamed = raw.rename(columns={user: canonical for canonical, user in mapping.items()})
    missing = [c for c, (_, required) in TABLE_COLUMNS[name].items() if required and c not in renamed.columns]
    if missing:
        where = [f"'{c}'" + (f" (mapped from '{mapping[c]}')" if c in mapping else "") for c in missing]
        raise DataValidationError(
            f"table '{name}': missing required column(s) {', '.join(where)}; "
            f"found columns {list(raw.columns)}"
        )
    frame: dict[str, pd.Series] = {}
    problems = []
    for column, (dtype, _) in TABLE_COLUMNS[name].items():
        if column not in renamed.columns:
            frame[column] = pd.Series(pd.NA if dtype in ("Int64",) else None, index=renamed.index).astype(dtype)
            continue
        original = renamed[column]
        parsed = _PARSERS[dtype](original)
        failed = parsed.isna() & original.notna()
        if dtype != "str" and failed.any():
            check = {TIMESTAMP: "timestamp does not parse", "float64": "not a number",
                     "Int64": "not a whole number", "bool": "not a boolean"}[dtype]
            problems.append(_problems(name, column, check, failed, original))
        if dtype == "bool":
            missing_bool = parsed.isna()
            parsed = parsed.fillna(False).astype(bool)
            if missing_bool.any():
                problems.append(_problems(name, column, "not nullable", missing_bool & original.isna(), original))
        frame[column] = parsed
    extra = [c for c in renamed.columns if c not in TABLE_COLUMNS[name]]
    out = pd.DataFrame(frame, index=renamed.index)
    for column in extra:
        out[column] = renamed[column]
    found = pd.concat(problems, ignore_index=True) if problems else _no_problems()
    return out, found


def _no_problems() -> pd.DataFrame:
    return pd.DataFrame({"table": pd.Series([], dtype="str"), "row": pd.Series([], dtype="int64"),
                         "column": pd.Series([], dtype="str"), "check": pd.Series([], dtype="str"),
                         "value": pd.Series([], dtype="str")})


# ---------------------------------------------------------------------------------------------
# checking


def check_schema(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Row problems found by the table's pandera schema."""
    from customer_value.data.schemas import SCHEMAS, pa

    try:
        with warnings.catch_warnings():  # pandera probes pyspark.pandas, which warns about pandas 3
            warnings.filterwarnings("ignore", message="PySpark does not yet fully support", category=FutureWarning)
            SCHEMAS[name].validate(frame, lazy=True)
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
            found.append(pd.DataFrame({
                "table": name, "row": rows, "column": column, "check": _readable_check(check),
                "value": group["failure_case"].astype(str).to_numpy(),
            }))
        return pd.concat(found, ignore_index=True) if found else _no_problems()
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
        return "null where a value is required"
    for prefix, words in (("greater_than_or_equal_to(", "must be >= "), ("less_than_or_equal_to(", "must be <= ")):
        if text.startswith(prefix):
            return words + text[len(prefix):-1]
    if text.startswith("isin("):
        return "not one of " + text[len("isin("):-1]
    return text


def check_references(name: str, frame: pd.DataFrame, customer_ids: pd.Index) -> pd.DataFrame:
    """Rows whose customer_id is not a (valid) customer."""
    if name == "customers":
        ref = frame["referred_by"]
        unknown = ref.notna() & ~ref.isin(customer_ids)
        return _problems(name, "referred_by", "refers to an unknown customer_id", unknown, ref)
    unknown = frame["customer_id"].notna() & ~frame["customer_id"].isin(customer_ids)
    return _problems(name, "customer_id", "refers to an unknown customer_id", unknown, frame["customer_id"])


# ---------------------------------------------------------------------------------------------
# the whole directory


def describe_problems(name: str, problems: pd.DataFrame, examples: int = 5) -> str:
    """A human message: one line per (column, check) with the count and example rows."""
    lines = [f"table '{name}': {problems['row'].nunique()} bad row(s)"]
    for (column, check), group in problems.groupby(["column", "check"], sort=False):
        sample = group.head(examples)
        shown = ", ".join(f"row {r} ({v!r})" for r, v in zip(sample["row"], sample["value"]))
        more = f" and {len(group) - examples} more" if len(group) > examples else ""
        lines.append(f"  column '{column}': {check}: {len(group)} row(s), e.g. {shown}{more}")
    return "\n".join(lines)


def _summarise(name: str, frame: pd.DataFrame, n_problems: int) -> dict[str, object]:
    time_col = EVENT_TIME[name]
    times = frame[time_col] if len(frame) else pd.Series([], dtype=TIMESTAMP)
    return {
        "rows": int(len(frame)),
        "customers": int(frame["customer_id"].nunique()) if len(frame) else 0,
        "first": times.min() if len(frame) else None,
        "last": times.max() if len(frame) else None,
        "problems": int(n_problems),
    }


def load_tables(data_dir: str | Path, settings: Settings | None = None, strict: bool | None = None) -> LoadedData:
    """Read, parse and validate every contract table in ``data_dir``.

    ``strict`` (default: ``settings.strict``) raises :class:`DataValidationError` at the first
    table with problems, listing all of them; otherwise bad rows are set aside into the report.
    """
    settings = settings or Settings()
    strict = settings.strict if strict is None else strict
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataValidationError(f"data directory {data_dir} does not exist")
    report = ValidationReport()
    tables: dict[str, pd.DataFrame] = {}
    all_problems = []
    customer_ids = pd.Index([])
    for name in TABLE_COLUMNS:
        path = find_table_file(data_dir, name)
        if path is None:
            if name in REQUIRED_TABLES:
                raise DataValidationError(f"table '{name}' is required: no {name}.parquet or {name}.csv in {data_dir}")
            tables[name] = empty_table(name)
            report.summary[name] = {"rows": 0, "customers": 0, "first": None, "last": None, "problems": 0, "missing": True}
            continue
        frame, parse_problems = parse_table(name, read_raw(path), settings.columns.get(name))
        schema_problems = check_schema(name, frame)
        # a value that did not parse is already reported; its resulting null is not news
        unparsed = pd.MultiIndex.from_frame(parse_problems[["row", "column"]])
        echo = pd.MultiIndex.from_frame(schema_problems[["row", "column"]]).isin(unparsed)
        schema_problems = schema_problems[~(echo & (schema_problems["check"] == "null where a value is required"))]
        problems = pd.concat([parse_problems, schema_problems], ignore_index=True)
        if name != "customers":
            problems = pd.concat([problems, check_references(name, frame, customer_ids)], ignore_index=True)
        problems = problems.sort_values(["row", "column"], kind="stable").reset_index(drop=True)
        if len(problems) and strict:
            raise DataValidationError(describe_problems(name, problems) + f"\n(file: {path})", problems)
        bad_rows = problems["row"].unique()
        kept = frame.drop(index=bad_rows).reset_index(drop=True) if len(bad_rows) else frame  # no copy when clean
        if name == "customers":
            # referred_by is checked once the valid customers are known; a bad referrer is set aside too
            customer_ids = pd.Index(kept["customer_id"])
            refs = check_references(name, kept, customer_ids)
            if len(refs):
                original_rows = frame.index.drop(bad_rows).to_numpy()
                refs["row"] = original_rows[refs["row"].to_numpy()]
                if strict:
                    raise DataValidationError(describe_problems(name, refs) + f"\n(file: {path})", refs)
                problems = pd.concat([problems, refs], ignore_index=True)
                kept = frame.drop(index=problems["row"].unique()).reset_index(drop=True)
                customer_ids = pd.Index(kept["customer_id"])
        if name == "transactions":
            kept["gross_margin"] = kept["gross_margin"].fillna(kept["amount"] * settings.margin_rate)
        tables[name] = kept
        all_problems.append(problems)
        report.summary[name] = _summarise(name, kept, problems["row"].nunique())
    if all_problems:
        report.problems = pd.concat(all_problems, ignore_index=True)[PROBLEM_COLUMNS]
    return LoadedData(Tables(**tables), report)
