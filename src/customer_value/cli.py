"""`customer-value`: thin typer commands (contract section 6) that build one Settings object and
call the pipeline. No computation lives here."""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from customer_value.config import ConfigError, Settings, load_settings
from customer_value.data.loading import DataValidationError

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
datasets_app = typer.Typer(no_args_is_help=True, help="Public data sets converted to contract tables.")
app.add_typer(datasets_app, name="datasets")

console = Console(stderr=True)

DataDir = Annotated[Path, typer.Option("--data", exists=True, file_okay=False, help="Directory of contract tables.")]
AsOf = Annotated[str, typer.Option("--as-of", help="Score/feature date D (YYYY-MM-DD); history is < D 00:00 UTC.")]
ConfigFile = Annotated[Optional[Path], typer.Option("--config", exists=True, dir_okay=False, help="YAML config.")]
Strict = Annotated[
    Optional[bool],
    typer.Option("--strict/--no-strict", help="Stop on bad rows (default) or set them aside into a report."),
]
Seed = Annotated[Optional[int], typer.Option("--seed", help="Random seed (overrides the config).")]


def settings_from(config: Path | None, **overrides: object) -> Settings:
    """The one Settings object of a command: YAML file, then CLI flags."""
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


def parse_as_of(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        console.print(f"[red]error:[/red] --as-of must be a date YYYY-MM-DD, got {value!r}")
        raise typer.Exit(2) from exc


def load_or_exit(data: Path, settings: Settings, report: Path | None = None):
    """Load and validate tables; bad input becomes a clear message and exit code 1."""
    from customer_value.data.loading import load_tables

    try:
        loaded = load_tables(data, settings)
    except DataValidationError as exc:
        console.print(f"[red]invalid input:[/red] {exc}")
        raise typer.Exit(1) from exc
    if loaded.report.n_set_aside:
        path = loaded.report.write(report or Path("validation_report.csv"))
        console.print(f"[yellow]{sum(loaded.report.n_set_aside.values())} bad row(s) set aside[/yellow]; report: {path}")
    return loaded


@app.command()
def simulate(
    customers: Annotated[int, typer.Option(help="Number of customers.")] = 20000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives byte-identical files.")] = 7,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("data/raw/demo"),
    truth_as_of: Annotated[str, typer.Option("--truth-as-of", help="Date of the ground-truth file.")] = "2024-07-01",
    config: ConfigFile = None,
) -> None:
    """Simulate a customer world (every contract table plus ground truth) into OUT."""
    from customer_value.simulation.world import simulate_world, write_world

    settings = settings_from(config, seed=seed)
    with console.status(f"simulating {customers:,} customers"):
        world = simulate_world(customers, seed, settings=settings, truth_as_of=truth_as_of)
        paths = write_world(world, out)
    for name, path in paths.items():
        console.print(f"  {name:<18} {path}")
    console.print(f"[green]simulated[/green] {customers:,} customers into {out}")


@app.command()
def validate(
    data: DataDir,
    config: ConfigFile = None,
    strict: Strict = None,
    report: Annotated[Optional[Path], typer.Option(help="Where the set-aside rows go (non-strict).")] = None,
) -> None:
    """Validate a data directory against the contract; exit non-zero on errors."""
    from customer_value.pipeline.validate import validate_directory

    settings = settings_from(config, strict=strict)
    try:
        validate_directory(data, settings, report, Console())
    except DataValidationError as exc:
        console.print(f"[red]invalid input:[/red] {exc}")
        raise typer.Exit(1) from exc


@app.command()
def features(
    data: DataDir,
    as_of: AsOf,
    out: Annotated[Path, typer.Option(help="Parquet file to write.")],
    engine: Annotated[str, typer.Option(help="duckdb (embedded) or spark.")] = "duckdb",
    targets: Annotated[bool, typer.Option("--targets", help="Also compute targets over [as_of, as_of + horizon).")] = False,
    config: ConfigFile = None,
    strict: Strict = None,
) -> None:
    """Point-in-time features (and optionally targets) for every customer signed up before AS_OF."""
    from customer_value.features import build_features, build_targets
    from customer_value.data.writing import write_parquet_atomically

    settings = settings_from(config, strict=strict)
    day = parse_as_of(as_of)
    loaded = load_or_exit(data, settings)
    frame = build_features(loaded.tables, day, settings, engine=engine, progress=True)
    if targets:
        target_frame = build_targets(loaded.tables, day, settings, engine=engine)
        frame = frame.merge(target_frame, on="customer_id", how="left", validate="one_to_one", suffixes=("", "_target"))
    write_parquet_atomically(frame, out)
    console.print(f"[green]wrote[/green] {len(frame):,} customers x {frame.shape[1] - 1} columns to {out}")


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _progress(message: str) -> None:
    console.print(f"[dim]{datetime.now():%H:%M:%S}[/dim] {message}")


@app.command()
def train(
    data: DataDir,
    as_of: AsOf,
    experiment: Annotated[str, typer.Option(help="MLflow experiment to log the run into.")],
    config: ConfigFile = None,
    trials: Annotated[Optional[int], typer.Option(help="Optuna trials per boosted model.")] = None,
    alias: Annotated[Optional[str], typer.Option(help="Move this registry alias (e.g. champion) to the new version.")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Registered model name.")] = None,
    backtest: Annotated[bool, typer.Option("--backtest/--no-backtest", help="Run the internal backtest.")] = True,
    export: Annotated[Optional[Path], typer.Option(help="Also save the model bundle here (e.g. models/customer_value).")] = None,
    strict: Strict = None,
    seed: Seed = None,
) -> None:
    """Fit every part as of AS_OF, log to MLflow, register; prints the model URI last."""
    from customer_value.pipeline.train import train as run_train

    _quiet_optuna()
    settings = settings_from(config, trials=trials, strict=strict, seed=seed, model_name=name)
    day = parse_as_of(as_of)
    try:
        result = run_train(data, day, experiment, settings, alias=alias, backtest=backtest, progress=_progress,
                           export_dir=export)
    except DataValidationError as exc:
        console.print(f"[red]invalid input:[/red] {exc}")
        raise typer.Exit(1) from exc
    for part, reason in result.fitted.skipped.items():
        console.print(f"[yellow]skipped {part}:[/yellow] {reason}")
    console.print(f"[green]trained[/green] run {result.run_id}; registered {result.model_uri}"
                  + (f" (alias {alias})" if alias else ""))
    typer.echo(result.model_uri)


@app.command()
def score(
    data: DataDir,
    as_of: AsOf,
    model: Annotated[str, typer.Option(help="models:/<name>/<version>, models:/<name>@<alias> or a local model directory.")],
    out: Annotated[Path, typer.Option(help="Parquet file to write (atomically).")],
    report: Annotated[Optional[Path], typer.Option(help="HTML report to write.")] = None,
    log_run: Annotated[bool, typer.Option("--log/--no-log", help="Log a scoring run to MLflow.")] = True,
    config: ConfigFile = None,
    strict: Strict = None,
) -> None:
    """Score every customer signed up before AS_OF exactly once."""
    from customer_value.pipeline.score import score as run_score

    settings = settings_from(config, strict=strict) if (config or strict is not None) else None
    day = parse_as_of(as_of)
    try:
        result = run_score(data, day, model, out, settings, report=report, log_run=log_run, progress=_progress)
    except DataValidationError as exc:
        console.print(f"[red]invalid input:[/red] {exc}")
        raise typer.Exit(1) from exc
    segments = result.scores["value_segment"].value_counts().to_dict()
    drains = int(result.scores["drain_flag"].sum())
    console.print(f"[green]scored[/green] {len(result.scores):,} customers -> {out}; segments {segments}; "
                  f"flagged to drain {drains:,}")
    if result.drift:
        console.print("drift (PSI vs previous scoring): " + ", ".join(f"{k} {v:.3f}" for k, v in result.drift.items()))


@app.command()
def backtest(
    data: DataDir,
    as_of: AsOf,
    experiment: Annotated[str, typer.Option(help="MLflow experiment to log the backtest into.")],
    cutoffs: Annotated[int, typer.Option(help="Number of rolling origins.")] = 3,
    spacing_days: Annotated[int, typer.Option(help="Days between origins.")] = 91,
    config: ConfigFile = None,
    trials: Annotated[Optional[int], typer.Option(help="Optuna trials per boosted model.")] = None,
    strict: Strict = None,
) -> None:
    """Refit as of several earlier dates, score, compare with what happened (beside the baselines)."""
    from customer_value.evaluation.backtest import backtest_command

    _quiet_optuna()
    settings = settings_from(config, trials=trials, strict=strict)
    day = parse_as_of(as_of)
    table = backtest_command(data, day, experiment, settings, cutoffs, spacing_days, progress=_progress)
    typer.echo(table)


@app.command()
def compare(
    experiment: Annotated[list[str], typer.Option(help="Experiment name (repeatable).")],
    metric: Annotated[str, typer.Option(help="Sort by this metric.")] = "backtest.value.spearman",
    ascending: Annotated[bool, typer.Option(help="Smallest first (for losses).")] = False,
    fmt: Annotated[str, typer.Option("--format", help="markdown or csv.")] = "markdown",
) -> None:
    """A table of training runs across experiments with their key metrics and parameters."""
    from customer_value.tracking import store as tracking
    from customer_value.pipeline.compare import compare_runs, format_table

    tracking.setup_tracking()
    try:
        table = compare_runs(experiment, metric, ascending)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    typer.echo(format_table(table, fmt))


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="Port on localhost.")] = 5000,
) -> None:
    """Open the MLflow UI on the embedded store (localhost only)."""
    import os
    import subprocess

    from customer_value.tracking import store as tracking

    uri = tracking.tracking_uri()
    artifacts = tracking.store_dir() / "artifacts"
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port)]
    if uri == tracking.default_tracking_uri():
        command += ["--artifacts-destination", str(artifacts)]
    console.print(f"MLflow UI on http://127.0.0.1:{port} (store {uri}); Ctrl-C stops it")
    raise typer.Exit(subprocess.call(command, env=os.environ.copy()))


@app.command()
def export(
    model: Annotated[str, typer.Option(help="models:/<name>/<version> or models:/<name>@<alias>.")],
    out: Annotated[Path, typer.Option(help="Directory to write the MLflow model to (e.g. models/customer_value).")],
) -> None:
    """Copy a registered model to a local directory, for scoring without a tracking server."""
    import shutil

    import mlflow

    from customer_value.tracking import store as tracking

    tracking.setup_tracking()
    if out.exists():
        shutil.rmtree(out)
    mlflow.artifacts.download_artifacts(artifact_uri=model, dst_path=str(out))
    console.print(f"[green]exported[/green] {model} to {out}; score with --model {out}")


@datasets_app.command("cdnow")
def datasets_cdnow(
    out: Annotated[Path, typer.Option(help="Output directory.")],
    master: Annotated[bool, typer.Option("--master/--sample", help="The full master file or the 1/10 sample.")] = False,
) -> None:
    """CDNOW (shipped with lifetimes) as contract tables; same-day purchases are merged."""
    from customer_value.data.cdnow import write_cdnow

    paths = write_cdnow(out, "master" if master else "sample")
    for name, path in paths.items():
        console.print(f"  {name:<18} {path}")


def main() -> None:  # pragma: no cover - entry point convenience
    app(sys.argv[1:])
