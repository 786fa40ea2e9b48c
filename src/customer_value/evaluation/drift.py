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


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]


def _decile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Inner bin edges at ``values``' quantiles (ties merged)."""
    return np.unique(np.quantile(values, np.linspace(0, 1, bins + 1))[1:-1])


def _shares(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The share of ``values`` in each bin cut at ``edges``."""
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1) / max(len(values), 1)


def _psi(expected_shares: np.ndarray, actual_shares: np.ndarray) -> float:
    """The PSI sum over bins (shares floored at 1e-6 so an empty bin stays finite)."""
    e = np.clip(np.asarray(expected_shares, dtype=float), 1e-6, None)
    a = np.clip(np.asarray(actual_shares, dtype=float), 1e-6, None)
    return float(np.sum((a - e) * np.log(a / e)))


def population_stability_index(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """PSI of ``actual`` against ``expected`` on ``expected``'s quantile bins (ties merged)."""
    expected, actual = _finite(expected), _finite(actual)
    if len(expected) == 0 or len(actual) == 0:
        return float("nan")
    edges = _decile_edges(expected, bins)
    return _psi(_shares(edges, expected), _shares(edges, actual))


def decile_profile(scores: pd.DataFrame, columns: tuple[str, ...] = DRIFT_COLUMNS, bins: int = 10) -> dict[str, dict[str, list[float]]]:
    """Bin edges at each column's deciles and the share in each bin: a small JSON that lets the
    next scoring compute PSI without keeping this scoring's rows."""
    profile = {}
    for c in columns:
        if c not in scores.columns:
            continue
        values = _finite(scores[c].to_numpy(dtype=float))
        if len(values) == 0:
            continue
        edges = _decile_edges(values, bins)
        profile[c] = {"edges": edges.tolist(), "shares": _shares(edges, values).tolist()}
    return profile


def psi_against_profile(profile: dict[str, dict[str, list[float]]], scores: pd.DataFrame) -> dict[str, float]:
    """PSI of this scoring against a previous scoring's :func:`decile_profile`."""
    return {c: _psi(previous["shares"], _shares(np.asarray(previous["edges"]), _finite(scores[c].to_numpy(dtype=float))))
            for c, previous in profile.items() if c in scores.columns}


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
