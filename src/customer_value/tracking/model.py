"""The registered model: how it is logged, registered, resolved and loaded, and what crosses
the pyfunc boundary (the wrapper itself is :mod:`.pyfunc`, logged as models-from-code).

The bundle travels as JSON plus LightGBM text (``ValueModel.save``), never a pickle. Features
cross the boundary without categoricals (strings stay strings; nullable ints become floats).
"""

from __future__ import annotations

import datetime as dt
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
from customer_value.tracking.store import setup_tracking
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


def resolve_model_uri(model: str) -> str:
    """A stable identity for score rows: aliases are resolved to ``models:/name/version``."""
    if model.startswith("models:/") and "@" in model:
        name, alias = model.removeprefix("models:/").split("@", 1)
        version = MlflowClient().get_model_version_by_alias(name, alias)
        return f"models:/{name}/{version.version}"
    if Path(model).exists():
        return str(Path(model).resolve())
    return model


@dataclass
class LoadedModel:
    """A loaded pyfunc, the value model inside it, and the identity written into score rows."""

    pyfunc: Any
    value_model: ValueModel
    uri: str

    @property
    def settings(self) -> Settings:
        return self.value_model.settings


def load_model(model: str) -> LoadedModel:
    """``models:/<name>/<version>``, ``models:/<name>@<alias>``, ``runs:/...`` or a local directory."""
    setup_tracking()
    loaded = mlflow.pyfunc.load_model(model)
    return LoadedModel(loaded, loaded.unwrap_python_model().model, resolve_model_uri(model))


def score_features(model: LoadedModel, features: pd.DataFrame, as_of: dt.date, horizon_days: int | None = None) -> pd.DataFrame:
    """Score rows for a feature frame, through the pyfunc (the same path as any MLflow consumer)."""
    params = {"as_of": as_of.isoformat(), "model_uri": model.uri, "horizon_days": int(horizon_days or 0)}
    scores = model.pyfunc.predict(model_input(features), params=params)
    scores["as_of"] = pd.to_datetime(scores["as_of"]).dt.date
    for column in ACCOUNT_COLUMNS:
        if column in features.columns:
            scores[column] = features[column].to_numpy()
    return scores
