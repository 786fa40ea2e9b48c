"""Referrals: how many referred sign-ups each customer will bring over the horizon, and what one is worth.

``expected_referrals`` (contract section 8) is checked in the backtest against the referred
sign-ups that happened (the targets' ``referrals``: customers whose ``referred_by`` names the
customer and who signed up in the window). Two questions, answered from different data because
they drift differently:

* **Who refers** (the shape): a Poisson regression of the referred sign-ups in a past window
  ``[D − H, D)`` on what was known at ``D − H`` (point-in-time safe): the customer's referral and
  invitation rates to date (over tenure, each shrunk towards the population's with ``prior_days``
  of prior weight), the invitations of the last 180 days and active days of the last 90 (advocacy
  and engagement now), the adjusted alive probability and tenure. The regression learns how much
  each is worth; invitations are the sharper signal: they show advocacy before it converts.
* **How many** (the level): in a growing base the per-customer rate of a year ago overstates the
  next year (on simulated worlds about twice over: new customers take a growing share of the
  referrals). So the total is the recent flow instead: the referred sign-ups of the last
  ``recent_days`` that went to customers already there at the start of those days, annualised
  (within ±10% of the next year's on the default simulated worlds). The shape spreads it over
  customers. The level carries the recent pace of acquisition forward: where sign-ups grow much
  faster than before it falls short (17–20% on a world whose sign-ups grow twice as fast), where
  they stop growing it overshoots (up to 19%).

Without a past window (too little history), the shape is the classic one: the shrunk rate times
the alive probability; without the recent flow, the level is the shape's own.

The value of a referred customer is measured: the mean trailing net value (``historical_value``)
of the customers who came by referral, with a normal ``confidence`` interval of that mean
(``referred_customer_value_interval_``); below ``min_referred`` of them, ``default_value``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.linear_model import PoissonRegressor
from scipy import stats

INPUTS = ("log_rate", "log_invite_rate", "log_invites_180d", "log_active_days_90d", "log_alive", "log_tenure")
"""The regression's inputs (see :func:`referral_inputs`)."""
CLASSIC = {"log_rate": 1.0, "log_invite_rate": 0.0, "log_invites_180d": 0.0, "log_active_days_90d": 0.0,
           "log_alive": 1.0, "log_tenure": 0.0}
"""Coefficients without a past window: expected referrals per day = shrunk rate × alive."""


def _column(features: pd.DataFrame, name: str) -> np.ndarray:
    return np.nan_to_num(features[name].to_numpy(dtype=float)) if name in features else np.zeros(len(features))


def population_rates(features: pd.DataFrame) -> tuple[float, float]:
    """Referred sign-ups and referral invitations per day of tenure, over all customers."""
    tenure = np.clip(features["acct_tenure_days"].to_numpy(dtype=float), 1.0, None).sum()
    if not tenure:
        return 0.0, 0.0
    return (float(_column(features, "acct_referred_customers").sum() / tenure),
            float(_column(features, "eng_referrals_total").sum() / tenure))


def referral_inputs(features: pd.DataFrame, alive: Any, rates: tuple[float, float], prior_days: float) -> pd.DataFrame:
    """The regression's inputs per customer (feature order): the referral and invitation rates to
    date (each shrunk towards the population's ``rates`` with ``prior_days`` of weight), recent
    invitations and active days (advocacy and engagement now), alive probability and tenure."""
    tenure = np.clip(features["acct_tenure_days"].to_numpy(dtype=float), 1.0, None)
    rate = (_column(features, "acct_referred_customers") + rates[0] * prior_days) / (tenure + prior_days)
    invite_rate = (_column(features, "eng_referrals_total") + rates[1] * prior_days) / (tenure + prior_days)
    return pd.DataFrame({
        "log_rate": np.log(np.clip(rate, 1e-12, None)),
        "log_invite_rate": np.log(np.clip(invite_rate, 1e-12, None)),
        "log_invites_180d": np.log1p(_column(features, "eng_referral_180d")),
        "log_active_days_90d": np.log1p(_column(features, "eng_active_days_90d")),
        "log_alive": np.log(np.clip(np.asarray(alive, dtype=float), 1e-3, 1.0)),
        "log_tenure": np.log(tenure),
    })


def realised_referrals(customers: pd.DataFrame, start: Any, end: Any) -> pd.Series:
    """Referred sign-ups in ``[start, end)`` per referrer (``customer_id`` index): the targets'
    ``referrals`` from a customers table in memory."""
    signup = pd.to_datetime(customers["signup_at"])
    new = customers.loc[customers["referred_by"].notna() & (signup >= pd.Timestamp(start))
                        & (signup < pd.Timestamp(end)), "referred_by"]
    return new.value_counts().rename("referrals").rename_axis("customer_id")


class ReferralModel(BaseEstimator):
    """Expected referred sign-ups per customer and the value of a referred customer (module docstring).

    Parameters: ``prior_days`` (prior weight of the population rate, in days of tenure),
    ``recent_days`` (the window of the recent flow that sets the level), ``min_referred`` and
    ``default_value`` (the referred customers' value below that many), ``confidence`` (of its
    interval) and ``alpha`` (the regression's L2 penalty on standardised inputs).
    """

    def __init__(self, prior_days: float = 365.0, recent_days: int = 180, min_referred: int = 20,
                 default_value: float = 0.0, confidence: float = 0.95, alpha: float = 1e-3):
        self.prior_days = prior_days
        self.recent_days = recent_days
        self.min_referred = min_referred
        self.default_value = default_value
        self.confidence = confidence
        self.alpha = alpha

    def fit(self, features: pd.DataFrame, alive: Any = None, *, past_features: pd.DataFrame | None = None,
            past_alive: Any = None, past_referrals: Any = None, window_days: int | None = None,
            recent_referrals: Any = None) -> "ReferralModel":
        """Learn from ``features`` as of the training date (population rate, referred value and,
        with ``recent_referrals`` — each customer's referred sign-ups over the last
        ``recent_days``, in feature order — the level); the shape from ``past_features`` (as of
        ``window_days`` earlier), their ``past_alive`` and the ``past_referrals`` that followed."""
        self.population_rate_, self.population_invite_rate_ = population_rates(features)
        self._fit_value(features)
        self._fit_shape(past_features, past_alive, past_referrals, window_days)
        self.level_, self.level_source_ = 1.0, "the shape's own"
        self.recent_daily_referrals_ = None
        if recent_referrals is not None:
            alive = np.ones(len(features)) if alive is None else alive
            established = features["acct_tenure_days"].to_numpy(dtype=float) >= self.recent_days
            recent = np.nan_to_num(np.asarray(recent_referrals, dtype=float))
            self.recent_daily_referrals_ = float(recent[established].sum() / self.recent_days)
            shape_total = float(self._daily(features, alive).sum())
            if shape_total > 0 and self.recent_daily_referrals_ > 0:
                self.level_ = self.recent_daily_referrals_ / shape_total
                self.level_source_ = (f"recent flow: {int(recent[established].sum())} referred sign-ups in the last "
                                      f"{self.recent_days} days to customers already there")
        return self

    def _fit_value(self, features: pd.DataFrame) -> None:
        referred = features["acct_is_referred"].to_numpy() == 1
        values = features.loc[referred, "historical_value"].to_numpy(dtype=float)
        self.n_referred_ = int(referred.sum())
        if self.n_referred_ >= self.min_referred:
            mean = float(values.mean())
            half = float(stats.norm.ppf(0.5 + self.confidence / 2) * values.std(ddof=1) / np.sqrt(values.size))
            self.referred_customer_value_ = mean
            self.referred_customer_value_interval_ = (mean - half, mean + half)
            self.referred_customer_value_source_ = f"mean trailing net value of {self.n_referred_} referred customers"
        else:
            self.referred_customer_value_ = float(self.default_value)
            self.referred_customer_value_interval_ = (float("nan"), float("nan"))
            self.referred_customer_value_source_ = (f"config default (fewer than {self.min_referred} referred "
                                                    "customers in the data)")

    def _fit_shape(self, past: pd.DataFrame | None, alive: Any, realised: Any, window_days: int | None) -> None:
        self.coef_, self.intercept_ = dict(CLASSIC), 0.0
        self.shape_source_ = "classic: shrunk rate × alive probability (no past window)"
        if past is None or realised is None or not window_days or len(past) == 0:
            return
        y = np.nan_to_num(np.asarray(realised, dtype=float)) / float(window_days)  # per day
        if y.sum() <= 0:
            return
        X = referral_inputs(past, np.ones(len(past)) if alive is None else alive, population_rates(past),
                            self.prior_days)
        mean, scale = X.mean(), X.std().replace(0.0, 1.0)
        glm = PoissonRegressor(alpha=self.alpha, max_iter=300).fit((X - mean) / scale, y,
                                                                    sample_weight=np.full(len(y), float(window_days)))
        self.coef_ = {c: float(b / scale[c]) for c, b in zip(INPUTS, glm.coef_)}
        self.intercept_ = float(glm.intercept_ - sum(self.coef_[c] * mean[c] for c in INPUTS))
        self.shape_source_ = (f"Poisson regression on {len(past):,} customers' referred sign-ups over the "
                              f"{window_days} days before the training date")

    def _daily(self, features: pd.DataFrame, alive: Any) -> np.ndarray:
        if self.population_rate_ <= 0 and self.population_invite_rate_ <= 0:
            return np.zeros(len(features))  # data without referrals (e.g. CDNOW): none expected
        X = referral_inputs(features, alive, (self.population_rate_, self.population_invite_rate_), self.prior_days)
        eta = self.intercept_ + sum(self.coef_[c] * X[c].to_numpy() for c in INPUTS)
        return np.exp(np.clip(eta, -50.0, 20.0))

    def predict(self, features: pd.DataFrame, horizon_days: int, alive: Any) -> np.ndarray:
        """Expected referred sign-ups per customer over ``horizon_days`` (feature order)."""
        return self._daily(features, alive) * self.level_ * float(horizon_days)

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "referrals", "init": self.get_params(), "population_rate": self.population_rate_,
                "population_invite_rate": self.population_invite_rate_,
                "coef": self.coef_, "intercept": self.intercept_, "shape_source": self.shape_source_,
                "level": self.level_, "level_source": self.level_source_,
                "recent_daily_referrals": self.recent_daily_referrals_, "n_referred": self.n_referred_,
                "referred_customer_value": self.referred_customer_value_,
                "referred_customer_value_interval": list(self.referred_customer_value_interval_),
                "referred_customer_value_source": self.referred_customer_value_source_}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ReferralModel":
        model = cls(**data["init"])
        model.population_rate_ = float(data["population_rate"])
        model.population_invite_rate_ = float(data["population_invite_rate"])
        model.coef_ = {c: float(data["coef"][c]) for c in INPUTS}
        model.intercept_ = float(data["intercept"])
        model.shape_source_ = data["shape_source"]
        model.level_, model.level_source_ = float(data["level"]), data["level_source"]
        model.recent_daily_referrals_ = data.get("recent_daily_referrals")
        model.n_referred_ = int(data.get("n_referred", 0))
        model.referred_customer_value_ = float(data["referred_customer_value"])
        model.referred_customer_value_interval_ = tuple(float(v) for v in data["referred_customer_value_interval"])
        model.referred_customer_value_source_ = data["referred_customer_value_source"]
        return model

    @classmethod
    def from_legacy(cls, referral_rate_prior: float, referred_customer_value: float, source: str) -> "ReferralModel":
        """A model saved before this module (``referral_rate_prior`` / ``referred_customer_value``
        keys): the classic shape, no interval."""
        model = cls()
        model.population_rate_, model.population_invite_rate_ = float(referral_rate_prior), 0.0
        model.coef_, model.intercept_ = dict(CLASSIC), 0.0
        model.shape_source_ = "classic: shrunk rate × alive probability (saved before the referral model)"
        model.level_, model.level_source_, model.recent_daily_referrals_ = 1.0, "the shape's own", None
        model.n_referred_ = 0
        model.referred_customer_value_ = float(referred_customer_value)
        model.referred_customer_value_interval_ = (float("nan"), float("nan"))
        model.referred_customer_value_source_ = source
        return model


def fit_referral_model(model: Any, tables: Any, day: dt.date, features: pd.DataFrame, past_features: pd.DataFrame,
                       horizon_days: int, scored_then: pd.DataFrame | None = None, alive: Any = None) -> ReferralModel:
    """A :class:`ReferralModel` for a fitted value ``model`` as of ``day`` (its features-only one's
    parameters): the shape from the customers as of ``day − horizon_days`` (``past_features``,
    scored by ``model`` for their alive probability unless ``scored_then`` has it) and the referred
    sign-ups of ``[day − horizon, day)`` in ``tables.customers``; the level from the last
    ``recent_days`` before ``day`` (``alive``: the customers' adjusted alive probability as of
    ``day``, else scored). Reads only customers who signed up before ``day``."""
    customers = tables.customers
    referral = ReferralModel(**model.referral_model_.get_params())
    start = pd.Timestamp(day) - pd.Timedelta(days=horizon_days)
    ids = features["customer_id"]
    recent = realised_referrals(customers, pd.Timestamp(day) - pd.Timedelta(days=referral.recent_days), day)
    if alive is None:
        alive = model._parts(features, horizon_days)["adjusted_p_alive"].to_numpy()
    if len(past_features) == 0:
        return referral.fit(features, alive, recent_referrals=ids.map(recent).fillna(0).to_numpy())
    if scored_then is None:
        scored_then = model._parts(past_features, horizon_days)
    past = realised_referrals(customers, start, day)
    return referral.fit(features, alive, past_features=past_features,
                        past_alive=scored_then["adjusted_p_alive"].to_numpy(),
                        past_referrals=past_features["customer_id"].map(past).fillna(0).to_numpy(),
                        window_days=horizon_days, recent_referrals=ids.map(recent).fillna(0).to_numpy())


def use_referral_model(model: Any, referral: ReferralModel) -> Any:
    """Put ``referral`` into a fitted value ``model`` (and its read-outs ``referral_rate_prior_``,
    ``referred_customer_value_``, ``…_interval_``, ``…_source_``); returns the model. Segment cut
    points stay those of the fit (referral value is a small part of value)."""
    model.referral_model_ = referral
    model.referral_rate_prior_ = referral.population_rate_
    model.referred_customer_value_ = referral.referred_customer_value_
    model.referred_customer_value_interval_ = referral.referred_customer_value_interval_
    model.referred_customer_value_source_ = referral.referred_customer_value_source_
    return model
