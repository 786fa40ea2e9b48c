"""The CDNOW purchase data (Fader, Hardie & Lee) as contract tables: our real-data golden set.

CDNOW is the data set the BG/NBD and Gamma-Gamma papers were fitted on, so converting it into
the contract's tables lets us check our models against published parameters and predictions.
lifetimes ships two versions of it:

- ``CDNOW_sample.txt``: the 1/10th sample (2,357 customers), columns ``customer id``, a
  re-numbered id (1..2357), date ``YYYYMMDD``, number of CDs, dollar amount;
- ``CDNOW_master.txt``: the full cohort (23,570 customers), a header line, then ``customer id``,
  date, number of CDs, dollar amount.

Conversion rules:

- ``customer_id`` is the original CDNOW id (the first column, e.g. ``"00004"``), so sample and
  master ids agree; the sample's re-numbered id is dropped.
- **Purchases by one customer on the same day are merged into one transaction** (amounts summed)
  at midnight UTC of that day. This is how the published analyses count CDNOW purchases (the
  data only has dates), and it gives the published numbers: in the sample, 2,357 first purchases
  and 2,457 repeat purchases before 1997-10-01. A day whose purchases sum to zero dollars stays a
  transaction with amount 0 (it then counts as revenue 0 and not as a purchase with amount > 0).
- ``transaction_id`` is ``"<customer_id>-<YYYYMMDD>"``: deterministic and unique.
- ``signup_at`` is the customer's first purchase date; plan, channel, region, referral and
  ``gross_margin`` are null, and the optional tables (engagement, invoices, tickets) are empty:
  CDNOW has no such signals.

The files are located through the installed ``lifetimes`` package *without importing it*
(importing lifetimes changes global pandas and warnings settings).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from customer_value.data.tables import TIMESTAMP, Tables
from customer_value.data.writing import write_tables

CdnowKind = Literal["sample", "master"]


def cdnow_path(kind: CdnowKind = "sample") -> Path:
    """Path of lifetimes' ``CDNOW_<kind>.txt``, found without importing lifetimes."""
    if kind not in ("sample", "master"):
        raise ValueError(f"kind must be 'sample' or 'master', got {kind!r}")
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the CDNOW data ships with the 'lifetimes' package, which is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / f"CDNOW_{kind}.txt"
    if not path.exists():
        raise FileNotFoundError(f"CDNOW data not found at {path}")
    return path


def read_cdnow_purchases(kind: CdnowKind = "sample") -> pd.DataFrame:
    """The raw purchase lines: customer_id (str), date (``datetime64[us]``), cds (int), amount."""
    raw = pd.read_csv(cdnow_path(kind), sep=r"\s+", header=None, dtype=str)
    if not raw.iloc[0, 0].isdigit():  # the master file starts with a header line
        raw = raw.iloc[1:]
    date, cds, amount = raw.iloc[:, -3], raw.iloc[:, -2], raw.iloc[:, -1]
    return pd.DataFrame({
        "customer_id": raw.iloc[:, 0].astype("str").to_numpy(),
        "date": pd.to_datetime(date, format="%Y%m%d").astype(TIMESTAMP).to_numpy(),
        "cds": cds.astype(np.int64).to_numpy(),
        "amount": amount.astype(np.float64).to_numpy(),
    })


def _merge_same_day(purchases: pd.DataFrame) -> pd.DataFrame:
    """One transaction per customer and day, amounts summed, sorted by customer then day."""
    daily = purchases.groupby(["customer_id", "date"], as_index=False, sort=True)["amount"].sum()
    transaction_id = daily["customer_id"] + "-" + daily["date"].dt.strftime("%Y%m%d")
    return pd.DataFrame({
        "transaction_id": transaction_id.astype("str"),
        "customer_id": daily["customer_id"].astype("str"),
        "occurred_at": daily["date"].astype(TIMESTAMP),
        "amount": daily["amount"].round(2).astype(np.float64),
        "gross_margin": pd.Series(np.nan, index=daily.index, dtype=np.float64),
    })


def _customers(transactions: pd.DataFrame) -> pd.DataFrame:
    first = transactions.groupby("customer_id", as_index=False, sort=True)["occurred_at"].min()
    missing = pd.Series(np.nan, index=first.index, dtype="str")
    return pd.DataFrame({
        "customer_id": first["customer_id"].astype("str"),
        "signup_at": first["occurred_at"].astype(TIMESTAMP),
        "plan": missing,
        "acquisition_channel": missing,
        "region": missing,
        "referred_by": missing,
    })


def cdnow_tables(kind: CdnowKind = "sample") -> Tables:
    """CDNOW as canonical contract tables (see the module docstring for the conversion rules)."""
    transactions = _merge_same_day(read_cdnow_purchases(kind)).reset_index(drop=True)
    return Tables.from_frames(customers=_customers(transactions), transactions=transactions)


def write_cdnow(out_dir: str | Path, kind: CdnowKind = "sample") -> dict[str, Path]:
    """Write ``customers.parquet`` and ``transactions.parquet`` (the optional tables are absent)."""
    return write_tables(cdnow_tables(kind), out_dir, skip_empty=True)
