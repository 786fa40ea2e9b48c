"""Constants, servers and checks shared by the reliability tests (imported by name: conftest
modules are not)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from session_world import AS_OF, FAST, N_CUSTOMERS  # noqa: F401  (re-exported)
BIN = Path(sys.executable).parent


def cli_train_args(data: Path, config: Path, experiment: str, *extra: str) -> list[str]:
    return ["train", "--data", str(data), "--as-of", AS_OF.isoformat(), "--experiment", experiment,
            "--config", str(config), "--alias", "champion", "--no-backtest", *extra]


# ---------------------------------------------------------------------------------------------
# servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def answers(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


class MlflowServer:
    """A real `mlflow server` on 127.0.0.1 with a SQLite store under ``root``; the same port and
    store across restarts."""

    def __init__(self, root: Path, template_db: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.copy(template_db, root / "mlflow.db")  # already migrated: starts in seconds
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 120) -> str:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        log = open(self.root / f"server-{self.starts}.log", "w")
        self.proc = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.port),
             "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
             "--artifacts-destination", str(self.root / "artifacts"), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        if not wait_until(lambda: answers(self.url) or self.proc.poll() is not None, timeout, 0.25) \
                or not answers(self.url):
            self.stop()
            raise RuntimeError(f"mlflow server did not start: {self.log()[-2000:]}")
        return self.url

    def log(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.root.glob("server-*.log")))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        """Signal the server's whole process group; SIGKILL what is left after ``timeout``."""
        if self.proc is None:
            return
        for s in (sig, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, s)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                continue
            if not wait_until(lambda: not _group_alive(self.proc.pid), 5, 0.1):
                continue
            break
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # stragglers of the group, if any
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        wait_until(lambda: not answers(self.url, 0.5), 10)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> str:
        self.stop()
        return self.start()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def one_error_line(stderr: str) -> str:
    """The single `error:` line of a failed command (and no traceback)."""
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr, stderr
    return lines[0]
