"""Benchmark: do the 80% predictive intervals (``valuation/intervals.py``) hold 80% of customers?

    .venv/bin/python benchmarks/intervals.py                          # 100k customers, seeds 7 and 8
    .venv/bin/python benchmarks/intervals.py --customers 20000        # a quicker run
    .venv/bin/python benchmarks/intervals.py --cdnow-only             # the CDNOW holdout alone
    .venv/bin/python benchmarks/intervals.py --save DIR               # keep the scored frames ...
    .venv/bin/python benchmarks/intervals.py --frames DIR --no-cdnow  # ... and re-measure from them
    .venv/bin/python benchmarks/intervals.py --young                  # histories too young for a calibration year

Simulated worlds (2022-01-01 .. 2025-07-01), per seed:

1. fit the value model as of ``--as-of`` D (``fit_value_model`` on the tables cut at D);
2. calibrate: the model's predictions at its validation snapshot ``D − horizon_days`` (features
   as of that date from the same cut tables, ``ValueModel.predict``) beside what happened over
   ``[D − H, D)`` (``build_targets``): ``IntervalModel().fit(predicted_outcomes(scores),
   targets, scores)``;
3. score every customer at D and at later cutoffs (``--later``, default +90 and +180 days) with
   the same fitted model, and report the share of realised net value, revenue, cost-to-serve, margin and transactions
   over ``[c, c + H)`` inside its interval, with the mean width. D is what a backtest cutoff
   sees (its own fit, calibrated a horizon earlier); the later cutoffs add a model growing stale.

CDNOW (lifetimes' 2,357-customer sample; transactions only, so revenue is BG/NBD × Gamma-Gamma,
the value model's revenue without a churn model, and transactions BG/NBD's): the holdout is weeks 40-78 (1997-10-01 ..
1998-06-30, 39 weeks) after a calibration period of weeks 1-39. The intervals are calibrated
inside the calibration period and checked on the holdout after refitting on all of it. An
interval's shape depends on its horizon (over 13 weeks 83% of customers buy nothing, over 39
weeks 71%), so the principled split is the longest window the calibration period offers once
the whole cohort has arrived (first purchases end 1997-03-31): fit as of week 13 and calibrate
on weeks 14-39 (26 weeks; 69% buy nothing). The 13-week split (fit on weeks 1-26, calibrate on
27-39) is shown beside it, not checked: the overall level learned where 83% buy nothing is too
low for the holdout.

Young histories (``--young``): fitted as of ``--young-as-of`` dates whose history is shorter than
a horizon plus enough customers to calibrate on (9 and 12 months of the simulated worlds by
default), the model calibrates its own intervals on a shorter window (``training.fit.fit_intervals``);
the score rows' intervals as of that date are checked against the year that followed. CDNOW
likewise: the whole fit as of week 39 (a 39-week horizon), checked on weeks 40-78.

Target (issue 14): coverage of every quantity within 0.75-0.85 at every cutoff of both worlds,
and of CDNOW's revenue on the holdout (its transactions are held to the same band). The exit code is 1 when one is missed.
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

from customer_value import api  # noqa: E402
from customer_value.config import Settings  # noqa: E402
from customer_value.data.cdnow import cdnow_tables  # noqa: E402
from customer_value.features import build_features, build_targets  # noqa: E402
from customer_value.features.history import tables_before  # noqa: E402
from customer_value.probabilistic.purchases import PurchaseModel, bgnbd_prob_no_purchase  # noqa: E402
from customer_value.probabilistic.revenue import predict_revenue  # noqa: E402
from customer_value.probabilistic.spend import SpendModel  # noqa: E402
from customer_value.training.fit import FitObserver  # noqa: E402
from customer_value.units import uniform_discount_factor  # noqa: E402
from customer_value.valuation.intervals import (  # noqa: E402
    QUANTITIES,
    IntervalModel,
    coverage,
    coverage_by,
    customer_value_bounds,
    interval_columns,
    predicted_outcomes,
)
from customer_value.valuation.value import rfm_of  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _world import add_world_argument, world_params  # noqa: E402

BAND = (0.75, 0.85)
WORLD_END = dt.date(2025, 7, 1)
TARGET_COLUMNS = ["customer_id", "net_value", "revenue", "cost_to_serve", "margin", "transactions"]


def _share_or_count(v: float) -> str:
    """Coverages and widths below 1 with three decimals, counts and money with none."""
    return f"{v:.3f}" if abs(v) < 1 else f"{v:,.0f}"


def scored_with_targets(model, tables, day: dt.date, settings: Settings) -> pd.DataFrame:
    """Score rows as of ``day`` (features from ``tables`` cut there) beside the targets over
    ``[day, day + H)`` from ``tables`` (which must reach that far)."""
    scores = model.predict(build_features(tables_before(tables, day), day, settings), day)
    targets = build_targets(tables, day, settings)[TARGET_COLUMNS]
    return scores.merge(targets, on="customer_id", how="left", validate="one_to_one")


def measure(intervals: IntervalModel, frame: pd.DataFrame) -> dict[str, float]:
    """Coverage and mean width per quantity of one scored cutoff."""
    bounds = intervals.predict(predicted_outcomes(frame), frame)
    out = {f"{q}.coverage": v for q, v in coverage(frame, bounds).items()}
    for q in intervals.quantities_:
        low, high = interval_columns(q)
        out[f"{q}.width"] = float((bounds[high] - bounds[low]).mean())
    return out


def world_frames(seed: int, args: argparse.Namespace) -> dict[str, pd.DataFrame]:
    """Score rows beside realised targets: ``calibration`` (at ``D − H``) and one per cutoff."""
    as_of = dt.date.fromisoformat(args.as_of)
    settings = Settings(trials=args.trials, seed=seed)
    horizon = dt.timedelta(days=settings.horizon_days)
    cutoffs = [as_of + dt.timedelta(days=d) for d in [0, *args.later]]
    if cutoffs[-1] + horizon > WORLD_END:
        raise SystemExit(f"the last cutoff {cutoffs[-1]} + {settings.horizon_days} d runs past the world's end {WORLD_END}")
    t0 = time.perf_counter()
    world = api.simulate_world(args.customers, seed, settings=settings, params=world_params(args.world))
    print(f"seed {seed}: simulated {args.customers:,} customers in {time.perf_counter() - t0:.0f}s", flush=True)
    t0 = time.perf_counter()
    cut = tables_before(world.tables, as_of)
    fitted = api.fit_value_model(cut, as_of, settings, observer=FitObserver(
        lambda m: print(f"  {time.perf_counter() - t0:6.0f}s {m}", flush=True)))
    print(f"seed {seed}: fitted as of {as_of} in {time.perf_counter() - t0:.0f}s; skipped: {fitted.skipped or 'nothing'}")
    valid_date = as_of - horizon  # the horizon tasks' validation snapshot
    frames = {"calibration": scored_with_targets(fitted.model, cut, valid_date, settings)}
    for cutoff in cutoffs:
        frames[f"cutoff {cutoff}"] = scored_with_targets(fitted.model, world.tables, cutoff, settings)
    return frames


def world_report(seed: int, frames: dict[str, pd.DataFrame], discount: float) -> pd.DataFrame:
    """Calibrate on ``frames["calibration"]``; coverage and width per cutoff (rows), printed."""
    calibration = frames["calibration"]
    valid_date = calibration["as_of"].iloc[0]
    intervals = IntervalModel().fit(predicted_outcomes(calibration), calibration, calibration)
    rows = {f"calibration {valid_date}": {"customers": len(calibration), **measure(intervals, calibration)}}
    first = next(name for name in frames if name != "calibration")
    for name, frame in frames.items():
        if name == "calibration":
            continue
        rows[name] = {"customers": len(frame), **measure(intervals, frame)}
        if name == first:
            bounds = intervals.predict(predicted_outcomes(frame), frame)
            p10, p90 = customer_value_bounds(frame, bounds, discount)
            rows[name]["customer_value.width"] = float(np.mean(p90 - p10))
            by_segment = coverage_by(frame, bounds, frame["value_segment"])
    table = pd.DataFrame(rows).T
    levels = ", ".join(f"{q} {v:.3f}" for q, v in intervals.level_.items())
    print(f"\nseed {seed}: coverage of the 80% intervals (calibrated on {len(calibration):,} customers at {valid_date}, "
          f"the model's validation snapshot; cell levels {levels}), and mean width")
    print(table.to_string(float_format=_share_or_count))
    print(f"\nseed {seed}: coverage by value segment at the first cutoff ({first})")
    print(by_segment.to_string(float_format=lambda v: f"{v:.3f}"))
    print()
    return table


def young_row(fitted, later: pd.DataFrame, horizon_days: int, quantities) -> dict[str, float] | None:
    """A young-history fit's own intervals (the score rows' bounds) against what happened: how
    many customers, the window and customers the model calibrated on, and the coverage of each
    of ``quantities`` (``None`` when the fit has no intervals, with the reason printed)."""
    intervals = fitted.model.interval_model
    if intervals is None:
        print(f"  as of {fitted.as_of}: no intervals ({fitted.skipped.get('intervals')})")
        return None
    shares = coverage(later, later)
    return {"customers": len(later), "calibration days": intervals.calibration_days_ or horizon_days,
            "calibration customers": intervals.n_calibration_, **{f"{q}.coverage": shares[q] for q in quantities}}


def young_report(seed: int, args: argparse.Namespace) -> pd.DataFrame:
    """Fit as of each ``--young-as-of`` date (its own intervals, calibrated on a shorter window when
    no year is there) and check its score rows' intervals against the following horizon."""
    settings = Settings(trials=args.trials, seed=seed)
    t0 = time.perf_counter()
    world = api.simulate_world(args.customers, seed, settings=settings, params=world_params(args.world))
    print(f"seed {seed}: simulated {args.customers:,} customers in {time.perf_counter() - t0:.0f}s", flush=True)
    rows = {}
    for day in (dt.date.fromisoformat(d) for d in args.young_as_of):
        t0 = time.perf_counter()
        fitted = api.fit_value_model(tables_before(world.tables, day), day, settings)
        row = young_row(fitted, scored_with_targets(fitted.model, world.tables, day, settings),
                        settings.horizon_days, QUANTITIES)
        if row is not None:
            rows[str(day)] = {**row, "seconds": time.perf_counter() - t0}
    table = pd.DataFrame(rows).T
    print(f"\nseed {seed}: coverage of the 80% intervals of young histories over the {settings.horizon_days} days "
          "after each fit (calibrated by the model itself on the window shown)")
    print(table.to_string(float_format=_share_or_count))
    print()
    return table


# -- CDNOW ---------------------------------------------------------------------------------------

CDNOW_CALIBRATION_END = dt.date(1997, 10, 1)  # as_of: weeks 1-39 lie before it
CDNOW_HOLDOUT_END = dt.date(1998, 7, 1)       # weeks 40-78: [1997-10-01, 1998-07-01)


def cdnow_pairs(tables, fit_at: dt.date, end: dt.date) -> pd.DataFrame:
    """BG/NBD × Gamma-Gamma revenue over ``[fit_at, end)``, fitted on what came before ``fit_at``,
    beside what happened; ``p_alive`` and ``churn_probability`` (BG/NBD's P(no purchase in the
    churn window), what the value model reports without a churn model) as context."""
    settings = Settings(horizon_days=(end - fit_at).days)
    features = build_features(tables_before(tables, fit_at), fit_at, settings)
    rfm = rfm_of(features)
    purchases = PurchaseModel.from_settings(settings).fit(rfm)
    revenue = predict_revenue(purchases, SpendModel.from_settings(settings).fit(rfm), rfm, settings.horizon_days,
                              discount_rate=0.0, time_unit=settings.time_unit)
    churn = bgnbd_prob_no_purchase(revenue["p_alive"], rfm["frequency"], rfm["T"], purchases.params_["r"],
                                   purchases.params_["alpha"], settings.churn_window_days)
    realised = build_targets(tables_before(tables, end), fit_at, settings).set_index("customer_id").reindex(rfm.index)
    return pd.DataFrame({"expected_revenue": revenue["expected_revenue"].to_numpy(),
                         "expected_transactions": revenue["expected_transactions"].to_numpy(),
                         "p_alive": revenue["p_alive"].to_numpy(), "churn_probability": np.asarray(churn),
                         "revenue": realised["revenue"].to_numpy(), "transactions": realised["transactions"].to_numpy(dtype=float)},
                        index=rfm.index)


CDNOW_QUANTITIES = {"revenue": "expected_revenue", "transactions": "expected_transactions"}
"""What CDNOW's holdout checks: BG/NBD × Gamma-Gamma revenue and BG/NBD's own transactions."""


def cdnow_young(trials: int) -> pd.Series:
    """CDNOW through the whole fit as of week 39 (39 weeks of history, the cohort's first purchases
    in its first 13: no year to calibrate on, so the model calibrates on a shorter window itself),
    its score rows' revenue and transactions intervals against weeks 40-78."""
    day, end = CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END
    tables = cdnow_tables("sample")
    settings = Settings(horizon_days=(end - day).days, trials=trials)
    fitted = api.fit_value_model(tables_before(tables, day), day, settings)
    later = scored_with_targets(fitted.model, tables_before(tables, end), day, settings)
    row = pd.Series(young_row(fitted, later, settings.horizon_days, CDNOW_QUANTITIES) or {}, dtype=float)
    print(f"CDNOW sample through the whole fit as of {day} (weeks 1-39), intervals calibrated by the model, "
          "checked on weeks 40-78:")
    print(row.to_string(float_format=_share_or_count))
    print()
    return row


def cdnow_run() -> tuple[pd.DataFrame, list[str]]:
    """Holdout coverage of revenue and transactions for each calibration split and level; and
    the rows that are checked (the 26-week split at the default level, per quantity)."""
    tables = cdnow_tables("sample")
    holdout = cdnow_pairs(tables, CDNOW_CALIBRATION_END, CDNOW_HOLDOUT_END)
    rows, checked = {}, []
    for weeks in (26, 13):
        start = CDNOW_CALIBRATION_END - dt.timedelta(weeks=weeks)
        calibration = cdnow_pairs(tables, start, CDNOW_CALIBRATION_END)
        for quantity, forecast in CDNOW_QUANTITIES.items():
            predicted = calibration[[forecast]].set_axis([quantity], axis=1)
            for level in ("overall", "cell"):
                intervals = IntervalModel(level=level).fit(predicted, calibration, calibration)
                bounds = intervals.predict(holdout[[forecast]].set_axis([quantity], axis=1), holdout)
                low, high = interval_columns(quantity)
                name = f"{quantity}: fit as of week {39 - weeks}, calibrate on weeks {40 - weeks}-39 ({weeks} w), level={level}"
                if weeks == 26 and level == "overall":
                    checked.append(name)
                rows[name] = {
                    "calibration zero share": float((calibration[quantity] == 0).mean()),
                    "cell level": intervals.level_[quantity],
                    "calibration coverage": intervals.calibration_coverage_[quantity],
                    "holdout coverage": coverage(holdout, bounds)[quantity],
                    "holdout mean width": float((bounds[high] - bounds[low]).mean()),
                }
    table = pd.DataFrame(rows).T
    print(f"CDNOW sample: {len(holdout):,} customers; revenue and transactions over weeks 40-78, "
          f"{(holdout['revenue'] == 0).mean():.1%} of them buying nothing; intervals calibrated inside weeks 1-39, "
          "model refitted on weeks 1-39 (the 13-week split's outcomes have more zeros than the holdout's: shown "
          "for contrast, not checked)")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    print()
    return table, checked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8])
    parser.add_argument("--as-of", default="2024-01-01", help="D: the fit date and first cutoff")
    parser.add_argument("--later", type=int, nargs="*", default=[90, 180], help="later cutoffs, days after D")
    parser.add_argument("--trials", type=int, default=5, help="Optuna trials per boosted model")
    parser.add_argument("--cdnow-only", action="store_true")
    parser.add_argument("--no-cdnow", action="store_true")
    parser.add_argument("--save", type=Path, default=None,
                        help="write each world's scored frames (with what happened) here as Parquet")
    parser.add_argument("--frames", type=Path, default=None,
                        help="read the frames --save wrote instead of simulating and fitting")
    parser.add_argument("--young", action="store_true",
                        help="check the intervals of histories too young for a calibration year instead")
    parser.add_argument("--young-as-of", nargs="+", default=["2022-10-01", "2023-01-01"],
                        help="fit dates of --young (the simulated worlds start on 2022-01-01)")
    add_world_argument(parser)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    checks: dict[str, bool] = {}
    if args.young and not args.no_cdnow:
        row = cdnow_young(args.trials)
        for q in CDNOW_QUANTITIES:
            checks[f"CDNOW young history (week 39) {q}"] = BAND[0] <= row.get(f"{q}.coverage", np.nan) <= BAND[1]
    elif not args.no_cdnow:
        cdnow, checked = cdnow_run()
        for name in checked:
            checks[f"CDNOW holdout {name}"] = BAND[0] <= cdnow.loc[name, "holdout coverage"] <= BAND[1]
    if args.young and not args.cdnow_only:
        for seed in args.seeds:
            table = young_report(seed, args)
            for day, row in table.iterrows():
                for column in (c for c in table.columns if c.endswith(".coverage")):
                    checks[f"seed {seed}, young history as of {day}, {column.removesuffix('.coverage')}"] = (
                        BAND[0] <= row[column] <= BAND[1])
    elif not args.cdnow_only:
        discount = uniform_discount_factor(Settings().horizon_days, Settings().discount_rate)
        for seed in args.seeds:
            if args.frames is not None:
                frames = {p.stem: pd.read_parquet(p) for p in sorted((args.frames / f"seed-{seed}").glob("*.parquet"))}
                frames = {"calibration": frames.pop("calibration"), **frames}
            else:
                frames = world_frames(seed, args)
            if args.save is not None:
                (args.save / f"seed-{seed}").mkdir(parents=True, exist_ok=True)
                for name, frame in frames.items():
                    frame.to_parquet(args.save / f"seed-{seed}" / f"{name}.parquet")
            table = world_report(seed, frames, discount)
            for cutoff, row in table.iterrows():
                if not str(cutoff).startswith("cutoff"):
                    continue
                for column in (c for c in table.columns if c.endswith(".coverage")):
                    checks[f"seed {seed}, {cutoff}, {column.removesuffix('.coverage')}"] = BAND[0] <= row[column] <= BAND[1]
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'MISS'}] coverage within {BAND[0]:.2f}-{BAND[1]:.2f}: {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
