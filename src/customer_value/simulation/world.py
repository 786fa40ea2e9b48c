"""A simulated customer world with known ground truth, shaped exactly like the data contract.

Why simulate: real exports never tell us what a customer was *going* to do. Here every
customer carries latent traits and a latent state, so we can (a) test that the pipeline recovers
what we put in, (b) measure how far each model is from the best achievable prediction (the
"oracle", computed from the latent state), and (c) scale the data to millions of customers to
benchmark the pipeline. The process is built so that the questions the toolkit asks are worth
asking: costs matter (some good-revenue customers cost more to serve than they earn), churn is
foreshadowed by engagement, support and payment signals (so a model using them beats "no purchase
in the last 90 days"), and cost-to-serve is predictable from past behaviour (persistent traits).

Generative process
------------------
Time advances in weekly steps over *all* customers at once (numpy arrays, no per-customer loop).
The weekly grid is anchored at ``truth_as_of`` so that the latent state at that date is a step
boundary; the first and last steps may be partial, and every rate is scaled by the exposed
fraction of its week. Events inside a step are placed uniformly at random within the customer's
exposed part of the week, with one-second resolution.

Customers and traits (drawn once, at sign-up):

- **Sign-up** times lie between ``start`` and ``truth_as_of + signup_tail_days`` with a linearly
  growing density (a growing business), so some customers sign up after ``truth_as_of``.
  Customer ids (``C0000001``...) follow sign-up order. Plan (basic / pro / enterprise),
  acquisition channel and region are categorical draws.
- **Purchase rate** ``lambda`` (per week) ~ Gamma(shape ``purchase_shape``) with a plan-dependent
  mean: the BG/NBD / Pareto-NBD heterogeneity. While alive, purchases in a week are
  Poisson(``lambda * exp(purchase_health * (h - h_base))``), so a customer buys a little less
  when its health is below its own baseline. A new customer places a first order at sign-up with
  probability ``first_order_prob``.
- **Spend per order** follows Gamma-Gamma: order value ~ Gamma(``spend_p``, rate ``nu``) with
  ``nu`` ~ Gamma(``spend_q``, ...) scaled so the plan's mean spend is ``spend_mean``.
  ``gross_margin = amount * margin_rate`` with a plan-dependent customer margin rate.
  Each order is refunded later (1-30 days) with a small probability (higher for difficult
  customers); a refund is a negative transaction, fully or partly reversing the order.
- **Health** ``h`` is the latent state that ties everything together. It starts near a
  customer-specific baseline ``h_base`` (referred customers start healthier), drifts as a slowly
  mean-reverting random walk (an Ornstein-Uhlenbeck process: ``reversion``, ``volatility``) and
  is pushed down by bad experiences: tickets with low satisfaction, escalations, tickets left
  unresolved for more than a week, refunds, late and unpaid invoices and failed payment attempts.
  A very satisfied ticket nudges it up.
- **Dropout**: each week an alive customer leaves with probability
  ``sigmoid(dropout_intercept - dropout_slope * h)`` (times the exposed fraction of a partial
  week), so falling health raises the hazard. Dead
  customers never come back; they stop buying, logging in and filing tickets, but still open the
  odd marketing e-mail.
- **Engagement** while alive: logins, feature use, e-mail opens and clicks are Poisson with
  intensities proportional to a Gamma-distributed engagement propensity and to ``exp(c * h)``,
  so engagement fades *before* a customer leaves. ``referral`` events are invitations sent by a
  customer (advocacy trait times health); each referred sign-up has one at its referrer shortly
  before the sign-up, and its ``referred_by`` points to that earlier customer.
- **Support**: tickets per week are Poisson with a heavy-tailed Gamma rate; a minority of
  *difficult* customers file several times more tickets, mostly by phone, that take longer,
  escalate more and end less satisfied. Satisfaction (1..5) is answered for only part of the
  tickets; some tickets are never resolved.
- **Payment**: card payers pay at checkout. Invoice payers (mostly enterprise) get one invoice per
  order, due after ``due_days``; a persistent reliability trait and current health drive late
  payment, failed payment attempts and invoices that are never paid.

The data "export" happens at ``end``: anything later (a payment, a resolution, a refund) is not
yet known and appears as null / is absent.

Ground truth (``SimulatedWorld.truth``)
---------------------------------------
One row per customer with ``signup_at < truth_as_of``: the latent state and traits at that
date, and oracle predictions over ``[as_of, as_of + horizon_days)`` made from the latent state.
They come from a vectorised Monte Carlo of the future that runs the *same* weekly dynamics
from the state at ``as_of`` (``oracle_replicates`` paths per alive customer), Rao-Blackwellised:
per path we accumulate expected counts (rates times exposure) rather than drawn counts, and the
churn probability is ``mean(exp(-expected purchases in the churn window))``. Cost-to-serve uses
the contract formula with ``settings.costs`` but no indirect pools. Two small approximations:
future orders' invoices/refunds feed back into health within the churn window (ignored by the
exp formula), and refunds are counted as an expected fraction of future revenue rather than by
date. ``oracle_p_alive`` is the latent alive flag itself (the oracle knows it).

``ceiling_churn_probability`` is the churn probability of a weaker oracle that knows everything
*but* the purchase rate and infers the rate from the customer's purchase history (a conjugate
Gamma posterior; see ``_churn_without_rate``). The observable data carry no more information about
the rate than that history, so its ROC AUC bounds what any model of the data can reach: the gap
between it and the oracle is the price of not knowing each customer's true rate. (Approximate
only in that the future health paths averaged over were drawn with the true rate.)

The value ceiling (``ceiling_expected_transactions``, ``_revenue``, ``_margin``,
``_cost_to_serve`` and ``ceiling_net_value`` = margin − cost) is the same weaker oracle's
expectation over the horizon (``_value_without_rate``). Purchases feed back into health (refunds,
late and unpaid invoices and failed payments are shocks), so it re-runs the future with each
path's rate drawn from that posterior, on a random stream of its own (the tables and the other
truth columns are unchanged by it): exact up to Monte Carlo noise.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import special

from customer_value.config import TICKET_CHANNELS, CostRates, Settings
from customer_value.data.tables import TABLE_COLUMNS, Tables
from customer_value.data.writing import write_parquet, write_tables

DAY = 86_400
WEEK = 7 * DAY
EVENT_TYPES: tuple[str, ...] = ("login", "feature_use", "email_open", "email_click", "referral")
_LOGIN, _FEATURE, _OPEN, _CLICK, _REFERRAL = range(5)


@dataclass(frozen=True)
class WorldParams:
    """The generative parameters (rates are per week; per-plan tuples follow ``plans``)."""

    signup_tail_days: int = 184
    signup_growth: float = 2.0  # sign-up density at the end of the sign-up period / at start
    plans: tuple[str, ...] = ("basic", "pro", "enterprise")
    plan_probs: tuple[float, ...] = (0.62, 0.29, 0.09)
    channels: tuple[str, ...] = ("organic", "paid_search", "social", "partner", "referral")
    channel_probs: tuple[float, ...] = (0.38, 0.25, 0.15, 0.10, 0.12)
    regions: tuple[str, ...] = ("NA", "EMEA", "APAC", "LATAM")
    region_probs: tuple[float, ...] = (0.42, 0.33, 0.17, 0.08)
    invoice_payer_prob: tuple[float, ...] = (0.04, 0.20, 0.75)
    # purchases and spend
    purchase_shape: float = 0.9
    purchase_mean: tuple[float, ...] = (0.09, 0.13, 0.20)
    purchase_health: float = 0.5
    first_order_prob: float = 0.75
    spend_p: float = 4.0
    spend_q: float = 5.0
    spend_mean: tuple[float, ...] = (35.0, 95.0, 380.0)
    margin_rate: tuple[float, ...] = (0.62, 0.55, 0.48)
    margin_sd: float = 0.04
    refund_prob: tuple[float, float] = (0.03, 0.08)  # normal, difficult
    refund_full_prob: float = 0.7
    # health and dropout
    health_mean: float = 0.6
    health_sd: float = 0.7
    health_referred_bonus: float = 0.3
    health_start_sd: float = 0.3
    reversion: float = 0.03
    volatility: float = 0.12
    dropout_intercept: float = -4.5
    dropout_slope: float = 1.5
    # engagement (at health == health_mean, per unit of propensity)
    engagement_shape: float = 2.0
    login_rate: tuple[float, ...] = (0.25, 0.4, 0.6)
    feature_rate: tuple[float, ...] = (0.2, 0.35, 0.5)
    email_open_rate: float = 0.2
    click_prob_mean: float = 0.15
    engagement_health: float = 0.8
    email_health: float = 0.4
    residual_open_rate: float = 0.03
    invite_rate: float = 0.006
    advocacy_shape: float = 0.5
    # support
    ticket_rate: tuple[float, ...] = (0.03, 0.045, 0.08)
    ticket_shape: float = 0.6
    ticket_health: float = 0.25
    difficult_prob: tuple[float, ...] = (0.10, 0.14, 0.20)
    difficult_ticket_mult: float = 7.0
    difficult_purchase_mult: float = 1.8  # demanding customers tend to buy more
    channel_probs_normal: tuple[float, ...] = (0.45, 0.35, 0.12, 0.08)  # email chat phone other
    channel_probs_difficult: tuple[float, ...] = (0.20, 0.20, 0.55, 0.05)
    minutes_median: tuple[float, ...] = (8.0, 12.0, 18.0, 10.0)
    minutes_sigma: float = 0.7
    difficult_minutes_mult: float = 3.0
    escalation_prob: tuple[float, float] = (0.04, 0.30)
    satisfaction_intercept: float = 3.7
    satisfaction_health: float = 0.5
    satisfaction_difficult: float = -0.5
    satisfaction_escalated: float = -0.9
    satisfaction_noise: float = 0.9
    satisfaction_response_prob: float = 0.65
    resolution_median_days: tuple[float, ...] = (1.0, 0.3, 0.1, 2.0)
    resolution_sigma: float = 1.0
    resolution_escalated_mult: float = 4.0
    never_resolved_prob: tuple[float, float] = (0.015, 0.06)
    # invoices
    due_days: int = 30
    reliability_a: float = 5.0
    reliability_b: float = 1.2
    late_health: float = 0.5
    unpaid_intercept: float = -2.0
    unpaid_health: float = 1.0
    late_days_mean: float = 12.0
    # health shocks (subtracted from h)
    shock_bad_ticket: float = 0.15
    shock_escalated: float = 0.08
    shock_unresolved: float = 0.20
    shock_good_ticket: float = -0.05
    shock_refund: float = 0.10
    shock_late: float = 0.12
    shock_unpaid: float = 0.60
    shock_failed_attempt: float = 0.04


@dataclass(frozen=True)
class SimulatedWorld:
    """The contract tables of a simulated world, its ground truth and how it was made."""

    tables: Tables
    truth: pd.DataFrame
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class _Traits:
    """Per-customer latent traits, arrays indexed by customer position (sign-up order)."""

    signup: np.ndarray  # int64 epoch seconds, sorted
    plan: np.ndarray  # int8 index into params.plans
    channel: np.ndarray
    region: np.ndarray
    invoice_payer: np.ndarray  # bool
    purchase_rate: np.ndarray  # per week
    mean_spend: np.ndarray
    margin_rate: np.ndarray
    engagement: np.ndarray
    email_affinity: np.ndarray
    click_prob: np.ndarray
    ticket_rate: np.ndarray  # per week, at h == h_base
    difficult: np.ndarray  # bool
    reliability: np.ndarray
    health_base: np.ndarray
    health_start: np.ndarray
    advocacy: np.ndarray


@dataclass(frozen=True)
class _Orders:
    pos: np.ndarray  # position in the step's customer subset
    refund: np.ndarray
    late: np.ndarray
    unpaid: np.ndarray
    attempts: np.ndarray


@dataclass(frozen=True)
class _Tickets:
    pos: np.ndarray
    channel: np.ndarray
    minutes: np.ndarray
    escalated: np.ndarray
    satisfaction: np.ndarray  # 1..5, the experience (observed only if answered)
    resolve_days: np.ndarray  # inf when never resolved


@dataclass(frozen=True)
class _Step:
    """One week of the latent dynamics for a subset of alive customers."""

    order_rate: np.ndarray  # expected orders this step
    late_prob: np.ndarray  # per invoice issued this step
    ticket_rate: np.ndarray  # expected tickets this step
    n_orders: np.ndarray
    orders: _Orders
    tickets: _Tickets
    health: np.ndarray  # after the step
    dropped: np.ndarray  # bool: leaves at the end of the step


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _to_seconds(day: str) -> int:
    return int(np.datetime64(day, "s").astype(np.int64))


# -- traits --------------------------------------------------------------------------------------


def _signup_times(n: int, p: WorldParams, start_s: int, end_s: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted sign-up seconds with density growing linearly by ``signup_growth`` over the period."""
    g = p.signup_growth - 1.0
    u = rng.random(n)
    x = u if abs(g) < 1e-9 else (-1.0 + np.sqrt(1.0 + g * (2.0 + g) * u)) / g
    return np.sort(start_s + np.floor(x * (end_s - start_s)).astype(np.int64))


def _mean_purchase_rate(p: WorldParams, plan: np.ndarray, difficult: np.ndarray) -> np.ndarray:
    """The mean of a customer's Gamma-distributed purchase rate (per week): plan and difficulty."""
    return np.asarray(p.purchase_mean)[plan] * np.where(difficult, p.difficult_purchase_mult, 1.0)


def _draw_traits(n: int, p: WorldParams, start_s: int, signup_end_s: int, rng: np.random.Generator) -> _Traits:
    plan = rng.choice(len(p.plans), size=n, p=p.plan_probs).astype(np.int8)
    channel = rng.choice(len(p.channels), size=n, p=p.channel_probs).astype(np.int8)
    region = rng.choice(len(p.regions), size=n, p=p.region_probs).astype(np.int8)
    difficult = rng.random(n) < np.asarray(p.difficult_prob)[plan]
    spend_scale = np.asarray(p.spend_mean)[plan] * (p.spend_q - 1.0) / p.spend_p
    nu = rng.gamma(p.spend_q, 1.0, n) / spend_scale
    referred = np.asarray(p.channels)[channel] == "referral"
    health_base = p.health_mean + p.health_referred_bonus * referred + p.health_sd * rng.standard_normal(n)
    ticket_mult = np.where(difficult, p.difficult_ticket_mult, 1.0)
    return _Traits(
        signup=_signup_times(n, p, start_s, signup_end_s, rng),
        plan=plan,
        channel=channel,
        region=region,
        invoice_payer=rng.random(n) < np.asarray(p.invoice_payer_prob)[plan],
        purchase_rate=_mean_purchase_rate(p, plan, difficult) * rng.gamma(p.purchase_shape, 1.0 / p.purchase_shape, n),
        mean_spend=p.spend_p / nu,
        margin_rate=np.clip(np.asarray(p.margin_rate)[plan] + p.margin_sd * rng.standard_normal(n), 0.05, 0.95),
        engagement=rng.gamma(p.engagement_shape, 1.0 / p.engagement_shape, n),
        email_affinity=rng.gamma(2.0, 0.5, n),
        click_prob=rng.beta(2.0, 2.0 * (1.0 - p.click_prob_mean) / p.click_prob_mean, n),
        ticket_rate=np.asarray(p.ticket_rate)[plan] * ticket_mult * rng.gamma(p.ticket_shape, 1.0 / p.ticket_shape, n),
        difficult=difficult,
        reliability=rng.beta(p.reliability_a, p.reliability_b, n),
        health_base=health_base,
        health_start=health_base + p.health_start_sd * rng.standard_normal(n),
        advocacy=rng.gamma(p.advocacy_shape, 1.0 / p.advocacy_shape, n),
    )


# -- the weekly dynamics (shared by the world and the oracle) --------------------------------------


def _late_prob(tr: _Traits, p: WorldParams, idx: np.ndarray, h: np.ndarray) -> np.ndarray:
    """P(an invoice issued now is paid after its due date or never): reliability and health."""
    rel = tr.reliability[idx]
    logit = np.log1p(-rel) - np.log(rel) - p.late_health * (h - tr.health_base[idx])
    return _sigmoid(logit)


def _order_outcomes(tr: _Traits, p: WorldParams, idx: np.ndarray, h: np.ndarray,
                    n_orders: np.ndarray, late_prob: np.ndarray, rng: np.random.Generator) -> _Orders:
    """Refund and (for invoice payers) payment outcome of every order placed this step."""
    pos = np.repeat(np.arange(len(idx), dtype=np.int64), n_orders)
    cust = idx[pos]
    refund = rng.random(len(pos)) < np.asarray(p.refund_prob)[tr.difficult[cust].astype(np.int8)]
    invoiced = tr.invoice_payer[cust]
    late = invoiced & (rng.random(len(pos)) < late_prob[pos])
    unpaid = late & (rng.random(len(pos)) < _sigmoid(p.unpaid_intercept - p.unpaid_health * h[pos]))
    attempt_mean = np.where(late, 1.0 + 2.0 * (1.0 - tr.reliability[cust]), 0.05)
    attempts = np.where(invoiced, rng.poisson(attempt_mean), 0)
    return _Orders(pos=pos, refund=refund, late=late, unpaid=unpaid, attempts=attempts)


def _ticket_outcomes(tr: _Traits, p: WorldParams, idx: np.ndarray, h: np.ndarray,
                     n_tickets: np.ndarray, rng: np.random.Generator) -> _Tickets:
    """Channel, handling time, escalation, satisfaction and resolution of this step's tickets."""
    pos = np.repeat(np.arange(len(idx), dtype=np.int64), n_tickets)
    difficult = tr.difficult[idx[pos]]
    cum = np.cumsum([p.channel_probs_normal, p.channel_probs_difficult], axis=1)[difficult.astype(np.int8)]
    channel = (rng.random(len(pos))[:, None] > cum[:, :-1]).sum(axis=1).astype(np.int8)
    log_median = np.log(np.asarray(p.minutes_median)[channel]) + np.log(p.difficult_minutes_mult) * difficult
    minutes = np.exp(log_median + p.minutes_sigma * rng.standard_normal(len(pos)))
    escalated = rng.random(len(pos)) < np.asarray(p.escalation_prob)[difficult.astype(np.int8)]
    latent = (p.satisfaction_intercept + p.satisfaction_health * h[pos] + p.satisfaction_difficult * difficult
              + p.satisfaction_escalated * escalated - 0.3 * (np.log(minutes) - log_median)
              + p.satisfaction_noise * rng.standard_normal(len(pos)))
    satisfaction = np.clip(np.rint(latent), 1, 5).astype(np.int8)
    res_median = np.asarray(p.resolution_median_days)[channel] * np.where(escalated, p.resolution_escalated_mult, 1.0)
    resolve_days = res_median * np.exp(p.resolution_sigma * rng.standard_normal(len(pos)))
    never = rng.random(len(pos)) < np.asarray(p.never_resolved_prob)[difficult.astype(np.int8)]
    resolve_days = np.where(never, np.inf, resolve_days)
    return _Tickets(pos=pos, channel=channel, minutes=minutes, escalated=escalated,
                    satisfaction=satisfaction, resolve_days=resolve_days)


def _shocks(p: WorldParams, n: int, orders: _Orders, tickets: _Tickets) -> np.ndarray:
    """Total health loss per customer of the subset from this step's orders and tickets."""
    order_shock = (p.shock_refund * orders.refund + p.shock_late * orders.late
                   + p.shock_unpaid * orders.unpaid + p.shock_failed_attempt * orders.attempts)
    ticket_shock = (p.shock_bad_ticket * (tickets.satisfaction <= 2) + p.shock_escalated * tickets.escalated
                    + p.shock_unresolved * (tickets.resolve_days > 7)
                    + p.shock_good_ticket * (tickets.satisfaction == 5))
    return (np.bincount(orders.pos, weights=order_shock, minlength=n)
            + np.bincount(tickets.pos, weights=ticket_shock, minlength=n))


def _step(tr: _Traits, p: WorldParams, idx: np.ndarray, h: np.ndarray, expo: np.ndarray,
          rng: np.random.Generator, extra_orders: np.ndarray | None = None) -> _Step:
    """Advance the alive customers ``idx`` (health ``h``) by one step of ``expo`` weeks."""
    deviation = h - tr.health_base[idx]
    order_rate = tr.purchase_rate[idx] * np.exp(p.purchase_health * deviation) * expo
    ticket_rate = tr.ticket_rate[idx] * np.exp(-p.ticket_health * deviation) * expo
    n_orders = rng.poisson(order_rate)
    if extra_orders is not None:
        n_orders = n_orders + extra_orders
    late_prob = np.zeros(len(idx))
    payers = np.flatnonzero(tr.invoice_payer[idx])
    late_prob[payers] = _late_prob(tr, p, idx[payers], h[payers])
    orders = _order_outcomes(tr, p, idx, h, n_orders, late_prob, rng)
    tickets = _ticket_outcomes(tr, p, idx, h, rng.poisson(ticket_rate), rng)
    hazard = _sigmoid(p.dropout_intercept - p.dropout_slope * h)
    dropped = rng.random(len(idx)) < hazard * expo
    noise = p.volatility * np.sqrt(expo) * rng.standard_normal(len(idx))
    health = h + p.reversion * expo * (tr.health_base[idx] - h) + noise - _shocks(p, len(idx), orders, tickets)
    return _Step(order_rate=order_rate, late_prob=late_prob, ticket_rate=ticket_rate, n_orders=n_orders,
                 orders=orders, tickets=tickets, health=health, dropped=dropped)


# -- the world: step all customers, record events ------------------------------------------------


def _grid(start_s: int, as_of_s: int, end_s: int) -> np.ndarray:
    """Step edges: weekly, anchored at ``as_of``, clipped to ``[start, end]``."""
    k = np.arange(-((as_of_s - start_s) // WEEK), (end_s - as_of_s) // WEEK + 1)
    inner = as_of_s + WEEK * k
    inner = inner[(inner > start_s) & (inner < end_s)]
    return np.concatenate([[start_s], inner, [end_s]]).astype(np.int64)


class _Recorder:
    """Per-step event arrays, concatenated once at the end (cheap appends, one copy)."""

    def __init__(self) -> None:
        self._parts: dict[str, dict[str, list[np.ndarray]]] = {}

    def add(self, table: str, **columns: np.ndarray) -> None:
        parts = self._parts.setdefault(table, {})
        for name, values in columns.items():
            parts.setdefault(name, []).append(values)

    def pop(self, table: str) -> dict[str, np.ndarray]:
        """The table's columns, concatenated; the chunks are released as we go (peak memory)."""
        parts = self._parts.pop(table, {})
        return {name: np.concatenate(parts.pop(name)) for name in list(parts)}


def _uniform_times(lo: np.ndarray, hi: int, rng: np.random.Generator) -> np.ndarray:
    return lo + np.floor(rng.random(len(lo)) * (hi - lo)).astype(np.int64)


def _record_orders(tr: _Traits, p: WorldParams, idx: np.ndarray, lo: np.ndarray, hi: int, end_s: int,
                   first: np.ndarray, st: _Step, rng: np.random.Generator, rec: _Recorder) -> None:
    """Transactions (orders and later refunds) and invoices of this step's orders."""
    o = st.orders
    cust = idx[o.pos]
    times = _uniform_times(lo[o.pos], hi, rng)
    # the first order of a new customer comes within two hours of sign-up (its first slot)
    starts = np.cumsum(st.n_orders) - st.n_orders
    at_signup = starts[first]
    within = np.minimum(7200, hi - lo[first])
    times[at_signup] = lo[first] + np.floor(rng.random(len(at_signup)) * within).astype(np.int64)
    amount = np.round(rng.gamma(p.spend_p, tr.mean_spend[cust] / p.spend_p), 2)
    amount = np.maximum(amount, 0.01)
    rec.add("transactions", cust=cust, time=times, amount=amount)
    _record_refunds(tr, p, cust[o.refund], times[o.refund], amount[o.refund], end_s, rng, rec)
    inv = tr.invoice_payer[cust]
    _record_invoices(p, cust[inv], times[inv], amount[inv], o.late[inv], o.unpaid[inv], o.attempts[inv],
                     end_s, rng, rec)


def _record_refunds(tr: _Traits, p: WorldParams, cust: np.ndarray, times: np.ndarray, amount: np.ndarray,
                    end_s: int, rng: np.random.Generator, rec: _Recorder) -> None:
    """Refunds 1-30 days after their orders, fully or partly; those after the export are unknown."""
    when = times + DAY + np.floor(rng.random(len(cust)) * 29 * DAY).astype(np.int64)
    share = np.where(rng.random(len(cust)) < p.refund_full_prob, 1.0, rng.uniform(0.2, 0.8, len(cust)))
    keep = when < end_s
    rec.add("transactions", cust=cust[keep], time=when[keep], amount=-np.round(amount * share, 2)[keep])


def _record_invoices(p: WorldParams, cust: np.ndarray, issued: np.ndarray, amount: np.ndarray, late: np.ndarray,
                     unpaid: np.ndarray, attempts: np.ndarray, end_s: int, rng: np.random.Generator,
                     rec: _Recorder) -> None:
    """One invoice per order of an invoice payer; payments after the export are unknown (null)."""
    due = issued + p.due_days * DAY
    on_time = issued + np.floor(rng.beta(2.0, 1.3, len(cust)) * p.due_days * DAY).astype(np.int64)
    late_by = 3600 + np.floor(rng.exponential(p.late_days_mean * DAY, len(cust))).astype(np.int64)
    paid = np.where(late, due + late_by, on_time)
    paid = np.where(unpaid | (paid >= end_s), -1, paid)
    rec.add("invoices", cust=cust, issued=issued, due=due, amount=amount, paid=paid, attempts=attempts)


def _record_tickets(idx: np.ndarray, lo: np.ndarray, hi: int, end_s: int, p: WorldParams, st: _Step,
                    rng: np.random.Generator, rec: _Recorder) -> None:
    """Tickets as exported: resolution and satisfaction only when known by ``end``."""
    t = st.tickets
    opened = _uniform_times(lo[t.pos], hi, rng)
    resolved = opened + np.floor(np.minimum(t.resolve_days, 1e5) * DAY).astype(np.int64)
    resolved = np.where(np.isinf(t.resolve_days) | (resolved >= end_s), -1, resolved)
    answered = (resolved >= 0) & (rng.random(len(opened)) < p.satisfaction_response_prob)
    rec.add("support_tickets", cust=idx[t.pos], time=opened, channel=t.channel,
            minutes=np.round(t.minutes, 1), escalated=t.escalated,
            satisfaction=np.where(answered, t.satisfaction, 0).astype(np.int8), resolved=resolved)


def _pack_events(cust: np.ndarray, times: np.ndarray, types: np.ndarray, base_s: int) -> np.ndarray:
    """One int64 per event: customer, seconds since ``base_s`` and type; sorts by customer, time."""
    return ((cust.astype(np.int64) << 32 | (times - base_s)) << 3) | types


def _record_engagement(tr: _Traits, p: WorldParams, idx: np.ndarray, h: np.ndarray, lo: np.ndarray, hi: int,
                       expo: np.ndarray, base_s: int, rng: np.random.Generator, rec: _Recorder) -> None:
    """Logins, feature use, e-mail opens, invitations and clicks of the alive customers ``idx``.

    One Poisson draw of the total per customer, split by type in proportion to the rates (the
    same distribution as independent Poisson draws per type, but cheaper); each open is clicked
    with the customer's click probability, within the hour after the open.
    """
    plan = tr.plan[idx]
    activity = tr.engagement[idx] * np.exp(p.engagement_health * (h - p.health_mean)) * expo
    rates = np.column_stack([
        np.asarray(p.login_rate)[plan] * activity,
        np.asarray(p.feature_rate)[plan] * activity,
        p.email_open_rate * tr.email_affinity[idx] * np.exp(p.email_health * (h - p.health_mean)) * expo,
        p.invite_rate * tr.advocacy[idx] * np.exp(0.5 * (h - p.health_mean)) * expo,
    ])
    cum = np.cumsum(rates, axis=1)
    pos = np.repeat(np.arange(len(idx), dtype=np.int64), rng.poisson(cum[:, -1]))
    u = rng.random(len(pos)) * cum[pos, -1]
    types = np.array([_LOGIN, _FEATURE, _OPEN, _REFERRAL])[(u[:, None] > cum[pos, :-1]).sum(axis=1)]
    times = _uniform_times(lo[pos], hi, rng)
    clicked = (types == _OPEN) & (rng.random(len(pos)) < tr.click_prob[idx[pos]])
    click_times = np.minimum(times[clicked] + np.floor(rng.random(int(clicked.sum())) * 3600).astype(np.int64), hi - 1)
    rec.add("events", key=_pack_events(idx[pos], times, types, base_s))
    rec.add("events", key=_pack_events(idx[pos[clicked]], click_times, np.full(len(click_times), _CLICK), base_s))


def _record_residual_opens(tr: _Traits, p: WorldParams, idx: np.ndarray, lo: np.ndarray, hi: int,
                           expo: np.ndarray, base_s: int, rng: np.random.Generator, rec: _Recorder) -> None:
    """Customers who left still open the odd marketing e-mail."""
    n = rng.poisson(p.residual_open_rate * tr.email_affinity[idx] * expo)
    pos = np.repeat(np.arange(len(idx), dtype=np.int64), n)
    types = np.full(len(pos), _OPEN, dtype=np.int64)
    rec.add("events", key=_pack_events(idx[pos], _uniform_times(lo[pos], hi, rng), types, base_s))


def _assign_referrers(tr: _Traits, p: WorldParams, new: np.ndarray, n_prev: int, alive: np.ndarray,
                      h: np.ndarray, base_s: int, rng: np.random.Generator, referrer: np.ndarray,
                      rec: _Recorder) -> None:
    """Referred sign-ups pick an earlier, alive customer (by advocacy and health) as referrer."""
    referred = new[np.asarray(p.channels)[tr.channel[new]] == "referral"]
    weights = np.where(alive[:n_prev], tr.advocacy[:n_prev] * np.exp(h[:n_prev]), 0.0)
    if len(referred) == 0 or weights.sum() <= 0:
        return
    cum = np.cumsum(weights)
    chosen = np.minimum(np.searchsorted(cum, rng.random(len(referred)) * cum[-1], side="right"), n_prev - 1)
    referrer[referred] = chosen
    sent = tr.signup[referred] - np.floor(rng.random(len(referred)) * 5 * DAY).astype(np.int64)
    sent = np.maximum(sent, tr.signup[chosen] + 1)
    types = np.full(len(chosen), _REFERRAL, dtype=np.int64)
    rec.add("events", key=_pack_events(chosen, sent, types, base_s))


@dataclass(frozen=True)
class _Snapshot:
    """The latent state at ``as_of`` of the customers who signed up before it."""

    n: int
    alive: np.ndarray
    health: np.ndarray
    orders: np.ndarray  # orders the purchase process placed before as_of (not the sign-up orders)
    rate_exposure: np.ndarray  # weeks alive before as_of, weighted by the health multiplier of the rate


def _run_world(tr: _Traits, p: WorldParams, edges: np.ndarray, as_of_s: int,
               rng: np.random.Generator) -> tuple[_Recorder, np.ndarray, _Snapshot]:
    """Step every customer through the weekly grid, recording events and the state at as_of."""
    n = len(tr.signup)
    start_s, end_s = int(edges[0]), int(edges[-1])
    h = tr.health_start.copy()
    alive = np.zeros(n, dtype=bool)
    referrer = np.full(n, -1, dtype=np.int64)
    orders, rate_exposure = np.zeros(n), np.zeros(n)
    rec = _Recorder()
    snapshot = None
    n_now = 0
    for a, b in zip(edges[:-1].tolist(), edges[1:].tolist()):
        n_prev, n_now = n_now, int(np.searchsorted(tr.signup, b, side="left"))
        new = np.arange(n_prev, n_now)
        alive[new] = True
        _assign_referrers(tr, p, new, n_prev, alive, h, start_s, rng, referrer, rec)
        if a == as_of_s:
            snapshot = _Snapshot(n=n_prev, alive=alive[:n_prev].copy(), health=h[:n_prev].copy(),
                                 orders=orders[:n_prev].copy(), rate_exposure=rate_exposure[:n_prev].copy())
        lo_all = np.maximum(tr.signup[:n_now], a)
        idx = np.flatnonzero(alive[:n_now])
        lo = lo_all[idx]
        expo = (b - lo) / WEEK
        first = (idx >= n_prev) & (rng.random(len(idx)) < p.first_order_prob)
        st = _step(tr, p, idx, h[idx], expo, rng, extra_orders=first.astype(np.int64))
        _record_orders(tr, p, idx, lo, b, end_s, np.flatnonzero(first), st, rng, rec)
        orders[idx] += st.n_orders - first
        rate_exposure[idx] += st.order_rate / tr.purchase_rate[idx]
        _record_tickets(idx, lo, b, end_s, p, st, rng, rec)
        _record_engagement(tr, p, idx, h[idx], lo, b, expo, start_s, rng, rec)
        dead = np.flatnonzero(~alive[:n_prev])
        _record_residual_opens(tr, p, dead, lo_all[dead], b, (b - lo_all[dead]) / WEEK, start_s, rng, rec)
        h[idx] = st.health
        alive[idx[st.dropped]] = False
    assert snapshot is not None, "as_of must be a step edge strictly inside (start, end)"
    return rec, referrer, snapshot


# -- canonical tables ----------------------------------------------------------------------------


def _timestamps(seconds: np.ndarray) -> np.ndarray:
    """Epoch seconds to ``datetime64[us]``; negative values mean null (NaT)."""
    out = (seconds.astype(np.int64) * 1_000_000).view("datetime64[us]")
    missing = seconds < 0
    if missing.any():
        out[missing] = np.datetime64("NaT")
    return out


def _labels(labels: pa.Array, codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """A pandas ``str`` array of ``labels[codes]``; negative codes are missing."""
    missing = codes < 0
    indices = pa.array(codes, mask=missing) if missing.any() else pa.array(codes)
    return pd.array(labels.take(indices), dtype="str")


def _ids(prefix: str, n: int) -> pa.Array:
    """``prefix`` + 1-based zero-padded numbers (at least 7 digits), built in Arrow, not Python."""
    width = max(7, len(str(n)))
    numbers = pa.array(np.arange(1, n + 1, dtype=np.int64)).cast(pa.large_string())
    padded = pc.utf8_lpad(numbers, width=width, padding="0")
    text = pa.large_string()
    return pc.binary_join_element_wise(pa.scalar(prefix, text), padded, pa.scalar("", text))


def _vocab(values: tuple[str, ...]) -> pa.Array:
    return pa.array(list(values), type=pa.large_string())


def _customers_table(tr: _Traits, p: WorldParams, ids: pa.Array, referrer: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": _labels(ids, np.arange(len(tr.signup))),
        "signup_at": _timestamps(tr.signup),
        "plan": _labels(_vocab(p.plans), tr.plan),
        "acquisition_channel": _labels(_vocab(p.channels), tr.channel),
        "region": _labels(_vocab(p.regions), tr.region),
        "referred_by": _labels(ids, referrer),
    })


def _transactions_table(tr: _Traits, ids: pa.Array, t: dict[str, np.ndarray]) -> pd.DataFrame:
    order = np.lexsort((t["time"], t["cust"]))
    cust, amount = t["cust"][order], t["amount"][order]
    return pd.DataFrame({
        "transaction_id": _labels(_ids("T", len(order)), np.arange(len(order))),
        "customer_id": _labels(ids, cust),
        "occurred_at": _timestamps(t["time"][order]),
        "amount": amount,
        "gross_margin": np.round(amount * tr.margin_rate[cust], 2),
    })


def _engagement_table(ids: pa.Array, keys: np.ndarray, base_s: int) -> pd.DataFrame:
    """Decode the packed event keys (sorted in place) one column at a time, to bound memory."""
    keys.sort()
    customer_id = _labels(ids, (keys >> 35).astype(np.int32))
    occurred_at = _timestamps(((keys >> 3) & 0xFFFFFFFF) + base_s)
    event_type = _labels(_vocab(EVENT_TYPES), (keys & 7).astype(np.int8))
    return pd.DataFrame({"customer_id": customer_id, "occurred_at": occurred_at, "event_type": event_type})


def _invoices_table(ids: pa.Array, t: dict[str, np.ndarray]) -> pd.DataFrame:
    order = np.lexsort((t["issued"], t["cust"]))
    return pd.DataFrame({
        "invoice_id": _labels(_ids("I", len(order)), np.arange(len(order))),
        "customer_id": _labels(ids, t["cust"][order]),
        "issued_at": _timestamps(t["issued"][order]),
        "due_at": _timestamps(t["due"][order]),
        "amount": t["amount"][order],
        "paid_at": _timestamps(t["paid"][order]),
        "failed_payment_attempts": pd.array(t["attempts"][order], dtype="Int64"),
    })


def _tickets_table(ids: pa.Array, t: dict[str, np.ndarray]) -> pd.DataFrame:
    order = np.lexsort((t["time"], t["cust"]))
    sat = t["satisfaction"][order]
    return pd.DataFrame({
        "ticket_id": _labels(_ids("S", len(order)), np.arange(len(order))),
        "customer_id": _labels(ids, t["cust"][order]),
        "opened_at": _timestamps(t["time"][order]),
        "channel": _labels(_vocab(TICKET_CHANNELS), t["channel"][order]),
        "handle_minutes": t["minutes"][order],
        "escalated": t["escalated"][order].astype(bool),
        "satisfaction": pd.arrays.IntegerArray(sat.astype(np.int64), sat == 0),
        "resolved_at": _timestamps(t["resolved"][order]),
    })


def _empty_columns(table: str) -> dict[str, np.ndarray]:
    names = {"transactions": ("cust", "time", "amount"),
             "invoices": ("cust", "issued", "due", "amount", "paid", "attempts"),
             "support_tickets": ("cust", "time", "channel", "minutes", "escalated", "satisfaction", "resolved"),
             "events": ("key",)}[table]
    return {c: np.zeros(0, dtype=np.float64 if c in ("amount", "minutes") else np.int64) for c in names}


def _build_tables(tr: _Traits, p: WorldParams, rec: _Recorder, referrer: np.ndarray, base_s: int) -> Tables:
    ids = _ids("C", len(tr.signup))

    def columns(name: str) -> dict[str, np.ndarray]:
        return rec.pop(name) or _empty_columns(name)

    tables = Tables(
        customers=_customers_table(tr, p, ids, referrer),
        transactions=_transactions_table(tr, ids, columns("transactions")),
        engagement_events=_engagement_table(ids, columns("events")["key"], base_s),
        invoices=_invoices_table(ids, columns("invoices")),
        support_tickets=_tickets_table(ids, columns("support_tickets")),
    )
    for name, frame in tables.items():
        assert list(frame.columns) == list(TABLE_COLUMNS[name]), name
    return tables


# -- the oracle ----------------------------------------------------------------------------------


def _expected_ticket_cost(tr: _Traits, p: WorldParams, costs: CostRates, idx: np.ndarray) -> np.ndarray:
    """Expected contract cost of one ticket of each customer (closed form over channel and time)."""
    rate = np.array([costs.minute_rate[c] for c in TICKET_CHANNELS])
    mean_minutes = np.asarray(p.minutes_median) * np.exp(p.minutes_sigma**2 / 2)
    per_type = []
    for probs, mult, esc in ((p.channel_probs_normal, 1.0, p.escalation_prob[0]),
                             (p.channel_probs_difficult, p.difficult_minutes_mult, p.escalation_prob[1])):
        per_type.append(float(np.dot(probs, rate * mean_minutes * mult)) + costs.escalation_cost * esc)
    return np.where(tr.difficult[idx], per_type[1], per_type[0])


@dataclass
class _Expectations:
    """Per Monte Carlo cell (customer x replicate) running sums over the future steps."""

    orders: np.ndarray
    late_invoices: np.ndarray
    tickets: np.ndarray
    churn_orders: np.ndarray


def _simulate_future(tr: _Traits, p: WorldParams, cells: np.ndarray, health: np.ndarray, horizon_s: int,
                     churn_s: int, rng: np.random.Generator,
                     purchase_rate: np.ndarray | None = None) -> _Expectations:
    """Run the weekly dynamics forward from as_of and accumulate expected (not drawn) counts.

    ``purchase_rate`` (per cell) replaces the customers' true rates when given.
    """
    acc = _Expectations(*(np.zeros(len(cells)) for _ in range(4)))
    tr = _Traits(**{f.name: getattr(tr, f.name)[cells] for f in fields(tr)})  # contiguous per cell
    if purchase_rate is not None:
        tr = replace(tr, purchase_rate=purchase_rate)
    alive = np.ones(len(cells), dtype=bool)
    h = health.copy()
    late_cut = horizon_s - p.due_days * DAY  # invoices issued after this are not yet due at the end
    for a in range(0, horizon_s, WEEK):
        b = min(a + WEEK, horizon_s)
        live = np.flatnonzero(alive)
        if len(live) == 0:
            break
        st = _step(tr, p, live, h[live], np.full(len(live), (b - a) / WEEK), rng)
        acc.orders[live] += st.order_rate
        acc.tickets[live] += st.ticket_rate
        acc.churn_orders[live] += st.order_rate * np.clip((churn_s - a) / (b - a), 0.0, 1.0)
        acc.late_invoices[live] += st.order_rate * st.late_prob * np.clip((late_cut - a) / (b - a), 0.0, 1.0)
        h[live] = st.health
        alive[live[st.dropped]] = False
    return acc


def oracle_replicates_for(n_customers: int) -> int:
    """Monte Carlo paths per customer: 32 for small worlds, fewer for large ones (at least 4)."""
    return int(np.clip(1_600_000 // max(n_customers, 1), 4, 32))


def _oracle(tr: _Traits, p: WorldParams, snap: _Snapshot, settings: Settings, replicates: int,
            rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Oracle predictions over the horizon from the latent state at as_of (zero for the dead)."""
    live = np.flatnonzero(snap.alive)
    cells = np.tile(live, replicates)
    acc = _simulate_future(tr, p, cells, np.tile(snap.health[live], replicates),
                           settings.horizon_days * DAY, settings.churn_window_days * DAY, rng)

    horizon = _horizon_values(tr, p, settings.costs, snap.n, live, replicates, acc)
    churn = np.ones(snap.n)
    churn[live] = np.exp(-acc.churn_orders).reshape(replicates, len(live)).mean(axis=0)
    ceiling = np.ones(snap.n)
    ceiling[live] = _churn_without_rate(tr, p, snap, live, acc.churn_orders / tr.purchase_rate[cells], replicates)
    return {
        "oracle_p_alive": snap.alive.astype(np.float64),
        **{f"oracle_expected_{name}": values for name, values in horizon.items()},
        "oracle_churn_probability": churn,
        "ceiling_churn_probability": ceiling,
    }


def _horizon_values(tr: _Traits, p: WorldParams, costs: CostRates, n: int, live: np.ndarray, replicates: int,
                    acc: _Expectations) -> dict[str, np.ndarray]:
    """Expected transactions, revenue, margin, cost-to-serve and tickets over the horizon: the
    paths' expected counts averaged per customer and priced (zero for customers not in ``live``)."""

    def mean(x: np.ndarray) -> np.ndarray:
        out = np.zeros(n)
        out[live] = x.reshape(replicates, len(live)).mean(axis=0)
        return out

    idx = np.arange(n)
    refund_share = np.asarray(p.refund_prob)[tr.difficult[idx].astype(np.int8)] * (
        p.refund_full_prob + (1 - p.refund_full_prob) * 0.5)
    orders, tickets, late = mean(acc.orders), mean(acc.tickets), mean(acc.late_invoices)
    revenue = orders * tr.mean_spend[idx] * (1 - refund_share)
    invoice = tr.invoice_payer[idx] * (orders * costs.invoice_cost + late * costs.late_payment_cost)
    cost = (tickets * _expected_ticket_cost(tr, p, costs, idx)
            + orders * (costs.order_cost + costs.payment_fee_rate * tr.mean_spend[idx]) + invoice)
    return {"transactions": orders, "revenue": revenue, "margin": revenue * tr.margin_rate[idx],
            "cost_to_serve": cost, "tickets": tickets}


def _churn_without_rate(tr: _Traits, p: WorldParams, snap: _Snapshot, live: np.ndarray,
                        window_exposure: np.ndarray, replicates: int) -> np.ndarray:
    """P(no purchase in the churn window) for an oracle that knows everything but the purchase rate.

    It knows the alive flag, health and traits, and infers the rate from the purchase history
    exactly: the rate's prior is Gamma(``purchase_shape``, mean of the plan), the history adds
    ``orders`` over ``rate_exposure`` (the Poisson likelihood depends on nothing else), so the
    posterior is Gamma(shape + orders, shape / mean + exposure) and E[exp(-rate * m)] over it is
    ``((b + E) / (b + E + m)) ** (a + n)``, averaged over the Monte Carlo paths' health-weighted
    window exposure ``m``. No model of the observable data (a function of that history plus noise
    independent of the rate) can be better informed, so this is the ceiling for such models.
    """
    shape, rate = _rate_posterior(tr, p, snap, live)
    m = window_exposure.reshape(replicates, len(live))
    return np.exp(shape * (np.log(rate) - np.log(rate + m))).mean(axis=0)


def _rate_posterior(tr: _Traits, p: WorldParams, snap: _Snapshot, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shape and rate of the Gamma posterior of each live customer's purchase rate (per week)."""
    shape = p.purchase_shape + snap.orders[live]
    rate = p.purchase_shape / _mean_purchase_rate(p, tr.plan[live], tr.difficult[live]) + snap.rate_exposure[live]
    return shape, rate


def _value_without_rate(tr: _Traits, p: WorldParams, snap: _Snapshot, settings: Settings, replicates: int,
                        rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Expected value over the horizon for an oracle that knows everything but the purchase rate.

    Like ``_churn_without_rate`` it knows the alive flag, health and every other trait (spend,
    margin rate, ticket rate, payment reliability...) and infers the purchase rate from the
    history: Gamma(``purchase_shape`` + orders, ``purchase_shape`` / plan mean + rate_exposure).
    That posterior is exact given the whole latent history, because the history depends on the
    rate only through the Poisson order counts (order outcomes, health shocks and dropout depend
    on the orders placed and on health, never on the rate itself).

    Given a path, orders, order and payment-fee costs, invoices and late invoices are proportional
    to the rate, tickets are not; but the path itself depends on the rate: each order may bring a
    refund, a late or unpaid invoice or failed payment attempts, which push health down, and health
    drives dropout, the ticket rate and the purchase multiplier. So rather than scaling the
    oracle's paths (drawn with the true rate) by the posterior mean, the future is simulated again
    from the state at as_of with each path's rate drawn from the posterior (stratified: path ``r``
    of ``R`` draws its quantile in ``[r / R, (r + 1) / R)``), on its own random stream. The
    expectations then include the purchases' feedback on health; the only errors are Monte Carlo
    noise and the oracle's own pricing approximation (refunds as an expected share of revenue,
    not by date). Zero for the dead.

    No model of the data knows more about the rate, and none knows the other traits, so its
    ranking of realised value bounds what such models reach (up to noise: Spearman is not a proper
    score). It need not be reachable: it still knows spend, margin rate and ticket rate, which the
    data only hint at, so the gap from it to the oracle is the price of the rate alone.
    """
    live = np.flatnonzero(snap.alive)
    shape, rate = _rate_posterior(tr, p, snap, live)
    quantile = (np.arange(replicates)[:, None] + rng.random((replicates, len(live)))) / replicates
    draws = special.gammaincinv(shape, quantile) / rate  # (replicate, customer), the order of np.tile
    acc = _simulate_future(tr, p, np.tile(live, replicates), np.tile(snap.health[live], replicates),
                           settings.horizon_days * DAY, settings.churn_window_days * DAY, rng,
                           purchase_rate=draws.ravel())
    horizon = _horizon_values(tr, p, settings.costs, snap.n, live, replicates, acc)
    out = {f"ceiling_expected_{name}": horizon[name] for name in ("transactions", "revenue", "margin", "cost_to_serve")}
    out["ceiling_net_value"] = horizon["margin"] - horizon["cost_to_serve"]
    return out


def _truth_table(tr: _Traits, p: WorldParams, snap: _Snapshot, oracle: dict[str, np.ndarray],
                 as_of: str, horizon_days: int) -> pd.DataFrame:
    idx = np.arange(snap.n)
    return pd.DataFrame({
        "customer_id": _labels(_ids("C", len(tr.signup)), idx),
        "as_of": np.full(snap.n, np.datetime64(as_of, "us")),
        "horizon_days": np.full(snap.n, horizon_days, dtype=np.int64),
        "alive": snap.alive,
        **oracle,
        "health": snap.health,
        "health_baseline": tr.health_base[idx],
        "purchase_rate": tr.purchase_rate[idx] / 7.0,
        "mean_spend": tr.mean_spend[idx],
        "margin_rate": tr.margin_rate[idx],
        "ticket_rate": tr.ticket_rate[idx] / 7.0,
        "difficult": tr.difficult[idx],
        "payer_type": _labels(_vocab(("card", "invoice")), tr.invoice_payer[idx].astype(np.int8)),
        "payment_reliability": tr.reliability[idx],
        "engagement_propensity": tr.engagement[idx],
        "advocacy": tr.advocacy[idx],
    })


# -- public API ----------------------------------------------------------------------------------


def simulate_world(
    n_customers: int,
    seed: int,
    settings: Settings | None = None,
    start: str = "2022-01-01",
    end: str = "2025-07-01",
    truth_as_of: str = "2024-07-01",
    *,
    params: WorldParams | None = None,
    oracle_replicates: int | None = None,
) -> SimulatedWorld:
    """Simulate ``n_customers`` from ``start`` to ``end`` (exclusive) and the truth at ``truth_as_of``.

    Pure computation: the same arguments always give the same world. Rates are per week; purchase
    and ticket rates in ``truth`` are per day. See the module docstring for the process.
    """
    settings = settings or Settings()
    p = params or WorldParams()
    start_s, end_s, as_of_s = _to_seconds(start), _to_seconds(end), _to_seconds(truth_as_of)
    if n_customers < 1 or not start_s < as_of_s < end_s:
        raise ValueError(f"need n_customers >= 1 and start < truth_as_of < end, got {n_customers}, "
                         f"{start}, {truth_as_of}, {end}")
    replicates = oracle_replicates or oracle_replicates_for(n_customers)
    signup_end_s = min(as_of_s + p.signup_tail_days * DAY, end_s - DAY)
    # a fourth stream for the value ceiling: the first three (and so tables and oracle) are unchanged
    trait_rng, world_rng, oracle_rng, ceiling_rng = (np.random.default_rng(s)
                                                     for s in np.random.SeedSequence(seed).spawn(4))
    tr = _draw_traits(n_customers, p, start_s, signup_end_s, trait_rng)
    rec, referrer, snap = _run_world(tr, p, _grid(start_s, as_of_s, end_s), as_of_s, world_rng)
    tables = _build_tables(tr, p, rec, referrer, start_s)
    oracle = _oracle(tr, p, snap, settings, replicates, oracle_rng)
    oracle |= _value_without_rate(tr, p, snap, settings, replicates, ceiling_rng)
    truth = _truth_table(tr, p, snap, oracle, truth_as_of, settings.horizon_days)
    meta = {
        "generator": "customer_value.simulation.world",
        "seed": seed,
        "n_customers": n_customers,
        "start": start,
        "end": end,
        "truth_as_of": truth_as_of,
        "signup_end": str(np.datetime64(signup_end_s, "s")),
        "horizon_days": settings.horizon_days,
        "churn_window_days": settings.churn_window_days,
        "oracle_replicates": replicates,
        "costs": settings.costs.model_dump(mode="json"),
        "params": asdict(p),
    }
    return SimulatedWorld(tables=tables, truth=truth, meta=meta)


def write_world(world: SimulatedWorld, out_dir: str | Path) -> dict[str, Path]:
    """Write the five tables, ``truth.parquet`` and ``world.json``; returns name -> path."""
    out_dir = Path(out_dir)
    paths = write_tables(world.tables, out_dir)
    paths["truth"] = write_parquet(world.truth, out_dir / "truth.parquet")
    paths["world"] = out_dir / "world.json"
    paths["world"].write_text(json.dumps(world.meta, indent=2, sort_keys=True) + "\n")
    return paths
