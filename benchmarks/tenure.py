"""Benchmark: does the cost forecast hold for customers older than any the model was trained on?

    .venv/bin/python benchmarks/tenure.py                                # 50k customers, seeds 7 and 8
    .venv/bin/python benchmarks/tenure.py --world purchase_shape=2       # a what-if world
    .venv/bin/python benchmarks/tenure.py --data DIR                     # a written world (truth as of the cutoff)

A boosted model is trained on snapshots whose label window ends by its date, so the oldest
customer it learns from is a horizon (and a few snapshots) younger than the oldest it scores. A
tree carries its last leaf on past what it saw; totals to date (tickets, minutes, purchases...)
mean something else at every tenure, so on a young base the forecast for the oldest customers
stays where the training's oldest were. Per-year rates (``*_per_year``, see
:meth:`customer_value.features.history.History.with_rates`) are meant to carry over.

For each world: the cost training set as of ``--cutoff`` (``training.snapshots``), one
cost-to-serve model (tweedie, the pipeline's defaults) fitted on every feature and one without
the ``*_per_year`` columns, both scored on everyone as of the cutoff, and set beside the oracle's
expected cost over the horizon (the simulator's truth) by tenure: the bias of the total per band
and the Spearman against the oracle. Runs above 20k customers need the heavy lock.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from customer_value import metrics as ev  # noqa: E402
from customer_value.boosted.cost_to_serve import CostToServeModel  # noqa: E402
from customer_value.boosted.inputs import feature_matrix  # noqa: E402
from customer_value.config import Settings  # noqa: E402
from customer_value.data.loading import load_tables  # noqa: E402
from customer_value.features.history import tables_before, without_rate_columns  # noqa: E402
from customer_value.simulation.world import simulate_world  # noqa: E402
from customer_value.training.snapshots import Builders, SnapshotCache, build_training_set  # noqa: E402
from customer_value.units import DAYS_PER_YEAR, to_date  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _world import add_world_argument, world_params  # noqa: E402

BANDS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 100.0)
"""Tenure bands in years (the last one: everyone older)."""


def judge(world: str, tables, truth: pd.DataFrame, cutoff, settings: Settings) -> list[dict]:
    """Both cost models' totals against the oracle's, per tenure band and overall."""
    t0 = time.perf_counter()
    cache = SnapshotCache(tables_before(tables, cutoff), settings, "duckdb", Builders())
    training = build_training_set(tables, cutoff, settings, "cost", cache=cache)
    scoring = cache.features(cutoff, training.window_days)
    oldest_trained = float(training.X_train["acct_tenure_days"].max()) / DAYS_PER_YEAR
    oracle = scoring[["customer_id"]].merge(truth, on="customer_id", how="left")[
        "oracle_expected_cost_to_serve"].to_numpy(float)
    tenure = scoring["acct_tenure_days"].to_numpy(float) / DAYS_PER_YEAR
    band = pd.cut(tenure, BANDS, right=False)
    print(f"{world}: {len(training.X_train):,} training rows (oldest {oldest_trained:.2f} years), "
          f"{len(scoring):,} scored (oldest {tenure.max():.2f} years); sets in {time.perf_counter() - t0:.0f} s")
    rows = []
    for name, view in (("with rates", lambda f: f), ("without rates", without_rate_columns)):
        t1 = time.perf_counter()
        model = CostToServeModel(objective="tweedie", seed=settings.seed).fit(
            view(training.X_train), training.y_train, view(training.X_valid), training.y_valid)
        forecast = model.predict(view(feature_matrix(scoring.drop(columns="customer_id"), training.categories)))
        frame = pd.DataFrame({"band": band, "forecast": forecast, "oracle": oracle})
        by_band = frame.groupby("band", observed=True)[["forecast", "oracle"]].sum()
        row = {"world": world, "model": name, "trees": model.best_iteration_,
               "spearman": ev.spearman(oracle, forecast), "bias": forecast.sum() / oracle.sum() - 1}
        for interval, totals in by_band.iterrows():
            row[f"bias {interval.left:g}-{interval.right:g} y" if interval.right < 100 else
                f"bias {interval.left:g}+ y"] = totals["forecast"] / totals["oracle"] - 1
        row["fit s"] = time.perf_counter() - t1
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8])
    parser.add_argument("--cutoff", default="2024-07-01")
    parser.add_argument("--data", nargs="*", default=[], help="written worlds (their truth as of --cutoff) instead")
    add_world_argument(parser)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    settings = Settings()
    cutoff = to_date(args.cutoff)
    rows = []
    for path in args.data:
        truth = pd.read_parquet(Path(path) / "truth.parquet")
        if str(pd.Timestamp(truth["as_of"].iloc[0]).date()) != str(cutoff):
            raise SystemExit(f"{path}: truth as of {truth['as_of'].iloc[0]}, not {cutoff}")
        rows += judge(Path(path).name, load_tables(path, settings).tables, truth, cutoff, settings)
    if not args.data:
        for seed in args.seeds:
            world = simulate_world(args.customers, seed, settings=settings, truth_as_of=str(cutoff),
                                   params=world_params(args.world))
            name = f"seed {seed}" + (f" ({', '.join(args.world)})" if args.world else "")
            rows += judge(name, world.tables, world.truth, cutoff, settings)
    table = pd.DataFrame(rows).set_index(["world", "model"])
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print()
        print(table.round(4).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
