"""What if a rate, a pool, a plan's price or the support mix changed? Reprice a score file.

A score file carries every activity's forecast volume (``expected_volume_<activity>``) and, in its
Parquet metadata, the rates, pools, horizon, discount rate and segment cut points it was priced
with (:meth:`~customer_value.valuation.value.ValueModel.scoring_metadata`). A
:class:`~customer_value.config.WhatIf` changes some of them; :func:`reprice` recomputes exactly
the columns the change touches, with the same functions the scoring used, and leaves every other
column as it was, so an empty change reproduces the file bit for bit and doubling one rate changes
exactly that activity's cost (and the totals that add it up). No model is loaded, nothing refits.

- **rates** reprice a direct activity: ``expected_cost_<a> = new rate × expected_volume_<a>``;
- **pools** reallocate an indirect pool's new amount over the same driver units;
- **shift** moves a share of one support channel's minutes to another channel;
- **fees** charged per unit of an activity are extra revenue and margin (a late fee, an invoice fee);
- **plans** raise (or cut) the expected margin of a plan's customers by a share; a price change
  is revenue and margin at once.

Totals follow: ``expected_cost_to_serve`` (the sum of the activities), the discounted margin and
cost (spread evenly over the horizon, as in the scoring), ``customer_value`` and the intervals
(shifted by the change), ``value_segment`` and ``cost_segment``. Churn, drain probabilities and
referrals are the model's and do not move: a what-if is a pricing question, not a behaviour model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from customer_value.config import CostRates, WhatIf
from customer_value.errors import ConfigError, InputError
from customer_value.features.costing import DIRECT_ACTIVITIES, rate_of
from customer_value.units import uniform_discount_factor
from customer_value.valuation.activity_costs import (
    cost_column,
    expected_cost_columns_of,
    price,
    top_cost_drivers,
    total_cost,
    volume_column,
)
from customer_value.valuation.segments import assign_cost_segments, assign_segments, cost_groups

METADATA_KEY = "customer_value"
FEE_VOLUMES = {"escalations": "escalations", "orders": "orders", "invoices": "invoices", "late_payments": "late_payments"}
"""The activity whose volume a per-unit fee is charged on."""
SUMMARY_GROUPS = ("plan", "value_segment", "cost_segment", "acquisition_channel")


def scoring_metadata(scores: pd.DataFrame) -> dict[str, Any]:
    """What the scoring stored in the file's metadata; a clear error for a file without it."""
    meta = scores.attrs.get(METADATA_KEY)
    volumes = [c for c in scores.columns if c.startswith("expected_volume_")]
    if not meta or not volumes:
        raise InputError("the score file has no activity volumes or pricing metadata: score it again with a model "
                         "trained by this version (it forecasts each activity's volume)")
    return meta


def reprice(scores: pd.DataFrame, changes: WhatIf) -> pd.DataFrame:
    """New score rows under ``changes`` (see the module docstring); ``scores`` is not modified."""
    meta = scoring_metadata(scores)
    out = scores.copy(deep=False)  # copy-on-write: the columns set below never reach ``scores``
    if changes.is_empty:
        return out
    horizon = float(meta["horizon_days"])
    spread = uniform_discount_factor(horizon, float(meta["discount_rate"]))
    before = CostRates.model_validate(meta["costs"])
    _check_known(scores, changes, before)
    after = _changed_rates(before, changes)

    volumes = scores[[c for c in scores.columns if c.startswith("expected_volume_")]].copy()
    moved: set[str] = set()
    for shift in changes.shift:
        src, dst = volume_column(shift.source), volume_column(shift.target)
        amount = volumes[src].to_numpy(dtype=float) * shift.share
        volumes[src] = volumes[src].to_numpy(dtype=float) - amount
        volumes[dst] = volumes[dst].to_numpy(dtype=float) + amount
        moved |= {shift.source, shift.target}
    out[volumes.columns] = volumes

    repriced = price(volumes, after, horizon)
    touched = [a.name for a in DIRECT_ACTIVITIES if a.name in moved or rate_of(a, after) != rate_of(a, before)]
    touched += [f"pool_{p.name}" for p, q in zip(after.indirect_pools, before.indirect_pools)
                if p.annual_amount != q.annual_amount]
    cost_changed = bool(touched)
    for name in touched:
        out[cost_column(name)] = repriced[cost_column(name)].to_numpy()
    if cost_changed:
        cost = total_cost(out[expected_cost_columns_of(out)])
        delta_cost = cost - scores["expected_cost_to_serve"].to_numpy(dtype=float)
        out["expected_cost_to_serve"] = cost
        out["discounted_expected_cost_to_serve"] = cost * spread
        _shift(out, "expected_cost_to_serve", delta_cost)

    extra = _extra_margin(scores, changes, spread)
    if extra is not None:
        margin, discounted = extra
        out["expected_margin"] = scores["expected_margin"].to_numpy(dtype=float) + margin
        out["discounted_expected_margin"] = scores["discounted_expected_margin"].to_numpy(dtype=float) + discounted
        out["expected_revenue"] = scores["expected_revenue"].to_numpy(dtype=float) + margin
        if "discounted_expected_revenue" in out:
            out["discounted_expected_revenue"] = scores["discounted_expected_revenue"].to_numpy(dtype=float) + discounted
        _shift(out, "expected_revenue", margin)
        _shift(out, "expected_margin", margin)

    if cost_changed or extra is not None:
        out["customer_value"] = (out["discounted_expected_margin"] - out["discounted_expected_cost_to_serve"]
                                 + out["expected_referral_value"])
        delta_value = out["customer_value"].to_numpy(dtype=float) - scores["customer_value"].to_numpy(dtype=float)
        _shift(out, "customer_value", delta_value)
        net_delta = ((out["expected_margin"] - out["expected_cost_to_serve"])
                     - (scores["expected_margin"] - scores["expected_cost_to_serve"])).to_numpy(dtype=float)
        _shift(out, "net_value", net_delta)
        out["value_segment"] = assign_segments(out["customer_value"].to_numpy(), tuple(meta["segment_cuts"]))
    if cost_changed:
        pools = [(p.name, p.driver) for p in after.indirect_pools]
        out["cost_segment"] = assign_cost_segments(out, cost_groups(pools), float(meta["light_cost_cut"]))
        if "top_cost_drivers" in out:
            out["top_cost_drivers"] = top_cost_drivers(out[expected_cost_columns_of(out)]).to_numpy()
    out.attrs[METADATA_KEY] = {**meta, "costs": after.model_dump(mode="json")}
    return out


def _changed_rates(before: CostRates, changes: WhatIf) -> CostRates:
    data = before.model_dump()
    for key, value in changes.rates.items():
        data[key] = {**data[key], **value} if key == "minute_rate" and isinstance(value, dict) else value
    pools = {p["name"]: p for p in data["indirect_pools"]}
    for name, amount in changes.pools.items():
        pools[name] = {**pools[name], "annual_amount": amount}
    data["indirect_pools"] = list(pools.values())
    try:
        return CostRates.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"'{'.'.join(map(str, e['loc']))}': {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid what-if rates: {problems}") from exc


def _check_known(scores: pd.DataFrame, changes: WhatIf, before: CostRates) -> None:
    known_pools = [p.name for p in before.indirect_pools]
    unknown = sorted(set(changes.pools) - set(known_pools))
    if unknown:
        raise InputError(f"what-if names unknown pool(s) {unknown}; the score file was priced with {known_pools or 'none'}")
    if changes.plans:
        if "plan" not in scores:
            raise InputError("what-if changes plans, but the score file has no 'plan' column")
        plans = sorted(str(p) for p in scores["plan"].dropna().unique())
        unknown = sorted(set(changes.plans) - set(plans))
        if unknown:
            raise InputError(f"what-if names unknown plan(s) {unknown}; the score file has {plans}")


def _extra_margin(scores: pd.DataFrame, changes: WhatIf, spread: float) -> tuple[np.ndarray, np.ndarray] | None:
    """(extra margin, its discounted value, fees spread evenly like the cost) from plan uplifts and
    fees; None when neither is set."""
    if not changes.plans and not changes.fees:
        return None
    margin = np.zeros(len(scores))
    discounted = np.zeros(len(scores))
    if changes.plans:
        uplift = scores["plan"].astype(object).map(changes.plans).fillna(0.0).to_numpy(dtype=float)
        margin += scores["expected_margin"].to_numpy(dtype=float) * uplift
        discounted += scores["discounted_expected_margin"].to_numpy(dtype=float) * uplift
    for activity, fee in changes.fees.items():
        income = scores[volume_column(FEE_VOLUMES[activity])].to_numpy(dtype=float) * fee
        margin += income
        discounted += income * spread
    return margin, discounted


def _shift(out: pd.DataFrame, column: str, delta: np.ndarray) -> None:
    """Move a figure's p10/p90 with the change of its expectation (the same distribution, repriced)."""
    for bound in (f"{column}_p10", f"{column}_p90"):
        if bound in out:
            out[bound] = out[bound].to_numpy(dtype=float) + delta


@dataclass
class WhatIfSummary:
    """What changed: the totals, the change per group and the customers who cross zero."""

    totals: pd.DataFrame
    by_group: dict[str, pd.DataFrame]
    crossed: pd.DataFrame

    @property
    def to_positive(self) -> int:
        return int((self.crossed["direction"] == "negative to positive").sum())

    @property
    def to_negative(self) -> int:
        return int((self.crossed["direction"] == "positive to negative").sum())


def summarise(before: pd.DataFrame, after: pd.DataFrame) -> WhatIfSummary:
    """Totals before and after, value change per plan, value segment (before), cost segment and
    channel, and the customers whose value changes sign."""
    figures = ["expected_revenue", "expected_margin", "expected_cost_to_serve", "customer_value"]
    totals = pd.DataFrame({
        "before": [float(before[c].sum()) for c in figures],
        "after": [float(after[c].sum()) for c in figures],
    }, index=figures)
    totals["change"] = totals["after"] - totals["before"]
    change = after["customer_value"].to_numpy(dtype=float) - before["customer_value"].to_numpy(dtype=float)
    frame = before.assign(value_after=after["customer_value"].to_numpy(), value_change=change)
    by_group = {}
    for group in SUMMARY_GROUPS:
        if group in frame and not frame[group].isna().all():
            by_group[group] = (frame.groupby(group, dropna=False, observed=True)
                               .agg(customers=("customer_id", "size"), value_before=("customer_value", "sum"),
                                    value_after=("value_after", "sum"), value_change=("value_change", "sum"))
                               .sort_values("value_change", kind="stable"))
    was, now = before["customer_value"].to_numpy() < 0, after["customer_value"].to_numpy() < 0
    crossed = frame.loc[was != now, ["customer_id", "customer_value", "value_after"]].rename(
        columns={"customer_value": "value_before"})
    crossed["direction"] = np.where(was[was != now], "negative to positive", "positive to negative")
    return WhatIfSummary(totals, by_group, crossed.reset_index(drop=True))
