"""Compaction: a function that rewrites one partition's small files into a safe output prefix."""
from __future__ import annotations

from typing import TYPE_CHECKING

from constructs import Construct

from elt_sdk import layout

if TYPE_CHECKING:
    from elt_deploy.stack import PipelineStack

OUTPUT_PREFIX = "silver_compacted/"


class Compaction(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stack: "PipelineStack"):
        super().__init__(scope, construct_id)
        from elt_deploy.stack import FunctionSpec

        self.function = stack.function(FunctionSpec("CompactPartition", "elt_sdk.aws.compaction.handler", 2048, 900),
                                       {"ELT_SILVER_BUCKET": stack.silver.bucket_name})
        stack.allow(self.function, ["s3:ListBucket"], [stack.silver.bucket_arn])
        stack.allow(self.function, ["s3:GetObject"], [stack.silver.arn_for_objects(layout.SILVER_PREFIX + "*")])
        stack.allow(self.function, ["s3:PutObject", "s3:AbortMultipartUpload"],
                    [stack.silver.arn_for_objects(OUTPUT_PREFIX + "*")])
