"""CDNOW holdout check: predicted vs actual repeat transactions in weeks 40-78.

Uses lifetimes' ``CDNOW_sample.txt`` (2,357 customers who first bought in Q1 1997): the
calibration period runs to 1997-09-30 (weeks 1-39), the holdout is 1997-10-01..1998-06-30
(weeks 40-78, 39 weeks). Purchases are merged per day and times are in weeks, which reproduces
lifetimes' ``cdnow_customers_summary``. Each purchase model is fitted on the calibration summary and
predicts every customer's holdout purchases; the table compares totals and means by calibration
frequency (0..7+) with what actually happened.

It then checks the 80% revenue interval on the same holdout (issue 14: it must cover 75-85% of
customers), calibrated inside weeks 1-39 as ``benchmarks/intervals.py --cdnow-only`` does (the
same function prints the same table); the exit code is 1 when the checked rows miss the band.

    python benchmarks/cdnow_holdout.py
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from customer_value.probabilistic.holdout import calibration_holdout_summary  # noqa: E402
from customer_value.probabilistic.purchases import PurchaseModel  # noqa: E402

CALIBRATION_END = "1997-09-30"
OBSERVATION_END = "1998-06-30"
MODELS = ("bgnbd", "mbgnbd", "pareto_nbd")


def load_cdnow_sample() -> pd.DataFrame:
    """CDNOW_sample.txt as transactions: customer_id, date, cds, amount."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import lifetimes

    path = os.path.join(os.path.dirname(lifetimes.__file__), "datasets", "CDNOW_sample.txt")
    tx = pd.read_csv(
        path, sep=r"\s+", header=None, names=["master_id", "customer_id", "date", "cds", "amount"], dtype={"date": str}
    )
    tx["date"] = pd.to_datetime(tx["date"], format="%Y%m%d")
    return tx


def main() -> int:
    tx = load_cdnow_sample()
    summary = calibration_holdout_summary(
        tx, CALIBRATION_END, OBSERVATION_END, customer_id_col="customer_id", datetime_col="date",
        monetary_value_col="amount", time_unit="weeks",
    )
    rfm = summary.rename(columns={"frequency_cal": "frequency", "recency_cal": "recency", "T_cal": "T"})
    horizon = float(summary["duration_holdout"].iloc[0])
    print(f"CDNOW sample: {len(summary):,} customers; calibration to {CALIBRATION_END}, "
          f"holdout to {OBSERVATION_END} ({horizon:g} weeks)")

    bins = np.minimum(rfm["frequency"].to_numpy(), 7)
    labels = [str(i) for i in range(7)] + ["7+"]
    table = pd.DataFrame({"customers": np.bincount(bins, minlength=8)}, index=pd.Index(labels, name="calibration frequency"))
    table["actual"] = np.bincount(bins, weights=rfm["frequency_holdout"].to_numpy(float), minlength=8)
    totals = {"actual": float(rfm["frequency_holdout"].sum())}
    for name in MODELS:
        start = time.perf_counter()
        model = PurchaseModel(name, time_unit="weeks").fit(rfm)
        predicted = model.predict(rfm, horizon, discount_rate=0.0)["expected_transactions"].to_numpy()
        elapsed = time.perf_counter() - start
        table[name] = np.bincount(bins, weights=predicted, minlength=8)
        totals[name] = float(predicted.sum())
        params = ", ".join(f"{k}={v:.4g}" for k, v in model.params_.items())
        print(f"{name:>10}: {params}; log-likelihood {model.log_likelihood_:.2f}; path {model.fit_path_}; "
              f"fit + predict {elapsed * 1000:.0f} ms")

    print("\nRepeat transactions in the holdout, summed by calibration frequency:")
    print(table.round(1).to_string())
    print("\nMean per customer:")
    means = table[["actual", *MODELS]].div(table["customers"], axis=0)
    print(means.round(3).to_string())
    print("\nTotal:")
    for name, value in totals.items():
        rel = "" if name == "actual" else f"  ({value / totals['actual'] - 1:+.1%} vs actual)"
        print(f"  {name:>10}: {value:8.1f}{rel}")

    print("\n80% intervals on the same holdout:")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from intervals import BAND, cdnow_run

    table, checked = cdnow_run()
    missed = 0
    for name in checked:
        value = table.loc[name, "holdout coverage"]
        ok = BAND[0] <= value <= BAND[1]
        missed += not ok
        print(f"  {'ok ' if ok else 'MISS'} {name}: holdout coverage {value:.3f} (band {BAND[0]}-{BAND[1]})")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
