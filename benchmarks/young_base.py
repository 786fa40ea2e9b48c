"""Benchmark: a young base's value models, with and without labels over a shorter, later window.

    .venv/bin/python benchmarks/young_base.py                                   # 3,000 customers, seeds 4 7
    .venv/bin/python benchmarks/young_base.py --customers 20000 --seed 7
    .venv/bin/python benchmarks/young_base.py --world purchase_shape=2 --seed 7  # a what-if world
    .venv/bin/python benchmarks/young_base.py --as-of 2024-01-01 --seed 7        # two horizons old: no change
    .venv/bin/python benchmarks/young_base.py --as-of 2024-01-01 --label-window 182  # what the rule declines there

On a base younger than two horizons at the fit date the horizon-long models (cost, margin, drain,
net value, activity volumes) learn from customers far younger than the ones they score: their
latest snapshot is a horizon back. ``Settings.snapshots.young_base_labels`` (on by default)
measures their labels over ``max(H / 2, age − H)`` days instead, from later snapshots, scaled to
the horizon (``training/snapshots.py``). Per world this fits the model both ways on the same
tables (the simulator starts its base on 2022-01-01, so ``--as-of 2023-07-01`` is 18 months) and
judges each against what happened over the next 365 days: like-for-like value ranking (discounted
margin − cost against realised margin − cost; Spearman, top-decile capture, the share of the gap
from ``historical_value`` closed to the oracle and to the value ceiling), forecast over realised
totals of margin and cost, the share of realised net values inside the 80% interval, churn ROC AUC
and the drain flag's F1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from customer_value import api  # noqa: E402
from customer_value import metrics as ev  # noqa: E402
from customer_value.config import Settings  # noqa: E402
from customer_value.evaluation.backtest import join_realised  # noqa: E402
from customer_value.features.history import tables_before  # noqa: E402
from customer_value.training.snapshots import base_age_days  # noqa: E402
from customer_value.valuation.intervals import coverage  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _ranking import print_table, value_side_by_side  # noqa: E402
from _world import add_world_argument, world_params  # noqa: E402


def judge(fitted: Any, tables: Any, as_of: dt.date, settings: Settings,
          truth: pd.DataFrame) -> dict[str, float]:
    """One fitted model's figures against what happened over the horizon after ``as_of``."""
    model = fitted.model
    scored = join_realised(model.predict(fitted.features, as_of), api.build_targets(tables, as_of, settings),
                           model.bgnbd_gg_revenue(fitted.features))
    reference = truth.set_index("customer_id").reindex(scored["customer_id"])
    realised = scored["net_value"].to_numpy(dtype=float)
    like_for_like = scored["discounted_expected_margin"] - scored["discounted_expected_cost_to_serve"]
    table = value_side_by_side(realised, {
        "historical_value": scored["historical_value"], "model": like_for_like,
        "ceiling": reference["ceiling_net_value"],
        "oracle": reference["oracle_expected_margin"] - reference["oracle_expected_cost_to_serve"]})
    row = table.loc["model"]
    flag = ev.precision_recall_at(realised < 0, scored["drain_flag"].to_numpy(dtype=bool)) \
        if "drain_flag" in scored else {"precision": np.nan, "recall": np.nan}
    return {
        "like-for-like spearman": row["spearman"],
        "historical_value spearman": table.loc["historical_value", "spearman"],
        "gap to oracle": row["gap_to_oracle"], "gap to ceiling": row["gap_to_ceiling"],
        "top-decile capture": row["top_decile_capture"],
        "margin forecast / realised": scored["expected_margin"].sum() / scored["margin"].sum(),
        "cost forecast / realised": scored["expected_cost_to_serve"].sum() / scored["cost_to_serve"].sum(),
        "net value 80% coverage": coverage(scored, scored)["net_value"],
        "churn roc_auc": ev.roc_auc(scored["churned"].to_numpy(dtype=float), scored["churn_probability"]),
        "drain_flag f1": ev.f1(flag["precision"], flag["recall"]),
        "customers": float(len(scored)),
    }


def run_world(args: argparse.Namespace, seed: int) -> pd.DataFrame:
    as_of = dt.date.fromisoformat(args.as_of)
    base = Settings(trials=args.trials, seed=seed)
    world = api.simulate_world(args.customers, seed, settings=base, truth_as_of=args.as_of,
                               params=world_params(args.world))
    cut = tables_before(world.tables, as_of)
    age = base_age_days(as_of, cut.customers["signup_at"].min())
    print(f"\n=== seed {seed}: {args.customers:,} customers{', world ' + ' '.join(args.world) if args.world else ''}, "
          f"as of {as_of} (the base is {age} days old), {args.trials} trial(s) ===", flush=True)
    columns = {}
    for name, young in (("horizon labels", False), ("young-base labels", True)):
        settings = base.model_copy(update={"snapshots": base.snapshots.model_copy(update={"young_base_labels": young})})
        t0 = time.perf_counter()
        fitted = api.fit_value_model(cut, as_of, settings)
        columns[name] = judge(fitted, world.tables, as_of, settings, world.truth)
        print(f"  {name}: fitted in {time.perf_counter() - t0:.0f}s; skipped: {fitted.skipped or 'nothing'}", flush=True)
    table = pd.DataFrame(columns)
    table["change"] = table["young-base labels"] - table["horizon labels"]
    print_table(table, f"seed {seed}: against the {base.horizon_days} days after {as_of}")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=3_000)
    parser.add_argument("--seed", type=int, nargs="+", default=[4, 7], help="one world per seed, in turn")
    parser.add_argument("--as-of", default="2023-07-01", help="the fit date (the base starts on 2022-01-01)")
    parser.add_argument("--trials", type=int, default=1, help="Optuna trials per boosted model")
    parser.add_argument("--label-window", type=int, default=None,
                        help="force the young-base fit's label window to this many days whatever the base's age "
                             "(to see where the two-horizon rule stops paying)")
    add_world_argument(parser)
    args = parser.parse_args(argv)
    if args.label_window:
        from customer_value.training import snapshots

        snapshots.label_window_days = lambda window, as_of, first_signup: min(window, args.label_window)
    warnings.filterwarnings("ignore")
    tables = {seed: run_world(args, seed) for seed in args.seed}
    summary = pd.DataFrame({seed: t["change"] for seed, t in tables.items()})
    print_table(summary, "change per seed (young-base labels − horizon labels)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
