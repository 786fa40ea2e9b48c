"""Compiled trees (boosted/compiled.py): the same predictions as LightGBM, cached once per model,
used only when asked or when they pay, and a clear message when the compiler is missing."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from customer_value.boosted.churn import ChurnModel
from customer_value.boosted.compiled import (
    COMPILE_HINT_FROM,
    COMPILE_PAYS_FROM,
    INSTALL_HINT,
    CompiledBooster,
    booster_slots,
    use_compiled_trees,
)
from customer_value.boosted.cost_to_serve import CostToServeModel


FEW_TREES = {"learning_rate": 0.3, "num_leaves": 7, "min_data_in_leaf": 20}


def frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Features with a categorical column, a cost with two components and a churn label."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "customer_id": [f"c{seed}_{i}" for i in range(n)],
        "tickets": rng.poisson(1.5, n).astype(float),
        "purchases": rng.poisson(5, n).astype(float),
        "late": rng.random(n) < 0.2,
        "region": pd.array(rng.choice(["eu", "us", "apac"], n), dtype="str"),
    })
    support = rng.gamma(1.5, 10.0, n) * rng.poisson(0.3 + 0.8 * X["tickets"])
    orders = 2.0 * rng.poisson(0.2 + X["purchases"] * (1.0 + 0.5 * (X["region"] == "us")))
    churn = (rng.random(n) < 1 / (1 + np.exp(X["purchases"] - 4 - X["late"]))).astype(int)
    return X, np.c_[support, orders], churn


@pytest.fixture(scope="module")
def models():
    """A per-component cost model and a churn model, saved and loaded (as scoring gets them)."""
    X, cost, churn = frame(3000, 1)
    Xv, cost_v, churn_v = frame(1000, 2)
    components = pd.DataFrame(cost, columns=["cost_support", "cost_orders"])
    components_v = pd.DataFrame(cost_v, columns=["cost_support", "cost_orders"])
    fitted_cost = CostToServeModel(params=FEW_TREES, per_component=True, num_boost_round=40,
                                   early_stopping_rounds=10).fit(X, cost.sum(axis=1), Xv, cost_v.sum(axis=1),
                                                                 components=components, components_valid=components_v)
    fitted_churn = ChurnModel(FEW_TREES, num_boost_round=40, early_stopping_rounds=10).fit(X, churn, Xv, churn_v)
    return (lambda: [CostToServeModel.from_dict(fitted_cost.to_dict()), ChurnModel.from_dict(fitted_churn.to_dict())],
            frame(2000, 3)[0])


def test_compiled_trees_predict_what_lightgbm_predicts_and_are_cached(models, tmp_path) -> None:
    load, X = models
    reference = load()
    compiled = load()
    assert use_compiled_trees(compiled, tmp_path, "always", customers=10, num_threads=2)
    slots = booster_slots(compiled)
    assert len({id(s.booster) for s in slots}) >= 2  # the churn booster, the cost model's (and its components')
    assert all(isinstance(getattr(s.owner, s.attribute), CompiledBooster) for s in slots)
    for ref, got in zip(reference, compiled):
        expected = ref.predict(X) if isinstance(ref, CostToServeModel) else ref.predict_proba(X)
        actual = got.predict(X) if isinstance(got, CostToServeModel) else got.predict_proba(X)
        np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-12)
        # explanations are LightGBM's own (pred_contrib goes to the wrapped booster)
        pd.testing.assert_frame_equal(got.contributions(X), ref.contributions(X))
    if reference[0].predict_components(X) is not None:
        pd.testing.assert_frame_equal(compiled[0].predict_components(X), reference[0].predict_components(X),
                                      check_exact=False, rtol=1e-9)
    objects = sorted(tmp_path.glob("*.o"))
    assert len(objects) == len({id(s.booster) for s in slots})
    stamps = [p.stat().st_mtime_ns for p in objects]
    # a later scoring of the same model finds them: auto uses them for any base, without compiling again
    again = load()
    assert use_compiled_trees(again, tmp_path, "auto", customers=10, num_threads=2)
    assert [p.stat().st_mtime_ns for p in sorted(tmp_path.glob("*.o"))] == stamps
    np.testing.assert_allclose(again[1].predict_proba(X), reference[1].predict_proba(X), rtol=1e-9)


def test_auto_keeps_a_small_uncompiled_base_on_lightgbm_and_never_means_never(models, tmp_path) -> None:
    load, X = models
    said: list[str] = []
    for mode in ("auto", "never"):
        fresh = load()
        assert not use_compiled_trees(fresh, tmp_path, mode, customers=COMPILE_PAYS_FROM - 1, say=said.append)
        assert not any(isinstance(getattr(s.owner, s.attribute), CompiledBooster) for s in booster_slots(fresh))
    assert not list(tmp_path.iterdir())  # nothing compiled
    assert COMPILE_PAYS_FROM - 1 >= COMPILE_HINT_FROM
    assert "customer-value compile" in said[0]  # a base this large is told how to compile


def test_auto_compiles_the_quick_build_for_a_large_base_and_the_full_build_replaces_it(models, tmp_path) -> None:
    """A base large enough to repay it gets the quick build (trees not inlined) under ``auto``; the
    compile command's full build (``always``) goes beside it and is the one later scorings load;
    both predict what LightGBM predicts."""
    load, X = models
    reference = load()
    said: list[str] = []
    quick = load()
    assert use_compiled_trees(quick, tmp_path, "auto", customers=COMPILE_PAYS_FROM, num_threads=2, say=said.append)
    boosters = {id(s.booster) for s in booster_slots(quick)}
    assert len(list(tmp_path.glob("*.quick.o"))) == len(boosters)
    assert not [p for p in tmp_path.glob("*.o") if not p.name.endswith(".quick.o")]
    assert "quickly" in said[0] and "customer-value compile" in said[0]
    full = load()
    assert use_compiled_trees(full, tmp_path, "always", customers=10, num_threads=2)  # quick objects are not enough
    assert len([p for p in tmp_path.glob("*.o") if not p.name.endswith(".quick.o")]) == len(boosters)
    later = load()
    assert use_compiled_trees(later, tmp_path, "auto", customers=10, num_threads=2)
    sources = {getattr(s.owner, s.attribute).source for s in booster_slots(later)}
    assert len(sources) == len(boosters) and not any(p.name.endswith(".quick.o") for p in sources)
    assert all(getattr(s.owner, s.attribute).source.name.endswith(".quick.o") for s in booster_slots(quick))
    for got in (quick, full, later):
        np.testing.assert_allclose(got[1].predict_proba(X), reference[1].predict_proba(X), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got[0].predict(X), reference[0].predict(X), rtol=1e-9, atol=1e-12)


def test_a_missing_compiler_is_a_clear_error_only_when_asked_for(models, tmp_path, monkeypatch) -> None:
    load, _ = models
    monkeypatch.setitem(sys.modules, "lleaves", None)  # import lleaves now fails
    assert not use_compiled_trees(load(), tmp_path, "auto", customers=5_000_000)
    with pytest.raises(RuntimeError, match=r"customer-value\[compiled\]") as error:
        use_compiled_trees(load(), tmp_path, "always", customers=10)
    assert INSTALL_HINT in str(error.value)
