"""Cash flows per calendar month: each customer's expected margin and cost spread over the horizon.

The score file says how much; this says when. Months run from ``as_of`` (``as_of`` + k calendar
months; the last one ends with the horizon, so it may be short).

- **Margin follows the purchases**: month ``m`` gets the customer's share of BG/NBD's expected
  transactions that fall in it (``E[X(t_m)] − E[X(t_{m−1})]``), discounted by the share of the
  discounted expected transactions. A customer likely to lapse earns early, one who buys steadily
  earns evenly.
- **Cost follows the purchases too**: support, orders, invoices and the pools' drivers are
  activity, and activity stops when the customer lapses (a 100k backtest with an even spread
  over-forecast the last month's cost by 83%: the realised cost falls through the year as the
  base churns). The discounted cost is the score file's, spread by the same discounted shares.
- **Tilted by what last year showed** (:class:`MonthlyProfile`, when the fit had a year to learn
  it on): margin and cost need not fall at the purchases' pace. Support, most of the cost, falls
  faster (a 100k backtest: the realised cost fell 47% over the year, the purchases 28%, so the
  purchases' shape over-forecast the last month's cost by 33%), because the customers who call
  most lapse first. Each customer's monthly shares are multiplied by ``exp(trend × years from
  as_of)``, one trend for margin and one for cost, and renormalised; the trends are fitted so
  that the model's own forecast a horizon before its fit date, spread this way, has the monthly
  shape of what those customers then earned and cost.

Either way, per customer, the months add up exactly to the score file's ``expected_margin``,
``expected_cost_to_serve`` and their discounted values. ``discounted_net`` = discounted margin −
discounted cost; referral value is not a monthly cash flow and is left out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from scipy.optimize import minimize_scalar

from customer_value.units import DAYS_PER_YEAR, in_units, month_edges

Z80 = 1.2815515655446004
"""The standard normal's 90th percentile: an 80% interval is ±Z80 standard deviations."""


def _increments(cumulative: np.ndarray) -> np.ndarray:
    """Per-interval shares of a cumulative (customers × edges) array; uniform where it is all 0."""
    steps = np.diff(cumulative, axis=1, prepend=0.0)
    steps = np.clip(steps, 0.0, None)
    total = steps.sum(axis=1, keepdims=True)
    even = np.full_like(steps, 1.0 / steps.shape[1])
    return np.where(total > 0, steps / np.where(total > 0, total, 1.0), even)


PROFILE_QUANTITIES = {"margin": ("expected_margin", "margin"), "cost": ("expected_cost", "cost_to_serve")}
"""The profile's quantities: their cash-flow column and their column in the realised months
(:func:`customer_value.features.monthly_outcomes`)."""


class MonthlyProfile:
    """How margin and cost fall through the horizon against the purchases, learned on a past year.

    ``fit`` takes the cash flows the model forecast a horizon before its fit date (spread by the
    purchases alone) and what those customers earned and cost in each month after it; it learns
    ``trend_`` (per year, one per quantity) so that the forecast, each customer's shares tilted by
    ``exp(trend × years)`` and renormalised, has the realised months' shape. The level is not
    touched: each customer's months still add up to its score row. A negative cost trend says the
    cost falls faster than the purchases. ``max_trend`` bounds the search.
    """

    def __init__(self, max_trend: float = 3.0):
        self.max_trend = max_trend

    def fit(self, forecast: pd.DataFrame, realised: pd.DataFrame) -> "MonthlyProfile":
        """``forecast``: :func:`monthly_cashflows` rows without a profile, as it writes them
        (customer by customer, each one's months in order); ``realised``: ``month``, ``margin``
        and ``cost_to_serve`` of the same customers over the same months."""
        months = np.sort(forecast["month"].unique())
        m = len(months)
        n = len(forecast) // max(m, 1)
        days = forecast["days"].to_numpy(dtype=float)[:m]
        years = (np.cumsum(days) - days / 2) / DAYS_PER_YEAR
        by_month = realised.assign(month=pd.to_datetime(realised["month"])).set_index("month")
        self.trend_ = {}
        for quantity, (column, realised_column) in PROFILE_QUANTITIES.items():
            amounts = forecast[column].to_numpy(dtype=float).reshape(n, m)
            target = by_month[realised_column].reindex(pd.to_datetime(months)).to_numpy(dtype=float)
            self.trend_[quantity] = fit_trend(amounts, years, target, self.max_trend)
        self.months_ = m
        return self

    def weights(self, quantity: str, years: np.ndarray) -> np.ndarray:
        """The tilt of months whose middles lie ``years`` after ``as_of``."""
        return np.exp(self.trend_.get(quantity, 0.0) * np.asarray(years, dtype=float))

    def to_dict(self) -> dict[str, Any]:
        return {"max_trend": self.max_trend, "trend": self.trend_, "months": self.months_}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MonthlyProfile":
        profile = cls(max_trend=data["max_trend"])
        profile.trend_ = {k: float(v) for k, v in data["trend"].items()}
        profile.months_ = int(data["months"])
        return profile


def _tilted(shares: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each row's shares times the months' weights, renormalised to add up to 1 again."""
    tilted = shares * weights[None, :]
    return tilted / tilted.sum(axis=1, keepdims=True)


def fit_trend(amounts: np.ndarray, years: np.ndarray, realised: np.ndarray, max_trend: float = 3.0) -> float:
    """The per-year trend whose tilt gives the customers' forecast ``amounts`` (customers × months)
    the monthly shape of ``realised`` (its share of each month: relative squared error, weighted by
    that share). 0 when there is no shape to learn (no positive total on either side)."""
    totals = np.clip(amounts, 0.0, None).sum(axis=1)
    keep = totals > 0
    realised = np.nan_to_num(np.asarray(realised, dtype=float), nan=0.0).clip(min=0.0)
    if keep.sum() == 0 or realised.sum() <= 0 or len(realised) < 2:
        return 0.0
    shares = np.clip(amounts[keep], 0.0, None) / totals[keep, None]
    weight, target = totals[keep], realised / realised.sum()
    months = target > 0

    def loss(trend: float) -> float:
        portfolio = weight @ _tilted(shares, np.exp(trend * years))
        achieved = portfolio / portfolio.sum()
        return float((target[months] * (achieved[months] / target[months] - 1.0) ** 2).sum())

    return float(minimize_scalar(loss, bounds=(-max_trend, max_trend), method="bounded",
                                 options={"xatol": 1e-4}).x)


def monthly_cashflows(scores: pd.DataFrame, purchase_model: Any, rfm: pd.DataFrame, as_of: Any,
                      discount_rate: float, time_unit: str = "days",
                      profile: MonthlyProfile | None = None) -> pd.DataFrame:
    """One row per customer × month: ``customer_id``, ``month`` (its first day), ``days``,
    ``expected_margin``, ``expected_cost``, ``discounted_margin``, ``discounted_cost`` and
    ``discounted_net``. ``scores`` and ``rfm`` are row-aligned (same customers, same order).
    With a ``profile``, margin and cost are tilted away from the purchases' shape as it learned."""
    horizon = int(scores["horizon_days"].iloc[0]) if len(scores) else 0
    edges = month_edges(as_of, horizon)
    start = edges[0]
    ends = np.array([(e - start).days for e in edges[1:]], dtype=float)
    cum_tx = np.empty((len(scores), len(ends)))
    cum_disc = np.empty((len(scores), len(ends)))
    for j, days in enumerate(ends):
        predicted = purchase_model.predict(rfm, in_units(days, time_unit), discount_rate=discount_rate, time_unit=time_unit)
        cum_tx[:, j] = predicted["expected_transactions"].to_numpy(dtype=float)
        cum_disc[:, j] = predicted["discounted_expected_transactions"].to_numpy(dtype=float)
    tx_share, disc_share = _increments(cum_tx), _increments(cum_disc)

    lo = np.concatenate([[0.0], ends[:-1]])
    hi = ends

    shares = {"margin": (tx_share, disc_share), "cost": (tx_share, disc_share)}
    if profile is not None:
        years = (lo + hi) / 2 / DAYS_PER_YEAR
        weights = {q: profile.weights(q, years) for q in shares}
        shares = {q: (_tilted(tx_share, weights[q]), _tilted(disc_share, weights[q])) for q in shares}

    margin = scores["expected_margin"].to_numpy(dtype=float)[:, None]
    disc_margin = scores["discounted_expected_margin"].to_numpy(dtype=float)[:, None]
    cost = scores["expected_cost_to_serve"].to_numpy(dtype=float)[:, None]
    disc_cost = scores["discounted_expected_cost_to_serve"].to_numpy(dtype=float)[:, None]
    n, m = len(scores), len(ends)
    out = pd.DataFrame({
        "customer_id": np.repeat(scores["customer_id"].to_numpy(), m),
        "month": np.tile(np.array(edges[:-1], dtype="datetime64[D]"), n),
        "days": np.tile(hi - lo, n).round().astype("int64"),
        "expected_margin": (margin * shares["margin"][0]).ravel(),
        "expected_cost": (cost * shares["cost"][0]).ravel(),
        "discounted_margin": (disc_margin * shares["margin"][1]).ravel(),
        "discounted_cost": (disc_cost * shares["cost"][1]).ravel(),
    })
    out["discounted_net"] = out["discounted_margin"] - out["discounted_cost"]
    return out


MONTHLY_AMOUNTS = ("expected_margin", "expected_cost", "discounted_margin", "discounted_cost", "discounted_net")
"""The cash flows' money columns, which add up over customers."""


def monthly_sums(cashflows: pd.DataFrame, scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per month, the totals of a batch of customers' cash flows, in a form that adds up over
    batches (``add``: concatenate and sum by ``month``). With the score rows' ``net_value_p10`` /
    ``p90`` it adds ``expected_net_variance``: each customer's spread (an 80% interval is ±Z80
    standard deviations), scaled to the month by the customer's share of the horizon's net, squared
    and summed as independent. ``cashflows`` as :func:`monthly_cashflows` writes them (customer by
    customer, each one's months in order); ``scores`` holds the same customers (any order)."""
    sums = cashflows.groupby("month", sort=True)[list(MONTHLY_AMOUNTS)].sum()
    if scores is not None and {"net_value_p10", "net_value_p90"} <= set(scores.columns) and len(cashflows):
        m = len(sums)
        customers = cashflows["customer_id"].to_numpy()[::m]
        spread = scores.set_index("customer_id").reindex(customers)
        width = spread["net_value_p90"].to_numpy(dtype=float) - spread["net_value_p10"].to_numpy(dtype=float)
        sigma = width / (2 * Z80)
        net = (cashflows["expected_margin"] - cashflows["expected_cost"]).to_numpy(dtype=float).reshape(-1, m)
        share = np.abs(net) / np.clip(np.abs(net).sum(axis=1, keepdims=True), 1e-12, None)
        sums["expected_net_variance"] = ((np.nan_to_num(sigma)[:, None] * share) ** 2).sum(axis=0)
    return sums.reset_index()


def portfolio_from_sums(sums: pd.DataFrame) -> pd.DataFrame:
    """Monthly portfolio totals from :func:`monthly_sums` (of one batch, or added over batches):
    the sums, ``expected_net`` and, where the variance is known, the monthly net's 80% band
    ``expected_net_p10`` / ``p90`` (a portfolio is narrower than the sum of its customers' bands)."""
    totals = sums.assign(month=pd.to_datetime(sums["month"]).dt.as_unit("s")).groupby("month", sort=True).sum(
        numeric_only=True)
    totals["expected_net"] = totals["expected_margin"] - totals["expected_cost"]
    if "expected_net_variance" in totals:
        sd = np.sqrt(totals.pop("expected_net_variance").to_numpy(dtype=float))
        totals["expected_net_p10"] = totals["expected_net"].to_numpy() - Z80 * sd
        totals["expected_net_p90"] = totals["expected_net"].to_numpy() + Z80 * sd
    return totals.reset_index()


def portfolio_by_month(cashflows: pd.DataFrame, scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """Monthly portfolio totals of one set of cash flows (see :func:`portfolio_from_sums`); with the
    score rows' ``net_value_p10`` / ``p90``, an 80% band for the monthly net (undiscounted)."""
    return portfolio_from_sums(monthly_sums(cashflows, scores))
