"""Benchmark: ``top_churn_drivers`` for a large scored population, and how faithful they are.

    .venv/bin/python benchmarks/churn_drivers.py --work /tmp/cvscore          # the score benchmark's model and world
    .venv/bin/python benchmarks/churn_drivers.py --work /tmp/cvscore --rows 200000 --check 1000

Reuses what ``benchmarks/score.py --work DIR`` prepared there (the registered model and the
simulated ``score-<N>`` world; run that first). Times, on ``--rows`` customers of that world
(features built once, not timed):

- the drivers as scoring computes them (:func:`customer_value.valuation.churn_drivers.churn_drivers`:
  the path decomposition on the leading trees, grouped into reasons, written in words);
- exact TreeSHAP (``pred_contrib``) of the whole booster on ``--check`` customers, extrapolated;

and on those ``--check`` customers how often the top reason (and the set of the top three) of the
drivers agrees with grouped TreeSHAP of the whole model: what the speed costs in fidelity.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="a benchmarks/score.py --work directory")
    parser.add_argument("--customers", type=int, default=1_000_000, help="the scored world's size (score-<N>)")
    parser.add_argument("--rows", type=int, default=None, help="explain this many customers (default: all)")
    parser.add_argument("--check", type=int, default=1000, help="customers compared with exact TreeSHAP")
    parser.add_argument("--as-of", default="2024-07-01")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{args.work / 'mlflow' / 'mlflow.db'}")

    import numpy as np

    from customer_value.boosted.explain import LADDER, PathTables, path_contributions, raw_contributions
    from customer_value.boosted.inputs import align
    from customer_value.data.loading import load_tables
    from customer_value.features import build_features
    from customer_value.tracking.model import load_model
    from customer_value.valuation import churn_drivers as cd
    from customer_value.valuation.value import rfm_of

    model = load_model((args.work / "model_uri.txt").read_text().strip()).value_model
    churn = model.churn_model
    t0 = time.perf_counter()
    tables = load_tables(args.work / f"score-{args.customers}", model.settings).tables
    features = build_features(tables, args.as_of, model.settings)
    del tables
    if args.rows is not None:
        features = features.iloc[: args.rows].reset_index(drop=True)
    print(f"{len(features):,} customers' features in {time.perf_counter() - t0:.0f}s (not timed below)")
    print(f"churn model: {churn.best_iteration_:,} trees, num_leaves {churn.params_.get('num_leaves')}, "
          f"max_depth {churn.params_.get('max_depth')}")

    t0, cpu = time.perf_counter(), time.process_time()
    drivers = cd.churn_drivers(model, features)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu
    print(f"drivers: {len(features):,} rows in {seconds:.1f}s wall, {cpu:.1f}s CPU "
          f"({seconds / len(features) * 1e6:.0f} µs/row; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores); "
          f"{drivers.method()}")
    print(f"  e.g. {drivers.texts.iloc[0]!r}")

    check = features.sample(n=min(args.check, len(features)), random_state=1).reset_index(drop=True)
    X = model.model_input(check, rfm_of(check), model.settings.churn_window_days)
    t0 = time.perf_counter()
    exact = raw_contributions(churn, X)
    shap_seconds = time.perf_counter() - t0
    per_row = shap_seconds / len(check)
    print(f"exact TreeSHAP, whole model: {len(check):,} rows in {shap_seconds:.1f}s ({per_row * 1e6:,.0f} µs/row; "
          f"{per_row * len(features):,.0f}s for {len(features):,} rows)")
    names = list(churn.feature_names_)
    _, exact_grouped = cd.group_contributions(exact, names)
    _, group = cd.reason_groups(names)
    exact_top = cd.top_reasons(exact_grouped)
    matrix = align(X, churn.feature_names_, churn.categories_)
    full = churn.booster_.predict(matrix, num_iteration=churn.best_iteration_, raw_score=True)
    print(f"  {'trees':>6} {'R²':>6} {'corr²':>6}  top reason = TreeSHAP's   same top three   TreeSHAP's top three found")
    for trees in sorted({*LADDER, drivers.trees, churn.best_iteration_}):
        if trees > churn.best_iteration_:
            continue
        part = churn.booster_.predict(matrix, num_iteration=trees, raw_score=True)
        r2 = 1 - np.var(full - part) / np.var(full)
        corr2 = np.corrcoef(full, part)[0, 1] ** 2
        approx, _ = path_contributions(churn, X, tables=PathTables(churn, trees, group))
        top = cd.top_reasons(approx)
        first = float(np.mean(top[:, 0] == exact_top[:, 0]))
        sets = float(np.mean([set(a) == set(b) for a, b in zip(top.tolist(), exact_top.tolist())]))
        overlap = float(np.mean([len(set(a) & set(b) - {-1}) / max(len(set(b) - {-1}), 1)
                                 for a, b in zip(top.tolist(), exact_top.tolist())]))
        mark = "  <- the drivers" if trees == drivers.trees else ""
        print(f"  {trees:>6} {r2:>6.3f} {corr2:>6.3f}  {first:>22.1%} {sets:>16.1%} {overlap:>27.1%}{mark}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
