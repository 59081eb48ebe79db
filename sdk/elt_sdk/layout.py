"""Output keys. Pure functions of (source identity, chunk, dataset, dt, part): a redelivered
message or a second run overwrites the same keys instead of adding files."""
from __future__ import annotations

from pathlib import Path

from elt_sdk.source import SourceRef

SILVER_PREFIX = "silver/"
QUARANTINE_PREFIX = "quarantine/"
UNROUTED = "_unrouted"
"""Quarantine folder for records that no dataset claims (unknown discriminator)."""


def silver_partition(dataset: str, dt: str, root: str = SILVER_PREFIX) -> str:
    """The Hive-style folder of one day of a dataset (``root`` for copies such as compaction's)."""
    return f"{root.rstrip('/')}/{dataset}/dt={dt}/"


def silver_key(dataset: str, dt: str, source: SourceRef, part: int) -> str:
    return f"{silver_partition(dataset, dt)}{source.source_id}-c{source.chunk:04d}-p{part:04d}.parquet"


def quarantine_key(dataset: str, source: SourceRef) -> str:
    return f"{QUARANTINE_PREFIX}{dataset}/{source.source_id}-c{source.chunk:04d}.jsonl"


BRONZE_PREFIX = "bronze/"
REPLAY_PREFIX = "bronze/replay/"


def replay_key(key: str, stamp: str, *, bronze_prefix: str = BRONZE_PREFIX, replay_prefix: str = REPLAY_PREFIX) -> str:
    """Where a replay copies bronze ``key``: ``<replay_prefix><stamp>/<key below bronze_prefix>``."""
    rel = key[len(bronze_prefix):] if key.startswith(bronze_prefix) else key
    return f"{replay_prefix.rstrip('/')}/{stamp}/{rel}"


def replayed_key(key: str, *, bronze_prefix: str = BRONZE_PREFIX, replay_prefix: str = REPLAY_PREFIX) -> str:
    """The bronze key a replay copy stands for (``key`` itself if it is not one), so a replayed
    object is routed to the dataset of its original, by prefix."""
    root = replay_prefix.rstrip("/") + "/"
    if not key.startswith(root):
        return key
    _stamp, _, rel = key[len(root):].partition("/")
    return bronze_prefix + rel


def bronze_key(path: "Path", prefix: str = BRONZE_PREFIX) -> str:
    """The bronze key a local file stands for: its path from a ``bronze/`` folder on, if it has
    one, else ``bronze/<file name>`` (routed record by record)."""
    parts = path.resolve().parts
    root = prefix.strip("/")
    if root in parts:
        return "/".join(parts[len(parts) - 1 - parts[::-1].index(root):])
    return f"{prefix}{path.name}"
