"""`customer-value`: thin typer commands (contract section 6) that build one Settings object and
call the pipeline. No computation lives here."""

from __future__ import annotations

import sys
from datetime import date
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
    from customer_value.data.simulate import simulate_world, write_world

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
    from customer_value.pipeline.outputs import write_parquet_atomically

    settings = settings_from(config, strict=strict)
    day = parse_as_of(as_of)
    loaded = load_or_exit(data, settings)
    frame = build_features(loaded.tables, day, settings, engine=engine, progress=True)
    if targets:
        target_frame = build_targets(loaded.tables, day, settings, engine=engine)
        frame = frame.merge(target_frame, on="customer_id", how="left", validate="one_to_one", suffixes=("", "_target"))
    write_parquet_atomically(frame, out)
    console.print(f"[green]wrote[/green] {len(frame):,} customers x {frame.shape[1] - 1} columns to {out}")


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
