"""Hyper-parameter search for the churn, cost, margin and drain models: Optuna TPE, pruned, resumable, tracked.

- Sampler: ``TPESampler(seed=...)`` (Optuna 5's default multivariate TPE with constant liar);
  trials run one at a time, so the same data, settings and seed give the same trials, the same
  best parameters and the same final model.
- Objective: the validation snapshot's loss of the boosted model, early-stopped on that same
  snapshot: ``binary_logloss`` of the raw churn and drain boosters, and for cost and margin the Tweedie deviance with
  a *fixed* power 1.5 (``tweedie_deviance``), comparable across trials that tune
  ``tweedie_variance_power`` itself (in ``[1.1, 1.9]``).
- Pruning: ``optuna_integration.LightGBMPruningCallback`` on that metric (reported every
  10 rounds: each report is a storage write) with a ``MedianPruner`` (after 5 complete trials
  and a warm-up of 30 boosting rounds), so hopeless trials stop early.
- Resuming: with ``storage`` (a SQLite file path or an SQLAlchemy URL) the study is created with
  ``load_if_exists=True``; a resumed study runs only the trials still missing to reach
  ``n_trials`` (finished and pruned trials count), with the sampler seeded by ``seed`` plus the
  number of stored trials (deterministic, though not the same proposals an uninterrupted study
  would have made). The study remembers its task, ``as_of`` and
  data size as user attributes and refuses to resume for a different training set.
- Reporting: the search opens nothing and logs nothing. ``on_trial`` receives a
  :class:`TrialReport` as each trial ends (its parameters, state, validation loss, best
  iteration and seconds); the tracking layer turns those into MLflow child runs, and the
  returned :class:`TuningResult` holds the study for the summary and history figure.
- Speed: trials train on at most ``max_tuning_rows`` training rows (a seeded subset; default
  100,000) and the final model is refitted on all of them with the best parameters; the
  LightGBM Datasets are built once and reused by every trial (``feature_pre_filter`` is off so
  ``min_data_in_leaf`` can vary); rounds are capped and early-stopped; pruning reports every
  10 rounds.

The final model is the best trial's fitted model when it was fitted in this process on all the
training rows, otherwise (subsampled search, resumed study) it is refitted with the best
parameters.

**A search that learned nothing.** On a small training set (a young or small base) every sampled
trial may grow trees that never split: ``min_data_in_leaf`` and ``min_gain_to_split`` are absolute,
and a draw such as 312 and 0.87 is beyond 1,400 rows. Early stopping then keeps one tree and the
model forecasts the same for everyone (seen with one trial on 3,000-customer worlds as of
2023-07-01: the value ranked realised net value at 0.29 against historical value's 0.57). When the
final model's validation forecast is constant, it is refitted with the library defaults
(``boosted.lgbm.DEFAULT_PARAMS``, what ``n_trials=0`` fits), which split at that size (0.56 there),
and :attr:`TuningResult.fallback` says so. A model that still learns nothing is
:attr:`TuningResult.learned_nothing`; the fit then skips its part. A search whose best model splits
is untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna_integration import LightGBMPruningCallback

from customer_value.boosted.lgbm import dataset
from customer_value.config import Settings
from customer_value.training.snapshots import TrainingSet
from customer_value.training.tasks import Task, task_of
PRUNING_INTERVAL = 10
"""Boosting rounds between reports to the pruner (each report is a storage write)."""


@dataclass(frozen=True)
class TrialReport:
    """One finished or pruned trial, as the ``on_trial`` callback of :func:`tune` receives it."""

    task: str
    study: str
    number: int
    params: dict[str, Any]
    state: str
    """``COMPLETE`` or ``PRUNED``."""
    metric: str
    value: float | None
    """The validation loss (the last one reported, for a pruned trial)."""
    best_iteration: int | None
    seconds: float


TrialCallback = Callable[[TrialReport], None]


def search_space(trial: optuna.Trial, task: Task) -> dict[str, Any]:
    """LightGBM parameters sampled for one trial."""
    params: dict[str, Any] = {
        "learning_rate": trial.suggest_float("learning_rate", 0.04, 0.25, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 15, 191, log=True),
        # bounded depth keeps TreeSHAP explanations (cost ~ trees x leaves x depth^2) affordable
        "max_depth": trial.suggest_int("max_depth", 4, 10),
        "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 20, 2000, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "bagging_freq": 1,
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 100.0, log=True),
        "min_gain_to_split": trial.suggest_float("min_gain_to_split", 0.0, 1.0),
    }
    if task.kind == "regressor":
        params["tweedie_variance_power"] = trial.suggest_float("tweedie_variance_power", 1.1, 1.9)
    return params


def storage_url(storage: str | Path | None) -> str | None:
    """A SQLite file path becomes ``sqlite:///<absolute path>``; URLs pass through."""
    if storage is None:
        return None
    text = str(storage)
    if "://" in text:
        return text
    path = Path(text).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


@dataclass
class TuningResult:
    """What a search produced: the study, the best parameters and value, the final model,
    and where the time went (``seconds`` in total, per trial, and the pruned trials')."""

    task: str
    study: optuna.Study
    best_params: dict[str, Any]
    best_value: float
    model: Any
    n_trials: int
    n_complete: int
    n_pruned: int
    seconds: float
    trial_seconds: dict[int, float] = field(default_factory=dict)
    pruned_seconds: float = 0.0
    final_fit_seconds: float = 0.0
    fallback: str | None = None
    """Why the final model has the default parameters rather than the search's best (else None)."""
    valid_prediction: np.ndarray | None = None
    """The final model's forecast of the validation rows (``Task.predict``), made once here."""

    @property
    def learned_nothing(self) -> bool:
        """The final model forecasts one value for every validation row (no tree split)."""
        return self.valid_prediction is not None and _constant(self.valid_prediction)


def _constant(prediction: np.ndarray) -> bool:
    """Whether a forecast is the same for every row (the trees behind it never split)."""
    return prediction.size > 0 and bool(np.ptp(prediction) == 0.0)


def _subsample(ts: TrainingSet, max_rows: int | None, seed: int) -> TrainingSet:
    """``ts`` with at most ``max_rows`` training rows (a seeded random subset, in row order)."""
    n = len(ts.X_train)
    if max_rows is None or n <= max_rows:
        return ts
    rows = np.sort(np.random.default_rng(seed).choice(n, size=int(max_rows), replace=False))
    return replace(
        ts,
        X_train=ts.X_train.iloc[rows].reset_index(drop=True),
        y_train=ts.y_train[rows],
        groups_train=ts.groups_train[rows],
        ids_train=ts.ids_train[rows],
        targets_train=ts.targets_train.iloc[rows].reset_index(drop=True),
    )


def _fingerprint(ts: TrainingSet) -> dict[str, Any]:
    return {
        "task": ts.task,
        "as_of": ts.as_of.isoformat(),
        "n_train": int(len(ts.X_train)),
        "n_valid": int(len(ts.X_valid)),
        "n_features": int(ts.X_train.shape[1]),
    }


def _make_model(task: Task, params: dict[str, Any] | None, seed: int, num_threads: int, num_boost_round: int,
                early_stopping_rounds: int, settings: Settings, **model_kwargs: Any) -> Any:
    return task.make(params, num_boost_round=num_boost_round, early_stopping_rounds=early_stopping_rounds,
                     seed=seed, num_threads=num_threads, max_trees=settings.max_trees, **model_kwargs)


def _fit(task: Task, model: Any, ts: TrainingSet, callbacks: list[Any] = (), train_set: Any = None,
         valid_set: Any = None) -> Any:
    return model.fit(ts.X_train, ts.y_train, ts.X_valid, ts.y_valid, callbacks=callbacks, train_set=train_set,
                     valid_set=valid_set, **task.fit_arguments(ts))


def tune(
    training_set: TrainingSet,
    settings: Settings | None = None,
    n_trials: int | None = None,
    storage: str | Path | None = None,
    study_name: str | None = None,
    seed: int | None = None,
    num_threads: int = 2,
    num_boost_round: int = 1000,
    early_stopping_rounds: int = 30,
    final_model_kwargs: dict[str, Any] | None = None,
    max_tuning_rows: int | None = 100_000,
    on_trial: TrialCallback | None = None,
) -> TuningResult:
    """Search LightGBM parameters for ``training_set.task`` and return the tuned, fitted model
    (see the module docstring). ``on_trial`` hears of every trial as it ends.

    ``n_trials`` defaults to ``settings.trials``, ``seed`` to ``settings.seed``. With
    ``n_trials=0`` the default parameters are fitted without a search.
    ``final_model_kwargs`` go to the final model only, e.g. for cost
    ``{"objective": "auto", "per_component": True}`` compares objectives and per-component
    models with the tuned parameters (trials always fit the default objective, Tweedie).

    ``max_tuning_rows``: trials train on a seeded random subset of at most this many training
    rows (validation stays whole); the final model is then refitted on every training row with
    the best parameters. ``None`` tunes on everything (and keeps the best trial's model)."""
    settings = settings or Settings()
    task = task_of(training_set.task)
    n_trials = settings.trials if n_trials is None else int(n_trials)
    seed = settings.seed if seed is None else int(seed)
    metric = task.tuning_metric
    final_model_kwargs = dict(final_model_kwargs or {})
    start = time.perf_counter()

    fingerprint = _fingerprint(training_set)
    study_name = study_name or f"{task.name}-{training_set.as_of.isoformat()}"
    study = optuna.create_study(
        study_name=study_name,
        storage=storage_url(storage),
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=30),
        load_if_exists=True,
    )
    if study.trials:
        # A resumed study gets a sampler seeded by its history length: re-using ``seed`` would
        # replay the first trials' random start-up proposals. Resuming stays deterministic.
        study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials))
    stored = study.user_attrs.get("training_set")
    if stored is None:
        study.set_user_attr("training_set", fingerprint)
    elif stored != fingerprint:
        raise ValueError(
            f"study {study_name!r} in {storage} was run on a different training set ({stored}); "
            f"this one is {fingerprint}. Use another study_name or storage."
        )

    # Trials may run on a subset of the training rows; their Datasets are built once and reused.
    search_set = _subsample(training_set, max_tuning_rows, seed)
    subsampled = search_set is not training_set
    train_set = dataset(search_set.X_train, search_set.y_train)
    valid_set = dataset(search_set.X_valid, search_set.y_valid, reference=train_set)

    fitted: dict[int, Any] = {}
    trial_seconds: dict[int, float] = {}
    best_so_far = [np.inf]

    def objective(trial: optuna.Trial) -> float:
        t0 = time.perf_counter()
        params = search_space(trial, task)
        pruning = LightGBMPruningCallback(trial, metric, valid_name="valid", report_interval=PRUNING_INTERVAL)
        last_value: list[float] = []

        def record(env: Any) -> None:  # the last validation value, for pruned trials' runs
            for name, m, v, *_ in env.evaluation_result_list or ():
                if name == "valid" and m == metric:
                    last_value[:] = [float(v)]

        model = _make_model(task, params, seed, num_threads, num_boost_round, early_stopping_rounds, settings)
        pruned: optuna.TrialPruned | None = None
        try:
            _fit(task, model, search_set, [record, pruning], train_set, valid_set)
        except optuna.TrialPruned as exc:
            pruned = exc
        trial_seconds[trial.number] = time.perf_counter() - t0
        value = None if pruned is not None else float(model.valid_score_)
        if on_trial is not None:
            on_trial(TrialReport(
                task=task.name, study=study_name, number=trial.number, params=params,
                state="PRUNED" if pruned is not None else "COMPLETE", metric=metric,
                value=value if pruned is None else (last_value[0] if last_value else None),
                best_iteration=None if pruned is not None else int(model.best_iteration_),
                seconds=trial_seconds[trial.number],
            ))
        if pruned is not None:
            raise pruned
        trial.set_user_attr("best_iteration", int(model.best_iteration_))
        if value < best_so_far[0]:  # keep only the best model in memory
            best_so_far[0] = value
            fitted.clear()
            fitted[trial.number] = model
        return value

    done = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    remaining = max(0, n_trials - len(done))
    if remaining:
        study.optimize(objective, n_trials=remaining, n_jobs=1, gc_after_trial=False, catch=())

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    pruned_trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,))
    t_final = time.perf_counter()
    if complete:
        best_params = {**study.best_trial.params, "bagging_freq": 1}
        best_value = float(study.best_value)
        model = None if subsampled else fitted.get(study.best_trial.number)
    else:
        best_params, best_value, model = {}, float("nan"), None
    if model is None or final_model_kwargs:
        reuse = not (final_model_kwargs or subsampled)
        model = _make_model(task, best_params or None, seed, num_threads, num_boost_round, early_stopping_rounds,
                            settings, **final_model_kwargs)
        _fit(task, model, training_set, [], train_set if reuse else None, valid_set if reuse else None)
        if not complete:
            best_value = float(model.valid_score_)
    fallback, prediction = None, np.asarray(task.predict(model, training_set.X_valid), dtype=float)
    if _constant(prediction) and best_params:
        default = _make_model(task, None, seed, num_threads, num_boost_round, early_stopping_rounds, settings,
                              **final_model_kwargs)
        _fit(task, default, training_set)
        default_prediction = np.asarray(task.predict(default, training_set.X_valid), dtype=float)
        if not _constant(default_prediction):
            fallback = (f"the search's best parameters ({len(complete)} trial(s)) forecast one value for every "
                        f"validation row on {len(training_set.X_train):,} training rows: refitted with the defaults")
            model, best_params, best_value = default, {}, float(default.valid_score_)
            prediction = default_prediction
    final_fit_seconds = time.perf_counter() - t_final

    result = TuningResult(
        task=task.name,
        study=study,
        best_params=best_params,
        best_value=best_value,
        model=model,
        n_trials=len(complete) + len(pruned_trials),
        n_complete=len(complete),
        n_pruned=len(pruned_trials),
        seconds=time.perf_counter() - start,
        trial_seconds=trial_seconds,
        pruned_seconds=sum(trial_seconds.get(t.number, 0.0) for t in pruned_trials),
        final_fit_seconds=final_fit_seconds,
        fallback=fallback,
        valid_prediction=prediction,
    )
    return result
