"""Calibration and holdout periods for checking a purchase model against what happened next.

lifetimes' ``calibration_and_holdout_data`` fails on pandas 3, so the split is owned here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from customer_value.units import unit_days


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
    unit = unit_days(time_unit)
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
