"""One frozen settings object that flows from the CLI (or a notebook) down to every computation.

A YAML file (contract section 7) and CLI flags both become a :class:`Settings`; a typo in a key
is an error at start-up that names the key, never a silent default.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from customer_value.errors import ConfigError

TABLES: tuple[str, ...] = (
    "customers",
    "transactions",
    "engagement_events",
    "invoices",
    "support_tickets",
)
TICKET_CHANNELS: tuple[str, ...] = ("email", "chat", "phone", "other")
POOL_DRIVERS: tuple[str, ...] = (
    "support_minutes",
    "transactions",
    "invoices",
    "active_customer_months",
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IndirectPool(_Frozen):
    """A shared cost spread over customers by an activity driver (contract section 3)."""

    name: str
    annual_amount: float = Field(ge=0)
    driver: Literal["support_minutes", "transactions", "invoices", "active_customer_months"]


class CostRates(_Frozen):
    """Activity-based costing rates; any subset in YAML overrides the contract's defaults."""

    minute_rate: dict[str, float] = Field(
        default_factory=lambda: {"email": 0.80, "chat": 1.00, "phone": 1.50, "other": 1.00}
    )
    escalation_cost: float = 25.0
    order_cost: float = 2.00
    payment_fee_rate: float = 0.029
    invoice_cost: float = 1.50
    late_payment_cost: float = 15.0
    indirect_pools: tuple[IndirectPool, ...] = ()

    @field_validator("minute_rate", mode="before")
    @classmethod
    def _complete_minute_rates(cls, value: dict[str, float]) -> dict[str, float]:
        """A partial `minute_rate` overrides only the channels it names."""
        unknown = set(value) - set(TICKET_CHANNELS)
        if unknown:
            raise ValueError(
                f"unknown ticket channel(s) in costs.minute_rate: {sorted(unknown)}; "
                f"expected {list(TICKET_CHANNELS)}"
            )
        defaults = {"email": 0.80, "chat": 1.00, "phone": 1.50, "other": 1.00}
        return {**defaults, **{k: float(v) for k, v in value.items()}}


class TrainingSnapshots(_Frozen):
    """How the gradient-boosted models' stacked training sets are built (see training/snapshots)."""

    count: int = Field(default=6, ge=1, description="number of feature snapshots stacked")
    spacing_days: int = Field(default=30, ge=1, description="days between consecutive snapshots")
    young_base_labels: bool = Field(
        default=True,
        description="on a base between one and two horizons old, measure the horizon-long tasks' labels over a shorter, "
                    "later window (max(horizon / 2, age − horizon) days) and scale them to the horizon, so the "
                    "value models learn from customers as old as the ones they score (training/snapshots)")


class SparkSettings(_Frozen):
    """Where ``--engine spark`` runs (features, scoring, training snapshots): the session's master,
    name and extra configuration, and optionally catalog tables to read instead of a directory."""

    master: str = Field(default="local[*]", description="Spark master URL; local[*] uses every core of this machine")
    app_name: str = "customer-value"
    conf: dict[str, str] = Field(
        default_factory=dict,
        description="extra Spark configuration, e.g. {spark.executor.memory: 8g}; set on the session at start",
    )
    shuffle_partitions: int | None = Field(
        default=None, ge=1, description="spark.sql.shuffle.partitions; none: twice the cores in local mode, Spark's "
                                        "default on a cluster")
    tables: dict[str, str] = Field(
        default_factory=dict,
        description="contract table -> catalog table (e.g. {transactions: lake.sales.orders}); read instead of "
                    "NAME.parquet files when --data is not given",
    )

    @field_validator("tables")
    @classmethod
    def _known_tables(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - set(TABLES)
        if unknown:
            raise ValueError(f"unknown table(s) in spark.tables: {sorted(unknown)}; expected {list(TABLES)}")
        return value

    @field_validator("conf", mode="before")
    @classmethod
    def _text_values(cls, value: dict[str, Any]) -> dict[str, str]:
        """YAML reads ``4`` and ``true`` as numbers and booleans; Spark wants text."""
        return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in (value or {}).items()}


class Settings(_Frozen):
    """Everything a run depends on besides the data. Contract section 7 keys, plus our own."""

    horizon_days: int = Field(default=365, gt=0)
    churn_window_days: int = Field(default=90, gt=0)
    discount_rate: float = Field(default=0.10, ge=0, description="annual")
    margin_rate: float = Field(default=1.0, description="margin per unit of revenue when transactions have no gross_margin")
    time_unit: Literal["days", "weeks"] = "days"
    costs: CostRates = Field(default_factory=CostRates)
    columns: dict[str, dict[str, str]] = Field(default_factory=dict)
    seed: int = 42

    # -- our additions -------------------------------------------------------------------------
    purchase_model: Literal["bgnbd", "mbgnbd", "pareto_nbd"] = "bgnbd"
    penalizer: float = Field(default=0.0, ge=0, description="L2 penalizer of the probabilistic fits")
    segment_quantiles: tuple[float, float, float] = Field(
        default=(0.5, 0.8, 0.95),
        description="value quantiles separating low/medium/high/top among non-negative customers",
    )
    snapshots: TrainingSnapshots = Field(default_factory=TrainingSnapshots)
    trials: int = Field(default=20, ge=0, description="Optuna trials per gradient-boosted model")
    max_trees: int | None = Field(
        default=None, ge=10,
        description="scoring budget of trees per boosted model: a model that early-stops beyond it is trained "
                    "again with a proportionally larger learning rate (boosted/lgbm.py); none: no budget",
    )
    activity_max_trees: int | None = Field(
        default=80, ge=10,
        description="the same budget for each of the nine activity volume models (no search of their own; "
                    "unbudgeted they were 60-85% of the trees a scored row runs through, budgeted they cost 0.002 "
                    "of cost Spearman for 2.4x fewer trees: benchmarks/value.py); none: max_trees alone",
    )
    churn_adjustment: Literal["boosted", "survival", "blend"] = Field(
        default="boosted", description="how the churn model's probability enters the value (valuation/value.py)"
    )
    drain_threshold: float | None = Field(
        default=None, gt=0, lt=1,
        description="drain_probability at which a customer is flagged (drain_flag); none: the F1-optimal "
                    "cut on the validation snapshot (boosted/drain.py)",
    )
    cost_forecast: Literal["auto", "activities", "total", "blend"] = Field(
        default="auto",
        description="expected_cost_to_serve per customer from the priced activity forecasts, the total-cost model, "
                    "or the mean of the two (the activities scaled to it); auto: whichever ranks the validation "
                    "snapshot's cost best (valuation/activity_costs.py)",
    )
    value_forecast: Literal["auto", "parts", "net"] = Field(
        default="auto",
        description="net value per customer from the difference of the margin and cost forecasts (parts), or from "
                    "the net value model (boosted/net_value.py), the margin moved to match it; auto: net unless the "
                    "parts' difference ranks the validation snapshot's net value at least as well",
    )
    max_customers_per_batch: int | None = Field(
        default=None, gt=0,
        description="customers scored per batch on one machine (features, models and rows per batch, so memory "
                    "does not grow with the base); none: 250,000",
    )
    compiled_trees: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="score with the boosted models' trees compiled to native code (boosted/compiled.py, the "
                    "customer-value[compiled] extra): auto uses this model's cached objects and, with none, compiles "
                    "the quick build only for a base large enough to repay it within the run (400,000 customers); "
                    "always compiles the full (fastest) build first; never scores with LightGBM. Same "
                    "predictions to 1e-9",
    )
    compiled_trees_dir: str = Field(
        default="models/compiled",
        description="where compiled trees are cached, per model text, compiler version and CPU (git-ignored)",
    )
    referral_value_default: float = Field(
        default=50.0, description="value of a referred customer when the data has too few referred customers"
    )
    model_name: str = "customer_value"
    currency: str = Field(default="USD", description="ISO 4217 code of every money amount, as the report shows it")
    strict: bool = True
    spark: SparkSettings = Field(default_factory=SparkSettings,
                                 description="the Spark session of --engine spark (master, app name, conf, tables)")
    timestamp_format: str | None = Field(
        default=None,
        description="strftime format of text timestamps in the input files, e.g. '%d/%m/%Y'; none: ISO 8601 "
                    "(year first, optional offset or Z). A text timestamp that does not match is a problem row, "
                    "never parsed another way (data/loading.py)",
    )

    @field_validator("columns")
    @classmethod
    def _known_tables(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        unknown = set(value) - set(TABLES)
        if unknown:
            raise ValueError(f"unknown table(s) in columns: {sorted(unknown)}; expected {list(TABLES)}")
        return value

    @field_validator("timestamp_format")
    @classmethod
    def _usable_format(cls, value: str | None) -> str | None:
        """A format that cannot read back what it writes would reject every row: refuse it here."""
        if value is None:
            return value
        moment = datetime(2024, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
        try:
            if "%" not in value:
                raise ValueError("it has no % directive")
            datetime.strptime(moment.strftime(value), value)
        except ValueError as exc:
            raise ValueError(f"timestamp_format {value!r} is not a usable strftime format such as "
                             f"'%d/%m/%Y %H:%M' ({exc}); leave it out for ISO 8601") from exc
        return value

    @model_validator(mode="after")
    def _quantiles_increase(self) -> "Settings":
        q = self.segment_quantiles
        if not (0 < q[0] < q[1] < q[2] < 1):
            raise ValueError(f"segment_quantiles must increase strictly inside (0, 1), got {q}")
        return self

    def with_overrides(self, **overrides: Any) -> "Settings":
        """A copy with the given (non-None) fields replaced and re-validated, e.g. from CLI flags."""
        data = self.model_dump()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return Settings.model_validate(data)


class ActivityShift(_Frozen):
    """Move a share of one support channel's minutes to another (e.g. phone to chat)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    source: str = Field(alias="from")
    target: str = Field(alias="to")
    share: float = Field(gt=0, le=1)

    @model_validator(mode="after")
    def _support_channels(self) -> "ActivityShift":
        channels = [f"support_{c}" for c in TICKET_CHANNELS]
        bad = [a for a in (self.source, self.target) if a not in channels]
        if bad or self.source == self.target:
            raise ValueError(f"a shift moves minutes between two different support channels {channels}, got "
                             f"from {self.source!r} to {self.target!r}")
        return self


class WhatIf(_Frozen):
    """Changes to price a scored file under (``customer-value whatif --config``); every key optional.

    ``rates``: new unit rates (any of ``costs``' keys, e.g. ``minute_rate: {phone: 1.0}``);
    ``pools``: new annual amounts of indirect pools by name; ``shift``: move a share of a support
    channel's minutes to another; ``fees``: charged to customers per unit of an activity (extra
    revenue and margin, e.g. ``late_payments: 15``); ``plans``: margin uplift per plan (0.05 = +5%)."""

    rates: dict[str, Any] = Field(default_factory=dict)
    pools: dict[str, float] = Field(default_factory=dict)
    shift: tuple[ActivityShift, ...] = ()
    fees: dict[str, float] = Field(default_factory=dict)
    plans: dict[str, float] = Field(default_factory=dict)

    @field_validator("rates")
    @classmethod
    def _known_rates(cls, value: dict[str, Any]) -> dict[str, Any]:
        allowed = set(CostRates.model_fields) - {"indirect_pools"}
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise ValueError(f"unknown rate(s) {unknown}; expected some of {sorted(allowed)} "
                             "(pool amounts go under 'pools')")
        return value

    @field_validator("fees")
    @classmethod
    def _known_fees(cls, value: dict[str, float]) -> dict[str, float]:
        allowed = ("escalations", "orders", "invoices", "late_payments")
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise ValueError(f"unknown fee activit(ies) {unknown}; expected some of {list(allowed)}")
        return value

    @field_validator("pools")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        negative = sorted(k for k, v in value.items() if v < 0)
        if negative:
            raise ValueError(f"pool amounts must be >= 0: {negative}")
        return value

    @property
    def is_empty(self) -> bool:
        return not (self.rates or self.pools or self.shift or self.fees or self.plans)


def load_whatif(path: str | Path) -> WhatIf:
    """Read a what-if YAML; errors name the bad keys (like :func:`load_settings`)."""
    return _validated(WhatIf, _read_yaml(Path(path)), Path(path), "what-if")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"config {path} must be a mapping of keys to values")
    return loaded


def _validated(model: type[BaseModel], data: dict[str, Any], path: Path | None, what: str = "") -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown key '{key}'")
            else:
                problems.append(f"'{key}': {err['msg']}")
        where = f" in {path}" if path is not None else ""
        raise ConfigError(f"invalid {what + ' ' if what else ''}config{where}: " + "; ".join(problems)) from exc


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read a YAML config (or the defaults) and apply CLI overrides; errors name the bad keys."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        data.update(_read_yaml(path))
    data.update({k: v for k, v in overrides.items() if v is not None})
    return _validated(Settings, data, path)
