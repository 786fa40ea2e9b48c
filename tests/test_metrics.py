"""Evaluation metrics and baselines."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from customer_value import metrics as ev


def test_churn_metrics_match_references():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500).astype(float)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 500), 0, 1)
    m = ev.churn_metrics(y, p)
    assert set(m) == set(ev.CHURN_METRICS)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, p))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, np.clip(p, 1e-6, 1 - 1e-6)))
    assert ev.roc_auc(np.ones(5), np.arange(5)) != ev.roc_auc(np.ones(5), np.arange(5))  # NaN
    # lift: positives concentrated in the top decile
    y2 = np.r_[np.ones(10), np.zeros(90)]
    assert ev.top_decile_lift(y2, -np.arange(100)) == pytest.approx(10.0)
    assert ev.top_decile_lift(y2, np.arange(100)) == 0.0


def test_cost_metrics_match_references():
    rng = np.random.default_rng(1)
    y = rng.gamma(0.5, 20, 400) * (rng.random(400) < 0.7)
    pred = 0.5 * y + rng.gamma(2, 5, 400)
    m = ev.cost_metrics(y, pred)
    assert set(m) == set(ev.COST_METRICS)
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert m["tweedie_deviance"] == pytest.approx(skm.mean_tweedie_deviance(y, pred, power=1.5))
    assert m["spearman"] == pytest.approx(stats.spearmanr(y, pred).statistic)
    assert ev.normalized_gini(y, y) == pytest.approx(1.0)
    assert abs(ev.normalized_gini(y, rng.random(400))) < 0.2
    assert ev.normalized_gini(y, pred) > 0.5
    with pytest.raises(ValueError, match="non-negative"):
        ev.tweedie_deviance([-1.0], [1.0])
    with pytest.raises(ValueError, match="length"):
        ev.mae([1.0, 2.0], [1.0])


def test_decile_table_and_backtest_helpers():
    y = np.arange(100, dtype=float)
    table = ev.decile_table(y, y)
    assert len(table) == 10 and table["customers"].sum() == 100
    assert table["decile"].tolist() == list(range(1, 11))
    assert table["mean_actual"].is_monotonic_decreasing
    assert table["share_of_actual"].sum() == pytest.approx(1.0)
    assert ev.top_decile_capture(y, y) == 1.0  # the best possible top decile
    assert ev.top_decile_capture(y, -y) == pytest.approx(y[:10].sum() / y[90:].sum())
    pr = ev.precision_recall_at([True, True, False, False], [True, False, True, False])
    assert pr == {"precision": 0.5, "recall": 0.5, "flagged": 2.0}
    assert np.isnan(ev.precision_recall_at([True], [False])["precision"])
    assert ev.gap_closed(0.8, 0.7, 0.9) == pytest.approx(0.5)
    assert ev.gap_closed(0.45, 0.5, 0.3) == pytest.approx(0.25)  # lower is better works too


def test_recency_baseline():
    days = np.array([10.0, 100.0, np.nan, 89.9, 90.0])
    assert ev.recency_rule(days, 90).tolist() == [False, True, True, False, True]
    score = ev.recency_score(days)
    assert score[2] > np.nanmax(days)  # never bought ranks as least recent
    rates = ev.recency_rule_rates(days, np.array([0, 1, 1, 0, 0]), 90)
    assert rates == pytest.approx((0.0, 2 / 3))
    s, p = ev.recency_baseline(days, 90, rates)
    assert p.tolist() == pytest.approx([0.0, 2 / 3, 2 / 3, 0.0, 2 / 3])


def test_top_decile_capture_is_bounded_when_losses_dominate():
    """Signed values whose total is near zero or negative: the capture stays at most 1 (a share of
    the total would be 3+ here), goes below 0 when the picks lose money, NaN with nothing to capture."""
    rng = np.random.default_rng(3)
    y = np.concatenate([rng.normal(-50.0, 10.0, 900), rng.exponential(40.0, 100)])
    assert y.sum() < 0
    for score in (y, rng.random(1000), y + rng.normal(0, 30, 1000), -y):
        assert ev.top_decile_capture(y, score) <= 1.0 + 1e-12
    assert ev.top_decile_capture(y, y) == 1.0
    assert ev.top_decile_capture(y, -y) < 0
    assert np.isnan(ev.top_decile_capture(-np.abs(y), rng.random(1000)))
    ties = np.array([5.0, 5.0, 5.0, -1.0] * 5)  # ties at the cut are still at most the best
    assert ev.top_decile_capture(ties, np.zeros(20)) <= 1.0
