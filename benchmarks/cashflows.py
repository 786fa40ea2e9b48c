"""Benchmark: the monthly cash flows against what happened, with and without the monthly profile.

    .venv/bin/python benchmarks/cashflows.py                            # 100k customers, seeds 7 and 8
    .venv/bin/python benchmarks/cashflows.py --world purchase_shape=2   # a what-if world
    .venv/bin/python benchmarks/cashflows.py --data DIR [DIR ...]       # worlds already written (simulate)
    .venv/bin/python benchmarks/cashflows.py --cdnow-only               # CDNOW alone

Per world and cutoff: the value model is fitted on the tables cut at the cutoff
(``fit_value_model``, ``--trials`` per boosted part), which learns its monthly profile on the year
before (``valuation/cashflows.py: MonthlyProfile``). Its score rows are spread over the months
twice, by the purchases alone and tilted by the profile, and each is set beside what the customers
earned and cost in each month of the year after (``features.monthly_outcomes``). Printed per
quantity: the mean absolute error per month (what the backtest calls ``monthly.*_mape``; it
includes the level of the annual forecast, which the profile never changes), the shape error (the
same on each month's share of the year, the level taken out), and the first and last months'
errors.

CDNOW (18 months of history) has no year before a fit and a year after it. Fitted at the end of
1997 for a half-year horizon, the fit does not learn a profile (the horizon is shorter than a
year); the script forces one to show why: the half-year before holds the rise into Christmas.

Runs above 20k customers need the heavy lock (see /tmp/coord/README.md).
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

from customer_value.config import Settings  # noqa: E402
from customer_value.data.cdnow import cdnow_tables  # noqa: E402
from customer_value.data.loading import load_tables  # noqa: E402
from customer_value.features import build_features, monthly_outcomes  # noqa: E402
from customer_value.features.history import tables_before  # noqa: E402
from customer_value.simulation.world import simulate_world  # noqa: E402
from customer_value.training.fit import fit_monthly_profile, fit_value_model  # noqa: E402
from customer_value.evaluation.backtest import monthly_metrics, monthly_reconciliation  # noqa: E402
from customer_value.valuation.cashflows import PROFILE_QUANTITIES as QUANTITIES  # noqa: E402
from customer_value.valuation.cashflows import portfolio_by_month  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _world import add_world_argument, world_params  # noqa: E402

CDNOW_DAY = dt.date(1997, 12, 31)


def errors(table: pd.DataFrame, quantity: str) -> dict[str, float]:
    """From a :func:`monthly_reconciliation` table: the mean absolute error per month (the
    backtest's ``monthly.*_mape``), the same on the months' shares of the year, first and last month."""
    error = table[f"{quantity}_error"].to_numpy(dtype=float)
    forecast, realised = (table[f"{side}_{quantity}"].to_numpy(dtype=float) for side in ("expected", "realised"))
    shape = (forecast / forecast.sum()) / (realised / realised.sum()) - 1
    return {"mape": monthly_metrics(table)[f"monthly.{quantity}_mape"], "shape": float(np.abs(shape).mean()),
            "first": float(error[0]), "last": float(error[-1])}


def compare(model, features: pd.DataFrame, tables, day: dt.date, settings: Settings) -> tuple[dict, pd.DataFrame]:
    """The score rows as of ``day`` spread by the purchases and by the profile, beside what happened."""
    scores = model.predict(features, day)
    realised = monthly_outcomes(tables, day, settings, scores["customer_id"])
    reconciled = {name: monthly_reconciliation(portfolio_by_month(
                      model.cashflows(features, scores, day, tilted=name == "profile")), realised)
                  for name in ("profile", "purchases")}
    row, months = {}, realised[["month"]].copy()
    for quantity in QUANTITIES:
        months[f"realised {quantity}"] = reconciled["profile"][f"realised_{quantity}"].to_numpy()
        for name, table in reconciled.items():
            months[f"{quantity} error, {name}"] = table[f"{quantity}_error"].to_numpy()
            row |= {f"{quantity} {k}, {name}": v for k, v in errors(table, quantity).items()}
    if model.monthly_profile is not None:
        row |= {f"{q} trend": t for q, t in model.monthly_profile.trend_.items()}
    return row, months


def world_rows(label: str, tables, cutoffs: list[dt.date], settings: Settings) -> list[dict]:
    rows = []
    for cutoff in cutoffs:
        t0 = time.perf_counter()
        fitted = fit_value_model(tables_before(tables, cutoff), cutoff, settings)
        row, months = compare(fitted.model, fitted.features, tables, cutoff, settings)
        rows.append({"world": label, "cutoff": cutoff, **row, "seconds": time.perf_counter() - t0})
        print(f"{label}, cutoff {cutoff}: error per month ({time.perf_counter() - t0:.0f} s)")
        print(months.to_string(index=False, float_format=lambda v: f"{v:+.3f}" if abs(v) < 10 else f"{v:,.0f}"))
        print(flush=True)
    return rows


def cdnow_row(trials: int) -> dict:
    """CDNOW fitted at the end of 1997 for half a year: no profile (too short a horizon); one forced
    on the half-year before, to show what a trend learned over a season does."""
    tables = cdnow_tables("sample")
    settings = Settings(horizon_days=182, trials=trials)
    fitted = fit_value_model(tables_before(tables, CDNOW_DAY), CDNOW_DAY, settings)
    model = fitted.model
    learned = model.monthly_profile
    valid = CDNOW_DAY - dt.timedelta(days=settings.horizon_days)
    cut = tables_before(tables, CDNOW_DAY)
    past = build_features(cut, valid, settings)
    model.monthly_profile = fit_monthly_profile(model, cut, past, model.predict(past, valid), valid, settings)
    row, months = compare(model, fitted.features, tables, CDNOW_DAY, settings)
    print(f"CDNOW sample, fitted {CDNOW_DAY} for {settings.horizon_days} days: the fit learned "
          f"{'no profile' if learned is None else 'a profile'}; one forced on the half-year before it would give:")
    print(months.drop(columns=[c for c in months.columns if c.startswith("cost")]).to_string(
        index=False, float_format=lambda v: f"{v:+.3f}" if abs(v) < 10 else f"{v:,.0f}"))
    print()
    return {"world": "CDNOW (profile forced)", "cutoff": CDNOW_DAY, **row}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8])
    parser.add_argument("--data", type=Path, nargs="+", default=None, help="world directories instead of --seeds")
    parser.add_argument("--cutoffs", nargs="+", default=["2024-01-01", "2024-07-01"])
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--cdnow-only", action="store_true")
    parser.add_argument("--no-cdnow", action="store_true")
    add_world_argument(parser)
    args = parser.parse_args(argv)
    if args.customers > 20_000 and not args.cdnow_only:
        print("note: more than 20k customers: run under flock /tmp/coord/heavy.lock", file=sys.stderr)
    warnings.filterwarnings("ignore")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = Settings(trials=args.trials)
    cutoffs = [dt.date.fromisoformat(c) for c in args.cutoffs]
    rows = []
    if not args.cdnow_only:
        if args.data:
            worlds = ((str(d), lambda d=d: load_tables(d, settings).tables) for d in args.data)
        else:
            what_if = f" ({', '.join(args.world)})" if args.world else ""
            worlds = ((f"{args.customers:,} seed {s}{what_if}",
                       lambda s=s: simulate_world(args.customers, s, settings=settings, params=world_params(args.world)).tables)
                      for s in args.seeds)
        for label, tables in worlds:
            rows += world_rows(label, tables(), cutoffs, settings)
    if not args.no_cdnow:
        rows.append(cdnow_row(args.trials))
    table = pd.DataFrame(rows).set_index(["world", "cutoff"])
    shown = [c for c in table.columns if c.endswith(("trend",)) or any(
        c.startswith(f"{q} {m},") for q in QUANTITIES for m in ("mape", "shape", "last"))]
    print("Summary (errors per month; 'purchases' = spread by the purchases alone, 'profile' = tilted):")
    print(table[shown].T.to_string(float_format=lambda v: f"{v:+.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
