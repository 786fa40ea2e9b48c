"""The settings object: contract section 7 keys as written, typos named, overrides applied."""

from __future__ import annotations

import pytest

from customer_value.config import ConfigError, Settings, load_settings

CONTRACT_EXAMPLE = """
horizon_days: 365
churn_window_days: 90
discount_rate: 0.10
margin_rate: 1.0
time_unit: days
costs:
  minute_rate: {email: 0.80, chat: 1.00, phone: 1.50, other: 1.00}
  escalation_cost: 25.0
  order_cost: 2.00
  payment_fee_rate: 0.029
  invoice_cost: 1.50
  late_payment_cost: 15.0
  indirect_pools:
    - {name: platform, annual_amount: 120000, driver: active_customer_months}
columns:
  transactions: {occurred_at: order_ts, amount: total}
seed: 42
"""


def test_contract_example_is_accepted(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(CONTRACT_EXAMPLE)
    settings = load_settings(path)
    assert settings.costs.indirect_pools[0].driver == "active_customer_months"
    assert settings.columns["transactions"]["amount"] == "total"
    assert settings.seed == 42


def test_defaults_match_the_contract():
    s = Settings()
    assert (s.horizon_days, s.churn_window_days, s.discount_rate, s.margin_rate) == (365, 90, 0.10, 1.0)
    assert s.costs.minute_rate == {"email": 0.80, "chat": 1.00, "phone": 1.50, "other": 1.00}
    assert (s.costs.escalation_cost, s.costs.order_cost, s.costs.payment_fee_rate) == (25.0, 2.0, 0.029)
    assert (s.costs.invoice_cost, s.costs.late_payment_cost, s.costs.indirect_pools) == (1.5, 15.0, ())


@pytest.mark.parametrize("text, key", [
    ("horizon_dayz: 100\n", "horizon_dayz"),
    ("costs:\n  escalation_costs: 3\n", "costs.escalation_costs"),
    ("columns:\n  transaction: {amount: total}\n", "transaction"),
    ("costs:\n  minute_rate: {fax: 2}\n", "fax"),
])
def test_typos_are_errors_naming_the_key(tmp_path, text, key):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=key):
        load_settings(path)


def test_partial_overrides_and_cli_flags(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("costs:\n  minute_rate: {phone: 3.0}\nhorizon_days: 180\n")
    s = load_settings(path, seed=9, horizon_days=None)
    assert s.costs.minute_rate["phone"] == 3.0 and s.costs.minute_rate["email"] == 0.80
    assert s.horizon_days == 180 and s.seed == 9
    assert s.with_overrides(horizon_days=30).horizon_days == 30
    with pytest.raises(Exception):
        s.horizon_days = 10  # frozen
