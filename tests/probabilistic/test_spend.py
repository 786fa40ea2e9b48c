"""SpendModel (Gamma-Gamma): golden CDNOW values, guards, fallbacks, recovery."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from customer_value.probabilistic import fitting as _fitting
from customer_value.probabilistic.spend import GammaGammaObjective, SpendModel
from customer_value.simulation.parametric import CDNOW_BGNBD_DAILY, simulate_rfm
from lifetimes_reference import lifetimes


@pytest.fixture(scope="module")
def cdnow(cdnow_spend) -> pd.DataFrame:
    return cdnow_spend


def test_gamma_gamma_matches_published_cdnow_parameters(spend):
    for name, value in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert spend.params_[name] == pytest.approx(value, rel=5e-3), name
    assert spend.n_fit_customers_ == 946
    assert spend.exclusions_["no_repeat_purchase"] == 2357 - 946
    assert spend.fit_path_ == "trust-exact"


def test_matches_lifetimes_fit_likelihood_and_predictions(cdnow, spend):
    repeat = cdnow[cdnow["frequency"] > 0]
    ref = lifetimes().GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    for ours, theirs in (("p", "p"), ("q", "q"), ("gamma", "v")):
        assert spend.params_[ours] == pytest.approx(ref.params_[theirs], rel=1e-6)
        assert spend.params_se_[ours] == pytest.approx(ref.standard_errors_[theirs], rel=1e-4)
    ll = -ref._negative_log_likelihood(
        np.log(ref.params_.to_numpy()), repeat["frequency"].to_numpy(float), repeat["monetary_value"].to_numpy(),
        np.ones(len(repeat)), 0.0,
    ) * len(repeat)
    assert spend.log_likelihood_ == pytest.approx(ll, rel=1e-9)
    ref.params_ = pd.Series({"p": spend.params_["p"], "q": spend.params_["q"], "v": spend.params_["gamma"]})
    expected = ref.conditional_expected_average_profit(repeat["frequency"], repeat["monetary_value"])
    assert np.allclose(spend.predict(repeat), expected, rtol=1e-10)


def test_analytic_gradient_and_hessian(cdnow):
    repeat = cdnow[cdnow["frequency"] > 0]
    x = repeat["frequency"].to_numpy(float)
    m = repeat["monetary_value"].to_numpy() / repeat["monetary_value"].mean()
    for q_penalty in (0.0, 0.1):
        objective = GammaGammaObjective(x, m, np.ones_like(x), penalizer=0.01, q_penalty=q_penalty)
        phi = np.log([3.0, 2.5, 0.7])
        _, grad = objective.value_and_grad(phi)
        assert np.allclose(grad, _fitting.numerical_gradient(objective.value, phi, 1e-6), atol=1e-7)
        numeric = _fitting.numerical_hessian_from_grad(lambda p: objective.value_and_grad(p)[1], phi, 1e-5)
        assert np.allclose(objective.hessian(phi), numeric, atol=1e-6)


def test_guards_exclude_and_predict_the_population_mean(cdnow, spend):
    odd = pd.DataFrame(
        {"frequency": [0, 3, 2, 4, 1, 500], "monetary_value": [0.0, -5.0, 0.0, np.nan, np.inf, 30.0]},
        index=pd.Index(list("abcdef"), name="customer_id"),
    )
    data = pd.concat([cdnow[["frequency", "monetary_value"]], odd])
    model = SpendModel().fit(data)
    assert model.exclusions_ == {"no_repeat_purchase": 1412, "non_positive_spend": 2, "non_finite_spend": 2}
    assert model.n_excluded_ == 1416
    assert model.n_fit_customers_ == 947
    pred = model.predict(odd)
    assert np.isfinite(pred).all() and (pred > 0).all()
    assert np.allclose(pred.loc[list("abcde")], model.population_mean_)
    assert model.population_mean_ == pytest.approx(model.params_["p"] * model.params_["gamma"] / (model.params_["q"] - 1))
    assert pred.loc["f"] == pytest.approx(30.0, rel=0.05)  # 500 purchases: almost all weight on the customer


def test_frequency_spend_correlation_is_reported(cdnow, spend):
    repeat = cdnow[cdnow["frequency"] > 0]
    assert spend.freq_spend_corr_ == pytest.approx(np.corrcoef(repeat["frequency"], repeat["monetary_value"])[0, 1])
    assert abs(spend.freq_spend_corr_) < 0.3


def test_q_below_one_falls_back_to_a_penalised_fit():
    data = simulate_rfm(20_000, CDNOW_BGNBD_DAILY, {"p": 2.0, "q": 0.7, "gamma": 10.0}, discrete=True, seed=3)
    with pytest.warns(RuntimeWarning, match="penalised fit"):
        model = SpendModel().fit(data)
    assert model.fit_path_.startswith("trust-exact+q-penalty=")
    assert "infinite" in model.fit_attempts_[0]["message"]
    assert model.params_["q"] > 1
    assert np.isfinite(model.population_mean_)
    assert model.population_mean_ <= data["monetary_value"].max()
    assert np.isfinite(model.predict(data)).all()


def test_fallback_optimiser_is_recorded(cdnow, monkeypatch):
    real = _fitting.minimize

    def fake(*args, method=None, **kwargs):
        if method == "trust-exact":
            raise FloatingPointError("forced failure")
        return real(*args, method=method, **kwargs)

    monkeypatch.setattr(_fitting, "minimize", fake)
    model = SpendModel().fit(cdnow)
    assert model.fit_path_ == "l-bfgs-b"
    assert "forced failure" in model.fit_attempts_[0]["message"]
    assert model.params_["q"] == pytest.approx(3.74, rel=5e-3)


def test_clear_errors(cdnow, monkeypatch):
    with pytest.raises(_fitting.FitError, match="only 1 customer"):
        SpendModel().fit(pd.DataFrame({"frequency": [0, 2], "monetary_value": [0.0, 3.0]}))
    with pytest.raises(ValueError, match="monetary_value"):
        SpendModel().fit(cdnow[["frequency"]])

    def broken(*args, **kwargs):
        raise ArithmeticError("forced failure")

    monkeypatch.setattr(_fitting, "minimize", broken)
    with pytest.raises(_fitting.FitError, match="Gamma-Gamma spend model: every optimisation path failed"):
        SpendModel().fit(cdnow)


def test_estimator_conventions_and_json_round_trip(cdnow, spend):
    assert vars(SpendModel(penalizer=0.1)) == {"penalizer": 0.1, "max_iter": 500}
    with pytest.raises(RuntimeError, match="not fitted"):
        SpendModel().predict(cdnow)
    restored = SpendModel.from_dict(json.loads(json.dumps(spend.to_dict())))
    pd.testing.assert_series_equal(restored.predict(cdnow), spend.predict(cdnow))
    assert restored.freq_spend_corr_ == spend.freq_spend_corr_


def test_parameter_recovery_within_reported_intervals():
    true = {"p": 4.0, "q": 3.0, "gamma": 20.0}
    data = simulate_rfm(200_000, {"r": 0.8, "alpha": 40.0, "a": 0.9, "b": 3.0}, true, max_T=730.0, seed=2024)
    model = SpendModel().fit(data)
    for name, value in true.items():
        low, high = model.params_ci_[name]
        assert low < value < high, (name, value, model.params_ci_[name])
    assert abs(model.freq_spend_corr_) < 0.05  # simulated independently of frequency
