"""Revenue = purchases × spend: the one place the two probabilistic models are combined.

:func:`predict_revenue` turns a fitted :class:`~customer_value.probabilistic.purchases.PurchaseModel`
and :class:`~customer_value.probabilistic.spend.SpendModel` into expected (and discounted)
revenue and margin per customer, with optional parametric-bootstrap intervals
(:func:`revenue_intervals`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from customer_value.probabilistic import nbd
from customer_value.probabilistic.patterns import group_pairs
from customer_value.probabilistic.purchases import PurchaseModel, rfm_arrays
from customer_value.probabilistic.spend import PARAM_NAMES, SpendModel, _expected_order_value, _spend_arrays
from customer_value.units import continuous_discount_rate


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
