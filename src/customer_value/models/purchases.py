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
  :class:`~customer_value.models._fitting.FitError` is raised only when all fail.
* **Uncertainty.** ``params_se_`` and 95% ``params_ci_`` come from the Hessian of the negative
  log-likelihood at the optimum (delta method; intervals symmetric in log-parameters).
* **Discounting.** ``discounted_expected_transactions`` integrates the instantaneous purchase
  rate against a continuous discount factor equivalent to the annual rate (see
  :mod:`customer_value.models._prob_nbd` for the closed forms and the quadrature).

The module also owns :func:`calibration_holdout_summary` (lifetimes' version fails on pandas 3).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
import pandas as pd

from customer_value.models import _fitting as fitting
from customer_value.models import _prob_nbd as nbd
from customer_value.models import _prob_scoring as scoring
from customer_value.models._prob_patterns import compress, group_pairs

MODELS: tuple[str, ...] = ("bgnbd", "mbgnbd", "pareto_nbd")
TIME_UNIT_DAYS: dict[str, float] = {"days": 1.0, "weeks": 7.0}
DAYS_PER_YEAR = 365.25
RFM_COLUMNS: tuple[str, ...] = ("frequency", "recency", "T")
PREDICTION_COLUMNS: tuple[str, ...] = ("p_alive", "expected_transactions", "discounted_expected_transactions")


# ----------------------------------------------------------------------------------------------
# units and inputs
# ----------------------------------------------------------------------------------------------


def _unit_days(time_unit: str) -> float:
    try:
        return TIME_UNIT_DAYS[time_unit]
    except KeyError:
        raise ValueError(f"time_unit must be one of {list(TIME_UNIT_DAYS)}, got {time_unit!r}") from None


def continuous_discount_rate(annual_rate: float, time_unit: str = "days") -> float:
    """Continuous discount rate per time unit equivalent to an annual rate.

    A cash flow ``t`` units ahead is worth ``exp(-delta * t)``, which equals
    ``(1 + annual_rate) ** -(t / units_per_year)`` (365.25 days a year).
    """
    if not np.isfinite(annual_rate) or annual_rate < 0:
        raise ValueError(f"discount_rate must be a finite annual rate >= 0, got {annual_rate}")
    return float(np.log1p(annual_rate) * _unit_days(time_unit) / DAYS_PER_YEAR)


def horizon_in_units(days: float, time_unit: str = "days") -> float:
    """A horizon in days expressed in the model's time unit."""
    return float(days) / _unit_days(time_unit)


def _offenders(index: pd.Index, mask: np.ndarray, k: int = 5) -> list[Any]:
    return [index[i] for i in np.flatnonzero(mask)[:k]]


def rfm_arrays(rfm: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated ``(frequency, recency, T)`` float arrays; errors name the column and customers."""
    if not isinstance(rfm, pd.DataFrame):
        raise TypeError(f"expected an RFM summary DataFrame, got {type(rfm).__name__}")
    missing = [c for c in RFM_COLUMNS if c not in rfm.columns]
    if missing:
        raise ValueError(f"RFM summary is missing column(s) {missing}; it has {list(rfm.columns)}")
    arrays = []
    for col in RFM_COLUMNS:
        try:
            values = rfm[col].to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"RFM column {col!r} must be numeric: {exc}") from exc
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            raise ValueError(
                f"RFM column {col!r} must be finite and >= 0; {int(bad.sum())} bad row(s), "
                f"e.g. customers {_offenders(rfm.index, bad)}"
            )
        arrays.append(values)
    x, t_x, T = arrays
    bad = x != np.floor(x)
    if bad.any():
        raise ValueError(f"RFM column 'frequency' must hold whole numbers; e.g. customers {_offenders(rfm.index, bad)}")
    bad = t_x > T * (1 + 1e-12) + 1e-12
    if bad.any():
        raise ValueError(f"RFM 'recency' must not exceed 'T'; {int(bad.sum())} row(s), e.g. customers {_offenders(rfm.index, bad)}")
    bad = (x == 0) & (t_x != 0)
    if bad.any():
        raise ValueError(
            f"RFM 'recency' must be 0 when 'frequency' is 0; e.g. customers {_offenders(rfm.index, bad)}"
        )
    return x, np.minimum(t_x, T), T


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
        _unit_days(self.time_unit)
        if not (np.isfinite(self.penalizer) and self.penalizer >= 0):
            raise ValueError(f"penalizer must be >= 0, got {self.penalizer}")
        fast = _fast_columns(rfm)
        patterns = None if fast is None else scoring.compress_whole_numbers(*fast, rfm.index)
        if patterns is None:
            x, t_x, T = rfm_arrays(rfm)
            if x.shape[0] == 0:
                raise ValueError("cannot fit a purchase model on an empty RFM summary")
            patterns = compress(x, t_x, T)
        if not np.any(patterns.x > 0):
            raise ValueError("cannot fit a purchase model: no customer has a repeat purchase (all frequency 0)")
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
        quadrature of a closed-form rate, see :mod:`customer_value.models._prob_nbd`); with
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


# ----------------------------------------------------------------------------------------------
# calibration / holdout split (lifetimes' calibration_and_holdout_data fails on pandas 3)
# ----------------------------------------------------------------------------------------------


def calibration_holdout_summary(
    transactions: pd.DataFrame,
    calibration_end: Any,
    observation_end: Any,
    *,
    customer_id_col: str = "customer_id",
    datetime_col: str = "date",
    monetary_value_col: str | None = None,
    time_unit: str = "weeks",
) -> pd.DataFrame:
    """Per-customer RFM over a calibration period and purchase counts over the holdout.

    Purchases are merged per calendar day (several orders on one day are one purchase, their
    values summed). ``calibration_end`` and ``observation_end`` are inclusive last days (lifetimes'
    convention): the calibration period is ``[first purchase, calibration_end]`` and the holdout
    ``(calibration_end, observation_end]``. Only customers whose first purchase is in the
    calibration period are returned. Columns: ``frequency_cal``, ``recency_cal``, ``T_cal``,
    ``frequency_holdout``, ``duration_holdout`` (+ ``monetary_value_cal`` /
    ``monetary_value_holdout`` with ``monetary_value_col``), in ``time_unit``.
    """
    unit = _unit_days(time_unit)
    cal_end = pd.Timestamp(calibration_end).normalize()
    obs_end = pd.Timestamp(observation_end).normalize()
    if obs_end < cal_end:
        raise ValueError(f"observation_end {obs_end.date()} is before calibration_end {cal_end.date()}")
    cols = [customer_id_col, datetime_col] + ([monetary_value_col] if monetary_value_col else [])
    missing = [c for c in cols if c not in transactions.columns]
    if missing:
        raise ValueError(f"transactions are missing column(s) {missing}")
    tx = transactions[cols].copy()
    tx["_day"] = pd.to_datetime(tx[datetime_col]).dt.normalize()
    if tx["_day"].dt.tz is not None:
        tx["_day"] = tx["_day"].dt.tz_convert("UTC").dt.tz_localize(None)
    tx = tx.loc[tx["_day"] <= obs_end]
    agg = {"_n": (datetime_col, "size")}
    if monetary_value_col:
        agg["_value"] = (monetary_value_col, "sum")
    daily = tx.groupby([customer_id_col, "_day"], sort=True).agg(**agg).reset_index()
    cal = daily.loc[daily["_day"] <= cal_end]
    first = cal.groupby(customer_id_col)["_day"].min()
    last = cal.groupby(customer_id_col)["_day"].max()
    days = cal.groupby(customer_id_col)["_day"].size()
    out = pd.DataFrame(index=first.index)
    out["frequency_cal"] = (days - 1).astype(np.int64)
    out["recency_cal"] = (last - first).dt.days / unit
    out["T_cal"] = (cal_end - first).dt.days / unit
    if monetary_value_col:
        is_first = cal["_day"].to_numpy() == first.reindex(cal[customer_id_col]).to_numpy()
        repeat = cal.loc[~is_first]
        mean_repeat = repeat.groupby(customer_id_col)["_value"].mean()
        out["monetary_value_cal"] = mean_repeat.reindex(out.index).fillna(0.0)
    hold = daily.loc[(daily["_day"] > cal_end) & daily[customer_id_col].isin(out.index)]
    out["frequency_holdout"] = hold.groupby(customer_id_col).size().reindex(out.index).fillna(0).astype(np.int64)
    if monetary_value_col:
        out["monetary_value_holdout"] = hold.groupby(customer_id_col)["_value"].mean().reindex(out.index).fillna(0.0)
    out["duration_holdout"] = (obs_end - cal_end).days / unit
    out.index.name = customer_id_col
    return out
