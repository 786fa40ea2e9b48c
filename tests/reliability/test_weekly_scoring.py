"""Scoring runs a weekly job can trust (issue 15, item 2): each scoring run names the model it used
(URI, registered name, version, alias); drift compares with the last scoring of the same name and
alias, so the first week of a new champion still has a baseline (by version or path: the same URI);
the report carries the training run's quality and the drift; a scoring config may set the report's
currency; a scoring at another horizon says its segments use scaled cut points."""

from __future__ import annotations

import re

import mlflow
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from customer_value.cli import app
from customer_value.pipeline.score import score
from reliability_helpers import AS_OF, FAST

pytestmark = pytest.mark.slow


def _text(html: str, section: str) -> str:
    """The words of one part of the page (a section, or the header with id ``headline``)."""
    part = html.split(f'id="{section}"', 1)[1].split("</section>" if section != "headline" else "</header>", 1)[0]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", part))


def test_a_new_champion_is_compared_with_the_last_scoring_by_that_alias(trained, small_world, tmp_path):
    client = MlflowClient()
    champion = f"models:/{trained.name}@champion"
    first = score(small_world, AS_OF, champion, tmp_path / "w1.parquet")
    assert first.drift == {} and first.drift_against is None  # nothing to compare with yet
    tags = client.get_run(first.run_id).data.tags
    assert {k: tags.get(f"customer_value.{k}") for k in ("model_uri", "model_name", "model_version", "model_alias")} == {
        "model_uri": trained.model_uri, "model_name": trained.name, "model_version": "1", "model_alias": "champion"}
    assert "customer_value.drift_against_run" not in tags
    assert tags["customer_value.churn_drivers"].startswith("path decomposition")

    # the model quality is the training run's own metrics, baselines included
    training = mlflow.search_runs(experiment_names=["reliability"], output_format="list",
                                  filter_string="tags.`customer_value.run_type` = 'train'")[0]
    assert first.quality["churn.valid.roc_auc"] == pytest.approx(training.data.metrics["churn.valid.roc_auc"])
    assert first.quality["churn.baseline_bgnbd.roc_auc"] == pytest.approx(
        training.data.metrics["churn.baseline_bgnbd.roc_auc"])
    assert not [k for k in first.quality if k.startswith(("train.", "purchases.")) or ".tuning." in k]

    # a new champion: version 2 (the same bundle registered again), the alias moved to it
    v1 = client.get_model_version(trained.name, "1")
    v2 = client.create_model_version(trained.name, v1.source, run_id=v1.run_id)
    client.set_registered_model_alias(trained.name, "champion", v2.version)
    report = tmp_path / "w2.html"
    second = score(small_world, AS_OF, champion, tmp_path / "w2.parquet", report=report)
    assert second.drift_against == first.run_id  # its first week still has a baseline
    assert second.drift and all(abs(v) < 0.01 for v in second.drift.values()), second.drift  # the same data
    run2 = client.get_run(second.run_id).data
    assert run2.tags["customer_value.model_version"] == "2" and run2.tags["customer_value.model_alias"] == "champion"
    assert run2.tags["customer_value.drift_against_run"] == first.run_id
    assert run2.tags["customer_value.drift_baseline"] == "name and alias"
    assert {f"drift.psi.{c}" for c in second.drift} <= set(run2.metrics)
    html = report.read_text()
    drift = _text(html, "drift")
    assert "stable" in drift and "customer_value" in drift
    quality = _text(html, "quality")
    assert "Churn ranking: ROC AUC (validation)" in quality and "BG/NBD" in quality

    # by version, no alias: the last scoring of the same model URI
    third = score(small_world, AS_OF, f"models:/{trained.name}/2", tmp_path / "v2.parquet")
    assert third.drift_against == second.run_id
    assert client.get_run(third.run_id).data.tags["customer_value.drift_baseline"] == "model URI"
    fourth = score(small_world, AS_OF, trained.model_uri, tmp_path / "v1.parquet")
    assert fourth.drift_against == first.run_id


def test_the_weekly_command_says_how_the_scores_moved(trained, small_world, tmp_path):
    runner = CliRunner()
    args = ["score", "--data", str(small_world), "--as-of", AS_OF.isoformat(), "--model",
            f"models:/{trained.name}@champion"]
    first = runner.invoke(app, [*args, "--out", str(tmp_path / "a.parquet")])
    assert first.exit_code == 0, first.output
    assert "drift: no earlier scoring of this model to compare with" in first.stderr
    second = runner.invoke(app, [*args, "--out", str(tmp_path / "b.parquet")])
    assert second.exit_code == 0, second.output
    assert re.search(r"drift against the previous scoring \(run \w{8}\): stable \(largest PSI 0\.0\d\d", second.stderr), \
        second.stderr


def test_a_scoring_config_sets_the_currency_and_another_horizon_is_said(trained, small_world, tmp_path):
    config = tmp_path / "scoring.yaml"
    config.write_text(yaml.safe_dump({**FAST, "currency": "EUR"}))
    report = tmp_path / "quarter.html"
    result = CliRunner().invoke(app, ["score", "--data", str(small_world), "--as-of", AS_OF.isoformat(), "--model",
                                      trained.model_uri, "--out", str(tmp_path / "q.parquet"), "--no-log",
                                      "--config", str(config), "--horizon", "91", "--report", str(report)])
    assert result.exit_code == 0, result.output
    html = report.read_text()
    assert "EUR" in _text(html, "headline") and "€" in html
    segments = _text(html, "segments")
    assert "91 days ahead, the model 365" in segments and "scaled to this horizon" in segments
    assert (pd.read_parquet(tmp_path / "q.parquet")["horizon_days"] == 91).all()
    # the model's own horizon says nothing about scaling
    plain = tmp_path / "year.html"
    same = CliRunner().invoke(app, ["score", "--data", str(small_world), "--as-of", AS_OF.isoformat(), "--model",
                                    trained.model_uri, "--out", str(tmp_path / "y.parquet"), "--no-log",
                                    "--report", str(plain)])
    assert same.exit_code == 0, same.output
    assert "scaled to this horizon" not in plain.read_text() and "$" in plain.read_text()
