"""Fixtures shared by the model tests."""

from __future__ import annotations

import pytest

from customer_value.config import Settings
from customer_value.data.simulate import simulate_world
from customer_value.features import build_features
from customer_value.models.purchases import PurchaseModel
from customer_value.models.spend import SpendModel

VALUE_AS_OF = "2024-07-01"  # the tests that use value_parts score at this date too


@pytest.fixture(scope="session")
def value_parts():
    """(settings, features at VALUE_AS_OF, fitted BG/NBD, fitted Gamma-Gamma) on a 1,500-customer
    world: what a ValueModel needs besides the boosted models, which tests replace by stand-ins."""
    settings = Settings()
    world = simulate_world(1500, 5, settings=settings)
    features = build_features(world.tables, VALUE_AS_OF, settings)
    rfm = features.set_index("customer_id")[["frequency", "recency", "T", "monetary_value"]]
    return settings, features, PurchaseModel.from_settings(settings).fit(rfm), SpendModel.from_settings(settings).fit(rfm)
