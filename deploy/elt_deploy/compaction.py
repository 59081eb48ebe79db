"""Compaction: a function that rewrites one partition's small files in place under ``silver/``,
through the same commit protocol as the transform (its intent records live under
``_elt/compactions/``), so an interrupted compaction is finished, never half-applied."""
from __future__ import annotations

from constructs import Construct

from elt_deploy.core import META_PREFIX, WRITE, FunctionSpec, Pipeline
from elt_sdk import layout
from elt_sdk.settings import ENV_SILVER_BUCKET

# Partitions are staged in /tmp: room beyond Lambda's default 512 MiB.
EPHEMERAL_MB = 4096


class Compaction(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, pipeline: Pipeline):
        super().__init__(scope, construct_id)
        p = pipeline
        self.function = p.function(FunctionSpec("CompactPartition", "elt_sdk.aws.compaction.handler", 2048, 900,
                                                ephemeral_mb=EPHEMERAL_MB),
                                   {ENV_SILVER_BUCKET: p.silver.bucket_name})
        p.list_bucket(self.function, p.silver)
        p.objects(self.function, p.silver, WRITE, [layout.SILVER_PREFIX, META_PREFIX])
        p.output("compaction_lambda", self.function.function_name, "compacts one partition in place")
