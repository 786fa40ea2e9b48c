"""How much a customer spends per purchase: the Gamma-Gamma model, and revenue from both models.

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
  a plausible mean); if none does, :class:`~customer_value.models._fitting.FitError` says so;
* the model assumes spend is independent of frequency; ``freq_spend_corr_`` reports the
  correlation among the fitted customers so the assumption can be checked.

:func:`predict_revenue` combines a fitted :class:`~customer_value.models.purchases.PurchaseModel`
and a :class:`SpendModel` into expected (and discounted) revenue and margin, with optional
parametric-bootstrap intervals (:func:`revenue_intervals`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
import pandas as pd
from scipy.special import digamma, gammaln, polygamma

from customer_value.models import _fitting as fitting
from customer_value.models import _prob_nbd as nbd
from customer_value.models._prob_patterns import count_pairs, factorize, group_pairs
from customer_value.models.purchases import PurchaseModel, continuous_discount_rate, rfm_arrays

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


# ----------------------------------------------------------------------------------------------
# revenue = purchases x spend
# ----------------------------------------------------------------------------------------------


def predict_revenue(
    purchase_model: PurchaseModel,
    spend_model: SpendModel,
    rfm: pd.DataFrame,
    horizon: float,
    *,
    discount_rate: float = 0.10,
    time_unit: str | None = None,
    margin_ratio: float | np.ndarray | pd.Series | None = None,
    intervals: bool = False,
    level: float = 0.8,
    n_draws: int = 200,
    seed: int | None = 0,
) -> pd.DataFrame:
    """Expected and discounted expected revenue (and margin) over ``horizon`` per customer.

    Columns: ``p_alive``, ``expected_transactions``, ``discounted_expected_transactions``,
    ``expected_order_value``, ``expected_revenue`` (= transactions x order value),
    ``discounted_expected_revenue``; with ``margin_ratio`` (a scalar or one value per customer)
    also ``expected_margin`` and ``discounted_expected_margin`` (= revenue x ratio); with
    ``intervals=True`` also ``expected_revenue_lower`` / ``expected_revenue_upper``, the
    parametric-bootstrap ``level`` interval of :func:`revenue_intervals`.
    """
    spend_model._check_fitted()
    columns = [
        "p_alive", "expected_transactions", "discounted_expected_transactions", "expected_order_value",
        "expected_revenue", "discounted_expected_revenue",
    ]
    ratio = None
    if margin_ratio is not None:
        ratio = margin_ratio.reindex(rfm.index).to_numpy(dtype=float) if isinstance(margin_ratio, pd.Series) else margin_ratio
        ratio = np.broadcast_to(np.asarray(ratio, dtype=float), (len(rfm),))
        if not np.all(np.isfinite(ratio)):
            raise ValueError("margin_ratio must be finite for every customer")
        columns += ["expected_margin", "discounted_expected_margin"]
    block = np.empty((len(columns), len(rfm)))
    purchase_model._predict_block(rfm, horizon, discount_rate, time_unit, out=block)
    if "monetary_value" not in rfm.columns:
        raise ValueError("RFM summary is missing column 'monetary_value' needed by the spend model")
    # frequency was validated by the purchase model; spend needs no copy of either column.
    x = rfm["frequency"].to_numpy()
    m = rfm["monetary_value"].to_numpy(dtype=np.float64)
    _expected_order_value(spend_model.params_, x, m, out=block[3])
    np.multiply(block[1], block[3], out=block[4])
    np.multiply(block[2], block[3], out=block[5])
    if ratio is not None:
        np.multiply(block[4], ratio, out=block[6])
        np.multiply(block[5], ratio, out=block[7])
    out = pd.DataFrame(block.T, index=rfm.index, columns=columns, copy=False)
    if intervals:
        bounds = revenue_intervals(purchase_model, spend_model, rfm, horizon, level=level, n_draws=n_draws, seed=seed)
        out["expected_revenue_lower"] = bounds["lower"].to_numpy()
        out["expected_revenue_upper"] = bounds["upper"].to_numpy()
    return out


def _draw_log_params(mean: np.ndarray, cov: np.ndarray, n: int, rng: np.random.Generator, valid=None) -> np.ndarray:
    if not np.all(np.isfinite(cov)):
        raise ValueError("the model has no parameter covariance (fit it, or it was built from parameters)")
    draws = rng.multivariate_normal(mean, cov, size=n, method="cholesky" if np.all(np.linalg.eigvalsh(cov) > 0) else "eigh")
    if valid is not None:
        for _ in range(100):
            bad = ~valid(draws)
            if not bad.any():
                break
            draws[bad] = rng.multivariate_normal(mean, cov, size=int(bad.sum()))
        else:
            raise ValueError("could not draw valid parameters from the asymptotic distribution")
    return draws


def revenue_intervals(
    purchase_model: PurchaseModel,
    spend_model: SpendModel,
    rfm: pd.DataFrame,
    horizon: float,
    *,
    level: float = 0.8,
    n_draws: int = 200,
    discount_rate: float | None = None,
    time_unit: str | None = None,
    seed: int | None = 0,
    max_cells: int = 5_000_000,
) -> pd.DataFrame:
    """Parametric-bootstrap interval of each customer's expected revenue.

    Draws ``n_draws`` parameter vectors of each model from the asymptotic normal distribution of
    its log-parameters (mean at the estimate, covariance from the Hessian; Gamma-Gamma draws with
    ``q <= 1`` are redrawn), recomputes ``p_alive x E[transactions | alive] x expected order value``
    for every customer under each draw, and returns the central ``level`` quantiles as
    ``lower`` / ``upper``. With ``discount_rate`` the discounted revenue is used instead.
    Customers are processed in chunks so memory stays below ``max_cells`` doubles.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    purchase_model._check_fitted()
    spend_model._check_fitted()
    rng = np.random.default_rng(seed)
    names = nbd.PARAM_NAMES[purchase_model.model]
    mean_p = np.log([purchase_model.params_[n] for n in names])
    mean_s = np.log([spend_model.params_[n] for n in PARAM_NAMES])
    draws_p = np.exp(_draw_log_params(mean_p, purchase_model.log_params_cov_, n_draws, rng))
    draws_s = np.exp(_draw_log_params(mean_s, spend_model.log_params_cov_, n_draws, rng, valid=lambda d: d[:, 1] > 0))
    x, t_x, T = rfm_arrays(rfm)
    xs, m = _spend_arrays(rfm)
    x_u, T_u, inverse = group_pairs(x, T)
    delta = continuous_discount_rate(discount_rate, time_unit or purchase_model.time_unit) if discount_rate else 0.0
    model = purchase_model.model
    per_pair = np.empty((n_draws, x_u.shape[0]))
    for k in range(n_draws):
        if delta > 0:
            per_pair[k] = nbd.discounted_given_alive(model, draws_p[k], x_u, T_u, float(horizon), delta)
        else:
            per_pair[k] = nbd.expected_given_alive(model, draws_p[k], x_u, T_u, float(horizon))
    per_pair = np.nan_to_num(per_pair, nan=0.0, posinf=0.0, neginf=0.0)
    lower = np.empty(x.shape[0])
    upper = np.empty(x.shape[0])
    quantiles = [(1 - level) / 2, (1 + level) / 2]
    chunk = max(1, max_cells // max(n_draws, 1))
    with np.errstate(all="ignore"):
        for start in range(0, x.shape[0], chunk):
            sl = slice(start, start + chunk)
            revenue = np.empty((n_draws, x[sl].shape[0]))
            for k in range(n_draws):
                alive = np.clip(np.nan_to_num(nbd.p_alive(model, draws_p[k], x[sl], t_x[sl], T[sl]), nan=0.0), 0.0, 1.0)
                spend = _expected_order_value(dict(zip(PARAM_NAMES, draws_s[k])), xs[sl], m[sl])
                revenue[k] = alive * per_pair[k, inverse[sl]] * spend
            lower[sl], upper[sl] = np.quantile(revenue, quantiles, axis=0)
    return pd.DataFrame({"lower": lower, "upper": upper}, index=rfm.index)
