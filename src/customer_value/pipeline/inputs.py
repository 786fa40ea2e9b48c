"""The input edge every job shares: load and validate a data directory, and when rows were set
aside or values nulled (non-strict mode) write the validation report and say so. Nothing is
dropped unseen."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from customer_value.config import Settings
from customer_value.data.loading import LoadedData, load_tables

DEFAULT_REPORT = Path("validation_report.csv")


def load_inputs(data_dir: Path, settings: Settings, report: Path | None = None,
                say: Callable[[str], None] | None = None) -> LoadedData:
    """Validated tables; what was set aside or nulled goes to ``report`` (default ``validation_report.csv``)."""
    loaded = load_tables(data_dir, settings)
    if loaded.report.has_problems:
        path = loaded.report.write(report or DEFAULT_REPORT)
        if say is not None:
            say(f"{loaded.report.describe()}; report: {path}")
    return loaded
