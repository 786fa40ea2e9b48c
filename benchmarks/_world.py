"""What-if simulator parameters for the benchmarks: ``--world name=value`` overrides of ``WorldParams``."""

from __future__ import annotations


def world_params(overrides: list[str]):
    """``WorldParams`` with ``name=value`` overrides (numeric parameters), for what-if runs."""
    from customer_value.data.simulate import WorldParams

    return WorldParams(**{k: float(v) for k, v in (o.split("=", 1) for o in overrides)})
