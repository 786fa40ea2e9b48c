"""The drain list and the drains that look profitable (valuation/drivers.py)."""

from __future__ import annotations

import pandas as pd

from customer_value.valuation.drivers import drain_list, drains, looks_profitable, looks_profitable_but_drains


def _scores() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": list("abcdefgh"),
        "expected_revenue": [1000.0, 900.0, 800.0, 50.0, 40.0, 30.0, 20.0, 950.0],
        "expected_margin": [500.0, 450.0, 400.0, 25.0, 20.0, 15.0, 10.0, -5.0],
        "customer_value": [-10.0, 30.0, 200.0, -5.0, 12.0, 8.0, -1.0, -20.0],
        "drain_probability": [0.9, 0.7, 0.1, 0.6, 0.8, 0.2, 0.3, 0.95],
        "drain_flag": [True, True, False, True, True, False, False, True],
    })


def test_the_drain_list_is_every_negative_value_or_drain_flag_most_likely_first():
    listed = drain_list(_scores())
    assert listed["customer_id"].tolist() == ["h", "a", "e", "b", "d", "g"]
    assert drains(_scores()).sum() == 6


def test_without_a_drain_model_the_list_is_the_negative_values_lowest_first():
    listed = drain_list(_scores().drop(columns=["drain_probability", "drain_flag"]))
    assert listed["customer_id"].tolist() == ["h", "a", "d", "g"]


def test_looking_profitable_is_top_quarter_revenue_with_a_positive_margin():
    scores = _scores()
    # the top quarter of revenue is a and h (>= 912.5); h has no margin, so only a looks profitable
    assert scores.loc[looks_profitable(scores), "customer_id"].tolist() == ["a"]
    assert looks_profitable_but_drains(scores)["customer_id"].tolist() == ["a"]
    raised = scores.assign(expected_margin=scores["expected_margin"].abs())
    subset = looks_profitable_but_drains(raised)
    assert subset["customer_id"].tolist() == ["h", "a"]  # most likely drains first
    assert set(subset["customer_id"]) <= set(drain_list(scores)["customer_id"])
    assert looks_profitable_but_drains(scores.iloc[:0]).empty
