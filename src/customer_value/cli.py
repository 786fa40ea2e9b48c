"""`customer-value`: thin typer commands (contract section 6) that build one Settings object and
call the pipeline. No computation lives here; what the user reads (help, progress, warnings,
errors) is decided here.

One error path for every command (:class:`OneErrorPath`): a failure the user can act on (any
:class:`~customer_value.errors.CustomerValueError`, and MLflow's or the operating system's failures
translated into one) prints exactly one line ``error: ...`` on standard error and exits non-zero
(2 for a config or usage error, else 1). ``--debug`` shows the traceback instead. Anything else is
a bug, and its one line says so, names the exception and where to report it.
"""

from __future__ import annotations

import sys
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from customer_value.config import Settings, load_settings
from customer_value.errors import ConfigError, CustomerValueError, OutputError

ISSUES_URL = "https://github.com/customer-value/customer-value/issues"
DEBUG_ENV = "CUSTOMER_VALUE_DEBUG"


# ---------------------------------------------------------------------------------------------
# the one error path


class OneErrorPath(TyperGroup):
    """Runs a command; turns whatever it raises into one line on stderr and an exit code. Third-party
    warnings a user cannot act on are silenced for the command's duration only (:func:`quiet_warnings`)."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        known = super().list_commands(ctx)
        return [c for c in COMMAND_ORDER if c in known] + [c for c in known if c not in COMMAND_ORDER]

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            with quiet_warnings():
                return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except BrokenPipeError:  # the reader went away (`| head`): nothing to report to anyone
            _silence_stdout()
            raise typer.Exit(141) from None
        except typer.TyperException as exc:  # usage errors: one line too, with where to look
            if type(exc).__name__ == "NoArgsIsHelpError":  # prints the help
                raise
            where = f" (see: {exc.ctx.command_path} --help)" if getattr(exc, "ctx", None) else ""
            _echo_error(f"{exc.format_message()}{where}")
            raise typer.Exit(exc.exit_code) from exc
        except Exception as exc:  # noqa: BLE001 - this is the one place that decides
            fail(exc, debug=bool(ctx.params.get("debug")))


NOISE = (
    # (category, module regex, message regex): warnings about our dependencies' internals
    (UserWarning, r"mlflow(\.|$)", r".*[Ii]nteger column.*|.*integer.*schema.*|.*Hint: .*"),
    (FutureWarning, r"mlflow(\.|$)", r".*"),
    (DeprecationWarning, r"(?!customer_value\b)", r".*"),  # SQLAlchemy, click, ...: for their maintainers
    (PendingDeprecationWarning, r"(?!customer_value\b)", r".*"),
    (FutureWarning, r"(pandas|pyarrow|lifetimes|sklearn|lightgbm|optuna|ibis|duckdb)(\.|$)", r".*"),
    (UserWarning, r"(pandas|pyarrow|lifetimes|optuna|optuna_integration|lightgbm)(\.|$)", r".*"),
    (RuntimeWarning, r"(lifetimes|scipy|numpy|sklearn)(\.|$)", r".*"),
    # the BG/NBD refitted for each training snapshot's purchase features: its covariance (and so any
    # interval) is never used, so "intervals unreliable" there says nothing (the value model's own
    # BG/NBD still warns)
    (RuntimeWarning, r"customer_value\.boosted\.inputs$", r".*Hessian not positive definite.*"),
)
"""The third-party warnings a ``customer-value`` command does not show: the user can do nothing
about them (mlflow's integer-schema hint, SQLAlchemy and other deprecations, pandas 4 notices).
Our own warnings, and anything not listed, still show."""


@contextmanager
def quiet_warnings() -> Iterator[None]:
    """:data:`NOISE` filtered for the duration of one command (never at import: a notebook or a
    test that imports the package keeps every warning)."""
    with warnings.catch_warnings():
        for category, module, message in NOISE:
            warnings.filterwarnings("ignore", message=message, category=category, module=module)
        for name in ("Pandas4Warning", "PandasFutureWarning", "PandasDeprecationWarning"):  # pandas 4 notices
            category = _pandas_warning(name)
            if category is not None:
                warnings.filterwarnings("ignore", category=category)
        yield


def _pandas_warning(name: str) -> type[Warning] | None:
    try:
        import pandas.errors
    except ImportError:  # pragma: no cover - pandas is a dependency
        return None
    category = getattr(pandas.errors, name, None)
    return category if isinstance(category, type) and issubclass(category, Warning) else None


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so that flushing it at exit cannot raise again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def fail(exc: BaseException, debug: bool = False) -> NoReturn:
    """Print ``exc`` as one line (or its traceback with ``debug``) and exit with its code."""
    expected = user_error(exc)
    code = int(getattr(expected, "exit_code", 1)) if expected is not None else 1
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    else:
        _echo_error(error_line(exc, expected))
    raise typer.Exit(code)


def user_error(exc: BaseException) -> CustomerValueError | None:
    """``exc`` as a failure the user can act on, or ``None`` when it is a bug."""
    if isinstance(exc, CustomerValueError):
        return exc
    if any(name in sys.modules for name in ("mlflow", "requests")):
        from customer_value.tracking.store import as_user_error

        translated = as_user_error(exc)
        if translated is not None:
            return translated
    if isinstance(exc, MemoryError):
        return CustomerValueError("out of memory: score fewer customers at a time, or use a machine with more memory")
    if isinstance(exc, OSError) and exc.filename:
        return CustomerValueError(f"{exc.strerror or exc}: {exc.filename}")
    return None


def error_line(exc: BaseException, expected: CustomerValueError | None) -> str:
    """The one line: the message (a list of bad rows joined; any other multi-line message cut to
    its first line), or for a bug its name and where to report it. Credentials are redacted."""
    from customer_value.data.loading import DataValidationError

    if expected is None:
        first = _first_line(str(exc))
        line = (f"this is a bug in customer-value: {type(exc).__name__}{f': {first}' if first else ''}; "
                f"please report it at {ISSUES_URL} with the output of the same command rerun with --debug")
    else:
        lines = [part.strip() for part in str(expected).strip().splitlines() if part.strip()]
        if isinstance(expected, DataValidationError):
            line = "; ".join(lines)  # table, column and rows are the message
        elif len(lines) > 1:
            line = f"{lines[0]} (--debug for details)"
        else:
            line = lines[0] if lines else type(expected).__name__
    return _redact(line)


def _first_line(text: str) -> str:
    return next((part.strip() for part in text.strip().splitlines() if part.strip()), "")


def _redact(text: str) -> str:
    from customer_value.tracking.store import redact

    return redact(text)


def _echo_error(message: str) -> None:
    typer.echo(f"{typer.style('error:', fg='red', bold=True)} {message}", err=True)


def _warn(message: str) -> None:
    typer.echo(f"{typer.style('warning:', fg='yellow', bold=True)} {message}", err=True)


HELP = """What each customer is worth from now on, net of what it costs to serve.

Turns a directory of customer tables (customers and transactions; engagement, invoices and support tickets when you have them) into one score row per customer: expected margin minus cost-to-serve plus referral value over the horizon, a value and a cost segment, whether the account drains resources, and why, in words and money. Models are trained, compared and registered in MLflow; scoring loads one by version, alias or exported directory.

[bold]Every week[/bold]

  customer-value validate --data DIR
  customer-value score --data DIR --as-of DATE --out scores.parquet \\
      --model models:/customer_value@champion --report report.html

[bold]When the data or the model changes[/bold]

  customer-value train --data DIR --as-of DATE --experiment weekly
  customer-value compare --experiment weekly
  customer-value train ... --alias champion     (what the weekly score loads)

New here? [bold]customer-value simulate --out data/raw/demo[/bold] writes a world to try every command on. The commands below are in their order of use; [bold]customer-value COMMAND --help[/bold] says more."""
COMMAND_ORDER = ("simulate", "datasets", "validate", "features", "train", "backtest", "compare", "export", "score",
                 "whatif", "ui")
"""The commands in the order a user meets them (the help lists them so)."""
PANELS = {"simulate": "Data", "datasets": "Data", "validate": "Data", "features": "Data",
          "train": "Models", "backtest": "Models", "compare": "Models", "export": "Models",
          "score": "Scoring", "whatif": "Scoring", "ui": "Tools"}

app = typer.Typer(cls=OneErrorPath, no_args_is_help=True, add_completion=False, help=HELP,
                  rich_markup_mode="rich", pretty_exceptions_enable=False)
datasets_app = typer.Typer(no_args_is_help=True, help="Public data sets converted to contract tables.")
app.add_typer(datasets_app, name="datasets")

console = Console(stderr=True, soft_wrap=True)  # a path or message is never cut into lines


@app.callback()
def _global_options(
    debug: Annotated[bool, typer.Option("--debug", envvar=DEBUG_ENV,
                                        help="Show the full traceback of a failure instead of one line.")] = False,
) -> None:
    """Options of every command (before the command name)."""


DataDir = Annotated[Path, typer.Option("--data", exists=True, file_okay=False, help="Directory of contract tables.")]
AsOf = Annotated[str, typer.Option("--as-of", help="Score/feature date D (YYYY-MM-DD); history is < D 00:00 UTC.")]
ConfigFile = Annotated[Optional[Path], typer.Option("--config", exists=True, dir_okay=False, help="YAML config.")]
Strict = Annotated[
    Optional[bool],
    typer.Option("--strict/--no-strict", help="Stop on bad rows (default) or set them aside into a report."),
]
ValidationReportFile = Annotated[
    Optional[Path],
    typer.Option("--validation-report", help="Where rows set aside by --no-strict go (default validation_report.csv)."),
]
Seed = Annotated[Optional[int], typer.Option("--seed", help="Random seed (overrides the config).")]
EngineOption = Annotated[str, typer.Option(
    "--engine", help="Where the features run: duckdb (embedded) or spark (a local or remote Spark session; "
                     "pip install 'customer-value\\[spark]').")]
SparkMaster = Annotated[Optional[str], typer.Option(
    "--spark-master", help="Spark master URL for --engine spark (default: spark.master in the config, else local[*]).")]


def engine_of(engine: str, settings: Settings, spark_master: str | None = None) -> Any:
    """``"duckdb"``, or for ``spark`` an Ibis backend on the session the settings describe (the
    ``spark:`` block of the config, ``--spark-master`` over its master)."""
    name = engine.lower()
    if name == "duckdb":
        if spark_master is not None:
            raise ConfigError("--spark-master needs --engine spark")
        return "duckdb"
    if name not in ("spark", "pyspark"):
        raise ConfigError(f"--engine must be duckdb or spark, got {engine!r}")
    from customer_value.pipeline.spark_features import spark_backend

    with console.status("starting Spark"):
        return spark_backend(spark_settings(settings, spark_master))


def spark_settings(settings: Settings, spark_master: str | None) -> Any:
    """``settings.spark`` with ``--spark-master`` over its master."""
    return settings.spark if spark_master is None else settings.spark.model_copy(update={"master": spark_master})


def settings_from(config: Path | None, **overrides: object) -> Settings:
    """The one Settings object of a command: YAML file, then CLI flags (ConfigError names bad keys)."""
    return load_settings(config, **overrides)


def parse_as_of(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"--as-of must be a date YYYY-MM-DD, got {value!r}") from exc


@app.command()
def simulate(
    customers: Annotated[int, typer.Option(help="Number of customers.")] = 20000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives byte-identical files.")] = 7,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("data/raw/demo"),
    truth_as_of: Annotated[str, typer.Option("--truth-as-of", help="Date of the ground-truth file.")] = "2024-07-01",
    config: ConfigFile = None,
) -> None:
    """Simulate a customer world (every contract table plus ground truth) into OUT."""
    from customer_value.data.writing import check_output
    from customer_value.simulation.world import simulate_world, write_world

    settings = settings_from(config, seed=seed)
    check_output(out / "customers.parquet", "simulated world")
    with console.status(f"simulating {customers:,} customers"):
        world = simulate_world(customers, seed, settings=settings, truth_as_of=truth_as_of)
        paths = write_world(world, out)
    for name, path in paths.items():
        console.print(f"  {name:<18} {path}")
    console.print(f"[green]simulated[/green] {customers:,} customers into {out}")


@app.command()
def validate(
    data: DataDir,
    config: ConfigFile = None,
    strict: Strict = None,
    report: Annotated[Optional[Path], typer.Option("--report", "--validation-report",
                                                   help="Where the set-aside rows go (non-strict).")] = None,
) -> None:
    """Validate a data directory against the contract; exit non-zero on errors."""
    from customer_value.pipeline.validate import validate_directory

    settings = settings_from(config, strict=strict)
    validate_directory(data, settings, report, Console())


@app.command()
def features(
    data: DataDir,
    as_of: AsOf,
    out: Annotated[Path, typer.Option(help="Parquet file to write.")],
    engine: EngineOption = "duckdb",
    targets: Annotated[bool, typer.Option("--targets", help="Also compute targets over [as_of, as_of + horizon).")] = False,
    spark_master: SparkMaster = None,
    config: ConfigFile = None,
    strict: Strict = None,
    validation_report: ValidationReportFile = None,
) -> None:
    """Point-in-time features (and optionally targets) for every customer signed up before AS_OF."""
    from customer_value.data.writing import check_output, write_parquet_atomically
    from customer_value.features import build_features, build_targets
    from customer_value.pipeline.inputs import load_inputs

    settings = settings_from(config, strict=strict)
    day = parse_as_of(as_of)
    check_output(out, "features")
    if validation_report is not None:
        check_output(validation_report, "validation report")
    backend = engine_of(engine, settings, spark_master)
    loaded = load_inputs(data, settings, validation_report, _progress)
    frame = build_features(loaded.tables, day, settings, engine=backend, progress=True)
    if targets:
        target_frame = build_targets(loaded.tables, day, settings, engine=backend)
        frame = frame.merge(target_frame, on="customer_id", how="left", validate="one_to_one", suffixes=("", "_target"))
    write_parquet_atomically(frame, out)
    console.print(f"[green]wrote[/green] {len(frame):,} customers x {frame.shape[1] - 1} columns to {out}")


def _without_prefix(text: str, name: str) -> str:
    """``text`` without a leading ``"<name>: "`` (a reason that already names its part)."""
    return text.removeprefix(f"{name}: ")


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _quiet_mlflow(ctx: typer.Context) -> None:
    """MLflow's own event lines ("Creating initial MLflow database tables", "Successfully registered
    model", artifact download bars) off until this command ends; the command says what matters
    itself. ``--debug`` keeps them."""
    if ctx.find_root().params.get("debug"):
        return
    ctx.with_resource(_mlflow_events_off())


@contextmanager
def _mlflow_events_off() -> Iterator[None]:
    import os

    from mlflow.utils import logging_utils

    previous = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:  # MLflow's own counted switch: its inner "silence while validating" blocks then do not turn events back on
        from mlflow.utils.autologging_utils.logging_and_warnings import MlflowEventsAndWarningsBehaviorGlobally

        silenced: Any = MlflowEventsAndWarningsBehaviorGlobally(disable_event_logs=True, disable_warnings=False,
                                                               reroute_warnings=False)
    except ImportError:  # pragma: no cover - an MLflow without it: the plain switch
        silenced = None
    try:
        if silenced is not None:
            with silenced:
                yield
        else:
            logging_utils.disable_logging()
            try:
                yield
            finally:
                logging_utils.enable_logging()
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = previous


def _progress(message: str) -> None:
    """A line of progress on standard error, with the time of day."""
    from customer_value.pipeline.progress import ConsoleReporter

    ConsoleReporter(console).say(message)


@contextmanager
def _reporter() -> Iterator[Any]:
    """Progress bars on standard error for one job (closed, whatever happens)."""
    from customer_value.pipeline.progress import ConsoleReporter

    shown = ConsoleReporter(console)
    try:
        yield shown
    finally:
        shown.close()


@app.command()
def train(
    ctx: typer.Context,
    data: DataDir,
    as_of: AsOf,
    experiment: Annotated[str, typer.Option(help="MLflow experiment to log the run into.")],
    config: ConfigFile = None,
    trials: Annotated[Optional[int], typer.Option(help="Optuna trials per boosted model.")] = None,
    alias: Annotated[Optional[str], typer.Option(help="Move this registry alias (e.g. champion) to the new version.")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Registered model name.")] = None,
    backtest: Annotated[bool, typer.Option("--backtest/--no-backtest", help="Run the internal backtest.")] = True,
    export: Annotated[Optional[Path], typer.Option(help="Also save the model bundle here (e.g. models/customer_value).")] = None,
    strict: Strict = None,
    seed: Seed = None,
    validation_report: ValidationReportFile = None,
    engine: EngineOption = "duckdb",
    spark_master: SparkMaster = None,
) -> None:
    """Fit every part as of AS_OF, log to MLflow, register; prints the model URI last.

    With --engine spark the feature and target tables of every snapshot are built on Spark; the
    models are fitted here, from those per-customer tables."""
    from customer_value.pipeline.train import train as run_train

    _quiet_optuna()
    _quiet_mlflow(ctx)
    settings = settings_from(config, trials=trials, strict=strict, seed=seed, model_name=name)
    day = parse_as_of(as_of)
    backend = engine_of(engine, settings, spark_master)
    with _reporter() as progress:
        result = run_train(data, day, experiment, settings, alias=alias, backtest=backtest, progress=progress,
                           export_dir=export, validation_report=validation_report, engine=backend)
    for part, reason in result.fitted.skipped.items():
        console.print(f"[yellow]skipped {part}:[/yellow] {_without_prefix(reason, part)}")
    console.print(f"[green]trained[/green] run {result.run_id}; registered {result.model_uri}"
                  + (f" (alias {alias})" if alias else ""))
    typer.echo(result.model_uri)


class CompiledTreesMode(str, Enum):
    """``score --compiled-trees`` (the config's ``compiled_trees``, boosted/compiled.py)."""

    auto = "auto"
    always = "always"
    never = "never"


@app.command()
def score(
    ctx: typer.Context,
    as_of: AsOf,
    model: Annotated[str, typer.Option(help="models:/<name>/<version>, models:/<name>@<alias> or a local model directory.")],
    out: Annotated[str, typer.Option(help="Parquet file to write (atomically); with --engine spark a directory of "
                                          "part files (a local path or a URI such as s3a://...).")],
    data: Annotated[Optional[str], typer.Option(
        "--data", help="Directory of contract tables. With --engine spark also a URI (hdfs://, s3a://, dbfs:/) of "
                       "canonical NAME.parquet files, or leave it out to read the catalog tables of spark.tables in "
                       "the config.")] = None,
    report: Annotated[Optional[Path], typer.Option(help="HTML report to write.")] = None,
    log_run: Annotated[bool, typer.Option("--log/--no-log", help="Log a scoring run to MLflow.")] = True,
    horizon: Annotated[Optional[int], typer.Option(min=1, help="Horizon in days for this scoring (default: the model's).")] = None,
    cashflows: Annotated[Optional[str], typer.Option(
        help="Also write expected margin, cost and discounted net per customer and month (Parquet; with "
             "--engine spark a directory of part files, a local path or a URI).")] = None,
    config: ConfigFile = None,
    strict: Strict = None,
    validation_report: ValidationReportFile = None,
    engine: EngineOption = "duckdb",
    spark_master: SparkMaster = None,
    batch_size: Annotated[Optional[int], typer.Option(
        min=1, help="Customers per batch with --engine duckdb (memory grows with it, not with the base; "
                    "default: max_customers_per_batch from the config, else 250,000).")] = None,
    compiled_trees: Annotated[Optional[CompiledTreesMode], typer.Option(
        help="With --engine duckdb, run the boosted models' trees compiled to native code (the same scores, "
             "several times faster): always compiles the full build models/compiled lacks first, once per model "
             "version; auto (the config's compiled_trees, default) uses what is cached and compiles the quick "
             "build for 400,000 customers or more; never runs LightGBM.")] = None,
) -> None:
    """Score every customer signed up before AS_OF once, with the model's own settings; optionally the HTML report.

    A --config may only say how to read the data (columns, strict, timestamp_format, spark) and the report's currency.
    With --engine spark the features and the models run on Spark and the scores (and the cash flows) are written
    as directories of Parquet part files; the report and the MLflow scoring run read the written scores back.
    --validation-report needs --engine duckdb (it validates every row of every table)."""
    from customer_value.pipeline.score import score as run_score

    _quiet_mlflow(ctx)
    settings = settings_from(config, strict=strict) if (config or strict is not None) else None
    if compiled_trees is not None:
        if engine.lower() != "duckdb":
            raise ConfigError("--compiled-trees needs --engine duckdb (Spark's executors run LightGBM)")
        settings = (settings or Settings()).model_copy(update={"compiled_trees": compiled_trees.value})
    day = parse_as_of(as_of)
    if engine.lower() in ("spark", "pyspark"):
        _score_on_spark(data, day, model, out, settings, horizon, spark_master, report, log_run, cashflows,
                        validation_report)
        return
    if spark_master is not None:
        raise ConfigError("--spark-master needs --engine spark")
    if engine.lower() != "duckdb":
        raise ConfigError(f"--engine must be duckdb or spark, got {engine!r}")
    if data is None:
        raise ConfigError("Missing option '--data' (a directory of contract tables)")
    if not Path(data).is_dir():
        raise ConfigError(f"Invalid value for '--data': Directory '{data}' does not exist.")
    out = Path(out)
    with _reporter() as progress:
        result = run_score(Path(data), day, model, out, settings, report=report, log_run=log_run, progress=progress,
                           validation_report=validation_report, horizon_days=horizon,
                           cashflows=Path(cashflows) if cashflows is not None else None, batch_customers=batch_size)
    scores = result.scores
    counts = scores["value_segment"].value_counts()
    order = [s for s in ("top", "high", "medium", "low", "negative") if s in counts.index]
    segments = ", ".join(f"{name} {int(counts[name]):,}" for name in [*order, *[s for s in counts.index if s not in order]])
    drains = int(scores["drain_flag"].sum())
    console.print(f"[green]scored[/green] {len(scores):,} customers -> {out}")
    console.print(f"  value segments: {segments}; flagged to drain {drains:,}")
    if result.report is not None:
        console.print(f"  report: {result.report}")
    _print_drift(result.drift, result.drift_against, log_run and bool(result.run_id))


def _print_drift(drift: dict[str, float], against: str | None, logged: bool) -> None:
    if drift:
        shifted = {k: v for k, v in drift.items() if v >= 0.1}
        worst = max(drift.items(), key=lambda kv: kv[1])
        console.print(f"  drift against the previous scoring (run {(against or '')[:8]}): "
                      + (f"[yellow]{len(shifted)} column(s) shifted[/yellow] (PSI >= 0.1: "
                         + ", ".join(f"{k} {v:.2f}" for k, v in sorted(shifted.items(), key=lambda kv: -kv[1])) + ")"
                         if shifted else f"stable (largest PSI {worst[1]:.3f}, {worst[0]})"))
    elif logged:
        console.print("  drift: no earlier scoring of this model to compare with")


def _score_on_spark(data: str | None, day: date, model: str, out: str, settings: Settings | None,
                    horizon: int | None, spark_master: str | None, report: Path | None, log_run: bool,
                    cashflows: str | None, validation_report: Path | None) -> None:
    """`score --engine spark`: the DuckDB engine's outputs, but for the validation report (an
    error, not ignored)."""
    from customer_value.pipeline.spark_scoring import score_on_spark

    if validation_report is not None:
        raise ConfigError("--validation-report needs --engine duckdb: it validates every row of every table, "
                          "which the Spark engine does not do")
    given = settings or Settings()
    if spark_master is not None:
        given = given.model_copy(update={"spark": spark_settings(given, spark_master)})
    with _reporter() as progress:
        result = score_on_spark(data, day, model, out, given if settings is not None or spark_master else None,
                                horizon_days=horizon, progress=progress, report=report, log_run=log_run,
                                cashflows=cashflows)
    stages = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.seconds.items())
    console.print(f"[green]scored[/green] {result.rows:,} customers on Spark -> {result.out}")
    console.print(f"  {stages}")
    if result.cashflows is not None:
        console.print(f"  cash flows: {result.cashflow_rows:,} rows -> {result.cashflows}")
    if result.report is not None:
        console.print(f"  report: {result.report}")
    _print_drift(result.drift, result.drift_against, log_run and bool(result.run_id))


@app.command()
def backtest(
    ctx: typer.Context,
    data: DataDir,
    as_of: AsOf,
    experiment: Annotated[str, typer.Option(help="MLflow experiment to log the backtest into.")],
    cutoffs: Annotated[int, typer.Option(help="Number of rolling origins.")] = 3,
    spacing_days: Annotated[int, typer.Option(help="Days between origins.")] = 91,
    config: ConfigFile = None,
    trials: Annotated[Optional[int], typer.Option(help="Optuna trials per boosted model.")] = None,
    strict: Strict = None,
    validation_report: ValidationReportFile = None,
    engine: EngineOption = "duckdb",
    spark_master: SparkMaster = None,
    truth: Annotated[Optional[Path], typer.Option(
        "--truth", exists=True, dir_okay=False,
        help="A simulated world's truth.parquet: the cutoff on its date is also judged against the "
             "oracle and the value ceiling (Spearman, and the share of each gap the model closes).")] = None,
) -> None:
    """Refit as of several earlier dates, score, compare with what happened (beside the baselines).

    With --engine spark the snapshots' feature and target tables are built on Spark; the fits run here."""
    from customer_value.pipeline.backtest import backtest_command

    _quiet_optuna()
    _quiet_mlflow(ctx)
    settings = settings_from(config, trials=trials, strict=strict)
    day = parse_as_of(as_of)
    backend = engine_of(engine, settings, spark_master)
    with _reporter() as progress:  # each stage of each refit shown until the next, with its time
        table = backtest_command(data, day, experiment, settings, cutoffs, spacing_days, progress=progress.stage,
                                 validation_report=validation_report, engine=backend, truth_file=truth)
    typer.echo(table)


@app.command()
def compare(
    ctx: typer.Context,
    experiment: Annotated[list[str], typer.Option(help="Experiment name (repeatable).")],
    metric: Annotated[str, typer.Option(help="Sort by this metric.")] = "backtest.value.spearman",
    ascending: Annotated[bool, typer.Option(help="Smallest first (for losses).")] = False,
    fmt: Annotated[str, typer.Option("--format", help="markdown or csv.")] = "markdown",
) -> None:
    """Training runs across experiments: key metrics beside their baselines, and the config keys that differ."""
    from customer_value.pipeline.compare import comparison, format_comparison
    from customer_value.tracking import store as tracking

    if fmt not in ("markdown", "csv"):
        raise ConfigError(f"--format must be markdown or csv, got {fmt!r}")
    _quiet_mlflow(ctx)
    tracking.setup_tracking()
    try:
        result = comparison(experiment, metric, ascending)
    except ValueError as exc:  # an unknown experiment or metric is a usage problem
        if isinstance(exc, CustomerValueError):
            raise
        raise ConfigError(str(exc)) from exc
    typer.echo(format_comparison(result, fmt))


@app.command()
def whatif(
    scores: Annotated[Path, typer.Option(help="A score file written by `score` (read, never modified).")],
    config: Annotated[Path, typer.Option(help="YAML of changes: rates, pools, shift, fees, plans (see README).")],
    out: Annotated[Path, typer.Option(help="Parquet file of repriced scores to write (atomically).")],
    summary: Annotated[Optional[Path], typer.Option(help="HTML summary to write (default: OUT with .html).")] = None,
) -> None:
    """Reprice scored customers under changed rates, pool amounts, plan prices or support mix, without refitting."""
    from customer_value.pipeline.whatif import whatif as run_whatif

    result = run_whatif(scores, config, out, summary or out.with_suffix(".html"))
    s = result.summary
    table = Table(title="What-if: totals", show_lines=False)
    for column in ("", "before", "after", "change"):
        table.add_column(column, justify="right" if column else "left")
    for name, row in s.totals.iterrows():
        table.add_row(str(name), f"{row['before']:,.0f}", f"{row['after']:,.0f}", f"{row['change']:+,.0f}")
    console.print(table)
    for group, frame in s.by_group.items():
        by = Table(title=f"value change by {group.replace('_', ' ')}")
        for column in (group, "customers", "before", "after", "change"):
            by.add_column(column, justify="left" if column == group else "right")
        for name, row in frame.iterrows():
            by.add_row(str(name), f"{int(row['customers']):,}", f"{row['value_before']:,.0f}",
                       f"{row['value_after']:,.0f}", f"{row['value_change']:+,.0f}")
        console.print(by)
    console.print(f"{s.to_positive:,} customer(s) cross from negative to positive value, "
                  f"{s.to_negative:,} from positive to negative")
    console.print(f"[green]repriced[/green] {len(result.scores):,} customers -> {result.out}; summary {result.summary_path}")


@app.command()
def ui(
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 5000,
    host: Annotated[str, typer.Option(help="Interface to bind; anything but loopback exposes the runs to the "
                                           "network, without authentication.")] = "127.0.0.1",
) -> None:
    """Open the MLflow UI on the embedded store (localhost only unless --host says otherwise).

    The server runs in its own process group; stopping this command (Ctrl-C, SIGTERM) stops it."""
    from customer_value.tracking import store as tracking

    uri = tracking.tracking_uri()
    if not _is_loopback(host):
        _warn(f"--host {host} makes the MLflow UI reachable from other machines, without authentication; "
              "anyone who can connect can read and delete runs and models")
    artifacts = tracking.store_dir() / "artifacts"
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    if uri == tracking.default_tracking_uri():
        artifacts.mkdir(parents=True, exist_ok=True)
        command += ["--artifacts-destination", str(artifacts)]
    shown = f"[{host}]" if ":" in host else host
    console.print(f"MLflow UI on http://{shown}:{port} (store {tracking.redact(uri)}); Ctrl-C stops it")
    raise typer.Exit(serve(command))


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(command: list[str], stop_timeout: float = 10.0) -> int:
    """Run ``command`` in its own process group until it exits or we get SIGINT/SIGTERM, then
    stop the whole group (SIGTERM, SIGKILL after ``stop_timeout`` seconds). 0 when we were asked to stop."""
    import os
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(command, env=os.environ.copy(), start_new_session=True)
    asked: list[float] = []

    def stop(_signum: int, _frame: Any) -> None:  # only signal here: the loop below does the waiting
        asked.append(time.monotonic())
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                code = proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if asked and time.monotonic() - asked[0] > stop_timeout:
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
    finally:
        _stop_group(proc, stop_timeout)  # the workers, whatever happened to the leader
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if asked else code


def _stop_group(proc: Any, timeout: float) -> None:
    """SIGTERM the process group led by ``proc`` (the server and any workers), then SIGKILL."""
    import os
    import signal
    import subprocess
    import time

    def signal_group(sig: int) -> bool:
        try:
            os.killpg(proc.pid, sig)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    if not signal_group(signal.SIGTERM):
        return
    deadline = time.monotonic() + timeout
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    while time.monotonic() < deadline and _group_running(proc.pid):  # workers may outlive the leader briefly
        time.sleep(0.1)
    if _group_running(proc.pid):
        signal_group(signal.SIGKILL)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _group_running(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies, which no one may reap here, do not count)."""
    import os

    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


@app.command("compile")
def compile_trees(
    ctx: typer.Context,
    model: Annotated[str, typer.Option(help="models:/<name>/<version>, models:/<name>@<alias> or a local model directory.")],
    config: ConfigFile = None,
) -> None:
    """Compile a model's boosted trees to native code once, where scoring finds them (compiled_trees_dir).

    The weekly job's step when a model version is promoted: every later `score` of it runs the compiled trees
    (the same scores, several times faster on a large base). Needs lleaves, the package's `compiled` extra."""
    import time

    from customer_value.pipeline.score import scoring_trees_compiled
    from customer_value.tracking.model import load_model

    _quiet_mlflow(ctx)
    settings = settings_from(config) if config else Settings()
    start = time.perf_counter()
    with _reporter() as progress:
        with progress.step(f"loading model {model}"):
            loaded = load_model(model)
        with progress.step("compiling the boosted trees", total=None) as step:
            compiled = scoring_trees_compiled(loaded.value_model, settings, 0, "always", say=progress.say,
                                              progress=lambda done, total: step.update(completed=done, total=total))
    if not compiled:
        raise CustomerValueError(f"{model} has no boosted model to compile")
    console.print(f"[green]compiled[/green] the trees of {model} into {settings.compiled_trees_dir} "
                  f"in {time.perf_counter() - start:.0f}s; `score` runs them from now on")


@app.command()
def export(
    ctx: typer.Context,
    model: Annotated[str, typer.Option(help="models:/<name>/<version> or models:/<name>@<alias>.")],
    out: Annotated[Path, typer.Option(help="Directory to write the MLflow model to (e.g. models/customer_value).")],
) -> None:
    """Copy a registered model to a local directory, for scoring without a tracking server."""
    import shutil
    import tempfile

    import mlflow

    from customer_value.data.writing import check_output
    from customer_value.tracking.model import resolve_reference

    _quiet_mlflow(ctx)
    if out.exists() and not out.is_dir():
        raise OutputError(f"cannot export to {out}: it is a file")
    if out.is_dir() and any(out.iterdir()) and not (out / "MLmodel").is_file():
        raise OutputError(f"cannot export to {out}: it is a directory that holds something other than a model; "
                          "name a new or empty directory")
    check_output(out / "MLmodel", "exported model")
    reference = resolve_reference(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        mlflow.artifacts.download_artifacts(artifact_uri=reference.load_uri, dst_path=str(staging))
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    console.print(f"[green]exported[/green] {reference.uri} to {out}; score with --model {out}")


@datasets_app.command("cdnow")
def datasets_cdnow(
    out: Annotated[Path, typer.Option(help="Output directory.")],
    master: Annotated[bool, typer.Option("--master/--sample", help="The full master file or the 1/10 sample.")] = False,
) -> None:
    """CDNOW (shipped with lifetimes) as contract tables; same-day purchases are merged."""
    from customer_value.data.cdnow import write_cdnow

    paths = write_cdnow(out, "master" if master else "sample")
    for name, path in paths.items():
        console.print(f"  {name:<18} {path}")


for _info in [*app.registered_commands, *app.registered_groups]:
    _info.rich_help_panel = PANELS.get(_info.name or getattr(_info.callback, "__name__", ""), "Tools")


def main() -> None:  # pragma: no cover - entry point convenience
    app(sys.argv[1:])


if __name__ == "__main__":  # `spark-submit .../customer_value/cli.py score --engine spark ...` (README, Spark)
    main()
