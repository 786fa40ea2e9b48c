"""What `train` and `score` say while they work (issue 15, item 4): one line per finished step with
its count and time, tuning trials counted, nothing said twice, no warning or library chatter a user
cannot act on, the result last."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from customer_value.cli import app
from pipeline_helpers import AS_OF, FAST

pytestmark = pytest.mark.slow

STEP = re.compile(r"^\d\d:\d\d:\d\d ✓ (?P<what>.+?)(?: (?P<done>[\d,]+)/(?P<total>[\d,]+))? \((?P<time>[\d.]+ s|\d+:\d\d(?::\d\d)?)(?:, (?P<outcome>.+))?\)$")
NOISE = ("Warning", "warnings.warn", "INFO mlflow", "Successfully registered", "Created version", "Downloading artifacts",
         "Traceback", "A new study created")


def _steps(stderr: str) -> list[re.Match]:
    """Every line with a time of day is a finished step."""
    lines = [line for line in stderr.splitlines() if re.match(r"^\d\d:\d\d:\d\d ", line)]
    matches = [STEP.match(line) for line in lines]
    assert all(matches), [line for line, m in zip(lines, matches) if not m]
    return matches


def _quiet(stderr: str) -> None:
    found = [n for n in NOISE if n in stderr]
    assert not found, (found, stderr[-3000:])


def test_train_reports_each_step_once_with_trials_counted(trained):
    _quiet(trained.stderr)
    steps = _steps(trained.stderr)
    described = [m["what"] for m in steps]
    assert len(described) == len(set(described)), [d for d in described if described.count(d) > 1]
    assert not [d for d in described if re.search(r"\b(\w+): \1:", d)]  # never "churn: churn: ..."
    tuning = {m["what"].split(":")[0]: m for m in steps if "tuning trials" in m["what"]}
    assert set(tuning) == {"churn", "cost", "margin", "drain"}
    assert all(m["done"] == m["total"] == str(FAST["trials"]) for m in tuning.values())
    for part in ("churn", "cost", "margin", "drain"):
        assert f"{part}: final fit on every training row" in described
        assert any(d.startswith(f"{part}: ") and "training snapshot(s)" in d for d in described)
    assert described[0].startswith("loading tables") and described[-1] == "logging and registering the model"
    assert trained.stderr.strip().splitlines()[-1].startswith("trained run ")
    assert trained.stdout.strip().splitlines()[-1] == trained.model_uri


def test_score_reports_steps_with_counts_and_its_result(trained, small_world, tmp_path):
    out = tmp_path / "scores.parquet"
    result = CliRunner().invoke(app, ["score", "--data", str(small_world), "--as-of", AS_OF.isoformat(), "--model",
                                      trained.model_uri, "--out", str(out), "--no-log"])
    assert result.exit_code == 0, (result.output, result.exception)
    n = len(pd.read_parquet(out))
    _quiet(result.stderr)
    lines = result.stderr.strip().splitlines()
    summary = [i for i, line in enumerate(lines) if line.startswith("scored ")]
    assert summary and lines[summary[0]] == f"scored {n:,} customers -> {out}"
    steps = {m["what"]: m for m in _steps("\n".join(lines[: summary[0]]))}
    assert f"scoring {n:,} customers" in steps
    drivers = steps["churn drivers"]
    assert drivers["done"] == drivers["total"] == f"{n:,}" and "trees" in drivers["outcome"]
    assert "value segments:" in lines[summary[0] + 1]
