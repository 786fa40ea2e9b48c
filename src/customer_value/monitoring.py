"""Score drift between two scorings: population stability index (PSI) per key column.

PSI = sum over bins (a - e) * ln(a / e), with bins cut at the *previous* scoring's deciles.
Rule of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 large shift.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DRIFT_COLUMNS = (
    "customer_value",
    "expected_revenue",
    "expected_cost_to_serve",
    "churn_probability",
    "p_alive",
)


def population_stability_index(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """PSI of ``actual`` against ``expected`` on ``expected``'s quantile bins (ties merged)."""
    expected = np.asarray(expected, dtype=float)
    actual = np.asarray(actual, dtype=float)
    expected = expected[np.isfinite(expected)]
    actual = actual[np.isfinite(actual)]
    if len(expected) == 0 or len(actual) == 0:
        return float("nan")
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1))[1:-1])
    e = np.bincount(np.searchsorted(edges, expected, side="right"), minlength=len(edges) + 1) / len(expected)
    a = np.bincount(np.searchsorted(edges, actual, side="right"), minlength=len(edges) + 1) / len(actual)
    e = np.clip(e, 1e-6, None)
    a = np.clip(a, 1e-6, None)
    return float(np.sum((a - e) * np.log(a / e)))


def decile_profile(scores: pd.DataFrame, columns: tuple[str, ...] = DRIFT_COLUMNS, bins: int = 10) -> dict[str, dict[str, list[float]]]:
    """Bin edges at each column's deciles and the share in each bin: a small JSON that lets the
    next scoring compute PSI without keeping this scoring's rows."""
    profile = {}
    for c in columns:
        if c not in scores.columns:
            continue
        values = scores[c].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if len(values) == 0:
            continue
        edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1))[1:-1])
        shares = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1) / len(values)
        profile[c] = {"edges": edges.tolist(), "shares": shares.tolist()}
    return profile


def psi_against_profile(profile: dict[str, dict[str, list[float]]], scores: pd.DataFrame) -> dict[str, float]:
    """PSI of this scoring against a previous scoring's :func:`decile_profile`."""
    out = {}
    for c, previous in profile.items():
        if c not in scores.columns:
            continue
        values = scores[c].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        edges = np.asarray(previous["edges"])
        e = np.clip(np.asarray(previous["shares"]), 1e-6, None)
        a = np.clip(np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1) / max(len(values), 1), 1e-6, None)
        out[c] = float(np.sum((a - e) * np.log(a / e)))
    return out


def score_distribution(scores: pd.DataFrame, columns: tuple[str, ...] = DRIFT_COLUMNS) -> dict[str, float]:
    """Mean and quartiles of each key column, plus segment shares: the numbers logged per scoring."""
    out: dict[str, float] = {"rows": float(len(scores))}
    for c in columns:
        if c in scores.columns:
            q = scores[c].quantile([0.1, 0.5, 0.9])
            out[f"{c}.mean"] = float(scores[c].mean())
            out[f"{c}.sum"] = float(scores[c].sum())
            out[f"{c}.p10"], out[f"{c}.p50"], out[f"{c}.p90"] = (float(v) for v in q)
    if "value_segment" in scores.columns:
        shares = scores["value_segment"].value_counts(normalize=True)
        for segment, share in shares.items():
            out[f"segment_share.{segment}"] = float(share)
    return out
