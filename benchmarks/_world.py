"""What-if simulator parameters for the benchmarks: ``--world name=value`` overrides of ``WorldParams``."""

from __future__ import annotations

import argparse


def world_params(overrides: list[str]):
    """``WorldParams`` with ``name=value`` overrides (numeric parameters), for what-if runs."""
    from customer_value.simulation.world import WorldParams

    return WorldParams(**{k: float(v) for k, v in (o.split("=", 1) for o in overrides)})


def add_world_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--world PARAM=VALUE`` option (repeatable) that :func:`world_params` reads."""
    parser.add_argument("--world", action="append", default=[], metavar="PARAM=VALUE",
                        help="override a simulator parameter (WorldParams), e.g. purchase_shape=2")
