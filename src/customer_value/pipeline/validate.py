"""`customer-value validate`: load a data directory, print what is in it, write the report."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from customer_value.config import Settings
from customer_value.data.loading import LoadedData, load_tables


def validate_directory(data_dir: Path, settings: Settings, report_path: Path | None, console: Console) -> LoadedData:
    """Validate, print a per-table summary and, when rows were set aside or references nulled,
    write the report and account for every row (nothing changes unseen)."""
    loaded = load_tables(data_dir, settings)
    console.print(summary_table(loaded, data_dir))
    if loaded.report.has_problems:
        for line in accounting(loaded):
            console.print(line)
        path = loaded.report.write(report_path or Path("validation_report.csv"))
        console.print(f"[yellow]{loaded.report.describe()}[/yellow]; report: {path}")
    return loaded


def summary_table(loaded: LoadedData, data_dir: Path) -> Table:
    """Per table: rows kept, customers, time span and rows set aside (fits 80 columns)."""
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
            f"{info['set_aside']:,}",
        )
    return table


def accounting(loaded: LoadedData) -> list[str]:
    """One line per table with findings: rows in = rows kept + rows set aside, and values nulled."""
    lines = []
    for name, info in loaded.report.summary.items():
        if info.get("missing") or not (info["set_aside"] or info["nulled"]):
            continue
        nulled = f" ({info['nulled']:,} with a reference set to null)" if info["nulled"] else ""
        lines.append(f"  {name}: {info['rows_in']:,} rows in = {info['rows']:,} kept{nulled} "
                     f"+ {info['set_aside']:,} set aside")
    return lines
