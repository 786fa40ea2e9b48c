"""What the report shows, as data (reporting/sections.py): sections present exactly when their
columns or inputs are, the drain list meaning what it says, tables that add up."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from customer_value.reporting.sections import (
    DEFINITIONS,
    DRAIN_ROWS_SHOWN,
    activity_columns,
    build_report,
    build_sections,
    drain_csv,
    drain_frame,
    drift_table,
    group_table,
    count_interval_table,
    interval_table,
    quality_table,
    report_figures,
    segment_matrix,
)
from score_frames import ACTIVITIES, minimal_scores, synthetic_scores

ALL_SECTIONS = ["segments", "groups", "costs", "drains", "value-map", "horizons", "cash-flows", "referrals",
                "intervals", "quality", "drift"]
HORIZONS = pd.Series({182: 1.0e5, 365: 1.8e5, 1095: 4.0e5})
QUALITY = {"churn.valid.roc_auc": 0.84, "cost.valid.spearman": 0.71, "backtest.value.spearman": 0.62}
MONTHS = pd.DataFrame({"month": pd.date_range("2025-01-01", periods=12, freq="MS"),
                       "expected_margin": np.linspace(30e3, 22e3, 12), "expected_cost": np.linspace(14e3, 8e3, 12)})
MONTHS = MONTHS.assign(expected_net=MONTHS["expected_margin"] - MONTHS["expected_cost"],
                       discounted_margin=MONTHS["expected_margin"] * 0.98,
                       discounted_cost=MONTHS["expected_cost"] * 0.98)
MONTHS["discounted_net"] = MONTHS["discounted_margin"] - MONTHS["discounted_cost"]
DRIFT = {"customer_value": 0.03, "expected_revenue": 0.18, "churn_probability": 0.4}


@pytest.fixture(scope="module")
def scores() -> pd.DataFrame:
    return synthetic_scores(400, seed=3)


def _keys(scores, **inputs):
    return [s.key for s in build_sections(scores, **inputs)]


def test_every_section_shows_when_its_columns_and_inputs_are_there(scores):
    assert _keys(scores, horizon_totals=HORIZONS, quality=QUALITY, drift=DRIFT, cash_flows=MONTHS) == ALL_SECTIONS


def test_optional_inputs_left_out_leave_their_sections_out(scores):
    assert _keys(scores) == [k for k in ALL_SECTIONS if k not in ("horizons", "cash-flows", "quality", "drift")]
    assert _keys(scores, horizon_totals=pd.Series(dtype=float), quality={}, drift={},
                 cash_flows=MONTHS.iloc[:0]) == _keys(scores)


def test_the_cash_flow_section_shows_each_month_and_the_backtests_monthly_error(scores):
    """Month by month in, cost out, net; with the training run's backtest, how far such months missed."""
    section = next(s for s in build_sections(scores, cash_flows=MONTHS) if s.key == "cash-flows")
    (table,) = section.tables
    assert table.frame["month"].tolist() == [f"2025-{m:02d}" for m in range(1, 13)]
    assert table.frame["expected_net"].to_numpy() == pytest.approx(
        (MONTHS["expected_margin"] - MONTHS["expected_cost"]).to_numpy())
    assert section.figures == ("cash_flows_by_month.png",) and "missed" not in section.intro
    measured = {**QUALITY, "backtest.monthly.margin_mape": 0.083, "backtest.monthly.cost_mape": 0.142}
    section = next(s for s in build_sections(scores, quality=measured, cash_flows=MONTHS) if s.key == "cash-flows")
    assert "margin by 8% and cost-to-serve by 14%" in section.intro


def test_the_contract_minimum_renders_the_sections_it_can():
    keys = _keys(minimal_scores(), horizon_totals=HORIZONS)
    assert keys == ["segments", "drains", "value-map", "horizons", "referrals"]
    report = build_report(minimal_scores(), "minimal")
    assert set(report.figures) == {"value_by_value_segment.png", "value_map.png"}
    labels = [f.label for f in report.headline.facts]
    assert "Flagged to drain" not in labels and "Customers scored" in labels


OPTIONAL = {
    "cost_segment": (["cost_segment"], "segments", ["by-cost-segment", "matrix-customers", "matrix-value"]),
    "activities": ([f"expected_cost_{a}" for a in ACTIVITIES], "costs", None),
    "intervals": ([c for c in synthetic_scores(5).columns if c.endswith(("_p10", "_p90"))], "intervals", None),
    "plan": (["plan"], "groups", ["by-plan"]),
    "region": (["region"], "groups", ["by-region"]),
    "referrals": (["expected_referrals", "expected_referral_value"], "referrals", None),
}


@pytest.mark.parametrize("name", sorted(OPTIONAL))
def test_a_missing_optional_column_drops_only_what_needs_it(scores, name):
    columns, section, tables = OPTIONAL[name]
    without = scores.drop(columns=columns)
    before = {s.key: [t.key for t in s.tables] for s in build_sections(scores)}
    after = {s.key: [t.key for t in s.tables] for s in build_sections(without)}
    if tables is None:
        assert section in before and section not in after
    else:
        assert set(tables) <= set(before[section])
        assert not set(tables) & set(after.get(section, []))
    report = build_report(without, "t")  # figures too: nothing crashes
    assert "value_map.png" in report.figures


def test_drain_probability_flag_and_drivers_are_optional(scores):
    without = scores.drop(columns=["drain_probability", "drain_flag", "top_cost_drivers"])
    listed = drain_frame(without)
    assert (listed["customer_value"] < 0).all()
    assert listed["customer_value"].is_monotonic_increasing
    assert len(listed) == int((scores["customer_value"] < 0).sum())


def test_the_drain_list_is_every_customer_with_negative_value_or_a_drain_flag(scores):
    listed = drain_frame(scores)
    assert ((listed["customer_value"] < 0) | listed["drain_flag"]).all()
    expected = scores.loc[(scores["customer_value"] < 0) | scores["drain_flag"], "customer_id"]
    assert sorted(listed["customer_id"]) == sorted(expected)
    assert listed["drain_probability"].is_monotonic_decreasing
    assert listed["customer_value"].gt(0).any()  # flagged customers with a positive value are listed too
    revenue_cut = scores["expected_revenue"].quantile(0.75)
    looks = (listed["expected_revenue"] >= revenue_cut) & (listed["expected_margin"] > 0)
    assert (listed["looks_profitable"] == looks).all()
    assert [c for c in listed.columns if c.startswith("expected_cost_") and c != "expected_cost_to_serve"] == \
        activity_columns(scores)


def test_the_drain_section_shows_the_most_likely_and_offers_all_as_csv():
    scores = synthetic_scores(900, seed=5)
    section = next(s for s in build_sections(scores) if s.key == "drains")
    listed = drain_frame(scores)
    assert len(listed) > DRAIN_ROWS_SHOWN
    (table,) = section.tables
    assert table.frame["customer_id"].tolist() == listed["customer_id"].head(DRAIN_ROWS_SHOWN).tolist()
    csv = pd.read_csv(io.StringIO(section.download.text))
    assert section.download.rows == len(csv) == len(listed)
    assert csv["customer_id"].tolist() == listed["customer_id"].tolist()
    assert np.allclose(csv["customer_value"], listed["customer_value"], atol=0.005)
    assert section.download.filename == "drain_list_2024-07-01.csv"
    assert drain_csv(scores) == section.download.text


def test_an_empty_drain_list_still_offers_its_csv(scores):
    calm = scores.assign(customer_value=scores["customer_value"].abs() + 1, drain_flag=False)
    section = next(s for s in build_sections(calm) if s.key == "drains")
    assert section.tables == () and section.download.rows == 0
    assert section.download.text.startswith("customer_id,")


def test_group_tables_have_the_group_as_a_column_and_add_up(scores):
    table = group_table(scores, "value_segment")
    frame = table.frame
    assert isinstance(frame.index, pd.RangeIndex) and frame.columns[0] == "value_segment"
    assert frame["value_segment"].tolist() == ["top", "high", "medium", "low", "negative"]
    assert frame["customers"].sum() == len(scores)
    assert frame["customer_share"].sum() == pytest.approx(1.0)
    assert frame["total_value"].sum() == pytest.approx(scores["customer_value"].sum())
    assert frame["value_share"].sum() == pytest.approx(1.0)
    negative = frame.set_index("value_segment").loc["negative"]
    assert negative["negative_share"] == 1.0 and negative["mean_value"] < 0
    channels = group_table(scores, "acquisition_channel").frame
    assert "(none)" in channels["acquisition_channel"].tolist()  # a missing channel is a group, not dropped
    assert channels["total_value"].is_monotonic_decreasing


def test_the_segment_matrix_counts_and_sums_every_customer(scores):
    counts, values = segment_matrix(scores)
    assert counts.frame.iloc[-1]["All"] == len(scores) and counts.total_rows == 1
    assert values.frame.iloc[-1]["All"] == pytest.approx(scores["customer_value"].sum())
    assert counts.frame["value_segment"].tolist()[-1] == "All"
    assert set(scores["cost_segment"]) <= set(counts.frame.columns)


def test_the_activity_costs_add_up_to_the_cost_to_serve(scores):
    section = next(s for s in build_sections(scores) if s.key == "costs")
    by_activity = section.tables[0].frame
    assert by_activity["cost_share"].sum() == pytest.approx(1.0)
    assert by_activity["total_cost"].sum() == pytest.approx(scores["expected_cost_to_serve"].sum())
    assert "Phone support" in by_activity["activity"].tolist()
    assert "Platform (shared)" in by_activity["activity"].tolist()
    assert [t.key for t in section.tables] == ["cost-by-activity", "activity-by-value-segment",
                                              "activity-by-cost-segment"]


def test_intervals_only_for_quantities_with_both_bounds(scores):
    frame = interval_table(scores).frame
    assert len(frame) == 5  # the money figures; purchases have a table of their own
    assert (frame["mean_width"] > 0).all()
    assert frame["straddles_zero"].notna().sum() == 2  # customer value and net value
    assert len(interval_table(scores.drop(columns=["expected_margin_p10"])).frame) == 4
    assert interval_table(scores.drop(columns=["customer_value_p90", "net_value_p90", "expected_revenue_p90",
                                               "expected_margin_p90", "expected_cost_to_serve_p90"])) is None


def test_the_purchases_interval_has_a_table_of_its_own_in_counts(scores):
    table = count_interval_table(scores)
    row = table.frame.iloc[0]
    assert len(table.frame) == 1 and row["mean_point"] == pytest.approx(scores["expected_transactions"].mean())
    assert row["mean_p10"] <= row["mean_point"] <= row["mean_p90"] and row["median_width"] > 0
    assert {table.kind(c) for c in table.frame.columns if c != "quantity"} == {"number1"}  # a count, not money
    section = next(s for s in build_sections(scores) if s.key == "intervals")
    assert [t.key for t in section.tables] == ["intervals", "intervals-purchases"]
    assert count_interval_table(scores.drop(columns=["expected_transactions_p90"])) is None
    assert "approximate" not in section.intro


def test_intervals_calibrated_on_a_short_window_say_they_are_approximate(scores):
    from types import SimpleNamespace

    model = SimpleNamespace(interval_model=SimpleNamespace(calibration_days_=182))
    section = next(s for s in build_sections(scores, referral=model) if s.key == "intervals")
    assert "approximate" in section.intro and "182 days" in section.intro


@pytest.mark.parametrize("quality", [QUALITY, pd.Series(QUALITY),
                                     pd.DataFrame({"metric": list(QUALITY), "value": list(QUALITY.values())})])
def test_model_quality_from_a_mapping_a_series_or_a_frame(quality):
    table = quality_table(quality)
    assert table.frame["metric"].tolist() == list(QUALITY)
    assert table.kind("value") == "number" and table.kind("metric") == "text"


@pytest.mark.parametrize("drift", [DRIFT, pd.Series(DRIFT),
                                   pd.DataFrame({"psi": list(DRIFT.values())}, index=list(DRIFT))])
def test_drift_reads_each_psi(drift):
    frame = drift_table(drift).frame
    assert frame["column"].tolist() == ["churn_probability", "expected_revenue", "customer_value"]
    assert frame["status"].tolist() == ["major shift", "moderate shift", "stable"]


def test_the_headline_names_horizon_currency_as_of_and_model(scores):
    head = build_report(scores, "Weekly", currency="EUR").headline
    assert head.horizon_days == (365,) and head.as_of == ("2024-07-01",) and head.currency == "EUR"
    assert dict(head.model) == {"model": "models:/customer_value/7", "version": "7", "alias": "champion"}
    facts = {f.label: f for f in head.facts}
    assert facts["Customers scored"].value == len(scores)
    assert facts["Total customer value"].value == pytest.approx(scores["customer_value"].sum())
    assert facts["On the drain list"].value == len(drain_frame(scores))


def test_the_definitions_say_what_is_discounted_and_what_is_not():
    terms = dict(DEFINITIONS)
    for term in ("Customer value", "Margin", "Cost-to-serve", "Referral value", "Discounted", "Undiscounted"):
        assert terms[term]
    assert "discounted_expected_" in terms["Discounted"] and "Customer value" in terms["Discounted"]
    for column in ("expected_revenue", "expected_margin", "expected_cost_to_serve"):
        assert column in terms["Undiscounted"]


def test_figures_by_file_name(scores):
    figures = report_figures(scores, HORIZONS)
    assert set(figures) == {
        "value_by_value_segment.png", "value_by_cost_segment.png", "value_by_plan.png",
        "value_by_acquisition_channel.png", "value_by_region.png", "value_map.png", "cost_by_activity.png",
        "horizon_sensitivity.png",
    }
    assert set(report_figures(scores, HORIZONS, cash_flows=MONTHS)) == set(figures) | {"cash_flows_by_month.png"}


def _referral_model(interval=(280.1, 344.7)):
    from customer_value.valuation.referrals import ReferralModel

    model = ReferralModel.from_legacy(0.001, 312.4, "mean trailing net value of 57 referred customers")
    model.referred_customer_value_interval_ = interval
    return model


@pytest.mark.parametrize("given", ["model", "dict", "value_model"])
def test_the_referral_section_shows_the_measured_value_of_a_referred_customer(scores, given):
    from types import SimpleNamespace

    model = _referral_model()
    read_outs = ("referred_customer_value_", "referred_customer_value_interval_", "referred_customer_value_source_")
    referral = {"model": model, "dict": model.to_dict(),  # a ValueModel holds the read-outs and its referral_model_
                "value_model": SimpleNamespace(referral_model_=model, **{k: getattr(model, k) for k in read_outs})}
    section = next(s for s in build_sections(scores, referral=referral[given]) if s.key == "referrals")
    facts = {f.label: f for f in section.facts}
    measured = facts["Value of a referred customer"]
    assert measured.value == 312.4 and measured.interval == (280.1, 344.7)
    assert measured.interval_label == "95% interval" and "57 referred customers" in measured.hint
    assert facts["Expected referrals"].value == pytest.approx(scores["expected_referrals"].sum())
    assert list(facts) == ["Expected referrals", "Value of a referred customer", "Referral value"]


def test_without_the_model_or_its_interval_the_referral_section_says_so(scores):
    plain = next(s for s in build_sections(scores) if s.key == "referrals")
    assert "Value of a referred customer" not in [f.label for f in plain.facts]
    default = _referral_model(interval=(float("nan"), float("nan")))
    section = next(s for s in build_sections(scores, referral=default) if s.key == "referrals")
    measured = next(f for f in section.facts if f.label == "Value of a referred customer")
    assert measured.interval is None and measured.hint.startswith("no interval")
    # the model's figure alone still makes the section (a frame without the referral columns)
    without = scores.drop(columns=["expected_referrals", "expected_referral_value"])
    (section,) = [s for s in build_sections(without, referral=_referral_model()) if s.key == "referrals"]
    assert [f.label for f in section.facts] == ["Value of a referred customer"] and section.tables == ()
