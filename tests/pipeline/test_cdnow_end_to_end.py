"""CDNOW end to end (issue #6, item 7): transactions only, nine months of history, weekly units.

What cannot be trained is skipped with its reason; BG/NBD's expected transactions in the score
file agree with lifetimes' BetaGeoFitter at the published parameters (Fader, Hardie & Lee 2005).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from customer_value.cli import app

pytestmark = pytest.mark.slow

PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
AS_OF = dt.date(1997, 10, 1)
HORIZON_DAYS = 273


def test_cdnow_trains_scores_and_matches_the_published_bgnbd(mlflow_store, tmp_path, monkeypatch):
    import mlflow

    from customer_value.data.cdnow import write_cdnow
    from customer_value.tracking.model import load_model

    monkeypatch.setenv("CUSTOMER_VALUE_HOME", str(tmp_path / "home"))
    data = tmp_path / "cdnow"
    write_cdnow(data, "sample")
    config = tmp_path / "cdnow.yaml"
    config.write_text(yaml.safe_dump({"horizon_days": HORIZON_DAYS, "time_unit": "weeks",
                                      "snapshots": {"count": 3, "spacing_days": 30}}))
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "--data", str(data), "--as-of", AS_OF.isoformat(), "--experiment", "cdnow",
                                  "--config", str(config), "--trials", "1", "--no-backtest"])
    assert trained.exit_code == 0, (trained.output, trained.exception)
    model_uri = trained.stdout.strip().splitlines()[-1]
    assert model_uri == "models:/customer_value/1"

    # the cost model cannot be trained (no cost signal, too little history): skipped, with the reason
    model = load_model(model_uri).value_model
    assert "cost" in model.skipped_ and model.skipped_["cost"]
    assert "skipped cost" in trained.stderr
    run = mlflow.search_runs(experiment_names=["cdnow"], filter_string="tags.`customer_value.run_type` = 'train'",
                             output_format="list")[0]
    assert run.data.tags["customer_value.skipped.cost"] == model.skipped_["cost"][:250]
    # a drain is net value below zero: without the cost model there is none, and the flag is value < 0
    assert "cost-to-serve" in model.skipped_["drain"] and model.drain_model is None

    # our BG/NBD fit is within 0.5% of the published parameters
    params = model.purchase_model.params_
    for key, published in PUBLISHED.items():
        assert params[key] == pytest.approx(published, rel=0.005), key

    out = tmp_path / "scores.parquet"
    scored = runner.invoke(app, ["score", "--data", str(data), "--as-of", AS_OF.isoformat(), "--model", model_uri,
                                 "--out", str(out)])
    assert scored.exit_code == 0, (scored.output, scored.exception)
    scores = pd.read_parquet(out)
    assert len(scores) == 2357 and scores["customer_id"].is_unique
    assert np.isfinite(scores.select_dtypes("number").to_numpy(dtype=float)).all()
    assert "drain_probability" not in scores
    assert (scores["drain_flag"] == (scores["customer_value"] < 0)).all()

    # lifetimes at the published parameters, on our own RFM summary in weeks
    from customer_value.config import Settings
    from customer_value.data.loading import load_tables
    from customer_value.features import build_features

    settings = Settings(horizon_days=HORIZON_DAYS, time_unit="weeks")
    features = build_features(load_tables(data, settings).tables, AS_OF, settings)
    rfm = features.set_index("customer_id")[["frequency", "recency", "T"]].loc[scores["customer_id"]]
    assert rfm["T"].max() < 39.5  # weeks since the first purchase (Jan–Mar 1997)

    from lifetimes import BetaGeoFitter

    fitter = BetaGeoFitter()
    fitter.params_ = pd.Series(PUBLISHED)
    expected = fitter.conditional_expected_number_of_purchases_up_to_time(
        HORIZON_DAYS / 7, rfm["frequency"], rfm["recency"], rfm["T"]).to_numpy()
    ours = scores["expected_transactions"].to_numpy()
    np.testing.assert_allclose(ours, expected, rtol=0.01)
    # the published aggregate: 1,359 repeat purchases expected in weeks 40–78 (Fader, Hardie & Lee)
    assert ours.sum() == pytest.approx(expected.sum(), rel=0.005)
