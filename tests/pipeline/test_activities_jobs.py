"""The activity-cost jobs end to end (issue 18): a score file that can be repriced, `whatif` on it,
`score --cashflows`, and `score --horizon` with segment cut points scaled to the horizon."""

from __future__ import annotations

import pandas as pd
import pandas.testing as pdt
import pytest
from typer.testing import CliRunner

from customer_value.cli import app

from pipeline_helpers import AS_OF

pytestmark = pytest.mark.slow
runner = CliRunner()


@pytest.fixture
def scored(trained, small_world, tmp_path):
    out = tmp_path / "scores.parquet"
    flows = tmp_path / "cashflows.parquet"
    result = runner.invoke(app, ["score", "--data", str(small_world), "--as-of", AS_OF.isoformat(),
                                 "--model", trained.model_uri, "--out", str(out), "--cashflows", str(flows), "--no-log"])
    assert result.exit_code == 0, (result.output, result.exception)
    return out, flows


def test_the_score_file_carries_activities_and_cash_flows(scored) -> None:
    out, flows = scored
    scores = pd.read_parquet(out)
    activities = [c for c in scores if c.startswith("expected_cost_") and not c.startswith("expected_cost_to_serve")]
    assert len(activities) == 9  # the contract's direct activities (this model has no pool)
    assert (scores[activities].sum(axis=1) - scores["expected_cost_to_serve"]).abs().max() < 0.005
    assert scores["cost_segment"].notna().all() and scores["top_cost_drivers"].str.contains(" of ").any()
    cash = pd.read_parquet(flows)
    assert cash["customer_id"].nunique() == len(scores) and len(cash) == 12 * len(scores)
    totals = cash.groupby("customer_id")[["expected_margin", "expected_cost"]].sum()
    indexed = scores.set_index("customer_id").loc[totals.index]
    assert (totals["expected_margin"] - indexed["expected_margin"]).abs().max() < 1e-6
    assert (totals["expected_cost"] - indexed["expected_cost_to_serve"]).abs().max() < 1e-6


def test_whatif_from_the_command_line(scored, tmp_path) -> None:
    out, _ = scored
    unchanged = tmp_path / "same.yaml"
    unchanged.write_text("{}\n")
    result = runner.invoke(app, ["whatif", "--scores", str(out), "--config", str(unchanged), "--out", str(tmp_path / "same.parquet")])
    assert result.exit_code == 0, (result.output, result.exception)
    pdt.assert_frame_equal(pd.read_parquet(tmp_path / "same.parquet"), pd.read_parquet(out), check_exact=True)

    changes = tmp_path / "changes.yaml"
    changes.write_text("rates:\n  minute_rate: {phone: 1.0}\nshift:\n  - {from: support_phone, to: support_chat, share: 0.4}\n"
                       "fees: {late_payments: 15}\n")
    repriced = tmp_path / "repriced.parquet"
    before = out.read_bytes()
    result = runner.invoke(app, ["whatif", "--scores", str(out), "--config", str(changes), "--out", str(repriced)])
    assert result.exit_code == 0, (result.output, result.exception)
    assert out.read_bytes() == before  # the input file is never modified
    assert "value change by value segment" in result.output and "cross from negative to positive" in result.output
    page = (tmp_path / "repriced.html").read_text()
    assert "What-if" in page and "data:image/png;base64," in page
    old, new = pd.read_parquet(out), pd.read_parquet(repriced)
    assert new["customer_value"].sum() > old["customer_value"].sum()

    bad = tmp_path / "bad.yaml"
    bad.write_text("pools: {nope: 1}\n")
    result = runner.invoke(app, ["whatif", "--scores", str(out), "--config", str(bad), "--out", str(tmp_path / "x.parquet")])
    assert result.exit_code != 0 and "unknown pool" in result.output and "Traceback" not in result.output


def test_score_at_another_horizon_scales_the_segments(trained, small_world, tmp_path, scored) -> None:
    out, _ = scored
    short = tmp_path / "short.parquet"
    result = runner.invoke(app, ["score", "--data", str(small_world), "--as-of", AS_OF.isoformat(), "--model",
                                 trained.model_uri, "--out", str(short), "--horizon", "90", "--no-log"])
    assert result.exit_code == 0, (result.output, result.exception)
    year, quarter = pd.read_parquet(out), pd.read_parquet(short)
    assert (quarter["horizon_days"] == 90).all()
    assert quarter.attrs["customer_value"]["horizon_days"] == 90
    # cut points scale with the horizon, so the segment mix stays comparable
    share = lambda s: (s["value_segment"] == "top").mean()  # noqa: E731
    assert share(quarter) == pytest.approx(share(year), abs=0.05)
    assert quarter["expected_cost_to_serve"].sum() == pytest.approx(year["expected_cost_to_serve"].sum() * 90 / 365, rel=1e-6)
