"""The shared feature matrix of the boosted models: fixed categories, unknown values as NaN."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from customer_value.boosted.inputs import align, as_array, feature_array, feature_matrix, learn_categories


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


def test_feature_array_is_the_aligned_matrix_without_the_frame():
    """Scoring converts a model's columns straight into LightGBM's array: the same numbers as
    aligning the frame first, in the model's column order, row-major."""
    score = pd.DataFrame({"customer_id": ["d", "e", "f"], "x": [1, 5, None], "flag": [False, True, True],
                          "plan": ["team", "pro", None], "tier": pd.Categorical(["a", "b", "a"]),
                          "unused": ["never", "read", "here"]})
    cats = {"plan": ["basic", "pro"], "tier": ["a", "b"], "region": ["eu", "us"]}
    names = ["plan", "x", "region", "flag", "tier"]
    got = feature_array(score, names, cats)
    expected = as_array(align(score.drop(columns="unused"), names, cats))
    np.testing.assert_array_equal(got, expected)
    assert got.flags["C_CONTIGUOUS"] and got.dtype == np.float64
    np.testing.assert_array_equal(got[:, 0], [np.nan, 1.0, np.nan])  # unknown and missing plans are NaN
    assert np.isnan(got[:, 2]).all()  # a categorical column the frame lacks
    with pytest.raises(ValueError, match="missing at prediction time: \\['y'\\]"):
        feature_array(score, ["x", "y"], cats)
