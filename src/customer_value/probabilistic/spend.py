"""How much a customer spends per purchase: the Gamma-Gamma model.

:class:`SpendModel` fits Fader & Hardie's Gamma-Gamma model (note 025; lifetimes'
``GammaGammaFitter`` is the reference) to the mean repeat-purchase value of each customer:
a purchase's value is ``Gamma(p, nu)``, and ``nu ~ Gamma(q, gamma)`` across customers.

Guards against the failures lifetimes users meet (negative or infinite expected spend,
NaN likelihoods, ``ConvergenceError``):

* only customers with a repeat purchase (``frequency > 0``) and a finite, positive
  ``monetary_value`` enter the fit; the others are counted in ``n_excluded_`` /
  ``exclusions_`` and predicted with the population mean ``p * gamma / (q - 1)``;
* the population mean is finite only for ``q > 1``. A maximum-likelihood ``q <= 1`` (or a mean
  above the largest observed spend) is rejected, and the fit falls back to a penalised fit that
  keeps ``q - 1`` away from 0 (penalty ``lambda * log(q - 1)^2``, smallest ``lambda`` that gives
  a plausible mean); if none does, :class:`~customer_value.probabilistic.fitting.FitError` says so;
* the model assumes spend is independent of frequency; ``freq_spend_corr_`` reports the
  correlation among the fitted customers so the assumption can be checked.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
import pandas as pd
from scipy.special import digamma, gammaln, polygamma

from customer_value.probabilistic import fitting
from customer_value.probabilistic.patterns import count_pairs, factorize

PARAM_NAMES: tuple[str, ...] = ("p", "q", "gamma")
Q_PENALTIES: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0)


class GammaGammaObjective:
    """Mean negative log-likelihood of Gamma-Gamma in log-parameters, exact gradient and Hessian.

    Per customer (``x`` repeat purchases with mean value ``m``):
    ``log L = lnG(px+q) - lnG(px) - lnG(q) + q ln(gamma) + (px-1) ln(m) + px ln(x) - (px+q) ln(xm+gamma)``.
    Terms in ``x`` alone are evaluated per unique frequency; per pattern only ``ln(xm+gamma)`` and
    ``1/(xm+gamma)`` change with the parameters.
    """

    def __init__(self, x: np.ndarray, m: np.ndarray, w: np.ndarray, *, penalizer: float = 0.0, q_penalty: float = 0.0):
        self.penalizer = float(penalizer)
        self.q_penalty = float(q_penalty)
        self.x = x
        self.m = m
        self.w = w
        self.n = float(w.sum())
        self.x_values, self.x_index = factorize(x)
        self.w_x = np.bincount(self.x_index, weights=w, minlength=self.x_values.shape[0])
        self.xm = x * m
        self.wx = w * x
        log_m = np.log(m)
        self.s1 = _dot(self.wx, log_m)  # sum w x ln m
        self.s0 = _dot(w, log_m)  # sum w ln m
        self.s_xlnx = float(self.w_x @ (self.x_values * np.log(self.x_values)))
        self.max_m = float(m.max())
        self._cache_key: bytes | None = None
        self._cache: dict[str, Any] = {}

    def _core(self, phi: np.ndarray) -> dict[str, Any]:
        """Everything that depends on the parameters, computed once per parameter vector."""
        phi = np.asarray(phi, dtype=float)
        key = phi.tobytes()
        if key == self._cache_key:
            return self._cache
        p, q, g = np.exp(phi)
        xv = self.x_values
        px = p * xv
        with np.errstate(all="ignore"):
            denom = self.xm + g
            lg = np.log(denom)
            inv = np.reciprocal(denom, out=denom)
            sum_wx_lg = _dot(self.wx, lg)
            sum_w_lg = _dot(self.w, lg)
            sum_wx_inv = _dot(self.wx, inv)
            sum_w_inv = _dot(self.w, inv)
            inv *= inv
            sum_wx_inv2 = _dot(self.wx, inv)
            sum_w_inv2 = _dot(self.w, inv)
            ll = (
                self.w_x @ (gammaln(px + q) - gammaln(px) - gammaln(q))
                + self.n * q * np.log(g)
                + p * (self.s1 + self.s_xlnx)
                - self.s0
                - p * sum_wx_lg
                - q * sum_w_lg
            )
            g_p = self.w_x @ (xv * (digamma(px + q) - digamma(px))) + self.s1 + self.s_xlnx - sum_wx_lg
            g_q = self.w_x @ (digamma(px + q) - digamma(q)) + self.n * np.log(g) - sum_w_lg
            g_g = self.n * q / g - p * sum_wx_inv - q * sum_w_inv
        self._cache_key = key
        self._cache = {
            "theta": np.array([p, q, g]),
            "ll": float(ll),
            "g_nat": np.array([g_p, g_q, g_g]),
            "px": px,
            "sums": (sum_wx_inv, sum_w_inv, sum_wx_inv2, sum_w_inv2),
        }
        return self._cache

    def log_likelihood(self, phi: np.ndarray) -> float:
        return self._core(phi)["ll"]

    def _penalty(self, theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Penalty value, gradient and Hessian in log-parameters."""
        val = self.penalizer * float(theta @ theta)
        grad = 2.0 * self.penalizer * theta**2
        hess = np.diag(4.0 * self.penalizer * theta**2)
        if self.q_penalty > 0:
            q = theta[1]
            if q <= 1:
                return float("inf"), np.zeros(3), np.zeros((3, 3))
            psi = np.log(q - 1.0)
            s = q / (q - 1.0)
            val += self.q_penalty * psi**2
            grad = grad + np.array([0.0, 2.0 * self.q_penalty * psi * s, 0.0])
            hess = hess + np.diag([0.0, 2.0 * self.q_penalty * (s * s - psi * q / (q - 1.0) ** 2), 0.0])
        return val, grad, hess

    def value_and_grad(self, phi: np.ndarray) -> tuple[float, np.ndarray]:
        c = self._core(phi)
        theta = c["theta"]
        pen, pen_grad, _ = self._penalty(theta)
        return -c["ll"] / self.n + pen, -theta * c["g_nat"] / self.n + pen_grad

    def value(self, phi: np.ndarray) -> float:
        return self.value_and_grad(phi)[0]

    def hessian(self, phi: np.ndarray) -> np.ndarray:
        c = self._core(phi)
        theta = c["theta"]
        p, q, g = theta
        xv, px = self.x_values, c["px"]
        sum_wx_inv, sum_w_inv, sum_wx_inv2, sum_w_inv2 = c["sums"]
        with np.errstate(all="ignore"):
            tri = polygamma(1, px + q)
            H = np.empty((3, 3))
            H[0, 0] = self.w_x @ (xv * xv * (tri - polygamma(1, px)))
            H[0, 1] = self.w_x @ (xv * tri)
            H[0, 2] = -sum_wx_inv
            H[1, 1] = self.w_x @ (tri - polygamma(1, q))
            H[1, 2] = self.n / g - sum_w_inv
            H[2, 2] = -self.n * q / g**2 + p * sum_wx_inv2 + q * sum_w_inv2
        H[1, 0], H[2, 0], H[2, 1] = H[0, 1], H[0, 2], H[1, 2]
        H_phi = np.outer(theta, theta) * H + np.diag(theta * c["g_nat"])
        _, _, pen_hess = self._penalty(theta)
        return -H_phi / self.n + pen_hess


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Single-threaded dot product (a multi-threaded BLAS call is slower at these sizes)."""
    return float(np.einsum("i,i->", a, b))


def _spend_arrays(rfm: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(rfm, pd.DataFrame):
        raise TypeError(f"expected an RFM summary DataFrame, got {type(rfm).__name__}")
    missing = [c for c in ("frequency", "monetary_value") if c not in rfm.columns]
    if missing:
        raise ValueError(f"RFM summary is missing column(s) {missing} needed by the spend model")
    x = rfm["frequency"].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(x) | (x < 0) | (x != np.floor(x))
    if bad.any():
        raise ValueError(
            f"RFM column 'frequency' must hold whole numbers >= 0; e.g. customers {list(rfm.index[np.flatnonzero(bad)[:5]])}"
        )
    m = rfm["monetary_value"].to_numpy(dtype=np.float64)
    return x, m


class SpendModel(BaseEstimator):
    """Gamma-Gamma model of the mean value of a customer's purchases.

    Parameters
    ----------
    penalizer:
        lifetimes' L2 ``penalizer_coef`` on ``p, q, gamma`` (spend rescaled to mean 1).
    max_iter:
        Iteration cap per optimisation attempt.

    Attributes (after ``fit``)
    --------------------------
    params_ : dict ``p, q, gamma`` (``gamma`` in currency units); params_se_, params_ci_ (95%)
    log_params_cov_, log_likelihood_ (total, in currency units), fit_path_, fit_attempts_
    population_mean_ : float -- ``p * gamma / (q - 1)``, the prediction for excluded customers
    freq_spend_corr_ : float -- Pearson correlation of frequency and spend among fitted customers
    n_customers_, n_fit_customers_, n_excluded_, exclusions_ (dict of reasons), n_patterns_
    """

    def __init__(self, penalizer: float = 0.0, max_iter: int = 500):
        self.penalizer = penalizer
        self.max_iter = max_iter

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> "SpendModel":
        kwargs = {"penalizer": settings.penalizer}
        kwargs.update(overrides)
        return cls(**kwargs)

    @classmethod
    def from_params(cls, params: Mapping[str, float]) -> "SpendModel":
        """A model with known ``p, q, gamma`` (no fit, no standard errors)."""
        self = cls()
        missing = [n for n in PARAM_NAMES if n not in params]
        if missing:
            raise ValueError(f"Gamma-Gamma needs parameters {list(PARAM_NAMES)}; missing {missing}")
        self.params_ = {n: float(params[n]) for n in PARAM_NAMES}
        if not all(np.isfinite(v) and v > 0 for v in self.params_.values()) or self.params_["q"] <= 1:
            raise ValueError(f"Gamma-Gamma parameters must be finite, > 0 and q > 1; got {self.params_}")
        self.params_se_ = {n: float("nan") for n in PARAM_NAMES}
        self.params_ci_ = {n: (float("nan"), float("nan")) for n in PARAM_NAMES}
        self.log_params_cov_ = np.full((3, 3), np.nan)
        self.log_likelihood_ = float("nan")
        self.fit_path_ = "given"
        self.fit_attempts_ = []
        self.population_mean_ = self._population_mean(self.params_)
        self.freq_spend_corr_ = float("nan")
        self.n_customers_ = self.n_fit_customers_ = self.n_excluded_ = self.n_patterns_ = 0
        self.exclusions_ = {}
        return self

    @classmethod
    def pooled(cls, rfm: pd.DataFrame, prior_orders: float = 1e9) -> "SpendModel":
        """The fallback when a Gamma-Gamma cannot be fitted (too few repeat customers, identical
        customers): every customer at the mean repeat order value. It is a Gamma-Gamma whose prior
        weighs ``prior_orders`` orders, so a customer's own history barely moves it."""
        x = np.asarray(rfm["frequency"], dtype=float)
        m = np.asarray(rfm["monetary_value"], dtype=float)
        usable = (x > 0) & np.isfinite(m) & (m > 0)
        mean = float(np.sum(x[usable] * m[usable]) / np.sum(x[usable])) if usable.any() else 1.0
        model = cls.from_params({"p": 1.0, "q": prior_orders + 1.0, "gamma": mean * prior_orders})
        model.fit_path_ = f"pooled mean order value {mean:.2f} (fallback)"
        return model

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            **fitting.fitted_state(self),
            "population_mean": self.population_mean_,
            "freq_spend_corr": self.freq_spend_corr_,
            "n_customers": self.n_customers_,
            "n_fit_customers": self.n_fit_customers_,
            "n_excluded": self.n_excluded_,
            "exclusions": dict(self.exclusions_),
            "n_patterns": self.n_patterns_,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SpendModel":
        self = cls.from_params(data["params"])
        fitting.restore_fitted_state(self, data)
        self.freq_spend_corr_ = float(data.get("freq_spend_corr", float("nan")))
        for key in ("n_customers", "n_fit_customers", "n_excluded", "n_patterns"):
            setattr(self, key + "_", int(data.get(key, 0)))
        self.exclusions_ = dict(data.get("exclusions", {}))
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise RuntimeError("this SpendModel is not fitted yet: call fit(rfm) first")

    @staticmethod
    def _population_mean(params: Mapping[str, float]) -> float:
        return float(params["p"] * params["gamma"] / (params["q"] - 1.0))

    def _strategies(self) -> list[fitting.Strategy]:
        start = np.log([1.0, 2.0, 1.0])
        alternatives = [np.log([5.0, 4.0, 10.0]), np.log([0.5, 1.5, 0.3])]
        pen = float(self.penalizer)
        out = [
            fitting.Strategy("trust-exact", "trust-exact", start, pen),
            fitting.Strategy("l-bfgs-b", "l-bfgs-b", start, pen),
            fitting.Strategy("bfgs", "bfgs", start, pen),
            fitting.Strategy("trust-exact(start 2)", "trust-exact", alternatives[0], pen),
            fitting.Strategy("l-bfgs-b(start 3)", "l-bfgs-b", alternatives[1], pen),
            fitting.Strategy("nelder-mead", "nelder-mead", start, pen),
        ]
        for lam in Q_PENALTIES:
            out.append(fitting.Strategy(f"trust-exact+q-penalty={lam:g}", "trust-exact", start, pen, variant=f"q:{lam!r}"))
        return out

    def fit(self, rfm: pd.DataFrame) -> "SpendModel":
        """Fit on customers with a repeat purchase and positive spend (see the module docstring)."""
        if not (np.isfinite(self.penalizer) and self.penalizer >= 0):
            raise ValueError(f"penalizer must be >= 0, got {self.penalizer}")
        x, m = _spend_arrays(rfm)
        no_repeat = x == 0
        non_finite = ~no_repeat & ~np.isfinite(m)
        non_positive = ~no_repeat & np.isfinite(m) & (m <= 0)
        keep = ~(no_repeat | non_finite | non_positive)
        self.exclusions_ = {
            "no_repeat_purchase": int(no_repeat.sum()),
            "non_positive_spend": int(non_positive.sum()),
            "non_finite_spend": int(non_finite.sum()),
        }
        self.n_customers_ = int(x.shape[0])
        self.n_fit_customers_ = int(keep.sum())
        self.n_excluded_ = self.n_customers_ - self.n_fit_customers_
        if self.n_fit_customers_ < 3:
            raise fitting.FitError(
                f"cannot fit the Gamma-Gamma spend model: only {self.n_fit_customers_} customer(s) have a repeat "
                f"purchase with positive spend (excluded: {self.exclusions_})"
            )
        xf, mf = x[keep], m[keep]
        scale = float(mf.mean())
        x_u, m_u, counts = count_pairs(xf, mf / scale)
        w = counts.astype(np.float64)
        self.n_patterns_ = int(w.shape[0])

        def objective_for(strategy: fitting.Strategy) -> GammaGammaObjective:
            q_pen = float(strategy.variant.split(":", 1)[1]) if strategy.variant.startswith("q:") else 0.0
            return GammaGammaObjective(x_u, m_u, w, penalizer=strategy.penalizer, q_penalty=q_pen)

        max_m = float(m_u.max())

        def plausible(phi: np.ndarray) -> str | None:
            p, q, g = np.exp(phi)
            if q <= 1.0:
                return f"q = {q:.4g} <= 1: the population mean spend p*gamma/(q-1) is infinite"
            mean = p * g / (q - 1.0)
            if not np.isfinite(mean) or mean > max_m:
                return f"implied population mean spend {mean * scale:.4g} exceeds the largest observed ({max_m * scale:.4g})"
            return None

        outcome = fitting.minimize_robust(
            self._strategies(), objective_for, accept=plausible, max_iter=self.max_iter, gtol=1e-9,
            what="Gamma-Gamma spend model",
        )
        objective = outcome.objective
        cov, note = fitting.covariance_from_hessian(objective.hessian(outcome.x) * objective.n)
        if note:
            warnings.warn(f"Gamma-Gamma: {note}", RuntimeWarning, stacklevel=2)
        if outcome.strategy.variant:
            warnings.warn(
                f"Gamma-Gamma: the maximum-likelihood fit implies an infinite or implausible mean spend; "
                f"used the penalised fit {outcome.strategy.label!r} (q = {np.exp(outcome.x[1]):.3g})",
                RuntimeWarning,
                stacklevel=2,
            )
        log_params = outcome.x.copy()
        log_params[2] += np.log(scale)
        self.params_, self.params_se_, self.params_ci_ = fitting.summarise(PARAM_NAMES, log_params, cov)
        self.log_params_cov_ = cov
        self.log_likelihood_ = objective.log_likelihood(outcome.x) - objective.n * np.log(scale)
        self.fit_path_ = outcome.strategy.label
        self.fit_attempts_ = [a.as_dict() for a in outcome.attempts]
        self.population_mean_ = self._population_mean(self.params_)
        if xf.shape[0] > 2 and np.std(xf) > 0 and np.std(mf) > 0:
            self.freq_spend_corr_ = float(np.corrcoef(xf, mf)[0, 1])
        else:
            self.freq_spend_corr_ = float("nan")
        return self

    def log_likelihood(self, rfm: pd.DataFrame, params: Mapping[str, float] | None = None) -> float:
        """Total log-likelihood of the fit-eligible customers of ``rfm`` at the fitted (or given) params."""
        self._check_fitted()
        params = self.params_ if params is None else params
        x, m = _spend_arrays(rfm)
        keep = (x > 0) & np.isfinite(m) & (m > 0)
        x_u, m_u, counts = count_pairs(x[keep], m[keep])
        objective = GammaGammaObjective(x_u, m_u, counts.astype(float))
        return objective.log_likelihood(np.log([params["p"], params["q"], params["gamma"]]))

    def predict(self, rfm: pd.DataFrame, params: Mapping[str, float] | None = None) -> pd.Series:
        """Expected value of a future purchase, ``expected_order_value``, per customer.

        ``(p*gamma + p*x*m) / (p*x + q - 1)`` for customers with a repeat purchase and positive spend;
        the population mean ``p*gamma/(q-1)`` for everyone else.
        """
        self._check_fitted()
        params = self.params_ if params is None else params
        x, m = _spend_arrays(rfm)
        return pd.Series(_expected_order_value(params, x, m), index=rfm.index, name="expected_order_value")


def _expected_order_value(
    params: Mapping[str, float], x: np.ndarray, m: np.ndarray, out: np.ndarray | None = None, block: int = 1 << 16
) -> np.ndarray:
    """``(p*gamma + p*x*m) / (p*x + q - 1)``, the population mean where spend is unusable.

    Processed in cache-sized blocks (this runs over every customer at scoring time).
    """
    p, q, g = params["p"], params["q"], params["gamma"]
    population = p * g / (q - 1.0)
    n = x.shape[0]
    if out is None:
        out = np.empty(n)
    n_bad = 0
    with np.errstate(all="ignore"):
        for start in range(0, n, block):
            sl = slice(start, min(start + block, n))
            xb, mb, ob = x[sl], m[sl], out[sl]
            # For x == 0 the formula gives the population mean already (m is ignored below).
            px = p * xb
            np.multiply(px, mb, out=ob)
            ob += p * g
            px += q - 1.0
            ob /= px
            unusable = ~((mb > 0) & (mb < np.inf)) | (xb == 0)
            if unusable.any():
                ob[unusable] = population
            bad = ~np.isfinite(ob) | (ob < 0)
            if bad.any():
                n_bad += int(bad.sum())
                ob[bad] = population
    if n_bad:
        warnings.warn(f"{n_bad} non-finite expected order values replaced by the population mean", RuntimeWarning, stacklevel=3)
    return out
