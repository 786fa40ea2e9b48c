"""Benchmark: expected referred sign-ups against the ones that happened, on simulated worlds.

    .venv/bin/python benchmarks/referrals.py                          # 20k customers, seeds 7 and 8
    .venv/bin/python benchmarks/referrals.py --world signup_growth=4  # a what-if world

For each seed and cutoff: fit the value model on the tables cut at the cutoff (``fit_value_model``,
``--trials`` per boosted part; it fits the past-window referral model,
:func:`customer_value.valuation.referrals.fit_referral_model`), score, and compare ``expected_referrals`` with the targets' ``referrals`` over ``[cutoff, cutoff + 365 d)``:
the sum ratio (forecast / realised total; target within ±10%), Spearman and ROC AUC (referred
anyone or not), beside the features-only (classic) model and the baseline "count of past
referrals". Runs above 20k customers need the heavy lock (see /tmp/coord/README.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from customer_value import metrics as ev  # noqa: E402
from customer_value.config import Settings  # noqa: E402
from customer_value.features import build_features, build_targets  # noqa: E402
from customer_value.features.history import tables_before  # noqa: E402
from customer_value.simulation.world import simulate_world  # noqa: E402
from customer_value.training.fit import fit_value_model  # noqa: E402
from customer_value.valuation.referrals import ReferralModel, fit_referral_model  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _world import add_world_argument, world_params  # noqa: E402


def referral_row(realised: np.ndarray, forecast: np.ndarray) -> dict[str, float]:
    """Sum ratio, Spearman and ROC AUC (any referral) of one forecast."""
    return {"sum_ratio": float(forecast.sum() / realised.sum()) if realised.sum() else np.nan,
            "spearman": ev.spearman(realised, forecast), "roc_auc": ev.roc_auc(realised > 0, forecast)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8])
    parser.add_argument("--cutoffs", nargs="+", default=["2023-07-01", "2024-01-01"])
    parser.add_argument("--trials", type=int, default=1)
    add_world_argument(parser)
    args = parser.parse_args(argv)
    if args.customers > 20_000:
        print("note: more than 20k customers: run under flock /tmp/coord/heavy.lock", file=sys.stderr)
    warnings.filterwarnings("ignore")
    settings = Settings(trials=args.trials)
    horizon = settings.horizon_days
    rows = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        world = simulate_world(args.customers, seed, settings=settings, params=world_params(args.world))
        for cutoff in (dt.date.fromisoformat(c) for c in args.cutoffs):
            fitted = fit_value_model(tables_before(world.tables, cutoff), cutoff, settings)
            model, features = fitted.model, fitted.features
            window = model.referral_model_
            alive = model._parts(features, horizon)["adjusted_p_alive"].to_numpy()
            if window.shape_source_.startswith("classic"):  # a fit that does not learn the window yet
                past = build_features(tables_before(world.tables, cutoff), cutoff - dt.timedelta(days=horizon), settings)
                window = fit_referral_model(model, tables_before(world.tables, cutoff), cutoff, features, past, horizon,
                                            alive=alive)
            classic = ReferralModel(**window.get_params()).fit(features)  # features only: last year's rates
            realised = features[["customer_id"]].merge(build_targets(world.tables, cutoff, settings),
                                                       on="customer_id", how="left")["referrals"].to_numpy(float)
            forecasts = {"referral model": window.predict(features, horizon, alive),
                         "features-only (classic)": classic.predict(features, horizon, alive),
                         "baseline past referrals": features["acct_referred_customers"].to_numpy(float)}
            for name, forecast in forecasts.items():
                row = referral_row(realised, forecast)
                if name.startswith("baseline"):
                    row["sum_ratio"] = np.nan  # a count to date, not a forecast of the next year's total
                rows.append({"seed": seed, "cutoff": cutoff, "score": name, "realised": int(realised.sum()), **row})
            lo, hi = window.referred_customer_value_interval_
            print(f"seed {seed} cutoff {cutoff}: referred customer value {window.referred_customer_value_:.2f} "
                  f"[{lo:.2f}, {hi:.2f}] ({window.referred_customer_value_source_}); coef "
                  + ", ".join(f"{k} {v:.3f}" for k, v in window.coef_.items())
                  + f"; level {window.level_:.3f} ({window.level_source_}); {time.perf_counter() - t0:.0f}s", flush=True)
    table = pd.DataFrame(rows)
    print()
    print(f"{args.customers:,} customers, world overrides {args.world or 'none'}:")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    model_rows = table[table["score"] == "referral model"].set_index(["seed", "cutoff"])
    base_rows = table[table["score"] == "baseline past referrals"].set_index(["seed", "cutoff"])
    checks = {
        "sum ratio within ±10% at every cutoff": bool((model_rows["sum_ratio"].sub(1).abs() <= 0.10).all()),
        "Spearman beats past referrals at every cutoff": bool((model_rows["spearman"] > base_rows["spearman"]).all()),
        "ROC AUC beats past referrals at every cutoff": bool((model_rows["roc_auc"] > base_rows["roc_auc"]).all()),
    }
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'MISS'}] {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
