"""The figures that judge a fitted model, under their documented artifact names."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from customer_value.evaluation.figures import evaluation_figures


def test_evaluation_figures_use_documented_names():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300).astype(float)
    p = np.clip(0.4 * y + rng.uniform(0, 0.6, 300), 0, 1)
    cost = rng.gamma(1, 10, 300)
    figures = evaluation_figures(
        churn_true=y, churn_probs={"model": p}, cost_true=cost, cost_preds={"valid": cost},
        importance={"churn": pd.Series({"a": 1.0, "b": 0.5})},
    )
    assert set(figures) == {"evaluation/churn_calibration.png", "evaluation/churn_lift.png",
                            "evaluation/cost_deciles_valid.png", "evaluation/churn_importance.png"}
    assert all(isinstance(f, Figure) for f in figures.values())
