"""train → score end to end (issue #6): the URI printed last, the three ways to name a model, the
score file's contract, point-in-time scoring (no leakage), determinism and atomic writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from customer_value.cli import app
from customer_value.data.tables import EVENT_TIME

from pipeline_helpers import AS_OF, check_score_file

pytestmark = pytest.mark.slow
runner = CliRunner()


def _score_cli(data: Path, model: str, out: Path, *extra: str) -> pd.DataFrame:
    result = runner.invoke(app, ["score", "--data", str(data), "--as-of", AS_OF.isoformat(), "--model", model,
                                 "--out", str(out), *extra])
    assert result.exit_code == 0, (result.output, result.exception)
    return pd.read_parquet(out)


def test_train_prints_the_registered_version_last(trained):
    assert trained.model_uri == "models:/customer_value/1"
    from mlflow import MlflowClient

    version = MlflowClient().get_model_version_by_alias(trained.name, "champion")
    assert str(version.version) == "1"


def test_every_part_is_a_child_run_with_its_documented_metrics(trained):
    import mlflow

    runs = mlflow.search_runs(experiment_names=["pipeline-tests"], output_format="list")
    parent = next(r for r in runs if r.data.tags.get("customer_value.run_type") == "train")
    children = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert {"purchases", "spend", "churn", "cost", "margin", "drain"} <= set(children)
    documented = {
        "churn": ("churn.valid.roc_auc", "churn.valid.brier", "churn.baseline_bgnbd.roc_auc"),
        "cost": ("cost.valid.spearman", "cost.baseline_trailing.spearman"),
        "margin": ("margin.valid.spearman", "margin.baseline_bgnbd.spearman"),
        "drain": ("drain.valid.roc_auc", "drain.valid.brier", "drain.valid.flag_precision", "drain.valid.flag_recall",
                  "drain.valid.threshold", "drain.baseline_historical.flag_precision"),
    }
    for part, names in documented.items():
        missing = [n for n in names if n not in children[part].data.metrics]
        assert not missing, (part, missing)
    assert 0.0 < children["drain"].data.metrics["drain.valid.threshold"] < 1.0


def test_score_by_version_alias_and_local_directory(trained, small_world, tmp_path):
    customers = pd.read_parquet(small_world / "customers.parquet")
    by_version = _score_cli(small_world, trained.model_uri, tmp_path / "v.parquet", "--no-log")
    check_score_file(by_version, customers, AS_OF, trained.model_uri)
    # customers without any transaction before as_of are scored too
    transactions = pd.read_parquet(small_world / "transactions.parquet")
    buyers = set(transactions.loc[transactions["occurred_at"] < pd.Timestamp(AS_OF), "customer_id"])
    assert (~by_version["customer_id"].isin(buyers)).sum() > 0

    by_alias = _score_cli(small_world, f"models:/{trained.name}@champion", tmp_path / "a.parquet", "--no-log")
    check_score_file(by_alias, customers, AS_OF, trained.model_uri)  # the alias resolves to the version

    exported = tmp_path / "exported"
    result = runner.invoke(app, ["export", "--model", trained.model_uri, "--out", str(exported)])
    assert result.exit_code == 0, (result.output, result.exception)
    by_dir = _score_cli(small_world, str(exported), tmp_path / "d.parquet", "--no-log")
    check_score_file(by_dir, customers, AS_OF, str(exported.resolve()))

    # the three references load the very same fitted model
    from customer_value.tracking.model import load_model

    states = {ref: (load_model(ref).value_model.save(tmp_path / f"state{k}") / "value_model.json").read_text()
              for k, ref in enumerate([trained.model_uri, f"models:/{trained.name}@champion", str(exported)])}
    assert len(set(states.values())) == 1


# ---------------------------------------------------------------------------------------------
# leakage and determinism


def write_cut_copy(source: Path, out: Path, as_of) -> Path:
    """The tables as they were known at as_of: later rows dropped, later facts masked."""
    out.mkdir(parents=True)
    day = pd.Timestamp(as_of)
    for name, time_column in EVENT_TIME.items():
        path = source / f"{name}.parquet"
        if not path.exists():
            continue
        frame = pd.read_parquet(path)
        frame = frame[frame[time_column] < day].reset_index(drop=True)
        if name == "invoices":
            later = frame["paid_at"] >= day
            frame["paid_at"] = frame["paid_at"].mask(later)
            if "failed_payment_attempts" in frame:
                frame["failed_payment_attempts"] = frame["failed_payment_attempts"].mask(later, 0)
        if name == "support_tickets":
            later = frame["resolved_at"] >= day
            frame["resolved_at"] = frame["resolved_at"].mask(later)
            frame["satisfaction"] = frame["satisfaction"].mask(later)
        frame.to_parquet(out / f"{name}.parquet", index=False)
    return out


def _three_scorings(model_uri: str, world: Path, tmp_path: Path, engine) -> tuple[Path, Path, Path]:
    from customer_value.pipeline.score import score

    cut = write_cut_copy(world, tmp_path / "cut", AS_OF)
    full_a = score(world, AS_OF, model_uri, tmp_path / "full_a.parquet", log_run=False, engine=engine).out
    full_b = score(world, AS_OF, model_uri, tmp_path / "full_b.parquet", log_run=False, engine=engine).out
    from_cut = score(cut, AS_OF, model_uri, tmp_path / "cut.parquet", log_run=False, engine=engine).out
    return full_a, full_b, from_cut


def test_scores_do_not_depend_on_later_rows_and_repeat_exactly(trained, small_world, tmp_path):
    """Default (multi-threaded) DuckDB: scoring full data twice and data cut at as_of gives the same bytes."""
    full_a, full_b, from_cut = _three_scorings(trained.model_uri, small_world, tmp_path, "duckdb")
    a, b, c = (pd.read_parquet(p) for p in (full_a, full_b, from_cut))
    for other in (b, c):
        pd.testing.assert_frame_equal(a, other, check_exact=True)
    assert full_a.read_bytes() == full_b.read_bytes() == from_cut.read_bytes()


# ---------------------------------------------------------------------------------------------
# atomic writes


def _leftovers(directory: Path, name: str) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.startswith(f".{name}.") or p.name.endswith(".tmp")]


def test_a_failed_write_leaves_the_previous_file_and_no_temp_files(trained, small_world, tmp_path, monkeypatch):
    from customer_value.pipeline.score import score

    out = tmp_path / "scores.parquet"
    score(small_world, AS_OF, trained.model_uri, out, log_run=False)
    good = out.read_bytes()

    real_to_parquet = pd.DataFrame.to_parquet

    def half_written(self, path, *args, **kwargs):
        real_to_parquet(self.head(len(self) // 2), path, *args, **kwargs)  # a partial file on disk ...
        with open(path, "ab") as handle:
            handle.write(b"garbage")
        raise OSError("No space left on device")  # ... then the disk fills up

    monkeypatch.setattr(pd.DataFrame, "to_parquet", half_written)
    with pytest.raises(OSError, match="No space left"):
        score(small_world, AS_OF, trained.model_uri, out, log_run=False)
    assert out.read_bytes() == good
    assert _leftovers(tmp_path, out.name) == []

    fresh = tmp_path / "never.parquet"
    with pytest.raises(OSError):
        score(small_world, AS_OF, trained.model_uri, fresh, log_run=False)
    assert not fresh.exists()
    assert _leftovers(tmp_path, fresh.name) == []


def test_sigkill_at_any_moment_leaves_nothing_or_a_whole_file(trained, small_world, tmp_path):
    """Kill a real `customer-value score` process (SIGKILL: no cleanup possible) at several moments."""
    n_expected = len(pd.read_parquet(small_world / "customers.parquet").query("signup_at < @pd.Timestamp(@AS_OF)"))
    command = [str(Path(sys.executable).parent / "customer-value"), "score", "--data", str(small_world),
               "--as-of", AS_OF.isoformat(), "--model", trained.model_uri, "--no-log"]

    def run(out: Path, kill_when) -> None:
        proc = subprocess.Popen([*command, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "TMPDIR": str(tmp_path)})  # its spill directories die with it
        try:
            start = time.monotonic()
            while proc.poll() is None and not kill_when(start):
                time.sleep(0.001)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)

    def temp_file_appears(directory: Path, name: str):
        return lambda start: bool(_leftovers(directory, name)) or time.monotonic() - start > 60

    moments = {
        "early": lambda start: time.monotonic() - start > 1.0,
        "during the write": None,  # as soon as the temp file appears
        "after the rename": None,  # as soon as the target appears
    }
    outcomes = {}
    for k, label in enumerate(moments):
        directory = tmp_path / f"run{k}"
        directory.mkdir()
        out = directory / "scores.parquet"
        if label == "during the write":
            when = temp_file_appears(directory, out.name)
        elif label == "after the rename":
            when = lambda start, out=out: out.exists() or time.monotonic() - start > 60  # noqa: E731
        else:
            when = moments[label]
        run(out, when)
        if out.exists():
            frame = pd.read_parquet(out)
            assert len(frame) == n_expected, label
            assert frame["customer_id"].is_unique
            outcomes[label] = "complete"
        else:
            outcomes[label] = "absent"
    assert outcomes["early"] == "absent"
    assert outcomes["after the rename"] == "complete"
