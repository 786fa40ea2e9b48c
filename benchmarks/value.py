"""Benchmark: forward-looking customer value against the backward-looking and revenue-only
baselines and the simulator's oracle, on a simulated world.

    .venv/bin/python benchmarks/value.py                                # 100k customers, 20 trials
    .venv/bin/python benchmarks/value.py --customers 20000 --trials 3   # a smoke run

Steps:

1. simulate the world (2022-01-01 .. 2025-07-01; ``truth`` holds the oracle as of ``--as-of``);
2. fit the value model as of ``--as-of`` on the tables cut there (``api.fit_value_model``:
   BG/NBD, Gamma-Gamma, the tuned churn and cost models, the combination);
3. score every customer signed up before ``--as-of`` with each churn adjustment (``boosted`` =
   the gradient-boosted margin fed by the churn probability, ``survival``, ``blend``, and
   ``none`` = BG/NBD alone): the same fitted parts, only ``churn_adjustment`` changes;
4. join what happened over ``[as_of, as_of + 365 d)`` (``build_targets`` on the full data) and
   compare rankings of realised net value (margin − cost-to-serve): Spearman, normalised Gini,
   top-decile capture, and precision / recall of flagging realised negative-value customers:
   ``customer_value < 0`` per variant, the drain model's ``drain_flag`` (P(net value < 0) at its
   F1-optimal validation threshold; the same for every variant) and ``historical_value < 0``.

5. side by side with the simulator's references (``benchmarks/_ranking.py``): the *oracle*
   (knows each customer's latent state and traits) and the *ceiling* (the same oracle without the
   purchase rate, inferred from the purchase history exactly: ``ceiling_net_value``,
   ``ceiling_churn_probability``). Value ranking *like for like* (issue #14): the model's
   ``customer_value`` without its referral term (``discounted_expected_margin −
   discounted_expected_cost_to_serve``; also undiscounted, ``expected_margin −
   expected_cost_to_serve``) against realised margin − cost-to-serve: Spearman, top-decile capture
   and the share of the gap from ``historical_value`` closed to the oracle and to the ceiling. When
   the fitted model has a direct net-value model (``net_model``), each ``value_forecast`` ("parts",
   "net") is scored and compared, as the churn adjustments are, with their levels: forecast over
   realised totals of margin, cost and margin − cost, and the customers forecast a margin of 0.
   The top tier (``tier_table``): the net forecast per tier share and weight, the tier ordered by
   the parts (as the model does) or by the mix, to show what the tier costs the ranking.
   Churn: ROC AUC and Brier of the
   model's ``churn_probability``, the ceiling and the oracle against realised churn.

``--seed 7 8`` runs several worlds in turn and ends with a summary across them. ``--snapshots N``
(and ``--snapshot-spacing DAYS``) stacks more or fewer training snapshots, to see what older
history of the same customers is worth.

Targets (issue #6): customer_value beats historical_value and BG/NBD×GG revenue on Spearman and
top-decile capture, and the toolkit's negative-value flag (``drain_flag``) beats
``historical_value < 0`` on precision and recall. Issue #14: like for like, Spearman closes at
least 45% of the gap from ``historical_value`` to the oracle, or at least 70% of the gap to the
ceiling, and top-decile capture does not fall below today's (the "parts" forecast).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from customer_value import api  # noqa: E402
from customer_value import metrics as ev  # noqa: E402
from customer_value.boosted.net_value import parts_money, top_tier_threshold, with_parts  # noqa: E402
from customer_value.config import Settings  # noqa: E402
from customer_value.evaluation.backtest import join_realised  # noqa: E402
from customer_value.features.history import tables_before  # noqa: E402
from customer_value.training.fit import FitObserver  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _ranking import churn_side_by_side, print_table, value_side_by_side  # noqa: E402
from _world import add_world_argument, world_params  # noqa: E402

VARIANTS = ("boosted", "survival", "blend", "none")


def ranking_metrics(realised_net: np.ndarray, score: np.ndarray | None,
                    flag: np.ndarray | None) -> dict[str, float]:
    """Ranking metrics of ``score`` (a value: higher is better) and flagging metrics of ``flag``."""
    out = dict.fromkeys(("spearman", "gini", "top_decile_capture", "neg_precision", "neg_recall", "flagged"), np.nan)
    if score is not None:
        out.update(spearman=ev.spearman(realised_net, score), gini=ev.normalized_gini(realised_net, score),
                   top_decile_capture=ev.top_decile_capture(realised_net, score))
    if flag is not None:
        pr = ev.precision_recall_at(realised_net < 0, flag)
        out.update(neg_precision=pr["precision"], neg_recall=pr["recall"], flagged=pr["flagged"])
    return out


def value_row(realised_net: np.ndarray, value: Any) -> dict[str, float]:
    """A value ranks customers and flags those below zero."""
    value = np.asarray(value, dtype=float)
    return ranking_metrics(realised_net, value, value < 0)


def cost_forecast_table(model: Any, features: pd.DataFrame, as_of: dt.date, targets: pd.DataFrame,
                        fitted: Any) -> pd.DataFrame:
    """Issue 18: expected cost from priced activity forecasts against the total-cost model, on the
    realised cost over the horizon (Spearman, normalised Gini, sum ratio = forecast / realised total),
    and per activity the Spearman of its priced forecast against its realised cost."""
    chosen = model.cost_forecast
    realised = targets.set_index("customer_id")
    rows = {}
    for mode in ("activities", "blend", "total"):
        model.cost_forecast = mode
        scores = model.predict(features, as_of).set_index("customer_id")
        y = realised["cost_to_serve"].reindex(scores.index).to_numpy(dtype=float)
        pred = scores["expected_cost_to_serve"].to_numpy(dtype=float)
        label = f"{mode}{' (default)' if mode == chosen else ''}"
        rows[label] = {"spearman": ev.spearman(y, pred), "gini": ev.normalized_gini(y, pred), "sum_ratio": pred.sum() / y.sum()}
        if mode == "activities":
            per_activity = {c: ev.spearman(realised[c.removeprefix("expected_")].reindex(scores.index).to_numpy(float),
                                           scores[c].to_numpy(float))
                            for c in scores.columns if c.startswith("expected_cost_") and not c.startswith("expected_cost_to_serve")
                            and c.removeprefix("expected_") in realised}
    model.cost_forecast = chosen
    table = pd.DataFrame(rows).T
    table.index.name = "cost forecast"
    validation = fitted.parts["activities"].evaluation if "activities" in fitted.parts else {}
    print(f"cost forecast chosen on the validation snapshot: {chosen} "
          f"(validation Spearman activities {validation.get('valid', {}).get('spearman', float('nan')):.4f}, "
          f"total {validation.get('total_model', {}).get('spearman', float('nan')):.4f}, "
          f"blend {validation.get('blend', {}).get('spearman', float('nan')):.4f})")
    print("per-activity Spearman (priced forecast vs realised): "
          + ", ".join(f"{k.removeprefix('expected_cost_')} {v:.3f}" for k, v in per_activity.items()))
    return table


FORECASTS = ("parts", "net")
LIKE_FOR_LIKE = {"discounted": ("discounted_expected_margin", "discounted_expected_cost_to_serve"),
                 "undiscounted": ("expected_margin", "expected_cost_to_serve")}


def forecast_variants(model: Any) -> tuple[str | None, ...]:
    """The ``value_forecast`` settings to compare: both when the model has a direct net-value model,
    else only today's (``None``: the model has no such switch, or nothing to switch to)."""
    if getattr(model, "net_model", None) is not None and hasattr(model, "value_forecast"):
        return FORECASTS
    return (None,)


def score_forecasts(model: Any, features: pd.DataFrame, as_of: dt.date,
                    current: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """Score rows per ``value_forecast`` variant ("parts" is today's), the same fitted parts;
    ``current`` (the model's rows as it stands) is reused when there is nothing to switch."""
    chosen = getattr(model, "value_forecast", None)
    out = {}
    for forecast in forecast_variants(model):
        if forecast is not None:
            model.value_forecast = forecast
        out[forecast or "parts"] = (current if forecast is None and current is not None
                                    else model.predict(features, as_of))
    tier = getattr(model, "net_top_threshold", None)
    if "net" in out and tier is not None:  # the net forecast without its top tier (the mix alone)
        model.value_forecast, model.net_top_threshold = "net", None
        out["net without top tier"] = model.predict(features, as_of)
        model.net_top_threshold = tier
    if chosen is not None:
        model.value_forecast = chosen
    return out


def like_for_like(realised_net: np.ndarray, forecasts: dict[str, pd.DataFrame], frame: pd.DataFrame,
                  ceiling: np.ndarray, oracle: np.ndarray) -> pd.DataFrame:
    """customer_value without its referral term against realised margin − cost, per forecast, beside
    historical_value, the ceiling and the oracle."""
    scores: dict[str, Any] = {"historical_value": frame["historical_value"]}
    for forecast, rows in forecasts.items():
        rows = rows.set_index("customer_id").loc[frame["customer_id"]]
        for label, (margin, cost) in LIKE_FOR_LIKE.items():
            scores[f"model {forecast}: {label} margin − cost"] = rows[margin] - rows[cost]
        scores[f"model {forecast}: customer_value (with referrals)"] = rows["customer_value"]
    scores["ceiling"], scores["oracle"] = ceiling, oracle
    return value_side_by_side(realised_net, scores)


def level_table(forecasts: dict[str, pd.DataFrame], frame: pd.DataFrame) -> pd.DataFrame:
    """Forecast totals over realised ones per forecast (margin, cost, margin − cost), and the
    customers whose forecast margin is 0 (the net forecast at its floor, minus the cost): their
    share and mean margin − cost forecast beside what they realised."""
    realised = frame.set_index("customer_id")
    rows = {}
    for forecast, scores in forecasts.items():
        s = scores.set_index("customer_id").loc[frame["customer_id"]]
        r = realised.loc[s.index]
        net, real = s["expected_margin"] - s["expected_cost_to_serve"], r["margin"] - r["cost_to_serve"]
        floor = (s["expected_margin"] <= 1e-9).to_numpy()
        rows[forecast] = {"margin_ratio": s["expected_margin"].sum() / r["margin"].sum(),
                          "cost_ratio": s["expected_cost_to_serve"].sum() / r["cost_to_serve"].sum(),
                          "net_ratio": net.sum() / real.sum(), "at_floor_share": floor.mean(),
                          "at_floor_forecast": net[floor].mean() if floor.any() else np.nan,
                          "at_floor_realised": real[floor].mean() if floor.any() else np.nan}
    table = pd.DataFrame(rows).T
    table.index.name = "value forecast"
    return table


TIER_SHARES = (0.0, 0.10, 0.15, 0.25)
"""Top-tier shares :func:`tier_table` compares (0.10: the tier is the top decile itself)."""


def tier_table(model: Any, features: pd.DataFrame, boosted: Any, frame: pd.DataFrame) -> pd.DataFrame | None:
    """The net forecast over the horizon per top-tier share and weight on the net model (the
    chosen one and 1), with the tier ordered by the parts' difference (as the model does) or by
    the mix (the tier's membership from the parts, its order from the mix): Spearman and top-decile
    capture against realised margin − cost (``boosted``: the model's predictions of ``features``).
    What the tier costs the ranking, and what it keeps."""
    if boosted.net_value is None:  # no net value model, or kept for comparison only ("parts")
        return None
    net, difference = np.asarray(boosted.net_value, dtype=float), model.parts_difference(features, boosted)
    position = pd.Series(np.arange(len(features)), index=features["customer_id"]).loc[frame["customer_id"]]
    net, difference = net[position.to_numpy()], difference[position.to_numpy()]
    realised = frame["net_value"].to_numpy(dtype=float)
    rows = {}
    for share in TIER_SHARES:
        threshold = top_tier_threshold(difference, share)
        for weight in sorted({float(model.net_weight), 1.0}):
            value = with_parts(net, difference, weight, threshold, parts_money(net, difference, weight, threshold))
            orders = {"parts": value}
            if threshold is not None:  # the tier's values, handed out in the mix's order
                tier = difference >= threshold
                mixed = with_parts(net[tier], difference[tier], weight)  # the mix alone: no money, no tier
                by_mix = value.copy()
                by_mix[np.flatnonzero(tier)[np.argsort(mixed, kind="stable")]] = np.sort(value[tier])
                orders["mix"] = by_mix
            for order, v in orders.items():
                rows[(share, weight, order)] = {"spearman": ev.spearman(realised, v),
                                                "top_decile_capture": ev.top_decile_capture(realised, v)}
    table = pd.DataFrame(rows).T
    table.index.names = ["top tier share", "weight on the net model", "order inside the tier"]
    return table


def run_world(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Simulate, fit, score and print every table for one seed; return the summary figures."""
    as_of = dt.date.fromisoformat(args.as_of)
    settings = Settings(trials=args.trials, seed=seed, max_trees=args.max_trees or None,
                        activity_max_trees=args.activity_max_trees or None,
                        snapshots={"count": args.snapshots, "spacing_days": args.snapshot_spacing})
    timings: dict[str, float] = {}
    print(f"\n=== seed {seed}: {args.customers:,} customers, {args.trials} trials"
          f"{', world ' + ' '.join(args.world) if args.world else ''} ===", flush=True)

    t0 = time.perf_counter()
    world = api.simulate_world(args.customers, seed, settings=settings, truth_as_of=args.as_of,
                               params=world_params(args.world))
    timings["simulate"] = time.perf_counter() - t0
    print(f"simulated {args.customers:,} customers in {timings['simulate']:.0f}s", flush=True)

    t0 = time.perf_counter()
    fitted = api.fit_value_model(tables_before(world.tables, as_of), as_of, settings, observer=FitObserver(
        lambda m: print(f"  {time.perf_counter() - t0:6.0f}s {m}", flush=True)))
    timings["fit"] = time.perf_counter() - t0
    print(f"fitted as of {as_of} in {timings['fit']:.0f}s; skipped: {fitted.skipped or 'nothing'}", flush=True)

    t0 = time.perf_counter()
    targets = api.build_targets(world.tables, as_of, settings)
    timings["targets"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    model = fitted.model
    baseline = model.bgnbd_gg_revenue(fitted.features)
    scored: dict[str, pd.DataFrame] = {}
    for variant in VARIANTS:
        model.churn_adjustment = variant
        scored[variant] = join_realised(model.predict(fitted.features, as_of), targets, baseline)
    model.churn_adjustment = settings.churn_adjustment
    forecasts = score_forecasts(model, fitted.features, as_of, current=scored[settings.churn_adjustment])
    timings["score"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    boosted = model.boosted(fitted.features)
    timings["boosted models"] = time.perf_counter() - t0
    trees = model.tree_counts()
    print(f"trees per scored row: {sum(trees.values()):,} ({', '.join(f'{k} {v}' for k, v in trees.items())}); "
          f"boosted models {timings['boosted models'] / len(fitted.features) * 1e6:.0f} s per 1M rows", flush=True)

    truth = world.truth.set_index("customer_id")
    frame = scored["survival"]
    reference = truth.reindex(frame["customer_id"])
    oracle = (reference["oracle_expected_margin"] - reference["oracle_expected_cost_to_serve"]).to_numpy()
    has_ceiling = "ceiling_net_value" in reference
    ceiling = reference["ceiling_net_value"].to_numpy() if has_ceiling else np.full(len(frame), np.nan)
    realised = frame["net_value"].to_numpy(dtype=float)
    assert not np.isnan(realised).any() and not np.isnan(oracle).any()

    if args.save:
        out_dir = args.save / f"seed{seed}"
        out_dir.mkdir(parents=True, exist_ok=True)
        for variant, scored_frame in scored.items():
            scored_frame.assign(oracle_net_value=oracle, ceiling_net_value=ceiling).to_parquet(
                out_dir / f"{variant}.parquet")
    rows = {f"customer_value ({v})": value_row(realised, scored[v]["customer_value"]) for v in VARIANTS}
    default = settings.churn_adjustment
    has_drain = "drain_probability" in scored[default]
    if has_drain:
        drain = scored[default]
        rows["drain_flag"] = ranking_metrics(realised, None, drain["drain_flag"].to_numpy(dtype=bool))
        auc = {"drain_probability": ev.roc_auc(realised < 0, drain["drain_probability"])}
    rows["historical_value"] = value_row(realised, frame["historical_value"])
    rows["BG/NBD×GG revenue"] = ranking_metrics(realised, frame["bgnbd_gg_revenue"].to_numpy(dtype=float), None)
    if has_ceiling:
        rows["ceiling (margin − cost)"] = value_row(realised, ceiling)
    rows["oracle (margin − cost)"] = value_row(realised, oracle)
    table = pd.DataFrame(rows).T

    print()
    print(f"{len(frame):,} customers scored as of {as_of}; realised over [{as_of}, +365 d): "
          f"{(realised < 0).mean():.1%} with negative net value, total net {realised.sum():,.0f}")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    if has_drain:
        auc.update({f"-{name}": ev.roc_auc(realised < 0, -scored[default][name].to_numpy(dtype=float))
                    for name in ("customer_value", "historical_value")})
        if has_ceiling:
            auc["-ceiling"] = ev.roc_auc(realised < 0, -ceiling)
        auc["-oracle"] = ev.roc_auc(realised < 0, -oracle)
        print("ROC AUC for realised net value < 0: " + ", ".join(f"{k} {v:.4f}" for k, v in auc.items())
              + f"; drain threshold {fitted.model.drain_model.threshold_:.3f}")

    # value ranking like for like (issue 14): customer_value minus its referral term
    lfl = like_for_like(realised, forecasts, frame, ceiling, oracle)
    print()
    print_table(lfl, f"value ranking, like for like (churn adjustment {default}): against realised margin − cost; "
                     "gap_to_* = share of the Spearman gap from historical_value closed")
    tiers = tier_table(model, fitted.features, boosted, frame)
    if tiers is not None:
        print()
        threshold = model.net_top_threshold
        model_tier = "none" if threshold is None else f"parts' difference >= {threshold:,.2f}"
        print_table(tiers, f"the net forecast over the horizon (undiscounted) by top tier; the model's tier: {model_tier}, "
                           f"weight {model.net_weight}; against realised margin − cost")
    print()
    print_table(level_table(forecasts, frame), "levels: forecast total / realised total over the horizon; at_floor_* = "
                "customers forecast a margin of 0 (margin − cost at its floor, minus the cost), mean forecast vs realised")
    # churn side by side: the model's churn probability, the ceiling and the oracle
    y_churn = frame["churned"].to_numpy(dtype=float)
    probs = {"model": forecasts["parts"].set_index("customer_id").loc[frame["customer_id"], "churn_probability"]}
    bgnbd = model.model_input(fitted.features, window_days=settings.churn_window_days)  # feature order
    probs = {"baseline_bgnbd": bgnbd.set_index("customer_id").loc[frame["customer_id"], "bgnbd_p_no_purchase"]} | probs
    if "ceiling_churn_probability" in reference:
        probs["ceiling"] = reference["ceiling_churn_probability"]
    probs["oracle"] = reference["oracle_churn_probability"]
    churn = churn_side_by_side(y_churn, probs, baseline=next(iter(probs)))
    print()
    print_table(churn, f"churn over the next {settings.churn_window_days} days (realised rate {y_churn.mean():.3f}); "
                       f"gap_to_* = share of the ROC AUC gap from {next(iter(probs))} closed")
    print()
    print(cost_forecast_table(model, fitted.features, as_of, targets, fitted).to_string(float_format=lambda v: f"{v:.4f}"))
    print()
    print("timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))

    cv, hist, rev = rows[f"customer_value ({default})"], rows["historical_value"], rows["BG/NBD×GG revenue"]
    flag = rows.get("drain_flag", cv)
    checks = {
        "Spearman beats historical_value": cv["spearman"] > hist["spearman"],
        "Spearman beats BG/NBD×GG revenue": cv["spearman"] > rev["spearman"],
        "top-decile capture beats historical_value": cv["top_decile_capture"] > hist["top_decile_capture"],
        "top-decile capture beats BG/NBD×GG revenue": cv["top_decile_capture"] > rev["top_decile_capture"],
        "drain_flag: negative precision beats historical_value<0": flag["neg_precision"] > hist["neg_precision"],
        "drain_flag: negative recall beats historical_value<0": flag["neg_recall"] > hist["neg_recall"],
    }
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'MISS'}] customer_value ({default}, the default): {name}")
    today = lfl.loc["model parts: discounted margin − cost"]
    for forecast in forecasts:
        r = lfl.loc[f"model {forecast}: discounted margin − cost"]
        closes = r["gap_to_oracle"] >= 0.45 or r["gap_to_ceiling"] >= 0.70
        checks[f"like for like ({forecast}): closes >= 45% to the oracle or >= 70% to the ceiling"] = closes
        keeps = r["top_decile_capture"] >= today["top_decile_capture"]
        print(f"  [{'ok' if closes else 'MISS'}] like for like ({forecast}): Spearman {r['spearman']:.4f} closes "
              f"{r['gap_to_oracle']:.1%} of the gap to the oracle (target 45%), {r['gap_to_ceiling']:.1%} to the "
              f"ceiling (target 70%)")
        if forecast != "parts":
            checks[f"like for like ({forecast}): top-decile capture not below today's"] = keeps
            print(f"  [{'ok' if keeps else 'MISS'}] like for like ({forecast}): top-decile capture "
                  f"{r['top_decile_capture']:.4f} vs today's (parts) {today['top_decile_capture']:.4f}")
    summary = {"seed": seed, "customers": len(frame)}
    for name in lfl.index:
        if name.endswith("discounted margin − cost") and "undiscounted" not in name or name in (
                "historical_value", "ceiling", "oracle"):
            summary[f"{name} spearman"] = lfl.loc[name, "spearman"]
    for forecast in forecasts:
        r = lfl.loc[f"model {forecast}: discounted margin − cost"]
        summary[f"{forecast} gap to oracle"] = r["gap_to_oracle"]
        summary[f"{forecast} gap to ceiling"] = r["gap_to_ceiling"]
        summary[f"{forecast} top-decile capture"] = r["top_decile_capture"]
    summary["historical_value top-decile capture"] = lfl.loc["historical_value", "top_decile_capture"]
    if has_drain:
        summary["drain_flag f1"] = ev.f1(flag["neg_precision"], flag["neg_recall"])
        summary["drain_probability roc_auc"] = auc["drain_probability"]
    summary["trees per row"] = sum(trees.values())
    summary["boosted s per 1M rows"] = timings["boosted models"] / len(fitted.features) * 1e6
    for name in churn.index:
        summary[f"churn {name} roc_auc"] = churn.loc[name, "roc_auc"]
        summary[f"churn {name} brier"] = churn.loc[name, "brier"]
    summary["ok"] = all(checks.values())
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, nargs="+", default=[7], help="one world per seed, in turn")
    parser.add_argument("--as-of", default="2024-07-01")
    parser.add_argument("--trials", type=int, default=20, help="Optuna trials per boosted model")
    parser.add_argument("--max-trees", type=int, default=Settings().max_trees,
                        help="Settings.max_trees: the scoring budget of trees per boosted model (0: none)")
    parser.add_argument("--activity-max-trees", type=int, default=Settings().activity_max_trees,
                        help="Settings.activity_max_trees: the budget of each activity volume model (0: none)")
    parser.add_argument("--snapshots", type=int, default=Settings().snapshots.count,
                        help="Settings.snapshots.count: the training snapshots stacked per boosted model")
    parser.add_argument("--snapshot-spacing", type=int, default=Settings().snapshots.spacing_days,
                        help="Settings.snapshots.spacing_days: days between consecutive training snapshots")
    add_world_argument(parser)
    parser.add_argument("--save", type=Path, default=None,
                        help="write each variant's scored frame (with what happened, the oracle and the ceiling) "
                             "here as Parquet, one folder per seed")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    summaries = [run_world(args, seed) for seed in args.seed]
    table = pd.DataFrame(summaries).set_index("seed").T
    print()
    print_table(table, "summary per seed (like for like = discounted margin − cost; spearman against realised "
                       "margin − cost; gaps from historical_value)")
    return 0 if all(s["ok"] for s in summaries) else 1


if __name__ == "__main__":
    raise SystemExit(main())
