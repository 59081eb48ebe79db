"""One definition of the pipeline's names and settings.

The CDK stack sizes and wires its resources from ``Settings``; the local runtime creates the same
resources on the embedded endpoint from the same object; the Lambda handlers read their part back
from environment variables that ``Settings.lambda_environment`` writes. A value is looked up in
this order: defaults < ``elt-sdk.toml`` (``[pipeline]`` table) < ``ELT_*`` environment < flags.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from elt_sdk import layout

CONFIG_FILE = "elt-sdk.toml"


def _env(name: str, **kw: Any) -> Any:
    return field(metadata={"env": name}, **kw)


@dataclass(frozen=True)
class Settings:
    name_prefix: str = _env("ELT_NAME_PREFIX", default="elt-sdk")
    region: str = _env("AWS_REGION", default="us-east-2")
    # Lambda sizing. The queue's visibility timeout is derived: 6x the transform timeout.
    transform_timeout_s: int = _env("ELT_TRANSFORM_TIMEOUT_S", default=120)
    transform_memory_mb: int = _env("ELT_TRANSFORM_MEMORY_MB", default=1024)
    transform_reserved_concurrency: int | None = _env("ELT_TRANSFORM_RESERVED_CONCURRENCY", default=None)
    ingest_timeout_s: int = _env("ELT_INGEST_TIMEOUT_S", default=30)
    ingest_memory_mb: int = _env("ELT_INGEST_MEMORY_MB", default=256)
    ingest_reserved_concurrency: int | None = _env("ELT_INGEST_RESERVED_CONCURRENCY", default=None)
    architecture: str = _env("ELT_ARCHITECTURE", default="arm64")
    python_runtime: str = _env("ELT_PYTHON_RUNTIME", default="3.12")
    log_retention_days: int = _env("ELT_LOG_RETENTION_DAYS", default=30)
    # Queue and event source mapping.
    max_receive_count: int = _env("ELT_MAX_RECEIVE_COUNT", default=5)
    queue_retention_days: int = _env("ELT_QUEUE_RETENTION_DAYS", default=4)
    dlq_retention_days: int = _env("ELT_DLQ_RETENTION_DAYS", default=14)
    batch_size: int = _env("ELT_BATCH_SIZE", default=10)
    batching_window_s: int = _env("ELT_BATCHING_WINDOW_S", default=5)
    # Ingest.
    bronze_prefix: str = _env("ELT_BRONZE_PREFIX", default=layout.BRONZE_PREFIX)
    idempotency_ttl_seconds: int = _env("IDEMPOTENCY_TTL_SECONDS", default=30 * 86400)
    chunk_bytes: int = _env("ELT_CHUNK_BYTES", default=128 << 20)
    # Transform.
    emit_partition_events: bool = _env("ELT_EMIT_PARTITION_EVENTS", default=False)
    event_bus_name: str = _env("ELT_EVENT_BUS_NAME", default="default")
    metrics_namespace: str = _env("ELT_METRICS_NAMESPACE", default="elt-sdk")
    quarantine_alarm_ratio: float = _env("ELT_QUARANTINE_ALARM_RATIO", default=0.05)
    # Storage lifecycle.
    quarantine_expiry_days: int = _env("ELT_QUARANTINE_EXPIRY_DAYS", default=90)
    replay_prefix: str = _env("ELT_REPLAY_PREFIX", default=layout.REPLAY_PREFIX)
    replay_expiry_days: int = _env("ELT_REPLAY_EXPIRY_DAYS", default=14)
    # Optional modules (deploy toggles).
    glue_enabled: bool = _env("ELT_GLUE_ENABLED", default=False)
    observability_enabled: bool = _env("ELT_OBSERVABILITY_ENABLED", default=True)
    alarm_email: str | None = _env("ELT_ALARM_EMAIL", default=None)
    ops_enabled: bool = _env("ELT_OPS_ENABLED", default=False)
    ops_schedule: str | None = _env("ELT_OPS_SCHEDULE", default=None)
    quality_enabled: bool = _env("ELT_QUALITY_ENABLED", default=False)
    quality_auto_trigger: bool = _env("ELT_QUALITY_AUTO_TRIGGER", default=False)
    compaction_enabled: bool = _env("ELT_COMPACTION_ENABLED", default=False)

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
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        file = Path(path) if path else Path(CONFIG_FILE)
        if path and not file.is_file():
            raise SettingsError(f"config file {file} not found")
        if file.is_file():
            import tomllib  # only when there is a file to read: keeps the handlers' cold start short

            try:
                data = tomllib.loads(file.read_text()).get("pipeline", {})
            except tomllib.TOMLDecodeError as exc:
                raise SettingsError(f"{file}: not valid TOML: {exc}") from None
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(data) - known)
            if unknown:
                raise SettingsError(f"{file}: unknown setting(s) {', '.join(unknown)} in [pipeline]")
            values.update(data)
        for f in fields(cls):
            name = f.metadata["env"]
            if name in env and env[name] != "":
                values[f.name] = _coerce(f, env[name], name)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @classmethod
    def coerce(cls, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Typed values for settings given as strings (CDK ``-c key=value``, flags); unknown keys fail."""
        by_name = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(by_name))
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")
        return {k: _coerce(by_name[k], v, k) if isinstance(v, str) else v for k, v in raw.items()}

    def lambda_environment(self) -> dict[str, str]:
        """The settings handlers read at run time, as Lambda environment variables."""
        keep = ("bronze_prefix", "replay_prefix", "idempotency_ttl_seconds", "chunk_bytes", "emit_partition_events",
                "event_bus_name", "metrics_namespace", "name_prefix")
        out = {}
        for f in fields(self):
            if f.name in keep:
                value = getattr(self, f.name)
                out[f.metadata["env"]] = str(value).lower() if isinstance(value, bool) else str(value)
        return out


class SettingsError(ValueError):
    pass


def _coerce(f: dataclasses.Field, raw: str, name: str) -> Any:
    typ = str(f.type)
    try:
        if typ.startswith("bool"):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if typ.startswith("int"):
            return int(raw)
        if typ.startswith("float"):
            return float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected {typ.split(' ')[0]}") from None
    return raw


# Environment variables through which deployed resources reach the handlers.
ENV_BRONZE_BUCKET = "ELT_BRONZE_BUCKET"
ENV_SILVER_BUCKET = "ELT_SILVER_BUCKET"
ENV_QUEUE_URL = "ELT_QUEUE_URL"
ENV_TABLE = "ELT_IDEMPOTENCY_TABLE"
