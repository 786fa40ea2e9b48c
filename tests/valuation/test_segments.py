"""The pure pieces of the value combination: discounting, segments, the survival adjustment."""

from __future__ import annotations

import numpy as np
import pytest

from customer_value.models.value import assign_segments, segment_cuts, survival_factor, uniform_discount_factor


def test_uniform_discount_matches_numeric_integral():
    t = np.linspace(0, 2, 200001)
    numeric = np.trapezoid(1.10 ** (-t), t) / 2
    assert uniform_discount_factor(730, 0.10) == pytest.approx(numeric, rel=1e-9)
    assert uniform_discount_factor(365, 0.0) == 1.0


def test_segments_follow_cut_points_and_sign():
    values = np.array([-5.0, 0.0, 1.0, 5.0, 9.0, 10.0, 99.0])
    cuts = (1.0, 5.0, 10.0)
    assert assign_segments(values, cuts).tolist() == ["negative", "low", "medium", "high", "high", "top", "top"]
    learned = segment_cuts(np.r_[-np.ones(10), np.arange(100.0)], (0.5, 0.8, 0.95))
    assert learned == pytest.approx((49.5, 79.2, 94.05))


def test_survival_adjustment_is_neutral_when_models_agree():
    a = np.array([0.9, 0.5, 0.2])
    q = np.array([0.3, 0.6, 0.9])
    churn_agreeing = 1 - a + a * q  # what BG/NBD itself implies
    adjusted, factor = survival_factor(a, q, churn_agreeing, "survival")
    assert adjusted == pytest.approx(a) and factor == pytest.approx(np.ones(3))
    adjusted, factor = survival_factor(a, q, np.array([0.99, 0.99, 0.99]), "survival")
    assert (factor < 1).all() and (adjusted >= 0).all()
    blended, _ = survival_factor(a, q, np.array([0.99, 0.99, 0.99]), "blend")
    assert ((blended > adjusted) & (blended < a)).all()
    none, factor = survival_factor(a, q, np.array([0.99, 0.99, 0.99]), "none")
    assert none == pytest.approx(a) and factor == pytest.approx(np.ones(3))
