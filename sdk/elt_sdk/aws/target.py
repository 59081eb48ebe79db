"""Where an operational command acts: one stack's resources, and how to reach them.

A ``StackTarget`` is the running local stack (``elt-sdk local up``, found through its state
file), a deployed CloudFormation stack (resources from its outputs: ``aws/deployed.py``), or any
endpoint given by URL (resources by the names ``Settings`` gives them, which is how ``local up``
creates them). ``status``, ``put``, ``replay``, ``dlq``, ``compact``, ``dq``, ``query``,
``invoke`` and ``verify`` all take one, so the targeting is written once
(``cli/targeting.py`` turns the command-line options into one).
"""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterator

from elt_sdk.settings import Settings

LOCAL, DEPLOYED, ENDPOINT = "local", "deployed", "endpoint"

KNOWN_OUTPUTS = (
    "bronze_bucket", "silver_bucket", "quarantine_bucket", "queue_url", "dlq_url", "ingest_failures_url",
    "ingest_lambda", "transform_lambda", "idempotency_table", "region", "bucket_kms_key", "compaction_lambda",
    "ops_replay_lambda", "ops_poll_lambda", "ops_state_machine", "quality_check_lambda",
    "quality_gate_state_machine", "glue_database", "dashboard", "alarm_topic", "events_queue_url",
    "commit_queue_url", "commit_dlq_url", "committer_lambda", "iceberg_maintenance_lambda", "iceberg_catalog",
)
"""Outputs an operator needs, by the snake_case name commands use. A stack's CloudFormation
outputs are matched by name with case and ``_`` ignored (``BronzeBucket`` is ``bronze_bucket``)."""


class TargetError(LookupError):
    """The target lacks what a command needs (a resource not deployed, no stack running)."""


def normalise(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


def outputs_by_name(raw: dict[str, str]) -> dict[str, str]:
    """CloudFormation outputs keyed by their snake_case names; outputs this SDK does not know
    keep their own key (a later stack version may add some)."""
    known = {normalise(k): k for k in KNOWN_OUTPUTS}
    return {known.get(normalise(k), k): v for k, v in raw.items()}


@dataclass
class StackTarget:
    """One pipeline's resources (``outputs``) and a way to reach its endpoint (``client``)."""

    kind: str
    description: str
    outputs: dict[str, str]
    settings: Settings
    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    functions: dict[str, str] = field(default_factory=dict)
    """Local kinds: function name -> where its handler runs (the stack's process)."""

    def __post_init__(self) -> None:
        self.region = self.region or self.outputs.get("region") or self.settings.region
        self._session: Any = None
        self._clients: dict[str, Any] = {}

    # -- reaching it ----------------------------------------------------------------------------

    @property
    def session(self) -> Any:
        if self._session is None:
            import boto3

            if self.kind == DEPLOYED:
                self._session = boto3.Session(profile_name=self.profile, region_name=self.region)
            else:  # an embedded or emulated endpoint: any credentials do
                from elt_sdk.aws.context import DUMMY_CREDENTIALS

                self._session = boto3.Session(aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                              aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                                              aws_session_token=DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
                                              region_name=self.region)
        return self._session

    def client(self, service: str) -> Any:
        """A boto3 client for the target (one per service)."""
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.endpoint_url)
        return self._clients[service]

    @property
    def bronze_prefix(self) -> str:
        return self.settings.bronze_prefix

    def require(self, *names: str) -> list[str]:
        """The outputs ``names``, or a TargetError naming what this target lacks."""
        missing = [n for n in names if not self.outputs.get(n)]
        if missing:
            raise TargetError(f"{self.description} has no {', '.join(missing)}"
                              + (" (is the optional module enabled in the stack?)" if self.kind == DEPLOYED else ""))
        return [self.outputs[n] for n in names]

    @property
    def bronze_bucket(self) -> str:
        return self.require("bronze_bucket")[0]

    @property
    def silver_bucket(self) -> str:
        return self.require("silver_bucket")[0]

    @property
    def quarantine_bucket(self) -> str:
        return self.outputs.get("quarantine_bucket") or self.silver_bucket

    def stores(self) -> tuple[Any, Any]:
        """The silver and quarantine buckets as ``Store``s (what the commit protocol writes)."""
        from elt_sdk.aws.s3 import S3Store

        s3 = self.client("s3")
        return S3Store(s3, self.silver_bucket), S3Store(s3, self.quarantine_bucket)

    @property
    def iceberg(self) -> bool:
        """Is silver Iceberg tables here (the stack has a committer's queue)?"""
        return bool(self.outputs.get("commit_queue_url"))

    def warehouse(self) -> Any:
        """The Iceberg tables of this target: Glue (a deployed stack: its database), or the local
        stack's sqlite catalog, over the silver bucket."""
        from elt_sdk.iceberg.catalog import Warehouse, open_catalog
        from elt_sdk.query import database_name

        creds = self.session.get_credentials()
        spec = self.outputs.get("iceberg_catalog") or "glue"
        catalog = open_catalog(spec, root=f"s3://{self.silver_bucket}", region=self.region, endpoint_url=self.endpoint_url,
                               credentials=creds.get_frozen_credentials() if creds is not None else None,
                               glue_client=self.client("glue") if spec == "glue" else None)
        return Warehouse(catalog, self.outputs.get("glue_database") or database_name(self.settings.name_prefix),
                         f"s3://{self.silver_bucket}")

    def s3_filesystem(self) -> Any:
        """pyarrow's S3 filesystem on this target (DuckDB reads silver through it)."""
        from pyarrow import fs

        creds = self.session.get_credentials()
        frozen = creds.get_frozen_credentials() if creds is not None else None
        kwargs: dict[str, Any] = {"region": self.region}
        if frozen is not None:
            kwargs.update(access_key=frozen.access_key, secret_key=frozen.secret_key, session_token=frozen.token)
        if self.endpoint_url:
            scheme, _, host = self.endpoint_url.partition("://")
            kwargs.update(endpoint_override=host.rstrip("/"), scheme=scheme)
        return fs.S3FileSystem(**kwargs)

    # -- running its functions ------------------------------------------------------------------

    def handler_environment(self) -> dict[str, str]:
        """The environment the pipeline's handlers read, pointing at this target's resources."""
        from elt_sdk import settings as s

        out = self.outputs
        env = {**self.settings.lambda_environment(), s.ENV_BRONZE_BUCKET: out.get("bronze_bucket", ""),
               s.ENV_SILVER_BUCKET: out.get("silver_bucket", ""), s.ENV_QUARANTINE_BUCKET: self.quarantine_bucket,
               s.ENV_QUEUE_URL: out.get("queue_url", ""), s.ENV_DLQ_URL: out.get("dlq_url", ""),
               s.ENV_TABLE: out.get("idempotency_table", ""), "AWS_REGION": self.region or "",
               "AWS_DEFAULT_REGION": self.region or ""}
        if self.kind != DEPLOYED:
            from elt_sdk.aws.context import DUMMY_CREDENTIALS

            env.update(DUMMY_CREDENTIALS)
        if self.endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
        if self.profile:
            env["AWS_PROFILE"] = self.profile
        return env

    @contextlib.contextmanager
    def handler_env(self) -> Iterator[None]:
        """This process's environment set as the target's Lambda functions see theirs, for the
        duration (handlers build their clients from it), then restored."""
        from elt_sdk.aws import handlers

        env: dict[str, str | None] = dict(self.handler_environment())
        if self.kind != DEPLOYED:
            env.update(AWS_PROFILE=None, AWS_DEFAULT_PROFILE=None)
        changed = {k: v for k, v in env.items() if os.environ.get(k) != v}
        saved = {k: os.environ.get(k) for k in changed}
        _set_env(changed)
        if changed:  # the handlers' cached clients were built for another environment
            handlers.reset()
        try:
            yield
        finally:
            _set_env(saved)
            if changed:
                handlers.reset()

    def invoke(self, function: str, event: dict[str, Any], *, remote: bool = False, timeout_s: int | None = None) -> Any:
        """Run the ``ingest`` or ``transform`` handler on ``event``: in this process against the
        target's resources (like ``sam local invoke``), or, ``remote``, the deployed function."""
        if function not in ("ingest", "transform"):
            raise ValueError(f"no function {function!r}: ingest or transform")
        if remote:
            name = self.require(f"{function}_lambda")[0]
            resp = self.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event).encode())
            payload = json.loads(resp["Payload"].read() or b"null")
            if resp.get("FunctionError"):
                raise RuntimeError(f"{name} failed: {payload}")
            return payload
        from elt_sdk.aws import handlers
        from elt_sdk.aws.context import LambdaContext

        cfg = self.settings
        handler = handlers.ingest_handler if function == "ingest" else handlers.transform_handler
        timeout = timeout_s or (cfg.ingest_timeout_s if function == "ingest" else cfg.transform_timeout_s)
        name = self.outputs.get(f"{function}_lambda") or f"{cfg.name_prefix}-{function}"
        with self.handler_env():
            return handler(event, LambdaContext(name, timeout))

    # -- what verify asks -------------------------------------------------------------------------

    def describe_function(self, name: str) -> str:
        if self.kind != DEPLOYED and name in self.functions:
            return f"{name} ({self.functions[name]})"
        return self.client("lambda").get_function(FunctionName=name)["Configuration"]["FunctionArn"]

    def notification(self) -> tuple[bool, str]:
        """Does the bronze bucket notify ingest (the function, or locally the queue its poller
        reads) on the bronze prefix?"""
        conf = self.client("s3").get_bucket_notification_configuration(Bucket=self.bronze_bucket)
        prefix = self.bronze_prefix
        events_queue = self.outputs.get("events_queue_url", "")
        for q in conf.get("QueueConfigurations", []):
            if events_queue and q["QueueArn"].endswith(":" + events_queue.rstrip("/").rsplit("/", 1)[-1]) \
                    and _prefix(q) == prefix:
                ingest = self.outputs.get("ingest_lambda", "ingest")
                return True, f"ObjectCreated on prefix {prefix} -> {ingest} (locally through the S3-events queue " \
                             "the stack feeds it from)"
        if self.outputs.get("ingest_lambda") and self.kind == DEPLOYED:
            arn = self.describe_function(self.outputs["ingest_lambda"])
            for fn in conf.get("LambdaFunctionConfigurations", []):
                if fn["LambdaFunctionArn"] == arn and _prefix(fn) == prefix:
                    return True, f"ObjectCreated on prefix {prefix} -> {arn}"
            return False, f"no notification to {arn} on prefix {prefix}"
        return False, f"no notification on prefix {prefix}: {conf}"

    def invoke_ingest(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.invoke("ingest", event, remote=self.kind == DEPLOYED)


def _set_env(values: dict[str, str | None]) -> None:
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _prefix(conf: dict[str, Any]) -> str | None:
    rules = {r["Name"].lower(): r["Value"] for r in conf.get("Filter", {}).get("Key", {}).get("FilterRules", [])}
    return rules.get("prefix")


def by_settings_names(settings: Settings, *, endpoint_url: str, description: str | None = None,
                      kind: str = ENDPOINT, functions: dict[str, str] | None = None) -> StackTarget:
    """A target on ``endpoint_url`` whose resources carry the names ``settings`` gives them (how
    ``local up`` and ``local run`` create them)."""
    target = StackTarget(kind, description or f"endpoint {endpoint_url}", {}, settings, endpoint_url=endpoint_url,
                         functions=functions or {})
    sqs = target.client("sqs")
    outputs = {"bronze_bucket": settings.bronze_bucket, "silver_bucket": settings.silver_bucket,
               "quarantine_bucket": settings.quarantine_bucket, "idempotency_table": settings.table_name,
               "ingest_lambda": f"{settings.name_prefix}-ingest", "transform_lambda": f"{settings.name_prefix}-transform"}
    for key, name in (("queue_url", settings.queue_name), ("dlq_url", settings.dlq_name),
                      ("events_queue_url", f"{settings.name_prefix}-s3-events"),
                      ("commit_queue_url", f"{settings.name_prefix}-commits"),
                      ("commit_dlq_url", f"{settings.name_prefix}-commits-dlq")):
        try:
            outputs[key] = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except Exception:  # noqa: BLE001 - absent: the command that needs it says so
            pass
    target.outputs = outputs
    return target
