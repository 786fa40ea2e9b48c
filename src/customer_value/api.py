"""The Python API for notebooks: the very objects and functions the CLI calls.

    from customer_value import api
    settings = api.load_settings(seed=7)
    tables = api.load_tables("data/raw/demo", settings).tables
    result = api.train("data/raw/demo", date(2024, 7, 1), "my-experiment", settings)
    scored = api.score("data/raw/demo", date(2024, 7, 1), result.model_uri, Path("scores.parquet"))
"""

from customer_value.config import Settings, WhatIf, load_settings, load_whatif
from customer_value.data.cdnow import cdnow_tables, write_cdnow
from customer_value.data.loading import load_tables
from customer_value.evaluation.backtest import comparison_table, cutoffs_before, run_backtest
from customer_value.features import build_features, build_targets, rfm_summary
from customer_value.pipeline.compare import compare_runs, format_table
from customer_value.pipeline.report import render_html, write_html_report
from customer_value.pipeline.score import score
from customer_value.pipeline.train import train
from customer_value.pipeline.whatif import whatif
from customer_value.simulation.world import simulate_world, write_world
from customer_value.tracking.model import load_model, score_features
from customer_value.tracking.store import setup_tracking
from customer_value.training.fit import fit_value_model
from customer_value.valuation.drivers import looks_profitable_but_drains
from customer_value.valuation.whatif import reprice, summarise

__all__ = [
    "Settings", "WhatIf", "build_features", "build_targets", "cdnow_tables", "compare_runs", "comparison_table",
    "cutoffs_before", "fit_value_model", "format_table", "load_model", "load_settings", "load_tables",
    "load_whatif", "looks_profitable_but_drains", "render_html", "reprice", "rfm_summary", "run_backtest", "score", "score_features",
    "setup_tracking", "simulate_world", "summarise", "train", "whatif", "write_cdnow", "write_html_report", "write_world",
]
