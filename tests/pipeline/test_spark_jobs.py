"""`score --engine spark` and `train --engine spark` on a local Spark session (``local[2]``) give the
DuckDB engine's results (score rows, cash flows, report, scoring run; the config's column mapping),
and no raw table is collected to the driver on the way.

The scoring world has :data:`N_SPARK` customers (issue 17's acceptance: 20k); the model is the
pipeline tests' session model. Training runs on both engines on that same world.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from session_world import AS_OF, FAST

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


def _store_copy(trained_store, root: Path) -> str:
    """A copy of the session's store (same model, same earlier scorings): each engine logs its
    scoring run into its own, so neither is the other's drift baseline."""
    db = root / "mlflow" / "mlflow.db"
    db.parent.mkdir(parents=True)
    shutil.copy(trained_store.tracking_uri.removeprefix("sqlite:///"), db)
    return f"sqlite:///{db}"


@pytest.fixture(scope="module")
def scored(spark, spark_world, trained_store, tmp_path_factory):
    """The world scored by both engines with the session model, each with its report, cash flows
    and MLflow scoring run (the Spark run under a row guard)."""
    import mlflow

    from customer_value.pipeline.score import score
    from customer_value.pipeline.spark_scoring import score_on_spark
    from customer_value.valuation.churn_drivers import SAMPLE_ROWS

    out = tmp_path_factory.mktemp("spark-scores")
    stores = {engine: _store_copy(trained_store, out / engine) for engine in ("spark", "duckdb")}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", stores["spark"])
        mp.setenv("CUSTOMER_VALUE_HOME", str(trained_store.home))
        mlflow.set_tracking_uri(stores["spark"])
        guard = RowGuard(SAMPLE_ROWS).install(mp)
        result = score_on_spark(spark_world, AS_OF, trained_store.model_uri, out / "spark-scores", backend=spark,
                                report=out / "spark.html", cashflows=out / "spark-flows")
        mp.undo()
        mp.setenv("MLFLOW_TRACKING_URI", stores["duckdb"])
        mp.setenv("CUSTOMER_VALUE_HOME", str(trained_store.home))
        mlflow.set_tracking_uri(stores["duckdb"])
        duck = score(spark_world, AS_OF, trained_store.model_uri, out / "duckdb.parquet", report=out / "duckdb.html",
                     cashflows=out / "duckdb-flows.parquet")
    mlflow.set_tracking_uri(trained_store.tracking_uri)
    return result, guard, pd.read_parquet(result.out), duck.scores, duck, stores


def test_spark_scores_equal_duckdb(scored, spark_world) -> None:
    result, _, spark_scores, duck, *_ = scored
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
    flows = Path(result.cashflows)
    assert flows.is_dir() and any(flows.glob("*.parquet")) and (flows / "_SUCCESS").exists()
    for written in (out, flows):  # no temp left behind
        assert not [p for p in written.parent.iterdir() if p.name.startswith(f".{written.name}.")]


def _numbers_equal(left: pd.DataFrame, right: pd.DataFrame) -> None:
    """Same columns; numbers to 1e-9, everything else equal as text."""
    assert list(left.columns) == list(right.columns)
    for column in right.columns:
        if pd.api.types.is_numeric_dtype(right[column]) and not pd.api.types.is_bool_dtype(right[column]):
            np.testing.assert_allclose(left[column].to_numpy(float), right[column].to_numpy(float),
                                       rtol=0, atol=1e-9, err_msg=column)
        else:
            present = right[column].notna()
            assert (left[column].notna() == present).all(), column
            assert (left.loc[present, column].astype(str) == right.loc[present, column].astype(str)).all(), column


def test_spark_cashflows_equal_duckdb(scored) -> None:
    result, _, spark_scores, _, duck, _ = scored
    key = ["customer_id", "month"]
    ours = pd.read_parquet(result.cashflows).sort_values(key).reset_index(drop=True)
    theirs = pd.read_parquet(duck.out.parent / "duckdb-flows.parquet")
    theirs = theirs.sort_values(key).reset_index(drop=True)
    months = ours.groupby("customer_id").size()
    assert not ours.duplicated(key).any() and set(months.index) == set(spark_scores["customer_id"])
    assert months.nunique() == 1 and result.cashflow_rows == len(ours) == len(spark_scores) * months.iloc[0]
    for frame in (ours, theirs):  # the month as a day, whatever unit or zone the engine's Parquet gave it
        month = pd.to_datetime(frame["month"])
        frame["month"] = (month.dt.tz_convert(None) if month.dt.tz is not None else month).dt.strftime("%Y-%m-%d")
    _numbers_equal(ours, theirs)


def test_spark_report_and_scoring_run_equal_duckdb(scored) -> None:
    """The report's headline and the logged metrics are the DuckDB engine's (the sensitivity table
    included: total_value.horizon_*), each engine logging into its own copy of the store."""
    from mlflow import MlflowClient

    from customer_value.pipeline.score import READ_BACK_SKIPS
    from customer_value.reporting.sections import headline

    result, _, _, _, duck, stores = scored
    read = [c for c in duck.scores.columns if c not in READ_BACK_SKIPS]  # the rows as read back
    assert list(result.scores.columns) == read
    assert (result.scores.dtypes == duck.scores[read].dtypes).all()  # the read-back frame is the DuckDB engine's
    ours, theirs = headline(result.scores, "t", "EUR"), headline(duck.scores, "t", "EUR")
    assert [f.label for f in ours.facts] == [f.label for f in theirs.facts]
    for mine, other in zip(ours.facts, theirs.facts):
        assert float(mine.value) == pytest.approx(float(other.value), rel=1e-9, abs=1e-9), mine.label
    printed = re.compile(r'<div class="label">(.*?)</div>\s*<div class="figure-number">(.*?)</div>', re.S)
    facts = {engine: printed.findall(page.read_text()) for engine, page in (("spark", result.report),
                                                                           ("duckdb", duck.report))}
    assert len(facts["duckdb"]) >= len(theirs.facts)
    assert facts["spark"] == facts["duckdb"]  # every figure on the page (headline, sections) as printed

    runs = {engine: MlflowClient(tracking_uri=stores[engine]).get_run(run_id)
            for engine, run_id in (("spark", result.run_id), ("duckdb", duck.run_id))}
    metrics = {engine: run.data.metrics for engine, run in runs.items()}
    assert metrics["spark"].keys() == metrics["duckdb"].keys()
    assert {"total_value.horizon_365d", "total_value.horizon_1095d"} <= metrics["spark"].keys()
    for name, value in metrics["duckdb"].items():
        assert metrics["spark"][name] == pytest.approx(value, rel=1e-9, abs=1e-9), name
    tags = {engine: {k: v for k, v in run.data.tags.items() if k.startswith("customer_value.")}
            for engine, run in runs.items()}
    assert tags["spark"] == tags["duckdb"]
    assert result.drift == pytest.approx(duck.drift, rel=1e-9, abs=1e-9) and result.quality == duck.quality
    # the report's months: summed per partition on Spark, per batch on DuckDB, the same totals and band
    assert result.cash_flows is not None and len(result.cash_flows) == len(duck.cash_flows) >= 12
    pd.testing.assert_frame_equal(result.cash_flows, duck.cash_flows, check_exact=False, rtol=1e-9, atol=1e-6)
    assert "cash_flows_by_month.png" in result.report.read_text()


def test_no_raw_table_reaches_the_driver(scored, spark_world) -> None:
    """The guard allowed at most the churn drivers' sample; every raw table (and the feature table) is larger."""
    _, guard, *_ = scored
    events = pd.read_parquet(spark_world / "engagement_events.parquet", columns=["customer_id"])
    assert 0 < guard.largest <= guard.limit
    assert len(events) > 10 * guard.limit and N_SPARK > guard.limit


RENAMED = {"customers": {"customer_id": "CustomerID", "signup_at": "Signed Up"},
           "transactions": {"customer_id": "cust", "amount": "Amount (EUR)"}}
"""A ``columns:`` mapping (canonical -> the user's name) for :func:`_renamed_world`."""


def _renamed_world(world: Path, out: Path) -> Path:
    """``world`` with the columns of :data:`RENAMED` under the user's names (the rest as they are)."""
    out.mkdir()
    for path in world.glob("*.parquet"):
        frame = pd.read_parquet(path)
        mapping = RENAMED.get(path.stem, {})
        frame.rename(columns={c: u for c, u in mapping.items()}).to_parquet(out / path.name, index=False)
    return out


def test_spark_applies_the_columns_mapping(spark, small_world, trained, tmp_path) -> None:
    """Renamed source columns plus a ``columns:`` mapping in --config score as the canonical files
    do, through the command line (with the cash flows, without a run: the report is the fixture's)."""
    import yaml
    from typer.testing import CliRunner

    from customer_value.cli import app
    from customer_value.pipeline.score import score

    renamed = _renamed_world(small_world, tmp_path / "renamed")
    config = tmp_path / "columns.yaml"
    config.write_text(yaml.safe_dump({"columns": RENAMED}))
    out, flows = tmp_path / "spark", tmp_path / "flows"
    result = CliRunner().invoke(app, ["score", "--data", str(renamed), "--as-of", AS_OF.isoformat(), "--model",
                                      trained.model_uri, "--out", str(out), "--config", str(config), "--no-log",
                                      "--cashflows", str(flows), "--engine", "spark",
                                      "--spark-master", "local[2]"])
    assert result.exit_code == 0, (result.output, result.exception)
    said = " ".join(result.output.split())
    assert "cash flows:" in said and "drift" not in said
    assert any(flows.glob("*.parquet"))
    duck = score(small_world, AS_OF, trained.model_uri, tmp_path / "duckdb.parquet", log_run=False)
    ours = pd.read_parquet(out).sort_values("customer_id").reset_index(drop=True)
    _numbers_equal(ours, duck.scores.sort_values("customer_id").reset_index(drop=True))


@pytest.mark.parametrize("mapping", [{"customers": {"signup_at": "joined"}},
                                     {"transactions": {"gross_margin": "amount"}}])
def test_a_mapping_that_does_not_fit_fails_as_on_duckdb(spark, small_world, trained, tmp_path, mapping) -> None:
    from customer_value.config import Settings
    from customer_value.data.loading import DataValidationError
    from customer_value.pipeline.score import score
    from customer_value.pipeline.spark_scoring import score_on_spark

    settings = Settings(columns=mapping)
    with pytest.raises(DataValidationError) as duck:
        score(small_world, AS_OF, trained.model_uri, tmp_path / "duckdb.parquet", settings, log_run=False)
    with pytest.raises(DataValidationError) as ours:
        score_on_spark(small_world, AS_OF, trained.model_uri, tmp_path / "spark", settings, backend=spark,
                       log_run=False)
    assert str(ours.value) == str(duck.value)
    assert "names column(s) the file lacks" in str(ours.value) or "collide" in str(ours.value)


def test_train_on_spark_gives_the_same_probabilistic_parameters(spark, spark_world, _migrated_store, tmp_path,
                                                               monkeypatch) -> None:
    """`train --engine spark` and `train` (DuckDB) on the scoring world (issue 17: the same world)
    fit the same BG/NBD and Gamma-Gamma parameters. Two snapshots (one to train, one to validate),
    the fewest with which every model is fitted: the probabilistic models are fitted on the features
    as of the training date, whatever the boosted models stack."""
    import yaml
    from typer.testing import CliRunner

    from customer_value.cli import app
    from customer_value.tracking.model import load_model

    import mlflow

    db = tmp_path / "mlflow" / "mlflow.db"
    db.parent.mkdir()
    shutil.copy(_migrated_store, db)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    monkeypatch.setenv("CUSTOMER_VALUE_HOME", str(tmp_path / "home"))
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    config = tmp_path / "two-snapshots.yaml"
    config.write_text(yaml.safe_dump({**FAST, "snapshots": {"count": 2, "spacing_days": 30}}))
    models = {}
    for engine in ("duckdb", "spark"):
        spark_only = ["--spark-master", "local[2]"] if engine == "spark" else []
        result = CliRunner().invoke(app, ["train", "--data", str(spark_world), "--as-of", AS_OF.isoformat(),
                                          "--experiment", f"train-{engine}", "--config", str(config),
                                          "--no-backtest", "--engine", engine, *spark_only])
        assert result.exit_code == 0, (engine, result.output, result.exception)
        models[engine] = load_model(result.stdout.strip().splitlines()[-1]).value_model
    for model in models.values():  # every model fitted, on either engine
        assert all(getattr(model, part) is not None for part in ("churn_model", "cost_model", "margin_model", "drain_model"))
    for part in ("purchase_model", "spend_model"):
        ours, theirs = getattr(models["spark"], part).params_, getattr(models["duckdb"], part).params_
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


def test_validation_report_is_refused_on_spark(small_world, tmp_path) -> None:
    from typer.testing import CliRunner

    from customer_value.cli import app

    result = CliRunner().invoke(app, ["score", "--data", str(small_world), "--as-of", AS_OF.isoformat(), "--model",
                                      "models:/x/1", "--out", str(tmp_path / "s"), "--engine", "spark",
                                      "--report", str(tmp_path / "r.html"), "--cashflows", str(tmp_path / "f"),
                                      "--validation-report", str(tmp_path / "v.csv")])
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert "--validation-report needs --engine duckdb" in said and "validates every row" in said
    assert "--report" not in said.replace("--validation-report", "") and "--cashflows" not in said


def test_spark_only_options_are_refused_without_spark(small_world, tmp_path) -> None:
    from typer.testing import CliRunner

    from customer_value.cli import app

    result = CliRunner().invoke(app, ["score", "--data", str(small_world), "--as-of", AS_OF.isoformat(), "--model",
                                      "models:/x/1", "--out", str(tmp_path / "s.parquet"), "--spark-master", "local[2]"])
    assert result.exit_code == 2 and "--spark-master needs --engine spark" in result.output
