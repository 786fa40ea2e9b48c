"""Where the Ibis expressions run: a backend connection and the contract tables registered in it.

DuckDB (in-process) is the default; a local or existing PySpark session runs the very same
expressions. pandas frames cross into the backend as Arrow tables: DuckDB scans them in place
(zero-copy views, nothing is inserted row by row). A local Spark session gets them as Parquet
files in a temporary directory: a DataFrame made from Arrow in memory is decoded row by row on
every scan and has no size statistics (so every join shuffles), while Parquet is scanned
column-wise and its size is known (small sides are broadcast). That, and results coming back as
Arrow rather than through pandas, took ``build_features`` on a local[2] session from 128–234 s to
28–44 s for 20k customers (1.5M engagement events) and from 50–75 s to 18–28 s for 4k (one
session, the two engines alternating, on two cores shared with other jobs). Registered names are
unique per call and are dropped again when the ``with`` block ends, so concurrent builds in one
backend do not see each other's tables.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
import weakref
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

from customer_value.data.loading import canonical_renames
from customer_value.data.tables import TABLE_COLUMNS, Tables, empty_table
from customer_value.errors import CustomerValueError, InputError

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


SPARK_INSTALL = "pip install 'customer-value[spark]'"


def spark_session(master: str = "local[*]", shuffle_partitions: int | None = None, app_name: str = "customer-value",
                  conf: dict[str, str] | None = None) -> Any:
    """Get (or create) a Spark session set up for these features: UTC session time zone, Arrow
    conversions, no UI and no console progress bars. In local mode the shuffles get twice as many
    partitions as cores (Spark's 200 would make hundreds of tiny tasks for one machine's data);
    on a cluster Spark's own default stays unless ``shuffle_partitions`` says otherwise. ``conf``
    is set last, so it can override any of these.

    A missing pyspark or Java is a :class:`~customer_value.errors.CustomerValueError` saying how to
    install it."""
    SparkSession = _pyspark_session_class()
    _require_java()
    cores = os.cpu_count() or 1
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    if is_local(master) and not os.environ.get("PYSPARK_PYTHON"):
        # the Python workers of a local session run this interpreter: Spark's default is `python3` on
        # the PATH, which may lack this package or pyarrow (PySpark reads only the environment here)
        os.environ["PYSPARK_PYTHON"] = sys.executable
    if shuffle_partitions or is_local(master):
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions or 2 * cores))
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - the JVM failing to start has many shapes
        if "JAVA_GATEWAY_EXITED" in str(exc) or "Java gateway process exited" in str(exc):
            raise _environment_error(f"Spark could not start its Java process ({_first_line(exc)}); check that "
                                     "a Java runtime (17 or later) is installed and JAVA_HOME points at it") from exc
        raise
    _require_utc(session)
    return session


def is_local(master: str) -> bool:
    return master.startswith("local")


def _first_line(exc: BaseException) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def _environment_error(message: str) -> Exception:
    return CustomerValueError(message)


def _pyspark_session_class() -> Any:
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise _environment_error(f"--engine spark needs PySpark, which is not installed: {SPARK_INSTALL} "
                                 "(and a Java runtime, 17 or later)") from exc
    return SparkSession


def _require_java() -> None:
    """PySpark starts a JVM through ``$JAVA_HOME/bin/java`` or ``java`` on the PATH; say so before it fails."""
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").exists():
        return
    if shutil.which("java") is None:
        raise _environment_error("--engine spark needs a Java runtime (17 or later) and none was found (no java on "
                                 "the PATH, no JAVA_HOME); install one, e.g. `apt-get install default-jre-headless`, "
                                 f"then {SPARK_INSTALL} if PySpark is missing too")


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
        return ibis.pyspark.connect(spark_session(**options))  # spark_session checks pyspark and Java first
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


@dataclass(frozen=True)
class CatalogTable:
    """A table of the Spark catalog (e.g. ``lake.sales.orders``), read in place of a file."""

    name: str


@contextmanager
def _registered(tables: dict[str, Any], backend: BaseBackend,
                columns: dict[str, dict[str, str]] | None = None) -> Iterator[Sources]:
    """Register pandas frames, Arrow tables or (Spark only) Parquet paths and catalog tables;
    absent names are registered as empty tables. ``columns`` (the config's mapping, see
    :func:`_spark_view`) applies to the paths and catalog tables, which hold the user's names."""
    tag = f"cv_{uuid.uuid4().hex[:10]}"
    names: dict[str, str] = {}
    is_spark = backend.name == "pyspark"
    kept: list[Any] = []
    try:
        for name in TABLE_COLUMNS:
            data = tables.get(name, empty_table(name))
            view = f"{tag}_{name}"
            if is_spark and isinstance(data, (Path, _SparkPath, CatalogTable)):
                _spark_view(backend._session, name, data, (columns or {}).get(name)).createOrReplaceTempView(view)
                names[name] = view
                continue
            if is_spark and _local_session(backend._session):
                kept.append(data)  # its spilled file lives as long as the object
                _spark_view(backend._session, name, _spilled(name, data)).createOrReplaceTempView(view)
                names[name] = view
                continue
            if isinstance(data, pd.DataFrame):
                arrow = to_arrow(name, data, large_strings=not is_spark)
            else:
                arrow = conform_arrow(name, data, large_strings=not is_spark)
            if is_spark:  # a cluster cannot read this machine's temp files
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


SPILL_ROW_GROUP = 256 * 1024
"""Rows per Parquet row group of a spilled table: Spark splits a file by row groups, so a 1.5M-row
table becomes several tasks rather than one."""


_SPILLED: dict[int, tuple[weakref.ref, Path]] = {}


def _spilled(name: str, data: pd.DataFrame | pa.Table) -> Path:
    """An in-memory table as a canonical Parquet file for a local Spark session (see the module
    docstring), written once per table object and removed when the object goes: a training run
    registers the same cut tables for every snapshot it builds."""
    hit = _SPILLED.get(id(data))
    if hit is not None and hit[0]() is data and hit[1].exists():
        return hit[1]
    arrow = to_arrow(name, data, large_strings=False) if isinstance(data, pd.DataFrame) else conform_arrow(
        name, data, large_strings=False)
    path = Path(tempfile.mkdtemp(prefix=f"cv_{name}_", dir=_spill_root())) / f"{name}.parquet"
    pq.write_table(arrow, path, row_group_size=SPILL_ROW_GROUP)
    key = id(data)
    _SPILLED[key] = (weakref.ref(data), path)
    weakref.finalize(data, _forget_spill, key, path)
    return path


def _forget_spill(key: int, path: Path) -> None:
    entry = _SPILLED.get(key)
    if entry is not None and entry[1] == path:
        del _SPILLED[key]
    shutil.rmtree(path.parent, ignore_errors=True)


def _spill_root() -> str:
    root = Path(tempfile.gettempdir()) / "customer_value_spark"
    root.mkdir(parents=True, exist_ok=True)
    return str(root)


def _local_session(session: Any) -> bool:
    return is_local(session.sparkContext.master)


def _spark_view(session: Any, name: str, source: Any, mapping: dict[str, str] | None = None) -> Any:
    """A Spark DataFrame of ``name`` in canonical columns and types, from a Parquet path or a
    catalog table (optional columns it lacks are nulls). ``mapping`` (the config's ``columns:``
    for this table, canonical -> the source's name) becomes renames in the plan; it is checked
    against the source's column names by the DuckDB engine's own checks
    (:func:`~customer_value.data.loading.canonical_renames`), so both engines fail alike."""
    raw = session.table(source.name) if isinstance(source, CatalogTable) else session.read.parquet(str(source))
    where = source.name if isinstance(source, CatalogTable) else source
    renames = canonical_renames(name, list(raw.columns), mapping, where)
    found = {renames.get(c, c): c for c in raw.columns}  # canonical -> the source's column
    return raw.selectExpr(*[
        f"CAST({_quoted(found[c]) if c in found else 'NULL'} AS {_SPARK_TYPES[d]}) AS {c}"
        for c, (d, _) in TABLE_COLUMNS[name].items()
    ])


def _quoted(column: str) -> str:
    """A column name as a Spark SQL identifier (any characters a user's file may use)."""
    return "`" + column.replace("`", "``") + "`"


@contextmanager
def registered_catalog(tables: dict[str, str], backend: BaseBackend,
                       columns: dict[str, dict[str, str]] | None = None) -> Iterator[Sources]:
    """Catalog tables (contract name -> catalog name, e.g. from ``settings.spark.tables``) as the
    sources of a Spark backend; they must hold canonical columns (naive-UTC timestamps) under
    their canonical names or the names ``columns`` (the config's mapping) gives."""
    if backend.name != "pyspark":
        raise ValueError("catalog tables are read by the spark engine only")
    for required in ("customers", "transactions"):
        if required not in tables:
            raise InputError(f"spark.tables names no {required!r} table; customers and transactions are required")
    with _registered({name: CatalogTable(table) for name, table in tables.items()}, backend, columns) as sources:
        yield sources


@contextmanager
def registered_files(data_dir: str | Path, backend: BaseBackend,
                     columns: dict[str, dict[str, str]] | None = None) -> Iterator[Sources]:
    """Fast path for canonical ``NAME.parquet`` files: no pandas round trip.

    The files must already be canonical (contract column names, naive-UTC timestamps), e.g.
    written by the simulator or after ``customer-value validate``; a missing optional table is
    an empty one and missing optional columns are nulls. DuckDB gets the files read by
    pyarrow (multi-threaded) and registered as Arrow; Spark reads them itself, and on Spark
    ``data_dir`` may be any URI its file systems know (``hdfs://``, ``s3a://``, ``dbfs:/``) and
    each ``NAME.parquet`` a file or a directory of part files. ``columns`` (the config's mapping,
    canonical -> the file's name) renames columns as :func:`customer_value.data.loading.load_tables`
    would, with the same checks.
    """
    is_spark = backend.name == "pyspark"
    tables: dict[str, pd.DataFrame | pa.Table] = {}
    for name in TABLE_COLUMNS:
        if is_spark:
            path: Any = f"{str(data_dir).rstrip('/')}/{name}.parquet"
            found = _spark_exists(backend._session, path)
        else:
            path = Path(data_dir) / f"{name}.parquet"
            found = path.exists()
        if not found:
            if name in ("customers", "transactions"):
                raise FileNotFoundError(f"required table {name!r} not found as {path}")
            continue
        if is_spark:
            tables[name] = _SparkPath(path)  # type: ignore[assignment]
        else:
            tables[name] = _canonical_file(name, path, (columns or {}).get(name))
    with _registered(tables, backend, columns) as sources:
        yield sources


def _canonical_file(name: str, path: Path, mapping: dict[str, str] | None) -> pa.Table:
    """One canonical Parquet file read by pyarrow: its contract columns, renamed by ``mapping``."""
    found = pq.read_schema(path).names
    renames = canonical_renames(name, found, mapping, path) if mapping else {}
    wanted = [c for c in found if renames.get(c, c) in TABLE_COLUMNS[name]]
    table = pq.read_table(path, columns=wanted)
    return conform_arrow(name, table.rename_columns([renames.get(c, c) for c in wanted]))


@dataclass(frozen=True)
class _SparkPath:
    """A path or URI that Spark reads itself."""

    path: str

    def __str__(self) -> str:
        return self.path


def _spark_exists(session: Any, path: str) -> bool:
    """Whether ``path`` exists on the file system Spark would read it from (local, HDFS, S3, ...)."""
    jvm = session._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return bool(hadoop_path.getFileSystem(session._jsc.hadoopConfiguration()).exists(hadoop_path))


def execute(expr: ibis.Table) -> pd.DataFrame:
    """Run an expression and return pandas (via Arrow on every backend; Spark hands its Arrow
    batches over directly, where Ibis would go through pandas twice)."""
    backend = expr._find_backend()
    if backend.name == "pyspark":
        return spark_arrow(backend, expr).to_pandas()
    return expr.to_pyarrow().to_pandas()


def spark_frame(backend: BaseBackend, expr: ibis.Table) -> Any:
    """The Spark DataFrame of an Ibis expression (nothing runs until an action)."""
    return backend._session.sql(backend.compile(expr))


def spark_arrow(backend: BaseBackend, expr: ibis.Table) -> pa.Table:
    """An expression's result collected as Arrow, in the types Ibis would give (for results, never raw tables)."""
    from ibis.formats.pyarrow import PyArrowData

    return PyArrowData.convert_table(spark_frame(backend, expr).toArrow(), expr.schema())
