"""The shared feature matrix of the boosted models: fixed categories, unknown values as NaN."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from customer_value.boosted.inputs import feature_matrix, learn_categories


def test_feature_matrix_fixes_categories():
    train = pd.DataFrame({
        "customer_id": ["a", "b", "c"],
        "as_of": pd.to_datetime(["2024-01-01"] * 3),
        "x": [1, 2, 3],
        "flag": [True, False, True],
        "plan": pd.array(["pro", "basic", None], dtype="str"),
    })
    cats = learn_categories(train)
    assert cats == {"plan": ["basic", "pro"]}
    X = feature_matrix(train, cats)
    assert list(X.columns) == ["x", "flag", "plan"]
    assert X["flag"].tolist() == [1.0, 0.0, 1.0]
    score = pd.DataFrame({"customer_id": ["d", "e"], "x": [1, 5], "flag": [False, True], "plan": ["team", "pro"]})
    Xs = feature_matrix(score, cats)
    assert list(Xs["plan"].cat.categories) == ["basic", "pro"]
    assert pd.isna(Xs["plan"].iloc[0]) and Xs["plan"].iloc[1] == "pro"  # unknown -> NaN
    # a missing categorical column comes back all-NaN with the fitted categories
    Xm = feature_matrix(score.drop(columns="plan"), cats)
    assert Xm["plan"].isna().all() and list(Xm["plan"].cat.categories) == ["basic", "pro"]
    with pytest.raises(ValueError, match="plan"):
        feature_matrix(score, {})


def test_lightgbm_accepts_scoring_frames_with_other_categories():
    rng = np.random.default_rng(0)
    n = 400
    train = pd.DataFrame({"x": rng.normal(size=n), "plan": rng.choice(["basic", "pro", "enterprise"], n)})
    y = (train["x"] + (train["plan"] == "pro") > 0.5).astype(float)
    cats = learn_categories(train)
    booster = lgb.train({"objective": "binary", "verbosity": -1, "min_data_in_leaf": 5},
                        lgb.Dataset(feature_matrix(train, cats), y), 10)
    score = pd.DataFrame({"x": [0.0, 1.0], "plan": ["pro", "startup"]})  # one value never seen
    p = booster.predict(feature_matrix(score, cats))
    assert p.shape == (2,) and np.isfinite(p).all()
