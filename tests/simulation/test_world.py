"""The simulated world: deterministic, contract-shaped, internally consistent, and worth modelling
(costs matter, the oracle is calibrated against what actually happened)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from customer_value.config import TICKET_CHANNELS, CostRates, Settings
from customer_value.data.tables import TABLE_COLUMNS, Tables
from customer_value.simulation.world import EVENT_TYPES, SimulatedWorld, simulate_world, write_world

AS_OF = pd.Timestamp("2024-07-01")
END = pd.Timestamp("2025-07-01")
YEAR = pd.Timedelta(days=365)


@pytest.fixture(scope="module")
def world() -> SimulatedWorld:
    return simulate_world(3000, seed=11)


def window_margin_and_cost(t: Tables, start: pd.Timestamp, end: pd.Timestamp, costs: CostRates) -> pd.DataFrame:
    """Contract section 3 per customer over [start, end): revenue, margin, cost (no indirect pools)."""
    def within(frame: pd.DataFrame, col: str) -> pd.DataFrame:
        return frame[(frame[col] >= start) & (frame[col] < end)]

    tx = within(t.transactions, "occurred_at")
    orders = tx[tx["amount"] > 0]
    tickets = within(t.support_tickets, "opened_at")
    invoices = within(t.invoices, "issued_at")
    paid_inside = invoices["paid_at"].notna() & (invoices["paid_at"] < end)
    late = (paid_inside & (invoices["paid_at"] > invoices["due_at"])) | (~paid_inside & (invoices["due_at"] < end))
    ticket_cost = (tickets["handle_minutes"] * tickets["channel"].map(costs.minute_rate)
                   + costs.escalation_cost * tickets["escalated"])
    order_cost = costs.order_cost + costs.payment_fee_rate * orders["amount"]
    parts = {
        "revenue": tx.groupby("customer_id")["amount"].sum(),
        "margin": tx.groupby("customer_id")["gross_margin"].sum(),
        "transactions": orders.groupby("customer_id").size(),
        "ticket_cost": ticket_cost.groupby(tickets["customer_id"]).sum(),
        "order_cost": order_cost.groupby(orders["customer_id"]).sum(),
        "invoice_cost": (costs.invoice_cost + costs.late_payment_cost * late).groupby(invoices["customer_id"]).sum(),
    }
    out = pd.DataFrame(parts).reindex(t.customers["customer_id"]).fillna(0.0)
    return out.assign(cost=out["ticket_cost"] + out["order_cost"] + out["invoice_cost"])


def test_same_seed_gives_byte_identical_files(tmp_path):
    first = write_world(simulate_world(800, seed=3), tmp_path / "a")
    second = write_world(simulate_world(800, seed=3), tmp_path / "b")
    assert set(first) == {*TABLE_COLUMNS, "truth", "world"}
    for name, path in first.items():
        assert path.read_bytes() == second[name].read_bytes(), name
    other = simulate_world(800, seed=4)
    assert not other.tables.transactions["amount"].equals(simulate_world(800, seed=3).tables.transactions["amount"])


def test_written_files_read_back_as_the_tables(world, tmp_path):
    paths = write_world(world, tmp_path)
    for name, frame in world.tables.items():
        pd.testing.assert_frame_equal(pd.read_parquet(paths[name]), frame, check_dtype=True)
    meta = json.loads(paths["world"].read_text())
    assert meta["seed"] == 11 and meta["n_customers"] == 3000 and meta["truth_as_of"] == "2024-07-01"
    assert "purchase_shape" in meta["params"]


def test_tables_have_exactly_the_contract_columns_and_dtypes(world):
    for name, frame in world.tables.items():
        assert list(frame.columns) == list(TABLE_COLUMNS[name]), name
        for column, (dtype, _) in TABLE_COLUMNS[name].items():
            assert frame[column].dtype == dtype, (name, column, frame[column].dtype)
        assert frame.index.equals(pd.RangeIndex(len(frame))), name
        assert len(frame) > 0, name


def test_ids_are_unique_and_references_resolve(world):
    t = world.tables
    customers = t.customers.set_index("customer_id")
    assert customers.index.is_unique
    for name, id_column in (("transactions", "transaction_id"), ("invoices", "invoice_id"),
                            ("support_tickets", "ticket_id")):
        assert getattr(t, name)[id_column].is_unique, name
    for name, frame in t.items():
        assert frame["customer_id"].isin(customers.index).all(), name


def test_referrals_point_to_earlier_customers_who_sent_an_invitation(world):
    c = world.tables.customers
    referred = c[c["referred_by"].notna()]
    assert 0.05 < len(referred) / len(c) < 0.2
    signup = c.set_index("customer_id")["signup_at"]
    assert referred["referred_by"].isin(signup.index).all()
    assert (signup.loc[referred["referred_by"]].to_numpy() < referred["signup_at"].to_numpy()).all()
    assert (c.loc[c["referred_by"].notna(), "acquisition_channel"] == "referral").all()
    ev = world.tables.engagement_events
    invites = ev[ev["event_type"] == "referral"]
    pairs = referred[["customer_id", "referred_by", "signup_at"]].merge(
        invites, left_on="referred_by", right_on="customer_id", suffixes=("", "_ref"))
    before = pairs["signup_at"] - pairs["occurred_at"]
    near = (before >= pd.Timedelta(0)) & (before < pd.Timedelta(days=5))
    assert pairs[near]["customer_id"].nunique() == len(referred)


def test_row_invariants(world):
    t = world.tables
    inv, tk, ev, tx = t.invoices, t.support_tickets, t.engagement_events, t.transactions
    assert (inv["due_at"] >= inv["issued_at"]).all()
    paid = inv["paid_at"].notna()
    assert (inv.loc[paid, "paid_at"] >= inv.loc[paid, "issued_at"]).all()
    assert (inv["amount"] >= 0).all() and (inv["failed_payment_attempts"] >= 0).all()
    assert 0 < (~paid).mean() < 0.2 and (inv.loc[paid, "paid_at"] > inv.loc[paid, "due_at"]).any()
    assert (tk["handle_minutes"] >= 0).all()
    assert tk["channel"].isin(TICKET_CHANNELS).all() and set(tk["channel"]) == set(TICKET_CHANNELS)
    sat = tk["satisfaction"].dropna()
    assert sat.between(1, 5).all() and 0.2 < tk["satisfaction"].isna().mean() < 0.6
    resolved = tk["resolved_at"].notna()
    assert (tk.loc[resolved, "resolved_at"] >= tk.loc[resolved, "opened_at"]).all() and (~resolved).any()
    assert tk.loc[~resolved, "satisfaction"].isna().all()
    assert set(ev["event_type"]) == set(EVENT_TYPES)
    assert (tx["amount"] < 0).any() and (tx["amount"] > 0).mean() > 0.9
    assert (np.sign(tx["gross_margin"]) == np.sign(tx["amount"])).all()


def test_events_fall_between_signup_and_export_and_rows_are_sorted(world):
    t = world.tables
    signup = t.customers.set_index("customer_id")["signup_at"]
    assert t.customers["signup_at"].is_monotonic_increasing
    assert (t.customers["signup_at"] >= AS_OF).any()
    for name, col in (("transactions", "occurred_at"), ("engagement_events", "occurred_at"),
                      ("invoices", "issued_at"), ("support_tickets", "opened_at")):
        frame = getattr(t, name)
        assert (frame[col].to_numpy() >= signup.loc[frame["customer_id"]].to_numpy()).all(), name
        assert (frame[col] < END).all(), name
        order = frame.sort_values(["customer_id", col], kind="stable")
        assert order.index.equals(frame.index), name


def test_plans_have_different_margin_rates(world):
    tx = world.tables.transactions.merge(world.tables.customers[["customer_id", "plan"]], on="customer_id")
    orders = tx[tx["amount"] > 0]
    rate = (orders["gross_margin"] / orders["amount"]).groupby(orders["plan"]).mean()
    assert set(rate.index) == {"basic", "pro", "enterprise"}
    assert rate.max() - rate.min() > 0.05


def test_costs_matter_for_a_visible_share_of_good_customers(world):
    year = window_margin_and_cost(world.tables, AS_OF, AS_OF + YEAR, Settings().costs)
    earning = year[year["revenue"] > 0]
    good = earning[earning["revenue"] > earning["revenue"].median()]
    share = (good["cost"] > good["margin"]).mean()
    assert 0.05 <= share <= 0.15, share


def test_truth_has_one_row_per_customer_signed_up_before_as_of(world):
    truth, c = world.truth, world.tables.customers
    assert truth["customer_id"].tolist() == c.loc[c["signup_at"] < AS_OF, "customer_id"].tolist()
    assert (truth["as_of"] == AS_OF).all() and (truth["horizon_days"] == 365).all()
    expected = {"alive", "oracle_p_alive", "oracle_expected_transactions", "oracle_expected_revenue",
                "oracle_expected_margin", "oracle_expected_cost_to_serve", "oracle_churn_probability",
                "purchase_rate", "mean_spend", "difficult", "payer_type"}
    assert expected <= set(truth.columns)
    dead = truth[~truth["alive"]]
    assert len(dead) > 0 and (dead["oracle_expected_transactions"] == 0).all()
    assert (dead["oracle_churn_probability"] == 1).all() and (dead["oracle_p_alive"] == 0).all()
    assert set(truth["payer_type"]) == {"card", "invoice"}


def test_oracle_churn_probability_is_a_probability_that_rises_as_health_falls(world):
    truth = world.truth
    p = truth["oracle_churn_probability"]
    assert p.between(0, 1).all()
    alive = truth[truth["alive"]]
    quartile = pd.qcut(alive["health"], 4, labels=False)
    by_health = alive.groupby(quartile)["oracle_churn_probability"].mean()
    assert by_health[0] > by_health[3]
    # and clearly so among customers with similar purchase rates (difficult customers buy more
    # and are less healthy, which blurs the unconditional comparison)
    rate_bin = pd.qcut(alive["purchase_rate"], 3, labels=False)
    low_health = alive["health"] < alive.groupby(rate_bin)["health"].transform("median")
    by_bin = alive.groupby([rate_bin, low_health])["oracle_churn_probability"].mean().unstack()
    gap = by_bin[True] - by_bin[False]
    assert (gap > 0).all() and gap.mean() > 0.03, by_bin


def test_oracle_matches_the_realised_future_on_average(world):
    truth = world.truth.set_index("customer_id")
    year = window_margin_and_cost(world.tables, AS_OF, AS_OF + YEAR, Settings().costs).loc[truth.index]
    realised, predicted = year["transactions"].sum(), truth["oracle_expected_transactions"].sum()
    assert abs(realised / predicted - 1) < 0.05, (realised, predicted)
    assert abs(year["cost"].sum() / truth["oracle_expected_cost_to_serve"].sum() - 1) < 0.1
    tx = world.tables.transactions
    window = tx[(tx["amount"] > 0) & (tx["occurred_at"] >= AS_OF) & (tx["occurred_at"] < AS_OF + pd.Timedelta(days=90))]
    churned = ~truth.index.isin(window["customer_id"])
    assert abs(churned.mean() - truth["oracle_churn_probability"].mean()) < 0.03


def test_rejects_impossible_arguments():
    with pytest.raises(ValueError, match="truth_as_of"):
        simulate_world(10, seed=1, truth_as_of="2030-01-01")
    with pytest.raises(ValueError):
        simulate_world(0, seed=1)


def test_churn_ceiling_is_calibrated_and_sits_between_the_data_and_the_oracle(world):
    """The oracle without the purchase rate: a calibrated probability, 1 for the dead, ranking
    realised churn better than the recency of the last purchase and worse than the full oracle."""
    truth = world.truth.set_index("customer_id")
    ceiling, oracle = truth["ceiling_churn_probability"], truth["oracle_churn_probability"]
    assert ceiling.between(0, 1).all() and (ceiling[~truth["alive"]] == 1).all()
    tx = world.tables.transactions
    orders = tx[tx["amount"] > 0]
    window = orders[(orders["occurred_at"] >= AS_OF) & (orders["occurred_at"] < AS_OF + pd.Timedelta(days=90))]
    churned = pd.Series(~truth.index.isin(window["customer_id"]), index=truth.index).astype(float)
    bins = pd.qcut(ceiling, 5, labels=False, duplicates="drop")
    reliability = pd.DataFrame({"p": ceiling, "y": churned}).groupby(bins).mean()
    assert (reliability["p"] - reliability["y"]).abs().max() < 0.06, reliability

    from sklearn.metrics import roc_auc_score

    last = orders[orders["occurred_at"] < AS_OF].groupby("customer_id")["occurred_at"].max()
    days_since = (AS_OF - last.reindex(truth.index)).dt.days.fillna(10_000)
    recency_auc, ceiling_auc = roc_auc_score(churned, days_since), roc_auc_score(churned, ceiling)
    assert recency_auc + 0.03 < ceiling_auc < roc_auc_score(churned, oracle) - 0.01, (recency_auc, ceiling_auc)


def test_value_ceiling_leaves_the_tables_and_the_oracle_as_they_were(world, monkeypatch):
    """The ceiling draws from a stream of its own: without it the world is the same, and the
    oracle columns keep the values they had before the ceiling existed (golden sums, seed 11)."""
    golden = {"oracle_expected_transactions": 8079.463602751233, "oracle_expected_margin": 390022.7012930526,
              "oracle_expected_cost_to_serve": 162735.55364467256, "oracle_churn_probability": 1467.0640119137,
              "ceiling_churn_probability": 1463.9178095387851}
    for column, total in golden.items():
        assert world.truth[column].sum() == pytest.approx(total, rel=1e-12), column

    import customer_value.simulation.world as world_module

    monkeypatch.setattr(world_module, "_value_without_rate", lambda *args, **kwargs: {})
    without = simulate_world(3000, seed=11)
    for name, frame in world.tables.items():
        pd.testing.assert_frame_equal(frame, getattr(without.tables, name), check_exact=True)
    pd.testing.assert_frame_equal(world.truth[without.truth.columns], without.truth, check_exact=True)
    assert set(world.truth.columns) - set(without.truth.columns) == {
        "ceiling_expected_transactions", "ceiling_expected_revenue", "ceiling_expected_margin",
        "ceiling_expected_cost_to_serve", "ceiling_net_value"}


def test_value_ceiling_is_calibrated_and_ranks_between_the_history_and_the_oracle(world):
    """The oracle without the purchase rate: zero for the dead, net = margin - cost, its expected
    orders match what happened overall and by quintile, and it ranks realised net value over the
    horizon better than last year's net value and worse than the full oracle."""
    truth = world.truth.set_index("customer_id")
    dead = truth[~truth["alive"]]
    ceiling_columns = [c for c in truth.columns if c.startswith("ceiling_expected") or c == "ceiling_net_value"]
    assert (dead[ceiling_columns] == 0).all().all()
    np.testing.assert_allclose(truth["ceiling_net_value"],
                               truth["ceiling_expected_margin"] - truth["ceiling_expected_cost_to_serve"])
    assert (truth["ceiling_expected_cost_to_serve"] >= 0).all() and (truth["ceiling_expected_revenue"] >= 0).all()

    costs = Settings().costs
    future = window_margin_and_cost(world.tables, AS_OF, AS_OF + YEAR, costs).loc[truth.index]
    past = window_margin_and_cost(world.tables, AS_OF - YEAR, AS_OF, costs).loc[truth.index]
    predicted = truth["ceiling_expected_transactions"]
    assert abs(future["transactions"].sum() / predicted.sum() - 1) < 0.05
    alive = truth["alive"]
    bins = pd.qcut(predicted[alive], 5, labels=False)
    by_bin = pd.DataFrame({"p": predicted[alive], "y": future.loc[alive, "transactions"]}).groupby(bins).mean()
    assert ((by_bin["y"] / by_bin["p"]).between(0.8, 1.25)).all(), by_bin
    assert abs(future["cost"].sum() / truth["ceiling_expected_cost_to_serve"].sum() - 1) < 0.1

    realised = future["margin"] - future["cost"]
    oracle = truth["oracle_expected_margin"] - truth["oracle_expected_cost_to_serve"]
    history = realised.corr(past["margin"] - past["cost"], method="spearman")
    ceiling = realised.corr(truth["ceiling_net_value"], method="spearman")
    best = realised.corr(oracle, method="spearman")
    assert history + 0.05 < ceiling < best - 0.02, (history, ceiling, best)


def test_value_ceiling_is_the_oracle_when_the_purchase_rate_is_nearly_known(world):
    """With a huge ``purchase_shape`` the rate is its plan mean, so inferring it loses nothing:
    the ceiling's expectations agree with the oracle's up to Monte Carlo noise. In the default
    world they clearly do not (the rate is what the history leaves uncertain)."""
    def disagreement(truth: pd.DataFrame, name: str) -> tuple[float, float]:
        alive = truth[truth["alive"]]
        oracle, ceiling = alive[f"oracle_expected_{name}"], alive[f"ceiling_expected_{name}"]
        relative = (ceiling - oracle).abs() / oracle.clip(lower=0.1 * oracle.mean())
        return float(relative.median()), float(ceiling.sum() / oracle.sum())

    from customer_value.simulation.world import WorldParams

    known = simulate_world(1500, seed=4, params=WorldParams(purchase_shape=1e4), oracle_replicates=32).truth
    for name in ("transactions", "margin", "cost_to_serve"):
        median, ratio = disagreement(known, name)
        assert median < 0.1 and abs(ratio - 1) < 0.03, (name, median, ratio)
        assert disagreement(world.truth, name)[0] > 1.5 * median, name
    assert disagreement(world.truth, "transactions")[0] > 0.25
