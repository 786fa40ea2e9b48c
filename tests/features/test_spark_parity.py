"""The same Ibis expressions on a local PySpark session give DuckDB's results."""

from __future__ import annotations

import pandas as pd
import pytest

from customer_value.config import Settings
from customer_value.data.tables import Tables
from customer_value.features import build_features, build_targets, rfm_summary
from feature_worlds import AS_OF

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="session")
def spark_backend():
    pyspark = pytest.importorskip("pyspark")
    import ibis
    from pyspark.sql import SparkSession

    del pyspark
    session = (
        SparkSession.builder.master("local[2]")
        .appName("customer-value-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield ibis.pyspark.connect(session)
    session.stop()


def _same(spark: pd.DataFrame, duck: pd.DataFrame, key: str | None = "customer_id") -> None:
    if key is not None:
        spark = spark.sort_values(key).reset_index(drop=True)
        duck = duck.sort_values(key).reset_index(drop=True)
    else:
        spark, duck = spark.sort_index(), duck.sort_index()
    assert list(spark.columns) == list(duck.columns)
    pd.testing.assert_frame_equal(spark, duck, check_dtype=False, check_exact=False, rtol=1e-6, atol=1e-6)


def test_features(world: Tables, pooled_settings: Settings, spark_backend) -> None:
    _same(build_features(world, AS_OF, pooled_settings, engine=spark_backend), build_features(world, AS_OF, pooled_settings))


def test_targets(world: Tables, pooled_settings: Settings, spark_backend) -> None:
    _same(build_targets(world, AS_OF, pooled_settings, engine=spark_backend), build_targets(world, AS_OF, pooled_settings))


@pytest.mark.parametrize("unit", ["days", "weeks"])
def test_rfm_summary(world: Tables, spark_backend, unit: str) -> None:
    settings = Settings(time_unit=unit)
    _same(rfm_summary(world, AS_OF, settings, engine=spark_backend), rfm_summary(world, AS_OF, settings), key=None)


def test_features_from_parquet_files(world: Tables, pooled_settings: Settings, spark_backend, tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from customer_value.features import build_features_from_files

    for name, frame in world.items():
        if name != "invoices":  # a missing optional table
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / f"{name}.parquet")
    _same(
        build_features_from_files(tmp_path, AS_OF, pooled_settings, engine=spark_backend),
        build_features_from_files(tmp_path, AS_OF, pooled_settings),
    )


def _write_world(world: Tables, directory) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    for name, frame in world.items():
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), directory / f"{name}.parquet")


def _wide_features(src, settings: Settings) -> pd.DataFrame:
    """The Spark scoring path's features: one wide query, read back batch-wise as the executors read it."""
    from customer_value.pipeline.spark_features import as_feature_frame, feature_dataframe

    frame, schema = feature_dataframe(src, AS_OF, settings)
    return as_feature_frame(frame.toArrow(), schema)


def test_wide_feature_query_equals_the_groups(world: Tables, pooled_settings: Settings, spark_backend, tmp_path) -> None:
    """The one-query feature table the Spark scoring maps over is build_features' frame, column for column."""
    from customer_value.pipeline.spark_features import spark_sources

    _write_world(world, tmp_path)
    with spark_sources(spark_backend, tmp_path, pooled_settings) as src:
        wide = _wide_features(src, pooled_settings)
    _same(wide, build_features(world, AS_OF, pooled_settings))


def test_catalog_tables(world: Tables, pooled_settings: Settings, spark_backend, tmp_path) -> None:
    """Tables named in spark.tables are read from the catalog (here: views over the files)."""
    from customer_value.pipeline.spark_features import spark_sources

    _write_world(world, tmp_path)
    session = spark_backend._session
    names = {}
    for name, _ in world.items():
        if name == "support_tickets":  # an optional table the catalog does not have
            continue
        session.read.parquet(str(tmp_path / f"{name}.parquet")).createOrReplaceTempView(f"cv_catalog_{name}")
        names[name] = f"cv_catalog_{name}"
    settings = pooled_settings.with_overrides(spark={"tables": names})
    try:
        with spark_sources(spark_backend, None, settings) as src:
            wide = _wide_features(src, pooled_settings)
    finally:
        for view in names.values():
            session.catalog.dropTempView(view)
    no_tickets = Tables(**{**dict(world.items()), "support_tickets": world.support_tickets.iloc[:0]})
    _same(wide, build_features(no_tickets, AS_OF, pooled_settings))
