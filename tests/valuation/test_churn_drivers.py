"""Churn drivers in words (valuation/churn_drivers.py) and the path decomposition they rest on
(boosted/explain.py): every feature the builders make has a reason, each reason is written with the
customer's own values, and the fast decomposition adds up exactly and agrees with TreeSHAP."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from customer_value.boosted.churn import ChurnModel
from customer_value.boosted.explain import PathTables, path_contributions, raw_contributions, truncation
from customer_value.boosted.inputs import PURCHASE_COLUMNS, align
from customer_value.valuation.churn_drivers import (
    SENTENCES,
    churn_drivers,
    describe,
    group_contributions,
    readable_name,
    reason_groups,
    reason_of,
    top_reasons,
)

SNAKE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")


def _one(row: dict, reason: str) -> str:
    frame = pd.DataFrame([row])
    return describe(frame, [reason], np.array([[0]]))[0]


@pytest.mark.parametrize("row, reason, text", [
    ({"days_since_last_purchase": 94.3, "days_since_first_purchase": 94.3 + 63.0, "frequency": 3},
     "purchase_gap", "no purchase for 94 days (usual gap 21)"),
    ({"days_since_last_purchase": np.nan, "acct_tenure_days": 120.2, "frequency": 0},
     "purchase_gap", "no purchase since signing up 120 days ago"),
    ({"days_since_last_purchase": 40.0, "days_since_first_purchase": 40.0, "frequency": 0},
     "purchase_gap", "one purchase only, 40 days ago"),
    ({"pay_settled_late": 2, "pay_settled": 9, "pay_days_late_max": 14.2},
     "late_payments", "2 late invoices (of 9 paid, up to 14 days late)"),
    ({"sup_satisfaction_mean": 2.0, "sup_rated": 1, "sup_low_satisfaction_share": 1.0},
     "satisfaction", "satisfaction 2/5 on the one rated ticket"),
    ({"sup_satisfaction_mean": 2.5, "sup_rated": 4, "sup_low_satisfaction_share": 0.5},
     "satisfaction", "satisfaction 2.5/5 over 4 rated tickets (2 rated 1 or 2)"),
    ({"eng_days_since_any": 45.0, "eng_days_since_login": 60.0}, "activity_recency",
     "no activity for 45 days (last login 60 days ago)"),
    ({"pay_overdue": 1, "pay_overdue_amount": 1250.0, "pay_open": 1, "pay_open_amount": 1250.0}, "unpaid",
     "1 overdue invoice (1,250.00)"),
    ({"plan": "basic"}, "plan", "on the basic plan"),
    ({"acquisition_channel": "paid_search"}, "channel", "acquisition channel paid search"),
])
def test_each_reason_is_written_with_the_customers_own_values(row, reason, text):
    assert _one(row, reason) == text


def test_a_feature_no_pattern_knows_reads_as_its_name_and_value():
    assert reason_of("pay_widgets") == "invoicing"  # a pay_ feature still reads as invoicing
    assert reason_of("loyalty_points") == "feature:loyalty_points"
    assert _one({"loyalty_points": 3.0}, "feature:loyalty_points") == "loyalty points 3"
    assert readable_name("sup_minutes_30d") == "support minutes 30 days"


def test_every_feature_the_builders_make_has_a_reason_with_a_sentence(value_parts):
    _, features, _, _ = value_parts
    names = [c for c in features.columns if c != "customer_id"] + list(PURCHASE_COLUMNS)
    unknown = [n for n in names if reason_of(n).startswith("feature:")]
    assert not unknown, unknown
    assert {reason_of(n) for n in names} <= set(SENTENCES)


def test_sentences_on_real_features_are_words_not_column_names(value_parts):
    _, features, _, _ = value_parts
    reasons = sorted(SENTENCES)
    order = np.tile(np.arange(len(reasons)), (len(features), 1))
    for start in range(0, len(reasons), 3):  # three reasons per row, every reason on every row
        texts = describe(features, reasons, order[:, start:start + 3])
        assert len(texts) == len(features) and all(texts)
        leaked = {m for t in texts for m in SNAKE.findall(t)}
        assert not leaked, leaked
        assert not any("nan" in t.split() for t in texts)


def test_top_reasons_take_only_what_raises_the_risk_largest_first():
    grouped = np.array([[0.5, -0.2, 0.9, 0.1], [-0.1, -0.3, -0.2, 0.0], [0.3, 0.005, 0.0, 0.0]])
    assert top_reasons(grouped, 3).tolist() == [[2, 0, 3], [-1, -1, -1], [0, -1, -1]]  # 0.005: negligible
    texts = describe(pd.DataFrame({"plan": ["pro", "basic"], "region": ["EMEA", "APAC"]}), ["plan", "region"],
                     np.array([[1, 0], [-1, -1]]))
    assert texts == ["in region EMEA; on the pro plan", ""]


# -- the path decomposition -----------------------------------------------------------------------


def _frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    f = pd.DataFrame({
        "days_since_last_purchase": rng.exponential(60, n),
        "pay_settled_late": rng.poisson(0.5, n).astype(float),
        "sup_satisfaction_mean": rng.uniform(1, 5, n),
        "noise": rng.normal(size=n),
        "plan": pd.array(rng.choice(["basic", "pro"], n), dtype="str"),
    })
    logit = -1.5 + 0.03 * f["days_since_last_purchase"] + 0.8 * f["pay_settled_late"] - 0.4 * f["sup_satisfaction_mean"]
    return f, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)


@pytest.fixture(scope="module")
def churn() -> tuple[ChurnModel, pd.DataFrame]:
    X, y = _frame(4000, 1)
    Xv, yv = _frame(1500, 2)
    model = ChurnModel(params={"num_leaves": 15, "max_depth": 5}, num_boost_round=300, seed=3,
                       num_threads=1).fit(X, y, Xv, yv)
    return model, Xv


def test_the_path_decomposition_adds_up_to_the_raw_prediction(churn):
    model, X = churn
    contributions, bias = path_contributions(model, X)
    raw = model.booster_.predict(align(X, model.feature_names_, model.categories_),
                                 num_iteration=model.best_iteration_, raw_score=True)
    np.testing.assert_allclose(contributions.sum(axis=1) + bias, raw, atol=1e-9)
    # the same exactness for the leading trees alone, and for grouped features
    tables = PathTables(model, trees=10, groups=[0, 0, 1, 1, 1])
    grouped, bias10 = path_contributions(model, X, tables=tables)
    assert grouped.shape == (len(X), 2)
    raw10 = model.booster_.predict(align(X, model.feature_names_, model.categories_), num_iteration=10,
                                   raw_score=True)
    np.testing.assert_allclose(grouped.sum(axis=1) + bias10, raw10, atol=1e-9)
    # built once per model, trees and groups (every batch of a scoring explains with the same tables)
    cached = PathTables.cached(model, trees=10, groups=[0, 0, 1, 1, 1])
    assert PathTables.cached(model, trees=10, groups=(0, 0, 1, 1, 1)) is cached
    assert PathTables.cached(model, trees=11, groups=[0, 0, 1, 1, 1]) is not cached
    np.testing.assert_array_equal(path_contributions(model, X, tables=cached)[0], grouped)


def test_the_path_decomposition_agrees_with_treeshap_on_the_top_reason(churn):
    model, X = churn
    names = list(model.feature_names_)
    _, group = reason_groups(names)
    _, exact = group_contributions(raw_contributions(model, X), names)
    fast, _ = path_contributions(model, X, groups=group)
    agree = np.mean(top_reasons(exact, 1)[:, 0] == top_reasons(fast, 1)[:, 0])
    assert agree >= 0.85, agree


def test_truncation_keeps_every_tree_of_a_small_booster_and_enough_of_a_large_one(churn):
    model, X = churn
    trees, r2 = truncation(model, X, min_r2=0.95)
    assert trees <= model.best_iteration_ and (r2 >= 0.95 or trees == model.best_iteration_)
    assert truncation(model, X, min_r2=1.01) == (model.best_iteration_, 1.0)


def test_churn_drivers_name_the_customers_who_have_not_bought_for_long(churn, value_parts):
    """A stand-in value model whose churn model reads the purchase gap: the long-silent customers'
    first driver is the gap, in days, with their own numbers."""
    settings, features, purchases, _ = value_parts
    gap = features["days_since_last_purchase"].fillna(features["acct_tenure_days"]).to_numpy()
    late = features["pay_settled_late"].to_numpy(dtype=float)
    label = ((gap > np.nanmedian(gap)) | (late > 1)).astype(float)
    X = features.drop(columns=["customer_id"])
    half = len(X) // 2
    model = ChurnModel(num_boost_round=100, seed=1, num_threads=1).fit(X.iloc[:half], label[:half], X.iloc[half:],
                                                                       label[half:])
    stand_in = SimpleNamespace(churn_model=model, settings=settings, purchase_model=purchases)
    steps: list[tuple[int, int]] = []
    drivers = churn_drivers(stand_in, features, batch_rows=500, progress=lambda done, total: steps.append((done, total)))
    texts = drivers.texts
    assert len(texts) == len(features) and texts.index.equals(features.index)
    assert steps[-1] == (len(features), len(features)) and len(steps) == -(-len(features) // 500)
    assert drivers.trees <= drivers.of_trees == model.best_iteration_
    assert not {m for t in texts for m in SNAKE.findall(t)}
    silent = features["days_since_last_purchase"] > np.nanquantile(gap, 0.9)
    first = texts[silent].str.split("; ").str[0]
    gap_text = re.compile(r"(?:no purchase for|one purchase only,) ([\d,]+) days")
    assert first.str.match(gap_text).mean() > 0.8, first.value_counts().head()
    for text, days in zip(first, features.loc[silent, "days_since_last_purchase"]):
        found = gap_text.match(text)
        if found:
            assert found.group(1) == f"{int(days + 0.5):,}", (text, days)


def test_no_churn_model_no_drivers(value_parts):
    settings, features, purchases, _ = value_parts
    drivers = churn_drivers(SimpleNamespace(churn_model=None, settings=settings, purchase_model=purchases), features)
    assert (drivers.texts == "").all() and drivers.method() == "no churn model"
