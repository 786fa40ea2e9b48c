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
