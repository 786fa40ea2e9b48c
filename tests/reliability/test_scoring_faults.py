"""Scoring faults (issue 16): model references that do not resolve, outputs that cannot be written
(checked before the work), kills at random moments, idempotent reruns, an as-of before anyone
signed up, and a scoring config that disagrees with the model."""

from __future__ import annotations

import errno
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from customer_value.cli import app
from reliability_helpers import AS_OF, FAST, one_error_line

runner = CliRunner()


def _score(data: Path, model: str, out: Path, *extra: str):
    return runner.invoke(app, ["score", "--data", str(data), "--as-of", AS_OF.isoformat(), "--model", model,
                               "--out", str(out), "--no-log", *extra])


def _temp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp") or p.name.startswith("."))


# ---------------------------------------------------------------------------------------------
# model references


@pytest.mark.slow
def test_model_references_that_do_not_resolve_are_named(trained, small_world, tmp_path):
    out = tmp_path / "s.parquet"
    cases = {
        f"models:/{trained.name}@nosuchalias": f"no alias 'nosuchalias' for model '{trained.name}' (aliases: champion)",
        f"models:/{trained.name}/99": f"no version 99 of model '{trained.name}' (versions: 1)",
        "models:/nosuchmodel/1": "no registered model 'nosuchmodel'",
        "models:/nosuchmodel@champion": "no registered model 'nosuchmodel'",
        str(tmp_path / "no-such-dir"): f"no model at {tmp_path / 'no-such-dir'}",
        str(small_world): f"{small_world} is not an MLflow model directory",
    }
    for reference, expected in cases.items():
        result = _score(small_world, reference, out)
        assert result.exit_code == 1, (reference, result.output)
        assert expected in one_error_line(result.stderr), reference
    assert not out.exists()


@pytest.mark.parametrize("uri, package", [("s3://bucket/models/cv", "boto3"),
                                          ("gs://bucket/models/cv", "google-cloud-storage"),
                                          ("wasbs://box@account.blob.core.windows.net/cv", "azure-storage-blob")])
def test_a_remote_model_without_its_client_library_names_the_package(uri, package, tmp_path, monkeypatch):
    import importlib.util

    from customer_value.tracking import model as model_module

    real = importlib.util.find_spec
    hidden = {"boto3", "google", "google.cloud", "google.cloud.storage", "azure", "azure.storage", "azure.storage.blob"}
    monkeypatch.setattr(model_module.importlib.util, "find_spec",
                        lambda name, *a: None if name in hidden else real(name, *a))
    result = _score(tmp_path, uri, tmp_path / "s.parquet")  # the reference is resolved before any data is read
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert uri in line and f"pip install {package}" in line


@pytest.mark.slow
def test_the_score_file_records_version_and_alias(trained, small_world, tmp_path):
    by_alias = _score(small_world, f"models:/{trained.name}@champion", tmp_path / "a.parquet")
    assert by_alias.exit_code == 0, by_alias.output
    scores = pd.read_parquet(tmp_path / "a.parquet")
    assert set(scores["model_uri"]) == {trained.model_uri}
    assert set(scores["model_version"]) == {"1"} and set(scores["model_alias"]) == {"champion"}
    by_version = _score(small_world, trained.model_uri, tmp_path / "v.parquet")
    assert by_version.exit_code == 0, by_version.output
    scores = pd.read_parquet(tmp_path / "v.parquet")
    assert set(scores["model_version"]) == {"1"} and scores["model_alias"].isna().all()


# ---------------------------------------------------------------------------------------------
# outputs


def _no_model_loading(monkeypatch):
    """Output problems must be found before the long work: loading the model would be too late."""

    def too_late(*_args, **_kwargs):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr("customer_value.pipeline.score.load_model", too_late)


@pytest.mark.slow
def test_outputs_that_cannot_be_written_fail_before_the_work(trained, small_world, tmp_path, monkeypatch):
    _no_model_loading(monkeypatch)
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    cases = {
        tmp_path: "is a directory",
        a_file / "scores.parquet": f"{a_file} is a file, not a directory",
        a_file / "deeper" / "scores.parquet": f"{a_file} is a file, not a directory",
    }
    for out, expected in cases.items():
        result = _score(small_world, trained.model_uri, out)
        assert result.exit_code == 1, (out, result.output)
        assert expected in one_error_line(result.stderr), out
    # a report or validation report that cannot be written is found as early
    result = _score(small_world, trained.model_uri, tmp_path / "s.parquet", "--report", str(tmp_path))
    assert result.exit_code == 1 and "report" in one_error_line(result.stderr)
    result = _score(small_world, trained.model_uri, tmp_path / "s.parquet", "--validation-report",
                    str(a_file / "report.csv"))
    assert result.exit_code == 1 and "validation report" in one_error_line(result.stderr)
    assert _temp_files(tmp_path) == []


@pytest.mark.slow
def test_a_read_only_directory_fails_before_the_work(trained, small_world, tmp_path, monkeypatch):
    _no_model_loading(monkeypatch)
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        if os.access(read_only, os.W_OK):  # root writes anywhere: make the file system say no
            import tempfile

            from customer_value.data import writing

            real = tempfile.mkstemp

            def refuse(*args, dir=None, **kwargs):
                if dir is not None and Path(dir) == read_only:
                    raise OSError(errno.EROFS, "Read-only file system", str(dir))
                return real(*args, dir=dir, **kwargs)

            monkeypatch.setattr(writing.tempfile, "mkstemp", refuse)
        result = _score(small_world, trained.model_uri, read_only / "scores.parquet")
    finally:
        read_only.chmod(0o755)
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert str(read_only / "scores.parquet") in line
    assert "read-only" in line or "permission denied" in line
    assert list(read_only.iterdir()) == []


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_keeps_the_previous_file(trained, small_world, tmp_path, monkeypatch):
    out = tmp_path / "scores.parquet"
    first = _score(small_world, trained.model_uri, out)
    assert first.exit_code == 0, first.output
    good = out.read_bytes()

    real = pd.DataFrame.to_parquet

    def disk_full(self, path, *args, **kwargs):
        real(self.head(len(self) // 2), path, *args, **kwargs)  # a partial file on disk, then no space
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", disk_full)
    result = _score(small_world, trained.model_uri, out)
    assert result.exit_code == 1
    line = one_error_line(result.stderr)
    assert str(out) in line and "No space left on device" in line
    assert out.read_bytes() == good
    assert _temp_files(tmp_path) == []


@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_nothing_or_the_whole_file(trained, small_world, tmp_path):
    """`customer-value score` killed with SIGKILL (no cleanup possible) at random moments: the
    output is absent or the complete file, leftovers are only `.NAME.*.tmp` files that the next
    run removes, and a full rerun gives the same bytes."""
    command = [str(Path(sys.executable).parent / "customer-value"), "score", "--data", str(small_world),
               "--as-of", AS_OF.isoformat(), "--model", trained.model_uri, "--no-log"]
    directory = tmp_path / "out"
    directory.mkdir()
    out = directory / "scores.parquet"

    def run(kill_after: float | None = None, kill_on_temp_file: bool = False) -> int | None:
        proc = subprocess.Popen([*command, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env={**os.environ, "TMPDIR": str(tmp_path)})  # its spill directories die with it
        start = time.monotonic()
        try:
            while proc.poll() is None and time.monotonic() - start < 300:
                if kill_after is not None and time.monotonic() - start >= kill_after:
                    break
                if kill_on_temp_file and any(n.endswith(".tmp") for n in os.listdir(directory)):
                    break
                time.sleep(0.002)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            _, stderr = proc.communicate(timeout=60)
        assert proc.returncode in (0, -signal.SIGKILL), stderr.decode()[-2000:]
        return proc.returncode

    started = time.monotonic()
    assert run() == 0
    duration = time.monotonic() - started
    good = out.read_bytes()
    out.unlink()
    leftover = re.compile(r"^\.scores\.parquet\..+\.tmp$")
    rng = random.Random(16)
    # one random moment in each quarter of a run (startup, loading, scoring, writing), then the
    # moment the temporary file appears
    delays = [rng.uniform(duration * k / 4, duration * (k + 1) / 4) for k in range(4)]
    outcomes = []
    for k, delay in enumerate([*delays, None]):
        run(kill_after=delay, kill_on_temp_file=delay is None)
        names = sorted(os.listdir(directory))
        assert all(n == out.name or leftover.match(n) for n in names), names
        if out.exists():
            assert out.read_bytes() == good, f"kill {k}: a partial or different file"
            outcomes.append("complete")
        else:
            outcomes.append("absent")
    assert run() == 0
    assert sorted(os.listdir(directory)) == [out.name], "the next run removes the killed runs' temp files"
    assert out.read_bytes() == good  # idempotent: the same inputs give the same bytes
    assert outcomes  # (which moments hit which state varies with the machine's speed)


def test_stale_temp_files_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    from customer_value.data.writing import remove_stale_temp_files, write_parquet_atomically

    out = tmp_path / "scores.parquet"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".scores.parquet.{dead.pid}.abc123.tmp"
    live = tmp_path / f".scores.parquet.{os.getppid()}.def456.tmp"
    unrelated = tmp_path / ".other.parquet.1.x.tmp"
    for path in (stale, live, unrelated):
        path.write_bytes(b"partial")
    assert remove_stale_temp_files(out) == [stale]
    write_parquet_atomically(pd.DataFrame({"a": [1]}), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, live.name, unrelated.name])


# ---------------------------------------------------------------------------------------------
# as-of and settings


@pytest.mark.slow
def test_score_as_of_before_the_first_signup(trained, small_world, tmp_path):
    first = pd.read_parquet(small_world / "customers.parquet")["signup_at"].min()
    result = runner.invoke(app, ["score", "--data", str(small_world), "--as-of", "2021-06-01", "--model", trained.model_uri,
                                 "--out", str(tmp_path / "s.parquet"), "--no-log"])
    assert result.exit_code == 1
    assert one_error_line(result.stderr) == (
        f"error: no customer signed up before 2021-06-01 (first signup: {first:%Y-%m-%d})")
    assert not (tmp_path / "s.parquet").exists()


@pytest.mark.slow
def test_a_scoring_config_may_not_change_the_model_settings(trained, small_world, tmp_path, monkeypatch):
    config = tmp_path / "scoring.yaml"
    config.write_text(yaml.safe_dump({**FAST, "horizon_days": 30, "discount_rate": 0.25,
                                      "costs": {"order_cost": 9.0}}))
    result = _score(small_world, trained.model_uri, tmp_path / "s.parquet", "--config", str(config))
    assert result.exit_code == 2
    line = one_error_line(result.stderr)
    assert "horizon_days: 30 in the config, 365 in the model" in line
    assert "discount_rate: 0.25 in the config, 0.1 in the model" in line
    assert "costs.order_cost: 9.0 in the config, 2.0 in the model" in line
    assert "scores with its own settings" in line
    assert not (tmp_path / "s.parquet").exists()


@pytest.mark.slow
def test_a_scoring_config_may_say_how_to_read_the_data(trained, small_world, tmp_path):
    """The training config itself, or only input keys (strict, columns), score as without a config."""
    plain = _score(small_world, trained.model_uri, tmp_path / "plain.parquet")
    assert plain.exit_code == 0, plain.output
    same = tmp_path / "same.yaml"
    same.write_text(yaml.safe_dump({**FAST, "strict": False}))
    with_config = _score(small_world, trained.model_uri, tmp_path / "config.parquet", "--config", str(same))
    assert with_config.exit_code == 0, with_config.output
    assert (tmp_path / "plain.parquet").read_bytes() == (tmp_path / "config.parquet").read_bytes()
