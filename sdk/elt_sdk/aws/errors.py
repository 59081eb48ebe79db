"""Reading botocore's errors, for every AWS adapter (S3, SQS, DynamoDB)."""
from __future__ import annotations

from botocore.exceptions import ClientError


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
