"""Predictive intervals per customer (contract section 8: the ``*_p10`` / ``*_p90`` columns).

The value model predicts expectations. How far a customer's realised outcome lands from its
expectation is learned from a held-out snapshot, where both are known: :class:`IntervalModel`
is fitted on (prediction, realised outcome) pairs of net value (margin − cost-to-serve,
undiscounted, no referral), revenue, margin, cost-to-serve and the count of transactions, and
turns new predictions into their 10th and 90th percentiles.

Method: binned ("Mondrian") split conformal prediction. It needs nothing but predictions and
outcomes, so it serves any value model (on CDNOW, BG/NBD × Gamma-Gamma alone), and within a cell
its coverage holds whenever calibration and new customers are alike. (MAPIE would add a
dependency for the same arithmetic, without the atom at zero.)

* **Cells.** Customers are binned by the prediction (quantile bins; for net value a bin edge at
  zero, so losses and gains are never pooled) and, within each bin, by a context signal
  (``churn_probability`` by default: at one expected revenue, a likely-dead customer's outcome
  is "nothing or a lot", a safe one's is "about that much"). Every cell holds at least
  ``min_cell`` calibration customers; smaller ones merge with a neighbour.
* **Scores.** Within a cell the realised outcome is compared with the prediction as
  ``y / (|ŷ| + scale)``, ``scale`` being the median ``|ŷ|``: a ratio for large predictions (the
  tails are heavy, errors grow with the prediction) and the outcome itself in units of
  ``scale`` near zero, where a ratio would explode. A zero outcome scores exactly zero, so the
  mass at zero (customers who buy and cost nothing) survives as an atom.
* **Bounds.** Each cell keeps the central interval of its scores holding a share ``level`` of
  them. With an atom at the lower end (more than 10% of a cell realise exactly 0), the 10th
  percentile is that 0 and no one lies below it, so the upper bound is the ``level`` quantile
  instead of the ``(1 + level) / 2`` one: the interval still holds ``level`` of the cell, not more. A
  cell where more than ``level`` realise 0 gets ``[0, 0]``, which holds them all: no narrower
  honest answer exists, so such cells (nearly dead customers) hold more than asked.
* **Level.** ``level="cell"`` asks ``coverage`` of every cell: true percentiles, but overall
  more than ``coverage`` of customers land inside (the atom cells' excess; 0.82 on a simulated
  calibration snapshot, rising as a base ages and dead customers pile up). ``"overall"`` (the
  default) lowers one level for all cells until ``coverage`` of the calibration customers land
  inside, i.e. takes that excess from the cells with a continuous outcome (their intervals
  then hold e.g. 78%, a little under the 10th-90th percentiles), never below ``2·coverage − 1``.
  This assumes the calibration outcomes have the scored ones' horizon (an outcome over a
  shorter window has more zeros, and the level would drop too far).
* **Population.** The calibration customers are a year older than the ones the model will score,
  and a year of ageing adds nearly dead customers (the cells that hold more than asked), so a level
  set on the calibration mix over-covers the scored base. Given the population to be scored
  (``target``: its predictions and context; the fit passes the customers as of its training date),
  the overall level is set on the calibration cells weighted by that population's share in each:
  the coverage asked for is the scored base's, not the calibration year's.

* **Young histories.** With too few customers a horizon old, the fit calibrates on the longest
  shorter window that has enough (``training.fit.calibration_window``): the model forecasts that
  window for the customers at its start, every cell gets ``level="cell"`` (the overall level
  would be set where a shorter window's extra zeros sit) and ``calibration_days_`` records the
  window. Its outcomes are shaped a little differently from the horizon's, so such intervals are
  approximate (``benchmarks/intervals.py --young`` measures them).

:func:`customer_value_bounds` carries the net-value interval over to ``customer_value``;
:func:`coverage` and :func:`coverage_by` measure what share of realised outcomes fell inside.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

QUANTITIES: dict[str, str] = {
    "net_value": "net_value",
    "revenue": "expected_revenue",
    "cost_to_serve": "expected_cost_to_serve",
    "margin": "expected_margin",
    "transactions": "expected_transactions",
}
"""Each quantity (a column of the predicted and realised frames) -> its score-column stem
(``<stem>_p10``, ``<stem>_p90``): every figure over the horizon a score row forecasts in money
or in purchases has its interval."""
NON_NEGATIVE = ("revenue", "cost_to_serve", "transactions")
CONTEXT_COLUMNS = ("p_alive", "churn_probability")
"""The score columns worth passing as ``context``."""


def predicted_outcomes(scores: pd.DataFrame) -> pd.DataFrame:
    """The quantities the intervals are about, from score rows: net value (``expected_margin −
    expected_cost_to_serve``, undiscounted, no referral), ``expected_revenue``,
    ``expected_cost_to_serve``, ``expected_margin`` and ``expected_transactions`` (those the rows
    hold); named like :func:`~customer_value.features.build_targets`' columns."""
    out = {"net_value": scores["expected_margin"].to_numpy(dtype=float) - scores["expected_cost_to_serve"].to_numpy(dtype=float)}
    for quantity, stem in QUANTITIES.items():
        if quantity != "net_value" and stem in scores:
            out[quantity] = scores[stem].to_numpy(dtype=float)
    return pd.DataFrame(out, index=scores.index)


def interval_columns(quantity: str) -> tuple[str, str]:
    """The (p10, p90) column names of a quantity."""
    return f"{QUANTITIES[quantity]}_p10", f"{QUANTITIES[quantity]}_p90"


class IntervalModel(BaseEstimator):
    """Calibrated 10th / 90th percentiles of net value, revenue, cost-to-serve, margin and
    transactions per customer (the method is in the module docstring).

    Parameters
    ----------
    coverage : share of customers an interval should hold (0.8: the 10th to 90th percentile)
    bins : prediction bins per quantity (net value: split between losses and gains)
    context : the ``context`` column binned within each prediction bin (``None``: prediction only)
    context_bins : context bins per prediction bin
    min_cell : fewest calibration customers in a cell; smaller bins merge with a neighbour
    level : ``"overall"`` (``coverage`` of all calibration customers inside) or ``"cell"``
        (``coverage`` of each cell's), see the module docstring

    Learned: ``quantities_`` (those fitted), ``context_column_`` (the context used, ``None`` when
    none was given), ``scale_``, ``level_``, ``edges_``, ``context_edges_``, ``bounds_`` and
    ``counts_`` per quantity, ``calibration_coverage_`` (share inside on the calibration rows),
    ``n_calibration_`` and ``calibration_days_`` (a window shorter than the horizon, or ``None``).
    """

    def __init__(self, coverage: float = 0.8, bins: int = 10, context: str | None = "churn_probability",
                 context_bins: int = 3, min_cell: int = 100, level: str = "overall") -> None:
        self.coverage = coverage
        self.bins = bins
        self.context = context
        self.context_bins = context_bins
        self.min_cell = min_cell
        self.level = level

    # -- fitting ------------------------------------------------------------------------------

    def fit(self, predicted: pd.DataFrame, realised: pd.DataFrame,
            context: pd.DataFrame | None = None, target: pd.DataFrame | None = None,
            target_context: pd.DataFrame | None = None, calibration_days: int | None = None) -> "IntervalModel":
        """Learn cells and bounds from aligned rows (one per customer) of predictions and what was
        realised; columns ``net_value``, ``revenue``, ``cost_to_serve``, ``margin``, ``transactions``
        (those in both are fitted).
        ``target``/``target_context``: the predictions (and context) of the population to be
        scored, whose mix of cells sets the overall level (see "Population" in the module docstring).
        ``calibration_days``: the window the outcomes span when it is shorter than the horizon the
        intervals will be used at (a young history; kept as ``calibration_days_``, ``None``: the same)."""
        if not 0.0 < self.coverage < 1.0:
            raise ValueError(f"coverage must be between 0 and 1, got {self.coverage}")
        if self.level not in ("overall", "cell"):
            raise ValueError(f"level must be 'overall' or 'cell', got {self.level!r}")
        if len(predicted) != len(realised):
            raise ValueError(f"predicted has {len(predicted)} rows, realised {len(realised)}: they must be aligned")
        if len(predicted) == 0:
            raise ValueError("no calibration customers: intervals need predictions beside realised outcomes")
        quantities = [q for q in QUANTITIES if q in predicted.columns and q in realised.columns]
        if not quantities:
            raise ValueError(f"predicted and realised share none of the columns {list(QUANTITIES)}")
        use_context = self.context is not None and context is not None
        if use_context and self.context not in context.columns:
            raise ValueError(f"context has no column {self.context!r}")
        c = _finite(context[self.context], f"context {self.context!r}") if use_context else None
        min_cell = max(1, int(self.min_cell))

        self.quantities_ = quantities
        self.context_column_ = self.context if use_context else None
        self.scale_, self.edges_, self.context_edges_, self.bounds_, self.counts_, self.level_ = {}, {}, {}, {}, {}, {}
        for q in quantities:
            p = _finite(predicted[q], f"predicted {q!r}")
            y = _finite(realised[q], f"realised {q!r}")
            scale = float(np.median(np.abs(p)))
            self.scale_[q] = scale if scale > 0 else 1.0
            edges = _edges(p, self.bins, min_cell, must=() if q in NON_NEGATIVE else (0.0,))
            score = y / (np.abs(p) + self.scale_[q])
            self.edges_[q], self.context_edges_[q], self.counts_[q] = edges.tolist(), [], []
            cells = []  # per prediction bin, the sorted scores of each context cell
            bin_of = np.searchsorted(edges, p, side="right")
            for k in range(len(edges) + 1):
                inside = bin_of == k
                ce = _edges(c[inside], self.context_bins, min_cell) if c is not None else np.empty(0)
                cell = np.searchsorted(ce, c[inside], side="right") if c is not None else np.zeros(inside.sum(), int)
                self.context_edges_[q].append(ce.tolist())
                self.counts_[q].append(np.bincount(cell, minlength=len(ce) + 1).tolist())
                cells.append([np.sort(score[inside][cell == j]) for j in range(len(ce) + 1)])
            weights = None
            if target is not None and q in target.columns:
                tc = (_finite(target_context[self.context], f"target context {self.context!r}")
                      if use_context and target_context is not None else None)
                if not use_context or tc is not None:
                    weights = _cell_shares(edges, self.context_edges_[q], _finite(target[q], f"target {q!r}"), tc)
            self.level_[q] = (self.coverage if self.level == "cell"
                              else _overall_level(cells, self.coverage, weights))
            self.bounds_[q] = [[list(_central(s, self.level_[q])) for s in row] for row in cells]
        self.n_calibration_ = len(predicted)
        self.calibration_days_ = None if calibration_days is None else int(calibration_days)
        fitted = self.predict(predicted, context)
        self.calibration_coverage_ = coverage(realised, fitted)
        return self

    # -- prediction ---------------------------------------------------------------------------

    def predict(self, predicted: pd.DataFrame, context: pd.DataFrame | None = None) -> pd.DataFrame:
        """``<stem>_p10`` and ``<stem>_p90`` per fitted quantity, in ``predicted``'s rows; p10 <= p90,
        revenue, cost and transaction bounds >= 0."""
        self._check_fitted()
        c = None
        if self.context_column_ is not None:
            if context is None or self.context_column_ not in context.columns:
                raise ValueError(f"these intervals were calibrated by {self.context_column_!r}: pass it in context")
            c = _finite(context[self.context_column_], f"context {self.context_column_!r}")
        out = {}
        for q in self.quantities_:
            p = _finite(predicted[q], f"predicted {q!r}")
            b = np.searchsorted(np.asarray(self.edges_[q], dtype=float), p, side="right")
            lo, hi = np.empty(len(p)), np.empty(len(p))
            for k, cell_bounds in enumerate(self.bounds_[q]):
                inside = b == k
                if not inside.any():
                    continue
                ce = np.asarray(self.context_edges_[q][k], dtype=float)
                cell = np.searchsorted(ce, c[inside], side="right") if c is not None and len(ce) else 0
                table = np.asarray(cell_bounds, dtype=float)
                lo[inside], hi[inside] = table[cell, 0], table[cell, 1]
            spread = np.abs(p) + self.scale_[q]
            lo, hi = lo * spread, hi * spread
            if q in NON_NEGATIVE:
                lo, hi = np.clip(lo, 0.0, None), np.clip(hi, 0.0, None)
            low, high = interval_columns(q)
            out[low], out[high] = lo, hi
        return pd.DataFrame(out, index=predicted.index)

    def _check_fitted(self) -> None:
        if not hasattr(self, "bounds_"):
            raise RuntimeError("this IntervalModel is not fitted yet: call fit(predicted, realised) first")

    # -- persistence --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "kind": "intervals",
            "init": self.get_params(),
            "context_column": self.context_column_,
            "quantities": {q: {"scale": self.scale_[q], "level": self.level_[q], "edges": self.edges_[q],
                               "context_edges": self.context_edges_[q], "bounds": self.bounds_[q],
                               "counts": self.counts_[q]} for q in self.quantities_},
            "calibration_coverage": self.calibration_coverage_,
            "n_calibration": self.n_calibration_,
            "calibration_days": self.calibration_days_,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "IntervalModel":
        model = cls(**data["init"])
        model.context_column_ = data["context_column"]
        model.quantities_ = list(data["quantities"])
        model.scale_ = {q: float(v["scale"]) for q, v in data["quantities"].items()}
        model.level_ = {q: float(v["level"]) for q, v in data["quantities"].items()}
        for attr in ("edges", "context_edges", "bounds", "counts"):
            setattr(model, f"{attr}_", {q: v[attr] for q, v in data["quantities"].items()})
        model.calibration_coverage_ = {q: float(v) for q, v in data["calibration_coverage"].items()}
        model.n_calibration_ = int(data["n_calibration"])
        model.calibration_days_ = data.get("calibration_days")  # None in models saved before 2026-12-05
        return model


# -- helpers ------------------------------------------------------------------------------------


def _finite(values: Any, what: str) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    if not np.isfinite(a).all():
        raise ValueError(f"{what} has {int((~np.isfinite(a)).sum())} missing or non-finite value(s)")
    return a


def _edges(values: np.ndarray, bins: int, min_cell: int, must: tuple[float, ...] = ()) -> np.ndarray:
    """Interior bin edges: quantiles of ``values`` (plus the edges in ``must``), merged until every
    bin holds at least ``min_cell`` values (ties can make quantile bins uneven)."""
    count = min(int(bins), len(values) // min_cell)
    if count <= 1 and not must:
        return np.empty(0)
    edges = np.unique(np.r_[np.quantile(values, np.linspace(0, 1, max(count, 1) + 1)[1:-1]), must]) if len(values) else np.empty(0)
    while len(edges):
        sizes = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
        k = int(np.argmin(sizes))
        if sizes[k] >= min_cell:
            break
        # drop the edge towards the smaller neighbour (the only one at either end)
        if k == 0 or (k < len(edges) and sizes[k + 1] < sizes[k - 1]):
            edges = np.delete(edges, k)
        else:
            edges = np.delete(edges, k - 1)
    return edges


def _central(scores: np.ndarray, coverage: float) -> tuple[float, float]:
    """The interval holding ``coverage`` of ``scores`` with equal tails, except that a lower
    bound on an atom excludes less than its tail, so the upper bound is lowered to compensate."""
    if len(scores) == 0:
        return 0.0, 0.0
    low = float(np.quantile(scores, (1.0 - coverage) / 2.0, method="inverted_cdf"))
    below = float(np.mean(scores < low))
    high = float(np.quantile(scores, min(1.0, below + coverage), method="inverted_cdf"))
    return low, high


def _cell_shares(edges: np.ndarray, context_edges: list[list[float]], p: np.ndarray,
                 c: np.ndarray | None) -> list[list[float]]:
    """The share of rows (predictions ``p``, context ``c``) in each cell, shaped like the cells."""
    bin_of = np.searchsorted(np.asarray(edges, dtype=float), p, side="right")
    shares = []
    for k, ce in enumerate(context_edges):
        inside = bin_of == k
        ce = np.asarray(ce, dtype=float)
        cell = np.searchsorted(ce, c[inside], side="right") if c is not None and len(ce) else np.zeros(inside.sum(), int)
        shares.append((np.bincount(cell, minlength=len(ce) + 1) / max(len(p), 1)).tolist())
    return shares


def _overall_level(cells: list[list[np.ndarray]], coverage: float,
                   weights: list[list[float]] | None = None) -> float:
    """The lowest cell level at which ``coverage`` of all calibration scores fall inside their
    cell's interval (bisection), never below ``2 · coverage − 1``; with ``weights`` (a population's
    share per cell), ``coverage`` of that population, each cell's calibration scores standing for
    its share."""
    scores = [s for row in cells for s in row]
    if weights is None:
        shares = [len(s) for s in scores]
    else:
        shares = [w if len(s) else 0.0 for row, ws in zip(cells, weights) for s, w in zip(row, ws)]
    total = sum(shares) or 1.0

    def inside(level: float) -> float:
        held = 0.0
        for s, share in zip(scores, shares):
            if len(s) and share:
                low, high = _central(s, level)
                held += share * (np.searchsorted(s, high, side="right") - np.searchsorted(s, low, side="left")) / len(s)
        return held / total

    low, high = max(2.0 * coverage - 1.0, 0.0), coverage
    if inside(low) >= coverage:
        return low
    for _ in range(30):
        middle = (low + high) / 2.0
        low, high = (low, middle) if inside(middle) >= coverage else (middle, high)
    return high


# -- customer value and coverage ----------------------------------------------------------------


def customer_value_bounds(scores: pd.DataFrame, intervals: pd.DataFrame,
                          discount_factor: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``customer_value_p10``, ``customer_value_p90`` from the net-value interval:
    ``discount_factor × net_value_pXX + expected_referral_value``.

    Approximation: the interval's net value is discounted as if spread evenly over the horizon
    (pass :func:`customer_value.units.uniform_discount_factor`, how the cost is discounted; the
    value's margin follows BG/NBD's timing, a little earlier), and the referral term is its
    expectation (its own spread is ignored; it is small beside the net value's)."""
    referral = scores["expected_referral_value"].to_numpy(dtype=float) if "expected_referral_value" in scores else 0.0
    low, high = interval_columns("net_value")
    d = np.asarray(discount_factor, dtype=float)
    p10 = d * intervals[low].to_numpy(dtype=float) + referral
    p90 = d * intervals[high].to_numpy(dtype=float) + referral
    return p10, p90


def _inside(realised: pd.DataFrame, intervals: pd.DataFrame) -> pd.DataFrame:
    """True where the realised quantity lies in its closed interval, per quantity both frames hold."""
    out = {}
    for q in QUANTITIES:
        low, high = interval_columns(q)
        if q in realised and low in intervals and high in intervals:
            y = realised[q].to_numpy(dtype=float)
            out[q] = (y >= intervals[low].to_numpy(dtype=float)) & (y <= intervals[high].to_numpy(dtype=float))
    return pd.DataFrame(out, index=realised.index)


def coverage(realised: pd.DataFrame, intervals: pd.DataFrame) -> dict[str, float]:
    """Share of customers whose realised quantity fell inside its interval, per quantity (rows aligned)."""
    return {q: float(v.mean()) for q, v in _inside(realised, intervals).items()}


def coverage_by(realised: pd.DataFrame, intervals: pd.DataFrame, groups: Any) -> pd.DataFrame:
    """:func:`coverage` per group (e.g. value segment): one row per group, a column per quantity
    and ``customers``."""
    inside = _inside(realised, intervals)
    keys = np.asarray(groups)
    table = inside.groupby(keys).mean()
    table["customers"] = inside.groupby(keys).size()
    return table
