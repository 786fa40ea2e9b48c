"""`customer-value score --engine spark`: the weekly batch on a Spark session, rows never on the driver.

load the model (on the driver, once) → the contract tables read in place by Spark (Parquet files
or catalog tables) → the features as one wide Spark query (:mod:`.spark_features`) → two passes
over its partitions, because two scoring steps read the whole scored population (the total-cost
model's portfolio level and the indirect pools' shares, contract section 8):

1. per Arrow batch, the boosted models (the expensive part), kept beside the features, and the
   batch's :class:`~customer_value.valuation.portfolio.PortfolioTotals`, which Spark sums into one row;
2. per Arrow batch, the score rows priced with the population's totals, explained, written; over
   the same cached pass-1 frame, the value at the other horizons of the sensitivity table (summed
   by Spark into one row, like the totals) and, when asked, the cash flows per customer × month
   (written by Spark like the scores).

The tables' columns are renamed by the config's ``columns:`` mapping in the Spark plan, with the
DuckDB engine's checks. The same model, ``as_of`` and data give the DuckDB engine's rows, cash flows,
report and scoring run (to 1e-9; tests/pipeline/test_spark_jobs.py). Only small, bounded things
reach the driver through Spark: counts, the one-row sums, and the sample of at most
:data:`~customer_value.valuation.churn_drivers.SAMPLE_ROWS` feature rows on which the churn drivers
choose their trees (the same rows the DuckDB engine samples). Outputs are directories of Parquet
part files written to a temporary sibling and renamed into place, so they appear whole or not at
all; ``_customer_value.json`` in the scores' carries what the single-file engine keeps in its
Parquet metadata (what ``whatif`` reprices with).

The HTML report and the MLflow scoring run (drift, score distribution) read the score rows: after
the directory is committed, the driver reads them back with pyarrow (the written score rows, one
per customer, without the churn drivers' texts; never a raw table) and hands them to
:func:`~customer_value.pipeline.score.report_and_log`, the DuckDB engine's own ending. So the
driver holds the score columns of the whole base for those two (as the DuckDB engine does);
``--no-log`` without ``--report`` skips the read. Not on this path: ``--validation-report``, which
validates every row of every table (a DuckDB-engine feature). pyspark is imported lazily.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from customer_value.config import Settings
from customer_value.data.writing import check_output
from customer_value.errors import ConfigError, InputError, OutputError
from customer_value.pipeline.progress import Reporter, StageClock, reporter
from customer_value.pipeline.score import (READ_BACK_SKIPS, other_horizons, report_and_log, score_rows,
                                           scoring_settings, with_own_horizon)
from customer_value.pipeline.spark_features import as_feature_frame, feature_dataframe, spark_backend, spark_sources
from customer_value.tracking.model import LoadedModel, load_model, model_input, score_batch
from customer_value.tracking.store import setup_tracking
from customer_value.valuation.cashflows import monthly_sums, portfolio_from_sums
from customer_value.valuation.churn_drivers import driver_truncation, sample_positions
from customer_value.valuation.portfolio import PortfolioTotals
from customer_value.valuation.value import BoostedPredictions, ValueModel
from customer_value.valuation.whatif import METADATA_KEY

Progress = Callable[[str], None] | Reporter
METADATA_FILE = "_customer_value.json"
"""Beside the part files (Spark skips names starting with ``_``): what a single score file keeps
in its Parquet metadata (horizon, discounting, rates and pools, segment cut points)."""
TOTALS = "__totals_"
HORIZON = "__horizon_"


@dataclass
class SparkScoreResult:
    out: str
    rows: int
    totals: PortfolioTotals
    model_uri: str
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time per stage (session, features, pass 1, totals, pass 2 and write, ...)."""
    scores: pd.DataFrame | None = None
    """The written rows read back (without :data:`READ_BACK_SKIPS`, sorted by ``customer_id``) when
    the report or the scoring run needed them."""
    horizon_totals: pd.Series | None = None
    report: Path | None = None
    run_id: str | None = None
    drift: dict[str, float] = field(default_factory=dict)
    quality: dict[str, float] = field(default_factory=dict)
    drift_against: str | None = None
    cashflows: str | None = None
    cashflow_rows: int = 0
    cash_flows: pd.DataFrame | None = None
    """The portfolio's months (:func:`~customer_value.valuation.cashflows.portfolio_by_month`), when
    the report or the scoring run needed them."""


def score_on_spark(data: str | Path | None, as_of: dt.date, model: str, out: str | Path,
                   settings: Settings | None = None, horizon_days: int | None = None,
                   progress: Progress | None = None, backend: Any = None, report: Path | None = None,
                   log_run: bool = True, cashflows: str | Path | None = None) -> SparkScoreResult:
    """Score every customer signed up before ``as_of`` on Spark; write a Parquet directory to ``out``.

    ``data`` is a directory or URI of ``NAME.parquet`` files (columns renamed by
    ``settings.columns``), or ``None`` for the catalog tables of ``settings.spark.tables``. The
    session comes from ``settings.spark`` (master, app name, conf) unless ``backend`` (an Ibis
    pyspark backend) is given. ``report``, ``log_run`` and ``cashflows`` are the DuckDB engine's
    (:func:`customer_value.pipeline.score.score`): an HTML report, a scoring run in MLflow, and one
    row per customer × month, here a Parquet directory committed like the scores."""
    say = reporter(progress)
    clock = StageClock()
    given = settings or Settings()
    target = _output_location(out)
    flows_target = _output_location(cashflows, "cash flows") if cashflows is not None else None
    if report is not None:
        check_output(report, "report")
    if log_run:
        setup_tracking()  # a tracking server that is down fails now, not after the scoring
    with say.step(f"loading model {model}"), clock("load model"):
        loaded = load_model(model)
    model_settings = scoring_settings(loaded.settings, _without_spark(settings))
    value_model = loaded.value_model
    if value_model.activity_model is None:
        raise ConfigError(f"model {loaded.uri} has no activity forecasts: its drain drivers rank the whole "
                          "population at once, which the Spark engine does not do; score it with --engine duckdb")
    horizon = horizon_days or model_settings.horizon_days
    horizons = other_horizons(horizon)
    read_back = report is not None or log_run
    if backend is None:
        with say.step(f"starting Spark ({given.spark.master})"), clock("session"):
            backend = spark_backend(given.spark)
    session = backend._session
    read_settings = model_settings.with_overrides(spark=given.spark.model_dump())
    with spark_sources(backend, Path(data) if _is_local(data) else data, read_settings) as src:  # type: ignore[arg-type]
        from pyspark import StorageLevel

        features, schema = feature_dataframe(src, as_of, model_settings)
        features = features.persist(StorageLevel.MEMORY_AND_DISK)  # counted, sampled, then read by pass 1
        first = None
        try:
            with say.step(f"features as of {as_of} (Spark)"), clock("features"):
                population = features.count()
            if population == 0:
                raise InputError(f"no customer signed up before {as_of}")
            say.say(f"{population:,} customers signed up before {as_of}")
            with say.step("churn drivers: choosing the trees on a sample"), clock("sample"):
                sample = _sample(features, schema, population)
                truncated = driver_truncation(value_model, sample) if value_model.churn_model is not None else None
            job = _Job(_bundle(value_model), loaded.uri, loaded.version, loaded.alias, schema, as_of, horizon_days,
                       truncated, tuple(horizons))
            example = job.pass_one(sample.head(64))  # the output schemas, from a few rows on the driver
            one_schema = _spark_arrow_schema(pa.Schema.from_pandas(example, preserve_index=False))
            first = features.mapInArrow(job.arrow_pass_one(one_schema), _spark_schema(one_schema))
            first = first.persist(StorageLevel.MEMORY_AND_DISK)  # pass 2 reads the features and predictions here
            with say.step(f"pass 1: boosted models over {population:,} customers"), clock("pass 1 and totals"):
                totals = _sum_totals(first, one_schema)
            features.unpersist()
            if totals.rows != population:
                raise AssertionError(f"pass 1 scored {totals.rows:,} rows for {population:,} customers; this is a bug")
            job.totals = totals.to_dict()
            example_rows, notes = job.pass_two(example, totals, with_notes=True)
            rows_schema = _spark_arrow_schema(pa.Schema.from_pandas(example_rows, preserve_index=False))
            scores = first.mapInArrow(job.arrow_pass_two(rows_schema), _spark_schema(rows_schema))
            with say.step(f"pass 2: scoring and writing {population:,} rows to {target}"), clock("pass 2 and write"):
                written = _write_atomically(session, scores, target, {METADATA_KEY: value_model.scoring_metadata(horizon)})
            by_horizon, cash_flows = None, None
            if read_back:
                with say.step(f"value at {', '.join(map(str, horizons))} days"), clock("value at other horizons"):
                    parts = first.mapInArrow(job.arrow_by_horizon(), _spark_schema(_by_horizon_schema(horizons)))
                    by_horizon = _sum_by_horizon(parts, horizons)
                with say.step("cash flows by month"), clock("cash flows by month"):
                    months_schema = _spark_arrow_schema(pa.Schema.from_pandas(job.monthly(example, totals),
                                                                              preserve_index=False))
                    months = first.mapInArrow(job.arrow_monthly(months_schema), _spark_schema(months_schema))
                    cash_flows = _sum_months(months, months_schema)
            flow_rows = 0
            if flows_target is not None:
                flows_schema = _spark_arrow_schema(pa.Schema.from_pandas(job.cashflows(example, totals),
                                                                         preserve_index=False))
                flows = first.mapInArrow(job.arrow_cashflows(flows_schema), _spark_schema(flows_schema))
                with say.step(f"cash flows: writing to {flows_target}"), clock("cash flows"):
                    flow_rows = _write_atomically(session, flows, flows_target, None, "cash flows")
        finally:
            features.unpersist()
            if first is not None:
                first.unpersist()
    if written != population:
        raise AssertionError(f"wrote {written:,} rows for {population:,} customers; this is a bug")
    say.say(f"wrote {written:,} rows to {target}")
    result = SparkScoreResult(target, written, totals, loaded.uri, clock.seconds, cashflows=flows_target,
                              cashflow_rows=flow_rows, cash_flows=cash_flows)
    if not read_back:
        return result
    with say.step(f"reading the written scores back from {target}"), clock("read back"):
        result.scores = read_back_scores(target, example_rows.dtypes)
    if len(result.scores) != written:
        raise AssertionError(f"read {len(result.scores):,} score rows back of {written:,} written; this is a bug")
    result.horizon_totals = with_own_horizon(by_horizon, horizon, result.scores["customer_value"].sum())
    told = report_and_log(result.scores, result.horizon_totals, loaded, model_settings, as_of, target,
                          data if data is not None else _catalog_names(read_settings), report, log_run, notes,
                          say, clock, cash_flows)
    result.report, result.run_id, result.drift, result.quality = told.report, told.run_id, told.drift, told.quality
    result.drift_against = told.drift_against
    return result


def read_back_scores(out: str, dtypes: pd.Series | None = None) -> pd.DataFrame:
    """The written score rows read back on the driver by pyarrow (outside Spark), without
    :data:`READ_BACK_SKIPS`, sorted by ``customer_id`` as the DuckDB engine's file is, in the score
    rows' pandas ``dtypes`` (Spark's Parquet has no pandas metadata): what the report and the scoring
    run read. These are score rows, one per customer, never a raw table."""
    import pyarrow.dataset as ds

    location = _arrow_location(out)
    try:  # part files only: pyarrow skips names starting with "_" or "." (_SUCCESS, the metadata, .crc)
        dataset = ds.dataset(location, format="parquet")
        table = dataset.to_table(columns=[c for c in dataset.schema.names if c not in READ_BACK_SKIPS])
    except (OSError, ValueError) as exc:
        raise OutputError(f"the scores are written to {out}, but pyarrow cannot read them back for the report and the "
                          f"scoring run ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); score with "
                          "--no-log and without --report, or write to a location pyarrow reads") from exc
    frame = table.to_pandas().sort_values("customer_id", kind="stable").reset_index(drop=True)
    for column, dtype in (dtypes.items() if dtypes is not None else ()):
        if column in frame and frame[column].dtype != dtype:
            values = frame[column]
            if isinstance(values.dtype, pd.DatetimeTZDtype):
                values = values.dt.tz_convert("UTC").dt.tz_localize(None)
            frame[column] = values.astype(dtype)
    return frame


def _arrow_location(out: str) -> str:
    """A location Spark wrote as pyarrow's file systems name it (``s3a://`` is ``s3://``, ``dbfs:/``
    the Databricks FUSE mount)."""
    for spark, arrow in (("s3a://", "s3://"), ("s3n://", "s3://"), ("dbfs:/", "/dbfs/")):
        if out.startswith(spark):
            return arrow + out.removeprefix(spark).lstrip("/")
    return out


def _catalog_names(settings: Settings) -> str:
    return "spark catalog: " + ", ".join(f"{k}={v}" for k, v in sorted(settings.spark.tables.items()))


def _without_spark(settings: Settings | None) -> Settings | None:
    """The scoring config without its ``spark`` block (where to run is not a model setting)."""
    if settings is None or "spark" not in settings.model_fields_set:
        return settings
    return Settings.model_validate({k: getattr(settings, k) for k in settings.model_fields_set if k != "spark"})


def _is_local(location: str | Path | None) -> bool:
    return location is not None and "://" not in str(location) and not str(location).startswith("dbfs:")


def _output_location(out: str | Path, what: str = "scores") -> str:
    """``out`` as Spark should write it: a local path made absolute (and checked), a URI as given."""
    if not _is_local(out):
        return str(out)
    path = Path(out).resolve()
    if path.is_file():
        raise OutputError(f"cannot write the {what} to {path}: it is a file; the Spark engine writes a directory "
                          f"of Parquet part files, so name a directory (e.g. {what.replace(' ', '')}/)")
    if path.is_dir() and any(path.iterdir()) and not any(path.glob("*.parquet")):
        raise OutputError(f"cannot write the {what} to {path}: it is a directory that holds something other than "
                          f"Parquet part files; name a new directory")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"cannot write the {what} to {path}: {ancestor} is a file, not a directory")
    try:
        with tempfile.NamedTemporaryFile(dir=ancestor, prefix=".cv-probe-"):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write the {what} to {path}: {exc.strerror or exc} ({ancestor})") from exc
    return str(path)


# ---------------------------------------------------------------------------------------------
# what runs on the executors


def _bundle(model: ValueModel) -> dict[str, bytes]:
    """The value model as the files of its saved bundle (JSON and LightGBM text, no pickle), to
    ship to the executors; they load it once per Python worker."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = model.save(Path(tmp) / "bundle")
        return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


_LOADED: dict[str, ValueModel] = {}


def _value_model(bundle: dict[str, bytes]) -> ValueModel:
    import hashlib

    key = hashlib.sha256(b"".join(k.encode() + v for k, v in sorted(bundle.items()))).hexdigest()
    if key not in _LOADED:
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in bundle.items():
                path = Path(tmp) / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            _LOADED.clear()
            _LOADED[key] = ValueModel.load(tmp)
    return _LOADED[key]


@dataclass
class _Job:
    """Everything a pass needs on an executor (plain data: the bundle's bytes, not objects)."""

    bundle: dict[str, bytes]
    uri: str
    version: int | None
    alias: str | None
    schema: pa.Schema
    as_of: dt.date
    horizon_days: int | None
    truncated: tuple[int, float] | None
    horizons: tuple[int, ...] = ()
    """The sensitivity table's other horizons (days)."""
    totals: dict[str, Any] | None = None

    def loaded(self) -> LoadedModel:
        return LoadedModel(None, _value_model(self.bundle), self.uri, self.version, self.alias)

    def pass_one(self, features: pd.DataFrame) -> pd.DataFrame:
        """Features, their boosted predictions and (on the first row) the batch's portfolio totals."""
        model = _value_model(self.bundle)
        boosted = model.boosted(model_input(features))
        return with_totals(boosted.to_columns(features), model.portfolio_totals(boosted))

    def pass_two(self, frame: pd.DataFrame, totals: PortfolioTotals, with_notes: bool = False) -> Any:
        """Score rows of one batch priced with the population's totals, as the DuckDB engine writes
        them (and the run's notes, ``with_notes``)."""
        features, boosted = self._features(frame)
        rows, notes = score_rows(self.loaded(), features, self.as_of, self.horizon_days, boosted, totals,
                                 self.truncated)
        return (rows, notes) if with_notes else rows

    def by_horizon(self, frame: pd.DataFrame, totals: PortfolioTotals) -> pd.DataFrame:
        """One row: the batch's total value at each of :attr:`horizons` (they add up over batches)."""
        features, boosted = self._features(frame)
        part = _value_model(self.bundle).total_value_by_horizon(features, self.horizons, boosted, totals)
        return pd.DataFrame({f"{HORIZON}{h}": [float(part[h])] for h in self.horizons})

    def cashflows(self, frame: pd.DataFrame, totals: PortfolioTotals) -> pd.DataFrame:
        """The batch's customers × months, from its value rows priced with the population's totals
        (the churn drivers' texts are not needed: skipped)."""
        return self._flows_and_rows(frame, totals)[0]

    def monthly(self, frame: pd.DataFrame, totals: PortfolioTotals) -> pd.DataFrame:
        """The batch's :func:`~customer_value.valuation.cashflows.monthly_sums` (they add up over
        batches), the month as ISO text (no time zone for Spark to shift)."""
        sums = monthly_sums(*self._flows_and_rows(frame, totals))
        return sums.assign(month=pd.to_datetime(sums["month"]).dt.strftime("%Y-%m-%d"))

    def _flows_and_rows(self, frame: pd.DataFrame, totals: PortfolioTotals) -> tuple[pd.DataFrame, pd.DataFrame]:
        features, boosted = self._features(frame)
        rows = score_batch(self.loaded(), features, self.as_of, self.horizon_days, boosted, totals)
        in_feature_order = rows.set_index("customer_id").reindex(features["customer_id"]).reset_index()
        return _value_model(self.bundle).cashflows(features, in_feature_order, self.as_of), rows

    def _features(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, BoostedPredictions]:
        """Pass 1's features, in the engine's exact types (the totals' columns left out), and predictions."""
        stored, boosted = BoostedPredictions.from_columns(frame)
        return as_feature_frame(pa.Table.from_pandas(stored, preserve_index=False), self.schema), boosted

    def arrow_pass_one(self, schema: pa.Schema) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
        def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for batch in batches:
                if batch.num_rows:
                    yield from _as_batches(self.pass_one(as_feature_frame(batch, self.schema)), schema)
        return run

    def arrow_pass_two(self, schema: pa.Schema) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
        return self._over_pass_one(self.pass_two, schema)

    def arrow_by_horizon(self) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
        return self._over_pass_one(self.by_horizon, _by_horizon_schema(self.horizons))

    def arrow_cashflows(self, schema: pa.Schema) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
        return self._over_pass_one(self.cashflows, schema)

    def arrow_monthly(self, schema: pa.Schema) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
        return self._over_pass_one(self.monthly, schema)

    def _over_pass_one(self, step: Callable[[pd.DataFrame, PortfolioTotals], pd.DataFrame],
                       schema: pa.Schema) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
        """``step`` over the Arrow batches of pass 1's frame, with the population's totals."""
        totals = PortfolioTotals.from_dict(self.totals or {})

        def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for batch in batches:
                if batch.num_rows:
                    yield from _as_batches(step(batch.to_pandas(), totals), schema)
        return run


def _as_batches(frame: pd.DataFrame, schema: pa.Schema) -> list[pa.RecordBatch]:
    return pa.Table.from_pandas(frame, preserve_index=False).select(schema.names).cast(schema).to_batches()


def with_totals(frame: pd.DataFrame, totals: PortfolioTotals) -> pd.DataFrame:
    """``__totals_*`` columns holding the batch's totals on its first row and 0 elsewhere: summed
    over every row by Spark they are the population's totals (they add, see PortfolioTotals)."""
    flat = {"rows": float(totals.rows), "cost": totals.cost,
            **{f"direct_{k}": v for k, v in sorted(totals.direct_volumes.items())},
            **{f"pool_{k}": v for k, v in sorted(totals.pool_units.items())}}
    columns = {}
    for name, value in flat.items():
        column = np.zeros(len(frame))
        if len(frame):
            column[0] = value
        columns[f"{TOTALS}{name}"] = column
    return frame.assign(**columns)


def _sum_totals(first: Any, schema: pa.Schema) -> PortfolioTotals:
    """The population's totals: Spark sums the ``__totals_*`` columns; one row reaches the driver."""
    from pyspark.sql import functions as F

    names = [n for n in schema.names if n.startswith(TOTALS)]
    row = first.select(*names).agg(*[F.sum(F.col(f"`{n}`")).alias(n) for n in names]).collect()[0].asDict()
    flat = {n.removeprefix(TOTALS): float(row[n] or 0.0) for n in names}
    return PortfolioTotals(
        int(round(flat.pop("rows"))), flat.pop("cost"),
        {k.removeprefix("direct_"): v for k, v in flat.items() if k.startswith("direct_")},
        {k.removeprefix("pool_"): v for k, v in flat.items() if k.startswith("pool_")},
    )


def _by_horizon_schema(horizons: Any) -> pa.Schema:
    return pa.schema([(f"{HORIZON}{h}", pa.float64()) for h in horizons])


def _sum_months(parts: Any, schema: pa.Schema) -> pd.DataFrame:
    """The population's months: Spark sums the batches' monthly sums by month; a row per month reaches the driver."""
    from pyspark.sql import functions as F

    names = [n for n in schema.names if n != "month"]
    summed = parts.groupBy("month").agg(*[F.sum(F.col(f"`{n}`")).alias(n) for n in names]).toPandas()
    return portfolio_from_sums(summed.assign(month=pd.to_datetime(summed["month"])))


def _sum_by_horizon(parts: Any, horizons: list[int]) -> pd.Series:
    """The population's total value at each horizon: Spark sums the batches' rows; one row reaches the driver."""
    from pyspark.sql import functions as F

    if not horizons:
        return pd.Series(dtype=float)
    names = [f"{HORIZON}{h}" for h in horizons]
    row = parts.agg(*[F.sum(F.col(f"`{n}`")).alias(n) for n in names]).collect()[0].asDict()
    return pd.Series({int(h): float(row[f"{HORIZON}{h}"] or 0.0) for h in horizons}, dtype=float)


# ---------------------------------------------------------------------------------------------
# driver-side helpers


def _sample(features: Any, schema: pa.Schema, population: int) -> pd.DataFrame:
    """The feature rows at :func:`sample_positions` of the population sorted by ``customer_id``
    (every row when it is small): at most SAMPLE_ROWS rows reach the driver."""
    positions = sample_positions(population)
    if positions is None:
        chosen = features
    else:
        wanted = set(int(p) for p in positions)
        ranked = features.select("customer_id").orderBy("customer_id").rdd.zipWithIndex()
        ids = ranked.filter(lambda pair: pair[1] in wanted).map(lambda pair: pair[0][0]).collect()
        chosen = features.where(features["customer_id"].isin(ids))
    frame = as_feature_frame(chosen.toArrow(), schema)
    return frame.sort_values("customer_id", kind="stable").reset_index(drop=True)


def _spark_arrow_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` as Spark hands Arrow back (its round trip: large strings become strings, ...)."""
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    return to_arrow_schema(from_arrow_schema(schema))


def _spark_schema(schema: pa.Schema) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def _write_atomically(session: Any, frame: Any, out: str, metadata: dict[str, Any] | None,
                      what: str = "scores") -> int:
    """Write ``frame`` as Parquet part files into a temporary sibling of ``out``, add the metadata
    file (when given), then rename it into place (replacing an earlier directory of ``what``).
    Returns the rows written."""
    jvm = session._jvm
    conf = session._jsc.hadoopConfiguration()
    target = jvm.org.apache.hadoop.fs.Path(out)
    fs = target.getFileSystem(conf)
    parent = target.getParent()
    staging = jvm.org.apache.hadoop.fs.Path(parent, f".{target.getName()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        frame.write.mode("error").parquet(staging.toString())
        if metadata is not None:
            stream = fs.create(jvm.org.apache.hadoop.fs.Path(staging, METADATA_FILE), False)
            try:
                stream.write(json.dumps(metadata, indent=1).encode())
            finally:
                stream.close()
        written = session.read.parquet(staging.toString()).count()
        old = None
        if fs.exists(target):
            old = jvm.org.apache.hadoop.fs.Path(parent, f".{target.getName()}.{uuid.uuid4().hex[:8]}.old")
            if not fs.rename(target, old):
                raise OutputError(f"cannot replace {out}: renaming the earlier {what} aside failed")
        if not fs.rename(staging, target):
            if old is not None:
                fs.rename(old, target)
            raise OutputError(f"cannot write the {what} to {out}: renaming {staging.toString()} into place failed")
        if old is not None:
            fs.delete(old, True)
        return int(written)
    finally:
        if fs.exists(staging):
            fs.delete(staging, True)
