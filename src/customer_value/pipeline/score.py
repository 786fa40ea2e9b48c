"""`customer-value score`: the weekly batch, in one straight line.

check the outputs can be written and the tracking server answers → load the model (an alias
resolved once, to the version that is loaded) → load the tables → features as of ``as_of`` → the
value model → the churn drivers in words → check one row per customer → write atomically → the
drift (PSI) against the previous scoring of the same model name and alias, and the training run's
metrics → report → log a scoring run (tagged with the model's URI, name, version and alias; row
counts, the score distribution, the drift).
Every customer signed up before ``as_of`` gets exactly one row; the Parquet file appears whole or
not at all, and the same inputs give the same bytes.

A model scores with its own settings (horizon, discount rate, costs, ...). A scoring config may
only say how to read the data and in which currency the report shows amounts (:data:`INPUT_KEYS`);
any other key it sets that differs from the model's is a :class:`ConfigError` naming each key and
both values, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from customer_value.boosted.compiled import CompiledTrees, use_compiled_trees
from customer_value.config import Settings
from customer_value.data.writing import ParquetBatchWriter, check_output
from customer_value.errors import ConfigError
from customer_value.features.build import CustomerRange, features_from_sources, open_sources
from customer_value.data.loading import load_tables_in_ranges
from customer_value.pipeline.inputs import DEFAULT_REPORT, require_customers_before
from customer_value.pipeline.progress import Reporter, StageClock, reporter
from customer_value.pipeline.report import report_figures, write_html_report
from customer_value.tracking.model import LoadedModel, load_model, model_input, score_batch
from customer_value.tracking.runs import ScoredModel, log_scoring_run, previous_scoring, scoring_drift, training_quality
from customer_value.tracking.store import setup_tracking
from customer_value.valuation.churn_drivers import churn_drivers, driver_truncation, sample_positions
from customer_value.valuation.drivers import with_drain_drivers
from customer_value.valuation.cashflows import monthly_sums, portfolio_from_sums
from customer_value.valuation.portfolio import PortfolioTotals
from customer_value.valuation.value import BoostedPredictions
from customer_value.valuation.whatif import METADATA_KEY

Progress = Callable[[str], None] | Reporter
SENSITIVITY_HORIZONS = (365, 3 * 365)


def other_horizons(horizon: int) -> list[int]:
    """The sensitivity table's horizons besides the file's own ``horizon`` (days)."""
    return sorted({*SENSITIVITY_HORIZONS, horizon} - {horizon})


def with_own_horizon(other: pd.Series, horizon: int, total: float) -> pd.Series:
    """The sensitivity table: the total value at :func:`other_horizons` (``other``) and at the
    file's own ``horizon`` (``total``, the sum of its ``customer_value``). The index is built anew:
    a new label on a RangeIndex-like int index is a pandas 3 pitfall."""
    table = pd.concat([other.drop(horizon, errors="ignore"), pd.Series({horizon: float(total)}, dtype=float)])
    table.index.name = "horizon_days"
    return table


INPUT_KEYS = tuple(k for k in ("columns", "strict", "timestamp_format", "currency", "max_customers_per_batch", "spark",
                             "compiled_trees", "compiled_trees_dir")
                   if k in Settings.model_fields)
"""The settings a scoring config may set: how to read the data, how the report shows it
(``currency``), how many customers are scored at once, where Spark runs and whether the trees run
compiled (the same predictions), nothing the model computes with."""


def scoring_settings(model: Settings, given: Settings | None) -> Settings:
    """The model's settings with the data-reading keys the caller set (:data:`INPUT_KEYS`); any
    other key set in ``given`` that differs from the model's is a :class:`ConfigError`."""
    if given is None:
        return model
    differing = _differences(given, model, given.model_fields_set - set(INPUT_KEYS))
    if differing:
        listed = "; ".join(f"{key}: {mine!r} in the config, {theirs!r} in the model" for key, mine, theirs in differing)
        raise ConfigError(f"the scoring config differs from the model's settings ({listed}); a model scores with "
                          f"its own settings, so drop these keys from --config (it may set only {', '.join(INPUT_KEYS)})")
    return model.with_overrides(**{k: getattr(given, k) for k in INPUT_KEYS if k in given.model_fields_set})


def _differences(given: Any, model: Any, keys: set[str], prefix: str = "") -> list[tuple[str, Any, Any]]:
    out = []
    for key in sorted(keys):
        mine, theirs = getattr(given, key), getattr(model, key)
        if hasattr(mine, "model_fields_set") and hasattr(theirs, "model_fields_set"):
            out += _differences(mine, theirs, set(mine.model_fields_set), f"{prefix}{key}.")
        elif _plain(mine) != _plain(theirs):
            out.append((f"{prefix}{key}", _plain(mine), _plain(theirs)))
    return out


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def check_one_row_per_customer(scores: pd.DataFrame, population: pd.Series) -> None:
    """Exactly the customers signed up before as_of, each once; anything else is a bug, not data."""
    if scores["customer_id"].duplicated().any():
        raise AssertionError(f"{int(scores['customer_id'].duplicated().sum())} customer(s) scored twice")
    missing = set(population) - set(scores["customer_id"])
    extra = set(scores["customer_id"]) - set(population)
    if missing or extra:
        raise AssertionError(f"scored population differs: {len(missing)} missing, {len(extra)} unexpected")


BATCH_CUSTOMERS = 250_000
"""Customers scored at once by default (``max_customers_per_batch`` in the settings overrides it):
memory then grows with the batch, not with the population."""


READ_BACK_SKIPS = ("top_churn_drivers",)
"""Long texts nothing after the write reads: left in the file when the rows are read back."""


@dataclass
class ScoreResult:
    scores: pd.DataFrame
    """The score rows; when the population was scored in batches, read back from the written file
    without :data:`READ_BACK_SKIPS`."""
    out: Path
    report: Path | None
    run_id: str | None
    drift: dict[str, float]
    quality: dict[str, float] = field(default_factory=dict)
    drift_against: str | None = None
    """The run id of the scoring the drift compares with."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time per stage (load, features, models, churn drivers, write, ...), summed over batches."""
    batches: int = 1
    cash_flows: pd.DataFrame | None = None
    """The portfolio's expected margin and cost per calendar month of the horizon
    (:func:`~customer_value.valuation.cashflows.portfolio_by_month`), when a report, a scoring run
    or a cash-flow file asked for the months."""


def scoring_trees_compiled(value_model: Any, settings: Settings, customers: int, mode: CompiledTrees | None = None,
                           say: Callable[[str], None] | None = None,
                           progress: Callable[[int, int], None] | None = None) -> bool:
    """The boosters ``value_model`` scores with swapped for their compiled code as ``mode`` (default:
    the settings' ``compiled_trees``) says, cached in the settings' ``compiled_trees_dir``, compiled
    on every core (see :mod:`customer_value.boosted.compiled`); whether they now run compiled.
    ``customers``: the size of the base about to be scored (0 when only compiling)."""
    return use_compiled_trees(list(value_model.scoring_models().values()), Path(settings.compiled_trees_dir),
                              mode or settings.compiled_trees, customers, os.cpu_count() or 1, say, progress)


def customer_batches(population: pd.Series, size: int) -> tuple[pa.Array, list[tuple[CustomerRange, int, int]]]:
    """The population's ids sorted, and cut into ranges of at most ``size`` customers as (range,
    first position, end position); written in this order, the batches make one file sorted by
    ``customer_id``, as scoring everyone at once does."""
    ids = pa.array(population.to_numpy(dtype=object), type=pa.large_string())
    ids = ids.take(pc.sort_indices(ids))
    n, size = len(ids), max(int(size), 1)
    ranges = [(CustomerRange(ids[start].as_py(), ids[min(start + size, n) - 1].as_py()), start, min(start + size, n))
              for start in range(0, n, size)]
    return ids, ranges


def score(data_dir: Path, as_of: dt.date, model: str, out: Path, settings: Settings | None = None,
          report: Path | None = None, engine: Any = "duckdb", log_run: bool = True,
          progress: Progress | None = None, validation_report: Path | None = None,
          horizon_days: int | None = None, cashflows: Path | None = None,
          batch_customers: int | None = None) -> ScoreResult:
    """Check the outputs, load the model, build features, score, explain, check, write atomically,
    report, log.

    ``horizon_days`` overrides the model's horizon for this scoring (segment cut points scale with
    it, and the report says so); ``cashflows`` also writes one row per customer × month
    (:mod:`customer_value.valuation.cashflows`). ``progress`` is a ``say`` callable (lines) or a
    :class:`~customer_value.pipeline.progress.Reporter` (the command line's draws progress bars).

    **In bounded memory.** The population is scored in batches of at most ``batch_customers``
    (default: the settings' ``max_customers_per_batch``, else :data:`BATCH_CUSTOMERS`) customers,
    ranges of ``customer_id``: features in the engine per range, then two passes (the boosted
    models and the portfolio's additive totals per batch, then each batch priced with the summed
    totals, see :mod:`customer_value.valuation.portfolio`), every batch appended to one temporary
    Parquet file that is renamed into place at the end. The rows equal scoring everyone at once
    (to 1e-9), and the same inputs give the same bytes.

    The report carries the training run's validation and backtest metrics (models from the
    registry) and the drift against the previous scoring of the same model name and alias (see
    :func:`customer_value.tracking.runs.previous_scoring`; only when the run is logged)."""
    say = reporter(progress)
    clock = StageClock()
    check_output(out, "scores")
    for path, what in ((report, "report"), (validation_report, "validation report"), (cashflows, "cash flows")):
        if path is not None:
            check_output(path, what)
    if log_run:
        setup_tracking()  # a tracking server that is down fails now, not after the scoring
    with say.step(f"loading model {model}"), clock("load model"):
        loaded_model = load_model(model)
    model_settings = scoring_settings(loaded_model.settings, settings)
    value_model = loaded_model.value_model
    # no cut copy of the tables: the feature builders are point-in-time by construction (their
    # leakage tests and this pipeline's cut-vs-full test prove it) and a copy of ~100M rows is
    # the difference between fitting in 8 GiB or not
    with say.step(f"loading tables from {data_dir}"), clock("load and validate"):
        # with indirect pools the trailing cost shares each pool over everyone's activity: all rows at once
        loaded, streamed = load_tables_in_ranges(data_dir, model_settings,
                                                 streamed=not model_settings.costs.indirect_pools)
    tables = loaded.tables
    population = require_customers_before(tables.customers, as_of)
    size = int(batch_customers or model_settings.max_customers_per_batch or BATCH_CUSTOMERS)
    if value_model.activity_model is None:  # the drain drivers' list ranks the whole population
        size = max(size, len(population))
    ids, batches = customer_batches(population, size)
    with clock("compile trees"):  # milliseconds when this model's trees are cached (boosted/compiled.py)
        scoring_trees_compiled(value_model, model_settings, len(population), say=say.say)
    model_horizon = model_settings.horizon_days
    horizon = horizon_days or model_horizon
    with tempfile.TemporaryDirectory(prefix="cv-score-") as spill, ExitStack() as stack:
        # pass 1: features in the engine and the boosted models per batch, kept on disk; the totals add up
        whole_src = None if streamed is not None else stack.enter_context(open_sources(tables, engine))
        parts, sample, files = [], [], []
        positions = sample_positions(len(population))  # where the churn drivers choose their trees
        positions = np.arange(len(population)) if positions is None else positions

        def range_rows(k: int) -> dict[str, pd.DataFrame]:
            """The large tables' rows of batch ``k``'s range (ranges tile the id space)."""
            first_id = None if k == 0 else batches[k][0].first
            return streamed.read(first_id, None if batches[k][2] == len(ids) else ids[batches[k][2]].as_py())

        # the next range is read (Parquet decoding, validation: mostly I/O and one core) while this one's
        # features and models run; one range ahead at most, so memory grows by one batch of rows
        ahead = stack.enter_context(ThreadPoolExecutor(1)) if streamed is not None and len(batches) > 1 else None
        pending = ahead.submit(range_rows, 0) if ahead is not None else None
        for k, (customers, first, stop) in enumerate(batches):
            what = f"batch {k + 1}/{len(batches)}: " if len(batches) > 1 else ""
            with ExitStack() as batch_stack:
                src = whole_src
                if streamed is not None:
                    with say.step(f"{what}loading the rows of {stop - first:,} customers"), clock("load and validate"):
                        rows = pending.result() if pending is not None else range_rows(k)
                    if ahead is not None and k + 1 < len(batches):
                        pending = ahead.submit(range_rows, k + 1)
                    src = batch_stack.enter_context(open_sources(dataclasses.replace(tables, **rows), engine))
                    del rows
                with say.step(f"{what}features as of {as_of}"), clock("features"):
                    features = features_from_sources(src, as_of, model_settings,
                                                     customers=customers if len(batches) > 1 else None)
            with say.step(f"{what}models for {len(features):,} customers"), clock("boosted models"):
                boosted = value_model.boosted(model_input(features))
                parts.append(value_model.portfolio_totals(boosted))
            if len(batches) > 1:
                mine = positions[(positions >= first) & (positions < stop)] - first
                sample.append(features.iloc[mine])
            if len(batches) == 1:
                files.append((features, boosted))
                continue
            with clock("spill"):  # one batch's features and boosted predictions, to disk between the two passes
                spilled = Path(spill) / f"batch-{k:05d}.parquet"
                pq.write_table(pa.Table.from_pandas(boosted.to_columns(features), preserve_index=False), spilled)
                files.append(spilled)
            del features, boosted
        if loaded.report.has_problems:  # complete now that every range was read
            path = loaded.report.write(validation_report or DEFAULT_REPORT)
            say.say(f"{loaded.report.describe()}; report: {path}")
        stack.close()  # the whole tables' registration in the engine
        del tables, loaded, whole_src  # the raw tables hold most of the memory; nothing below needs them
        totals = None if len(batches) == 1 else PortfolioTotals.sum(parts)
        truncated = None
        if len(batches) > 1 and value_model.churn_model is not None:
            truncated = driver_truncation(value_model, pd.concat(sample, ignore_index=True))
        written, by_horizon, notes, scores, months = 0, None, {}, None, []
        monthly = cashflows is not None or report is not None or log_run  # the report's and the run's months
        horizons = other_horizons(horizon)
        with ParquetBatchWriter(out) as sink, ParquetBatchWriter(cashflows) as flows_sink:
            # pass 2: each batch priced with the population's totals, explained, checked, appended
            for k, ((customers, first, stop), spilled) in enumerate(zip(batches, files)):
                what = f"batch {k + 1}/{len(batches)}: " if len(batches) > 1 else ""
                if len(batches) == 1:
                    features, boosted = spilled
                else:
                    features, boosted = BoostedPredictions.from_columns(pd.read_parquet(spilled))
                batch, batch_notes = score_rows(loaded_model, features, as_of, horizon_days, boosted, totals, truncated,
                                                say, clock, what)
                notes.update(batch_notes)
                check_one_row_per_customer(batch, population if len(batches) == 1 else
                                           pd.Series(ids[first:stop].to_numpy(zero_copy_only=False)))
                # what `whatif` needs to reprice the file without the model, kept in its Parquet metadata
                batch.attrs[METADATA_KEY] = value_model.scoring_metadata(horizon)
                with clock("write"):
                    sink.append(batch)
                written += len(batch)
                in_feature_order = batch.set_index("customer_id").reindex(features["customer_id"])
                if monthly:
                    with clock("cash flows"):
                        flows = value_model.cashflows(features, in_feature_order.reset_index(), as_of)
                        months.append(monthly_sums(flows, batch))
                        if cashflows is not None:
                            flows_sink.append(flows)
                        del flows
                # the sensitivity table reuses the batch's boosted predictions (the expensive part does
                # not depend on the horizon); the file's own horizon is the sum of its customer_value
                with clock("value at other horizons"):
                    part = with_own_horizon(value_model.total_value_by_horizon(features, horizons, boosted, totals),
                                            horizon, batch["customer_value"].sum())
                    by_horizon = part if by_horizon is None else by_horizon + part
                if len(batches) == 1:
                    scores = batch
                del features, boosted, batch, in_feature_order
    with say.step(f"wrote {written:,} rows to {out}"):  # the writers renamed their files into place as the block ended
        pass
    if scores is None:  # what the report, the drift and the run read: all but the churn drivers' texts
        with clock("read back"):
            scores = pd.read_parquet(out, columns=[c for c in pq.read_schema(out).names if c not in READ_BACK_SKIPS])
    cash_flows = portfolio_from_sums(pd.concat(months, ignore_index=True)) if months else None
    told = report_and_log(scores, by_horizon, loaded_model, model_settings, as_of, out, data_dir, report, log_run,
                          notes, say, clock, cash_flows)
    return ScoreResult(scores, out, told.report, told.run_id, told.drift, told.quality, told.drift_against,
                       clock.seconds, len(batches), cash_flows)


@dataclass
class ReportedScoring:
    """What :func:`report_and_log` made of a scoring."""

    report: Path | None
    run_id: str | None
    drift: dict[str, float]
    quality: dict[str, float]
    drift_against: str | None
    """The run id of the scoring the drift compares with."""


def report_and_log(scores: pd.DataFrame, horizon_totals: pd.Series, loaded_model: LoadedModel, settings: Settings,
                   as_of: dt.date, out: Any, data: Any, report: Path | None, log_run: bool, notes: dict[str, str],
                   progress: Progress | None = None, clock: StageClock | None = None,
                   cash_flows: pd.DataFrame | None = None) -> ReportedScoring:
    """The end of a scoring on either engine, once the score rows are written: the drift against
    the previous scoring, the training run's metrics, the HTML report and the MLflow scoring run.
    One function for both engines (this module's :func:`score` and
    :func:`~customer_value.pipeline.spark_scoring.score_on_spark`), so their reports and runs agree.

    ``scores`` are the written rows (:data:`READ_BACK_SKIPS` may be left out); ``horizon_totals``
    the total value per horizon in days (the sensitivity table, any order); ``settings`` the
    scoring's (:func:`scoring_settings`); ``notes`` become tags of the run; ``cash_flows`` the
    portfolio's months (:func:`~customer_value.valuation.cashflows.portfolio_by_month`)."""
    say = reporter(progress)
    clock = clock or StageClock()
    identity = ScoredModel.of(loaded_model.uri, settings.model_name, loaded_model.version, loaded_model.alias)
    horizon_totals = horizon_totals.sort_index()
    horizon_totals.index.name = "horizon_days"
    baseline, drift, quality = None, {}, {}
    if log_run:
        baseline = previous_scoring(identity)
        drift = scoring_drift(baseline, scores)
    if identity.version is not None:
        quality = _training_quality(identity, say)
    report_path = None
    if report is not None:
        with say.step(f"report {report}"), clock("report"):
            report_path = write_html_report(
                scores, report, f"Customer value as of {as_of}", horizon_totals, quality=quality or None,
                drift=drift if baseline is not None else None, currency=settings.currency,
                model_horizon_days=loaded_model.settings.horizon_days, referral=loaded_model.value_model,
                cash_flows=cash_flows)
    run_id = None
    if log_run:
        with say.step(f"logging the scoring run to {identity.experiment}"), clock("log run"):
            run_id = log_scoring_run(scores, identity, as_of, out, horizon_totals, data,
                                     lambda: report_figures(scores, horizon_totals, settings.currency, cash_flows),
                                     baseline, drift, notes, cash_flows)
    return ReportedScoring(report_path, run_id, drift, quality, baseline.run_id if baseline is not None else None)


def score_rows(loaded_model: LoadedModel, features: pd.DataFrame, as_of: dt.date, horizon_days: int | None,
               boosted: BoostedPredictions, totals: PortfolioTotals | None,
               truncated: tuple[int, float] | None = None, progress: Progress | None = None,
               clock: StageClock | None = None, what: str = "") -> tuple[pd.DataFrame, dict[str, str]]:
    """Pass 2 for one batch, as a score file holds it: rows priced with the population's
    ``totals`` (``None``: the batch is the population), the churn drivers in words (trees chosen
    once, ``truncated``), sorted by ``customer_id``; and the run notes. One function for both
    engines (this module's and :mod:`.spark_scoring`'s map over partitions), so they write the
    same rows. ``progress``/``clock``/``what`` only report (steps and stage times)."""
    say = reporter(progress)
    clock = clock or StageClock()
    value_model = loaded_model.value_model
    notes: dict[str, str] = {}
    with say.step(f"{what}scoring {len(features):,} customers"), clock("value rows"):
        rows = score_batch(loaded_model, features, as_of, horizon_days, boosted, totals)
    if value_model.churn_model is not None:
        with say.step(f"{what}churn drivers", total=len(features)) as step, clock("churn drivers"):
            drivers = churn_drivers(value_model, features, truncated=truncated,
                                    progress=lambda done, _total: step.update(completed=done))
            step.finish(f"{drivers.trees:,} of {drivers.of_trees:,} trees, R² {drivers.r2:.3f}")
        notes["customer_value.churn_drivers"] = drivers.method()
        rows = with_column(rows, "top_churn_drivers", drivers.texts.to_numpy(), after="top_cost_drivers")
    rows = rows.sort_values("customer_id", kind="stable").reset_index(drop=True)
    if "top_cost_drivers" not in rows:  # a model without activity forecasts: SHAP for the drain list
        rows = with_drain_drivers(rows, features, value_model)
        if "top_churn_drivers" in rows:  # the two driver columns side by side
            rows = with_column(rows, "top_churn_drivers", rows["top_churn_drivers"].to_numpy(),
                               after="top_cost_drivers")
    return rows, notes


def _training_quality(identity: ScoredModel, say: Reporter) -> dict[str, float]:
    """The training run's metrics; a registry that cannot tell only costs the report its section."""
    try:
        return training_quality(identity)
    except Exception as exc:  # noqa: BLE001 - the scores do not depend on it
        say.say(f"model quality left out of the report: the training run of {identity.uri} could not be read "
                f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
        return {}


def with_column(frame: pd.DataFrame, name: str, values: Any, after: str | None = None) -> pd.DataFrame:
    """``frame`` with the column ``name`` placed right after ``after`` (at the end without it)."""
    out = frame.drop(columns=name, errors="ignore")
    position = out.columns.get_loc(after) + 1 if after is not None and after in out.columns else out.shape[1]
    out.insert(position, name, values)
    return out
