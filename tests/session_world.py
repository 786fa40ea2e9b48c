"""The small simulated world and fast training config that the pipeline and reliability tests share."""

from __future__ import annotations

import datetime as dt

AS_OF = dt.date(2024, 7, 1)
N_CUSTOMERS = 1500
FAST = {"trials": 1, "snapshots": {"count": 3, "spacing_days": 30}}
