"""Value segments: ``negative`` below zero, else ``low / medium / high / top`` at value quantiles
learned at fit time, so weekly scorings of one model share cut points."""

from __future__ import annotations

import numpy as np


def assign_segments(values: np.ndarray, cuts: tuple[float, float, float]) -> np.ndarray:
    """negative / low / medium / high / top from value cut points (see module docstring)."""
    values = np.asarray(values, dtype=float)
    labels = np.array(["low", "medium", "high", "top"], dtype=object)
    out = labels[np.searchsorted(np.asarray(cuts), values, side="right")]
    out[values < 0] = "negative"
    return out


def segment_cuts(values: np.ndarray, quantiles: tuple[float, float, float]) -> tuple[float, float, float]:
    non_negative = np.asarray(values, dtype=float)
    non_negative = non_negative[np.isfinite(non_negative) & (non_negative >= 0)]
    if len(non_negative) == 0:
        return (0.0, 0.0, 0.0)
    return tuple(float(v) for v in np.quantile(non_negative, quantiles))  # type: ignore[return-value]
