"""Hard worlds: data that a model cannot learn much from fits with a reported fallback, or stops with
a one-line reason. Never a traceback from deep inside, never a silent NaN in a score."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from customer_value.boosted.churn import choose_calibration
from customer_value.config import Settings
from customer_value.data.tables import Tables
from customer_value.errors import CannotFitError, CustomerValueError, InputError
from customer_value.probabilistic.spend import SpendModel
from customer_value.simulation.world import simulate_world
from customer_value.training.fit import fit_value_model

AS_OF = dt.date(2024, 7, 1)
SETTINGS = Settings(trials=0, snapshots={"count": 3, "spacing_days": 60})


@pytest.fixture(scope="module")
def world() -> Tables:
    return simulate_world(700, 11).tables


def _only(tables: Tables, customers: pd.DataFrame, transactions: pd.DataFrame, optional: bool = False) -> Tables:
    ids = set(customers["customer_id"])
    extra = {} if not optional else {
        name: frame[frame["customer_id"].isin(ids)] for name, frame in tables.items()
        if name not in ("customers", "transactions")}
    return Tables.from_frames(customers=customers, transactions=transactions, **extra)


def _assert_scores_finite(fitted) -> pd.DataFrame:
    scores = fitted.model.predict(fitted.features, AS_OF)
    numeric = scores.select_dtypes("number")
    assert np.isfinite(numeric.to_numpy()).all(), "a score column holds NaN or inf"
    assert scores["customer_id"].is_unique and len(scores) == len(fitted.features)
    return scores


def _one_line_reason(exc: BaseException) -> str:
    line = str(exc).splitlines()[0]
    assert line and "Traceback" not in line
    return line


@pytest.mark.slow
def test_only_the_required_tables_fit_every_part_that_can_be_fitted(world):
    """No engagement, invoices or tickets: a missing cost component. It used to die inside the drain
    model's calibration ("needs samples of at least 2 classes")."""
    fitted = fit_value_model(_only(world, world.customers, world.transactions), AS_OF, SETTINGS)
    scores = _assert_scores_finite(fitted)
    assert (scores["expected_cost_to_serve"] >= 0).all()


@pytest.mark.slow
def test_identical_customers_fall_back_to_the_pooled_order_value(world):
    """300 copies of one customer: the Gamma-Gamma is not identifiable; every customer gets the
    pooled mean order value and the reason is recorded."""
    one = world.customers.iloc[[0]]
    history = world.transactions[world.transactions["customer_id"] == one["customer_id"].iloc[0]]
    assert len(history) >= 3, "the world's first customer should have repeat purchases"
    customers = pd.concat([one.assign(customer_id=f"X{i}") for i in range(300)], ignore_index=True)
    transactions = pd.concat([history.assign(customer_id=f"X{i}", transaction_id=history["transaction_id"] + f"-{i}")
                              for i in range(300)], ignore_index=True)
    fitted = fit_value_model(_only(world, customers, transactions), AS_OF, SETTINGS)
    assert "pooled mean order value" in fitted.skipped["spend"]
    scores = _assert_scores_finite(fitted)
    assert scores["expected_order_value"].nunique() == 1


@pytest.mark.slow
def test_zero_variance_spend_and_a_customer_with_ten_thousand_purchases(world):
    transactions = world.transactions.assign(amount=10.0, gross_margin=3.0)
    whale = world.customers["customer_id"].iloc[1]
    start = world.customers["signup_at"].iloc[1]
    times = pd.date_range(start, pd.Timestamp(AS_OF) - pd.Timedelta(hours=1), periods=10_000).astype("datetime64[us]")
    burst = pd.DataFrame({"transaction_id": [f"W{i}" for i in range(10_000)], "customer_id": whale,
                          "occurred_at": times, "amount": 10.0, "gross_margin": 3.0})
    tables = Tables(world.customers, pd.concat([transactions, burst], ignore_index=True), world.engagement_events,
                    world.invoices, world.support_tickets)
    fitted = fit_value_model(tables, AS_OF, SETTINGS)
    scores = _assert_scores_finite(fitted).set_index("customer_id")
    assert scores.loc[whale, "expected_transactions"] == scores["expected_transactions"].max()


def test_nobody_buying_twice_stops_with_a_one_line_reason(world):
    first = world.transactions.sort_values("occurred_at").drop_duplicates("customer_id")
    with pytest.raises(CannotFitError) as caught:
        fit_value_model(_only(world, world.customers, first), AS_OF, SETTINGS)
    assert "no customer has a repeat purchase" in _one_line_reason(caught.value)


def test_one_customer_fits_what_it_can_and_says_what_it_cannot(world):
    """One customer: a boosted part with nothing to learn from (a single label class, or a snapshot
    whose BG/NBD cannot be fitted) is skipped with a one-line reason; the value falls back on
    what was fitted, with finite scores."""
    busiest = world.transactions["customer_id"].value_counts().index[0]
    customers = world.customers[world.customers["customer_id"] == busiest]
    try:
        fitted = fit_value_model(_only(world, customers, world.transactions[world.transactions["customer_id"] == busiest]),
                                 AS_OF, SETTINGS)
    except CustomerValueError as exc:  # stopping is allowed too, with one line that says why
        assert "purchase model" in _one_line_reason(exc)
        return
    assert "churn" in fitted.skipped  # one customer cannot both churn and stay
    assert all("\n" not in reason for reason in fitted.skipped.values())
    _assert_scores_finite(fitted)


@pytest.mark.slow
def test_a_boosted_part_that_learned_nothing_is_skipped_and_its_fallback_scores(world, monkeypatch):
    """A model whose forecast is one value for everyone (trees that never split, even with the
    defaults) ranks nobody: the part is skipped with the reason and its fallback stands in."""
    from dataclasses import replace

    import customer_value.training.fit as fit

    def tune(training_set, *args, **kwargs):
        result = fit_tune(training_set, *args, **kwargs)
        constant = np.zeros_like(result.valid_prediction)  # what a model whose trees never split forecasts
        return replace(result, valid_prediction=constant) if training_set.task == "drain" else result

    fit_tune = fit.tune
    monkeypatch.setattr(fit, "tune", tune)
    fitted = fit_value_model(world, AS_OF, SETTINGS)
    assert fitted.skipped["drain"].startswith("learned nothing from ")
    assert "training rows (one forecast for every validation row)" in fitted.skipped["drain"]
    assert fitted.model.drain_model is None and "drain" not in fitted.parts
    scores = _assert_scores_finite(fitted)
    assert (scores["drain_flag"] == (scores["customer_value"] < 0)).all()


def test_no_customer_before_as_of_is_an_input_error(world):
    with pytest.raises(InputError, match="no customer signed up before 2019-01-01"):
        fit_value_model(world, dt.date(2019, 1, 1), SETTINGS)


def test_calibration_is_chosen_even_when_a_half_has_one_class():
    """Two positives among 40 rows: one cross-fitting half may hold none, which made the Platt
    calibrator fail; such a candidate is now simply not chosen."""
    y = np.zeros(40)
    y[[3, 5]] = 1
    p = np.linspace(0.01, 0.3, 40)
    for seed in range(20):
        best, scores = choose_calibration(p, y, ["none", "isotonic", "platt"], seed)
        assert best in scores and np.isfinite(scores[best])


def test_the_pooled_spend_model_predicts_the_mean_repeat_order_value():
    rfm = pd.DataFrame({"frequency": [0, 2, 4], "recency": [0.0, 10.0, 30.0], "T": [40.0, 40.0, 40.0],
                        "monetary_value": [0.0, 10.0, 40.0]})
    model = SpendModel.pooled(rfm)
    expected = (2 * 10 + 4 * 40) / 6
    np.testing.assert_allclose(model.predict(rfm).to_numpy(), expected, rtol=1e-6)
    again = SpendModel.from_dict(model.to_dict())
    np.testing.assert_allclose(again.predict(rfm).to_numpy(), expected, rtol=1e-6)
