"""Claim -> complete, or release: at most one ingest of an object at a time, exactly one success.

A claim is a conditional write of an IN_PROGRESS record whose lock expires with the invocation's
remaining time, so a crashed invocation does not hold the object forever. A COMPLETED record
expires after the TTL; the conditional write itself treats an expired record (or an expired lock)
as absent, since DynamoDB's TTL deletes late (``Persistence.put_in_progress``).
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable

IN_PROGRESS = "INPROGRESS"
COMPLETED = "COMPLETED"


@dataclass
class IdempotencyRecord:
    key: str
    status: str
    expiry: int  # epoch seconds (the TTL attribute)
    in_progress_expiry_ms: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


class AlreadyCompleted(Exception):
    def __init__(self, record: IdempotencyRecord):
        super().__init__(f"{record.key} already completed")
        self.record = record


class AlreadyInProgress(Exception):
    def __init__(self, record: IdempotencyRecord):
        super().__init__(f"{record.key} is being processed by another invocation")
        self.record = record


class ItemAlreadyExists(Exception):
    def __init__(self, existing: IdempotencyRecord | None):
        super().__init__("idempotency record exists")
        self.existing = existing


class Persistence(ABC):
    """Storage for idempotency records: a conditional put, an update, a delete, a read."""

    @abstractmethod
    def put_in_progress(self, record: IdempotencyRecord, now: float) -> None:
        """Write ``record`` unless a live record exists (raise ItemAlreadyExists with it).

        A record is live while it is COMPLETED and unexpired, or IN_PROGRESS with an unexpired lock.
        """

    @abstractmethod
    def complete(self, key: str, expiry: int, data: dict[str, Any]) -> None: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def get(self, key: str) -> IdempotencyRecord | None: ...


class Idempotency:
    def __init__(self, persistence: Persistence, ttl_seconds: int, clock: Callable[[], float] = time.time):
        self.persistence = persistence
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    def claim(self, key: str, remaining_ms: int) -> None:
        """Take ``key`` for this invocation, or raise AlreadyCompleted / AlreadyInProgress."""
        now = self.clock()
        record = IdempotencyRecord(key, IN_PROGRESS, int(now) + self.ttl_seconds, int(now * 1000) + max(remaining_ms, 1000))
        try:
            self.persistence.put_in_progress(record, now)
        except ItemAlreadyExists as exc:
            existing = exc.existing or self.persistence.get(key)
            if existing is None:  # deleted between the write and the read: let the caller retry
                raise AlreadyInProgress(record) from None
            if existing.status == COMPLETED:
                raise AlreadyCompleted(existing) from None
            raise AlreadyInProgress(existing) from None

    def complete(self, key: str, data: dict[str, Any] | None = None) -> None:
        self.persistence.complete(key, int(self.clock()) + self.ttl_seconds, data or {})

    def release(self, key: str) -> None:
        """Give the claim back after a failure, so a retry can claim it at once."""
        self.persistence.delete(key)
