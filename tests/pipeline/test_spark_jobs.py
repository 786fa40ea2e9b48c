"""`score --engine spark` and `train --engine spark` on a local Spark session (``local[2]``) give the
DuckDB engine's results, and no raw table is collected to the driver on the way.

The scoring world has :data:`N_SPARK` customers (issue 17's acceptance: 20k); the model is the
pipeline tests' session model. Training runs on the 1,500-customer session world (its probabilistic
parameters come from the features as of the training date, which is what the engines build).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from session_world import AS_OF

pytestmark = [pytest.mark.spark, pytest.mark.slow]

N_SPARK = int(os.environ.get("CV_SPARK_TEST_CUSTOMERS", "20000"))
"""Customers of the scoring world (``CV_SPARK_TEST_CUSTOMERS`` overrides it for a quick run)."""


@pytest.fixture(scope="module")
def spark():
    """An Ibis backend on a local[2] session, made as the command line makes it."""
    pytest.importorskip("pyspark")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java runtime (make test installs one)")
    from customer_value.config import SparkSettings
    from customer_value.pipeline.spark_features import spark_backend

    backend = spark_backend(SparkSettings(master="local[2]", shuffle_partitions=2, app_name="customer-value-tests",
                                          conf={"spark.driver.memory": "1g", "spark.default.parallelism": "2"}))
    yield backend


@pytest.fixture(scope="module")
def spark_world(tmp_path_factory) -> Path:
    from customer_value.simulation.world import simulate_world, write_world

    out = tmp_path_factory.mktemp("spark-world")
    write_world(simulate_world(N_SPARK, 23), out)
    return out


class RowGuard:
    """Fails any collect to the driver of more than ``limit`` rows (DataFrame and RDD alike)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.largest = 0

    def check(self, rows: int, what: str) -> None:
        self.largest = max(self.largest, rows)
        assert rows <= self.limit, f"{what} brought {rows:,} rows to the driver (limit {self.limit:,})"

    def install(self, monkeypatch: pytest.MonkeyPatch) -> "RowGuard":
        from pyspark import RDD
        from pyspark.sql import DataFrame

        guard = self

        def wrap(cls, name, count):
            original = getattr(cls, name)

            def guarded(self, *args, **kwargs):
                result = original(self, *args, **kwargs)
                guard.check(count(result), f"{cls.__name__}.{name}")
                return result

            monkeypatch.setattr(cls, name, guarded)

        for name in ("collect", "take", "tail"):
            wrap(DataFrame, name, len)
        wrap(DataFrame, "toPandas", len)
        wrap(DataFrame, "toArrow", lambda table: table.num_rows)
        wrap(DataFrame, "toLocalIterator", lambda _: guard.limit + 1)  # streams everything: never allowed
        for name in ("collect", "take"):
            wrap(RDD, name, len)
        return self


@pytest.fixture(scope="module")
def scored(spark, spark_world, trained_store, tmp_path_factory):
    """The world scored by both engines with the session model (the Spark run under a row guard)."""
    from customer_value.pipeline.score import score
    from customer_value.pipeline.spark_scoring import score_on_spark
    from customer_value.valuation.churn_drivers import SAMPLE_ROWS

    out = tmp_path_factory.mktemp("spark-scores")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", trained_store.tracking_uri)
        mp.setenv("CUSTOMER_VALUE_HOME", str(trained_store.home))
        import mlflow

        mlflow.set_tracking_uri(trained_store.tracking_uri)
        guard = RowGuard(SAMPLE_ROWS).install(mp)
        result = score_on_spark(spark_world, AS_OF, trained_store.model_uri, out / "spark", backend=spark)
        mp.undo()
        mp.setenv("MLFLOW_TRACKING_URI", trained_store.tracking_uri)
        mp.setenv("CUSTOMER_VALUE_HOME", str(trained_store.home))
        duck = score(spark_world, AS_OF, trained_store.model_uri, out / "duckdb.parquet", log_run=False)
    return result, guard, pd.read_parquet(result.out), duck.scores


def test_spark_scores_equal_duckdb(scored, spark_world) -> None:
    result, _, spark_scores, duck = scored
    customers = pd.read_parquet(spark_world / "customers.parquet")
    population = customers.loc[customers["signup_at"] < pd.Timestamp(AS_OF), "customer_id"]
    assert spark_scores["customer_id"].is_unique
    assert set(spark_scores["customer_id"]) == set(population) and result.rows == len(population)
    assert list(spark_scores.columns) == list(duck.columns)
    spark_scores = spark_scores.sort_values("customer_id").reset_index(drop=True)
    duck = duck.sort_values("customer_id").reset_index(drop=True)
    numeric = [c for c in duck.columns if pd.api.types.is_numeric_dtype(duck[c]) and not pd.api.types.is_bool_dtype(duck[c])]
    assert "customer_value" in numeric and "expected_cost_to_serve" in numeric
    for column in numeric:
        np.testing.assert_allclose(spark_scores[column].to_numpy(float), duck[column].to_numpy(float),
                                   rtol=0, atol=1e-9, err_msg=column)
    for column in (c for c in duck.columns if c not in numeric):
        left, right = spark_scores[column], duck[column]
        assert (left.isna() == right.isna()).all(), column
        assert (left[left.notna()].astype(str) == right[right.notna()].astype(str)).all(), column


def test_spark_output_is_a_committed_directory(scored) -> None:
    result, *_ = scored
    out = Path(result.out)
    assert out.is_dir() and any(out.glob("*.parquet")) and (out / "_SUCCESS").exists()
    assert (out / "_customer_value.json").exists()  # the metadata whatif reprices with
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]  # no temp left behind


def test_no_raw_table_reaches_the_driver(scored, spark_world) -> None:
    """The guard allowed at most the churn drivers' sample; every raw table (and the feature table) is larger."""
    _, guard, *_ = scored
    events = pd.read_parquet(spark_world / "engagement_events.parquet", columns=["customer_id"])
    assert 0 < guard.largest <= guard.limit
    assert len(events) > 10 * guard.limit and N_SPARK > guard.limit


def test_train_on_spark_gives_the_same_probabilistic_parameters(spark, small_world, fast_config, trained_store,
                                                               _migrated_store, tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from customer_value.cli import app
    from customer_value.tracking.model import load_model

    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_store.tracking_uri)
    mlflow.set_tracking_uri(trained_store.tracking_uri)
    duck = load_model(trained_store.model_uri).value_model

    db = tmp_path / "mlflow" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(_migrated_store, db)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    monkeypatch.setenv("CUSTOMER_VALUE_HOME", str(tmp_path / "home"))
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    result = CliRunner().invoke(app, ["train", "--data", str(small_world), "--as-of", AS_OF.isoformat(),
                                      "--experiment", "spark-train", "--config", str(fast_config), "--no-backtest",
                                      "--engine", "spark", "--spark-master", "local[2]"])
    assert result.exit_code == 0, (result.output, result.exception)
    spark_model = load_model(result.stdout.strip().splitlines()[-1]).value_model
    for part in ("purchase_model", "spend_model"):
        ours, theirs = getattr(spark_model, part).params_, getattr(duck, part).params_
        assert ours.keys() == theirs.keys()
        for name in ours:
            assert ours[name] == pytest.approx(theirs[name], rel=0, abs=1e-9), (part, name)


def test_missing_java_is_a_clear_error(monkeypatch) -> None:
    from customer_value.errors import CustomerValueError
    from customer_value.features import engine

    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(engine.shutil, "which", lambda _: None)
    with pytest.raises(CustomerValueError, match=r"Java runtime.*customer-value\[spark\]"):
        engine._require_java()


def test_missing_pyspark_is_a_clear_error(monkeypatch) -> None:
    import sys

    from customer_value.errors import CustomerValueError
    from customer_value.features import engine

    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(CustomerValueError, match=r"pip install 'customer-value\[spark\]'"):
        engine._pyspark_session_class()


def test_spark_only_options_are_refused_without_spark(small_world, tmp_path) -> None:
    from typer.testing import CliRunner

    from customer_value.cli import app

    result = CliRunner().invoke(app, ["score", "--data", str(small_world), "--as-of", AS_OF.isoformat(), "--model",
                                      "models:/x/1", "--out", str(tmp_path / "s.parquet"), "--spark-master", "local[2]"])
    assert result.exit_code == 2 and "--spark-master needs --engine spark" in result.output
