"""Assembly: schema stability, missing optional tables, the Parquet fast path, engines."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from customer_value.config import Settings
from customer_value.data.tables import Tables
from customer_value.features import build_features, build_features_from_files, build_targets, connect
from feature_worlds import AS_OF


def test_missing_optional_tables_give_the_same_schema(world: Tables) -> None:
    settings = Settings()
    full = build_features(world, AS_OF, settings)
    bare = build_features(Tables.from_frames(customers=world.customers, transactions=world.transactions), AS_OF, settings)
    assert list(bare.columns) == list(full.columns)
    assert bare.customer_id.tolist() == full.customer_id.tolist()
    counts = [c for c in bare.columns if c.startswith(("eng_", "sup_", "pay_")) and bare[c].dtype == "int64"]
    assert counts and (bare[counts] == 0).all().all()
    assert bare.eng_days_since_login.isna().all()
    assert build_targets(Tables.from_frames(customers=world.customers, transactions=world.transactions), AS_OF,
                         settings).cost_support.eq(0).all()


def test_dtypes(world: Tables) -> None:
    f = build_features(world, AS_OF, Settings(), progress=True)
    assert f.columns[0] == "customer_id"
    for column in ("customer_id", "plan", "acquisition_channel", "region"):
        assert pd.api.types.is_string_dtype(f[column]), column
    numeric = f.drop(columns=["customer_id", "plan", "acquisition_channel", "region"])
    assert all(pd.api.types.is_numeric_dtype(numeric[c]) for c in numeric.columns)


def test_parquet_fast_path_matches_the_pandas_path(world: Tables, tmp_path, pooled_settings: Settings) -> None:
    for name, frame in world.items():
        if name != "support_tickets":  # a missing optional table
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / f"{name}.parquet")
    tables = Tables.from_frames(**{n: f for n, f in world.items() if n != "support_tickets"})
    expected = build_features(tables, AS_OF, pooled_settings)
    got = build_features_from_files(tmp_path, AS_OF, pooled_settings)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)


def test_engines(world: Tables) -> None:
    with pytest.raises(ValueError, match="unknown engine"):
        build_features(world, AS_OF, Settings(), engine="sqlite3")
    backend = connect("duckdb", threads=1, memory_limit="512MB")
    a = build_features(world, AS_OF, Settings(), engine=backend)
    b = build_features(world, AS_OF, Settings())
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)
    assert backend.con.execute("SHOW ALL TABLES").fetchall() == []  # registered inputs are dropped again
