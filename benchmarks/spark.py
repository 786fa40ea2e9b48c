"""Benchmark: scoring on local Spark beside DuckDB, at 250k and 1M customers, and how Spark scales.

    flock /tmp/coord/heavy.lock nice -n 5 .venv/bin/python benchmarks/spark.py \\
        --model-store /tmp/cvscore15 --world 1000000=/tmp/cvscore15/score-1000000 --work /tmp/cvspark

Each scoring is ``customer-value score --no-log`` in a fresh process (start-up, model load and, for
Spark, the session's start included, as a user runs it): ``--engine spark`` writes a directory of
Parquet part files, the DuckDB engine one file. The table prints wall time and rows/s per engine
and size, Spark's time per stage, and the ratio of Spark's time at the largest size to the
smallest beside the ratio of their sizes (linear scaling: the two are equal).

The model comes from ``--model-store`` (a work directory of ``benchmarks/score.py``: its SQLite
MLflow store and ``model_uri.txt``); worlds are given as ``N=DIR`` or simulated into ``--work``
(``customer-value simulate --seed 7``). Results are kept as ``spark-<engine>-<N>.json`` under
``--work`` and every result found there is printed. Any run above 20k customers holds the shared
heavy lock (see /tmp/coord/README.md): start the whole script under ``flock``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "customer-value")
SPARK_CONF = {"spark.driver.memory": "8g", "spark.sql.shuffle.partitions": "8"}
"""Local mode runs in the driver's JVM: give it room, and enough partitions to bound each task."""


def _env(store: Path) -> dict[str, str]:
    return {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow' / 'mlflow.db'}",
            "CUSTOMER_VALUE_HOME": str(store / "home")}


def _world(size: int, given: dict[int, Path], work: Path) -> Path:
    if size in given:
        return given[size]
    out = work / f"world-{size}"
    if not (out / "customers.parquet").exists():
        print(f"simulating {size:,} customers into {out}", flush=True)
        subprocess.run([CLI, "simulate", "--customers", str(size), "--seed", "7", "--out", str(out)], check=True,
                       stdout=subprocess.DEVNULL)
    return out


def _score(engine: str, size: int, world: Path, model: str, store: Path, work: Path, as_of: str,
           master: str) -> dict:
    out = work / (f"scores-spark-{size}" if engine == "spark" else f"scores-duckdb-{size}.parquet")
    command = [CLI, "score", "--no-log", "--data", str(world), "--as-of", as_of, "--model", model, "--out", str(out)]
    if engine == "spark":
        config = work / "spark.yaml"
        config.write_text("spark:\n  master: \"" + master + "\"\n  conf:\n"
                          + "".join(f"    {k}: \"{v}\"\n" for k, v in SPARK_CONF.items()))
        command += ["--engine", "spark", "--config", str(config)]
    print(f"{engine} {size:,}: {' '.join(command)}", flush=True)
    start = time.perf_counter()
    run = subprocess.run(command, env=_env(store), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"{engine} at {size:,} failed:\n{run.stderr[-3000:]}")
    stages = {}
    match = re.search(r"load model .*", run.stderr)
    if engine == "spark" and match:
        stages = {name.strip(): float(value) for name, value in re.findall(r"([a-z0-9 ]+?) ([0-9.]+) s", match.group(0))}
    scored = re.search(r"scored ([0-9,]+) customers", run.stderr)
    rows = int(scored.group(1).replace(",", "")) if scored else size
    result = {"engine": engine, "customers": size, "rows": rows, "seconds": round(seconds, 1),
              "rows_per_second": round(rows / seconds, 1), "stages": stages, "master": master if engine == "spark" else None}
    (work / f"spark-{engine}-{size}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result), flush=True)
    return result


def _table(work: Path) -> str:
    results = [json.loads(p.read_text()) for p in sorted(work.glob("spark-*-*.json"))]
    results.sort(key=lambda r: (r["engine"], r["customers"]))
    lines = ["| engine | customers | wall s | rows/s | stages (Spark) |", "|---|---:|---:|---:|---|"]
    for r in results:
        stages = ", ".join(f"{k} {v:.0f}" for k, v in r.get("stages", {}).items())
        lines.append(f"| {r['engine']} | {r['customers']:,} | {r['seconds']:.1f} | {r['rows_per_second']:,.0f} | {stages} |")
    spark = sorted((r for r in results if r["engine"] == "spark"), key=lambda r: r["customers"])
    if len(spark) >= 2:
        small, large = spark[0], spark[-1]
        lines.append("")
        lines.append(f"Spark {small['customers']:,} -> {large['customers']:,} customers "
                     f"(x{large['customers'] / small['customers']:.1f}): time x{large['seconds'] / small['seconds']:.2f} "
                     f"(linear: x{large['customers'] / small['customers']:.1f}; below it, the fixed start-up cost "
                     "is being amortised)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[250_000, 1_000_000])
    parser.add_argument("--engines", nargs="+", default=["spark", "duckdb"], choices=["spark", "duckdb"])
    parser.add_argument("--world", action="append", default=[], help="N=DIR: an existing world of N customers")
    parser.add_argument("--model-store", type=Path, default=Path("/tmp/cvscore15"),
                        help="a benchmarks/score.py work directory (mlflow/ and model_uri.txt)")
    parser.add_argument("--model", default=None, help="model URI (default: model_uri.txt of --model-store)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/cvspark"))
    parser.add_argument("--as-of", default="2024-07-01")
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--print-only", action="store_true", help="print the results kept under --work")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if not args.print_only:
        given = {int(k): Path(v) for k, v in (w.split("=", 1) for w in args.world)}
        model = args.model or (args.model_store / "model_uri.txt").read_text().strip()
        for size in args.sizes:
            world = _world(size, given, args.work)
            for engine in args.engines:
                _score(engine, size, world, model, args.model_store, args.work, args.as_of, args.master)
    print(_table(args.work))


if __name__ == "__main__":
    main()
