"""The MLflow pyfunc wrapper of the value model, logged as models-from-code.

MLflow copies this file into the logged model and runs it at load time; it only defines the
wrapper and calls ``set_model``. The fitted parts travel as the ``bundle`` artifact (JSON for the
probabilistic parameters, LightGBM's text format for the boosters), never as a pickle.

Input: the feature frame of :func:`customer_value.features.build_features` (strings stay
strings across the pyfunc boundary; categories are applied inside). Params: ``as_of``
(YYYY-MM-DD), ``model_uri`` (written into each row), ``horizon_days`` (0 = the model's own).
Output: the score rows of contract section 5 plus their components.
"""

from __future__ import annotations

import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

from customer_value.tracking.model import PYFUNC_PARAMS, output_for_signature
from customer_value.valuation.value import ValueModel


class CustomerValuePyfunc(PythonModel):
    """Loads the bundle once; ``predict`` scores a feature frame as of ``params['as_of']``."""

    def load_context(self, context) -> None:
        self.model = ValueModel.load(context.artifacts["bundle"])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        params = {**PYFUNC_PARAMS, **(params or {})}
        horizon = int(params["horizon_days"]) or None
        scores = self.model.predict(model_input, params["as_of"], model_uri=str(params["model_uri"]), horizon_days=horizon)
        return output_for_signature(scores)


set_model(CustomerValuePyfunc())
