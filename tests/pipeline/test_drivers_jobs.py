"""Both driver columns on every score row (issue 15, item 1): the cost drivers are the row's own
activity costs in money, the churn drivers are words with the customer's own numbers, not column
names."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from customer_value.data.loading import load_tables
from customer_value.features import build_features
from customer_value.valuation.activity_costs import activity_label
from pipeline_helpers import AS_OF

pytestmark = pytest.mark.slow
SNAKE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")


@pytest.fixture(scope="module")
def scored(trained_store, small_world, tmp_path_factory):
    import mlflow

    from customer_value.pipeline.score import score
    from customer_value.tracking.model import load_model

    out = tmp_path_factory.mktemp("drivers") / "scores.parquet"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", trained_store.tracking_uri)
        mp.setenv("CUSTOMER_VALUE_HOME", str(trained_store.home))
        mlflow.set_tracking_uri(trained_store.tracking_uri)
        score(small_world, AS_OF, trained_store.model_uri, out, log_run=False)
        settings = load_model(trained_store.model_uri).settings
    features = build_features(load_tables(small_world, settings).tables, AS_OF, settings)
    return pd.read_parquet(out), features


def test_both_driver_columns_are_on_every_row(scored):
    scores, _ = scored
    for column in ("top_cost_drivers", "top_churn_drivers"):
        assert column in scores.columns and scores[column].notna().all(), column
    columns = list(scores.columns)
    assert columns.index("top_churn_drivers") == columns.index("top_cost_drivers") + 1
    likely = scores["churn_probability"] > 0.5
    assert likely.sum() > 0 and (scores.loc[likely, "top_churn_drivers"] != "").all()


def test_the_cost_drivers_are_the_rows_own_activity_costs(scored):
    scores, _ = scored
    activities = [c for c in scores.columns if c.startswith("expected_cost_") and c != "expected_cost_to_serve"
                  and not c.endswith(("_p10", "_p90"))]
    by_label = {activity_label(c.removeprefix("expected_cost_")): c for c in activities}
    piece = re.compile(r"^(?P<label>.+) (?P<amount>[\d,]+\.\d\d) of (?P<total>[\d,]+\.\d\d)$")
    checked = 0
    for _, row in scores.iterrows():
        if not row["top_cost_drivers"]:
            assert row["expected_cost_to_serve"] < 0.01
            continue
        amounts = []
        for part in row["top_cost_drivers"].split("; "):
            found = piece.match(part)
            assert found and found["label"] in by_label, part
            amount = float(found["amount"].replace(",", ""))
            assert amount == pytest.approx(row[by_label[found["label"]]], abs=0.006)
            assert float(found["total"].replace(",", "")) == pytest.approx(row["expected_cost_to_serve"], abs=0.006)
            amounts.append(amount)
            checked += 1
        assert amounts == sorted(amounts, reverse=True)  # the costliest first
    assert checked > len(scores)


def test_the_churn_drivers_are_words_with_the_customers_own_numbers(scored):
    scores, features = scored
    names = set(features.columns) | {"bgnbd_p_alive", "bgnbd_expected_transactions", "bgnbd_p_no_purchase"}
    texts = scores["top_churn_drivers"]
    words = {w for t in texts for w in re.findall(r"[A-Za-z_]+", t)}
    assert not words & (names - {"plan", "region", "T"}), words & names  # no column name ...
    assert not {m for t in texts for m in SNAKE.findall(t)}  # ... nor anything that looks like one
    assert texts.str.split("; ").str.len().max() == 3
    own = features.set_index("customer_id")
    gap = re.compile(r"no purchase for ([\d,]+) days \(usual gap ([\d,]+)\)")
    seen = 0
    for customer, text in zip(scores["customer_id"], texts):
        found = gap.search(text)
        if found:
            row = own.loc[customer]
            assert found[1] == f"{int(row['days_since_last_purchase'] + 0.5):,}", (text, row["days_since_last_purchase"])
            usual = (row["days_since_first_purchase"] - row["days_since_last_purchase"]) / row["frequency"]
            assert found[2] == f"{int(usual + 0.5):,}"
            seen += 1
    assert seen > 10
