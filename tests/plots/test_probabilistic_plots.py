"""Diagnostics plots of the purchase model: they draw on the given Axes and never touch pyplot."""

from __future__ import annotations

import os
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from customer_value.plots import probabilistic as plots  # noqa: E402
from customer_value.probabilistic.holdout import calibration_holdout_summary  # noqa: E402
from customer_value.probabilistic.purchases import PurchaseModel  # noqa: E402


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import lifetimes

    path = os.path.join(os.path.dirname(lifetimes.__file__), "datasets", "CDNOW_sample.txt")
    tx = pd.read_csv(path, sep=r"\s+", header=None, names=["cust", "customer_id", "date", "cds", "amount"], dtype={"date": str})
    tx["date"] = pd.to_datetime(tx["date"], format="%Y%m%d")
    return tx


@pytest.fixture(scope="module")
def summary(transactions) -> pd.DataFrame:
    return calibration_holdout_summary(transactions, "1997-09-30", "1998-06-30")


@pytest.fixture(scope="module")
def rfm(summary) -> pd.DataFrame:
    return summary.rename(columns={"frequency_cal": "frequency", "recency_cal": "recency", "T_cal": "T"})


@pytest.fixture(scope="module")
def model(rfm) -> PurchaseModel:
    return PurchaseModel(time_unit="weeks").fit(rfm)


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before, "a plot opened a pyplot figure"


def test_period_transactions(model, rfm):
    fig = Figure()
    ax = fig.add_subplot()
    assert plots.plot_period_transactions(model, rfm, ax=ax) is ax
    observed, simulated = ax.containers
    counts = np.bincount(np.minimum(rfm["frequency"].to_numpy(), 7), minlength=8)
    assert [bar.get_height() for bar in observed] == list(counts)
    simulated_counts = np.array([bar.get_height() for bar in simulated])
    assert simulated_counts.sum() == len(rfm)
    assert abs(simulated_counts[0] - counts[0]) / counts[0] < 0.1  # the fit reproduces the zeros


def test_calibration_vs_holdout(model, summary):
    ax = plots.plot_calibration_purchases_vs_holdout(model, summary)
    assert isinstance(ax, Axes) and isinstance(ax.figure, Figure)
    actual, predicted = ax.get_lines()
    table = plots.calibration_holdout_table(model, summary)
    assert list(table.index) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert table["customers"].sum() == len(summary)
    assert np.allclose(actual.get_ydata(), table["actual"])
    assert np.allclose(predicted.get_ydata(), table["predicted"])
    assert np.all(np.diff(table["predicted"].to_numpy()) > 0)


def test_cumulative_transactions_tracking(model, transactions):
    ax = plots.plot_cumulative_transactions(
        model, transactions, time_unit="weeks", calibration_end="1997-09-30", end="1998-06-30"
    )
    assert isinstance(ax, Axes)
    table = plots.expected_cumulative_repeat_transactions(model, transactions, end="1998-06-30")
    assert table.index[0] == pd.Timestamp("1997-01-01") and table.index[-1] == pd.Timestamp("1998-06-30")
    assert np.all(np.diff(table["actual"]) >= 0) and np.all(np.diff(table["expected"]) >= -1e-9)
    at_calibration_end = table.loc["1997-09-30"]
    # The model is fitted to the calibration period, so it tracks the observed curve there.
    assert at_calibration_end["expected"] == pytest.approx(at_calibration_end["actual"], rel=0.05)
    assert table["expected"].iloc[-1] == pytest.approx(table["actual"].iloc[-1], rel=0.15)


@pytest.mark.parametrize("which", ["frequency_recency", "probability_alive"])
def test_heat_maps(model, rfm, which):
    fig = Figure()
    ax = fig.add_subplot()
    if which == "frequency_recency":
        out = plots.plot_frequency_recency_matrix(model, rfm, horizon=4.0, ax=ax)
    else:
        out = plots.plot_probability_alive_matrix(model, max_frequency=10, max_recency=38.86, ax=ax)
    assert out is ax
    values = ax.get_images()[0].get_array()
    assert np.isfinite(values).all()
    assert values.shape[0] == (int(rfm["frequency"].max()) + 1 if which == "frequency_recency" else 11)
    if which == "probability_alive":
        assert values.min() >= 0 and values.max() <= 1
        assert values[5, -1] > values[5, 0]  # a recent buyer is more likely alive
    assert len(fig.axes) == 2  # the heat map and its colour bar


def test_matrix_needs_a_size(model):
    with pytest.raises(ValueError, match="max_frequency"):
        plots.plot_probability_alive_matrix(model)
