"""Drift between scorings: PSI from rows and from a stored decile profile agree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from customer_value.evaluation.drift import decile_profile, population_stability_index, psi_against_profile, score_distribution


def test_psi_is_zero_for_same_distribution_and_grows_with_shift():
    rng = np.random.default_rng(0)
    base = rng.normal(size=50_000)
    assert population_stability_index(base, rng.normal(size=50_000)) < 0.01
    assert population_stability_index(base, rng.normal(0.5, 1, size=50_000)) > 0.1


def test_profile_psi_equals_row_psi():
    rng = np.random.default_rng(1)
    before = pd.DataFrame({"customer_value": rng.gamma(2, 10, 20_000), "p_alive": rng.uniform(size=20_000)})
    after = pd.DataFrame({"customer_value": rng.gamma(2.4, 10, 20_000), "p_alive": rng.uniform(size=20_000)})
    profile = decile_profile(before)
    from_profile = psi_against_profile(profile, after)
    assert from_profile["customer_value"] == pytest.approx(
        population_stability_index(before["customer_value"], after["customer_value"]), rel=1e-6)
    assert set(from_profile) == {"customer_value", "p_alive"}
    dist = score_distribution(after.assign(value_segment=["top"] * 20_000))
    assert dist["rows"] == 20_000 and dist["segment_share.top"] == 1.0
