"""Benchmark: the weekly batch at scale. Score a 1M-customer world from raw tables in one process
(load + validate + features + all models + HTML report + MLflow scoring run), time per stage and
peak memory.

    .venv/bin/python benchmarks/score.py                                  # train on 50k, score 1M
    .venv/bin/python benchmarks/score.py --customers 100000 --train-customers 20000   # a smoke run
    .venv/bin/python benchmarks/score.py --work /tmp/cvscore              # reuse data/model there

Preparation (not timed as scoring): simulate a ``--train-customers`` world and train a model on it
as of ``--as-of`` (``pipeline.train``, ``--trials`` each, no backtest) into a throw-away SQLite
MLflow store under ``--work``; simulate the ``--customers`` world and write its tables there.
Both are reused when already present under ``--work``.

Scoring runs in a fresh child process (so its peak RSS is the scoring's alone) through
``pipeline.score.score`` with the report and the MLflow scoring run, exactly as
``customer-value score`` does. Target (issue #6): under 5 minutes and under 8 GiB on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

TARGET_SECONDS = 300
TARGET_GIB = 8.0


sys.path.insert(0, str(Path(__file__).resolve().parent))
from _memory import peak_rss_gib  # noqa: E402


def _peak_rss_gib() -> float:
    return peak_rss_gib()


def _env(work: Path) -> dict[str, str]:
    return {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow' / 'mlflow.db'}",
            "CUSTOMER_VALUE_HOME": str(work / "home")}


def prepare(args: argparse.Namespace, work: Path) -> str:
    """Simulate and train (once per --work directory); return the registered model URI."""
    from customer_value.config import Settings
    from customer_value.simulation.world import simulate_world, write_world

    os.environ.update(_env(work))
    (work / "mlflow").mkdir(parents=True, exist_ok=True)
    as_of = dt.date.fromisoformat(args.as_of)
    settings = Settings(trials=args.trials, seed=args.seed)
    marker = work / "model_uri.txt"
    if not marker.exists():
        t0 = time.perf_counter()
        train_dir = work / f"train-{args.train_customers}"
        write_world(simulate_world(args.train_customers, args.seed + 1, settings=settings, truth_as_of=args.as_of),
                    train_dir)
        from customer_value.pipeline.train import train

        result = train(train_dir, as_of, "score-benchmark", settings, backtest=False)
        marker.write_text(result.model_uri)
        print(f"prepared: trained {result.model_uri} on {args.train_customers:,} customers "
              f"in {time.perf_counter() - t0:.0f}s", flush=True)
    data = work / f"score-{args.customers}"
    if not (data / "transactions.parquet").exists():
        t0 = time.perf_counter()
        write_world(simulate_world(args.customers, args.seed, settings=settings, truth_as_of=args.as_of), data)
        print(f"prepared: simulated {args.customers:,} customers in {time.perf_counter() - t0:.0f}s", flush=True)
    return marker.read_text().strip()


def score_stage(args: argparse.Namespace, work: Path, model_uri: str) -> dict:
    """The timed part (in the child process): one call of pipeline.score.score."""
    from customer_value.pipeline.score import score

    as_of = dt.date.fromisoformat(args.as_of)
    marks: list[tuple[str, float]] = []
    start = time.perf_counter()

    def progress(message: str) -> None:
        marks.append((message, time.perf_counter() - start))
        print(f"  {marks[-1][1]:7.1f}s  {message}  (peak RSS so far {_peak_rss_gib():.2f} GiB)", flush=True)

    result = score(work / f"score-{args.customers}", as_of, model_uri, work / "scores.parquet",
                   report=work / "report.html", progress=progress)
    total = time.perf_counter() - start
    marks.append(("logged the scoring run to MLflow", total))
    stages = {}
    for (message, begin), (_, end) in zip(marks, marks[1:]):
        stages[message] = end - begin
    return {"rows": len(result.scores), "total_seconds": total, "peak_rss_gib": _peak_rss_gib(), "stages": stages,
            "run_id": result.run_id}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000, help="customers in the scored world")
    parser.add_argument("--train-customers", type=int, default=50_000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--as-of", default="2024-07-01")
    parser.add_argument("--work", type=Path, default=None, help="working directory (default: a new temp dir)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: the scoring process
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    work = (args.work or Path(tempfile.mkdtemp(prefix="cv-score-bench-"))).resolve()

    if args.child:
        os.environ.update(_env(work))
        print(json.dumps(score_stage(args, work, args.child)), flush=True)
        return 0

    model_uri = prepare(args, work)
    print(f"scoring {args.customers:,} customers with {model_uri} (work dir {work})", flush=True)
    child = subprocess.run([sys.executable, __file__, "--child", model_uri, "--work", str(work),
                            "--customers", str(args.customers), "--as-of", args.as_of],
                           env=_env(work), capture_output=True, text=True)
    lines = child.stdout.strip().splitlines()
    for line in lines[:-1]:
        print(line)
    if child.returncode != 0:
        print(child.stderr[-4000:], file=sys.stderr)
        return child.returncode
    result = json.loads(lines[-1])
    print()
    print(f"{result['rows']:,} rows scored; per stage (s):")
    for stage, seconds in result["stages"].items():
        print(f"  {seconds:7.1f}  {stage}")
    print(f"total {result['total_seconds']:.0f}s (target < {TARGET_SECONDS}s), "
          f"peak RSS {result['peak_rss_gib']:.2f} GiB (target < {TARGET_GIB} GiB)")
    ok = result["total_seconds"] < TARGET_SECONDS and result["peak_rss_gib"] < TARGET_GIB
    print("[ok]" if ok else "[MISS]", "score benchmark")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
