"""Security basics (issue 16): the UI binds loopback unless told otherwise (and warns then), stopping
`customer-value ui` stops the server it started, configs cannot execute code, and tracking
credentials never reach params, tags, the score file, the report or an error message."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from customer_value.cli import app
from reliability_helpers import AS_OF, BIN, answers, cli_train_args, free_port, one_error_line, wait_until

runner = CliRunner()


# ---------------------------------------------------------------------------------------------
# the UI


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _listening(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp*) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":
                found.add(address)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_ui_binds_loopback_and_stopping_it_stops_its_server(stop_signal, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["CUSTOMER_VALUE_HOME"] = str(tmp_path / "home")
    log = open(tmp_path / "ui.log", "w")
    ui = subprocess.Popen([str(BIN / "customer-value"), "ui", "--port", str(port)], env=env, stdout=log,
                          stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    server: set[int] = set()
    try:
        # generous: the server's workers start slowly when Spark tests load the other core
        assert wait_until(lambda: answers(url) or ui.poll() is not None, 300, 0.25) and answers(url), \
            (tmp_path / "ui.log").read_text()[-3000:]
        assert _listening(port) == {"0100007F"}  # 127.0.0.1 only
        server = _descendants(ui.pid)
        assert server, "the UI runs its server as a child process"
        ui.send_signal(stop_signal)
        ui.wait(timeout=60)
        assert wait_until(lambda: not any(_alive(p) for p in server), 30), \
            [p for p in server if _alive(p)]
        assert not answers(url, 1)
        assert _listening(port) == set()
    finally:
        if ui.poll() is None:
            ui.kill()
            ui.wait(timeout=30)
        for pid in server:  # never leave a server behind, whatever failed above
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        log.close()
    assert ui.returncode == 0


def test_ui_warns_when_bound_beyond_loopback(monkeypatch, tmp_path):
    commands = []
    monkeypatch.setattr("customer_value.cli.serve", lambda command: commands.append(command) or 0)
    monkeypatch.setenv("CUSTOMER_VALUE_HOME", str(tmp_path))
    exposed = runner.invoke(app, ["ui", "--host", "0.0.0.0", "--port", "5999"])
    assert exposed.exit_code == 0, exposed.output
    assert "warning:" in exposed.stderr and "0.0.0.0" in exposed.stderr and "without authentication" in exposed.stderr
    local = runner.invoke(app, ["ui", "--port", "5999"])
    assert local.exit_code == 0 and "warning:" not in local.stderr
    assert commands[0][commands[0].index("--host") + 1] == "0.0.0.0"
    assert commands[1][commands[1].index("--host") + 1] == "127.0.0.1"


# ---------------------------------------------------------------------------------------------
# configs


def test_a_config_cannot_execute_code(tmp_path, tiny_tables):
    from contract_fixtures import write_tables

    from customer_value.config import load_settings
    from customer_value.errors import ConfigError

    marker = tmp_path / "pwned"
    config = tmp_path / "evil.yaml"
    config.write_text(f"horizon_days: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError):
        load_settings(config)
    data = write_tables(tmp_path / "d", tiny_tables)
    result = runner.invoke(app, ["validate", "--data", str(data), "--config", str(config)])
    assert result.exit_code == 2
    assert "cannot read config" in one_error_line(result.stderr)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# credentials


@pytest.mark.slow
def test_tracking_credentials_are_never_logged_or_written(restartable_server, small_world, fast_config, tmp_path,
                                                          monkeypatch):
    import mlflow
    from mlflow import MlflowClient

    in_uri, in_env = "uri-s3cret-4242", "env-s3cret-1717"
    port = restartable_server.port
    uri = f"http://analyst:{in_uri}@127.0.0.1:{port}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "analyst")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", in_env)
    monkeypatch.setenv("CUSTOMER_VALUE_HOME", str(tmp_path / "home"))
    mlflow.set_tracking_uri(uri)
    secrets = (in_uri, in_env)

    trained = runner.invoke(app, cli_train_args(small_world, fast_config, "secrets", "--name", "cv_secret"))
    assert trained.exit_code == 0, (trained.output, trained.exception)
    out, report = tmp_path / "scores.parquet", tmp_path / "report.html"
    scored = runner.invoke(app, ["score", "--data", str(small_world), "--as-of", AS_OF.isoformat(),
                                 "--model", "models:/cv_secret@champion", "--out", str(out), "--report", str(report)])
    assert scored.exit_code == 0, (scored.output, scored.exception)

    client = MlflowClient(tracking_uri=restartable_server.url)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=5000)
    assert len(runs) > 5  # the training, its parts and trials, the scoring
    logged = [f"{k}={v}" for r in runs for k, v in {**r.data.params, **r.data.tags}.items()]
    logged += [r.info.artifact_uri for r in runs]
    logged += [f"{v.source} {v.run_link}" for v in client.search_model_versions("name = 'cv_secret'")]
    texts = {"params and tags": "\n".join(logged), "score file": out.read_bytes().decode("latin-1"),
             "report": report.read_text(), "output": trained.output + scored.output}
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a secret in the {where}"
    assert pd.read_parquet(out)["model_uri"].eq("models:/cv_secret/1").all()

    # and an error naming the server names it without the password
    restartable_server.stop()
    failed = runner.invoke(app, ["score", "--data", str(small_world), "--as-of", AS_OF.isoformat(),
                                 "--model", "models:/cv_secret@champion", "--out", str(tmp_path / "again.parquet")])
    assert failed.exit_code == 1
    line = one_error_line(failed.stderr)
    assert f"http://analyst:***@127.0.0.1:{port}" in line
    assert not any(secret in failed.output for secret in secrets)
