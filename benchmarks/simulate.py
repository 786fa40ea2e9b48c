"""How fast, how big and how memory-hungry is the simulated world? Rerun to check.

    .venv/bin/python benchmarks/simulate.py [--sizes 100000 1000000] [--seed 7] [--keep DIR]

Each size runs in a fresh subprocess (so peak memory, read from ``ru_maxrss``, belongs to that
size alone), simulates the world, writes it as Parquet to a temporary directory and reports wall
time (simulate vs write) and process CPU time, rows per table, total rows, rows per second and
peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TABLE_NAMES = ("customers", "transactions", "engagement_events", "invoices", "support_tickets", "truth")


def measure_one(n_customers: int, seed: int, out_dir: Path) -> dict:
    """Simulate and write one world; everything measured in this (fresh) process."""
    from customer_value.simulation.world import simulate_world, write_world

    t0 = time.perf_counter()
    world = simulate_world(n_customers, seed)
    t1 = time.perf_counter()
    paths = write_world(world, out_dir)
    t2 = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rows = {name: len(frame) for name, frame in world.tables.items()}
    rows["truth"] = len(world.truth)
    return {
        "customers": n_customers,
        "simulate_s": t1 - t0,
        "write_s": t2 - t1,
        "rows": rows,
        "bytes_on_disk": sum(p.stat().st_size for p in paths.values()),
        "oracle_replicates": world.meta["oracle_replicates"],
        # Linux reports kilobytes
        "cpu_s": usage.ru_utime + usage.ru_stime,  # wall time inflates on a shared machine; CPU less so
        "peak_rss_gib": usage.ru_maxrss / 2**20,
    }


def run_in_subprocess(n_customers: int, seed: int, keep: Path | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="cv-bench-") as tmp:
        out = keep / f"world_{n_customers}" if keep else Path(tmp)
        cmd = [sys.executable, __file__, "--one", str(n_customers), "--seed", str(seed), "--out", str(out)]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        return json.loads(done.stdout.strip().splitlines()[-1])


def report(result: dict) -> str:
    rows = result["rows"]
    table_rows = sum(v for k, v in rows.items() if k != "truth")
    total_s = result["simulate_s"] + result["write_s"]
    lines = [
        f"== {result['customers']:,} customers (oracle replicates: {result['oracle_replicates']})",
        f"  wall time   simulate {result['simulate_s']:8.1f} s   write {result['write_s']:6.1f} s   "
        f"total {total_s:8.1f} s   (CPU {result['cpu_s']:.1f} s)",
        *(f"  {name:<18} {rows[name]:>14,}" for name in TABLE_NAMES),
        f"  {'total (5 tables)':<18} {table_rows:>14,}",
        f"  rows/s      {table_rows / total_s:,.0f} (simulate + write)",
        f"  on disk     {result['bytes_on_disk'] / 2**20:,.0f} MiB",
        f"  peak RSS    {result['peak_rss_gib']:.2f} GiB",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None, help="write worlds here instead of a temp dir")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(measure_one(args.one, args.seed, args.out)))
        return
    for n in args.sizes:
        print(report(run_in_subprocess(n, args.seed, args.keep)), flush=True)


if __name__ == "__main__":
    main()
