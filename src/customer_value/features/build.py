"""Assemble the feature and target frames: pandas in, pandas out, Ibis in between.

Each feature group (:mod:`rfm`, :mod:`engagement`, :mod:`payment`, :mod:`support`,
:mod:`account`, :mod:`historical`) is one Ibis expression over the whole population; the groups
run one after another (that is what the progress bar counts), each returns its rows ordered by
``customer_id``, and the frames are put side by side. No per-customer Python code runs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import ibis.expr.types as ir
import pandas as pd
from ibis.backends import BaseBackend

from customer_value.config import Settings
from customer_value.data.tables import Tables
from customer_value.features.account import account_features
from customer_value.features.engagement import engagement_features
from customer_value.features.engine import Engine, Sources, connect, execute, registered, registered_files
from customer_value.features.historical import historical_features
from customer_value.features.history import History, as_of_datetime
from customer_value.features.payment import payment_features
from customer_value.features.rfm import SUMMARY_COLUMNS, rfm_features, rfm_table
from customer_value.features.rfm_sorted import sorted_rfm_summary
from customer_value.features.support import support_features
from customer_value.features.targets import target_table
from customer_value.units import month_edges

AsOf = dt.date | dt.datetime | str


@contextmanager
def _backend(engine: Engine) -> Iterator[BaseBackend]:
    """The backend to run on; a DuckDB connection made here is closed afterwards (a Spark
    session is kept: sessions are expensive to start and shared by the process)."""
    backend = connect(engine)
    try:
        yield backend
    finally:
        if backend is not engine and backend.name == "duckdb":
            backend.disconnect()


@contextmanager
def open_sources(tables: Tables | str | Path, engine: Engine, only: tuple[str, ...] | None = None) -> Iterator[Sources]:
    """The tables (or a directory of files) registered on ``engine`` once, for several windows' queries."""
    with _backend(engine) as backend:
        if isinstance(tables, Tables):
            with registered(tables, backend, only) as src:
                yield src
        else:
            with registered_files(tables, backend) as src:
                yield src


# Parallel SUMs add floats in a different order on each run; money is in cents and derived
# quantities are far coarser than 1e-9, so rounding there makes every output reproducible.
FLOAT_DECIMALS = 9


def rounded(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its float columns rounded to :data:`FLOAT_DECIMALS` (in place): what makes
    features reproducible, on every engine."""
    floats = frame.select_dtypes("float").columns
    if len(floats):
        frame[floats] = frame[floats].round(FLOAT_DECIMALS)
    return frame


def _run(expr: ir.Table) -> pd.DataFrame:
    return rounded(execute(expr.order_by("customer_id")).reset_index(drop=True))


def _side_by_side(frames: list[pd.DataFrame]) -> pd.DataFrame:
    ids = frames[0]["customer_id"]
    for frame in frames[1:]:
        if len(frame) != len(ids) or not frame["customer_id"].equals(ids):
            raise RuntimeError("feature groups disagree on the population; this is a bug")
    parts = [frames[0]] + [f.drop(columns="customer_id") for f in frames[1:]]
    return pd.concat(parts, axis=1)


class _Steps:
    """A rich progress bar over the feature groups, or nothing when ``progress`` is off."""

    def __init__(self, total: int, enabled: bool, title: str):
        self._bar = None
        if enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(), transient=False,
            )
            self._task = self._bar.add_task(title, total=total)

    def __enter__(self) -> "_Steps":
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def run(self, name: str, fn: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        if self._bar is not None:
            self._bar.update(self._task, description=name)
        out = fn()
        if self._bar is not None:
            self._bar.advance(self._task)
        return out


class CustomerRange(NamedTuple):
    """The customers whose ``customer_id`` lies in ``[first, last]`` (text order): one batch of the
    population, for scoring in bounded memory."""

    first: str
    last: str

    def of(self, table: ir.Table) -> ir.Table:
        return table.filter((table.customer_id >= self.first) & (table.customer_id <= self.last))


def restricted(src: Sources, customers: CustomerRange) -> Sources:
    """``src`` with every table cut to the rows of ``customers`` (the engine prunes by the range)."""
    return dataclasses.replace(src, **{name: customers.of(getattr(src, name))
                                       for name in ("customers", "transactions", "engagement_events", "invoices",
                                                    "support_tickets")})


def feature_groups(src: Sources, as_of: AsOf, settings: Settings,
                   customers: CustomerRange | None = None) -> list[tuple[str, ir.Table]]:
    """The feature groups as (name, Ibis expression), in the order of the feature frame's
    columns: the one list both engines run (:func:`features_from_sources` group by group, the
    Spark engine joined into one query). With ``customers``, the rows of that range only.

    Most groups read only their own customer's rows, so they run on the tables cut to the range.
    Two read other customers: the account group (what the customers a customer referred have
    spent) and, with indirect pools, the historical cost (each pool is shared over everyone's
    units); they run on the whole tables and only their result is cut."""
    whole = History.of(src, as_of, settings)
    h = whole if customers is None else History.of(restricted(src, customers), as_of, settings)
    cut: Callable[[ir.Table], ir.Table] = (lambda t: t) if customers is None else customers.of
    pools = bool(settings.costs.indirect_pools)
    return [
        ("account", cut(account_features(whole, settings))),
        ("rfm", rfm_features(h, settings)),
        ("engagement", engagement_features(h, settings)),
        ("payment", payment_features(h, settings)),
        ("support", support_features(h, settings)),
        ("historical cost-to-serve", cut(historical_features(src, whole, settings)) if pools or customers is None
         else historical_features(restricted(src, customers), h, settings)),
    ]


def features_from_sources(src: Sources, as_of: AsOf, settings: Settings, progress: bool = False,
                          customers: CustomerRange | None = None) -> pd.DataFrame:
    """All feature groups (:func:`feature_groups`) for the tables already registered in a
    backend; with ``customers``, the rows of that range of the population only, equal to the
    whole population's rows."""
    groups = feature_groups(src, as_of, settings, customers)
    with _Steps(len(groups), progress, "features") as steps:
        frames = [steps.run(name, lambda table=table: _run(table)) for name, table in groups]
    return _side_by_side(frames)


def build_features(
    tables: Tables,
    as_of: AsOf,
    settings: Settings,
    engine: Engine = "duckdb",
    progress: bool = False,
    customers: CustomerRange | None = None,
) -> pd.DataFrame:
    """One row per customer with ``signup_at < as_of`` (sorted by ``customer_id``, which comes
    first), every feature computed only from what was known before ``as_of``.

    ``engine`` is ``"duckdb"`` (in-process, default), ``"spark"`` (a local session is created or
    reused) or a connected Ibis backend. ``progress`` shows a rich progress bar per feature group.
    ``customers`` limits the rows to one range of the population (see :func:`features_from_sources`).
    """
    with open_sources(tables, engine) as src:
        return features_from_sources(src, as_of, settings, progress, customers)


def build_features_from_files(
    data_dir: str | Path,
    as_of: AsOf,
    settings: Settings,
    engine: Engine = "duckdb",
    progress: bool = False,
) -> pd.DataFrame:
    """:func:`build_features` scanning canonical ``NAME.parquet`` files in place (no pandas
    round trip of the inputs). For already-validated canonical Parquet only, e.g. the
    simulator's output; anything else goes through the loader and :func:`build_features`."""
    with open_sources(Path(data_dir), engine) as src:
        return features_from_sources(src, as_of, settings, progress)


def targets_from_sources(
    src: Sources, as_of: AsOf, settings: Settings, horizon_days: int | None = None
) -> pd.DataFrame:
    moment = as_of_datetime(as_of)
    population = History.of(src, moment, settings).population()
    return _run(target_table(src, population, moment, settings, horizon_days))


def build_targets(
    tables: Tables,
    as_of: AsOf,
    settings: Settings,
    engine: Engine = "duckdb",
    horizon_days: int | None = None,
) -> pd.DataFrame:
    """Per customer with ``signup_at < as_of``: revenue, margin, transactions, churned, the
    cost-to-serve components, ``cost_to_serve`` and ``net_value`` over ``[as_of, as_of + H)``
    (``H = horizon_days`` or ``settings.horizon_days``), then the cost per activity and the
    activity volumes; each indirect pool allocates its amount for the window over these
    customers (contract section 8). See :mod:`.targets` and :mod:`.costing`."""
    with open_sources(tables, engine) as src:
        return targets_from_sources(src, as_of, settings, horizon_days)


def monthly_outcomes(tables: Tables, as_of: AsOf, settings: Settings, customers: pd.Series,
                     horizon_days: int | None = None, engine: Engine = "duckdb") -> pd.DataFrame:
    """What ``customers`` earned (``margin``) and cost (``cost_to_serve``, each indirect pool
    allocating its amount for the month, contract section 8) in each calendar month of the horizon
    after ``as_of`` (:func:`customer_value.units.month_edges`): one row per month, ``month`` its
    first day. The realised side of the monthly cash flows, for the backtest and the fit."""
    edges = month_edges(as_of, horizon_days or settings.horizon_days)
    wanted = set(customers)
    rows = []
    with open_sources(tables, engine) as src:
        for start, end in zip(edges[:-1], edges[1:]):
            t = targets_from_sources(src, start, settings, (end - start).days)
            t = t[t["customer_id"].isin(wanted)]
            rows.append({"month": start, "margin": float(t["margin"].sum()), "cost_to_serve": float(t["cost_to_serve"].sum())})
    return pd.DataFrame(rows)


def rfm_summary(tables: Tables, as_of: AsOf, settings: Settings, engine: Engine = "duckdb") -> pd.DataFrame:
    """lifetimes-style summary indexed by ``customer_id``: ``frequency``, ``recency``, ``T``,
    ``monetary_value`` (in ``settings.time_unit``), ``first_purchase_at``, ``last_purchase_at``,
    ``revenue`` and ``margin`` to date; conventions in :mod:`.rfm`. In process (DuckDB) and with
    transactions sorted by customer and time, a linear pass computes the same (:mod:`.rfm_sorted`)."""
    if engine == "duckdb" and isinstance(tables, Tables):  # in process: the linear pass when rows are sorted
        fast = sorted_rfm_summary(tables, as_of_datetime(as_of), settings)
        if fast is not None:
            return rounded(fast)
    with open_sources(tables, engine, only=("customers", "transactions")) as src:
        h = History.of(src, as_of, settings)
        out = _run(rfm_table(h, settings))
    return out.set_index("customer_id")[list(SUMMARY_COLUMNS)]
