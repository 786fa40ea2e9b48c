"""`customer-value validate`: load a data directory, print what is in it, write the report."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from customer_value.config import Settings
from customer_value.data.loading import LoadedData, load_tables


def validate_directory(data_dir: Path, settings: Settings, report_path: Path | None, console: Console) -> LoadedData:
    """Validate, print a per-table summary and, when rows were set aside, write the report."""
    loaded = load_tables(data_dir, settings)
    console.print(summary_table(loaded, data_dir))
    set_aside = loaded.report.n_set_aside
    if set_aside:
        path = loaded.report.write(report_path or Path("validation_report.csv"))
        total = sum(set_aside.values())
        console.print(
            f"[yellow]{total} bad row(s) set aside[/yellow] "
            f"({', '.join(f'{t}: {n}' for t, n in set_aside.items())}); report: {path}"
        )
    return loaded


def summary_table(loaded: LoadedData, data_dir: Path) -> Table:
    table = Table(title=f"Data in {data_dir}")
    for column in ("table", "rows", "customers", "from", "to", "bad rows"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for name, info in loaded.report.summary.items():
        if info.get("missing"):
            table.add_row(name, "-", "-", "-", "-", "[dim]absent (optional)[/dim]")
            continue
        first, last = info["first"], info["last"]
        table.add_row(
            name, f"{info['rows']:,}", f"{info['customers']:,}",
            f"{first:%Y-%m-%d}" if first is not None else "-",
            f"{last:%Y-%m-%d}" if last is not None else "-",
            str(info["problems"]),
        )
    return table
