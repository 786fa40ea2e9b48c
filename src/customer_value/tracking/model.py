"""The registered model: how it is logged, registered, resolved and loaded, and what crosses
the pyfunc boundary (the wrapper itself is :mod:`.pyfunc`, logged as models-from-code).

The bundle travels as JSON plus LightGBM text (``ValueModel.save``), never a pickle. Features
cross the boundary without categoricals (strings stay strings; nullable ints become floats).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature

from customer_value import __version__
from customer_value.config import Settings
from customer_value.errors import ModelNotFoundError, TrackingUnavailableError
from customer_value.tracking.store import as_user_error, redact, setup_tracking, tracking_uri
from customer_value.valuation.value import ValueModel

PYFUNC_FILE = Path(__file__).with_name("pyfunc.py")
PYFUNC_PARAMS = {"as_of": "1970-01-01", "model_uri": "", "horizon_days": 0}
ACCOUNT_COLUMNS = ("plan", "acquisition_channel", "region")
"""Account attributes copied from the features into the score rows, for the report's tables."""


def model_input(features: pd.DataFrame) -> pd.DataFrame:
    """Features as they cross the pyfunc boundary: no categoricals, nullable ints as floats."""
    out = features.copy()
    for column in out.columns:
        dtype = out[column].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            out[column] = out[column].astype("str")
        elif pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            out[column] = out[column].astype("float64")
    return out


def output_for_signature(scores: pd.DataFrame) -> pd.DataFrame:
    return scores.assign(as_of=scores["as_of"].astype("str"))


def log_value_model(model: ValueModel, features: pd.DataFrame, as_of: dt.date,
                    export_dir: Path | None = None) -> str:
    """Save the bundle, log it as a pyfunc (models-from-code) with a signature, into the active
    run; return the logged model's URI. ``export_dir`` also keeps a copy of the bundle."""
    with tempfile.TemporaryDirectory() as tmp:
        bundle = model.save(Path(tmp) / "bundle")
        if export_dir is not None:
            model.save(export_dir)
        example = model_input(features.head(5))
        output = model.predict(features.head(5), as_of)
        info = mlflow.pyfunc.log_model(
            name="customer_value",
            python_model=str(PYFUNC_FILE),
            artifacts={"bundle": str(bundle)},
            input_example=example,
            signature=infer_signature(example, output_for_signature(output), params=PYFUNC_PARAMS),
            pip_requirements=[f"customer-value=={__version__}"],
        )
    return info.model_uri


def register(model_uri: str, name: str, alias: str | None = None) -> str:
    """Register a logged model under ``name``, optionally move ``alias``; return models:/name/version."""
    version = mlflow.register_model(model_uri, name)
    if alias:
        MlflowClient().set_registered_model_alias(name, alias, version.version)
    return f"models:/{name}/{version.version}"


REMOTE_CLIENTS = {
    "s3": ("boto3", "boto3"),
    "gs": ("google.cloud.storage", "google-cloud-storage"),
    "wasbs": ("azure.storage.blob", "azure-storage-blob azure-identity"),
    "wasb": ("azure.storage.blob", "azure-storage-blob azure-identity"),
}
"""URI scheme -> (module MLflow needs, the package(s) to install)."""


@dataclass(frozen=True)
class ModelReference:
    """What ``--model`` named, resolved once: ``load_uri`` is what gets loaded (an alias already
    turned into its version, so an alias moved meanwhile cannot change the model), ``uri`` the
    identity written into score rows, ``version`` and ``alias`` the registry's (``None`` if not
    loaded from the registry, or not by alias)."""

    load_uri: str
    uri: str
    version: int | None = None
    alias: str | None = None


def resolve_reference(model: str) -> ModelReference:
    """Resolve ``models:/name/version``, ``models:/name@alias``, a local directory or a remote
    URI before anything is loaded; :class:`ModelNotFoundError` names what does not exist (for
    a missing alias, the model's aliases; for a missing version, its versions)."""
    scheme = model.split("://", 1)[0].lower() if "://" in model else ""
    if scheme in REMOTE_CLIENTS:
        module, package = REMOTE_CLIENTS[scheme]
        if _missing(module):
            raise ModelNotFoundError(f"cannot read {model}: the {scheme}:// client library is not installed "
                                     f"(pip install {package})")
        return ModelReference(model, model)
    if model.startswith("models:/"):
        return _registry_reference(model)
    if model.startswith("runs:/"):
        setup_tracking()
        return ModelReference(model, model)
    if scheme:
        return ModelReference(model, model)
    path = Path(model)
    if not path.exists():
        raise ModelNotFoundError(f"no model at {model}: neither a directory nor models:/<name>/<version>, "
                                 "models:/<name>@<alias> or runs:/<run id>/<path>")
    if not (path / "MLmodel").is_file():
        raise ModelNotFoundError(f"{model} is not an MLflow model directory (no MLmodel file); "
                                 "write one with `customer-value export`")
    resolved = str(path.resolve())
    return ModelReference(resolved, resolved)


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except ModuleNotFoundError:
        return True


def _registry_reference(model: str) -> ModelReference:
    from mlflow.exceptions import MlflowException

    setup_tracking()
    client = MlflowClient()
    rest = model.removeprefix("models:/").strip("/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        try:
            version = client.get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            registered = _registered_model(client, name, model)
            aliases = ", ".join(sorted(registered.aliases)) or "none"
            raise ModelNotFoundError(f"no alias '{alias}' for model '{name}' (aliases: {aliases})") from exc
        return ModelReference(f"models:/{name}/{version.version}", f"models:/{name}/{version.version}",
                              int(version.version), alias)
    name, _, version = rest.partition("/")
    if version.isdigit():
        try:
            client.get_model_version(name, version)
        except MlflowException as exc:
            registered = _registered_model(client, name, model)
            versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
            listed = ", ".join(map(str, versions[-10:])) or "none"
            raise ModelNotFoundError(f"no version {version} of model '{name}' (versions: {listed})") from exc
        return ModelReference(model, model, int(version))
    if version:  # a stage such as Production, or a logged model id: MLflow resolves it at load
        return ModelReference(model, model)
    _registered_model(client, name, model)
    raise ModelNotFoundError(f"{model} names no version: use models:/{name}/<version> or models:/{name}@<alias>")


def _registered_model(client: MlflowClient, name: str, model: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
            raise
        known = sorted(m.name for m in client.search_registered_models(max_results=20))
        listed = ", ".join(known) or "none"
        raise ModelNotFoundError(f"no registered model '{name}' in {redact(tracking_uri())} ({model}; "
                                 f"registered: {listed})") from exc


def resolve_model_uri(model: str) -> str:
    """A stable identity for score rows: aliases are resolved to ``models:/name/version``."""
    return resolve_reference(model).uri


@dataclass
class LoadedModel:
    """A loaded pyfunc, the value model inside it, and the identity written into score rows."""

    pyfunc: Any
    value_model: ValueModel
    uri: str
    version: int | None = None
    alias: str | None = None

    @property
    def settings(self) -> Settings:
        return self.value_model.settings


def load_model(model: str) -> LoadedModel:
    """``models:/<name>/<version>``, ``models:/<name>@<alias>``, ``runs:/...`` or a local directory.

    The reference is resolved once, before loading, and the resolved version is what gets
    loaded: a score file's ``model_uri`` and ``model_version`` are the model that produced it."""
    from mlflow.exceptions import MlflowException

    reference = resolve_reference(model)  # the tracking store only when the reference needs it
    try:
        loaded = mlflow.pyfunc.load_model(reference.load_uri)
    except MlflowException as exc:
        translated = as_user_error(exc)
        if isinstance(translated, TrackingUnavailableError):
            raise translated from exc
        raise ModelNotFoundError(f"cannot load model {model}: {str(translated or exc).splitlines()[0]}") from exc
    except OSError as exc:
        raise ModelNotFoundError(f"cannot load model {model}: {exc}") from exc
    return LoadedModel(loaded, loaded.unwrap_python_model().model, reference.uri, reference.version,
                       reference.alias)


def score_features(model: LoadedModel, features: pd.DataFrame, as_of: dt.date, horizon_days: int | None = None) -> pd.DataFrame:
    """Score rows for a feature frame, through the pyfunc (the same path as any MLflow consumer)."""
    params = {"as_of": as_of.isoformat(), "model_uri": model.uri, "horizon_days": int(horizon_days or 0)}
    scores = model.pyfunc.predict(model_input(features), params=params)
    scores["as_of"] = pd.to_datetime(scores["as_of"]).dt.date
    return with_identity(model, features, scores)


def score_batch(model: LoadedModel, features: pd.DataFrame, as_of: dt.date, horizon_days: int | None = None,
                boosted: Any = None, totals: Any = None) -> pd.DataFrame:
    """Score rows for one batch of the population (:meth:`ValueModel.predict` with the
    population's ``totals`` and the batch's ``boosted`` predictions from the first pass): the
    same rows :func:`score_features` gives for these customers when it scores everyone at once.
    The value model is called in process (the pyfunc's parameters cannot carry the totals) on
    the same input the pyfunc sees."""
    scores = model.value_model.predict(model_input(features), as_of.isoformat(), model_uri=model.uri,
                                       horizon_days=int(horizon_days or 0) or None, boosted=boosted, totals=totals)
    return with_identity(model, features, scores)


def with_identity(model: LoadedModel, features: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """Score rows with the account attributes and the model's registered version and alias."""
    for column in ACCOUNT_COLUMNS:
        if column in features.columns:
            scores[column] = features[column].to_numpy()
    # contract section 8: the registered version, and the alias it was loaded by
    # (text, as MLflow's registry spells versions; missing when loaded from a path)
    version = None if model.version is None else str(model.version)
    scores["model_version"] = pd.Series([version] * len(scores), index=scores.index, dtype="str")
    scores["model_alias"] = pd.Series([model.alias] * len(scores), index=scores.index, dtype="str")
    return scores
