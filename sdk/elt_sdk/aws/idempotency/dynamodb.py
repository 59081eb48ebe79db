"""DynamoDB storage for idempotency records: conditional puts, TTL attribute ``expiration``."""
from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from elt_sdk.aws.idempotency.base import COMPLETED, IN_PROGRESS, IdempotencyRecord, ItemAlreadyExists, Persistence
from elt_sdk.aws.errors import error_code

KEY_ATTR = "pk"
TTL_ATTR = "expiration"


class DynamoDBPersistence(Persistence):
    def __init__(self, client: Any, table: str):
        self.client = client
        self.table = table

    def put_in_progress(self, record: IdempotencyRecord, now: float) -> None:
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    KEY_ATTR: {"S": record.key},
                    "status": {"S": IN_PROGRESS},
                    TTL_ATTR: {"N": str(record.expiry)},
                    "in_progress_expiration": {"N": str(record.in_progress_expiry_ms)},
                },
                ConditionExpression=(
                    "attribute_not_exists(#pk) OR #exp <= :now "
                    "OR (#status = :inprogress AND in_progress_expiration <= :now_ms)"
                ),
                ExpressionAttributeNames={"#pk": KEY_ATTR, "#exp": TTL_ATTR, "#status": "status"},
                ExpressionAttributeValues={
                    ":now": {"N": str(int(now))},
                    ":now_ms": {"N": str(int(now * 1000))},
                    ":inprogress": {"S": IN_PROGRESS},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                item = exc.response.get("Item")
                raise ItemAlreadyExists(self._record(item) if item else None) from None
            raise

    def complete(self, key: str, expiry: int, data: dict[str, Any]) -> None:
        """The whole completed record in one put: the same single write an update would be, with
        no update expression for the service to parse (the embedded endpoint's costliest call)."""
        self.client.put_item(
            TableName=self.table,
            Item={KEY_ATTR: {"S": key}, "status": {"S": COMPLETED}, TTL_ATTR: {"N": str(expiry)},
                  "data": {"S": json.dumps(data, sort_keys=True)}},
        )

    def delete(self, key: str) -> None:
        self.client.delete_item(TableName=self.table, Key={KEY_ATTR: {"S": key}})

    def get(self, key: str) -> IdempotencyRecord | None:
        item = self.client.get_item(TableName=self.table, Key={KEY_ATTR: {"S": key}}, ConsistentRead=True).get("Item")
        return self._record(item) if item else None

    @staticmethod
    def _record(item: dict[str, Any]) -> IdempotencyRecord:
        return IdempotencyRecord(
            key=item[KEY_ATTR]["S"],
            status=item["status"]["S"],
            expiry=int(item[TTL_ATTR]["N"]),
            in_progress_expiry_ms=int(item["in_progress_expiration"]["N"]) if "in_progress_expiration" in item else None,
            data=json.loads(item["data"]["S"]) if "data" in item else {},
        )
