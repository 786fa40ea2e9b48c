"""Backtest metrics of one scored cutoff: flags of realised negative-value customers for the value,
the drain model and the historical baseline, computed by hand on a tiny frame."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from customer_value.evaluation.backtest import BacktestResult, comparison_table, value_metrics


def _scored(with_drain: bool) -> pd.DataFrame:
    net = np.array([-50.0, -5.0, -1.0, 10.0, 20.0, 30.0, 0.0, 40.0])
    frame = pd.DataFrame({
        "net_value": net,
        "customer_value": [-10.0, 3.0, 4.0, -2.0, 15.0, 25.0, -1.0, 30.0],  # flags rows 0, 3, 6
        "historical_value": [-8.0, -3.0, 5.0, 6.0, -4.0, 20.0, 1.0, 35.0],  # flags rows 0, 1, 4
        "bgnbd_gg_revenue": np.arange(8.0),
        "expected_margin": net + 5.0, "expected_cost_to_serve": 5.0, "expected_referral_value": 0.0,
        "revenue": np.arange(8.0), "expected_revenue": np.arange(8.0),
        "cost_to_serve": np.arange(8.0), "historical_cost_to_serve": np.arange(8.0),
        "churned": [1, 1, 0, 0, 1, 0, 1, 0], "churn_probability": 0.5,
    })
    if with_drain:
        frame["drain_probability"] = [0.9, 0.7, 0.6, 0.1, 0.2, 0.1, 0.3, 0.05]
        frame["drain_flag"] = frame["drain_probability"] >= 0.5  # flags rows 0, 1, 2
    return frame


def test_each_flag_is_scored_against_realised_negatives():
    m = value_metrics(_scored(with_drain=True))  # realised negatives: rows 0, 1, 2
    assert m["value.negative_precision"] == pytest.approx(1 / 3)
    assert m["value.negative_recall"] == pytest.approx(1 / 3)
    assert m["baseline_historical_value.negative_precision"] == pytest.approx(2 / 3)
    assert m["baseline_historical_value.negative_recall"] == pytest.approx(2 / 3)
    assert m["drain.negative_precision"] == 1.0 and m["drain.negative_recall"] == 1.0
    assert m["drain.roc_auc"] == 1.0


def test_without_a_drain_model_there_are_no_drain_metrics():
    m = value_metrics(_scored(with_drain=False))
    assert not [k for k in m if k.startswith("drain.")]
    table = comparison_table(BacktestResult(pd.DataFrame([{"cutoff": dt.date(2024, 1, 1), **m}])))
    assert "drain" not in table.index and "value" in table.index


def test_comparison_table_puts_the_drain_flag_beside_the_baselines():
    m = value_metrics(_scored(with_drain=True))
    table = comparison_table(BacktestResult(pd.DataFrame([{"cutoff": dt.date(2024, 1, 1), **m}])))
    assert table.loc["drain", "negative_precision"] == 1.0
    assert np.isnan(table.loc["drain", "spearman"])  # a flag, not a ranking of value
    assert table.loc["baseline_historical_value", "negative_recall"] == pytest.approx(2 / 3, abs=1e-4)  # rounded


def test_a_part_missing_at_a_cutoff_is_counted_not_averaged_in():
    """At one cutoff the drain model was skipped: its score rows still carry drain_flag (the
    value < 0 fallback), which must not enter the drain row; the table says at how many cutoffs
    each score existed, and the per-cutoff table says what was skipped."""
    fallback = _scored(with_drain=False).assign(drain_flag=lambda f: f["customer_value"] < 0)
    without = value_metrics(fallback)
    assert not [k for k in without if k.startswith("drain.")]
    rows = [{"cutoff": dt.date(2024, 1, 1), **value_metrics(_scored(with_drain=True)), "skipped": ""},
            {"cutoff": dt.date(2024, 4, 1), **without, "skipped": "cost, drain"}]
    result = BacktestResult(pd.DataFrame(rows))
    table = comparison_table(result)
    assert table.loc["drain", "cutoffs"] == "1/2" and table.loc["value", "cutoffs"] == "2/2"
    assert table.loc["drain", "negative_precision"] == 1.0  # the drain model's own cutoff only
    assert set(result.flat_metrics()) >= {"backtest.value.spearman", "backtest.drain.negative_precision"}
    assert table["spearman"].dtype == float


@pytest.mark.slow
def test_a_backtest_reconciles_monthly_cash_flows_with_what_happened() -> None:
    """One cutoff on a small world: the monthly forecast adds up to the score rows, the realised
    months add up to the realised year (margin), and the errors are reported per month."""
    from customer_value.config import Settings
    from customer_value.evaluation.backtest import run_backtest
    from customer_value.simulation.world import simulate_world

    settings = Settings.model_validate({"trials": 1, "snapshots": {"count": 3, "spacing_days": 30}})
    world = simulate_world(1200, 4, settings=settings)
    cutoff = dt.date(2023, 7, 1)
    result = run_backtest(world.tables, [cutoff], settings)
    monthly, scored = result.monthly[cutoff], result.scored[cutoff]
    assert len(monthly) == 12 and monthly["month"].iloc[0] == cutoff
    assert monthly["expected_margin"].sum() == pytest.approx(scored["expected_margin"].sum(), rel=1e-9)
    assert monthly["expected_cost"].sum() == pytest.approx(scored["expected_cost_to_serve"].sum(), rel=1e-9)
    assert monthly["realised_margin"].sum() == pytest.approx(scored["margin"].sum(), rel=1e-9)
    # an invoice is late when judged at its window's end: a month judges sooner than the year, so
    # the months see at most the year's late payments (without pools the rest partitions exactly)
    assert monthly["realised_cost"].sum() <= scored["cost_to_serve"].sum() + 1e-6
    assert monthly["realised_cost"].sum() == pytest.approx(scored["cost_to_serve"].sum(), rel=0.03)
    assert np.isfinite(monthly[["margin_error", "cost_error"]]).all().all()
    row = result.metrics.iloc[0]
    assert row["monthly.margin_mape"] == pytest.approx(monthly["margin_error"].abs().mean())
    # the 80% intervals, calibrated on the year before the cutoff, are measured on the year after
    for quantity in ("net_value", "revenue", "cost_to_serve"):
        assert 0.6 <= row[f"intervals.{quantity}.coverage"] <= 0.95
        assert row[f"intervals.{quantity}.mean_width"] > 0
    assert any(c.startswith("intervals.net_value.coverage.") for c in result.metrics)
