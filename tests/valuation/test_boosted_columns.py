"""BoostedPredictions.to_columns / from_columns: the one column convention both scoring engines
keep a batch in between their two passes (a Parquet file, a Spark partition)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from customer_value.valuation.value import BoostedPredictions


def _features(n: int) -> pd.DataFrame:
    frame = pd.DataFrame({"customer_id": [f"c{i:03d}" for i in range(n)], "frequency": np.arange(n, dtype=float),
                          "plan": ["basic"] * n})
    return frame.set_axis(np.arange(n) * 7 + 3)  # not a range index: the columns must still line up by position


def _boosted(n: int, full: bool) -> BoostedPredictions:
    rng = np.random.default_rng(3)
    volumes = pd.DataFrame({"expected_volume_orders": rng.random(n), "expected_volume_tickets": rng.random(n)})
    return BoostedPredictions(rng.random(n), rng.random(n) * 10,
                              rng.random(n) if full else None, rng.random(n) if full else None,
                              volumes if full else None, rng.random(n) if full else None)


def _same(a: BoostedPredictions, b: BoostedPredictions) -> None:
    for name in BoostedPredictions._fields:
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            assert x is None and y is None, name
        elif isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x.reset_index(drop=True), y)
        else:
            np.testing.assert_array_equal(x, y)
            assert y.dtype == np.float64


def test_columns_round_trip_through_parquet_with_every_field_or_only_the_required(tmp_path):
    features = _features(5)
    for full in (True, False):
        boosted = _boosted(5, full)
        frame = boosted.to_columns(features)
        assert list(frame.columns[:3]) == list(features.columns)
        assert all(c.startswith("__boosted_") for c in frame.columns[3:])
        assert (frame.dtypes[frame.columns[3:]] == np.float64).all()
        path = tmp_path / f"batch-{full}.parquet"
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
        back, again = BoostedPredictions.from_columns(pd.read_parquet(path))
        pd.testing.assert_frame_equal(back, features.reset_index(drop=True))
        _same(boosted, again)


def test_other_columns_stay_with_the_features():
    features = _features(3)
    frame = _boosted(3, True).to_columns(features).assign(__totals_rows=[3.0, 0.0, 0.0])
    back, _ = BoostedPredictions.from_columns(frame)
    assert list(back.columns) == [*features.columns, "__totals_rows"]
