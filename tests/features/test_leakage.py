"""Nothing at or after as_of influences features; targets of a window ending at D need nothing
from D on. Full data vs data cut at D (later rows removed, later facts masked) must agree."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from customer_value.config import Settings
from customer_value.data.tables import Tables
from customer_value.features import build_features, build_targets, rfm_summary
from feature_worlds import AS_OF, cut_at, random_world

EARLIER = AS_OF - dt.timedelta(days=180)


@pytest.fixture(scope="module")
def hot_world() -> Tables:
    """Many rows exactly at midnight of AS_OF and of EARLIER (those rows are future)."""
    return random_world(n_customers=250, seed=11, hot_dates=(AS_OF, EARLIER))


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    # identical up to the order floating-point sums are added in (parallel aggregation)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12, atol=1e-9)


def test_rows_at_as_of_are_present(hot_world: Tables) -> None:
    at = pd.Timestamp(AS_OF)
    assert (hot_world.transactions.occurred_at == at).sum() > 10
    assert (hot_world.engagement_events.occurred_at == at).sum() > 10
    assert (hot_world.invoices.paid_at == at).sum() > 0
    assert (hot_world.support_tickets.resolved_at >= at).sum() > 0


@pytest.mark.parametrize("as_of", [AS_OF, EARLIER])
def test_features_ignore_the_future(hot_world: Tables, pooled_settings: Settings, as_of: dt.date) -> None:
    full = build_features(hot_world, as_of, pooled_settings)
    cut = build_features(cut_at(hot_world, as_of), as_of, pooled_settings)
    assert len(full) == (hot_world.customers.signup_at < pd.Timestamp(as_of)).sum()
    _same(full, cut)


def test_rfm_summary_ignores_the_future(hot_world: Tables) -> None:
    settings = Settings(time_unit="weeks")
    _same(rfm_summary(hot_world, AS_OF, settings), rfm_summary(cut_at(hot_world, AS_OF), AS_OF, settings))


def test_targets_of_a_window_ending_at_the_cut(hot_world: Tables, pooled_settings: Settings) -> None:
    horizon = (AS_OF - EARLIER).days
    full = build_targets(hot_world, EARLIER, pooled_settings, horizon_days=horizon)
    cut = build_targets(cut_at(hot_world, AS_OF), EARLIER, pooled_settings, horizon_days=horizon)
    _same(full, cut)
    assert full.cost_pool_platform.sum() > 0 and full.cost_invoices_and_late.sum() > 0


def test_the_future_does_change_targets(hot_world: Tables, pooled_settings: Settings) -> None:
    """Guard against a vacuous leakage test: rows at D do count for the window starting at D."""
    full = build_targets(hot_world, AS_OF, pooled_settings, horizon_days=1)
    at = hot_world.transactions[hot_world.transactions.occurred_at == pd.Timestamp(AS_OF)]
    assert full.revenue.sum() == pytest.approx(at[at.customer_id.isin(full.customer_id)].amount.sum())
