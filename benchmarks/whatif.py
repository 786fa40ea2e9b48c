"""Benchmark: reprice 1M scored customers under a what-if (issue 18: under 20 s on this machine).

    .venv/bin/python benchmarks/whatif.py                      # 1M rows
    .venv/bin/python benchmarks/whatif.py --customers 200000   # a smoke run

Preparation (not timed): a value model with an indirect pool is fitted on a ``--train-customers``
simulated world and scores it; those real score rows are repeated, with new customer ids, until
there are ``--customers`` of them, and written as a score file with the scoring's metadata.

Timed, as ``customer-value whatif`` runs it (:func:`customer_value.pipeline.whatif.whatif`): read
the score file, reprice (phone minutes 1.50 → 1.00, 40% of phone minutes moved to chat, a late
fee of 15, a plan price +5%, the pool +25%), summarise, write the new scores and the HTML summary.
The repricing alone is timed too.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from customer_value.config import Settings, WhatIf  # noqa: E402
from customer_value.features import build_features  # noqa: E402
from customer_value.pipeline.whatif import whatif  # noqa: E402
from customer_value.simulation.world import simulate_world  # noqa: E402
from customer_value.training.fit import fit_value_model  # noqa: E402
from customer_value.valuation.whatif import METADATA_KEY, reprice  # noqa: E402

TARGET_SECONDS = 20.0
AS_OF = "2024-07-01"


def score_file(customers: int, train_customers: int, path: Path) -> None:
    settings = Settings.model_validate({
        "trials": 1, "snapshots": {"count": 3, "spacing_days": 30},
        "costs": {"indirect_pools": [{"name": "platform", "annual_amount": 120000, "driver": "active_customer_months"}]}})
    world = simulate_world(train_customers, 7, settings=settings)
    fit = fit_value_model(world.tables, AS_OF, settings)
    features = build_features(world.tables, AS_OF, settings)
    scores = fit.model.predict(features, AS_OF).assign(plan=features["plan"].to_numpy(),
                                                       acquisition_channel=features["acquisition_channel"].to_numpy())
    meta = scores.attrs[METADATA_KEY]
    reps = int(np.ceil(customers / len(scores)))
    big = pd.concat([scores] * reps, ignore_index=True).head(customers)
    big["customer_id"] = [f"C{i:08d}" for i in range(len(big))]
    # the pool is spread over the scored population: rescale the copies so it still sums to the amount
    big["expected_cost_pool_platform"] = big["expected_cost_pool_platform"] * (len(scores) / len(big))
    big.attrs[METADATA_KEY] = meta
    big.to_parquet(path, index=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--train-customers", type=int, default=20_000)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    changes = WhatIf.model_validate({
        "rates": {"minute_rate": {"phone": 1.0}},
        "shift": [{"from": "support_phone", "to": "support_chat", "share": 0.4}],
        "fees": {"late_payments": 15.0},
        "plans": {"pro": 0.05},
        "pools": {"platform": 150000},
    })
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        score_file(args.customers, args.train_customers, work / "scores.parquet")
        print(f"prepared a score file of {args.customers:,} rows in {time.perf_counter() - t0:.0f}s", flush=True)

        t0 = time.perf_counter()
        result = whatif(work / "scores.parquet", changes, work / "whatif.parquet", work / "whatif.html")
        total = time.perf_counter() - t0

        scores = pd.read_parquet(work / "scores.parquet")
        t0 = time.perf_counter()
        reprice(scores, changes)
        alone = time.perf_counter() - t0

    s = result.summary
    print(f"whatif end to end (read, reprice, summarise, write scores and summary): {total:.1f}s "
          f"for {len(result.scores):,} customers ({len(result.scores) / total:,.0f} rows/s)")
    print(f"repricing alone: {alone:.1f}s")
    print(f"value change {s.totals.loc['customer_value', 'change']:+,.0f}; {s.to_positive:,} cross to positive, "
          f"{s.to_negative:,} to negative")
    ok = total < TARGET_SECONDS
    print(f"  [{'ok' if ok else 'MISS'}] under {TARGET_SECONDS:.0f} s at {args.customers:,} customers")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
