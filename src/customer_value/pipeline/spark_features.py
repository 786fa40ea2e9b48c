"""The Spark side of ``--engine spark``: one session from the settings, the contract tables read in
place (a directory of Parquet files or catalog tables), and the features as one Spark DataFrame.

The features are the same Ibis expressions as :func:`customer_value.features.build_features`; here
every group is joined on ``customer_id`` into one wide query, so the rows stay in Spark (the scoring
maps over its partitions) instead of coming back to the driver group by group. Batches of it turn
into exactly the pandas frame the DuckDB engine builds (:func:`as_feature_frame`).

pyspark is imported lazily: the package imports without it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from ibis.backends import BaseBackend

from customer_value.config import Settings, SparkSettings
from customer_value.errors import InputError
from customer_value.features.build import feature_groups, rounded
from customer_value.features.engine import Sources, registered_catalog, registered_files, spark_frame, spark_session


def spark_backend(spark: SparkSettings) -> BaseBackend:
    """An Ibis backend on the session ``spark`` describes (created, or the running one reused)."""
    import ibis

    session = spark_session(spark.master, spark.shuffle_partitions, spark.app_name, dict(spark.conf))
    session.sparkContext.setLogLevel("ERROR")
    return ibis.pyspark.connect(session)


@contextmanager
def spark_sources(backend: BaseBackend, data: Path | None, settings: Settings) -> Iterator[Sources]:
    """The contract tables on Spark: ``NAME.parquet`` files (or directories of part files) under
    ``data``, else the catalog tables of ``settings.spark.tables``, their columns renamed by
    ``settings.columns`` (the plan renames them, with the DuckDB engine's checks). Read in place:
    nothing goes through the driver."""
    if data is not None:
        if isinstance(data, Path) and not data.is_dir():
            raise InputError(f"no data directory at {data}")
        with ExitStack() as stack:
            try:
                src = stack.enter_context(registered_files(data, backend, dict(settings.columns)))
            except FileNotFoundError as exc:  # a required table missing: the user's to fix, not a bug
                raise InputError(str(exc)) from exc
            yield src
    elif settings.spark.tables:
        with registered_catalog(dict(settings.spark.tables), backend, dict(settings.columns)) as src:
            yield src
    else:
        raise InputError("--engine spark needs --data DIR (canonical NAME.parquet files) or catalog tables "
                         "in the config (spark: {tables: {customers: db.customers, transactions: ...}})")


def feature_table(src: Sources, as_of: dt.date, settings: Settings) -> ir.Table:
    """Every feature group joined on ``customer_id``: one query, one row per customer signed up
    before ``as_of``, columns in :func:`build_features`' order (every group covers the population)."""
    groups = [table for _, table in feature_groups(src, as_of, settings)]
    wide = groups[0]
    for table in groups[1:]:
        wide = wide.inner_join(table, "customer_id")
    return wide


def feature_dataframe(src: Sources, as_of: dt.date, settings: Settings) -> tuple[Any, pa.Schema]:
    """The wide feature query as a (lazy) Spark DataFrame, and the Arrow schema its batches are
    read in (:func:`as_feature_frame`)."""
    table = feature_table(src, as_of, settings)
    return spark_frame(src.backend, table), table.schema().to_pyarrow()


def as_feature_frame(batch: pa.Table | pa.RecordBatch, schema: pa.Schema) -> pd.DataFrame:
    """A batch of the feature DataFrame as the pandas frame the DuckDB engine gives for these
    customers: the same Arrow types, then floats rounded as :mod:`customer_value.features.build` rounds."""
    table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
    return rounded(table.select(schema.names).cast(schema).to_pandas())
