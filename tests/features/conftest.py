"""Session fixtures of the feature tests (the worlds themselves live in feature_worlds.py)."""

from __future__ import annotations

import pytest

from customer_value.config import IndirectPool, Settings
from customer_value.data.tables import Tables
from feature_worlds import random_world


@pytest.fixture(scope="session")
def world() -> Tables:
    return random_world()


@pytest.fixture(scope="session")
def pooled_settings() -> Settings:
    """Default rates plus one indirect pool per driver."""
    return Settings(
        horizon_days=180,
        churn_window_days=90,
        margin_rate=0.35,
        costs={
            "indirect_pools": [
                IndirectPool(name="platform", annual_amount=12000.0, driver="active_customer_months"),
                IndirectPool(name="helpdesk", annual_amount=5000.0, driver="support_minutes"),
                IndirectPool(name="payments", annual_amount=3000.0, driver="transactions"),
                IndirectPool(name="billing", annual_amount=2000.0, driver="invoices"),
            ]
        },
    )
