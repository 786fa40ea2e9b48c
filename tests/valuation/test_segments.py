"""Value segments: cut points learned from the value quantiles, and the sign."""

from __future__ import annotations

import numpy as np
import pytest

from customer_value.valuation.segments import assign_segments, segment_cuts


def test_segments_follow_cut_points_and_sign():
    values = np.array([-5.0, 0.0, 1.0, 5.0, 9.0, 10.0, 99.0])
    cuts = (1.0, 5.0, 10.0)
    assert assign_segments(values, cuts).tolist() == ["negative", "low", "medium", "high", "high", "top", "top"]
    learned = segment_cuts(np.r_[-np.ones(10), np.arange(100.0)], (0.5, 0.8, 0.95))
    assert learned == pytest.approx((49.5, 79.2, 94.05))
