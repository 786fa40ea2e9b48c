"""Robust maximum-likelihood helpers shared by the probabilistic models.

lifetimes runs one optimiser from one start and raises ``ConvergenceError`` (or returns NaN or
absurd parameters) when that fails. Here a fit is a list of :class:`Strategy` objects tried in
order -- optimiser, start values, penalizer -- and the first one whose result passes the checks
wins. Every attempt is recorded, so ``fit_path_`` says which path succeeded and
``fit_attempts_`` says why the others did not; :class:`FitError` is raised only when all fail.

Objectives are mean negative log-likelihoods (plus an optional penalty) of log-parameters, so
every parameter stays positive and gradients are O(1) whatever the number of customers.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from scipy.optimize import minimize

from customer_value.errors import CannotFitError

# |log parameter| beyond this means the optimiser ran off to a degenerate corner (e.g. b -> inf).
LOG_PARAM_BOUND = 25.0
Z_95 = 1.959963984540054


class FitError(CannotFitError):
    """Every optimisation path failed; the message lists each attempt and why it failed."""


class Objective(Protocol):
    """What an optimisation attempt needs from a model's likelihood."""

    def value(self, x: np.ndarray) -> float: ...

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]: ...


@dataclass(frozen=True)
class Strategy:
    """One optimisation path: a scipy method, a start, and the penalizer it runs with."""

    label: str
    method: str  # "trust-exact", "l-bfgs-b", "bfgs" or "nelder-mead"
    x0: np.ndarray
    penalizer: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)
    variant: str = ""  # model-specific objective variant (e.g. a penalty on a constraint)


@dataclass(frozen=True)
class Attempt:
    """The record of one tried strategy."""

    path: str
    success: bool
    message: str
    objective: float
    n_evaluations: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "success": self.success,
            "message": self.message,
            "objective": self.objective,
            "n_evaluations": self.n_evaluations,
        }


@dataclass(frozen=True)
class Outcome:
    """The accepted optimum and the full attempt history."""

    x: np.ndarray
    fun: float
    strategy: Strategy
    attempts: tuple[Attempt, ...]
    objective: Any = None  # the objective the accepted strategy optimised


def _safe(fun: Callable[[np.ndarray], Any]) -> Callable[[np.ndarray], Any]:
    """Evaluate with floating-point warnings silenced (they are handled by the checks)."""

    def wrapped(x: np.ndarray) -> Any:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return fun(x)

    return wrapped


def _run(strategy: Strategy, objective: Objective, gtol: float, max_iter: int):
    method = strategy.method
    x0 = np.asarray(strategy.x0, dtype=np.float64)
    if method == "trust-exact":
        hessian = getattr(objective, "hessian", None)
        if hessian is None:
            raise ValueError("trust-exact needs an analytic Hessian")
        return minimize(
            _safe(objective.value_and_grad),
            x0,
            jac=True,
            hess=_safe(hessian),
            method="trust-exact",
            options={"gtol": gtol, "maxiter": max_iter, **strategy.options},
        )
    if method == "l-bfgs-b":
        bounds = [(-LOG_PARAM_BOUND, LOG_PARAM_BOUND)] * x0.shape[0]
        return minimize(
            _safe(objective.value_and_grad),
            x0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": max_iter, "ftol": 1e-14, "gtol": gtol, "maxcor": 20, **strategy.options},
        )
    if method == "bfgs":
        return minimize(
            _safe(objective.value_and_grad),
            x0,
            jac=True,
            method="BFGS",
            options={"maxiter": max_iter, "gtol": gtol, **strategy.options},
        )
    if method == "nelder-mead":
        bounds = [(-LOG_PARAM_BOUND, LOG_PARAM_BOUND)] * x0.shape[0]
        return minimize(
            _safe(objective.value),
            x0,
            method="Nelder-Mead",
            bounds=bounds,
            options={"maxiter": 10 * max_iter, "maxfev": 20 * max_iter, "xatol": 1e-10, "fatol": 1e-13,
                     "adaptive": True, **strategy.options},
        )
    raise ValueError(f"unknown optimisation method {method!r}")


def minimize_robust(
    strategies: Sequence[Strategy],
    objective_for: Callable[[Strategy], Objective],
    *,
    accept: Callable[[np.ndarray], str | None] | None = None,
    gtol: float = 1e-7,
    accept_gtol: float = 1e-4,
    max_iter: int = 500,
    what: str = "model",
) -> Outcome:
    """Try each strategy in turn and return the first acceptable optimum.

    A result is acceptable when the objective and parameters are finite, no log-parameter ran
    beyond +-LOG_PARAM_BOUND, the largest gradient component at the optimum is below
    ``accept_gtol`` (checked whatever the optimiser reported) and ``accept(x)`` returns None
    (it returns a reason string to reject, e.g. "q <= 1").
    """
    attempts: list[Attempt] = []
    objectives: dict[tuple[float, str], Objective] = {}
    rejected: dict[tuple[float, str], str] = {}
    for strategy in strategies:
        cache_key = (strategy.penalizer, strategy.variant)
        if cache_key in rejected:
            # Another path already converged on this objective and its optimum was rejected by
            # the model's own check: a different optimiser or start would find the same optimum.
            attempts.append(Attempt(strategy.label, False, f"skipped: {rejected[cache_key]}", float("nan"), 0))
            continue
        objective = objectives.get(cache_key)
        if objective is None:
            objective = objectives[cache_key] = objective_for(strategy)
        try:
            result = _run(strategy, objective, gtol, max_iter)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            attempts.append(Attempt(strategy.label, False, f"{type(exc).__name__}: {exc}", float("nan"), 0))
            continue
        x = np.asarray(result.x, dtype=np.float64)
        n_eval = int(getattr(result, "nfev", 0) or 0)
        reason = None
        fun = float("nan")
        if not np.all(np.isfinite(x)):
            reason = "non-finite parameters"
        elif np.max(np.abs(x)) >= LOG_PARAM_BOUND - 1e-6:
            reason = f"a log-parameter reached the bound +-{LOG_PARAM_BOUND} (degenerate optimum)"
        else:
            fun, grad = _safe(objective.value_and_grad)(x)
            fun = float(fun)
            if not np.isfinite(fun):
                reason = "non-finite objective (NaN/inf likelihood)"
            elif not np.all(np.isfinite(grad)):
                reason = "non-finite gradient"
            elif np.max(np.abs(grad)) > accept_gtol:
                reason = (
                    f"not converged: max |gradient| {np.max(np.abs(grad)):.2e} > {accept_gtol:.0e}"
                    f" ({getattr(result, 'message', '')})"
                )
            elif accept is not None:
                reason = accept(x)
                if reason is not None:
                    rejected[cache_key] = f"this objective's optimum was rejected ({reason})"
        if reason is None:
            attempts.append(Attempt(strategy.label, True, str(getattr(result, "message", "")), fun, n_eval))
            return Outcome(x=x, fun=fun, strategy=strategy, attempts=tuple(attempts), objective=objective)
        attempts.append(Attempt(strategy.label, False, reason, fun, n_eval))
    lines = "\n".join(f"  - {a.path}: {a.message}" for a in attempts)
    raise FitError(
        f"could not fit the {what}: every optimisation path failed.\n{lines}\n"
        "Check the input summary (units, outliers, enough repeat customers) or pass a larger penalizer."
    )


def numerical_gradient(fun: Callable[[np.ndarray], float], x: np.ndarray, step: float = 1e-5) -> np.ndarray:
    """Central-difference gradient."""
    x = np.asarray(x, dtype=np.float64)
    grad = np.empty_like(x)
    for i in range(x.shape[0]):
        e = np.zeros_like(x)
        e[i] = step
        grad[i] = (fun(x + e) - fun(x - e)) / (2 * step)
    return grad


def numerical_hessian_from_grad(grad: Callable[[np.ndarray], np.ndarray], x: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Symmetrised central-difference Jacobian of a gradient."""
    x = np.asarray(x, dtype=np.float64)
    k = x.shape[0]
    hess = np.empty((k, k))
    for i in range(k):
        e = np.zeros(k)
        e[i] = step
        hess[i] = (grad(x + e) - grad(x - e)) / (2 * step)
    return 0.5 * (hess + hess.T)


def numerical_hessian(fun: Callable[[np.ndarray], float], x: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Central second differences of a scalar function."""
    x = np.asarray(x, dtype=np.float64)
    k = x.shape[0]
    f0 = fun(x)
    hess = np.empty((k, k))
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = step
        hess[i, i] = (fun(x + ei) - 2 * f0 + fun(x - ei)) / step**2
        for j in range(i):
            ej = np.zeros(k)
            ej[j] = step
            val = (fun(x + ei + ej) - fun(x + ei - ej) - fun(x - ei + ej) + fun(x - ei - ej)) / (4 * step**2)
            hess[i, j] = hess[j, i] = val
    return hess


def covariance_from_hessian(hessian_total: np.ndarray) -> tuple[np.ndarray, str | None]:
    """Inverse of the Hessian of the total negative log-likelihood.

    Returns the covariance and a note when the Hessian was not positive definite (the
    covariance is then regularised by flooring the eigenvalues, and the caller should warn).
    """
    hessian_total = 0.5 * (hessian_total + hessian_total.T)
    if not np.all(np.isfinite(hessian_total)):
        k = hessian_total.shape[0]
        return np.full((k, k), np.nan), "non-finite Hessian: standard errors unavailable"
    try:
        chol = np.linalg.cholesky(hessian_total)
        inv_chol = np.linalg.inv(chol)
        return inv_chol.T @ inv_chol, None
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(hessian_total)
        floor = max(float(np.max(np.abs(values))) * 1e-10, 1e-300)
        values = np.maximum(values, floor)
        cov = (vectors / values) @ vectors.T
        return cov, "Hessian not positive definite at the optimum: covariance regularised, intervals unreliable"


def summarise(
    names: Sequence[str], log_params: np.ndarray, cov_log: np.ndarray
) -> tuple[dict[str, float], dict[str, float], dict[str, tuple[float, float]]]:
    """Parameters, delta-method standard errors and 95% intervals.

    The intervals are symmetric on the log scale, ``exp(log(theta) +- 1.96 se(log theta))``,
    so they stay positive and cover better than ``theta +- 1.96 se`` for skewed estimates.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        theta = np.exp(log_params)
        se_log = np.sqrt(np.clip(np.diag(cov_log), 0.0, None))
        params = {n: float(v) for n, v in zip(names, theta)}
        se = {n: float(v * s) for n, v, s in zip(names, theta, se_log)}
        ci = {
            n: (float(np.exp(lp - Z_95 * s)), float(np.exp(lp + Z_95 * s)))
            for n, lp, s in zip(names, log_params, se_log)
        }
    return params, se, ci


def fitted_state(model: Any) -> dict[str, Any]:
    """The maximum-likelihood results every probabilistic model saves (JSON-ready)."""
    return {
        "params": dict(model.params_),
        "penalizer": model.penalizer,
        "params_se": dict(model.params_se_),
        "params_ci": {k: list(v) for k, v in model.params_ci_.items()},
        "log_params_cov": np.asarray(model.log_params_cov_).tolist(),
        "log_likelihood": model.log_likelihood_,
        "fit_path": model.fit_path_,
    }


def restore_fitted_state(model: Any, data: Any) -> None:
    """Put :func:`fitted_state` back on a model built ``from_params`` (missing keys keep its values)."""
    model.penalizer = data.get("penalizer", 0.0)
    model.params_se_ = {k: float(v) for k, v in data.get("params_se", model.params_se_).items()}
    model.params_ci_ = {k: (float(v[0]), float(v[1])) for k, v in data.get("params_ci", {}).items()} or model.params_ci_
    if "log_params_cov" in data:
        model.log_params_cov_ = np.asarray(data["log_params_cov"], dtype=float)
    model.log_likelihood_ = float(data.get("log_likelihood", float("nan")))
    model.fit_path_ = data.get("fit_path", "given")
