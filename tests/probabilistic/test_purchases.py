"""PurchaseModel: golden CDNOW values, agreement with lifetimes, compression, robustness, recovery."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from customer_value.errors import CannotFitError
from scipy import stats

from customer_value.probabilistic import fitting as _fitting
from customer_value.probabilistic import nbd
from customer_value.probabilistic.patterns import compress
from customer_value.probabilistic.purchases import PurchaseModel, bgnbd_prob_no_purchase
from customer_value.simulation.parametric import CDNOW_BGNBD_DAILY, CDNOW_GAMMA_GAMMA, simulate_rfm
from customer_value.units import continuous_discount_rate
from lifetimes_reference import lifetimes


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    """lifetimes' cdnow_customers_summary: 2357 customers, weeks, as of 1997-10-01."""
    return lifetimes().datasets.load_cdnow_summary(index_col=[0])


@pytest.fixture(scope="module")
def fitted(cdnow) -> dict[str, PurchaseModel]:
    return {m: PurchaseModel(m, time_unit="weeks").fit(cdnow) for m in ("bgnbd", "mbgnbd", "pareto_nbd")}


@pytest.fixture(scope="module")
def daily() -> pd.DataFrame:
    return simulate_rfm(20_000, CDNOW_BGNBD_DAILY, CDNOW_GAMMA_GAMMA, discrete=True, seed=11)


def _rel(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


# -- golden values ------------------------------------------------------------------------------


def test_bgnbd_matches_published_cdnow_parameters(fitted):
    model = fitted["bgnbd"]
    golden = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in golden.items():
        assert model.params_[name] == pytest.approx(value, rel=5e-3), name
    assert model.log_likelihood_ == pytest.approx(-9582.4, rel=5e-3)
    assert model.log_likelihood_ == pytest.approx(-9582.4, abs=0.1)
    assert model.fit_path_ == "trust-exact"
    assert model.n_customers_ == 2357


def test_pareto_nbd_matches_published_cdnow_parameters(fitted):
    model = fitted["pareto_nbd"]
    golden = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
    for name, value in golden.items():
        assert model.params_[name] == pytest.approx(value, rel=5e-3), name


def test_conditional_expectation_matches_hardie(fitted):
    one = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
    expected = fitted["bgnbd"].predict(one, 39, discount_rate=0.0)["expected_transactions"].iloc[0]
    assert expected == pytest.approx(1.226, rel=5e-3)


# -- agreement with lifetimes -------------------------------------------------------------------


def test_mbgnbd_fit_and_standard_errors_match_lifetimes(cdnow, fitted):
    lt = lifetimes()
    ref = lt.ModifiedBetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    ours = fitted["mbgnbd"]
    for name in ("r", "alpha", "a", "b"):
        assert ours.params_[name] == pytest.approx(ref.params_[name], rel=1e-4)
        assert ours.params_se_[name] == pytest.approx(ref.standard_errors_[name], rel=1e-3)


def test_bgnbd_standard_errors_match_lifetimes_hessian(cdnow, fitted):
    ref = lifetimes().BetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    for name in ("r", "alpha", "a", "b"):
        assert fitted["bgnbd"].params_se_[name] == pytest.approx(ref.standard_errors_[name], rel=1e-4)
        low, high = fitted["bgnbd"].params_ci_[name]
        assert low < fitted["bgnbd"].params_[name] < high


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd", "pareto_nbd"])
def test_predictions_equal_lifetimes_at_the_same_parameters(cdnow, fitted, model):
    lt = lifetimes()
    ours = fitted[model]
    ref = {"bgnbd": lt.BetaGeoFitter, "mbgnbd": lt.ModifiedBetaGeoFitter, "pareto_nbd": lt.ParetoNBDFitter}[model]()
    ref.params_ = pd.Series(ours.params_)
    f, r, T = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    pred = ours.predict(cdnow, 39, discount_rate=0.0)
    assert _rel(pred["p_alive"], ref.conditional_probability_alive(f, r, T)) < 1e-6
    expected = ref.conditional_expected_number_of_purchases_up_to_time(39, f, r, T)
    assert _rel(pred["expected_transactions"], expected) < 1e-6
    assert np.allclose(ours.expected_repeat_purchases([10.0, 52.0]), ref.expected_number_of_purchases_up_to_time(np.array([10.0, 52.0])), rtol=1e-8)


# -- pattern compression ------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd", "pareto_nbd"])
def test_compressed_log_likelihood_equals_per_customer_sum(daily, model):
    params = {"bgnbd": CDNOW_BGNBD_DAILY, "mbgnbd": CDNOW_BGNBD_DAILY,
              "pareto_nbd": {"r": 0.55, "alpha": 74.0, "s": 0.6, "beta": 81.7}}[model]
    pm = PurchaseModel.from_params(params, model=model)
    x, t_x, T = (daily[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    theta = pm._theta()
    if model == "pareto_nbd":
        per_row = nbd.pareto_conditional_log_likelihood(theta, x, t_x, T).sum()
    else:
        lt = lifetimes()
        fitter = lt.BetaGeoFitter if model == "bgnbd" else lt.ModifiedBetaGeoFitter
        per_row = -fitter._negative_log_likelihood(np.log(theta), x, t_x, T, np.ones_like(x), 0.0) * len(x)
    compressed = pm.log_likelihood(daily)
    assert compressed == pytest.approx(per_row, rel=1e-10)
    assert compress(x, t_x, T).n_patterns < len(daily) / 2


def test_compression_gives_the_same_fit_as_duplicated_rows(daily):
    once = PurchaseModel().fit(daily)
    twice = PurchaseModel().fit(pd.concat([daily, daily], ignore_index=True))
    assert twice.n_patterns_ == once.n_patterns_
    assert twice.n_customers_ == 2 * once.n_customers_
    for name in once.params_:
        assert twice.params_[name] == pytest.approx(once.params_[name], rel=1e-6)
        assert twice.params_se_[name] == pytest.approx(once.params_se_[name] / np.sqrt(2), rel=1e-4)
    assert twice.log_likelihood_ == pytest.approx(2 * once.log_likelihood_, rel=1e-9)


def test_scoring_broadcasts_unique_patterns(daily):
    pm = PurchaseModel.from_params(CDNOW_BGNBD_DAILY)
    shuffled = daily.sample(frac=1.0, random_state=3)
    a = pm.predict(daily, 365).loc[shuffled.index]
    b = pm.predict(shuffled, 365)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)


@pytest.mark.parametrize("modified", [False, True])
def test_analytic_gradient_and_hessian(daily, modified):
    x, t_x, T = (daily[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    objective = nbd.BetaGeoObjective(compress(x, t_x, T).scaled(1 / 730), modified=modified, penalizer=0.01)
    phi = np.log([0.3, 0.05, 0.9, 2.0])
    _, grad = objective.value_and_grad(phi)
    assert np.allclose(grad, _fitting.numerical_gradient(objective.value, phi, 1e-6), atol=1e-7)
    numeric = _fitting.numerical_hessian_from_grad(lambda p: objective.value_and_grad(p)[1], phi, 1e-5)
    assert np.allclose(objective.hessian(phi), numeric, atol=1e-6)


# -- predictions --------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd", "pareto_nbd"])
def test_discounting(cdnow, fitted, model):
    pm = fitted[model]
    plain = pm.predict(cdnow, 52, discount_rate=0.0)
    assert np.array_equal(plain["expected_transactions"], plain["discounted_expected_transactions"])
    tiny = pm.predict(cdnow, 52, discount_rate=1e-9)
    assert _rel(tiny["discounted_expected_transactions"], plain["expected_transactions"]) < 1e-8
    disc = pm.predict(cdnow, 52, discount_rate=0.10)
    ratio = disc["discounted_expected_transactions"] / disc["expected_transactions"]
    assert ((ratio > 1.1 ** -1) & (ratio < 1.0)).all()
    # A fine-grid sum of the expected increments times the discount factor agrees.
    delta = continuous_discount_rate(0.10, "weeks")
    some = cdnow.iloc[:40]
    grid = np.linspace(0.0, 52.0, 2001)
    cumulative = np.array([pm.predict(some, g, discount_rate=0.0)["expected_transactions"].to_numpy() for g in grid])
    brute = (np.diff(cumulative, axis=0) * np.exp(-delta * 0.5 * (grid[1:] + grid[:-1]))[:, None]).sum(axis=0)
    assert _rel(disc["discounted_expected_transactions"].iloc[:40], brute) < 1e-6


EXTREMES = pd.DataFrame(
    {
        "frequency": [0, 1, 500, 500, 1, 3, 0, 500, 2, 1],
        "recency": [0.0, 1.0, 1.0, 0.0, 0.0, 700.0, 0.0, 730.0, 1.0, 1.0],
        "T": [1.0, 1.0, 1.0, 730.0, 730.0, 700.0, 0.0, 730.0, 1.0, 3650.0],
    },
    index=pd.Index([f"c{i}" for i in range(10)], name="customer_id"),
)


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd", "pareto_nbd"])
@pytest.mark.parametrize("horizon", [0.0, 1.0, 365.0, 3650.0])
def test_extreme_customers_get_finite_predictions(model, horizon):
    params = {"bgnbd": CDNOW_BGNBD_DAILY, "mbgnbd": CDNOW_BGNBD_DAILY,
              "pareto_nbd": {"r": 0.55, "alpha": 74.0, "s": 0.6, "beta": 81.7}}[model]
    pm = PurchaseModel.from_params(params, model=model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback-to-fill warnings either
        pred = pm.predict(EXTREMES, horizon)
    values = pred.to_numpy()
    assert np.isfinite(values).all()
    assert ((pred["p_alive"] >= 0) & (pred["p_alive"] <= 1)).all()
    assert (pred["expected_transactions"] >= 0).all()
    assert (pred["discounted_expected_transactions"] <= pred["expected_transactions"] + 1e-12).all()
    if horizon == 0:
        assert (pred["expected_transactions"] == 0).all()


@pytest.mark.parametrize("params", [
    {"r": 0.243, "alpha": 30.9, "a": 1.0, "b": 2.4},  # a == 1: the closed form is 0/0
    {"r": 50.0, "alpha": 0.01, "a": 0.05, "b": 500.0},
    {"r": 0.01, "alpha": 5000.0, "a": 20.0, "b": 0.05},
])
def test_extreme_parameters_fall_back_to_quadrature(params):
    pm = PurchaseModel.from_params(params)
    pred = pm.predict(EXTREMES, 365.0)
    assert np.isfinite(pred.to_numpy()).all()
    if params["a"] == 1.0:
        near = PurchaseModel.from_params({**params, "a": 1.0 + 1e-6}).predict(EXTREMES, 365.0)
        assert _rel(pred["expected_transactions"], near["expected_transactions"]) < 1e-4


def test_extreme_customers_in_a_fit(daily):
    data = pd.concat([daily, EXTREMES.loc[EXTREMES["T"] > 0]])
    pm = PurchaseModel().fit(data)
    assert np.isfinite(list(pm.params_.values())).all()
    assert np.isfinite(pm.predict(data, 365).to_numpy()).all()


# -- robust fitting -----------------------------------------------------------------------------


def _failing_minimize(methods: set[str]):
    real = _fitting.minimize

    def fake(*args, method=None, **kwargs):
        if method is not None and method.lower() in methods:
            raise ArithmeticError(f"forced failure of {method}")
        return real(*args, method=method, **kwargs)

    return fake


def test_fallback_optimiser_is_recorded(cdnow, monkeypatch):
    monkeypatch.setattr(_fitting, "minimize", _failing_minimize({"trust-exact"}))
    pm = PurchaseModel(time_unit="weeks").fit(cdnow)
    assert pm.fit_path_ == "l-bfgs-b"
    assert pm.fit_attempts_[0]["path"] == "trust-exact"
    assert not pm.fit_attempts_[0]["success"]
    assert "forced failure" in pm.fit_attempts_[0]["message"]
    assert pm.params_["r"] == pytest.approx(0.243, rel=5e-3)


def test_penalised_fallback_when_every_plain_path_fails(cdnow, monkeypatch):
    real = _fitting.minimize_robust

    def only_penalised(strategies, *args, **kwargs):
        doomed = [s for s in strategies if s.penalizer == 0]
        kept = [s for s in strategies if s.penalizer > 0]
        broken = [_fitting.Strategy(s.label, "no-such-method", s.x0, s.penalizer) for s in doomed]
        return real(broken + kept, *args, **kwargs)

    monkeypatch.setattr(_fitting, "minimize_robust", only_penalised)
    pm = PurchaseModel(time_unit="weeks").fit(cdnow)
    assert pm.fit_path_ == "trust-exact+penalizer=0.0001"
    assert sum(not a["success"] for a in pm.fit_attempts_) == 6


def test_clear_error_when_all_paths_fail(cdnow, monkeypatch):
    monkeypatch.setattr(_fitting, "minimize", _failing_minimize({"trust-exact", "l-bfgs-b", "bfgs", "nelder-mead"}))
    with pytest.raises(_fitting.FitError, match="every optimisation path failed") as info:
        PurchaseModel(time_unit="weeks").fit(cdnow)
    assert "trust-exact+penalizer=0.1" in str(info.value)


def test_nan_likelihood_is_rejected_not_accepted(cdnow, monkeypatch):
    real = nbd.BetaGeoObjective.value_and_grad
    calls = {"n": 0}

    def poisoned(self, phi):
        f, g = real(self, phi)
        if self.penalizer == 0 and np.allclose(phi, 0.0) is False and calls["n"] < 1_000_000:
            calls["n"] += 1
            return float("nan"), g
        return f, g

    monkeypatch.setattr(nbd.BetaGeoObjective, "value_and_grad", poisoned)
    pm = PurchaseModel(time_unit="weeks").fit(cdnow)
    assert "penalizer" in pm.fit_path_
    assert any("non-finite" in a["message"] or "not converged" in a["message"] or "Error" in a["message"]
               for a in pm.fit_attempts_ if not a["success"])


# -- inputs and persistence ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame, message",
    [
        (pd.DataFrame({"frequency": [1], "recency": [1.0]}), "missing column"),
        (pd.DataFrame({"frequency": [1], "recency": [-1.0], "T": [3.0]}), "recency"),
        (pd.DataFrame({"frequency": [1], "recency": [5.0], "T": [3.0]}), "must not exceed"),
        (pd.DataFrame({"frequency": [0], "recency": [2.0], "T": [3.0]}), "must be 0 when"),
        (pd.DataFrame({"frequency": [1.5], "recency": [2.0], "T": [3.0]}), "whole numbers"),
        (pd.DataFrame({"frequency": [1], "recency": [np.nan], "T": [3.0]}), "finite"),
    ],
)
def test_bad_input_is_a_clear_error(frame, message):
    with pytest.raises(ValueError, match=message):
        PurchaseModel.from_params(CDNOW_BGNBD_DAILY).predict(frame, 10)


def test_no_repeat_customers_is_a_clear_error():
    frame = pd.DataFrame({"frequency": [0, 0], "recency": [0.0, 0.0], "T": [3.0, 5.0]})
    with pytest.raises(CannotFitError, match="no customer has a repeat purchase"):
        PurchaseModel().fit(frame)


def test_estimator_conventions_and_json_round_trip(fitted, cdnow):
    from sklearn.base import clone

    fresh = PurchaseModel("mbgnbd", penalizer=0.01, time_unit="weeks")
    assert vars(fresh) == {"model": "mbgnbd", "penalizer": 0.01, "time_unit": "weeks", "max_iter": 500}
    assert clone(fresh).get_params() == fresh.get_params()
    with pytest.raises(RuntimeError, match="not fitted"):
        fresh.predict(cdnow, 1)
    data = json.loads(json.dumps(fitted["bgnbd"].to_dict()))
    restored = PurchaseModel.from_dict(data)
    assert restored.params_ == fitted["bgnbd"].params_
    pd.testing.assert_frame_equal(restored.predict(cdnow, 10), fitted["bgnbd"].predict(cdnow, 10))


# -- P(no purchase in a window) ---------------------------------------------------------------


def test_bgnbd_prob_no_purchase_matches_numerical_integration():
    """P(no purchase in t | x, t_x, T) from the closed form vs a 2-D integral over the
    BG/NBD posterior of (lambda, p)."""
    params = {"r": 0.25, "alpha": 4.4, "a": 0.8, "b": 2.4}
    model = PurchaseModel.from_params(params)
    rfm = pd.DataFrame({"frequency": [0, 2, 5, 1], "recency": [0.0, 20.0, 30.0, 35.0], "T": [40.0, 38.0, 39.0, 36.0]})
    t = 10.0
    closed = bgnbd_prob_no_purchase(
        model.conditional_probability_alive(rfm), rfm["frequency"], rfm["T"], params["r"], params["alpha"], t
    )
    # expectations under the prior on a grid of prior quantiles (equal weights; the densities
    # are singular at 0, which defeats a plain grid)
    u = (np.arange(3000) + 0.5) / 3000
    lam = stats.gamma.ppf(u, params["r"], scale=1 / params["alpha"])[:, None]
    p = stats.beta.ppf(u[::2], params["a"], params["b"])[None, :]
    prior = 1.0
    for i, (x, tx, T) in enumerate(rfm[["frequency", "recency", "T"]].to_numpy()):
        alive = (1 - p) ** x * lam**x * np.exp(-lam * T)
        dead = (p * (1 - p) ** (x - 1) * lam**x * np.exp(-lam * tx)) if x > 0 else 0 * alive
        like = prior * (alive + dead)
        zero = prior * (alive * np.exp(-lam * t) + dead)
        numeric = zero.sum() / like.sum()
        assert closed[i] == pytest.approx(numeric, abs=2e-3)
    # and it is consistent with the population view: more expected purchases -> less P(0)
    assert closed[2] < closed[1]


# -- parameter recovery -------------------------------------------------------------------------

TRUE_BGNBD = {"r": 0.8, "alpha": 40.0, "a": 0.9, "b": 3.0}


@pytest.fixture(scope="module")
def recovery_data() -> pd.DataFrame:
    return simulate_rfm(200_000, TRUE_BGNBD, {"p": 4.0, "q": 3.0, "gamma": 20.0}, max_T=730.0, seed=2024)


def test_parameter_recovery_within_reported_intervals(recovery_data):
    pm = PurchaseModel().fit(recovery_data)
    for name, true in TRUE_BGNBD.items():
        low, high = pm.params_ci_[name]
        assert low < true < high, (name, true, pm.params_ci_[name])
        assert abs(pm.params_[name] - true) < 3 * pm.params_se_[name]


# -- the blocked fast paths agree with the general ones -------------------------------------------


def test_fast_scoring_and_compression_paths_match_general_paths(daily, monkeypatch):
    from customer_value.probabilistic import scoring as _prob_scoring

    pm = PurchaseModel.from_params(CDNOW_BGNBD_DAILY)
    fast = pm.predict(daily, 365)
    fitted_fast = PurchaseModel().fit(daily)
    monkeypatch.setattr(_prob_scoring, "score", lambda *args, **kwargs: None)
    monkeypatch.setattr(_prob_scoring, "compress_whole_numbers", lambda *args, **kwargs: None)
    general = pm.predict(daily, 365)
    fitted_general = PurchaseModel().fit(daily)
    pd.testing.assert_frame_equal(fast, general, check_exact=False, rtol=1e-12, atol=0)
    assert fitted_fast.n_patterns_ == fitted_general.n_patterns_
    assert fitted_fast.log_likelihood_ == pytest.approx(fitted_general.log_likelihood_, rel=1e-12)
    assert fitted_fast.params_ == pytest.approx(fitted_general.params_, rel=1e-10)


@pytest.mark.parametrize(
    "column, value, message",
    [("recency", -1.0, "recency"), ("T", np.inf, "finite"), ("frequency", -2, "frequency")],
)
def test_fit_validates_whole_number_input(daily, column, value, message):
    bad = daily.copy()
    bad.loc[bad.index[5], column] = value
    with pytest.raises(ValueError, match=message) as info:
        PurchaseModel().fit(bad)
    assert "5" in str(info.value)  # names the offending customer
