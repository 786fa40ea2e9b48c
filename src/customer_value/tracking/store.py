"""Where the MLflow store is, whether it can be reached, and its experiments.

The embedded default is a SQLite store at ``<project root>/mlflow/mlflow.db`` with artifacts
under ``<project root>/mlflow/artifacts``, resolved from the project root rather than the
working directory, so a notebook in ``notebooks/`` and the CLI at the top level see the same
runs. ``MLFLOW_TRACKING_URI`` overrides it (a server, another database).

A tracking server is checked once up front (:func:`check_reachable`, a few seconds at most), so
a job whose server is down fails at once with :class:`TrackingUnavailableError` instead of after
the long work; MLflow's own HTTP retries are bounded (:data:`HTTP_DEFAULTS`, only where the user
set nothing). Tracking credentials never appear in a message: :func:`redact` removes them.

``mlflow`` is imported inside the functions that need it, so the CLI's error path can use
:func:`redact` and :func:`as_user_error` without paying for the import.
"""

from __future__ import annotations

import errno
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from customer_value.errors import CustomerValueError, ModelNotFoundError, TrackingUnavailableError

ROOT_ENV = "CUSTOMER_VALUE_HOME"
REACHABLE_TIMEOUT = 5.0
"""Seconds the up-front check waits for a tracking server."""
HTTP_DEFAULTS = {
    # MLflow retries a failed request 7 times with a backoff factor of 2 (about four minutes)
    # and waits 120 s for an answer. For a job that has just checked its server, a server that
    # goes away mid-run should fail the job in seconds, not minutes; uploads keep a generous
    # timeout. Only applied when the variable is not set already.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}
SECRET_ENV = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_CLIENT_CERT_PATH",
              "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_STORAGE_ACCESS_KEY",
              "AZURE_STORAGE_CONNECTION_STRING", "DATABRICKS_TOKEN")
"""Environment variables whose values are secrets: never logged, never printed."""


def checkout_root() -> Path | None:
    """The source checkout this package is imported from (an editable install), if any."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").exists() and (parent / "src" / "customer_value").is_dir():
            return parent
    return None


def project_root() -> Path:
    """Where the embedded store lives: ``$CUSTOMER_VALUE_HOME``, else the checkout, else the working dir."""
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]).resolve()
    return checkout_root() or Path.cwd().resolve()


def store_dir() -> Path:
    return project_root() / "mlflow"


def default_tracking_uri() -> str:
    return f"sqlite:///{store_dir() / 'mlflow.db'}"


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set, else the embedded SQLite store under ``mlflow/``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def is_embedded(uri: str) -> bool:
    return uri.startswith("sqlite:///") or uri.startswith("file:")


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def setup_tracking() -> str:
    """Point MLflow at our store (creating the folder) and return the URI in use; a tracking
    server is checked first (:func:`check_reachable`) and MLflow's HTTP retries are bounded."""
    import mlflow

    uri = tracking_uri()
    if uri == default_tracking_uri():
        (store_dir() / "artifacts").mkdir(parents=True, exist_ok=True)
    if is_server(uri):
        for name, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)
        if urllib.parse.urlsplit(uri).password:  # MLflow prints run links built from the URI, password and all
            os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        check_reachable(uri)
    mlflow.set_tracking_uri(uri)
    return uri


def check_reachable(uri: str | None = None, timeout: float = REACHABLE_TIMEOUT) -> None:
    """Raise :class:`TrackingUnavailableError` naming the (redacted) URI when a tracking server does
    not answer within ``timeout`` seconds; any HTTP answer (even 401 or 404) counts as reachable.
    Databases and folders are not checked here (MLflow's own errors name them)."""
    uri = uri or tracking_uri()
    reason = unreachable_reason(uri, timeout)
    if reason is not None:
        raise TrackingUnavailableError(
            f"cannot reach the MLflow tracking server at {redact(uri)} ({reason}); start it, or point "
            "MLFLOW_TRACKING_URI at a running one (unset it for the embedded store under mlflow/)")


def unreachable_reason(uri: str | None = None, timeout: float = REACHABLE_TIMEOUT) -> str | None:
    """Why the tracking server does not answer (``None`` when it does, or when ``uri`` is no server)."""
    uri = uri or tracking_uri()
    if not is_server(uri):
        return None
    parts = urllib.parse.urlsplit(uri)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    probe = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + "/health", "", ""))
    try:
        with urllib.request.urlopen(probe, timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # it answered
    except (urllib.error.URLError, OSError, ValueError) as exc:
        cause = getattr(exc, "reason", exc)
        if isinstance(cause, TimeoutError) or "timed out" in str(cause):
            return f"no answer within {timeout:g} s"
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
            return "connection refused"
        return str(cause) or type(cause).__name__


def is_reachable(uri: str | None = None, timeout: float = 2.0) -> bool:
    return unreachable_reason(uri, timeout) is None


def experiment_id(name: str) -> str:
    """Get or create an experiment; embedded stores keep artifacts beside the database."""
    import mlflow

    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    uri = mlflow.get_tracking_uri()
    if uri.startswith("sqlite:///"):
        database = Path(uri.removeprefix("sqlite:///"))
        location = (database.parent / "artifacts" / _safe(name)).as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


# ---------------------------------------------------------------------------------------------
# secrets


MIN_SECRET = 6
"""Shorter values are not replaced wherever they occur (a password ``dev`` would mangle
``--debug``); a password in a URI is still removed by its position, ``user:***@``."""


def secrets() -> list[str]:
    """The secret strings of this environment: passwords in the tracking URI and the values of
    :data:`SECRET_ENV` (longest first, so a secret containing another is removed whole)."""
    found = {os.environ.get(name, "") for name in SECRET_ENV}
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if "@" in uri:
        parts = urllib.parse.urlsplit(uri)
        found |= {parts.password or "", urllib.parse.unquote(parts.password or "")}
    return sorted((s for s in found if len(s) >= MIN_SECRET), key=len, reverse=True)


_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/@\s:]*):(?P<password>[^/@\s]*)@")


def redact(text: object) -> str:
    """``text`` with credentials removed: ``scheme://user:***@host`` and every known secret as ``***``."""
    out = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", str(text))
    for secret in secrets():
        out = out.replace(secret, "***")
    return out


# ---------------------------------------------------------------------------------------------
# MLflow's failures as the user's


def as_user_error(exc: BaseException) -> CustomerValueError | None:
    """An MLflow or HTTP failure as a :class:`CustomerValueError` (``None`` when it is none of
    those): an unreachable server becomes :class:`TrackingUnavailableError`, a missing registry
    entry :class:`ModelNotFoundError`, anything else MLflow says one line of its message."""
    if isinstance(exc, CustomerValueError):
        return exc
    module = type(exc).__module__
    if module.startswith("requests") and isinstance(exc, OSError):  # requests' errors are OSErrors
        return _lost_server()
    if not module.startswith("mlflow"):
        return None
    message = str(getattr(exc, "message", exc))
    if "API request to" in message and ("failed with exception" in message or "timeout" in message):
        return _lost_server()
    code = getattr(exc, "error_code", "")
    first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
    if code == "RESOURCE_DOES_NOT_EXIST":
        return ModelNotFoundError(f"MLflow: {redact(first)}")
    return CustomerValueError(f"MLflow ({code or type(exc).__name__}): {redact(first)}")


def _lost_server() -> TrackingUnavailableError:
    uri = tracking_uri()
    reason = unreachable_reason(uri)
    state = f"it does not answer now ({reason})" if reason else "it answers again; rerun the command"
    return TrackingUnavailableError(f"lost the MLflow tracking server at {redact(uri)} during the command: "
                                    f"{state}")
