"""One silver partition read through a ``Store`` (a bucket or a folder): its files with size and
time, and a local path for one of them (the file itself in a folder, a download from a bucket).
Compaction and the quality gate read partitions this way, a file at a time."""
from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Iterator

from elt_sdk import layout
from elt_sdk.store import Store


def listing(store: Store, prefix: str) -> dict[str, tuple[int, float | None]]:
    """Keys under ``prefix`` with their size and modification time (epoch seconds)."""
    out: dict[str, tuple[int, float | None]] = {}
    root = getattr(store, "root", None)
    if root is not None:
        for key in store.list(prefix):
            st = (Path(root) / key).stat()
            out[key] = (st.st_size, st.st_mtime)
        return out
    client, bucket = store.client, store.bucket  # type: ignore[attr-defined]
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"]] = (int(o["Size"]), o["LastModified"].timestamp())
    return out


def parquet_files(store: Store, dataset: str, dt: str) -> list[str]:
    """Every Parquet file of a partition, in key order: what a query engine reads."""
    return sorted(k for k in listing(store, layout.silver_partition(dataset, dt)) if k.endswith(".parquet"))


@contextlib.contextmanager
def local_path(store: Store, key: str, tmp: Path) -> Iterator[Path]:
    """A local path holding ``key`` for the duration: the file itself in a folder store, else a
    download into ``tmp`` (removed afterwards, so local disk holds one file at a time)."""
    root = getattr(store, "root", None)
    if root is not None:
        yield Path(root) / key
        return
    path = tmp / f"in-{uuid.uuid4().hex[:8]}-{key.rsplit('/', 1)[-1]}"
    try:
        store.client.download_file(store.bucket, key, str(path))  # type: ignore[attr-defined]
        yield path
    finally:
        path.unlink(missing_ok=True)


def exists(store: Store, key: str) -> bool:
    root = getattr(store, "root", None)
    if root is not None:
        return (Path(root) / key).is_file()
    return key in listing(store, key)
