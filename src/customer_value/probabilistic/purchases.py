"""How many purchases a customer will make: BG/NBD (default), MBG/NBD and Pareto/NBD.

:class:`PurchaseModel` is a scikit-learn style estimator over an RFM summary in lifetimes'
convention (index ``customer_id``; ``frequency`` = repeat purchases, ``recency`` = time from the
first to the last purchase, ``T`` = time from the first purchase to the end of the history, all
in one time unit, days or weeks). lifetimes' fitters are the reference the tests compare against;
this implementation is written for large customer bases and for never failing silently:

* **Pattern compression.** Customers with the same ``(frequency, recency, T)`` share their
  likelihood, so fits run over unique patterns with counts (daily data compresses well because
  recency and T are whole days). Scoring evaluates the expensive hypergeometric / quadrature terms,
  which depend on ``(frequency, T)`` only, once per unique pair and broadcasts them.
* **Exact vectorised likelihoods.** The (M)BG/NBD log-likelihood, gradient and Hessian are
  analytic; the optimiser is a trust-region Newton method on log-parameters (time rescaled so the
  oldest customer has age 1, as lifetimes does).
* **Robust fitting.** Optimisers, start values and penalizers are tried in turn; ``fit_path_``
  records which path succeeded and ``fit_attempts_`` why the others failed. A
  :class:`~customer_value.probabilistic.fitting.FitError` is raised only when all fail.
* **Uncertainty.** ``params_se_`` and 95% ``params_ci_`` come from the Hessian of the negative
  log-likelihood at the optimum (delta method; intervals symmetric in log-parameters).
* **Discounting.** ``discounted_expected_transactions`` integrates the instantaneous purchase
  rate against a continuous discount factor equivalent to the annual rate (see
  :mod:`customer_value.probabilistic.nbd` for the closed forms and the quadrature).

"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
import pandas as pd

from customer_value.errors import CannotFitError
from customer_value.probabilistic import fitting, nbd, scoring
from customer_value.probabilistic.patterns import compress, group_pairs
from customer_value.probabilistic.rfm_input import RFM_COLUMNS, rfm_arrays
from customer_value.units import continuous_discount_rate, unit_days

MODELS: tuple[str, ...] = ("bgnbd", "mbgnbd", "pareto_nbd")
PREDICTION_COLUMNS: tuple[str, ...] = ("p_alive", "expected_transactions", "discounted_expected_transactions")


# ----------------------------------------------------------------------------------------------
# the estimator
# ----------------------------------------------------------------------------------------------


class PurchaseModel(BaseEstimator):
    """BG/NBD, MBG/NBD or Pareto/NBD purchase model.

    Parameters
    ----------
    model:
        ``"bgnbd"`` (default), ``"mbgnbd"`` or ``"pareto_nbd"``.
    penalizer:
        L2 penalty on the parameters, lifetimes' ``penalizer_coef`` (applied to the parameters of
        the time-rescaled problem, like lifetimes). 0 means plain maximum likelihood; penalised
        fits are then only a last-resort fallback.
    time_unit:
        Unit of ``recency``, ``T`` and horizons (``"days"`` or ``"weeks"``); only used to turn an
        annual discount rate into a rate per unit.
    max_iter:
        Iteration cap per optimisation attempt.

    Attributes (after ``fit``)
    --------------------------
    params_ : dict  -- ``r, alpha, a, b`` (or ``r, alpha, s, beta``), rates per time unit
    params_se_ : dict, params_ci_ : dict of (lower, upper) 95% intervals
    log_params_cov_ : ndarray -- covariance of the log-parameters
    log_likelihood_ : float -- total log-likelihood in the data's time unit (unpenalised)
    fit_path_ : str, fit_attempts_ : list of dict
    n_customers_ : int, n_patterns_ : int
    """

    def __init__(self, model: str = "bgnbd", penalizer: float = 0.0, time_unit: str = "days", max_iter: int = 500):
        self.model = model
        self.penalizer = penalizer
        self.time_unit = time_unit
        self.max_iter = max_iter

    # -- constructors ---------------------------------------------------------------------------
    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> "PurchaseModel":
        """A model configured from :class:`customer_value.config.Settings`."""
        kwargs = {"model": settings.purchase_model, "penalizer": settings.penalizer, "time_unit": settings.time_unit}
        kwargs.update(overrides)
        return cls(**kwargs)

    @classmethod
    def from_params(cls, params: Mapping[str, float], model: str = "bgnbd", time_unit: str = "days") -> "PurchaseModel":
        """A model with known parameters (no fit, no standard errors): for scoring and simulation."""
        self = cls(model=model, time_unit=time_unit)
        self._check_model()
        names = nbd.PARAM_NAMES[model]
        missing = [n for n in names if n not in params]
        if missing:
            raise ValueError(f"{model} needs parameters {list(names)}; missing {missing}")
        self.params_ = {n: float(params[n]) for n in names}
        if not all(np.isfinite(v) and v > 0 for v in self.params_.values()):
            raise ValueError(f"parameters must be finite and > 0, got {self.params_}")
        k = len(names)
        self.params_se_ = {n: float("nan") for n in names}
        self.params_ci_ = {n: (float("nan"), float("nan")) for n in names}
        self.log_params_cov_ = np.full((k, k), np.nan)
        self.log_likelihood_ = float("nan")
        self.fit_path_ = "given"
        self.fit_attempts_ = []
        self.n_customers_ = 0
        self.n_patterns_ = 0
        return self

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description of the fitted model."""
        self._check_fitted()
        return {
            "model": self.model,
            "time_unit": self.time_unit,
            **fitting.fitted_state(self),
            "n_customers": self.n_customers_,
            "n_patterns": self.n_patterns_,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PurchaseModel":
        self = cls.from_params(data["params"], model=data["model"], time_unit=data.get("time_unit", "days"))
        fitting.restore_fitted_state(self, data)
        self.n_customers_ = int(data.get("n_customers", 0))
        self.n_patterns_ = int(data.get("n_patterns", 0))
        return self

    # -- fitting --------------------------------------------------------------------------------
    def _check_model(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {list(MODELS)}, got {self.model!r}")

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise RuntimeError("this PurchaseModel is not fitted yet: call fit(rfm) first")

    def _objective(self, patterns, penalizer: float):
        if self.model == "pareto_nbd":
            return nbd.ParetoObjective(patterns, penalizer=penalizer)
        return nbd.BetaGeoObjective(patterns, modified=self.model == "mbgnbd", penalizer=penalizer)

    def _strategies(self) -> list[fitting.Strategy]:
        start = np.zeros(4)
        alternatives = [np.log([0.5, 0.2, 0.8, 2.5]), np.log([2.0, 5.0, 2.0, 1.0])]
        pen = float(self.penalizer)
        if self.model == "pareto_nbd":
            # Same start as lifetimes' ParetoNBDFitter (params ~ 1 on the rescaled time axis).
            out = [
                fitting.Strategy("l-bfgs-b", "l-bfgs-b", start, pen),
                fitting.Strategy("nelder-mead", "nelder-mead", start, pen),
                fitting.Strategy("l-bfgs-b(start 2)", "l-bfgs-b", alternatives[0], pen),
                fitting.Strategy("nelder-mead(start 3)", "nelder-mead", alternatives[1], pen),
            ]
            fallback_method = "nelder-mead"
        else:
            out = [
                fitting.Strategy("trust-exact", "trust-exact", start, pen),
                fitting.Strategy("l-bfgs-b", "l-bfgs-b", start, pen),
                fitting.Strategy("bfgs", "bfgs", start, pen),
                fitting.Strategy("trust-exact(start 2)", "trust-exact", alternatives[0], pen),
                fitting.Strategy("l-bfgs-b(start 3)", "l-bfgs-b", alternatives[1], pen),
                fitting.Strategy("nelder-mead", "nelder-mead", start, pen),
            ]
            fallback_method = "trust-exact"
        if pen == 0:
            for extra in (1e-4, 1e-3, 1e-2, 1e-1):
                out.append(fitting.Strategy(f"{fallback_method}+penalizer={extra:g}", fallback_method, start, extra))
        return out

    def fit(self, rfm: pd.DataFrame) -> "PurchaseModel":
        """Fit by maximum likelihood on the unique (frequency, recency, T) patterns of ``rfm``."""
        self._check_model()
        unit_days(self.time_unit)
        if not (np.isfinite(self.penalizer) and self.penalizer >= 0):
            raise ValueError(f"penalizer must be >= 0, got {self.penalizer}")
        fast = _fast_columns(rfm)
        patterns = None if fast is None else scoring.compress_whole_numbers(*fast, rfm.index)
        if patterns is None:
            x, t_x, T = rfm_arrays(rfm)
            if x.shape[0] == 0:
                raise CannotFitError("cannot fit a purchase model on an empty RFM summary")
            patterns = compress(x, t_x, T)
        if not np.any(patterns.x > 0):
            raise CannotFitError("cannot fit a purchase model: no customer has a repeat purchase (all frequency 0); "
                                 "BG/NBD learns the purchase rate from repeat buyers")
        t_max = float(patterns.T_values.max())
        scale = 1.0 / t_max if t_max > 0 else 1.0
        scaled = patterns.scaled(scale)
        outcome = fitting.minimize_robust(
            self._strategies(),
            lambda strategy: self._objective(scaled, strategy.penalizer),
            max_iter=self.max_iter,
            gtol=1e-9,
            accept_gtol=1e-4 if self.model != "pareto_nbd" else 1e-3,
            what=f"{self.model} purchase model",
        )
        objective = outcome.objective
        if self.model == "pareto_nbd":
            hess_mean = fitting.numerical_hessian(objective.value, outcome.x, step=1e-4)
        else:
            hess_mean = objective.hessian(outcome.x)
        cov, note = fitting.covariance_from_hessian(hess_mean * objective.n)
        if note:
            warnings.warn(f"{self.model}: {note}", RuntimeWarning, stacklevel=2)
        log_params = outcome.x.copy()
        for i in nbd.RATE_PARAMS[self.model]:
            log_params[i] -= np.log(scale)  # alpha_scaled = alpha * scale -> alpha = alpha_scaled / scale
        names = nbd.PARAM_NAMES[self.model]
        self.params_, self.params_se_, self.params_ci_ = fitting.summarise(names, log_params, cov)
        self.log_params_cov_ = cov
        ll_scaled = objective.log_likelihood(outcome.x)
        self.log_likelihood_ = float(ll_scaled + np.log(scale) * float(np.einsum("i,i->", patterns.weights, patterns.x)))
        self.fit_path_ = outcome.strategy.label
        self.fit_attempts_ = [a.as_dict() for a in outcome.attempts]
        self.n_customers_ = int(patterns.n_rows)
        self.n_patterns_ = int(patterns.n_patterns)
        return self

    # -- scoring --------------------------------------------------------------------------------
    def _theta(self, params: Mapping[str, float] | None = None) -> np.ndarray:
        self._check_fitted()
        p = self.params_ if params is None else params
        return np.array([p[n] for n in nbd.PARAM_NAMES[self.model]], dtype=np.float64)

    def log_likelihood(self, rfm: pd.DataFrame, params: Mapping[str, float] | None = None) -> float:
        """Total log-likelihood of ``rfm`` at the fitted (or given) parameters, via patterns."""
        x, t_x, T = rfm_arrays(rfm)
        patterns = compress(x, t_x, T)
        objective = self._objective(patterns, 0.0)
        return objective.log_likelihood(np.log(self._theta(params)))

    def _p_alive(self, theta: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        if self.model == "pareto_nbd":
            patterns = compress(x, t_x, T, return_inverse=True)
            values = nbd.p_alive(self.model, theta, patterns.x, patterns.t_x, patterns.T)
            out = values[patterns.inverse]
        else:
            out = nbd.p_alive(self.model, theta, x, t_x, T)
        return _clean(out, "p_alive", lower=0.0, upper=1.0, fill=0.0)

    def conditional_probability_alive(self, rfm: pd.DataFrame, params: Mapping[str, float] | None = None) -> np.ndarray:
        """P(alive now | frequency, recency, T) per customer."""
        x, t_x, T = rfm_arrays(rfm)
        return self._p_alive(self._theta(params), x, t_x, T)

    def conditional_expected_transactions(
        self, rfm: pd.DataFrame, horizon: float, params: Mapping[str, float] | None = None
    ) -> np.ndarray:
        """Expected repeat purchases in the next ``horizon`` time units per customer."""
        return self.predict(rfm, horizon, discount_rate=0.0, params=params)["expected_transactions"].to_numpy()

    def predict(
        self,
        rfm: pd.DataFrame,
        horizon: float,
        discount_rate: float = 0.10,
        time_unit: str | None = None,
        params: Mapping[str, float] | None = None,
    ) -> pd.DataFrame:
        """``p_alive``, ``expected_transactions`` and ``discounted_expected_transactions``.

        ``horizon`` is in the model's time unit; ``discount_rate`` is annual, turned into a
        continuous rate per ``time_unit`` (default: the model's). The discounted count integrates
        the instantaneous purchase rate against the discount factor (Gauss-Legendre
        quadrature of a closed-form rate, see :mod:`customer_value.probabilistic.nbd`); with
        ``discount_rate=0`` it equals ``expected_transactions``.
        """
        block = self._predict_block(rfm, horizon, discount_rate, time_unit, params)
        return pd.DataFrame(block.T, index=rfm.index, columns=list(PREDICTION_COLUMNS), copy=False)

    def _predict_block(
        self,
        rfm: pd.DataFrame,
        horizon: float,
        discount_rate: float = 0.10,
        time_unit: str | None = None,
        params: Mapping[str, float] | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """The predictions as a ``(3, n)`` array (rows in PREDICTION_COLUMNS order)."""
        theta = self._theta(params)
        horizon = float(horizon)
        if not np.isfinite(horizon) or horizon < 0:
            raise ValueError(f"horizon must be finite and >= 0, got {horizon}")
        delta = continuous_discount_rate(discount_rate, time_unit or self.time_unit)
        if out is None:
            out = np.empty((3, len(rfm)))
        if self.model != "pareto_nbd":
            fast = _fast_columns(rfm)
            if fast is not None and scoring.score(self.model, theta, *fast, rfm.index, horizon, delta, out=out) is not None:
                return out
        x, t_x, T = rfm_arrays(rfm)
        x_u, T_u, inverse = group_pairs(x, T)
        if self.model == "pareto_nbd":
            alive = self._p_alive(theta, x, t_x, T)
        else:
            alive = nbd.p_alive_by_pairs(self.model, theta, x_u, T_u, inverse, t_x)
            alive = _clean(alive, "p_alive", lower=0.0, upper=1.0)
        given_alive = _clean(nbd.expected_given_alive(self.model, theta, x_u, T_u, horizon), "expected transactions", lower=0.0)
        out[0] = alive
        out[1] = alive * given_alive[inverse]
        if delta > 0 and horizon > 0:
            discounted_alive = nbd.discounted_given_alive(self.model, theta, x_u, T_u, horizon, delta)
            discounted_alive = _clean(np.minimum(discounted_alive, given_alive), "discounted transactions", lower=0.0)
            out[2] = alive * discounted_alive[inverse]
        else:
            out[2] = out[1]
        return out

    def expected_repeat_purchases(self, t: float | np.ndarray, params: Mapping[str, float] | None = None) -> np.ndarray:
        """Expected repeat purchases in ``(0, t]`` of a customer who has just made a first purchase."""
        theta = self._theta(params)
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        zero = np.zeros(1)
        alive = float(nbd.p_alive(self.model, theta, zero, zero, zero)[0])
        out = np.zeros_like(t)
        positive = t > 0
        for i in np.flatnonzero(positive):
            out[i] = nbd.expected_given_alive(self.model, theta, zero, zero, float(t[i]))[0]
        return alive * out


def bgnbd_prob_no_purchase(
    p_alive: Any, frequency: Any, T: Any, r: float, alpha: float, t: float
) -> np.ndarray:
    """BG/NBD's P(X(T, T + t] = 0 | x, t_x, T): no purchase in the next ``t`` time units.

    Derivation (Fader, Hardie & Lee's BG/NBD): given ``lambda`` and being alive at ``T``, no
    purchase in ``t`` has probability ``exp(-lambda t)`` (a BG/NBD customer can only drop out
    right after a purchase); a dead customer never buys. Integrating over the joint posterior
    gives

        P0 = 1 - P(alive) + P(alive) * ((alpha + T) / (alpha + T + t)) ** (r + x)

    because the posterior of ``lambda`` given alive is Gamma(r + x, alpha + T). ``T``, ``t`` and
    ``alpha`` must be in the same time unit; ``x`` is the number of repeat purchases.
    """
    pa = np.asarray(p_alive, dtype=float)
    x = np.asarray(frequency, dtype=float)
    big_t = np.asarray(T, dtype=float)
    survive = np.exp((r + x) * (np.log(alpha + big_t) - np.log(alpha + big_t + t)))
    return np.clip(1.0 - pa + pa * survive, 0.0, 1.0)


def _fast_columns(rfm: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The RFM columns as numeric arrays without copies, or None to take the validating path."""
    if not isinstance(rfm, pd.DataFrame) or any(c not in rfm.columns for c in RFM_COLUMNS):
        return None
    columns = []
    for col in RFM_COLUMNS:
        values = rfm[col].to_numpy()
        if values.dtype.kind not in "iuf":
            return None
        columns.append(values if col == "frequency" else values.astype(np.float64, copy=False))
    return columns[0], columns[1], columns[2]


def _clean(values: np.ndarray, what: str, lower: float | None = None, upper: float | None = None, fill: float = 0.0) -> np.ndarray:
    """Guarantee finite predictions; warns (never silently) if a fallback value had to be used."""
    values = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        warnings.warn(f"{int(bad.sum())} non-finite {what} replaced by {fill}", RuntimeWarning, stacklevel=3)
        values = np.where(bad, fill, values)
    if lower is not None or upper is not None:
        values = np.clip(values, lower, upper)
    return values
