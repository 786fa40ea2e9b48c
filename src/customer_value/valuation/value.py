"""Forward-looking customer value (contract section 4): the fitted parts combined into score rows.

    customer_value = discounted expected margin − discounted expected cost-to-serve + expected referral value

How the parts enter, per customer, over ``horizon_days``:

* **Purchases** (BG/NBD): expected transactions and their discounted count (the purchase model
  integrates its instantaneous purchase rate against the discount factor).
* **Churn enters the value as a survival adjustment.** The score file's ``p_alive`` and
  ``expected_transactions`` stay BG/NBD's own (contract section 5); ``adjusted_p_alive`` and
  ``adjusted_expected_transactions`` carry the adjustment, and revenue, margin and value use them. BG/NBD's P(alive) uses purchases only;
  the churn model also sees engagement, support and payment signals. Under BG/NBD,
  ``P(no purchase in W) = 1 − a + a·q`` with ``a`` = P(alive) and ``q`` = P(no purchase in W | alive)
  ``= ((α+T)/(α+T+W))^(r+x)``. Solving with the churn model's probability gives the alive
  probability the richer model implies, ``a* = (1 − churn) / (1 − q)``; expected transactions
  are rescaled by ``a*/a`` (variant ``survival``) or by the mean of the two alive probabilities
  over ``a`` (variant ``blend``). ``none`` keeps BG/NBD alone (the backtest baseline).
* **Or churn feeds a gradient-boosted margin** (variant ``boosted``, :mod:`customer_value.boosted.margin`): a LightGBM
  model of the margin over the horizon, whose inputs are the BG/NBD outputs, every signal and the
  churn model's probability, replaces the survival-adjusted BG/NBD × Gamma-Gamma margin. Other
  horizons follow BG/NBD's timing: margin(h) = boosted margin × E[tx(h)] / E[tx(H)] at the
  model's horizon H (discounted alike); revenue = margin / margin ratio, and
  ``adjusted_expected_transactions`` = revenue / expected order value. ``adjusted_p_alive`` (for
  referrals) stays the survival one. Without a margin model ``boosted`` falls back to ``survival``.
* **Or net value is forecast directly** (``value_forecast="net"``, :mod:`customer_value.boosted.net_value`):
  the difference of two good forecasts ranks net value worse than either ranks its own amount,
  so a model of margin − cost (mixed with the parts' difference at the weight that ranked the
  validation snapshot best, ``net_weight``; the customers whose parts' difference, :meth:`ValueModel.parts_difference`,
  reaches ``net_top_threshold`` keep it, the top tier, see :func:`~customer_value.boosted.net_value.with_parts`)
  orders the customers; in money it takes the distribution of the parts' difference below the
  top tier on the base as of the training date (``net_money_``, a :class:`~customer_value.boosted.net_value.QuantileMap`
  learned by :meth:`ValueModel.fit`), and it is never below minus the cost forecast (the floor of
  :func:`~customer_value.boosted.net_value.net_forecast`, here a margin never below zero). That
  sets each customer's net value over H, and the margin over H becomes that net value plus the
  cost (spread over the horizon as above); the cost stays the cost forecast's, and a margin is
  never negative. Every component still adds up: customer_value = discounted margin − discounted cost + referral value.
* **Spend** (Gamma-Gamma): expected order value; margin = revenue × the customer's margin
  ratio to date, shrunk towards the population's ratio (three orders' worth of prior weight).
* **Cost-to-serve, by activity** (:mod:`customer_value.valuation.activity_costs`): each activity's
  forecast volume (:mod:`customer_value.boosted.activities`) priced at the configured rates, the
  indirect pools spread over the scored customers; ``expected_cost_to_serve`` is the sum of the
  ``expected_cost_<activity>`` columns. The total-cost model sets the portfolio's level (one factor
  on the direct activities); with ``cost_forecast="total"`` or ``"blend"`` (chosen at fit time when
  it ranks the validation snapshot's cost better) each customer's direct activities are scaled to
  the total model's forecast, or to the mean of the two forecasts. Discounted as if spread evenly over the horizon. Without an activity
  model: the total model's forecast alone; without either, the trailing cost scaled to the horizon.
* **Referrals** (:mod:`customer_value.valuation.referrals`): expected referred sign-ups
  (``expected_referrals``: who refers learned on a past window from the referral rate to date,
  recent invitations and the adjusted alive probability; how many from the recent referral flow)
  × the measured value of a referred customer (mean trailing net value of customers with
  ``referred_by``, with its interval; a config default when the data has none), discounted evenly.

* **Drains** (:mod:`customer_value.boosted.drain`): ``drain_probability``, the classifier's P(net value over the
  horizon < 0), and ``drain_flag`` (probability at or above the model's threshold) answer "which
  accounts will cost more than they bring" directly; the expectation ``customer_value`` is not
  a good yes/no answer to that (see the drain module). Without a drain model the flag is
  ``customer_value < 0`` and there is no probability column.

Segments: ``negative`` when value < 0, else ``low / medium / high / top`` at the value quantiles
of ``settings.segment_quantiles`` among non-negative customers, learned at fit time so weekly
scorings of one model share cut points; a scoring at another horizon scales the cut points with it.
``cost_segment`` names which activities dominate the cost (``light`` below the median expected cost
at fit time, scaled alike).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from customer_value.boosted.activities import ActivityVolumeModel
from customer_value.boosted.churn import ChurnModel
from customer_value.boosted.cost_to_serve import CostToServeModel
from customer_value.boosted.drain import DrainModel
from customer_value.boosted.inputs import ModelInput, purchase_features
from customer_value.boosted.margin import MarginModel, margin_input
from customer_value.boosted.net_value import NetValueModel, QuantileMap, parts_money, with_parts
from customer_value.config import Settings
from customer_value.probabilistic.purchases import PurchaseModel, bgnbd_prob_no_purchase
from customer_value.probabilistic.revenue import predict_revenue
from customer_value.probabilistic.spend import SpendModel
from customer_value.units import in_units, uniform_discount_factor
from customer_value.valuation.cashflows import MonthlyProfile, monthly_cashflows
from customer_value.valuation.activity_costs import (
    activity_volumes,
    combined_forecast,
    allocated_pools,
    level_factor,
    level_with_total,
    price,
    reconcile_with_total,
    top_cost_drivers,
    total_cost,
)
from customer_value.valuation.intervals import IntervalModel, customer_value_bounds, predicted_outcomes
from customer_value.valuation.portfolio import PortfolioTotals
from customer_value.valuation.referrals import ReferralModel
from customer_value.valuation.segments import assign_cost_segments, assign_segments, cost_groups, segment_cuts

Adjustment = Literal["boosted", "survival", "blend", "none"]
CostForecast = Literal["activities", "total", "blend"]
ValueForecast = Literal["parts", "net"]
SCORE_COLUMNS = (
    "customer_id", "as_of", "horizon_days", "p_alive", "expected_transactions", "expected_order_value",
    "expected_revenue", "expected_margin", "churn_probability", "expected_cost_to_serve",
    "expected_referral_value", "historical_value", "customer_value", "value_segment", "model_uri",
)
RFM_COLUMNS = ("frequency", "recency", "T", "monetary_value")
"""The RFM summary columns the probabilistic models read from a feature frame."""
REFERRAL_PRIOR_DAYS = 365.0
MARGIN_PRIOR_ORDERS = 3.0


class BoostedPredictions(NamedTuple):
    """The gradient-boosted models' predictions at their own horizons (they do not depend on the
    scoring horizon, so the horizon table reuses them); ``None`` where the model is missing."""

    churn_probability: np.ndarray
    expected_cost_to_serve: np.ndarray
    boosted_expected_margin: np.ndarray | None = None
    drain_probability: np.ndarray | None = None
    activity_volumes: pd.DataFrame | None = None
    """``expected_volume_<activity>`` columns over the model's horizon."""
    net_value: np.ndarray | None = None
    """The net value model's forecast of margin − cost over the model's horizon."""

    @classmethod
    def from_scores(cls, scores: pd.DataFrame, model_horizon_days: int | None = None) -> "BoostedPredictions":
        """Read back from score rows (their columns of the same names); amounts over the scoring
        horizon are scaled back to ``model_horizon_days`` (default: the scoring horizon)."""
        scored = float(scores["horizon_days"].iloc[0]) if "horizon_days" in scores and len(scores) else None
        scale = 1.0 if model_horizon_days is None or not scored else model_horizon_days / scored

        def column(name: str) -> np.ndarray | None:
            return scores[name].to_numpy(dtype=float) if name in scores else None

        volumes = [c for c in scores.columns if c.startswith("expected_volume_")]
        cost = column("boosted_expected_cost_to_serve")  # the total-cost model's own forecast, at the model's horizon
        return cls(column("churn_probability"),
                   cost if cost is not None else column("expected_cost_to_serve") * scale,  # type: ignore[operator]
                   column("boosted_expected_margin"), column("drain_probability"),
                   scores[volumes].reset_index(drop=True) * scale if volumes else None,
                   column("boosted_expected_net_value"))

    def to_columns(self, features: pd.DataFrame) -> pd.DataFrame:
        """``features`` with these predictions beside them, as float columns ``__boosted_<field>``
        and ``__boosted_volume_<activity>``: one flat frame, so batch scoring can keep a batch
        between its two passes (a Parquet file, a Spark partition) and both engines read it back
        alike with :meth:`from_columns`."""
        columns = {f"__boosted_{name}": np.asarray(value, dtype=float) for name, value in self._asdict().items()
                   if value is not None and name != "activity_volumes"}
        frame = features.reset_index(drop=True).assign(**columns)
        if self.activity_volumes is not None:
            volumes = self.activity_volumes.reset_index(drop=True).add_prefix("__boosted_volume_")
            frame = pd.concat([frame, volumes], axis=1)
        return frame

    @classmethod
    def from_columns(cls, frame: pd.DataFrame) -> tuple[pd.DataFrame, BoostedPredictions]:
        """The inverse of :meth:`to_columns`: (every other column, as stored; the predictions)."""
        volumes = [c for c in frame.columns if c.startswith("__boosted_volume_")]
        fields: dict[str, Any] = {name: frame[f"__boosted_{name}"].to_numpy(dtype=float)
                                  for name in cls._fields if f"__boosted_{name}" in frame.columns}
        if volumes:
            fields["activity_volumes"] = (frame[volumes].rename(columns=lambda c: c.removeprefix("__boosted_volume_"))
                                          .reset_index(drop=True))
        return frame[[c for c in frame.columns if not c.startswith("__boosted_")]], cls(**fields)


def rfm_of(features: pd.DataFrame) -> pd.DataFrame:
    """The RFM columns the probabilistic models read, indexed by customer."""
    return features.set_index("customer_id")[list(RFM_COLUMNS)]


def survival_factor(bg_p_alive: np.ndarray, p_no_purchase_if_alive: np.ndarray, churn_probability: np.ndarray,
                    variant: Adjustment) -> tuple[np.ndarray, np.ndarray]:
    """(adjusted alive probability, factor on BG/NBD's expected transactions)."""
    a = np.clip(np.asarray(bg_p_alive, dtype=float), 1e-9, 1.0)
    if variant == "none":
        return a, np.ones_like(a)
    q = np.clip(np.asarray(p_no_purchase_if_alive, dtype=float), 0.0, 1.0 - 1e-9)
    implied = np.clip((1.0 - np.asarray(churn_probability, dtype=float)) / (1.0 - q), 0.0, 1.0)
    adjusted = implied if variant == "survival" else 0.5 * (a + implied)
    return adjusted, adjusted / a


class ValueModel:
    """The combined model: fitted parts in, one score row per customer out.

    Parameters are the fitted parts (``purchase_model``, ``spend_model``, optional
    ``churn_model``, ``cost_model``, ``margin_model`` and ``drain_model``) and the settings;
    ``fit`` learns only what the combination needs (referral value and rates, margin prior,
    segment cut points).
    """

    def __init__(self, settings: Settings, purchase_model: Any, spend_model: Any, churn_model: Any = None,
                 cost_model: Any = None, margin_model: Any = None, churn_adjustment: Adjustment = "survival",
                 skipped: dict[str, str] | None = None, drain_model: Any = None, activity_model: Any = None,
                 cost_forecast: CostForecast = "activities", interval_model: Any = None, net_model: Any = None,
                 value_forecast: ValueForecast = "parts", net_weight: float = 1.0,
                 net_top_threshold: float | None = None, monthly_profile: Any = None):
        self.settings = settings
        self.purchase_model = purchase_model
        self.spend_model = spend_model
        self.churn_model = churn_model
        self.cost_model = cost_model
        self.margin_model = margin_model
        self.churn_adjustment = churn_adjustment
        self.skipped = skipped
        self.drain_model = drain_model
        self.activity_model = activity_model
        self.cost_forecast = cost_forecast
        self.interval_model = interval_model
        self.net_model = net_model
        self.value_forecast = value_forecast
        self.net_weight = net_weight
        self.net_top_threshold = net_top_threshold
        self.monthly_profile = monthly_profile

    # -- fitting ------------------------------------------------------------------------------

    def fit(self, features: pd.DataFrame, boosted: BoostedPredictions | None = None) -> "ValueModel":
        """Learn the combination's own quantities from the features as of the training date
        (``boosted``: the rows' :meth:`boosted` predictions, if already made)."""
        s = self.settings
        revenue = features["revenue_to_date"].to_numpy(dtype=float)
        margin = features["margin_to_date"].to_numpy(dtype=float)
        self.margin_ratio_prior_ = float(margin.sum() / revenue.sum()) if revenue.sum() > 0 else s.margin_rate
        order_value = features.loc[features["monetary_value"] > 0, "monetary_value"]
        self.margin_prior_weight_ = float(MARGIN_PRIOR_ORDERS * (order_value.median() if len(order_value) else 1.0))
        # referrals from the features alone; fit_value_model swaps in the past-window fit (referrals.py)
        self.referral_model_ = ReferralModel(REFERRAL_PRIOR_DAYS, default_value=s.referral_value_default).fit(features)
        self.referral_rate_prior_ = self.referral_model_.population_rate_
        self.referred_customer_value_ = self.referral_model_.referred_customer_value_
        self.referred_customer_value_interval_ = self.referral_model_.referred_customer_value_interval_
        self.referred_customer_value_source_ = self.referral_model_.referred_customer_value_source_
        self.net_money_ = None
        if self.net_model is not None and self.value_forecast == "net" and len(features):
            # the net forecast's money: the parts' distribution on this base (see boosted/net_value.py)
            boosted = boosted if boosted is not None and boosted.net_value is not None else self.boosted(features)
            difference = self.parts_difference(features, boosted)
            self.net_money_ = parts_money(boosted.net_value, difference, self.net_weight, self.net_top_threshold)
        parts = self._parts(features, s.horizon_days, boosted)
        self.segment_cuts_ = segment_cuts(parts["customer_value"].to_numpy(), s.segment_quantiles)
        self.light_cost_cut_ = float(np.median(parts["expected_cost_to_serve"])) if len(parts) else 0.0
        self.skipped_ = dict(self.skipped or {})
        return self

    # -- prediction ---------------------------------------------------------------------------

    def _boosted(self, features: pd.DataFrame, rfm: pd.DataFrame) -> BoostedPredictions:
        """The gradient-boosted predictions (the expensive part), see :class:`BoostedPredictions`."""
        s = self.settings
        churn_input = ModelInput.of(self.model_input(features, rfm, s.churn_window_days))
        if self.churn_model is not None:
            churn = np.asarray(self.churn_model.predict_proba(churn_input), dtype=float)
        else:
            churn = churn_input["bgnbd_p_no_purchase"].to_numpy(dtype=float)
        del churn_input
        horizon_input = None
        if any(m is not None for m in (self.cost_model, self.margin_model, self.drain_model, self.net_model)):
            horizon_input = ModelInput.of(self.model_input(features, rfm, s.horizon_days))  # shared, see ModelInput
        if self.cost_model is not None:
            cost = np.asarray(self.cost_model.predict(horizon_input), dtype=float)
        else:
            cost = features["hist_cost_to_serve"].to_numpy(dtype=float)
        drain = None
        if self.drain_model is not None:
            drain = np.asarray(self.drain_model.predict_proba(horizon_input), dtype=float)
        volumes = None
        if self.activity_model is not None:
            volumes = activity_volumes(self.activity_model.predict(horizon_input), s).reset_index(drop=True)
        margin, net = None, None
        known_churn = churn if self.churn_model is not None else None
        if self.margin_model is not None or self._runs_net_model:
            with_churn = ModelInput.of(margin_input(horizon_input, known_churn,
                                                 self.margin_model or self.net_model))
            if self.margin_model is not None:
                margin = np.clip(np.asarray(self.margin_model.predict(with_churn), dtype=float), 0.0, None)
            if self._runs_net_model:
                net = np.asarray(self.net_model.predict(with_churn), dtype=float)
        return BoostedPredictions(churn, cost, margin, drain, volumes, net)

    def _parts(self, features: pd.DataFrame, horizon_days: int,
               boosted: BoostedPredictions | None = None, totals: PortfolioTotals | None = None,
               value_forecast: ValueForecast | None = None) -> pd.DataFrame:
        s = self.settings
        rfm = rfm_of(features)
        purchases = predict_revenue(self.purchase_model, self.spend_model, rfm, in_units(horizon_days, s.time_unit),
                                    discount_rate=s.discount_rate, time_unit=s.time_unit)
        order_value = purchases["expected_order_value"].to_numpy(dtype=float)
        bg_alive = purchases["p_alive"].to_numpy(dtype=float)
        window = in_units(s.churn_window_days, s.time_unit)
        params = self.purchase_model.params_
        q = bgnbd_prob_no_purchase(np.ones_like(bg_alive), rfm["frequency"], rfm["T"], params["r"], params["alpha"], window)
        churn, base_cost, boosted_margin, _, volumes, net = boosted if boosted is not None else self._boosted(features, rfm)
        variant = self.churn_adjustment if self.churn_model is not None else "none"
        if variant == "boosted" and boosted_margin is None:
            variant = "survival"
        # the boosted variant takes its alive probability (for referrals) from the survival adjustment
        alive, factor = survival_factor(bg_alive, q, churn, "survival" if variant == "boosted" else variant)

        revenue_to_date = features["revenue_to_date"].to_numpy(dtype=float)
        margin_to_date = features["margin_to_date"].to_numpy(dtype=float)
        w = self.margin_prior_weight_
        ratio = (margin_to_date + w * self.margin_ratio_prior_) / np.clip(revenue_to_date + w, 1e-9, None)
        spread = uniform_discount_factor(horizon_days, s.discount_rate)
        # the cost model predicts its own training horizon (without one: the trailing cost over the
        # same span); other horizons scale linearly
        cost = np.clip(base_cost * horizon_days / s.horizon_days, 0.0, None)
        activity_columns = None
        if volumes is not None:
            volumes, priced = self._priced_activities(volumes, cost, horizon_days, totals)
            cost = total_cost(priced)
            activity_columns = pd.concat([priced, volumes], axis=1)
        predicted = (boosted_margin, net)  # the models' own, kept for other horizons
        if net is not None and (value_forecast or self.value_forecast) == "net":
            # the margin over H that makes margin − cost equal the net forecast (mixed with the
            # parts' own difference at the fit's weight), in the parts' money and never below
            # minus the cost forecast: the cost stays the cost forecast's (see boosted/net_value.py)
            cost_at_model = cost * (s.horizon_days / horizon_days)
            if boosted_margin is not None:
                net = with_parts(net, boosted_margin - cost_at_model, self.net_weight, self.net_top_threshold,
                                 self.net_money_)
            boosted_margin = np.clip(net + cost_at_model, 0.0, None)  # the floor: net never below minus the cost
            variant = "boosted"

        bg_tx = purchases["expected_transactions"].to_numpy(dtype=float)
        bg_discounted_tx = purchases["discounted_expected_transactions"].to_numpy(dtype=float)
        if variant == "boosted":  # the boosted margin over H, spread over the horizon as BG/NBD spreads purchases
            bg_tx_model = bg_tx if horizon_days == s.horizon_days else self.purchase_model.predict(
                rfm, in_units(s.horizon_days, s.time_unit), discount_rate=s.discount_rate, time_unit=s.time_unit
            )["expected_transactions"].to_numpy(dtype=float)
            known = bg_tx_model > 1e-12
            per_tx = boosted_margin / np.where(known, bg_tx_model, 1.0)
            fallback = boosted_margin * horizon_days / s.horizon_days
            margin = np.where(known, per_tx * bg_tx, fallback)
            discounted_margin = np.where(known, per_tx * bg_discounted_tx,
                                         fallback * uniform_discount_factor(horizon_days, s.discount_rate))
            revenue_ratio = np.clip(ratio, 0.05, None)  # revenue and orders implied by the margin
            revenue, discounted_revenue = margin / revenue_ratio, discounted_margin / revenue_ratio
            expected_tx = revenue / np.clip(order_value, 1e-9, None)
        else:
            expected_tx = bg_tx * factor
            revenue, discounted_revenue = expected_tx * order_value, bg_discounted_tx * factor * order_value
            margin, discounted_margin = revenue * ratio, discounted_revenue * ratio


        expected_referrals = self.referral_model_.predict(features, horizon_days, alive)
        referral_value = expected_referrals * self.referral_model_.referred_customer_value_ * spread

        out = pd.DataFrame({
            "customer_id": features["customer_id"].to_numpy(),
            "horizon_days": horizon_days,
            "p_alive": bg_alive,
            "adjusted_p_alive": alive,
            "expected_transactions": purchases["expected_transactions"].to_numpy(dtype=float),
            "adjusted_expected_transactions": expected_tx,
            "expected_order_value": order_value,
            "expected_revenue": revenue,
            "expected_margin": margin,
            "discounted_expected_revenue": discounted_revenue,
            "discounted_expected_margin": discounted_margin,
            "margin_ratio": ratio,
            "churn_probability": churn,
            "expected_cost_to_serve": cost,
            "discounted_expected_cost_to_serve": cost * spread,
            "expected_referrals": expected_referrals,
            "expected_referral_value": referral_value,
            "historical_value": features["historical_value"].to_numpy(dtype=float),
            "historical_cost_to_serve": features["hist_cost_to_serve"].to_numpy(dtype=float),
            "historical_revenue": features["hist_revenue"].to_numpy(dtype=float),
        })
        if predicted[0] is not None:  # at the model's horizon, so other horizons can reuse them
            out["boosted_expected_margin"] = predicted[0]
        if predicted[1] is not None:
            out["boosted_expected_net_value"] = predicted[1]
            out["boosted_expected_cost_to_serve"] = base_cost
        if activity_columns is not None:
            out = pd.concat([out, activity_columns.set_axis(out.index)], axis=1)
        out["customer_value"] = out["discounted_expected_margin"] - out["discounted_expected_cost_to_serve"] + referral_value
        return out

    def _priced_activities(self, volumes: pd.DataFrame, cost: np.ndarray, horizon_days: int,
                           totals: PortfolioTotals | None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Volumes and their costs over ``horizon_days``, levelled (and reconciled) with the total
        model. The portfolio sums come from these rows, or from ``totals`` (the whole population's,
        at the model's horizon) when the rows are one batch of it."""
        s = self.settings
        volumes = volumes * (horizon_days / s.horizon_days)
        portfolio = None if totals is None else totals.scaled(horizon_days / s.horizon_days)
        priced = price(volumes, s.costs, horizon_days, None if portfolio is None else portfolio.pool_units)
        if self.cost_model is None:
            return volumes, priced
        if portfolio is None:
            volumes, priced = level_with_total(volumes, priced, float(cost.sum()), s)
            mix = None
        else:
            direct = portfolio.direct_costs(s)
            pools = allocated_pools(s.costs, horizon_days, portfolio.pool_units)
            volumes, priced = level_with_total(volumes, priced, portfolio.cost, s, float(direct.sum()), pools)
            factor = level_factor(priced, portfolio.cost, float(direct.sum()), pools)
            mix = direct * (1.0 if factor is None else factor)
        if self.cost_forecast != "activities":
            target = cost if self.cost_forecast == "total" else combined_forecast(total_cost(priced), cost)
            volumes, priced = reconcile_with_total(volumes, priced, target, s, mix)
        return volumes, priced

    def model_input(self, features: pd.DataFrame, rfm: pd.DataFrame | None = None, window_days: int | None = None) -> pd.DataFrame:
        """Features plus BG/NBD outputs over ``window_days`` (default: the horizon): what the
        boosted models were trained on, e.g. for their SHAP explanations."""
        if rfm is None:
            rfm = rfm_of(features)
        bg = purchase_features(rfm, window_days or self.settings.horizon_days, self.settings, self.purchase_model)
        return features.merge(bg, left_on="customer_id", right_index=True, how="left")

    def bgnbd_gg_revenue(self, features: pd.DataFrame) -> np.ndarray:
        """BG/NBD × Gamma-Gamma expected revenue over the horizon alone: the backtest baseline."""
        s = self.settings
        revenue = predict_revenue(self.purchase_model, self.spend_model, rfm_of(features),
                                  in_units(s.horizon_days, s.time_unit), discount_rate=s.discount_rate,
                                  time_unit=s.time_unit)
        return revenue["expected_revenue"].to_numpy(dtype=float)

    def total_value_by_horizon(self, features: pd.DataFrame, horizons: Any,
                               boosted: BoostedPredictions | None = None,
                               totals: PortfolioTotals | None = None) -> pd.Series:
        """Total customer value at each horizon (the sensitivity table). The boosted models run at
        most once; pass ``boosted`` in feature order (e.g. ``BoostedPredictions.from_scores`` of
        the score rows) to skip them. For one batch of the population pass the population's
        ``totals`` (see :meth:`predict`): the batches' results then add up to the whole's."""
        if boosted is None:
            boosted = self.boosted(features)
        by_horizon = pd.Series({int(h): float(self._parts(features, int(h), boosted, totals)["customer_value"].sum())
                                for h in horizons}, dtype=float)
        by_horizon.index.name = "horizon_days"
        return by_horizon

    def parts_difference(self, features: pd.DataFrame, boosted: BoostedPredictions | None = None) -> np.ndarray:
        """Margin − cost-to-serve over the model's horizon as the parts forecast them (the margin
        model and the cost forecast in use, no net value model): what the top tier is judged on
        (:func:`~customer_value.boosted.net_value.with_parts`)."""
        rows = self._parts(features, self.settings.horizon_days, boosted, value_forecast="parts")
        margin = rows["boosted_expected_margin"] if "boosted_expected_margin" in rows else rows["expected_margin"]
        return margin.to_numpy(dtype=float) - rows["expected_cost_to_serve"].to_numpy(dtype=float)

    def boosted(self, features: pd.DataFrame) -> BoostedPredictions:
        """The gradient-boosted predictions of ``features``' rows (the expensive, row-wise part of
        scoring; pass 1 of batch scoring, see :meth:`predict`)."""
        return self._boosted(features, rfm_of(features))

    @property
    def _runs_net_model(self) -> bool:
        """The net value model is kept for comparison but run only when it is the forecast."""
        return self.net_model is not None and self.value_forecast == "net"

    def scoring_models(self) -> dict[str, Any]:
        """The boosted models scoring runs, by name (the ones this model has)."""
        models = {"churn": self.churn_model, "cost": self.cost_model, "margin": self.margin_model,
                  "drain": self.drain_model, "activities": self.activity_model,
                  "net_value": self.net_model if self._runs_net_model else None}
        return {name: m for name, m in models.items() if m is not None}

    def tree_counts(self) -> dict[str, int]:
        """Trees each boosted model runs per scored row: what the model stage's time follows."""
        return {name: int(m.n_trees_) for name, m in self.scoring_models().items()}

    def portfolio_totals(self, boosted: BoostedPredictions) -> PortfolioTotals:
        """The additive sums of these rows that scoring reads across customers (see
        :mod:`customer_value.valuation.portfolio`); add them over the batches of a population."""
        return PortfolioTotals.of(boosted.expected_cost_to_serve, boosted.activity_volumes, self.settings)

    def predict(self, features: pd.DataFrame, as_of: Any, model_uri: str = "", horizon_days: int | None = None,
                boosted: BoostedPredictions | None = None, totals: PortfolioTotals | None = None) -> pd.DataFrame:
        """Score rows (contract section 5 columns first, then the components) in feature order.

        ``features`` are the scored population, or one batch of it: then ``totals`` are the whole
        population's :meth:`portfolio_totals` (summed over the batches' :meth:`boosted`), and
        ``boosted`` may pass this batch's predictions from that first pass so the models do not run
        twice. The batches' rows then equal the whole frame's."""
        horizon = horizon_days or self.settings.horizon_days
        if boosted is None:
            boosted = self.boosted(features)
        parts = self._parts(features, horizon, boosted, totals)
        parts["as_of"] = pd.Timestamp(as_of).date()
        scale = horizon / self.settings.horizon_days  # cut points learned over the model's horizon
        parts["value_segment"] = assign_segments(parts["customer_value"].to_numpy(),
                                                 tuple(c * scale for c in self.segment_cuts_))
        if self.interval_model is not None and horizon == self.settings.horizon_days:  # calibrated for H only
            bounds = self.interval_model.predict(predicted_outcomes(parts), parts)
            parts = pd.concat([parts, bounds.set_axis(parts.index)], axis=1)
            parts["customer_value_p10"], parts["customer_value_p90"] = customer_value_bounds(
                parts, bounds, uniform_discount_factor(horizon, self.settings.discount_rate))
        if boosted.activity_volumes is not None:
            pools = [(p.name, p.driver) for p in self.settings.costs.indirect_pools]
            parts["cost_segment"] = assign_cost_segments(parts, cost_groups(pools), self.light_cost_cut_ * scale)
            parts["top_cost_drivers"] = top_cost_drivers(parts).to_numpy()
        if boosted.drain_probability is not None:
            parts["drain_probability"] = boosted.drain_probability
            parts["drain_flag"] = self.drain_model.flag(features, boosted.drain_probability)
        else:
            parts["drain_flag"] = parts["customer_value"].to_numpy() < 0
        parts["model_uri"] = model_uri
        ordered = [c for c in SCORE_COLUMNS if c in parts.columns]
        rest = [c for c in parts.columns if c not in ordered]
        out = parts[ordered + rest]
        bad = out.select_dtypes("number").columns[~np.isfinite(out.select_dtypes("number")).all()]
        if len(bad):
            raise FloatingPointError(f"non-finite values in score columns {list(bad)}")
        out.attrs["customer_value"] = self.scoring_metadata(horizon)
        return out

    def cashflows(self, features: pd.DataFrame, scores: pd.DataFrame, as_of: Any, tilted: bool = True) -> pd.DataFrame:
        """Monthly cash flows of score rows (in feature order): see :mod:`customer_value.valuation.cashflows`.
        ``tilted=False`` spreads by the purchases alone, ignoring the monthly profile (what it is learned from)."""
        s = self.settings
        return monthly_cashflows(scores, self.purchase_model, rfm_of(features), as_of, s.discount_rate, s.time_unit,
                                 profile=self.monthly_profile if tilted else None)

    def scoring_metadata(self, horizon_days: int) -> dict[str, Any]:
        """What a score file needs to be repriced without the model (kept in its Parquet metadata):
        the horizon, discounting, cost rates and pools, and the segment cut points."""
        s = self.settings
        scale = horizon_days / s.horizon_days
        return {
            "horizon_days": int(horizon_days),
            "discount_rate": float(s.discount_rate),
            "costs": s.costs.model_dump(mode="json"),
            "segment_cuts": [float(c) * scale for c in self.segment_cuts_],
            "light_cost_cut": float(getattr(self, "light_cost_cut_", 0.0)) * scale,
            "cost_forecast": self.cost_forecast if self.activity_model is not None else None,
        }

    # -- persistence --------------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """JSON for everything small, LightGBM's own text format for the boosters."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {
            "settings": self.settings.model_dump(mode="json"),
            "churn_adjustment": self.churn_adjustment,
            "skipped": self.skipped_,
            "margin_ratio_prior": self.margin_ratio_prior_,
            "margin_prior_weight": self.margin_prior_weight_,
            "referral_rate_prior": self.referral_model_.population_rate_,
            "referred_customer_value": self.referral_model_.referred_customer_value_,
            "referred_customer_value_source": self.referral_model_.referred_customer_value_source_,
            "referral_model": self.referral_model_.to_dict(),
            "segment_cuts": list(self.segment_cuts_),
            "purchase_model": self.purchase_model.to_dict(),
            "spend_model": self.spend_model.to_dict(),
            "churn_model": self.churn_model.to_dict() if self.churn_model is not None else None,
            "cost_model": self.cost_model.to_dict() if self.cost_model is not None else None,
            "margin_model": self.margin_model.to_dict() if self.margin_model is not None else None,
            "drain_model": self.drain_model.to_dict() if self.drain_model is not None else None,
            "activity_model": self.activity_model.to_dict() if self.activity_model is not None else None,
            "cost_forecast": self.cost_forecast,
            "light_cost_cut": self.light_cost_cut_,
            "interval_model": self.interval_model.to_dict() if self.interval_model is not None else None,
            "net_model": self.net_model.to_dict() if self.net_model is not None else None,
            "value_forecast": self.value_forecast,
            "net_weight": self.net_weight,
            "net_top_threshold": self.net_top_threshold,
            "net_money": self.net_money_.to_dict() if self.net_money_ is not None else None,
            "monthly_profile": self.monthly_profile.to_dict() if self.monthly_profile is not None else None,
        }
        (directory / "value_model.json").write_text(json.dumps(state, indent=1, default=_json_default))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "ValueModel":
        state = json.loads((Path(directory) / "value_model.json").read_text())
        model = cls(
            Settings.model_validate(state["settings"]),
            PurchaseModel.from_dict(state["purchase_model"]),
            SpendModel.from_dict(state["spend_model"]),
            ChurnModel.from_dict(state["churn_model"]) if state["churn_model"] else None,
            CostToServeModel.from_dict(state["cost_model"]) if state["cost_model"] else None,
            MarginModel.from_dict(state["margin_model"]) if state.get("margin_model") else None,
            churn_adjustment=state["churn_adjustment"],
            skipped=state["skipped"],
            drain_model=DrainModel.from_dict(state["drain_model"]) if state.get("drain_model") else None,
            activity_model=ActivityVolumeModel.from_dict(state["activity_model"]) if state.get("activity_model") else None,
            cost_forecast=state.get("cost_forecast", "activities"),
            interval_model=IntervalModel.from_dict(state["interval_model"]) if state.get("interval_model") else None,
            net_model=NetValueModel.from_dict(state["net_model"]) if state.get("net_model") else None,
            value_forecast=state.get("value_forecast", "parts"),
            net_weight=float(state.get("net_weight", 1.0)),
            net_top_threshold=state.get("net_top_threshold"),
            monthly_profile=MonthlyProfile.from_dict(state["monthly_profile"]) if state.get("monthly_profile") else None,
        )
        model.skipped_ = state["skipped"]
        model.margin_ratio_prior_ = state["margin_ratio_prior"]
        model.margin_prior_weight_ = state["margin_prior_weight"]
        model.referral_model_ = (ReferralModel.from_dict(state["referral_model"]) if state.get("referral_model") else
                                 ReferralModel.from_legacy(state["referral_rate_prior"], state["referred_customer_value"],
                                                           state["referred_customer_value_source"]))
        model.referral_rate_prior_ = model.referral_model_.population_rate_
        model.referred_customer_value_ = model.referral_model_.referred_customer_value_
        model.referred_customer_value_interval_ = model.referral_model_.referred_customer_value_interval_
        model.referred_customer_value_source_ = model.referral_model_.referred_customer_value_source_
        model.segment_cuts_ = tuple(state["segment_cuts"])
        model.light_cost_cut_ = float(state.get("light_cost_cut", 0.0))
        model.net_money_ = QuantileMap.from_dict(state["net_money"]) if state.get("net_money") else None
        return model


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")
