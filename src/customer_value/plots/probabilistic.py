"""Diagnostics of the probabilistic purchase model (lifetimes' classic plots, without pyplot).

Each function takes an optional matplotlib ``Axes`` and returns the Axes it drew on; without one
a new :class:`matplotlib.figure.Figure` is created, so nothing touches global pyplot state.

* :func:`plot_period_transactions` -- customers by number of repeat purchases: observed vs
  simulated from the fitted model with the same ages.
* :func:`plot_calibration_purchases_vs_holdout` -- mean holdout purchases by calibration
  frequency: observed vs predicted.
* :func:`plot_cumulative_transactions` -- cumulative repeat transactions over calendar time:
  observed vs expected from the model given each customer's first-purchase date.
* :func:`plot_frequency_recency_matrix` / :func:`plot_probability_alive_matrix` -- expected
  purchases and P(alive) over a (recency, frequency) grid for customers of one age.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from customer_value.probabilistic import nbd
from customer_value.probabilistic.purchases import PurchaseModel, rfm_arrays
from customer_value.units import unit_days


def _axes(ax: Axes | None, size: tuple[float, float] = (6.5, 4.5)) -> Axes:
    if ax is not None:
        return ax
    return Figure(figsize=size, layout="constrained").add_subplot()


def _bin_labels(max_frequency: int) -> list[str]:
    return [str(i) for i in range(max_frequency)] + [f"{max_frequency}+"]


def plot_period_transactions(
    model: PurchaseModel,
    rfm: pd.DataFrame,
    *,
    max_frequency: int = 7,
    seed: int | None = 0,
    ax: Axes | None = None,
) -> Axes:
    """Customers by repeat purchases in the calibration period, observed vs the fitted model.

    The model's counts come from simulating every customer once with the fitted parameters and
    the customer's own age ``T`` (the same check as lifetimes' ``plot_period_transactions``).
    """
    from customer_value.simulation.parametric import simulate_rfm

    x, _, T = rfm_arrays(rfm)
    simulated = simulate_rfm(len(T), model.params_, T=T, model=model.model, seed=seed)
    bins = np.arange(max_frequency + 1)
    observed = np.bincount(np.minimum(x.astype(np.int64), max_frequency), minlength=max_frequency + 1)
    expected = np.bincount(np.minimum(simulated["frequency"].to_numpy(), max_frequency), minlength=max_frequency + 1)
    ax = _axes(ax)
    width = 0.4
    ax.bar(bins - width / 2, observed, width, label="observed")
    ax.bar(bins + width / 2, expected, width, label=f"{model.model} (simulated)")
    ax.set_xticks(bins, _bin_labels(max_frequency))
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("customers")
    ax.set_title("frequency of repeat transactions")
    ax.legend(fontsize=8)
    return ax


def plot_calibration_purchases_vs_holdout(
    model: PurchaseModel,
    summary: pd.DataFrame,
    *,
    max_frequency: int = 7,
    ax: Axes | None = None,
) -> Axes:
    """Mean holdout purchases by calibration frequency: observed vs the model's prediction.

    ``summary`` is :func:`customer_value.probabilistic.holdout.calibration_holdout_summary` output
    (``frequency_cal, recency_cal, T_cal, frequency_holdout, duration_holdout``).
    """
    table = calibration_holdout_table(model, summary, max_frequency=max_frequency)
    ax = _axes(ax)
    positions = np.arange(len(table))
    ax.plot(positions, table["actual"], marker="o", label="observed")
    ax.plot(positions, table["predicted"], marker="s", label=f"{model.model} prediction")
    ax.set_xticks(positions, list(table.index))
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("mean purchases in the holdout period")
    ax.set_title("calibration vs holdout purchases")
    ax.legend(fontsize=8)
    return ax


def calibration_holdout_table(model: PurchaseModel, summary: pd.DataFrame, *, max_frequency: int = 7) -> pd.DataFrame:
    """Customers, mean actual and mean predicted holdout purchases by calibration frequency bin."""
    rfm = summary.rename(columns={"frequency_cal": "frequency", "recency_cal": "recency", "T_cal": "T"})
    predicted = np.empty(len(rfm))
    durations = rfm["duration_holdout"].to_numpy(dtype=float)
    for duration in np.unique(durations):
        rows = durations == duration
        predicted[rows] = model.predict(rfm.loc[rows], float(duration), discount_rate=0.0)["expected_transactions"].to_numpy()
    labels = _bin_labels(max_frequency)
    bins = np.minimum(rfm["frequency"].to_numpy(dtype=np.int64), max_frequency)
    frame = pd.DataFrame(
        {"bin": pd.Categorical([labels[b] for b in bins], categories=labels, ordered=True),
         "actual": rfm["frequency_holdout"].to_numpy(dtype=float),
         "predicted": predicted}
    )
    table = frame.groupby("bin", observed=False).agg(
        customers=("actual", "size"), actual=("actual", "mean"), predicted=("predicted", "mean")
    )
    return table


def expected_cumulative_repeat_transactions(
    model: PurchaseModel,
    transactions: pd.DataFrame,
    *,
    customer_id_col: str = "customer_id",
    datetime_col: str = "date",
    time_unit: str | None = None,
    end: Any = None,
) -> pd.DataFrame:
    """Daily observed and expected cumulative repeat transactions of all customers.

    Purchases are merged per calendar day; a customer's first purchase day starts their clock.
    Expected = sum over customers of E[repeat purchases in (first day, day]] from the model, a
    convolution of the daily count of first purchases with the model's cumulative curve.
    """
    unit = unit_days(time_unit or model.time_unit)
    days = pd.to_datetime(transactions[datetime_col]).dt.normalize()
    daily = pd.DataFrame({"c": transactions[customer_id_col].to_numpy(), "d": days.to_numpy()}).drop_duplicates()
    start = daily["d"].min()
    stop = pd.Timestamp(end).normalize() if end is not None else daily["d"].max()
    daily = daily.loc[daily["d"] <= stop]
    n_days = int((stop - start).days) + 1
    first = daily.groupby("c")["d"].min()
    births = np.bincount(((first - start).dt.days).to_numpy(), minlength=n_days)[:n_days]
    offset = ((daily["d"] - start).dt.days).to_numpy()
    is_first = daily["d"].to_numpy() == first.reindex(daily["c"]).to_numpy()
    repeats = np.bincount(offset[~is_first], minlength=n_days)[:n_days]
    curve = model.expected_repeat_purchases(np.arange(n_days) / unit)
    expected = np.convolve(births.astype(float), curve)[:n_days]
    index = pd.date_range(start, periods=n_days, freq="D")
    return pd.DataFrame({"actual": np.cumsum(repeats), "expected": expected}, index=index)


def plot_cumulative_transactions(
    model: PurchaseModel,
    transactions: pd.DataFrame,
    *,
    customer_id_col: str = "customer_id",
    datetime_col: str = "date",
    time_unit: str | None = None,
    calibration_end: Any = None,
    end: Any = None,
    ax: Axes | None = None,
) -> Axes:
    """Cumulative repeat transactions over calendar time, observed vs expected (tracking plot)."""
    table = expected_cumulative_repeat_transactions(
        model, transactions, customer_id_col=customer_id_col, datetime_col=datetime_col, time_unit=time_unit, end=end
    )
    ax = _axes(ax, (7.5, 4.5))
    ax.plot(table.index, table["actual"], label="observed")
    ax.plot(table.index, table["expected"], linestyle="--", label=f"{model.model} expected")
    if calibration_end is not None:
        ax.axvline(pd.Timestamp(calibration_end), color="grey", linestyle=":", linewidth=1, label="end of calibration")
    ax.set_xlabel("date")
    ax.set_ylabel("cumulative repeat transactions")
    ax.set_title("tracking cumulative repeat transactions")
    ax.legend(fontsize=8)
    ax.tick_params(axis="x", labelrotation=30)
    return ax


def _grid(model: PurchaseModel, rfm: pd.DataFrame | None, max_frequency: int | None, max_recency: float | None):
    if rfm is not None:
        x, _, T = rfm_arrays(rfm)
        max_frequency = int(x.max()) if max_frequency is None else max_frequency
        max_recency = float(T.max()) if max_recency is None else max_recency
    if max_frequency is None or max_recency is None:
        raise ValueError("pass rfm, or both max_frequency and max_recency")
    frequency = np.arange(int(max_frequency) + 1, dtype=float)
    recency = np.linspace(0.0, float(max_recency), min(int(np.ceil(max_recency)) + 1, 201))
    X, R = np.meshgrid(frequency, recency, indexing="ij")
    T = np.full(X.shape, float(max_recency))
    return frequency, recency, X, R, T


def _heatmap(ax: Axes, values: np.ndarray, frequency: np.ndarray, recency: np.ndarray, label: str, title: str) -> Axes:
    image = ax.imshow(
        values,
        origin="lower",
        aspect="auto",
        extent=(recency[0], recency[-1], frequency[0] - 0.5, frequency[-1] + 0.5),
        cmap="viridis",
    )
    ax.figure.colorbar(image, ax=ax, label=label)
    ax.set_xlabel(f"recency (time of last purchase; T = {recency[-1]:g})")
    ax.set_ylabel("frequency (repeat purchases)")
    ax.set_title(title)
    return ax


def _alive_on_grid(model: PurchaseModel, X: np.ndarray, R: np.ndarray, T: np.ndarray) -> np.ndarray:
    """P(alive) over a (frequency, recency) grid; customers without repeats at recency 0."""
    theta = model._theta()
    x, r, t = X.ravel(), R.ravel(), T.ravel()
    with np.errstate(all="ignore"):
        alive = nbd.p_alive(model.model, theta, x, r, t)
        return np.where(x == 0, nbd.p_alive(model.model, theta, x, 0 * r, t), alive)


def plot_frequency_recency_matrix(
    model: PurchaseModel,
    rfm: pd.DataFrame | None = None,
    *,
    horizon: float = 1.0,
    max_frequency: int | None = None,
    max_recency: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Expected purchases in the next ``horizon`` units by (recency, frequency), for age T = max recency."""
    frequency, recency, X, R, T = _grid(model, rfm, max_frequency, max_recency)
    alive = _alive_on_grid(model, X, R, T)
    with np.errstate(all="ignore"):
        given = nbd.expected_given_alive(model.model, model._theta(), frequency, np.full(frequency.shape, T.flat[0]), float(horizon))
    values = (alive.reshape(X.shape) * given[:, None]).astype(float)
    return _heatmap(_axes(ax), values, frequency, recency, "expected purchases",
                    f"expected purchases in the next {horizon:g} time units")


def plot_probability_alive_matrix(
    model: PurchaseModel,
    rfm: pd.DataFrame | None = None,
    *,
    max_frequency: int | None = None,
    max_recency: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """P(alive) by (recency, frequency), for customers of age T = max recency."""
    frequency, recency, X, R, T = _grid(model, rfm, max_frequency, max_recency)
    alive = _alive_on_grid(model, X, R, T)
    return _heatmap(_axes(ax), np.clip(alive.reshape(X.shape), 0, 1), frequency, recency, "P(alive)",
                    "probability a customer is alive")
