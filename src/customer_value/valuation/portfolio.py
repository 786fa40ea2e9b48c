"""The portfolio sums scoring depends on, kept apart so the population can be scored in batches.

Every score column is a function of its own customer's row, except two that read the whole
scored population (:mod:`customer_value.valuation.activity_costs`): the total-cost model sets the
portfolio's level of the direct activities (one factor, from the sums of both forecasts), and each
indirect pool is shared in proportion to the customer's units over all customers' units (contract
section 8). :class:`PortfolioTotals` holds exactly those sums, at the model's own horizon. They add
across batches, so scoring in batches is two passes: the boosted predictions and partial totals
per batch, then each batch priced with the summed totals; it equals scoring the whole frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from customer_value.config import Settings
from customer_value.features.costing import DIRECT_ACTIVITIES, rate_of


@dataclass(frozen=True)
class PortfolioTotals:
    """Additive sums over scored customers, at the model's horizon (``a + b`` is the union's).

    ``cost``: Σ of the total-cost model's forecast (clipped at 0); ``direct_volumes``: Σ of each
    direct activity's forecast volume (``expected_volume_<activity>`` before levelling), by
    activity name; ``pool_units``: Σ of each indirect pool's driver units, by pool name.
    """

    rows: int = 0
    cost: float = 0.0
    direct_volumes: dict[str, float] = field(default_factory=dict)
    pool_units: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, cost: np.ndarray, volumes: pd.DataFrame | None, settings: Settings) -> "PortfolioTotals":
        """The sums of one batch's boosted predictions (``volumes``: ``expected_volume_<activity>``)."""
        cost = np.asarray(cost, dtype=float)
        direct, pools = {}, {}
        if volumes is not None:
            direct = {a.name: float(volumes[f"expected_volume_{a.name}"].to_numpy(dtype=float).sum())
                      for a in DIRECT_ACTIVITIES}
            pools = {p.name: float(volumes[f"expected_volume_pool_{p.name}"].to_numpy(dtype=float).sum())
                     for p in settings.costs.indirect_pools}
        return cls(len(cost), float(np.clip(cost, 0.0, None).sum()), direct, pools)

    def __add__(self, other: "PortfolioTotals") -> "PortfolioTotals":
        return PortfolioTotals(self.rows + other.rows, self.cost + other.cost,
                               _add(self.direct_volumes, other.direct_volumes), _add(self.pool_units, other.pool_units))

    @classmethod
    def sum(cls, parts: Iterable["PortfolioTotals"]) -> "PortfolioTotals":
        total = cls()
        for part in parts:
            total = total + part
        return total

    def scaled(self, factor: float) -> "PortfolioTotals":
        """The same sums over a horizon ``factor`` times the model's (forecasts scale linearly)."""
        return PortfolioTotals(self.rows, self.cost * factor, {k: v * factor for k, v in self.direct_volumes.items()},
                               {k: v * factor for k, v in self.pool_units.items()})

    def direct_costs(self, settings: Settings) -> np.ndarray:
        """Σ priced cost per direct activity, in ``DIRECT_ACTIVITIES`` order."""
        return np.array([self.direct_volumes.get(a.name, 0.0) * rate_of(a, settings.costs) for a in DIRECT_ACTIVITIES])

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (e.g. to broadcast to workers, or as a pyfunc parameter)."""
        return {"rows": self.rows, "cost": self.cost, "direct_volumes": dict(self.direct_volumes),
                "pool_units": dict(self.pool_units)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PortfolioTotals":
        return cls(int(data["rows"]), float(data["cost"]), {k: float(v) for k, v in data["direct_volumes"].items()},
                   {k: float(v) for k, v in data["pool_units"].items()})


def _add(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: a.get(k, 0.0) + b.get(k, 0.0) for k in {**a, **b}}
