"""Benchmark: customer_value's BG/NBD + Gamma-Gamma against lifetimes, side by side.

For each size (default 1M and 10M customers) one RFM summary is simulated in daily units from
the CDNOW parameters (``customer_value.simulation.parametric``, ages uniform over two years, whole
days) and both libraries run on it:

* **fit** -- ``PurchaseModel().fit(rfm)`` (pattern compression, analytic Newton, standard errors)
  vs lifetimes' plain ``BetaGeoFitter().fit(frequency, recency, T)`` on the uncompressed rows
  (BFGS with autograd, plus its autograd Hessian for standard errors);
* **scoring** -- p_alive, expected transactions over 365 days and discounted 12-month revenue
  (``predict_revenue`` with a 10% annual rate) vs lifetimes'
  ``conditional_expected_number_of_purchases_up_to_time`` + ``conditional_probability_alive``
  + ``GammaGammaFitter.customer_lifetime_value`` (12 months, the same annual rate as a monthly rate);
* **agreement** -- both log-likelihoods (each at its own optimum, in days) and, at our fitted
  parameters, p_alive and expected transactions of every customer.

Our timings are the median of ``--repeats`` runs (the machine is shared); lifetimes runs once.
If lifetimes' fit is too slow or memory hungry for a size, ``--lifetimes-fit bounded`` times a
few of its likelihood+gradient evaluations and one Hessian on the full data and extrapolates
with the number of evaluations its optimiser needed at a smaller size -- labelled as such.

    python benchmarks/probabilistic.py                    # 1M and 10M
    python benchmarks/probabilistic.py --sizes 1000000    # one size
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from customer_value.probabilistic.purchases import PurchaseModel  # noqa: E402
from customer_value.probabilistic.revenue import predict_revenue  # noqa: E402
from customer_value.probabilistic.spend import SpendModel  # noqa: E402
from customer_value.simulation.parametric import CDNOW_BGNBD_DAILY, CDNOW_GAMMA_GAMMA, simulate_rfm  # noqa: E402

HORIZON_DAYS = 365
ANNUAL_RATE = 0.10
MONTHLY_RATE = (1 + ANNUAL_RATE) ** (1 / 12) - 1


def _lifetimes():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import lifetimes

    return lifetimes


def _timed(fn, repeats: int = 1):
    times, out = [], None
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, times


def _peak_mib(fn) -> float:
    gc.collect()
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def _rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _max_rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def _lifetimes_ll(params: dict[str, float], f, r, T) -> float:
    """lifetimes' own likelihood, in days, at its fitted parameters (its fit works in scaled time)."""
    bg = _lifetimes().BetaGeoFitter
    theta = np.log([params["r"], params["alpha"], params["a"], params["b"]])
    return float(-bg._negative_log_likelihood(theta, f, r, T, np.ones_like(r), 0.0) * len(r))


def lifetimes_fit_bounded(f, r, T, n_evaluations: int, k: int = 3) -> tuple[float, str]:
    """Extrapolated lifetimes fit time: n_evaluations x (value + gradient) + one Hessian."""
    from autograd import hessian, value_and_grad

    bg = _lifetimes().BetaGeoFitter()
    scale = 1.0 / T.max()
    args = (f.astype(int), r * scale, T * scale, np.ones_like(r, dtype=int), 0.0)
    vg = value_and_grad(bg._negative_log_likelihood)
    x0 = 0.1 * np.ones(4)
    _, times = _timed(lambda: vg(x0, *args), k)
    t_eval = statistics.median(times)
    _, t_hess = _timed(lambda: hessian(bg._negative_log_likelihood)(x0, *args), 1)
    estimate = n_evaluations * t_eval + t_hess[0]
    note = (
        f"EXTRAPOLATED: {n_evaluations} evaluations x {t_eval:.2f} s (median of {k} timed value+gradient "
        f"evaluations on all rows) + {t_hess[0]:.2f} s Hessian"
    )
    return estimate, note


def count_lifetimes_evaluations(f, r, T) -> int:
    """How many value+gradient evaluations lifetimes' BFGS needs (run on the given rows)."""
    from autograd import value_and_grad
    from scipy.optimize import minimize

    bg = _lifetimes().BetaGeoFitter()
    scale = 1.0 / T.max()
    args = (f.astype(int), r * scale, T * scale, np.ones_like(r, dtype=int), 0.0)
    out = minimize(value_and_grad(bg._negative_log_likelihood), 0.1 * np.ones(4), jac=True, tol=1e-7, args=args)
    return int(out.nfev)


def run_size(n: int, args: argparse.Namespace, known_nfev: dict[str, int]) -> dict[str, float]:
    lt = _lifetimes()
    print(f"\n=== {n:,} customers (daily units, simulated from CDNOW parameters, seed {args.seed}) ===")
    rfm, t_sim = _timed(lambda: simulate_rfm(n, CDNOW_BGNBD_DAILY, CDNOW_GAMMA_GAMMA, max_T=args.max_T, discrete=True, seed=args.seed))
    f = rfm["frequency"].to_numpy()
    r = rfm["recency"].to_numpy()
    T = rfm["T"].to_numpy()
    print(f"simulated in {t_sim[0]:.1f} s; repeat buyers {np.mean(f > 0):.1%}; max frequency {f.max()}")

    # -- ours -----------------------------------------------------------------------------------
    model, fit_times = _timed(lambda: PurchaseModel().fit(rfm), args.repeats)
    spend, spend_times = _timed(lambda: SpendModel().fit(rfm), args.repeats)
    scores, score_times = _timed(
        lambda: predict_revenue(model, spend, rfm, HORIZON_DAYS, discount_rate=ANNUAL_RATE, time_unit="days"), args.repeats
    )
    ours_fit = statistics.median(fit_times)
    ours_score = statistics.median(score_times)
    fit_mib = _peak_mib(lambda: PurchaseModel().fit(rfm))
    score_mib = _peak_mib(lambda: predict_revenue(model, spend, rfm, HORIZON_DAYS, discount_rate=ANNUAL_RATE))
    print(f"ours: {model.n_patterns_:,} unique patterns ({n / model.n_patterns_:.1f} customers each), path {model.fit_path_}")
    print(f"ours: params {_fmt(model.params_)}; GG {_fmt(spend.params_)}")
    print(f"ours: fit {ours_fit:.3f} s (runs {_fmt_times(fit_times)}), peak {fit_mib:.0f} MiB; "
          f"GG fit {statistics.median(spend_times):.3f} s; scoring {ours_score:.3f} s (runs {_fmt_times(score_times)}), peak {score_mib:.0f} MiB")
    del scores
    gc.collect()

    # -- lifetimes fit ----------------------------------------------------------------------------
    mode = args.lifetimes_fit
    if mode == "full":
        bg, t = _timed(lambda: lt.BetaGeoFitter().fit(f, r, T))
        lt_fit = t[0]
        fit_note = "measured: one full BetaGeoFitter().fit on all rows"
        lt_params = {k: float(v) for k, v in bg.params_.items()}
        known_nfev.setdefault("n", -1)
        del bg
    else:
        nfev = known_nfev.get("nfev")
        if nfev is None:
            sub = min(n, 1_000_000)
            nfev = count_lifetimes_evaluations(f[:sub], r[:sub], T[:sub])
            known_nfev["nfev"] = nfev
        lt_fit, fit_note = lifetimes_fit_bounded(f, r, T, nfev)
        lt_params = None
    gc.collect()

    # -- lifetimes scoring -----------------------------------------------------------------------
    bg = lt.BetaGeoFitter()
    bg.params_ = pd.Series(model.params_)
    bg.predict = bg.conditional_expected_number_of_purchases_up_to_time
    gg = lt.GammaGammaFitter()
    gg.params_ = pd.Series({"p": spend.params_["p"], "q": spend.params_["q"], "v": spend.params_["gamma"]})
    fs, rs, Ts, ms = rfm["frequency"], rfm["recency"], rfm["T"], rfm["monetary_value"]

    def lifetimes_scoring():
        expected = bg.conditional_expected_number_of_purchases_up_to_time(HORIZON_DAYS, fs, rs, Ts)
        alive = bg.conditional_probability_alive(fs, rs, Ts)
        clv = gg.customer_lifetime_value(bg, fs, rs, Ts, ms, time=12, discount_rate=MONTHLY_RATE, freq="D")
        return expected, alive, clv

    (lt_expected, lt_alive, lt_clv), t = _timed(lifetimes_scoring)
    lt_score = t[0]

    # -- agreement -------------------------------------------------------------------------------
    ours_pred = model.predict(rfm, HORIZON_DAYS, discount_rate=0.0)
    rel_alive = _max_rel(ours_pred["p_alive"], lt_alive)
    rel_expected = _max_rel(ours_pred["expected_transactions"], lt_expected)
    ll_ours = model.log_likelihood_
    if lt_params is not None:
        ll_lt = _lifetimes_ll(lt_params, f.astype(float), r, T)
        ll_line = f"log-likelihood: ours {ll_ours:.6f}, lifetimes {ll_lt:.6f}, relative difference {abs(ll_ours - ll_lt) / abs(ll_lt):.2e}"
        par_line = "params lifetimes: " + _fmt(lt_params)
    else:
        ll_lt = float("nan")
        ll_line = f"log-likelihood: ours {ll_ours:.6f} (lifetimes not fitted at this size: bounded mode)"
        par_line = ""
    clv_ours = predict_revenue(model, spend, rfm, HORIZON_DAYS, discount_rate=ANNUAL_RATE)["discounted_expected_revenue"]
    print(ll_line)
    if par_line:
        print(par_line)
    print(f"at our parameters, max relative difference vs lifetimes: p_alive {rel_alive:.2e}, "
          f"expected transactions (365 d) {rel_expected:.2e}")
    print(f"discounted 12-month revenue, total: ours (continuous discounting) {clv_ours.sum():,.0f}; "
          f"lifetimes (monthly steps) {lt_clv.sum():,.0f} ({clv_ours.sum() / lt_clv.sum() - 1:+.2%})")
    print(f"fit:     ours {ours_fit:8.3f} s | lifetimes {lt_fit:8.1f} s | {lt_fit / ours_fit:6.1f}x faster  [{fit_note}]")
    print(f"scoring: ours {ours_score:8.3f} s | lifetimes {lt_score:8.1f} s | {lt_score / ours_score:6.1f}x faster  "
          "[measured: one run of the three lifetimes calls on all rows]")
    print(f"process peak RSS so far {_rss_gib():.1f} GiB")
    return {"n": n, "fit_ratio": lt_fit / ours_fit, "score_ratio": lt_score / ours_score,
            "ll_rel": abs(ll_ours - ll_lt) / abs(ll_lt) if np.isfinite(ll_lt) else float("nan"),
            "alive_rel": rel_alive, "expected_rel": rel_expected}


def _fmt(params: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.5g}" for k, v in params.items())


def _fmt_times(times: list[float]) -> str:
    return "/".join(f"{t:.3f}" for t in times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-T", dest="max_T", type=float, default=730.0, help="oldest customer age in days")
    parser.add_argument("--repeats", type=int, default=5, help="runs of our fit/scoring (median reported)")
    parser.add_argument("--lifetimes-fit", choices=["full", "bounded"], default="full")
    args = parser.parse_args(argv)
    targets = {1_000_000: 20.0, 10_000_000: 50.0}
    results = []
    known: dict[str, int] = {}
    for n in args.sizes:
        results.append(run_size(n, args, known))
        gc.collect()
    print("\n=== summary (targets: fit >= 20x at 1M and >= 50x at 10M; scoring >= 50x; agreement <= 1e-6) ===")
    for res in results:
        fit_target = targets.get(res["n"])
        agree = ((not np.isfinite(res["ll_rel"]) or res["ll_rel"] <= 1e-6)
                 and res["alive_rel"] <= 1e-6 and res["expected_rel"] <= 1e-6)
        if fit_target is None:
            verdict = "agreement OK" if agree else "agreement MISSED"
            target = "no speed target at this size"
        else:
            ok = agree and res["fit_ratio"] >= fit_target and res["score_ratio"] >= 50
            verdict = "OK" if ok else "MISSED"
            target = f"target {fit_target:.0f}x"
        print(f"{res['n']:>11,}: fit {res['fit_ratio']:6.1f}x ({target}), scoring {res['score_ratio']:6.1f}x, "
              f"log-lik rel {res['ll_rel']:.1e}, p_alive rel {res['alive_rel']:.1e}, E[tx] rel {res['expected_rel']:.1e}"
              f"  -> {verdict}")


if __name__ == "__main__":
    main()
