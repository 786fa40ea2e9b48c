"""The HTML report and the scoring run logged to MLflow (issue #6, item 6)."""

from __future__ import annotations

import base64
import re

import mlflow
import pandas as pd
import pytest

from customer_value.pipeline.report import render_html
from customer_value.reporting.sections import DRAIN_ROWS_SHOWN
from customer_value.valuation.drivers import drain_list, looks_profitable_but_drains
from pipeline_helpers import AS_OF

pytestmark = pytest.mark.slow


def test_report_embeds_pngs_and_the_scoring_runs_carry_counts_distribution_and_drift(trained, small_world, tmp_path):
    from customer_value.pipeline.score import score

    report = tmp_path / "report.html"
    first = score(small_world, AS_OF, trained.model_uri, tmp_path / "s1.parquet", report=report)
    text = report.read_text()
    images = re.findall(r"src=[\"']data:image/png;base64,([A-Za-z0-9+/=]+)[\"']", text)
    assert len(images) >= 3
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "Customers who drain resources" in text
    assert f"{len(first.scores):,}" in text  # headline: customers scored
    assert "horizon_sensitivity.png" in text  # the job passes its horizon totals
    assert "cash_flows_by_month.png" in text and 'id="cash-flows"' in text  # and its months
    months = first.cash_flows
    assert len(months) == 12 and months["month"].is_monotonic_increasing
    # the months hold the whole horizon's margin and cost: every customer's score row, spread
    assert months["expected_margin"].sum() == pytest.approx(first.scores["expected_margin"].sum(), rel=1e-9)
    assert months["discounted_cost"].sum() == pytest.approx(
        first.scores["discounted_expected_cost_to_serve"].sum(), rel=1e-9)

    second = score(small_world, AS_OF, trained.model_uri, tmp_path / "s2.parquet")
    client = mlflow.MlflowClient()
    run1, run2 = client.get_run(first.run_id), client.get_run(second.run_id)
    for run, result in ((run1, first), (run2, second)):
        assert run.data.tags["customer_value.run_type"] == "score"
        assert run.data.tags["customer_value.model_uri"] == trained.model_uri
        assert run.data.metrics["rows"] == len(result.scores)
        for key in ("customer_value.mean", "customer_value.p10", "customer_value.p50", "customer_value.p90"):
            assert key in run.data.metrics
        assert any(k.startswith("segment_share.") for k in run.data.metrics)
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert "score_profile.json" in artifacts
        logged = pd.read_csv(client.download_artifacts(run.info.run_id, "cash_flows_by_month.csv"),
                             parse_dates=["month"])
        assert logged["expected_net"].to_numpy() == pytest.approx(result.cash_flows["expected_net"].to_numpy())
    totals = {k: v for k, v in run2.data.metrics.items() if k.startswith("total_value.horizon_")}
    assert totals["total_value.horizon_365d"] == pytest.approx(second.scores["customer_value"].sum(), rel=1e-9)
    assert "total_value.horizon_1095d" in totals
    psi = {k: v for k, v in run2.data.metrics.items() if k.startswith("drift.psi.")}
    assert psi and second.drift
    # the same data scored twice: no drift (last-bit float noise may move a customer across a bin edge)
    assert all(abs(v) < 0.01 for v in psi.values()), psi
    assert run2.data.tags["customer_value.drift_against_run"] == run1.info.run_id


def test_report_lists_the_customers_that_drain(trained, small_world, tmp_path):
    """With one Optuna trial the small world may have few drains; make a few more (the top three by
    revenue, so they look profitable) and check they're listed, and nobody else is."""
    from customer_value.pipeline.score import score

    scores = score(small_world, AS_OF, trained.model_uri, tmp_path / "s.parquet", log_run=False).scores
    top = scores.sort_values("expected_revenue", ascending=False).head(3)["customer_id"]
    drained = scores.copy()
    hit = drained["customer_id"].isin(top)
    drained.loc[hit, "expected_cost_to_serve"] = drained.loc[hit, "expected_margin"] + 1000.0
    drained.loc[hit, "customer_value"] = -1000.0
    drained.loc[hit, "value_segment"] = "negative"
    assert set(top) <= set(looks_profitable_but_drains(drained)["customer_id"])
    drains = drain_list(drained)
    assert set(top) <= set(drains["customer_id"])
    assert ((drains["customer_value"] < 0) | drains["drain_flag"]).all()
    text = render_html(drained, "test")
    section = text.split('<section id="drains"', 1)[1].split("</section>", 1)[0]
    for customer in drains["customer_id"]:  # in the table (the most likely) or at least in the CSV
        assert customer in section
    shown = section.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    for customer in drains["customer_id"].head(DRAIN_ROWS_SHOWN):
        assert customer in shown
    ordinary = scores.loc[~scores["customer_id"].isin(drains["customer_id"]), "customer_id"].iloc[0]
    assert ordinary not in section
