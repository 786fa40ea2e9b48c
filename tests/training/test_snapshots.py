"""Stacked training sets: snapshot dates, no leakage across as_of or snapshots, labels per task."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from customer_value.boosted.inputs import feature_matrix
from customer_value.config import Settings
from customer_value.data.tables import Tables
from customer_value.features import build_features, build_targets
from customer_value.features.history import tables_before
from customer_value.training.snapshots import Builders, SnapshotCache, build_training_sets, snapshot_dates

AS_OF = dt.date(2024, 7, 1)
SETTINGS = Settings(snapshots={"count": 3, "spacing_days": 30})


def synthetic_tables(n: int = 300, seed: int = 0, start: str = "2022-01-01", end: str = "2025-01-01") -> Tables:
    """A small world: sign-ups over two and a half years, Poisson purchases until an exponential
    lifetime ends, support tickets (more for "difficult" customers), no engagement or invoices."""
    rng = np.random.default_rng(seed)
    t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
    span = (t1 - t0).days
    signup = t0 + pd.to_timedelta(rng.integers(0, span - 200, n), unit="D")
    signup = signup + pd.to_timedelta(rng.integers(0, 86400, n), unit="s")
    ids = np.array([f"C{i:05d}" for i in range(n)])
    rate = rng.gamma(2.0, 1 / 40.0, n)
    life = rng.exponential(400.0, n)
    customers = pd.DataFrame({
        "customer_id": pd.array(ids, dtype="str"),
        "signup_at": np.asarray(signup, dtype="datetime64[us]"),
        "plan": pd.array(rng.choice(["basic", "pro", "enterprise"], n), dtype="str"),
        "acquisition_channel": pd.array(rng.choice(["ads", "organic", "referral"], n), dtype="str"),
        "region": pd.array(rng.choice(["eu", "us", "apac"], n), dtype="str"),
        "referred_by": pd.array([None] * n, dtype="str"),
    })
    cust, times, amounts = [], [], []
    for i in range(n):
        days = max(0.01, min((t1 - signup[i]).days, life[i]))
        k = rng.poisson(rate[i] * days) + 1
        offsets = np.sort(rng.uniform(0, days, k))
        offsets[0] = 0.0
        cust += [ids[i]] * k
        times += list(signup[i] + pd.to_timedelta(offsets, unit="D"))
        amounts += list(rng.gamma(2.0, 25.0, k))
    tx = pd.DataFrame({"customer_id": cust, "occurred_at": times, "amount": amounts})
    tx = tx[tx["occurred_at"] < t1].reset_index(drop=True)
    transactions = pd.DataFrame({
        "transaction_id": pd.array([f"T{i:07d}" for i in range(len(tx))], dtype="str"),
        "customer_id": pd.array(tx["customer_id"], dtype="str"),
        "occurred_at": np.asarray(tx["occurred_at"], dtype="datetime64[us]"),
        "amount": tx["amount"].to_numpy(float),
        "gross_margin": tx["amount"].to_numpy(float) * 0.4,
    })
    difficult = rng.random(n) < 0.2
    k = rng.poisson(np.where(difficult, 4.0, 0.8))
    owner = np.repeat(np.arange(n), k)
    opened = signup[owner] + pd.to_timedelta(rng.uniform(0, 1, owner.size) * (t1 - signup[owner]).days, unit="D")
    tickets = pd.DataFrame({
        "ticket_id": pd.array([f"S{i:06d}" for i in range(owner.size)], dtype="str"),
        "customer_id": pd.array(ids[owner], dtype="str"),
        "opened_at": np.asarray(opened, dtype="datetime64[us]"),
        "channel": pd.array(rng.choice(["email", "chat", "phone"], owner.size), dtype="str"),
        "handle_minutes": rng.gamma(2.0, 10.0, owner.size),
        "escalated": rng.random(owner.size) < 0.1,
        "satisfaction": pd.array([None] * owner.size, dtype="Int64"),
        "resolved_at": np.asarray(opened + pd.Timedelta(days=2), dtype="datetime64[us]"),
    })
    return Tables.from_frames(customers=customers, transactions=transactions, support_tickets=tickets)


def _max_time(tables: Tables) -> pd.Timestamp:
    return max(
        tables.customers["signup_at"].max(),
        tables.transactions["occurred_at"].max(),
        tables.support_tickets["opened_at"].max(),
        tables.support_tickets["resolved_at"].max(),
    )


@pytest.fixture(scope="module")
def world() -> Tables:
    return synthetic_tables()


@pytest.fixture(scope="module")
def built(world: Tables):
    """Both training sets, built through spies that record what the builders were given."""
    calls: dict[str, list] = {"features": [], "targets": []}

    def features(tables, as_of, settings, engine="duckdb"):
        calls["features"].append((as_of, _max_time(tables)))
        return build_features(tables, as_of, settings, engine=engine)

    def targets(tables, as_of, settings, engine="duckdb", horizon_days=None):
        calls["targets"].append((as_of, horizon_days, _max_time(tables)))
        return build_targets(tables, as_of, settings, engine=engine, horizon_days=horizon_days)

    sets, cache = build_training_sets(world, AS_OF, SETTINGS, builders=Builders(features=features, targets=targets))
    return sets, cache, calls


def test_snapshot_dates_end_on_or_before_as_of():
    dates = snapshot_dates(AS_OF, 90, count=6, spacing_days=30)
    assert len(dates) == 6
    assert dates == sorted(dates)
    assert dates[-1] == AS_OF - dt.timedelta(days=90)  # the latest complete window ends at A
    assert all(b - a == dt.timedelta(days=30) for a, b in zip(dates, dates[1:]))
    assert all(s + dt.timedelta(days=90) <= AS_OF for s in dates)


def test_no_label_window_crosses_as_of(built):
    sets, _, calls = built
    for task, ts in sets.items():
        assert len(ts.snapshot_dates) == SETTINGS.snapshots.count
        assert all(s + dt.timedelta(days=ts.window_days) <= AS_OF for s in ts.snapshot_dates)
        assert ts.valid_date == AS_OF - dt.timedelta(days=ts.window_days)
        assert set(np.unique(ts.groups_valid)) == {len(ts.snapshot_dates) - 1}
        assert set(np.unique(ts.groups_train)) == set(range(len(ts.snapshot_dates) - 1))
    # every target request ends on or before A and sees no data at or after A
    assert calls["targets"]
    for as_of, horizon, latest in calls["targets"]:
        assert as_of + dt.timedelta(days=horizon) <= AS_OF
        assert latest < pd.Timestamp(AS_OF)
    for _, latest in calls["features"]:
        assert latest < pd.Timestamp(AS_OF)


def test_rows_and_labels_line_up(built, world):
    sets, _, _ = built
    churn, cost = sets["churn"], sets["cost"]
    assert churn.window_days == SETTINGS.churn_window_days and cost.window_days == SETTINGS.horizon_days
    for ts in (churn, cost):
        assert len(ts.X_train) == len(ts.y_train) == len(ts.ids_train) == len(ts.targets_train)
        assert len(ts.X_valid) == len(ts.y_valid) == len(ts.ids_valid)
        assert (ts.targets_train["customer_id"].to_numpy() == ts.ids_train).all()
        assert "customer_id" not in ts.X_train.columns
        assert {"bgnbd_p_alive", "bgnbd_expected_transactions", "bgnbd_p_no_purchase"} <= set(ts.X_train.columns)
        assert list(ts.X_train.columns) == list(ts.X_valid.columns)
    assert set(np.unique(churn.y_train)) <= {0.0, 1.0}
    assert (cost.y_train >= 0).all()
    # only customers signed up before each snapshot
    signup = world.customers.set_index("customer_id")["signup_at"]
    for k, s in enumerate(churn.snapshot_dates[:-1]):
        ids = churn.ids_train[churn.groups_train == k]
        assert (signup.loc[ids] < pd.Timestamp(s)).all()


def test_features_at_a_snapshot_ignore_rows_at_or_after_it(built, world):
    """Altering everything at or after snapshot s leaves the features (incl. BG/NBD) at s alone."""
    sets, _, _ = built
    ts = sets["churn"]
    k = 1
    s = ts.snapshot_dates[k]
    cut = pd.Timestamp(s)
    tx = world.transactions.copy()
    later = tx["occurred_at"] >= cut
    tx.loc[later, "amount"] = tx.loc[later, "amount"] * 10 + 5
    extra = tx.loc[later].head(50).assign(
        transaction_id=lambda d: "X" + d["transaction_id"],
        occurred_at=lambda d: d["occurred_at"] + pd.Timedelta(hours=1),
    )
    tk = world.support_tickets.copy()
    tk_later = tk["opened_at"] >= cut
    tk.loc[tk_later, "handle_minutes"] = 999.0
    resolved_later = tk["resolved_at"] >= cut
    tk.loc[resolved_later, "resolved_at"] = pd.NaT
    altered = Tables.from_frames(
        customers=world.customers,
        transactions=pd.concat([tx, extra], ignore_index=True),
        support_tickets=tk,
    )
    cache = SnapshotCache(tables_before(altered, AS_OF), SETTINGS)
    again = feature_matrix(cache.features(s, ts.window_days), ts.categories)
    original = ts.X_train[ts.groups_train == k].reset_index(drop=True)
    pd.testing.assert_frame_equal(again.reset_index(drop=True), original)


def test_rows_after_as_of_are_invisible(world):
    later = world.transactions.tail(20).assign(
        transaction_id=lambda d: "F" + d["transaction_id"], occurred_at=pd.Timestamp(AS_OF) + pd.Timedelta(days=3)
    )
    inv = pd.DataFrame({
        "invoice_id": pd.array(["I1", "I2"], dtype="str"),
        "customer_id": pd.array(world.customers["customer_id"].head(2), dtype="str"),
        "issued_at": np.asarray([pd.Timestamp("2024-06-01"), pd.Timestamp("2024-07-05")], dtype="datetime64[us]"),
        "due_at": np.asarray([pd.Timestamp("2024-06-15"), pd.Timestamp("2024-07-20")], dtype="datetime64[us]"),
        "amount": [10.0, 20.0],
        "paid_at": pd.to_datetime(["2024-07-02", None]).astype("datetime64[us]"),
        "failed_payment_attempts": pd.array([2, 0], dtype="Int64"),
    })
    plus = Tables.from_frames(
        customers=world.customers,
        transactions=pd.concat([world.transactions, later], ignore_index=True),
        support_tickets=world.support_tickets,
        invoices=inv,
    )
    cut = tables_before(plus, AS_OF)
    pd.testing.assert_frame_equal(cut.transactions, tables_before(world, AS_OF).transactions)
    assert len(cut.invoices) == 1  # issued after A: dropped
    assert pd.isna(cut.invoices["paid_at"].iloc[0])  # paid after A: unknown at A
    assert pd.isna(cut.invoices["failed_payment_attempts"].iloc[0])


def test_same_data_settings_and_seed_give_identical_models_and_metrics(built, world):
    from customer_value import metrics as ev
    from customer_value.training.snapshots import build_training_set
    from customer_value.training.tuning import tune

    first = built[0]["churn"]
    again = build_training_set(world, AS_OF, SETTINGS, "churn")
    pd.testing.assert_frame_equal(again.X_train, first.X_train)
    pd.testing.assert_frame_equal(again.X_valid, first.X_valid)
    np.testing.assert_array_equal(again.y_train, first.y_train)
    runs = [tune(ts, SETTINGS, n_trials=2, num_boost_round=60, num_threads=1) for ts in (first, again)]
    assert runs[0].best_params == runs[1].best_params
    assert runs[0].model.booster_.model_to_string() == runs[1].model.booster_.model_to_string()
    metrics = [ev.churn_metrics(ts.y_valid, r.model.predict_proba(ts.X_valid)) for ts, r in zip((first, again), runs)]
    assert metrics[0] == metrics[1]


def test_margin_labels_and_the_churn_probability_feature(built):
    """Margin labels are the window's margin floored at 0; the churn probability added to each
    margin row is the churn model applied to that row's own snapshot features."""
    from customer_value.boosted.margin import CHURN_FEATURE
    from customer_value.training.tasks import with_churn_probability

    sets, cache, _ = built
    margin = sets["margin"]
    assert margin.window_days == SETTINGS.horizon_days
    np.testing.assert_array_equal(margin.y_train, np.clip(margin.targets_train["margin"].to_numpy(float), 0, None))
    assert (margin.y_valid >= 0).all()

    class DaysSince:  # a stand-in churn model: a known function of the snapshot's own features
        def predict_proba(self, X):
            return np.tanh(X["days_since_last_purchase"].fillna(999).to_numpy(float) / 100.0)

    added = with_churn_probability(margin, cache, DaysSince(), SETTINGS)
    for k, s in enumerate(margin.snapshot_dates[:-1]):
        rows = margin.groups_train == k
        expected = np.tanh(margin.X_train.loc[rows, "days_since_last_purchase"].fillna(999).to_numpy(float) / 100.0)
        np.testing.assert_allclose(added.X_train.loc[rows, CHURN_FEATURE].to_numpy(), expected)
    expected_valid = np.tanh(margin.X_valid["days_since_last_purchase"].fillna(999).to_numpy(float) / 100.0)
    np.testing.assert_allclose(added.X_valid[CHURN_FEATURE].to_numpy(), expected_valid)


def test_drain_labels_are_a_negative_net_value_over_the_horizon(built):
    sets, _, _ = built
    drain = sets["drain"]
    assert drain.window_days == SETTINGS.horizon_days
    assert drain.snapshot_dates == sets["cost"].snapshot_dates
    net = drain.targets_train["margin"] - drain.targets_train["cost_to_serve"]
    np.testing.assert_array_equal(drain.y_train, (net < 0).to_numpy(float))
    np.testing.assert_array_equal(drain.y_valid, (drain.targets_valid["net_value"] < 0).to_numpy(float))
    assert 0 < drain.y_train.mean() < 1


# ---------------------------------------------------------------------------------------------
# a young base: the horizon-long tasks' labels over a shorter, later window, scaled to the horizon
# ---------------------------------------------------------------------------------------------

YOUNG_AS_OF = dt.date(2023, 7, 1)  # the synthetic world starts on 2022-01-01: an 18-month-old base


@pytest.mark.parametrize(("age", "expected"), [(200, 365), (365, 365), (366, 182), (547, 182), (600, 235), (729, 364), (730, 365), (1500, 365)])
def test_label_window_shrinks_only_on_a_base_between_one_and_two_horizons_old(age, expected):
    from customer_value.training.snapshots import label_window_days

    first = pd.Timestamp(AS_OF) - pd.Timedelta(days=age)
    assert label_window_days(365, AS_OF, first) == expected
    assert label_window_days(365, AS_OF, None) == 365


def test_scaled_labels_keep_net_value_margin_minus_cost_and_leave_churn_alone():
    from customer_value.training.snapshots import scaled_labels

    targets = pd.DataFrame({"customer_id": ["A", "B"], "revenue": [100.0, 0.0], "margin": [40.0, 0.0],
                            "transactions": [2, 0], "churned": [0, 1], "cost_support": [5.0, 30.0],
                            "cost_to_serve": [10.0, 30.0], "net_value": [30.0, -30.0], "escalations": [0, 2]})
    out = scaled_labels(targets, {"purchases": 1.5, "cost": 1.8})
    np.testing.assert_allclose(out["revenue"], [150.0, 0.0])
    np.testing.assert_allclose(out["transactions"], [3.0, 0.0])
    np.testing.assert_allclose(out["cost_to_serve"], [18.0, 54.0])
    np.testing.assert_allclose(out["escalations"], [0.0, 3.6])
    np.testing.assert_array_equal(out["churned"], [0, 1])
    np.testing.assert_allclose(out["net_value"], out["margin"] - out["cost_to_serve"])
    assert list(out["customer_id"]) == ["A", "B"]
    assert targets["revenue"].tolist() == [100.0, 0.0]  # the input is not modified


def test_a_young_base_learns_from_later_snapshots_with_labels_scaled_to_the_horizon(world):
    from customer_value.training.snapshots import build_training_set, label_window_days

    off = SETTINGS.model_copy(update={"snapshots": SETTINGS.snapshots.model_copy(update={"young_base_labels": False})})
    window = label_window_days(365, YOUNG_AS_OF, world.customers["signup_at"].min())
    assert 182 <= window < 365
    cache = SnapshotCache(tables_before(world, YOUNG_AS_OF), SETTINGS)
    young = build_training_set(world, YOUNG_AS_OF, SETTINGS, "cost", cache=cache)
    plain = build_training_set(world, YOUNG_AS_OF, off, "cost")

    assert plain.valid_date == YOUNG_AS_OF - dt.timedelta(days=365) and plain.label_window_days is None
    assert young.window_days == 365 and young.label_window_days == window
    assert young.valid_date == YOUNG_AS_OF - dt.timedelta(days=window)  # later snapshots: older customers
    assert len(young.y_train) > len(plain.y_train)
    assert "labels over" in young.summary()

    # the scale: the horizon's totals over its first `window` days, on the customers a horizon before A
    anchor = YOUNG_AS_OF - dt.timedelta(days=365)
    cut = tables_before(world, YOUNG_AS_OF)
    full, part = build_targets(cut, anchor, SETTINGS), build_targets(cut, anchor, SETTINGS, horizon_days=window)
    expected = {side: float(np.clip(full[c].sum() / part[c].sum(), 1.0, 365 / window))
                for side, c in (("purchases", "margin"), ("cost", "cost_to_serve"))}
    assert young.label_scale == pytest.approx(expected)
    assert 1.0 < young.label_scale["cost"] <= 365 / window

    # the labels: what happened over [s, s + window) before A, times the scale; features as at the horizon
    s = young.snapshot_dates[0]
    assert s + dt.timedelta(days=window) <= YOUNG_AS_OF
    realised = build_targets(cut, s, SETTINGS, horizon_days=window).set_index("customer_id")
    rows = young.groups_train == 0
    np.testing.assert_allclose(young.y_train[rows],
                               realised.loc[young.ids_train[rows], "cost_to_serve"].to_numpy() * young.label_scale["cost"])
    np.testing.assert_allclose(young.targets_train["net_value"],
                               young.targets_train["margin"] - young.targets_train["cost_to_serve"])
    pd.testing.assert_frame_equal(young.X_valid, feature_matrix(cache.features(young.valid_date, 365), young.categories))

    # churn has its own short window: untouched
    churn_young = build_training_set(world, YOUNG_AS_OF, SETTINGS, "churn")
    churn_plain = build_training_set(world, YOUNG_AS_OF, off, "churn")
    assert churn_young.label_window_days is None
    np.testing.assert_array_equal(churn_young.y_train, churn_plain.y_train)
