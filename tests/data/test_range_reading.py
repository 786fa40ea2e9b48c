"""Reading the large tables one range of customers at a time gives the rows, the problems and the
row numbers of reading them whole, whether a row group lies inside a range, across its ends or
outside it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from customer_value.config import Settings
from customer_value.data.loading import STREAMED_TABLES, load_tables, load_tables_in_ranges
from customer_value.simulation.world import simulate_world, write_world


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory) -> str:
    """A small world whose streamed tables have small row groups (sorted by customer, as the
    simulator writes them) and one bad row each in the middle of the file."""
    out = tmp_path_factory.mktemp("ranges")
    write_world(simulate_world(300, 3), out)
    for name in STREAMED_TABLES:
        frame = pd.read_parquet(out / f"{name}.parquet")
        frame = frame.sort_values("customer_id", kind="stable").reset_index(drop=True)
        middle = len(frame) // 2
        if "amount" in frame:
            frame.loc[middle, "amount"] = -5.0 if name == "invoices" else frame.loc[middle, "amount"]
        frame.loc[middle + 1, "customer_id"] = "nobody-knows-me"  # an unknown customer: set aside
        key = {"invoices": "invoice_id", "support_tickets": "ticket_id"}.get(name)
        if key:  # an id repeated in the first and the last range: both rows set aside
            frame.loc[3, key] = frame.loc[len(frame) - 1, key]
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), out / f"{name}.parquet",
                       row_group_size=max(7, len(frame) // 23))
    return str(out)


def test_ranges_read_every_row_once_with_the_whole_files_checks(world_dir) -> None:
    settings = Settings(strict=False)
    whole = load_tables(world_dir, settings)
    loaded, reader = load_tables_in_ranges(world_dir, settings)
    ids = np.sort(loaded.tables.customers["customer_id"].to_numpy(dtype=object))
    bounds = [None, ids[40], ids[41], ids[150], None]  # one range of a single customer
    parts = [reader.read(a, b) for a, b in zip(bounds, bounds[1:])]
    for name in STREAMED_TABLES:
        expected = getattr(whole.tables, name).sort_values(list(getattr(whole.tables, name).columns)).reset_index(drop=True)
        got = pd.concat([p[name] for p in parts], ignore_index=True)
        got = got.sort_values(list(got.columns)).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)
        problems = loaded.report.problems
        mine = problems[problems["table"] == name].sort_values(["row", "column"]).reset_index(drop=True)
        theirs = whole.report.problems[whole.report.problems["table"] == name].sort_values(["row", "column"])
        assert len(mine) > 0
        if name != "engagement_events":
            assert (mine["check"].str.contains("unique|duplicate", case=False)).sum() == 2
        pd.testing.assert_frame_equal(mine[["row", "column", "check"]],
                                      theirs[["row", "column", "check"]].reset_index(drop=True), check_dtype=False)
