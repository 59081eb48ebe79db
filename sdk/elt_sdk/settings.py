"""One definition of the pipeline's names and settings, checked in one place.

The CDK stack sizes and wires its resources from ``Settings``; the local runtime creates the same
resources on the embedded endpoint from the same object; the Lambda handlers read their part back
from environment variables that ``Settings.lambda_environment`` writes. A value is looked up in
this order: defaults < ``elt-sdk.toml`` (``[pipeline]`` table) < ``ELT_*`` environment < flags
(or CDK context). Every value, from every source, passes the same type and range check
(``_check``); a bad one is a ``SettingsError`` naming the setting, where the value came from and
what is allowed.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from elt_sdk import layout

CONFIG_FILE = "elt-sdk.toml"
CONFIG_TABLE = "pipeline"
MIB = 1 << 20


def _s(env: str, default: Any, help: str, *, lo: float | None = None, hi: float | None = None,
       choices: tuple[Any, ...] | None = None, pattern: str | None = None) -> Any:
    """A setting: its environment variable, default, one-line help and allowed values."""
    return field(default=default, metadata={"env": env, "help": help, "lo": lo, "hi": hi, "choices": choices,
                                            "pattern": pattern})


_NAME = r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$"
_PREFIX = r"^[A-Za-z0-9!_.*'()/-]+/$"
_KMS = r"^(create|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[A-Za-z0-9/_-]+)$"


@dataclass(frozen=True)
class Settings:
    name_prefix: str = _s("ELT_NAME_PREFIX", "elt-sdk", "prefix of every resource name (lowercase, digits, '-')",
                          pattern=_NAME)
    region: str = _s("AWS_REGION", "us-east-2", "AWS region", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    # Lambda sizing. The queue's visibility timeout is derived: 6x the transform timeout.
    transform_timeout_s: int = _s("ELT_TRANSFORM_TIMEOUT_S", 120, "transform function timeout", lo=3, hi=900)
    transform_memory_mb: int = _s("ELT_TRANSFORM_MEMORY_MB", 1024, "transform memory; CPU follows it (1769 = 1 vCPU)",
                                  lo=128, hi=10240)
    transform_reserved_concurrency: int | None = _s("ELT_TRANSFORM_RESERVED_CONCURRENCY", None,
                                                    "reserved concurrency of the transform (none: unreserved)",
                                                    lo=1, hi=10000)
    ingest_timeout_s: int = _s("ELT_INGEST_TIMEOUT_S", 30, "ingest function timeout", lo=3, hi=900)
    ingest_memory_mb: int = _s("ELT_INGEST_MEMORY_MB", 256, "ingest memory", lo=128, hi=10240)
    ingest_reserved_concurrency: int | None = _s("ELT_INGEST_RESERVED_CONCURRENCY", None,
                                                 "reserved concurrency of ingest (none: unreserved)", lo=1, hi=10000)
    architecture: str = _s("ELT_ARCHITECTURE", "arm64", "Lambda architecture", choices=("arm64", "x86_64"))
    python_runtime: str = _s("ELT_PYTHON_RUNTIME", "3.12", "Lambda Python runtime", choices=("3.12", "3.13"))
    log_retention_days: int = _s("ELT_LOG_RETENTION_DAYS", 30, "CloudWatch log retention of every function",
                                 choices=(1, 3, 5, 7, 14, 30, 60, 90, 180, 365))
    log_level: str = _s("ELT_LOG_LEVEL", "INFO", "handlers' log level (record content only at DEBUG)",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    # Queue and event source mapping.
    max_receive_count: int = _s("ELT_MAX_RECEIVE_COUNT", 5, "receives before a message moves to the DLQ", lo=1, hi=1000)
    queue_retention_days: int = _s("ELT_QUEUE_RETENTION_DAYS", 4, "queue message retention", lo=1, hi=14)
    dlq_retention_days: int = _s("ELT_DLQ_RETENTION_DAYS", 14, "DLQ message retention", lo=1, hi=14)
    batch_size: int = _s("ELT_BATCH_SIZE", 10, "messages per transform invocation (above 10 needs a batching window)",
                         lo=1, hi=10000)
    batching_window_s: int = _s("ELT_BATCHING_WINDOW_S", 5, "seconds the event source waits to fill a batch",
                                lo=0, hi=300)
    # Ingest.
    bronze_prefix: str = _s("ELT_BRONZE_PREFIX", layout.BRONZE_PREFIX, "bronze key prefix (ends with '/')",
                            pattern=_PREFIX)
    idempotency_ttl_seconds: int = _s("IDEMPOTENCY_TTL_SECONDS", 30 * 86400, "how long an ingested object is remembered",
                                      lo=60, hi=10 * 365 * 86400)
    chunk_bytes: int = _s("ELT_CHUNK_BYTES", 128 * MIB, "plain JSONL objects above this are split into byte ranges",
                          lo=1024, hi=1 << 40)
    # Transform.
    emit_partition_events: bool = _s("ELT_EMIT_PARTITION_EVENTS", False, "silver_partition_ready events on EventBridge")
    event_bus_name: str = _s("ELT_EVENT_BUS_NAME", "default", "EventBridge bus of the partition events",
                             pattern=r"^[A-Za-z0-9._/-]{1,256}$")
    metrics_namespace: str = _s("ELT_METRICS_NAMESPACE", "elt-sdk", "CloudWatch namespace of the EMF metrics",
                                pattern=r"^[A-Za-z0-9._/#:-]{1,255}$")
    quarantine_alarm_ratio: float = _s("ELT_QUARANTINE_ALARM_RATIO", 0.05, "alarm when this share is quarantined",
                                       lo=0.0, hi=1.0)
    # Limits on hostile input (see README "Guarantees and limits").
    max_line_bytes: int = _s("ELT_MAX_LINE_BYTES", 8 * MIB, "longest line (or JSON array element) read as a record",
                             lo=1024, hi=1 << 31)
    max_object_bytes: int = _s("ELT_MAX_OBJECT_BYTES", 64 << 30, "most bytes one object may decompress to",
                               lo=MIB, hi=1 << 50)
    max_expansion_ratio: int = _s("ELT_MAX_EXPANSION_RATIO", 200, "most a gzip object may expand (decompressed/compressed)",
                                  lo=2, hi=100000)
    # Silver's format (see README "Silver as an Iceberg table").
    silver_format: str = _s("ELT_SILVER_FORMAT", "parquet",
                            "silver as plain Hive-partitioned Parquet, or one Apache Iceberg table per dataset",
                            choices=("parquet", "iceberg"))
    commit_batch_size: int = _s("ELT_COMMIT_BATCH_SIZE", 100, "objects the Iceberg committer commits per transaction",
                                lo=1, hi=10000)
    commit_batching_window_s: int = _s("ELT_COMMIT_BATCHING_WINDOW_S", 10,
                                       "seconds the committer's event source waits to fill a batch", lo=0, hi=300)
    commit_timeout_s: int = _s("ELT_COMMIT_TIMEOUT_S", 300, "Iceberg committer function timeout", lo=10, hi=900)
    commit_memory_mb: int = _s("ELT_COMMIT_MEMORY_MB", 1024, "Iceberg committer memory", lo=256, hi=10240)
    iceberg_snapshot_retention_days: int = _s("ELT_ICEBERG_SNAPSHOT_RETENTION_DAYS", 5,
                                              "snapshot expiry keeps snapshots younger than this (and the current one)",
                                              lo=1, hi=3650)
    iceberg_orphan_age_days: int = _s("ELT_ICEBERG_ORPHAN_AGE_DAYS", 7,
                                      "orphan removal leaves files younger than this (staged, in flight)", lo=1, hi=3650)
    iceberg_maintenance_schedule: str | None = _s("ELT_ICEBERG_MAINTENANCE_SCHEDULE", None,
                                                  "schedule of the Iceberg maintenance function, e.g. rate(1 day) "
                                                  "(none: no function)", pattern=r"^(rate|cron)\(.+\)$")
    # Storage.
    quarantine_expiry_days: int = _s("ELT_QUARANTINE_EXPIRY_DAYS", 90, "days quarantined records are kept", lo=1, hi=3650)
    staging_expiry_days: int = _s("ELT_STAGING_EXPIRY_DAYS", 2, "days abandoned attempts' staged files are kept",
                                  lo=1, hi=365)
    replay_prefix: str = _s("ELT_REPLAY_PREFIX", layout.REPLAY_PREFIX, "where replay copies go (ends with '/')",
                            pattern=_PREFIX)
    replay_expiry_days: int = _s("ELT_REPLAY_EXPIRY_DAYS", 14, "days replay copies are kept", lo=1, hi=3650)
    bucket_kms_key: str | None = _s("ELT_BUCKET_KMS_KEY", None,
                                    "customer-managed KMS key for the buckets: 'create' or a key ARN (none: S3-managed)",
                                    pattern=_KMS)
    # Optional modules (deploy toggles).
    glue_enabled: bool = _s("ELT_GLUE_ENABLED", False, "Glue database and tables (Athena)")
    observability_enabled: bool = _s("ELT_OBSERVABILITY_ENABLED", True, "dashboard and alarms")
    alarm_email: str | None = _s("ELT_ALARM_EMAIL", None, "e-mail subscribed to alarms", pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    ops_enabled: bool = _s("ELT_OPS_ENABLED", False, "replay/poll Step Functions workflow")
    ops_schedule: str | None = _s("ELT_OPS_SCHEDULE", None, "schedule of the ops workflow, e.g. rate(1 day)",
                                  pattern=r"^(rate|cron)\(.+\)$")
    quality_enabled: bool = _s("ELT_QUALITY_ENABLED", False, "quality-gate state machine")
    quality_auto_trigger: bool = _s("ELT_QUALITY_AUTO_TRIGGER", False, "start the gate on silver_partition_ready")
    compaction_enabled: bool = _s("ELT_COMPACTION_ENABLED", False, "partition compaction function")

    def __post_init__(self) -> None:
        for f in fields(self):  # direct construction is checked too
            _check(f, getattr(self, f.name), "a Settings argument")
        if self.silver_format == "iceberg":
            for name, instead in PLAIN_PARQUET_ONLY.items():
                if getattr(self, name):
                    raise SettingsError(f"setting {name} = true does not go with silver_format = iceberg: {instead}")

    @property
    def visibility_timeout_s(self) -> int:
        """AWS's advice for an SQS event source: at least 6x the function timeout."""
        return 6 * self.transform_timeout_s

    # Resource names. In AWS, buckets get CloudFormation-generated names (bucket names are
    # global); locally these fixed names are used.
    @property
    def bronze_bucket(self) -> str:
        return f"{self.name_prefix}-bronze"

    @property
    def silver_bucket(self) -> str:
        return f"{self.name_prefix}-silver"

    @property
    def quarantine_bucket(self) -> str:
        return f"{self.name_prefix}-quarantine"

    @property
    def queue_name(self) -> str:
        return f"{self.name_prefix}-objects"

    @property
    def dlq_name(self) -> str:
        return f"{self.name_prefix}-objects-dlq"

    @property
    def table_name(self) -> str:
        return f"{self.name_prefix}-idempotency"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def load(cls, path: str | Path | None = None, env: Mapping[str, str] | None = None,
             **overrides: Any) -> "Settings":
        """Defaults, then the config file, then the environment, then ``overrides`` (flags)."""
        return cls.load_with_origins(path, env, **overrides)[0]

    @classmethod
    def load_with_origins(cls, path: str | Path | None = None, env: Mapping[str, str] | None = None,
                          origin: str = "flag", **overrides: Any) -> tuple["Settings", dict[str, str]]:
        """The settings and, for each, where its value came from (``default``, the file, ``env NAME``,
        ``flag``): what ``elt-sdk config show`` prints."""
        env = os.environ if env is None else env
        by_name = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        origins = {name: "default" for name in by_name}
        file = Path(path) if path else Path(CONFIG_FILE)
        if path and not file.is_file():
            raise SettingsError(f"config file {file} not found")
        if file.is_file():
            for name, value in _read_file(file).items():
                values[name] = _check(by_name[name], value, str(file))
                origins[name] = str(file)
        for f in fields(cls):
            name = f.metadata["env"]
            if name in env and env[name] != "":
                values[f.name] = _coerce(f, env[name], f"environment {name}")
                origins[f.name] = f"env {name}"
        unknown = sorted(set(overrides) - set(by_name))
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(unknown)}; known: see 'elt-sdk config show'")
        for name, value in overrides.items():
            if value is None:
                continue
            values[name] = _coerce(by_name[name], value, origin) if isinstance(value, str) \
                else _check(by_name[name], value, origin)
            origins[name] = origin
        return cls(**values), origins

    @classmethod
    def coerce(cls, raw: Mapping[str, Any], origin: str = "CDK context") -> dict[str, Any]:
        """Typed, checked values for settings given as strings (CDK ``-c key=value``, flags); unknown keys fail."""
        by_name = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(by_name))
        if unknown:
            raise SettingsError(f"unknown setting(s) in {origin}: {', '.join(unknown)}")
        return {k: _coerce(by_name[k], v, f"{origin} {k}") if isinstance(v, str) else _check(by_name[k], v, origin)
                for k, v in raw.items()}

    @classmethod
    def describe(cls) -> list[dict[str, Any]]:
        """Every setting: name, environment variable, default, allowed values, help (for docs and ``config show``)."""
        out = []
        for f in fields(cls):
            out.append({"name": f.name, "env": f.metadata["env"], "default": f.default, "allowed": _allowed(f),
                        "help": f.metadata["help"]})
        return out

    def lambda_environment(self) -> dict[str, str]:
        """The settings handlers read at run time, as Lambda environment variables."""
        keep = ("bronze_prefix", "replay_prefix", "idempotency_ttl_seconds", "chunk_bytes", "emit_partition_events",
                "event_bus_name", "metrics_namespace", "name_prefix", "max_receive_count", "max_line_bytes",
                "max_object_bytes", "max_expansion_ratio", "log_level", "silver_format",
                "iceberg_snapshot_retention_days", "iceberg_orphan_age_days")
        out = {}
        for f in fields(self):
            if f.name in keep:
                value = getattr(self, f.name)
                out[f.metadata["env"]] = str(value).lower() if isinstance(value, bool) else str(value)
        return out


PLAIN_PARQUET_ONLY = {
    "compaction_enabled": "Iceberg tables are compacted by the maintenance function "
                          "(iceberg_maintenance_schedule) or 'elt-sdk iceberg compact'",
    "quality_enabled": "the quality gate reads plain Parquet partitions (not yet Iceberg tables)",
    "quality_auto_trigger": "the quality gate reads plain Parquet partitions (not yet Iceberg tables)",
    "emit_partition_events": "a partition is ready only once the committer commits it; the committer emits no "
                             "events yet (watch the tables' snapshots: 'elt-sdk iceberg snapshots')",
}
"""Settings that act on plain Parquet silver only, and what to use with Iceberg instead."""


class SettingsError(ValueError):
    """A setting that cannot be used; the message names it, its source and what is allowed."""


def _read_file(file: Path) -> dict[str, Any]:
    import tomllib  # only when there is a file to read: keeps the handlers' cold start short

    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{file}: not valid TOML: {exc}") from None
    tables = sorted(set(data) - {CONFIG_TABLE})
    if tables:
        raise SettingsError(f"{file}: unknown table or key {', '.join(repr(t) for t in tables)} "
                            f"(settings go in the [{CONFIG_TABLE}] table)")
    section = data.get(CONFIG_TABLE, {})
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(section) - known)
    if unknown:
        hints = [_closest(u, known) for u in unknown]
        raise SettingsError(f"{file}: unknown setting(s) {', '.join(unknown)} in [{CONFIG_TABLE}]"
                            + "".join(f" (did you mean {h}?)" for h in hints if h))
    return section


def _closest(name: str, known: set[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(name, sorted(known), n=1)
    return match[0] if match else None


def _kind(f: dataclasses.Field) -> tuple[str, bool]:
    """The setting's base type name and whether it may be unset (``None``)."""
    typ = str(f.type)
    return typ.split(" ")[0].split("|")[0], "None" in typ


def _allowed(f: dataclasses.Field) -> str:
    m, (kind, optional) = f.metadata, _kind(f)
    if m["choices"]:
        text = "one of " + ", ".join(map(str, m["choices"]))
    elif m["lo"] is not None or m["hi"] is not None:
        text = f"{kind} from {m['lo']} to {m['hi']}"
    elif kind == "bool":
        text = "true or false"
    elif m["pattern"]:
        text = f"a string matching {m['pattern']}"
    else:
        text = kind
    return text + (" (or unset)" if optional else "")


def _check(f: dataclasses.Field, value: Any, source: str) -> Any:
    """``value`` if it is a valid value of setting ``f``; else SettingsError naming setting, source, range."""
    kind, optional = _kind(f)
    m = f.metadata

    def bad() -> SettingsError:
        return SettingsError(f"setting {f.name} = {value!r} (from {source}): expected {_allowed(f)}")

    if value is None:
        if optional:
            return None
        raise bad()
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad()
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        value = float(value)
    elif kind == "str":
        if not isinstance(value, str):
            raise bad()
    if m["choices"] is not None and value not in m["choices"]:
        raise bad()
    if m["lo"] is not None and value < m["lo"] or m["hi"] is not None and value > m["hi"]:
        raise bad()
    if m["pattern"] is not None and not re.match(m["pattern"], value):
        raise bad()
    return value


def _coerce(f: dataclasses.Field, raw: Any, source: str) -> Any:
    """A setting given as text (environment, CDK context, flags), typed and checked."""
    kind, optional = _kind(f)
    text = str(raw).strip()
    value: Any = text
    if optional and text.lower() in ("", "none", "null"):
        value = None
    elif kind == "bool":
        value = {"1": True, "true": True, "yes": True, "on": True,
                 "0": False, "false": False, "no": False, "off": False}.get(text.lower(), text)
    elif kind == "int":
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            pass
    elif kind == "float":
        try:
            value = float(text)
        except ValueError:
            pass
    elif kind == "str" and f.metadata["choices"] and text.upper() in f.metadata["choices"]:
        value = text.upper()
    return _check(f, value, source)


# Environment variables through which deployed resources reach the handlers.
ENV_BRONZE_BUCKET = "ELT_BRONZE_BUCKET"
ENV_SILVER_BUCKET = "ELT_SILVER_BUCKET"
ENV_QUARANTINE_BUCKET = "ELT_QUARANTINE_BUCKET"
ENV_QUEUE_URL = "ELT_QUEUE_URL"
ENV_DLQ_URL = "ELT_DLQ_URL"
ENV_TABLE = "ELT_IDEMPOTENCY_TABLE"
# With silver_format = iceberg: the queue the transform hands objects to, the committer's DLQ, and
# the catalog ("glue", or an SQLAlchemy URI such as sqlite:////path/catalog.db locally) and its
# database (namespace).
ENV_COMMIT_QUEUE_URL = "ELT_COMMIT_QUEUE_URL"
ENV_COMMIT_DLQ_URL = "ELT_COMMIT_DLQ_URL"
ENV_ICEBERG_CATALOG = "ELT_ICEBERG_CATALOG"
ENV_ICEBERG_DATABASE = "ELT_ICEBERG_DATABASE"
