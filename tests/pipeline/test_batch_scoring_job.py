"""`score` in bounded memory: the population in ranges of customer_id, features per range in the
engine, two passes through the models, one Parquet file written atomically. The file equals
scoring everyone at once (to 1e-9), every customer once, the same bytes twice."""

from __future__ import annotations

import pandas as pd
import pytest

from customer_value.config import Settings
from customer_value.features import build_features
from customer_value.features.build import CustomerRange
from customer_value.pipeline.score import customer_batches, score
from customer_value.simulation.world import simulate_world
from customer_value.valuation.cashflows import portfolio_by_month

AS_OF = "2024-07-01"


def test_features_of_ranges_equal_the_whole_populations_rows() -> None:
    pools = {"costs": {"indirect_pools": [{"name": "platform", "annual_amount": 120000,
                                           "driver": "active_customer_months"}]}}
    for settings in (Settings(), Settings.model_validate(pools)):
        world = simulate_world(600, 5, settings=settings)
        whole = build_features(world.tables, AS_OF, settings)
        ids, ranges = customer_batches(whole["customer_id"], 170)
        sizes = [stop - first for _, first, stop in ranges]
        assert sizes[:-1] == [170] * (len(sizes) - 1) and 0 < sizes[-1] <= 170 and sum(sizes) == len(whole) > 340
        parts = [build_features(world.tables, AS_OF, settings, customers=r) for r, _, _ in ranges]
        pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)
        empty = build_features(world.tables, AS_OF, settings, customers=CustomerRange("~", "~~"))
        assert empty.empty and list(empty.columns) == list(whole.columns)


def test_batched_scoring_equals_scoring_everyone_at_once(trained, small_world, tmp_path) -> None:
    from customer_value.pipeline.score import score as run

    whole = run(small_world, pd.Timestamp(AS_OF).date(), trained.model_uri, tmp_path / "whole.parquet",
                log_run=False, cashflows=tmp_path / "whole_flows.parquet")
    batched = run(small_world, pd.Timestamp(AS_OF).date(), trained.model_uri, tmp_path / "batched.parquet",
                  log_run=False, batch_customers=250, report=tmp_path / "report.html",
                  cashflows=tmp_path / "batched_flows.parquet")
    again = run(small_world, pd.Timestamp(AS_OF).date(), trained.model_uri, tmp_path / "again.parquet",
                log_run=False, settings=Settings(max_customers_per_batch=250))  # a scoring config may set it
    assert whole.batches == 1 and batched.batches == again.batches > 2
    a, b = pd.read_parquet(whole.out), pd.read_parquet(batched.out)
    assert b["customer_id"].is_unique and b["customer_id"].is_monotonic_increasing
    assert list(a.columns) == list(b.columns)
    numbers = a.select_dtypes("number").columns
    pd.testing.assert_frame_equal(b[numbers], a[numbers], check_exact=False, rtol=1e-9, atol=1e-9)
    texts = [c for c in a.columns if c not in numbers]
    differ = {c: float((a[c].astype(object).fillna("").astype(str) != b[c].astype(object).fillna("").astype(str)).mean())
              for c in texts}
    assert all(share < 0.02 for share in differ.values()), {c: s for c, s in differ.items() if s}  # a cent can round either way
    # the file's metadata (what `whatif` reprices from) survives the batches
    assert pd.read_parquet(batched.out).attrs == pd.read_parquet(whole.out).attrs
    flows_a, flows_b = pd.read_parquet(tmp_path / "whole_flows.parquet"), pd.read_parquet(tmp_path / "batched_flows.parquet")
    pd.testing.assert_frame_equal(flows_b, flows_a, check_exact=False, rtol=1e-9, atol=1e-9)
    assert batched.report is not None and batched.report.exists()
    # the report's months add up over batches: the whole file's months, band included
    whole_months = portfolio_by_month(flows_a, a)
    pd.testing.assert_frame_equal(batched.cash_flows, whole_months, check_exact=False, rtol=1e-9, atol=1e-6)
    pd.testing.assert_frame_equal(whole.cash_flows, whole_months, check_exact=False, rtol=1e-9, atol=1e-6)
    assert {"expected_net_p10", "expected_net_p90"} <= set(whole_months.columns)
    assert again.cash_flows is None  # nobody asked for the months: no report, no run, no cash-flow file
    assert batched.out.read_bytes() == again.out.read_bytes()
    assert set(batched.seconds) >= {"features", "boosted models", "value rows", "write"}


def test_a_failed_batch_leaves_no_file(trained, small_world, tmp_path, monkeypatch) -> None:
    import customer_value.pipeline.score as job

    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return original(*args, **kwargs)

    original = job.score_batch
    monkeypatch.setattr(job, "score_batch", failing)
    out = tmp_path / "scores.parquet"
    with pytest.raises(RuntimeError, match="boom"):
        score(small_world, pd.Timestamp(AS_OF).date(), trained.model_uri, out, log_run=False, batch_customers=250)
    assert not out.exists() and not list(tmp_path.glob(".scores.parquet.*"))


def test_tables_read_by_range_equal_the_whole_load_with_the_same_report(tmp_path, monkeypatch) -> None:
    """The large tables read per customer range: the same kept rows and the same problems (file
    row numbers; an id duplicated across ranges; unknown and missing customers) as loading whole."""
    import customer_value.data.loading as loading
    from customer_value.data.loading import STREAMED_TABLES, load_tables, load_tables_in_ranges

    monkeypatch.setattr(loading, "RANGE_CUSTOMERS", 150)  # transactions checked in three ranges
    from customer_value.simulation.world import write_world

    world = simulate_world(400, 3)
    write_world(world, tmp_path / "clean")
    data = tmp_path / "bad"
    data.mkdir()
    for name in ("customers", "transactions", "engagement_events", "invoices", "support_tickets"):
        frame = pd.read_parquet(tmp_path / "clean" / f"{name}.parquet")
        if name == "transactions":  # one id used by two customers far apart, and a bad amount
            frame.loc[len(frame) - 1, "transaction_id"] = frame.loc[0, "transaction_id"]
            frame.loc[2, "amount"] = float("nan")
        if name == "invoices":  # one id used by two customers far apart
            frame.loc[len(frame) - 1, "invoice_id"] = frame.loc[0, "invoice_id"]
        if name == "support_tickets":
            frame.loc[3, "customer_id"] = "nobody"
            frame.loc[5, "customer_id"] = None
            frame.loc[7, "channel"] = "fax"
        frame.to_parquet(data / f"{name}.parquet", index=False, row_group_size=500)
    settings = Settings(strict=False)
    whole = load_tables(data, settings)
    loaded, reader = load_tables_in_ranges(data, settings)
    ids = sorted(loaded.tables.customers["customer_id"])
    cuts = [None, ids[100], ids[250], None]
    parts = [reader.read(a, b) for a, b in zip(cuts, cuts[1:])]
    for name in ("transactions", *STREAMED_TABLES):
        got = (loaded.tables.transactions if name == "transactions"
               else pd.concat([p[name] for p in parts], ignore_index=True))
        key = ([c for c in ("transaction_id", "invoice_id", "ticket_id") if c in got.columns]
               or ["customer_id", "occurred_at", "event_type"])
        key = key + ["customer_id"] if name == "transactions" else key
        expected = getattr(whole.tables, name)
        pd.testing.assert_frame_equal(got.sort_values(key, kind="stable").reset_index(drop=True),
                                      expected.sort_values(key, kind="stable").reset_index(drop=True))
        assert loaded.report.summary[name] == whole.report.summary[name]
    order = ["table", "row", "column", "check"]
    mine = loaded.report.problems.sort_values(order).reset_index(drop=True)
    assert len(mine) >= 5
    pd.testing.assert_frame_equal(mine, whole.report.problems.sort_values(order).reset_index(drop=True))


@pytest.mark.parametrize("horizon", [90, 730])
def test_any_horizon_scores_in_batches_with_its_sensitivity_table(trained, small_world, tmp_path, horizon) -> None:
    """730 sits inside the sensitivity horizons' spacing (a pandas 3 index pitfall once crashed it)."""
    result = score(small_world, pd.Timestamp(AS_OF).date(), trained.model_uri, tmp_path / "scores.parquet",
                   log_run=False, batch_customers=250, horizon_days=horizon, report=tmp_path / "report.html")
    rows = pd.read_parquet(result.out)
    assert result.batches > 2 and (rows["horizon_days"] == horizon).all() and rows["customer_id"].is_unique
    assert result.report is not None and result.report.exists()


@pytest.mark.slow
def test_scoring_with_compiled_trees_writes_the_lightgbm_scores(trained, small_world, tmp_path) -> None:
    """`compiled_trees: always` compiles the model's trees once into the cache and scores with them:
    the same file as LightGBM's to 1e-9, the same customers, the same texts; the next scoring of
    the model finds the cache (auto) without compiling again."""
    from customer_value.pipeline.score import score as run

    day = pd.Timestamp(AS_OF).date()
    cache = tmp_path / "compiled"
    lightgbm = run(small_world, day, trained.model_uri, tmp_path / "lightgbm.parquet", log_run=False,
                   settings=Settings(compiled_trees="never"))
    compiled = run(small_world, day, trained.model_uri, tmp_path / "compiled.parquet", log_run=False,
                   settings=Settings(compiled_trees="always", compiled_trees_dir=str(cache)))
    objects = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.o")}
    assert objects and not list(cache.glob("*.partial"))
    cached = run(small_world, day, trained.model_uri, tmp_path / "cached.parquet", log_run=False,
                 settings=Settings(compiled_trees_dir=str(cache)))
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("*.o")} == objects
    a = pd.read_parquet(lightgbm.out)
    for result in (compiled, cached):
        b = pd.read_parquet(result.out)
        assert list(b.columns) == list(a.columns) and b["customer_id"].tolist() == a["customer_id"].tolist()
        numbers = a.select_dtypes("number").columns
        pd.testing.assert_frame_equal(b[numbers], a[numbers], check_exact=False, rtol=1e-9, atol=1e-9)
        texts = [c for c in a.columns if c not in numbers]
        pd.testing.assert_frame_equal(b[texts].astype(str), a[texts].astype(str))
    assert compiled.seconds["compile trees"] > cached.seconds["compile trees"]


@pytest.mark.slow
def test_the_compile_command_fills_the_cache_that_scoring_reads(trained, small_world, tmp_path) -> None:
    """`customer-value compile --model URI` compiles once where the config says; `score` with the
    same config then runs compiled without compiling (the weekly job's promotion step)."""
    from typer.testing import CliRunner

    from customer_value.cli import app

    cache = tmp_path / "compiled"
    config = tmp_path / "scoring.yaml"
    config.write_text(f"compiled_trees_dir: {cache}\n")
    runner = CliRunner()
    result = runner.invoke(app, ["compile", "--model", trained.model_uri, "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "compiled" in result.output and str(cache) in result.output.replace("\n", "")
    objects = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.o")}
    assert objects
    result = runner.invoke(app, ["score", "--data", str(small_world), "--as-of", AS_OF, "--model", trained.model_uri,
                                 "--out", str(tmp_path / "s.parquet"), "--config", str(config), "--no-log"])
    assert result.exit_code == 0, result.output
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("*.o")} == objects
