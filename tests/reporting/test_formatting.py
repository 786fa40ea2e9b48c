"""How the report writes numbers and names (reporting/formatting.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from customer_value.config import Settings
from customer_value.reporting.formatting import (
    DEFAULT_CURRENCY,
    cell,
    compact,
    count,
    header,
    kind_of,
    money,
    number,
    percent,
    sort_key,
)
from score_frames import synthetic_scores

MINUS = "\u2212"


def test_the_default_currency_is_the_settings_default():
    assert DEFAULT_CURRENCY == Settings().currency == "USD"


@pytest.mark.parametrize(("value", "currency", "decimals", "text"), [
    (1234567.891, "USD", 0, "$1,234,568"),
    (-12.5, "USD", 2, f"{MINUS}$12.50"),
    (1234.0, "EUR", 0, "€1,234"),
    (1234.0, "XYZ", 2, "1,234.00\u00a0XYZ"),
    (-0.001, "USD", 2, "$0.00"),
    (np.float64(999.5), "GBP", 0, "£1,000"),
    (float("nan"), "USD", 0, ""),
    (None, "USD", 0, ""),
    (pd.NA, "USD", 0, ""),
])
def test_money_has_thousands_separators_and_its_currency(value, currency, decimals, text):
    assert money(value, currency, decimals) == text


def test_percentages_counts_and_numbers():
    assert percent(0.1234) == "12.3%"
    assert percent(-0.05) == f"{MINUS}5.0%"
    assert percent(math.inf) == ""
    assert count(1234567) == "1,234,567"
    assert count(np.int64(12)) == "12"
    assert number(0.81234) == "0.812"
    assert number(12345.6789) == "12,345.679"


@pytest.mark.parametrize(("value", "text"), [
    (200_000, "200k"), (1_234_567, "1.2M"), (-40_000, f"{MINUS}40k"), (950, "950"), (2.5, "2.5"), (0, "0"),
    (3e9, "3B"), (999_600, "1M"),
])
def test_compact_numbers_read_like_axis_ticks(value, text):
    assert compact(value) == text


def test_compact_money_puts_the_sign_before_the_symbol():
    assert compact(-1_250_000, "USD") == f"{MINUS}$1.2M"
    assert compact(5_000, "XYZ") == "5k\u00a0XYZ"


def test_cells_by_kind():
    assert cell(1234.567, "money") == "$1,235"
    assert cell(1234.567, "money_exact", "EUR") == "€1,234.57"
    assert cell(0.25, "probability") == "25.0%"
    assert cell(True, "flag") == "yes" and cell(np.bool_(False), "flag") == "no"
    assert cell(pd.NA, "text") == "" and cell(None, "flag") == "" and cell(float("nan"), "text") == ""
    assert cell("pro", "text") == "pro"


def test_sort_keys_are_raw_numbers_or_text():
    assert float(sort_key(-1234.5, "money")) == -1234.5
    assert sort_key(float("nan"), "money") == ""
    assert sort_key("pro", "text") == "pro"
    assert sort_key(True, "flag") == "1"


def test_every_column_of_a_score_file_has_a_readable_header():
    for column in synthetic_scores(50).columns:
        text = header(column)
        assert "_" not in text and text[:1].isupper(), (column, text)
    assert header("customer_value") == "Customer value"
    assert header("acquisition_channel") == "Channel"
    assert header("expected_cost_support_phone") == "Phone support"
    assert header("expected_cost_pool_platform") == "Platform (shared)"
    assert header("customer_value_p10") == "Customer value (10th percentile)"
    assert header("backtest.value.spearman") == "Backtest · value · spearman"


def test_kinds_of_known_columns():
    assert kind_of("customer_id") == "text"
    assert kind_of("customers") == "count"
    assert kind_of("drain_probability") == "probability"
    assert kind_of("total_value") == "money"
    assert kind_of("mean_value") == "money_exact"
    assert kind_of("value_share") == "percent"
