"""Where the Ibis expressions run: a backend connection and the contract tables registered in it.

DuckDB (in-process) is the default; a local or existing PySpark session runs the very same
expressions. pandas frames cross into the backend as Arrow tables: DuckDB scans them in place
(zero-copy views, nothing is inserted row by row) and Spark builds its DataFrames from them.
Registered names are unique per call and are dropped again when the ``with`` block ends, so
concurrent builds in one backend do not see each other's tables.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from ibis.backends import BaseBackend

from customer_value.data.tables import TABLE_COLUMNS, Tables, empty_table

Engine = str | BaseBackend
"""``"duckdb"``, ``"spark"`` (``"pyspark"``), or an already connected Ibis backend."""

_SPARK_TYPES = {"str": "STRING", "datetime64[us]": "TIMESTAMP", "float64": "DOUBLE", "Int64": "BIGINT", "bool": "BOOLEAN"}
_ARROW_TYPES: dict[str, pa.DataType] = {
    "str": pa.string(),
    "datetime64[us]": pa.timestamp("us"),
    "float64": pa.float64(),
    "Int64": pa.int64(),
    "bool": pa.bool_(),
}


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 * 2**30


def duckdb_defaults() -> dict[str, Any]:
    """Threads = cores; memory limit = a quarter of RAM, at most 4 GiB (the input frames,
    held by pandas, come on top); spills go to the system temp directory."""
    limit_gib = max(1, min(4, _physical_memory() // 4 // 2**30))
    return {
        "threads": os.cpu_count() or 1,
        "memory_limit": f"{limit_gib}GB",
        "preserve_insertion_order": False,
        "temp_directory": str(Path(tempfile.gettempdir()) / "customer_value_duckdb"),
    }


def spark_session(master: str = "local[*]", shuffle_partitions: int | None = None) -> Any:
    """Get (or create) a local Spark session set up for these features: UTC session time zone,
    Arrow conversions, no UI, few shuffle partitions (the data of one machine)."""
    from pyspark.sql import SparkSession

    cores = os.cpu_count() or 1
    session = (
        SparkSession.builder.master(master)
        .appName("customer-value-features")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions or 2 * cores))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    _require_utc(session)
    return session


def _require_utc(session: Any) -> None:
    # Canonical timestamps are naive UTC wall times; Spark interprets naive values in the
    # session time zone, so anything but UTC would shift every window boundary.
    session.conf.set("spark.sql.session.timeZone", "UTC")


def connect(engine: Engine = "duckdb", **options: Any) -> BaseBackend:
    """An Ibis backend: a new in-process DuckDB (``options`` override :func:`duckdb_defaults`),
    a local Spark session (``"spark"``; ``options`` go to :func:`spark_session`), or ``engine``
    itself when it already is a backend."""
    if isinstance(engine, BaseBackend):
        if engine.name == "pyspark":
            _require_utc(engine._session)
        return engine
    name = str(engine).lower()
    if name == "duckdb":
        config = {**duckdb_defaults(), **options}
        Path(config["temp_directory"]).mkdir(parents=True, exist_ok=True)
        return ibis.duckdb.connect(**config)
    if name in ("spark", "pyspark"):
        return ibis.pyspark.connect(spark_session(**options))
    raise ValueError(f"unknown engine {engine!r}; expected 'duckdb', 'spark' or an Ibis backend")


@dataclass(frozen=True)
class Sources:
    """The five contract tables as Ibis tables of one backend (canonical columns and types)."""

    backend: BaseBackend
    customers: ibis.Table
    transactions: ibis.Table
    engagement_events: ibis.Table
    invoices: ibis.Table
    support_tickets: ibis.Table


def to_arrow(name: str, frame: pd.DataFrame, *, large_strings: bool = True) -> pa.Table:
    """One canonical table as Arrow with the contract's columns in order and exact types.

    pandas' ``str`` columns are Arrow-backed already, so this is mostly zero-copy; columns
    are cast only when their type differs (``large_strings=False`` narrows strings for Spark).
    """
    missing = [c for c in TABLE_COLUMNS[name] if c not in frame.columns]
    if missing:
        raise ValueError(f"table {name!r} lacks column(s) {missing}; expected canonical tables")
    table = pa.Table.from_pandas(frame[list(TABLE_COLUMNS[name])], preserve_index=False)
    return conform_arrow(name, table, large_strings=large_strings)


def conform_arrow(name: str, table: pa.Table, *, large_strings: bool = True) -> pa.Table:
    """Arrow table with exactly the canonical columns and types of ``name``: optional columns
    it lacks become nulls, tz-aware timestamps become naive UTC, other types are cast."""
    columns = TABLE_COLUMNS[name]
    missing = [c for c, (_, required) in columns.items() if required and c not in table.column_names]
    if missing:
        raise ValueError(f"table {name!r} lacks required column(s) {missing}")
    arrays = []
    for column, (dtype, _) in columns.items():
        target = _ARROW_TYPES[dtype]
        if column not in table.column_names:
            arrays.append(pa.nulls(table.num_rows, target))
            continue
        array = table.column(column)
        if dtype == "str" and large_strings and pa.types.is_large_string(array.type):
            target = array.type
        if pa.types.is_timestamp(array.type) and array.type.tz is not None:
            array = array.cast(pa.timestamp(array.type.unit, tz="UTC")).cast(pa.timestamp(array.type.unit))
        if array.type != target:
            array = array.cast(target)
        arrays.append(array)
    return pa.Table.from_arrays(arrays, names=list(columns))


@contextmanager
def registered(tables: Tables, backend: BaseBackend, only: Iterable[str] | None = None) -> Iterator[Sources]:
    """Register ``tables`` in ``backend`` under fresh names; drop them when the block ends.
    Tables not named in ``only`` (when given) are registered empty: nothing reads them."""
    used = set(only) if only is not None else None
    frames = {name: frame if used is None or name in used else empty_table(name) for name, frame in tables.items()}
    with _registered(frames, backend) as sources:
        yield sources


@contextmanager
def _registered(tables: dict[str, Any], backend: BaseBackend) -> Iterator[Sources]:
    """Register pandas frames, Arrow tables or (Spark only) Parquet paths; absent names are
    registered as empty tables."""
    tag = f"cv_{uuid.uuid4().hex[:10]}"
    names: dict[str, str] = {}
    is_spark = backend.name == "pyspark"
    try:
        for name in TABLE_COLUMNS:
            data = tables.get(name, empty_table(name))
            view = f"{tag}_{name}"
            if is_spark and isinstance(data, Path):
                raw = backend._session.read.parquet(str(data))
                present = set(raw.columns)
                raw.selectExpr(
                    *[
                        f"CAST({c if c in present else 'NULL'} AS {_SPARK_TYPES[d]}) AS {c}"
                        for c, (d, _) in TABLE_COLUMNS[name].items()
                    ]
                ).createOrReplaceTempView(view)
                names[name] = view
                continue
            if isinstance(data, pd.DataFrame):
                arrow = to_arrow(name, data, large_strings=not is_spark)
            else:
                arrow = conform_arrow(name, data, large_strings=not is_spark)
            if is_spark:
                backend._session.createDataFrame(arrow).createOrReplaceTempView(view)
            elif backend.name == "duckdb":
                backend.con.register(view, arrow)
            else:
                backend.create_table(view, arrow, temp=True)
            names[name] = view
        yield Sources(backend=backend, **{n: backend.table(v) for n, v in names.items()})
    finally:
        for view in names.values():
            if is_spark:
                backend._session.catalog.dropTempView(view)
            elif backend.name == "duckdb":
                backend.con.unregister(view)
            else:
                backend.drop_table(view, force=True)


@contextmanager
def registered_files(data_dir: str | Path, backend: BaseBackend) -> Iterator[Sources]:
    """Fast path for canonical ``NAME.parquet`` files: no pandas round trip.

    The files must already be canonical (contract column names, naive-UTC timestamps), e.g.
    written by the simulator or after ``customer-value validate``; a missing optional table is
    an empty one and missing optional columns are nulls. DuckDB gets the files read by
    pyarrow (multi-threaded) and registered as Arrow; Spark reads them itself.
    """
    data_dir = Path(data_dir)
    tables: dict[str, pd.DataFrame | pa.Table] = {}
    for name in TABLE_COLUMNS:
        path = data_dir / f"{name}.parquet"
        if not path.exists():
            if name in ("customers", "transactions"):
                raise FileNotFoundError(f"required table {name!r} not found as {path}")
            continue
        if backend.name == "pyspark":
            tables[name] = path  # type: ignore[assignment]
        else:
            present = [c for c in TABLE_COLUMNS[name] if c in pq.read_schema(path).names]
            tables[name] = conform_arrow(name, pq.read_table(path, columns=present))
    with _registered(tables, backend) as sources:
        yield sources


def execute(expr: ibis.Table) -> pd.DataFrame:
    """Run an expression and return pandas (via Arrow on every backend)."""
    return expr.to_pyarrow().to_pandas()
