"""Benchmark: all features and targets for a large simulated world, and the RFM summary against
a plain pandas groupby and lifetimes' ``summary_data_from_transaction_data``.

    .venv/bin/python benchmarks/features.py --customers 1000000          # the acceptance run
    .venv/bin/python benchmarks/features.py --customers 50000 --quick    # a smoke run

The world is simulated once (``customer_value.simulation.world``) and cached as Parquet under
``--cache`` (default ``$TMPDIR/customer_value_bench/world-<customers>-<seed>``, outside the repo). Every measurement then runs in its
own Python process, so its peak memory (``ru_maxrss``) is its own: the process reads the Parquet
files into canonical pandas tables (the contract-validated input of ``build_features``; reading
time is reported separately) and runs one job. Rows/s counts the input rows of all five tables
(for the RFM jobs: the transactions) per second of the job's wall time.

The simulated transactions come sorted by customer and time, as most exports do; ``rfm`` then
takes the linear pass of ``features/rfm_sorted.py``. ``rfm_unsorted`` times the same rows shuffled,
where the Ibis expression runs on DuckDB. lifetimes gets the sorted rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2024-07-01"


# -- the jobs (each runs in a child process) ------------------------------------------------------


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _memory import peak_rss_gib  # noqa: E402


def _peak_rss_gib() -> float:
    return peak_rss_gib()


def _load(data_dir: Path):
    import pandas as pd

    from customer_value.data.tables import TABLE_COLUMNS, Tables

    frames = {}
    for name, columns in TABLE_COLUMNS.items():
        path = data_dir / f"{name}.parquet"
        if path.exists():
            frame = pd.read_parquet(path)
            frames[name] = frame.astype({c: d for c, (d, _) in columns.items() if str(frame[c].dtype) != d})
    return Tables.from_frames(**frames)


def pandas_rfm(tables, as_of: str, unit_days: float = 1.0):
    """The straightforward pandas version of our RFM summary (same conventions as rfm.py)."""
    import numpy as np
    import pandas as pd

    d = pd.Timestamp(as_of)
    customers = tables.customers[tables.customers.signup_at < d]
    tx = tables.transactions[tables.transactions.occurred_at < d]
    tx = tx.assign(day=tx.occurred_at.dt.floor("D"))
    tx = tx.assign(purchase=(tx.amount > 0).astype("int64"))
    daily = tx.groupby(["customer_id", "day"], sort=False).agg(net=("amount", "sum"), purchases=("purchase", "sum"))
    daily = daily.reset_index()
    bought = daily[daily.purchases > 0]
    per = bought.groupby("customer_id").agg(first=("day", "min"), last=("day", "max"), n=("day", "size"))
    daily = daily.join(per["first"], on="customer_id")
    first_day_net = daily[daily.day == daily["first"]].groupby("customer_id").net.sum()
    repeat = tx.groupby("customer_id").amount.sum() - first_day_net  # all but the first purchase day
    out = customers.set_index("customer_id")[["signup_at"]].join(per).join(repeat.rename("repeat"))
    last_day = d - pd.Timedelta(days=1)
    origin = out["first"].fillna(out.signup_at.dt.floor("D"))
    freq = (out.n.fillna(0) - 1).clip(lower=0).astype("int64")
    res = pd.DataFrame(index=out.index)
    res["frequency"] = freq
    res["recency"] = ((out["last"] - out["first"]).dt.days.fillna(0) / unit_days).astype("float64")
    res["T"] = (last_day - origin).dt.days / unit_days
    res["monetary_value"] = np.where(freq > 0, (out.repeat.fillna(0) / freq.where(freq > 0, 1)).clip(lower=0), 0.0)
    return res.sort_index()


def job(name: str, data_dir: Path, engine: str, sample: int | None) -> dict:
    from customer_value.config import Settings

    settings = Settings()
    t0 = time.perf_counter()
    result: dict = {"job": name, "load_average": os.getloadavg()[0]}
    if name == "features_from_files":
        from customer_value.features import build_features_from_files

        t1, c1 = time.perf_counter(), time.process_time()
        out = build_features_from_files(data_dir, AS_OF, settings, engine=engine)
        result.update(seconds=time.perf_counter() - t1, cpu_seconds=time.process_time() - c1, load_seconds=0.0,
                      out_rows=len(out), out_columns=out.shape[1])
        result["peak_rss_gib"] = _peak_rss_gib()
        return result
    tables = _load(data_dir)
    result["load_seconds"] = time.perf_counter() - t0
    from customer_value.features import build_features, build_targets, rfm_summary  # imports are not timed
    result["input_rows"] = sum(len(f) for _, f in tables.items())
    result["transactions"] = len(tables.transactions)
    t1, c1 = time.perf_counter(), time.process_time()
    if name == "features":
        out = build_features(tables, AS_OF, settings, engine=engine)
    elif name == "targets":
        out = build_targets(tables, AS_OF, settings, engine=engine)
    elif name == "rfm":
        out = rfm_summary(tables, AS_OF, settings, engine=engine)
    elif name == "rfm_unsorted":  # the same rows shuffled (outside the timing): the Ibis/DuckDB expression runs
        import numpy as np

        from customer_value.data.tables import Tables

        order = np.random.default_rng(0).permutation(len(tables.transactions))
        tables = Tables.from_frames(customers=tables.customers,
                                    transactions=tables.transactions.iloc[order].reset_index(drop=True))
        t1, c1 = time.perf_counter(), time.process_time()
        out = rfm_summary(tables, AS_OF, settings, engine=engine)
    elif name == "rfm_pandas":
        out = pandas_rfm(tables, AS_OF)
    elif name == "rfm_lifetimes":
        import warnings

        import pandas as pd

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from lifetimes.utils import summary_data_from_transaction_data
        tx = tables.transactions
        d = pd.Timestamp(AS_OF)
        if sample:
            ids = tables.customers.customer_id.sample(n=min(sample, len(tables.customers)), random_state=0)
            tx = tx[tx.customer_id.isin(ids)]
        result["transactions"] = len(tx)
        result["customers"] = tx.customer_id.nunique() if sample else len(tables.customers)
        t1, c1 = time.perf_counter(), time.process_time()  # the same transactions as ours
        tx = tx[(tx.occurred_at < d) & (tx.amount > 0)]
        out = summary_data_from_transaction_data(
            tx, "customer_id", "occurred_at", monetary_value_col="amount",
            observation_period_end=d - pd.Timedelta(days=1), freq="D",
        )
    else:
        raise ValueError(name)
    result.update(seconds=time.perf_counter() - t1, cpu_seconds=time.process_time() - c1, out_rows=len(out),
                  out_columns=out.shape[1])
    result["peak_rss_gib"] = _peak_rss_gib()
    if name == "rfm_pandas":  # the two implementations agree
        ours = rfm_summary(tables, AS_OF, settings, engine=engine)[["frequency", "recency", "T", "monetary_value"]]
        result["max_abs_diff_vs_ours"] = float((ours.sort_index() - out).abs().max().max())
    return result


# -- orchestration ------------------------------------------------------------------------------


def simulate(n: int, seed: int, out: Path) -> None:
    from customer_value.data.writing import write_tables
    from customer_value.simulation.world import simulate_world

    t0 = time.perf_counter()
    world = simulate_world(n, seed, oracle_replicates=4)
    write_tables(world.tables, out)
    print(json.dumps({"simulated": n, "seconds": time.perf_counter() - t0, "peak_rss_gib": _peak_rss_gib()}))


def _child(args: list[str]) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--engine", default="duckdb")
    parser.add_argument("--lifetimes-sample", type=int, default=None,
                        help="run lifetimes' helper on this many customers only (default: all)")
    parser.add_argument("--jobs", default="features,targets,features_from_files,rfm,rfm_unsorted,rfm_pandas,rfm_lifetimes")
    parser.add_argument("--job", help=argparse.SUPPRESS)
    parser.add_argument("--simulate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    cache = args.cache or Path(tempfile.gettempdir()) / "customer_value_bench" / f"world-{args.customers}-{args.seed}"

    if args.simulate_only:
        simulate(args.customers, args.seed, cache)
        return
    if args.job:
        print(json.dumps(job(args.job, cache, args.engine, args.lifetimes_sample)))
        return

    if not (cache / "transactions.parquet").exists():
        print(f"simulating {args.customers:,} customers into {cache} ...", flush=True)
        print(_child(["--customers", str(args.customers), "--seed", str(args.seed), "--cache", str(cache),
                      "--simulate-only"]), flush=True)
    rows = {}
    for name in args.jobs.split(","):
        extra = ["--lifetimes-sample", str(args.lifetimes_sample)] if args.lifetimes_sample else []
        r = _child(["--cache", str(cache), "--engine", args.engine, "--job", name, *extra])
        rows[name] = r
        n_rows = r.get("transactions") if name.startswith("rfm") else r.get("input_rows")
        rate = f"{n_rows / r['seconds']:>12,.0f} rows/s" if n_rows else " " * 19
        print(f"{name:<20} {r['seconds']:8.1f} s (cpu {r['cpu_seconds']:6.1f} s)  {rate}  peak {r['peak_rss_gib']:5.2f} GiB  "
              f"(read {r.get('load_seconds', 0):.1f} s; out {r['out_rows']:,} x {r['out_columns']})"
              + (f"  max|diff| vs ours {r['max_abs_diff_vs_ours']:.2e}" if "max_abs_diff_vs_ours" in r else "")
              + f"  [load avg {r['load_average']:.1f}]",
              flush=True)
    if "rfm" in rows and "rfm_lifetimes" in rows:
        life, ours = rows["rfm_lifetimes"], rows["rfm"]
        scale = 1.0
        if args.lifetimes_sample:  # lifetimes on a subsample: compare per transaction
            scale = ours["transactions"] / max(life["transactions"], 1)
            print(f"(lifetimes ran on {life['customers']:,} sampled customers; scaled by transactions)")
        print(f"RFM speed-up vs lifetimes: {life['seconds'] * scale / ours['seconds']:.1f}x wall, "
              f"{life['cpu_seconds'] * scale / ours['cpu_seconds']:.1f}x cpu")
    if "rfm_unsorted" in rows and "rfm_lifetimes" in rows:
        life, ours = rows["rfm_lifetimes"], rows["rfm_unsorted"]
        scale = ours["transactions"] / max(life["transactions"], 1) if args.lifetimes_sample else 1.0
        print(f"RFM speed-up vs lifetimes, transactions in random order (Ibis on DuckDB): "
              f"{life['seconds'] * scale / ours['seconds']:.1f}x wall, {life['cpu_seconds'] * scale / ours['cpu_seconds']:.1f}x cpu")
    if "rfm" in rows and "rfm_pandas" in rows:
        print(f"RFM speed-up vs pandas groupby: {rows['rfm_pandas']['seconds'] / rows['rfm']['seconds']:.1f}x wall, "
              f"{rows['rfm_pandas']['cpu_seconds'] / rows['rfm']['cpu_seconds']:.1f}x cpu")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
