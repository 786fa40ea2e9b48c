"""Time and money arithmetic: model time units and discounting."""

from __future__ import annotations

import numpy as np
import pytest

from customer_value.units import continuous_discount_rate, in_units, uniform_discount_factor


def test_units_helpers():
    assert continuous_discount_rate(0.10, "weeks") == pytest.approx(7 * continuous_discount_rate(0.10, "days"))
    assert np.exp(-continuous_discount_rate(0.10, "days") * 365.25) == pytest.approx(1 / 1.1)
    assert in_units(364, "weeks") == 52
    with pytest.raises(ValueError, match="time_unit"):
        continuous_discount_rate(0.1, "months")


def test_uniform_discount_matches_numeric_integral():
    t = np.linspace(0, 2, 200001)
    numeric = np.trapezoid(1.10 ** (-t), t) / 2
    assert uniform_discount_factor(730, 0.10) == pytest.approx(numeric, rel=1e-9)
    assert uniform_discount_factor(365, 0.0) == 1.0
