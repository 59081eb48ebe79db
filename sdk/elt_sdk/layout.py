"""Keys: where every kind of file lives in the buckets (and in local output folders).

Silver and quarantine files are named ``<object id>-<version>-<round>-c<chunk>-p<part>``: the
bronze key's id, the version's token and the commit round (``commit.py``), so a file name says
which object version it holds and no two commits ever write the same key."""
from __future__ import annotations

import os
from pathlib import Path

from elt_sdk.source import SourceRef

SILVER_PREFIX = "silver/"
QUARANTINE_PREFIX = "quarantine/"
META_PREFIX = "_elt/"
"""Commit records: object manifests, chunk records, staged files of attempts in flight."""
UNROUTED = "_unrouted"
"""Quarantine folder for records that no dataset claims (unknown discriminator)."""
FAILED = "_failed"
"""Quarantine folder for markers of object versions that never reached silver, with the reason."""


def silver_partition(dataset: str, dt: str, root: str = SILVER_PREFIX) -> str:
    """The Hive-style folder of one day of a dataset (``root`` for copies such as compaction's)."""
    return f"{root.rstrip('/')}/{dataset}/dt={dt}/"


def silver_key(dataset: str, dt: str, source: SourceRef, part: int, round_id: str = "0", *, chunk: int | None = None) -> str:
    c = source.chunk if chunk is None else chunk
    return f"{silver_partition(dataset, dt)}{source.source_id}-{round_id}-c{c:04d}-p{part:04d}.parquet"


LOCAL_ICEBERG_CATALOG = "iceberg.db"
"""A local output folder's Iceberg catalog (sqlite), beside its silver/: its presence says the silver is tables."""

ICEBERG_PARTITION = "dt"
"""An Iceberg table's day partition field (day of the event time, the same days as plain silver's dt)."""


def iceberg_table_prefix(dataset: str) -> str:
    """Where a dataset's Iceberg table lives in the silver bucket: ``data/`` and ``metadata/`` below it."""
    return f"{SILVER_PREFIX}{dataset}/"


def iceberg_data_key(dataset: str, dt: str, source: SourceRef, part: int, attempt_id: str, *,
                     chunk: int | None = None) -> str:
    """Where an attempt stages one day file of an Iceberg table: under the table's data folder, a
    name unique to the attempt (no snapshot references it until the committer adds it)."""
    c = source.chunk if chunk is None else chunk
    return (f"{iceberg_table_prefix(dataset)}data/{ICEBERG_PARTITION}={dt}/"
            f"{source.source_id}-{attempt_id}-c{c:04d}-p{part:04d}.parquet")


def quarantine_key(dataset: str, source: SourceRef, round_id: str = "0", *, chunk: int | None = None) -> str:
    c = source.chunk if chunk is None else chunk
    return f"{QUARANTINE_PREFIX}{dataset}/{source.source_id}-{round_id}-c{c:04d}.jsonl"


BRONZE_PREFIX = "bronze/"
REPLAY_PREFIX = "bronze/replay/"
# S3 metadata a replay copy carries: the version of its original it stands for
META_ORIGIN_ETAG = "elt-origin-etag"
META_ORIGIN_SEQUENCER = "elt-origin-sequencer"
META_ORIGIN_MODIFIED_MS = "elt-origin-modified-ms"


def replay_key(key: str, stamp: str, *, bronze_prefix: str = BRONZE_PREFIX, replay_prefix: str = REPLAY_PREFIX) -> str:
    """Where a replay copies bronze ``key``: ``<replay_prefix><stamp>/<key below bronze_prefix>``."""
    rel = key[len(bronze_prefix):] if key.startswith(bronze_prefix) else key
    return f"{replay_prefix.rstrip('/')}/{stamp}/{rel}"


def replay_metadata(etag: str, modified_ms: int, sequencer: str = "") -> dict[str, str]:
    """The S3 metadata of a replay copy: which version of its original it stands for."""
    return {META_ORIGIN_ETAG: etag, META_ORIGIN_MODIFIED_MS: str(modified_ms), META_ORIGIN_SEQUENCER: sequencer}


def replayed_key(key: str, *, bronze_prefix: str = BRONZE_PREFIX, replay_prefix: str = REPLAY_PREFIX) -> str:
    """The bronze key a replay copy stands for (``key`` itself if it is not one), so a replayed
    object is routed to the dataset of its original, by prefix."""
    root = replay_prefix.rstrip("/") + "/"
    if not key.startswith(root):
        return key
    _stamp, _, rel = key[len(root):].partition("/")
    return bronze_prefix + rel


def _absolute(path: "Path") -> str:
    """``path`` made absolute without following links, from the shell's working directory
    (``$PWD``, which keeps the links it was reached through) when that is this process's."""
    cwd = os.getcwd()  # the real path: links resolved
    logical = os.environ.get("PWD", "")
    if logical != cwd and os.path.isabs(logical):
        try:
            if os.path.samefile(logical, cwd):
                cwd = logical
        except OSError:
            pass
    return os.path.normpath(os.path.join(cwd, path))


def bronze_key(path: "Path", prefix: str = BRONZE_PREFIX) -> str:
    """The bronze key a local file stands for: its path from a ``bronze/`` folder on, if it has
    one, else ``bronze/<file name>`` (routed record by record). The path is made absolute without
    following links: a file linked into ``bronze/<dataset>/`` belongs where the link is."""
    parts = Path(_absolute(path)).parts
    root = tuple(prefix.strip("/").split("/"))
    for i in range(len(parts) - len(root) - 1, -1, -1):  # the last occurrence of the prefix's folders
        if parts[i:i + len(root)] == root:
            return "/".join(parts[i:])
    return f"{prefix}{path.name}"
