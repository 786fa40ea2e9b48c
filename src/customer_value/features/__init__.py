"""Point-in-time features and targets as of a date, written once in Ibis.

The same expressions run in-process on DuckDB (default) or on a PySpark session::

    from customer_value.features import build_features, build_targets, rfm_summary
    X = build_features(tables, "2024-07-01", settings)                    # DuckDB
    y = build_targets(tables, "2024-07-01", settings, engine="spark")     # local Spark

To stack many snapshots, register the tables once and reuse them::

    from customer_value.features import connect, registered, features_from_sources
    with registered(tables, connect("duckdb")) as src:
        frames = [features_from_sources(src, d, settings) for d in dates]

``build_features_from_files(data_dir, ...)`` reads canonical Parquet files straight into the
backend (no pandas round trip of the inputs).

Modules: :mod:`.history` (what was known before ``as_of``; contract section 1),
:mod:`.rfm`, :mod:`.engagement`, :mod:`.payment`, :mod:`.support`, :mod:`.account`,
:mod:`.costing` (cost-to-serve, contract sections 3 and 8), :mod:`.historical`, :mod:`.targets`,
:mod:`.engine` (backends and table registration), :mod:`.build` (assembly).
"""

from customer_value.features.build import (
    build_features,
    build_features_from_files,
    build_targets,
    features_from_sources,
    monthly_outcomes,
    open_sources,
    rfm_summary,
    targets_from_sources,
)
from customer_value.features.costing import cost_columns, pool_rates
from customer_value.features.engine import Sources, connect, registered, registered_files, spark_session
from customer_value.features.history import EVENT_TYPES, as_of_datetime

__all__ = [
    "EVENT_TYPES",
    "Sources",
    "as_of_datetime",
    "build_features",
    "build_features_from_files",
    "build_targets",
    "connect",
    "cost_columns",
    "features_from_sources",
    "monthly_outcomes",
    "open_sources",
    "pool_rates",
    "registered",
    "registered_files",
    "rfm_summary",
    "spark_session",
    "targets_from_sources",
]
