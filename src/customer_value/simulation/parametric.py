"""Simulate RFM summaries directly from known BG/NBD (or MBG/NBD, Pareto/NBD) and Gamma-Gamma
parameters, without generating individual transactions.

The simulation is exact and fully vectorised, so millions of customers take seconds. It feeds the
parameter-recovery tests and the benchmarks of :mod:`customer_value.probabilistic.purchases`.

How a customer is drawn (time in an arbitrary unit, e.g. days):

- ``T``: the customer's age (time since the first purchase, which is at time 0).
- BG/NBD: purchase rate ``lam ~ Gamma(r, rate=alpha)``, drop-out probability ``p ~ Beta(a, b)``.
  Repeat purchases arrive as a Poisson process; after each repeat purchase the customer drops out
  with probability ``p``, so the number of repeat purchases a customer would make with unlimited
  time is ``K ~ Geometric(p)`` on ``{1, 2, ...}``. With ``N ~ Poisson(lam * T)`` purchase
  opportunities in ``(0, T]``, the observed frequency is ``x = min(K, N)`` and the recency is the
  ``x``-th of ``N`` uniform arrival times, ``t_x = T * Beta(x, N - x + 1)``.
- MBG/NBD: as BG/NBD, but the customer may also drop out right after the first purchase, so
  ``K ~ Geometric(p) - 1`` on ``{0, 1, ...}``.
- Pareto/NBD: ``lam ~ Gamma(r, rate=alpha)``, ``mu ~ Gamma(s, rate=beta)``, lifetime
  ``tau ~ Exp(mu)``; ``x ~ Poisson(lam * min(tau, T))`` and ``t_x = min(tau, T) * Beta(x, 1)``.
- Gamma-Gamma spend: ``nu ~ Gamma(q, rate=gamma)``; each repeat purchase's value is
  ``Gamma(p, rate=nu)``, so the mean of ``x`` values is ``Gamma(p * x, rate=nu) / x``
  (0 when ``x`` is 0, lifetimes' convention).

With ``discrete=True`` the summary looks like one built from dated transactions in whole time
units: ``T`` is rounded to an integer and recency is floored to an integer.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

PURCHASE_PARAMETERS: dict[str, tuple[str, ...]] = {
    "bgnbd": ("r", "alpha", "a", "b"),
    "mbgnbd": ("r", "alpha", "a", "b"),
    "pareto_nbd": ("r", "alpha", "s", "beta"),
}
SPEND_PARAMETERS: tuple[str, ...] = ("p", "q", "gamma")

#: BG/NBD parameters of the CDNOW sample (Fader, Hardie and Lee 2005), converted to days.
CDNOW_BGNBD_DAILY: dict[str, float] = {"r": 0.243, "alpha": 4.414 * 7, "a": 0.793, "b": 2.426}
#: Gamma-Gamma parameters of the CDNOW sample (Fader, Hardie and Lee 2005).
CDNOW_GAMMA_GAMMA: dict[str, float] = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def _check_parameters(params: Mapping[str, float], names: tuple[str, ...], what: str) -> tuple[float, ...]:
    missing = [n for n in names if n not in params]
    if missing:
        raise ValueError(f"{what} parameters need {list(names)}; missing {missing}")
    values = tuple(float(params[n]) for n in names)
    bad = [n for n, v in zip(names, values) if not (np.isfinite(v) and v > 0)]
    if bad:
        raise ValueError(f"{what} parameters must be finite and > 0; got {dict(params)} (bad: {bad})")
    return values


def draw_ages(
    n_customers: int,
    max_T: float,
    *,
    min_T: float = 1.0,
    discrete: bool = True,
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Customer ages spread uniformly over ``[min_T, max_T]`` (steady acquisition).

    With ``discrete=True`` the ages are whole time units (e.g. days since the first purchase).
    """
    if not 0 < min_T <= max_T:
        raise ValueError(f"need 0 < min_T <= max_T, got min_T={min_T}, max_T={max_T}")
    rng = np.random.default_rng(seed)
    if discrete:
        return rng.integers(int(np.ceil(min_T)), int(np.floor(max_T)) + 1, size=n_customers).astype(np.float64)
    return rng.uniform(min_T, max_T, size=n_customers)


def simulate_rfm(
    n_customers: int,
    purchase_params: Mapping[str, float],
    spend_params: Mapping[str, float] | None = None,
    *,
    T: float | np.ndarray | None = None,
    max_T: float = 730.0,
    min_T: float = 1.0,
    model: str = "bgnbd",
    discrete: bool = False,
    seed: int | np.random.Generator | None = None,
    return_latent: bool = False,
) -> pd.DataFrame:
    """Draw an RFM summary (lifetimes' convention) for ``n_customers`` from known parameters.

    Parameters
    ----------
    n_customers:
        Number of customers (rows).
    purchase_params:
        ``r, alpha, a, b`` for ``model="bgnbd"`` / ``"mbgnbd"``; ``r, alpha, s, beta`` for
        ``"pareto_nbd"``. ``alpha`` and ``beta`` are rates per time unit.
    spend_params:
        Gamma-Gamma ``p, q, gamma``; when given, a ``monetary_value`` column is added (mean value
        of the repeat purchases, 0 for customers without one).
    T:
        Customer ages: a scalar, an array of length ``n_customers``, or ``None`` to draw them
        uniformly over ``[min_T, max_T]``.
    discrete:
        Round ``T`` and floor recency to whole time units, as a summary built from dated
        transactions would (it compresses into far fewer patterns).
    seed:
        Seed or generator; the same seed gives the same data.
    return_latent:
        Also return the latent draws (``lam``, ``p``/``mu``, ``alive`` and ``nu``).

    Returns
    -------
    DataFrame indexed by ``customer_id`` (0..n-1) with ``frequency`` (int64), ``recency``, ``T``
    and, with ``spend_params``, ``monetary_value``.
    """
    if model not in PURCHASE_PARAMETERS:
        raise ValueError(f"model must be one of {list(PURCHASE_PARAMETERS)}, got {model!r}")
    if n_customers < 0:
        raise ValueError(f"n_customers must be >= 0, got {n_customers}")
    r, alpha, third, fourth = _check_parameters(purchase_params, PURCHASE_PARAMETERS[model], "purchase")
    rng = np.random.default_rng(seed)
    n = int(n_customers)

    if T is None:
        ages = draw_ages(n, max_T, min_T=min_T, discrete=discrete, seed=rng)
    else:
        ages = np.broadcast_to(np.asarray(T, dtype=np.float64), (n,)).copy()
        if discrete:
            ages = np.rint(ages)
    if np.any(~np.isfinite(ages)) or np.any(ages <= 0):
        raise ValueError("T must be finite and > 0 for every customer")

    lam = rng.gamma(r, 1.0 / alpha, size=n)
    latent: dict[str, np.ndarray] = {"lam": lam}
    if model == "pareto_nbd":
        mu = rng.gamma(third, 1.0 / fourth, size=n)
        lifetime = rng.exponential(1.0, size=n) / np.maximum(mu, np.finfo(float).tiny)
        active_time = np.minimum(lifetime, ages)
        frequency = rng.poisson(lam * active_time)
        last_share = rng.beta(np.maximum(frequency, 1), 1.0)
        recency = np.where(frequency > 0, active_time * last_share, 0.0)
        latent.update(mu=mu, alive=lifetime > ages)
        del lifetime, last_share
    else:
        p_drop = rng.beta(third, fourth, size=n)
        # numpy's geometric has support {1, 2, ...}; p is clipped away from 0 to keep it finite.
        max_purchases = rng.geometric(np.clip(p_drop, 1e-12, 1.0))
        if model == "mbgnbd":
            max_purchases = max_purchases - 1
        opportunities = rng.poisson(lam * ages)
        frequency = np.minimum(max_purchases, opportunities)
        safe_x = np.maximum(frequency, 1)
        share = rng.beta(safe_x, np.maximum(opportunities - safe_x + 1, 1))
        recency = np.where(frequency > 0, ages * share, 0.0)
        latent.update(p=p_drop, alive=max_purchases > opportunities)
        del max_purchases, opportunities, safe_x, share

    if discrete:
        recency = np.floor(recency)
    frequency = frequency.astype(np.int64)
    columns: dict[str, np.ndarray] = {"frequency": frequency, "recency": recency, "T": ages}

    if spend_params is not None:
        p, q, gamma = _check_parameters(spend_params, SPEND_PARAMETERS, "spend")
        nu = rng.gamma(q, 1.0 / gamma, size=n)
        total = rng.gamma(p * np.maximum(frequency, 1), 1.0, size=n) / nu
        columns["monetary_value"] = np.where(frequency > 0, total / np.maximum(frequency, 1), 0.0)
        latent["nu"] = nu
        del total

    frame = pd.DataFrame(columns, index=pd.RangeIndex(n, name="customer_id"))
    if return_latent:
        for name, values in latent.items():
            frame[name] = values
    return frame
